//! Journal consumers keep their own positions: a read changes nothing on
//! the server, each consumer's position is in the link it follows.

use super::*;

/// One journal consumer: where its `Link` says to read next, and the
/// positions it was given.
struct Reader {
    next: String,
    seen: Vec<u64>,
}

impl Reader {
    fn new(path: &str, query: &str) -> Reader {
        Reader {
            next: format!("{path}?{query}"),
            seen: Vec::new(),
        }
    }

    /// One GET of its next link; whether it got events.
    fn poll(&mut self, svc: &Service<'_, MemoryKv>) -> bool {
        let (path, query) = self.next.split_once('?').unwrap();
        let r = call(svc, "GET", path, query, Value::Null).response;
        let link = &r.headers.iter().find(|(k, _)| *k == "link").unwrap().1;
        self.next = link
            .strip_prefix("<http://gw")
            .and_then(|l| l.strip_suffix(">; rel=\"next\""))
            .unwrap_or_else(|| panic!("{link}"))
            .to_string();
        match r.status {
            204 => false,
            200 => {
                for e in json_of(&r)["events"].as_array().unwrap() {
                    self.seen
                        .push(e["position"].as_str().unwrap().parse().unwrap());
                }
                true
            }
            s => panic!("journal answered {s}"),
        }
    }
}

fn snapshot(kv: &MemoryKv) -> Vec<(String, Option<Vec<u8>>)> {
    use assetgate_store::Kv;
    kv.keys()
        .into_iter()
        .map(|k| (k.clone(), kv.get(&k).unwrap()))
        .collect()
}

/// Any number of consumers on one journal, reads and appends
/// interleaved at random (many seeds), each starting from the
/// beginning or with `latest=true`, with and without `limit`: each
/// gets every event after its start exactly once, in order, by
/// following its links; and no read changes the store.
#[test]
fn consumers_keep_their_own_positions() {
    let mut late_starts = 0;
    for seed in 1..=60u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let kv = MemoryKv::new();
        let svc = service(&kv, 8);
        let path = registered(&svc);
        let id = path.rsplit('/').next().unwrap().to_string();
        let journal = svc.journal(&id).unwrap();
        let starts = [
            "",
            "since=0",
            "latest=true",
            "latest=true&limit=2",
            "since=0&limit=1",
            "limit=3",
        ];
        // (reader, starts with latest=true, events appended before its
        // first read once it made one)
        let mut readers: Vec<(Reader, bool, Option<u64>)> = (0..4)
            .map(|_| {
                let q = starts[next(starts.len() as u64) as usize];
                (Reader::new(&path, q), q.contains("latest"), None)
            })
            .collect();
        let mut appended = 0u64;
        for _ in 0..120 {
            if next(3) == 0 {
                appended += 1;
                journal
                    .append(
                        json!({"type": "rendition_created", "n": appended})
                            .to_string()
                            .as_bytes(),
                    )
                    .unwrap();
            } else {
                let (reader, _, before) = &mut readers[next(4) as usize];
                before.get_or_insert(appended);
                let was = snapshot(&kv);
                reader.poll(&svc);
                assert_eq!(snapshot(&kv), was, "a read changed the store");
            }
        }
        for (reader, latest, before) in &mut readers {
            let before = *before.get_or_insert(appended);
            while reader.poll(&svc) {}
            let from = if *latest { before } else { 0 };
            late_starts += u64::from(*latest && before > 0 && before < appended);
            assert_eq!(
                reader.seen,
                (from + 1..=appended).collect::<Vec<_>>(),
                "seed {seed}, reader now at {}",
                reader.next
            );
        }
    }
    assert!(
        late_starts > 20,
        "the interesting case was drawn {late_starts} times"
    );
}

/// Two consumers polling one journal on two threads while a third
/// thread appends: each follows its links and ends with every event
/// exactly once.
#[test]
fn two_threads_read_one_journal() {
    let kv = MemoryKv::new();
    let svc = service(&kv, 8);
    let path = registered(&svc);
    let id = path.rsplit('/').next().unwrap().to_string();
    const N: u64 = 300;
    let results: Vec<Vec<u64>> = std::thread::scope(|s| {
        let svc = &svc;
        let readers: Vec<_> = ["since=0", "limit=7"]
            .into_iter()
            .map(|q| {
                let path = path.clone();
                s.spawn(move || {
                    let mut r = Reader::new(&path, q);
                    while (r.seen.len() as u64) < N {
                        if !r.poll(svc) {
                            std::thread::yield_now();
                        }
                    }
                    r.seen
                })
            })
            .collect();
        let journal = svc.journal(&id).unwrap();
        for n in 0..N {
            journal
                .append(json!({"n": n}).to_string().as_bytes())
                .unwrap();
        }
        readers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for seen in results {
        assert_eq!(seen, (1..=N).collect::<Vec<_>>());
    }
}

/// `latest=true` starts after the last event reported before the grace
/// window (or reaches back at most 1000 events), whatever the number of
/// events and where the window begins; and a consumer following the link
/// it got then sees every later event once.
#[test]
fn latest_reaches_back_over_the_grace_window() {
    use crate::journal::LATEST_GRACE_SECS as GRACE;
    let now = 1_000_000;
    // (events reported before the window, events inside it)
    for (old, recent) in [
        (0, 0),
        (0, 1),
        (5, 0),
        (5, 3),
        (1, 8),
        (9, 9),
        (3, 40),
        (200, 77),
        (0, 1200),
        (30, 1000),
        (30, 999),
    ] {
        let kv = MemoryKv::new();
        let svc = service(&kv, 8);
        let path = registered(&svc);
        let id = path.rsplit('/').next().unwrap().to_string();
        let journal = svc.journal(&id).unwrap();
        for i in 0..old + recent {
            // Old ones from long ago up to just before the window; an
            // undated payload counts as old.
            let date = if i < old {
                (i % 3 != 2).then(|| now - GRACE - 1 - (old - 1 - i) as u64)
            } else {
                Some(now - GRACE + (i - old) as u64 % (GRACE + 1))
            };
            let e = match date {
                Some(t) => {
                    json!({"type": "rendition_created", "date": assetgate_web::time::rfc3339(t)})
                }
                None => json!({"type": "rendition_created"}),
            };
            journal.append(e.to_string().as_bytes()).unwrap();
        }
        let total = (old + recent) as u64;
        let from = total - (recent as u64).min(1000);
        let r = call_at(
            &svc,
            "GET",
            &path,
            "latest=true&limit=1000",
            Value::Null,
            now,
        )
        .response;
        let positions: Vec<u64> = if r.status == 204 {
            Vec::new()
        } else {
            json_of(&r)["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["position"].as_str().unwrap().parse().unwrap())
                .collect()
        };
        assert_eq!(
            positions,
            (from + 1..=total).collect::<Vec<_>>(),
            "{old} old, {recent} recent"
        );
        // The same read a moment after the window: only the end.
        let later = call_at(
            &svc,
            "GET",
            &path,
            "latest=true",
            Value::Null,
            now + GRACE + 1,
        )
        .response;
        assert_eq!(later.status, 204, "{old} {recent}");
        // Following the link: the next event, once.
        let mut reader = Reader::new(&path, "latest=true");
        reader.poll(&svc);
        journal.append(b"{\"type\":\"rendition_failed\"}").unwrap();
        while reader.poll(&svc) {}
        assert_eq!(reader.seen.last(), Some(&(total + 1)));
        let mut sorted = reader.seen.clone();
        sorted.dedup();
        assert_eq!(sorted, reader.seen);
    }
}
