//! The shared store end to end: two components (probe-a and probe-b, the
//! same fixture under two ids) share blobs, records and a journal through
//! the host's durable key-value store, across a host restart.

mod common;

use common::*;
use md5::Digest;

const PROBE: &str = "tests/fixtures/probe.toml";
/// `blob_chunk_size` in tests/fixtures/probe.toml.
const CHUNK: usize = 65536;

fn start(dir: &std::path::Path) -> Host {
    HostConfig::new(PROBE, dir)
        .env("SPIN_VARIABLE_SECRET_TOKEN", "t")
        .start()
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    noise(len, seed)
}

#[test]
fn components_share_blobs_and_journals_across_restarts() {
    let dir = temp_dir("store-shared");
    let host = start(&dir);
    let content = data(3 * CHUNK + 1234, 7);
    let chunks: Vec<&[u8]> = content.chunks(CHUNK).collect();

    // a writes the chunks out of order, one twice; b finishes the blob.
    for (n, expect_stored) in [(2, true), (0, true), (3, true), (0, false), (1, true)] {
        let r = send(
            "PUT",
            &host.url(&format!("/a/store/blob/photo-1/{n}")),
            &[],
            chunks[n],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["stored"], expect_stored, "chunk {n}");
    }
    assert_eq!(
        get(&host.url("/b/store/blob/photo-1/stat")).status,
        404,
        "invisible before finish"
    );
    let r = send(
        "POST",
        &host.url("/b/store/blob/photo-1/finish?type=image/jpeg"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json();
    assert_eq!(d["size"], content.len() as u64);
    assert_eq!(d["chunks"], 4);
    assert_eq!(d["digests"]["md5"], hex::encode(md5::Md5::digest(&content)));
    assert_eq!(
        d["digests"]["sha256"],
        hex::encode(sha2::Sha256::digest(&content))
    );

    // b reads it whole and by range; a journal is shared both ways.
    let whole = get(&host.url("/b/store/blob/photo-1"));
    assert_eq!(whole.header("content-type"), Some("image/jpeg"));
    assert!(whole.body == content);
    let part = get(&host.url("/a/store/blob/photo-1?range=65000-140000"));
    assert!(part.body == content[65000..140000]);

    let writers: Vec<_> = (0..4)
        .map(|w| {
            let base = host.base.clone();
            std::thread::spawn(move || {
                for i in 0..15 {
                    let who = if (w + i) % 2 == 0 { "a" } else { "b" };
                    let r = send(
                        "POST",
                        &format!("{base}/{who}/store/journal/events"),
                        &[],
                        format!("{w}-{i}").as_bytes(),
                    );
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let read_all = |host: &Host| -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut after = String::from("0");
        loop {
            let page =
                get(&host.url(&format!("/b/store/journal/events?after={after}&limit=7"))).json();
            let page = page.as_array().unwrap().clone();
            if page.is_empty() {
                return out;
            }
            for e in &page {
                out.push((
                    e["position"].as_str().unwrap().to_string(),
                    e["payload"].as_str().unwrap().to_string(),
                ));
            }
            after = out.last().unwrap().0.clone();
        }
    };
    let events = read_all(&host);
    assert_eq!(events.len(), 60);
    let positions: Vec<u64> = events.iter().map(|(p, _)| p.parse().unwrap()).collect();
    assert_eq!(
        positions,
        (1..=60).collect::<Vec<u64>>(),
        "gap-free, strictly increasing"
    );
    for w in 0..4 {
        let mine: Vec<&str> = events
            .iter()
            .map(|(_, p)| p.as_str())
            .filter(|p| p.starts_with(&format!("{w}-")))
            .collect();
        let expected: Vec<String> = (0..15).map(|i| format!("{w}-{i}")).collect();
        assert_eq!(mine, expected, "each writer's events keep their order");
    }
    host.stop();

    // Everything survives a restart, and appends continue after 60.
    let host = start(&dir);
    assert!(get(&host.url("/a/store/blob/photo-1")).body == content);
    assert_eq!(read_all(&host), events);
    let r = send(
        "POST",
        &host.url("/a/store/journal/events"),
        &[],
        b"after-restart",
    );
    assert_eq!(r.json()["position"], "61");
}

#[test]
fn records_updated_from_two_components_lose_no_write() {
    let dir = temp_dir("store-records");
    let host = start(&dir);
    let handles: Vec<_> = (0..6)
        .map(|t| {
            let base = host.base.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let who = if t % 2 == 0 { "a" } else { "b" };
                    let r = send(
                        "POST",
                        &format!("{base}/{who}/store/counter/hits"),
                        &[],
                        b"",
                    );
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let r = send("POST", &host.url("/a/store/counter/hits"), &[], b"");
    assert_eq!(r.json()["value"], 61);
}

#[test]
fn bad_chunks_get_specific_errors_and_lose_nothing() {
    let dir = temp_dir("store-errors");
    let host = start(&dir);
    let url = |p: &str| host.url(&format!("/a/store{p}"));
    let full = data(CHUNK, 1);

    assert_eq!(send("PUT", &url("/blob/doc/0"), &[], &full).status, 200);
    // Same index, other bytes: conflict, first version kept.
    let r = send("PUT", &url("/blob/doc/0"), &[], &data(CHUNK, 2));
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"], "conflict");
    // Oversized chunk, bad index, path escape.
    let r = send("PUT", &url("/blob/doc/1"), &[], &data(CHUNK + 1, 3));
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid"))
    );
    assert_eq!(send("PUT", &url("/blob/doc/x"), &[], b"a").status, 400);
    assert_eq!(send("PUT", &url("/blob/d..%2F/0"), &[], b"a").status, 400);
    // Finishing with a hole: refused, resumable.
    assert_eq!(send("PUT", &url("/blob/doc/2"), &[], b"tail").status, 200);
    let r = send("POST", &url("/blob/doc/finish"), &[], b"");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("chunk 1 is missing"), "{}", r.text());
    let middle = data(CHUNK, 4);
    assert_eq!(send("PUT", &url("/blob/doc/1"), &[], &middle).status, 200);
    let r = send("POST", &url("/blob/doc/finish"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = get(&url("/blob/doc")).body;
    assert!(body == [full.clone(), middle, b"tail".to_vec()].concat());
    // After completion the blob is immutable.
    assert_eq!(send("PUT", &url("/blob/doc/0"), &[], &full).status, 409);
    // Unknown blob, bad range, bad journal position.
    assert_eq!(get(&url("/blob/nothing")).status, 404);
    assert_eq!(get(&url("/blob/doc?range=5-999999999")).status, 400);
    assert_eq!(get(&url("/journal/j?after=abc")).status, 400);
    // Delete, then the stale upload of another blob is reclaimed.
    assert_eq!(send("DELETE", &url("/blob/doc"), &[], b"").status, 200);
    assert_eq!(get(&url("/blob/doc")).status, 404);
    assert_eq!(
        send("PUT", &url("/blob/abandoned/0"), &[], b"x").status,
        200
    );
    let r = send("POST", &url("/reclaim?max_age=0"), &[], b"");
    assert_eq!(r.status, 200);
    // max_age=0 reclaims uploads begun strictly earlier than now; allow a
    // second for the clock to move.
    let mut reclaimed = r.json()["reclaimed"].clone();
    if reclaimed.as_array().unwrap().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        reclaimed = send("POST", &url("/reclaim?max_age=0"), &[], b"").json()["reclaimed"].clone();
    }
    assert_eq!(reclaimed, serde_json::json!(["abandoned"]));
    assert_eq!(
        send("POST", &url("/blob/abandoned/finish"), &[], b"").status,
        404
    );
}
