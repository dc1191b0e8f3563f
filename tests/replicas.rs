//! Three replicas of the app on one Redis, the shape of a SpinKube
//! deployment: key-value label `default` on Redis through
//! `--runtime-config-file` (Spin's format), the store on the same Redis
//! through `store_redis_url`, and a round-robin balancer in front for the
//! calls the app makes to itself (push, pull). Every protocol is driven
//! across replicas at once, then a replica is killed (SIGKILL) in the middle
//! of an ingest job and of a compute job: another replica finishes each
//! after its lease, and nothing is lost, duplicated or reordered.

mod common;

use common::redis::RedisServer;
use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "upload-key-0123456789";
const INGEST_KEY: &str = "ingest-key-9876543210";
const ORG: &str = "REPLICAS@AdobeOrg";
const REPLICAS: usize = 3;

/// Requests sent, and those answered 5xx, over the whole test.
static SENT: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

fn call(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    SENT.fetch_add(1, Ordering::SeqCst);
    let r = send(method, url, headers, body);
    if r.status >= 500 {
        FAILED.fetch_add(1, Ordering::SeqCst);
        eprintln!("{method} {url}: {} {}", r.status, r.text());
    }
    r
}

// ---- a TCP round-robin balancer -------------------------------------------

/// Round-robin over the replicas that accept a connection (a dead one is
/// skipped, as a Kubernetes Service drops a failed pod). Requests whose
/// first line contains `/download` are held `download_delay` first, so an
/// ingest job is slow enough to be interrupted. Records which replica took
/// each connection's first request line.
struct Balancer {
    port: u16,
    seen: Arc<Mutex<Vec<(usize, String)>>>,
}

fn balancer(backends: Vec<u16>, download_delay: Duration) -> Balancer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let next = AtomicUsize::new(0);
        for client in listener.incoming().map_while(Result::ok) {
            let Some((i, upstream)) = (0..backends.len()).find_map(|_| {
                let i = next.fetch_add(1, Ordering::SeqCst) % backends.len();
                TcpStream::connect(("127.0.0.1", backends[i]))
                    .ok()
                    .map(|s| (i, s))
            }) else {
                continue;
            };
            let log = log.clone();
            std::thread::spawn(move || relay(client, upstream, i, log, download_delay));
        }
    });
    Balancer { port, seen }
}

fn relay(
    mut client: TcpStream,
    mut upstream: TcpStream,
    backend: usize,
    log: Arc<Mutex<Vec<(usize, String)>>>,
    download_delay: Duration,
) {
    let mut first = vec![0u8; 4096];
    let n = client.read(&mut first).unwrap_or(0);
    let line = String::from_utf8_lossy(&first[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    if line.contains("/download") {
        std::thread::sleep(download_delay);
    }
    log.lock().unwrap().push((backend, line));
    if upstream.write_all(&first[..n]).is_err() {
        return;
    }
    let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}

// ---- the cluster -------------------------------------------------------------

/// Serves `GET /files/{name}` (1.5 s late for `slow-…`), records `PUT
/// /put/{name}`.
#[derive(Default)]
struct Bucket {
    files: HashMap<String, Vec<u8>>,
    puts: Vec<String>,
}

struct Cluster {
    _redis: RedisServer,
    hosts: Vec<Option<Host>>,
    lb: Balancer,
    bucket: Arc<Mutex<Bucket>>,
    compute: (String, String),
}

impl Cluster {
    fn host(&self, i: usize) -> &Host {
        self.hosts[i % REPLICAS]
            .as_ref()
            .expect("a replica that is still running")
    }

    fn alive(&self) -> Vec<usize> {
        (0..REPLICAS).filter(|&i| self.hosts[i].is_some()).collect()
    }

    fn lb_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.lb.port)
    }

    /// SIGKILL: no shutdown, no cleanup, as when a node dies.
    fn kill(&mut self, i: usize) {
        let host = self.hosts[i].take().unwrap();
        std::process::Command::new("kill")
            .args(["-KILL", &host.pid().to_string()])
            .status()
            .unwrap();
        drop(host);
    }
}

fn start_cluster(name: &str) -> Cluster {
    let redis = RedisServer::start();
    let dir = temp_dir(name);
    let runtime_config = dir.join("runtime-config.toml");
    std::fs::write(
        &runtime_config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            redis.url(0)
        ),
    )
    .unwrap();
    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    let lb = balancer(ports.clone(), Duration::from_millis(700));
    let lb_url = format!("http://127.0.0.1:{}", lb.port);

    let bucket = Arc::new(Mutex::new(Bucket::default()));
    let state = bucket.clone();
    let bucket_port = http_server(move |req| {
        let octets = "application/octet-stream";
        let name = req
            .path
            .splitn(3, '/')
            .nth(2)
            .unwrap_or_default()
            .to_string();
        match (req.method.as_str(), req.segments().first().copied()) {
            ("GET", Some("files")) => {
                if name.starts_with("slow-") {
                    std::thread::sleep(Duration::from_millis(1500));
                }
                match state.lock().unwrap().files.get(&name) {
                    Some(b) => (200, octets, b.clone()),
                    None => (404, octets, Vec::new()),
                }
            }
            ("PUT", Some("put")) => {
                state.lock().unwrap().puts.push(name);
                (200, octets, Vec::new())
            }
            _ => (404, octets, Vec::new()),
        }
    });
    let (token, entry) = compute_client("replicas", "key-replicas", ORG, None);
    let users = json!([
        {"user": "lab", "password": password_hash("lab-pw", 2000), "repositories": {"23": "uploader"}},
    ]);
    let dirs: Vec<PathBuf> = (0..REPLICAS)
        .map(|i| dir.join(format!("replica-{i}")))
        .collect();
    let hosts = (0..REPLICAS)
        .map(|i| {
            std::fs::create_dir_all(&dirs[i]).unwrap();
            HostConfig::new("spin.toml", &dirs[i])
                .listen(ports[i])
                .arg("--runtime-config-file")
                .arg(runtime_config.to_str().unwrap())
                .redis_store(&redis.url(0), &redis.host())
                .var("blob_chunk_size", "65536")
                .var("upload_api_key", KEY)
                .var("upload_public_url", &lb_url)
                .var("upload_push_url", &lb_url)
                .var("upload_push_host", &lb_url)
                .var("upload_push_key", INGEST_KEY)
                .var("ingest_api_key", INGEST_KEY)
                .var("ingest_allowed_base_urls", &lb_url)
                .var("ingest_outbound_host", &lb_url)
                .var("ingest_lease_secs", "3")
                .var("ingest_retry_base_secs", "1")
                .var("epifiles_users", &users.to_string())
                .var("compute_clients", &json!([entry]).to_string())
                .var(
                    "compute_allowed_http_hosts",
                    &format!("127.0.0.1:{bucket_port}"),
                )
                .var(
                    "compute_http_host",
                    &format!("http://127.0.0.1:{bucket_port}"),
                )
                .var("compute_lease_secs", "5")
                .start()
        })
        .map(Some)
        .collect();
    Cluster {
        _redis: redis,
        hosts,
        lb,
        bucket,
        compute: (token, format!("http://127.0.0.1:{bucket_port}")),
    }
}

// ---- protocol helpers --------------------------------------------------------

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + i / 251) as u8).wrapping_add(seed))
        .collect()
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

fn bearer() -> String {
    format!("Bearer {KEY}")
}

fn upload(host: &Host, bytes: &[u8], name: &str) -> String {
    let auth = bearer();
    let r = call(
        "POST",
        &host.url("/assets"),
        &[
            ("authorization", &auth),
            ("content-type", "application/octet-stream"),
            ("x-filename", name),
        ],
        bytes,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

fn commit(host: &Host, assets: &[String]) -> Value {
    let auth = bearer();
    let body = json!({"assets": assets, "publisher": "replicas"});
    let r = call(
        "POST",
        &host.url("/commits"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// Polls the job on the live replicas in turn until it is done.
fn wait_job(c: &Cluster, id: &str, secs: u64) -> Value {
    let auth = format!("ApiKey {INGEST_KEY}");
    let alive = c.alive();
    let mut n = 0;
    let mut last = String::new();
    wait_for(secs, || {
        n += 1;
        let host = c.host(alive[n % alive.len()]);
        let r = call(
            "GET",
            &host.url(&format!("/api/v1/upload/jobs/{id}")),
            &[("authorization", &auth)],
            &[],
        );
        last = r.text();
        (r.status == 200 && r.json()["status"] == "done").then(|| r.json())
    })
    .unwrap_or_else(|| panic!("job {id} not done: {last}"))
}

/// Every asset of a done job stored once, with the uploaded bytes; the
/// number of assets that are missing and duplicated.
fn check_ingested(c: &Cluster, job: &Value, originals: &[Vec<u8>]) -> (usize, usize) {
    let assets = job["assets"].as_array().unwrap();
    let mut local: Vec<&str> = assets
        .iter()
        .filter_map(|a| a["local_id"].as_str())
        .collect();
    let missing = originals.len().saturating_sub(local.len());
    local.sort_unstable();
    local.dedup();
    let duplicated = assets.len() - local.len() + assets.len().saturating_sub(originals.len());
    let auth = bearer();
    let alive = c.alive();
    for (i, a) in assets.iter().enumerate() {
        assert_eq!(a["state"], "stored", "{a}");
        let r = call(
            "GET",
            &c.host(alive[i % alive.len()]).url(&format!(
                "/assets/{}/download",
                a["local_id"].as_str().unwrap()
            )),
            &[("authorization", &auth)],
            &[],
        );
        assert_eq!(r.status, 200);
        assert!(
            originals.contains(&r.body),
            "ingested bytes differ from every upload"
        );
    }
    (missing, duplicated)
}

fn epifiles_auth() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("lab:lab-pw")
    )
}

fn tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    assetgate_web::query::form_encode(pairs).into_bytes()
}

/// A ManifestFile whose chunk `i` goes to replica `i + offset`; its id.
fn epifiles_upload(c: &Cluster, bytes: &[u8], chunk: usize, offset: usize) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let auth = epifiles_auth();
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let chunks: Vec<&[u8]> = bytes.chunks(chunk).collect();
    let total = chunks.len().to_string();
    let (first, hash, file_hash) = (b64(chunks[0]), md5_hex(chunks[0]), md5_hex(bytes));
    let r = call(
        "POST",
        &c.host(offset).url("/epifiles/ws/manifestfile"),
        &headers,
        &form(&[
            ("content", &first),
            ("hash", &hash),
            ("filename", "replicated.bin"),
            ("total_chunks", &total),
            ("file_hash", &file_hash),
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    if chunks.len() == 1 {
        return tag(&r.text(), "id").expect("a one-chunk file is complete at once");
    }
    let pid = tag(&r.text(), "process_id").unwrap();
    let mut id = None;
    for (i, part) in chunks.iter().enumerate().skip(1) {
        let r = call(
            "PUT",
            &c.host(i + offset)
                .url(&format!("/epifiles/ws/manifestfile/{pid}")),
            &headers,
            &form(&[
                ("content", &b64(part)),
                ("hash", &md5_hex(part)),
                ("chunk_index", &i.to_string()),
            ]),
        );
        assert_eq!(r.status, 200, "chunk {i}: {}", r.text());
        id = tag(&r.text(), "id");
    }
    id.expect("the last chunk completes the file")
}

/// The ManifestFile's bytes, read back chunk by chunk from `host`.
fn epifiles_download(host: &Host, id: &str) -> Vec<u8> {
    use base64::Engine;
    let auth = epifiles_auth();
    let mut out = Vec::new();
    let mut index = 0;
    loop {
        let r = call(
            "GET",
            &host.url(&format!(
                "/epifiles/ws/manifestfile/{id}?chunk_index={index}"
            )),
            &[("authorization", &auth)],
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        out.extend(
            base64::engine::general_purpose::STANDARD
                .decode(tag(&text, "content").unwrap())
                .unwrap(),
        );
        index += 1;
        if index
            >= tag(&text, "total_chunks")
                .unwrap()
                .parse::<usize>()
                .unwrap()
        {
            return out;
        }
    }
}

fn compute_call(c: &Cluster, method: &str, url: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {}", c.compute.0);
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    call(
        method,
        url,
        &[
            ("authorization", &auth),
            ("x-api-key", "key-replicas"),
            ("x-gw-ims-org-id", ORG),
            ("content-type", "application/json"),
        ],
        &bytes,
    )
}

/// Reads the journal from the start, on the live replicas in turn (each
/// `Link` is followed on the next replica), until `n` events arrived.
fn journal_events(c: &Cluster, journal_path: &str, n: usize, secs: u64) -> Vec<Value> {
    let alive = c.alive();
    let mut turn = 0;
    follow_journal(format!("{journal_path}?since=0"), n, secs, |url| {
        turn += 1;
        let path = &url[url.find("/journal").expect("a journal link")..];
        compute_call(
            c,
            "GET",
            &c.host(alive[turn % alive.len()]).url(path),
            &Value::Null,
        )
    })
}

/// Rendition names of `events`: (missing, duplicated) against `expected`,
/// and whether every event is a `rendition_created`.
fn tally(events: &[Value], expected: &[String]) -> (usize, usize) {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for e in events {
        assert_eq!(e["type"], "rendition_created", "{e}");
        *count
            .entry(e["rendition"]["name"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let missing = expected.iter().filter(|n| !count.contains_key(*n)).count();
    let duplicated = count.values().map(|n| n - 1).sum::<usize>();
    (missing, duplicated)
}

// ---- the test ----------------------------------------------------------------

#[test]
fn three_replicas_on_one_redis_share_every_protocol_and_survive_a_killed_replica() {
    let started = Instant::now();
    let mut c = start_cluster("replicas");
    let lb = c.lb_url();
    let (mut missing, mut duplicated) = (0usize, 0usize);

    // Phraseanet: concurrent uploads spread over the replicas, commits on
    // yet other replicas, each pushed (through the balancer) to an ingest
    // side that pulls the assets back through the balancer.
    let files: Vec<Vec<u8>> = (0..9).map(|i| data(150_000 + i * 1000, i as u8)).collect();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let c = &c;
                s.spawn(move || upload(c.host(i), f, &format!("f{i}.bin")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let commits: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .chunks(3)
            .enumerate()
            .map(|(i, batch)| {
                let c = &c;
                s.spawn(move || commit(c.host(i + 1), batch))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, cm) in commits.iter().enumerate() {
        let job = wait_job(&c, &ingest_job_id(&lb, cm), 90);
        let (m, d) = check_ingested(&c, &job, &files[i * 3..i * 3 + 3]);
        missing += m;
        duplicated += d;
    }

    // EpiFiles: two files at once, chunks alternating between replicas;
    // each read back from a replica that saw none of its chunks first.
    let big: Vec<Vec<u8>> = (0..2).map(|i| data(10 * 4096 + 77, 40 + i)).collect();
    let epi_ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = big
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let c = &c;
                s.spawn(move || epifiles_upload(c, b, 4096, i))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, id) in epi_ids.iter().enumerate() {
        assert!(
            epifiles_download(c.host(i + 2), id) == big[i],
            "file {i} differs"
        );
    }

    // Preview: one source, the same rendition asked on every replica at
    // once (racing on one cache entry): one answer, the same bytes.
    let source = epifiles_upload(&c, &jpeg(1200, 800), 1 << 20, 0);
    let logon = call(
        "POST",
        &c.host(1).url("/proxy/logon"),
        &[("content-type", "application/x-www-form-urlencoded")],
        b"user=lab&password=lab-pw&ww-app=replicas",
    );
    assert_eq!(logon.status, 200, "{}", logon.text());
    let ticket = logon.json()["ticket"].as_str().unwrap().to_string();
    let previews: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (c, ticket, source) = (&c, &ticket, &source);
                s.spawn(move || {
                    let url = c.host(i).url(&format!(
                        "/proxy?ww-app=replicas&objectid={source}&rendition=preview&preview-args=maxWidth_300.jpg"
                    ));
                    call(
                        "GET",
                        &url,
                        &[("authorization", &format!("Bearer {ticket}"))],
                        &[],
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for p in &previews {
        assert_eq!(p.status, 200, "{}", p.text());
        assert_eq!(p.header("etag"), previews[0].header("etag"));
        assert!(
            p.body == previews[0].body,
            "racing renders answered different bytes"
        );
    }

    // Asset Compute: register on one replica, process on another, read
    // the journal on all of them in turn.
    c.bucket
        .lock()
        .unwrap()
        .files
        .insert("src.jpg".into(), jpeg(800, 600));
    c.bucket
        .lock()
        .unwrap()
        .files
        .insert("slow-src.jpg".into(), jpeg(900, 600));
    let reg = compute_call(&c, "POST", &c.host(0).url("/register"), &Value::Null);
    assert_eq!(reg.status, 200, "{}", reg.text());
    let journal = reg.json()["journal"].as_str().unwrap().to_string();
    let journal_path = journal[journal.find("/journal").unwrap()..].to_string();
    let bucket = c.compute.1.clone();
    let renditions = |prefix: &str, source: &str, n: usize| {
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}.jpg")).collect();
        let body = json!({
            "source": format!("{bucket}/files/{source}"),
            "renditions": names.iter().map(|n| json!({
                "name": n, "fmt": "jpg", "width": 120,
                "target": format!("{bucket}/put/{n}"),
            })).collect::<Vec<_>>(),
        });
        (names, body)
    };
    let (first_names, body) = renditions("a", "src.jpg", 2);
    let r = compute_call(&c, "POST", &c.host(1).url("/process"), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let events = journal_events(&c, &journal_path, 2, 60);
    let (m, d) = tally(&events, &first_names);
    missing += m;
    duplicated += d;

    // Kill a replica in the middle of an ingest job: the balancer holds
    // each download 0.7 s, so six assets take four seconds; the replica
    // that took the push is killed after the first download.
    let slow: Vec<Vec<u8>> = (0..6).map(|i| data(50_000 + i, 90 + i as u8)).collect();
    let slow_ids: Vec<String> = slow
        .iter()
        .enumerate()
        .map(|(i, f)| upload(c.host(i), f, &format!("s{i}.bin")))
        .collect();
    let before = c.lb.seen.lock().unwrap().len();
    let cm = commit(c.host(0), &slow_ids);
    let worker = wait_for(30, || {
        let seen = c.lb.seen.lock().unwrap();
        let enqueued = seen[before..]
            .iter()
            .find(|(_, line)| line.contains("/api/v1/upload/enqueue"))
            .map(|(i, _)| *i)?;
        let downloading = seen[before..]
            .iter()
            .any(|(_, line)| line.contains("/download"));
        downloading.then_some(enqueued)
    })
    .expect("the push reached an ingest side that started pulling");
    c.kill(worker);
    eprintln!("killed replica {worker} in the middle of ingest job");
    let job = wait_job(&c, &ingest_job_id(&lb, &cm), 120);
    let (m, d) = check_ingested(&c, &job, &slow);
    missing += m;
    duplicated += d;

    // Kill a replica in the middle of a compute job: the source takes
    // 1.5 s to arrive; the replica is killed while it waits.
    let victim = c.alive()[0];
    let (names, body) = renditions("b", "slow-src.jpg", 3);
    let r = compute_call(&c, "POST", &c.host(victim).url("/process"), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    std::thread::sleep(Duration::from_millis(500));
    c.kill(victim);
    eprintln!("killed replica {victim} in the middle of a compute job");
    let all = journal_events(&c, &journal_path, 5, 90);
    assert_eq!(all[..2], events[..], "the journal kept its order");
    let (m, d) = tally(&all[2..], &names);
    missing += m;
    duplicated += d;
    // Nothing more arrives (a duplicate would come late).
    std::thread::sleep(Duration::from_secs(2));
    let again = journal_events(&c, &journal_path, 5, 10);
    assert_eq!(again.len(), 5, "late duplicate events: {again:?}");
    let delivered = c.bucket.lock().unwrap().puts.len();

    let sent = SENT.load(Ordering::SeqCst);
    let failed = FAILED.load(Ordering::SeqCst);
    println!(
        "replicas: {REPLICAS} on one Redis, {sent} requests, {failed} failures, \
         {duplicated} duplicates, {missing} missing ({delivered} renditions delivered, \
         two replicas killed mid-job), {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(failed, 0, "requests answered 5xx");
    assert_eq!(duplicated, 0, "duplicated assets or events");
    assert_eq!(missing, 0, "missing assets or events");
}
