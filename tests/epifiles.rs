//! The EpiFiles web services end to end: the real `epifiles` component on
//! the in-repo host, driven over HTTP by `scripts/epifiles-client` (the
//! Splitter/Merger role) and by hand-built requests for the failures.

mod common;

use base64::Engine;
use common::*;
use md5::Digest;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// A password with every character RFC 3986 reserves in userinfo.
const LAB_PASSWORD: &str = "p@ss:w/rd?#=";

fn md5_hex(b: &[u8]) -> String {
    hex::encode(md5::Md5::digest(b))
}

fn client() -> Command {
    let mut c = Command::new("python3");
    c.arg(root().join("scripts/epifiles-client"));
    c
}

fn users() -> String {
    serde_json::json!([
        {"user": "lab", "password": password_hash(LAB_PASSWORD, 5000), "email": "lab@example.org", "repositories": {"23": "uploader"}},
        {"user": "multi", "password": password_hash("multi-pw", 5000), "repositories": {"23": "uploader", "24": "uploader"}},
        {"user": "boss", "password": password_hash("boss-pw", 5000), "email": "boss@example.org", "repositories": {"23": "manager"}},
    ])
    .to_string()
}

fn start(dir: &Path, extra: &[(&str, &str)]) -> Host {
    let mut cfg = HostConfig::new(root().join("spin.toml"), dir)
        .var("epifiles_users", &users())
        .var("epifiles_admin_token", "admin-token-0123456789");
    for (k, v) in extra {
        cfg = cfg.var(k, v);
    }
    cfg.start()
}

/// `http://user:password@host:port`, percent-encoded as RFC 3986 asks.
fn url_with(host: &Host, user: &str, password: &str) -> String {
    let enc = assetgate_web::query::percent_encode;
    host.url("")
        .replacen(
            "http://",
            &format!("http://{}:{}@", enc(user), enc(password)),
            1,
        )
        .trim_end_matches('/')
        .to_string()
}

/// Runs `scripts/epifiles-client` with `args`; its JSON answer.
fn epifiles(args: &[&str]) -> serde_json::Value {
    let out = client().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", B64.encode(format!("{user}:{password}")))
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    assetgate_web::query::form_encode(pairs).into_bytes()
}

fn call(host: &Host, method: &str, path: &str, auth: &str, pairs: &[(&str, &str)]) -> Reply {
    validated(send(
        method,
        &host.url(path),
        &[
            ("authorization", auth),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        &form(pairs),
    ))
}

/// An answer of the EpiFiles web services: XML, valid against
/// docs/epifiles.xsd, whatever its status.
fn validated(r: Reply) -> Reply {
    let text = r.text();
    assert_eq!(
        r.header("content-type"),
        Some("text/xml; charset=utf-8"),
        "{} {text}",
        r.status
    );
    xsd::check_epifiles(&text);
    r
}

/// The text of the first `<tag>`.
fn tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

fn expect_failure(r: &Reply, status: u16, code: &str) {
    let text = r.text();
    assert_eq!(r.status, status, "{text}");
    assert_eq!(tag(&text, "status").as_deref(), Some("failed"), "{text}");
    assert_eq!(tag(&text, "code").as_deref(), Some(code), "{text}");
}

fn random_file(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(path, &data).unwrap();
    data
}

#[test]
fn client_uploads_and_downloads_byte_for_byte() {
    let dir = temp_dir("epifiles-client");
    let host = start(&dir, &[]);
    let lab = url_with(&host, "lab", LAB_PASSWORD);
    let boss = url_with(&host, "boss", "boss-pw");

    // Multi-chunk (5 MiB + a bit, in 1 MiB base64 chunks).
    let src = dir.join("scan.tif");
    let data = random_file(&src, 5 * 1024 * 1024 + 12345, 7);
    let up = epifiles(&[
        "upload",
        &lab,
        src.to_str().unwrap(),
        "--comment",
        "Analyses du 15/07/13",
    ]);
    let up_id = up["id"].as_str().unwrap().to_string();
    assert_eq!(up["chunks"], 6);
    assert_eq!(up["md5"], md5_hex(&data));
    let out = dir.join("back.tif");
    let down = epifiles(&["download", &boss, up_id.as_str(), out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), data, "byte for byte");
    assert_eq!(down["md5"], md5_hex(&data));
    assert_eq!(down["filename"], "scan.tif");

    // Single chunk: created at once.
    let small = dir.join("analyses.xml");
    std::fs::write(&small, b"<?xml version=\"1.0\"?><analyses/>").unwrap();
    let one = epifiles(&["upload", &lab, small.to_str().unwrap()]);
    assert_eq!(one["chunks"], 1);

    // Raw chunks (no base64), 2 MiB each.
    let raw = epifiles(&[
        "upload",
        &lab,
        src.to_str().unwrap(),
        "--raw",
        "--chunk-size",
        "2097152",
    ]);
    assert_eq!(raw["chunks"], 3);
    let out2 = dir.join("back2.tif");
    epifiles(&[
        "download",
        &boss,
        raw["id"].as_str().unwrap(),
        out2.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out2).unwrap(), data);

    // The manifests, as XML, with their files; a manager downloaded the
    // first file in full, so that manifest is complete.
    let r = call(
        &host,
        "GET",
        "/epifiles/ws/manifest",
        &basic("boss", "boss-pw"),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/xml; charset=utf-8"));
    let text = r.text();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rest generator=\"assetgate\" version=\"1.0\"><response><manifest>"), "{text}");
    assert!(text.ends_with("<status>success</status></rest>\n"));
    assert_eq!(text.matches("<manifest>").count(), 3);
    assert_eq!(
        tag(&text, "comment").as_deref(),
        Some("Analyses du 15/07/13")
    );
    assert_eq!(tag(&text, "manifest_status").as_deref(), Some("2"));
    // What the client read, read here too so that docs/epifiles.xsd checks
    // it (as the uploader: its reads mark nothing downloaded).
    let manifest = tag(&text, "id").unwrap();
    for path in [
        format!("/epifiles/ws/manifest/{manifest}"),
        format!("/epifiles/ws/manifestfile?id_manifest={manifest}"),
        "/epifiles/ws/manifestfile".to_string(),
        format!("/epifiles/ws/manifestfile/{up_id}?chunk_index=5"),
        format!("/epifiles/ws/manifestfile?id={up_id}&chunk_index=1"),
    ] {
        let r = call(&host, "GET", &path, &basic("lab", LAB_PASSWORD), &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }

    // Stored durably: a restart serves the same bytes.
    host.stop();
    let host = start(&dir, &[]);
    let out3 = dir.join("back3.tif");
    epifiles(&[
        "download",
        &url_with(&host, "boss", "boss-pw"),
        up_id.as_str(),
        out3.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out3).unwrap(), data);
}

#[test]
fn bad_chunks_are_refused_and_the_upload_resumes() {
    let dir = temp_dir("epifiles-errors");
    let host = start(&dir, &[]);
    let lab = basic("lab", LAB_PASSWORD);
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
    let chunks: Vec<&[u8]> = data.chunks(1024).collect();
    let (c, h) = (
        |i: usize| B64.encode(chunks[i]),
        |i: usize| md5_hex(chunks[i]),
    );

    // Credentials.
    let r = call(
        &host,
        "GET",
        "/epifiles/ws/manifest",
        &basic("lab", "nope"),
        &[],
    );
    expect_failure(&r, 401, "unauthorized");
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    expect_failure(
        &call(&host, "GET", "/epifiles/ws/manifest", "", &[]),
        401,
        "unauthorized",
    );
    // Percent-encoded credentials in the header are accepted too.
    let r = call(
        &host,
        "GET",
        "/epifiles/ws/manifest",
        &basic("lab", "p%40ss%3Aw%2Frd%3F%23%3D"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Repository ambiguity.
    let first = [
        ("content", c(0)),
        ("hash", h(0)),
        ("filename", "x.bin".into()),
        ("total_chunks", "3".into()),
        ("file_hash", md5_hex(&data)),
    ];
    let first: Vec<(&str, &str)> = first.iter().map(|(k, v)| (*k, v.as_str())).collect();
    expect_failure(
        &call(
            &host,
            "POST",
            "/epifiles/ws/manifestfile",
            &basic("multi", "multi-pw"),
            &first,
        ),
        400,
        "ambiguous_repository",
    );

    let r = call(&host, "POST", "/epifiles/ws/manifestfile", &lab, &first);
    assert_eq!(r.status, 200, "{}", r.text());
    let pid = tag(&r.text(), "process_id").unwrap();
    let path = format!("/epifiles/ws/manifestfile/{pid}");
    let put = |content: &str, hash: &str, index: &str| {
        call(
            &host,
            "PUT",
            &path,
            &lab,
            &[("content", content), ("hash", hash), ("chunk_index", index)],
        )
    };
    expect_failure(&put(&c(2), &h(1), "2"), 400, "chunk_hash_mismatch");
    expect_failure(&put(&c(2)[..c(2).len() - 2], &h(2), "2"), 400, "bad_base64");
    expect_failure(&put(&c(2), &h(2), "9"), 400, "chunk_index_out_of_range");
    // Out of order, then repeated: accepted, same process id.
    for _ in 0..2 {
        let r = put(&c(2), &h(2), "2");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(tag(&r.text(), "process_id").as_deref(), Some(pid.as_str()));
        assert_eq!(tag(&r.text(), "received_chunks").as_deref(), Some("2"));
    }
    let r = put(&c(1), &h(1), "1");
    assert_eq!(r.status, 200, "{}", r.text());
    let id = tag(&r.text(), "id").unwrap();
    // After completion: a resend answers the file, anything else is refused.
    let r = put(&c(1), &h(1), "1");
    assert_eq!(tag(&r.text(), "id"), Some(id.clone()), "{}", r.text());
    expect_failure(&put(&c(1), &h(1), "0"), 409, "upload_complete");
    expect_failure(
        &call(
            &host,
            "PUT",
            &path,
            &lab,
            &[("content", &c(0)), ("hash", &h(0))],
        ),
        409,
        "upload_complete",
    );

    // Download reassembled by hand, chunk by chunk.
    let mut got = Vec::new();
    let r = call(
        &host,
        "GET",
        &format!("/epifiles/ws/manifestfile/{id}?chunk_index=0"),
        &basic("boss", "boss-pw"),
        &[],
    );
    let text = r.text();
    for t in [
        "id",
        "id_manifest",
        "purge_date",
        "downloaded_by_mg",
        "content_type",
        "file_hash",
        "size",
        "filename",
        "content",
        "hash",
        "chunk_index",
        "total_chunks",
    ] {
        assert!(tag(&text, t).is_some(), "<{t}> missing: {text}");
    }
    got.extend(B64.decode(tag(&text, "content").unwrap()).unwrap());
    assert_eq!(got, data);
    assert_eq!(tag(&text, "file_hash").unwrap(), md5_hex(&data));

    // Methods and unknown paths.
    let r = call(&host, "DELETE", "/epifiles/ws/manifestfile", &lab, &[]);
    expect_failure(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, POST"));
    expect_failure(
        &call(&host, "GET", "/epifiles/ws/nothing", &lab, &[]),
        404,
        "not_found",
    );
    // Oversized request body: refused before reading it all.
    let host2_dir = temp_dir("epifiles-limits");
    let small = start(&host2_dir, &[("epifiles_max_chunk_size", "1024")]);
    let big = B64.encode(vec![7u8; 8192]);
    let hash = md5_hex(&[7u8; 8192]);
    let r = call(
        &small,
        "POST",
        "/epifiles/ws/manifestfile",
        &lab,
        &[
            ("content", &big),
            ("hash", &hash),
            ("filename", "b"),
            ("total_chunks", "1"),
        ],
    );
    assert_eq!(r.status, 413, "{}", r.text());
}

#[test]
fn concurrent_senders_cannot_corrupt_or_duplicate_a_file() {
    let dir = temp_dir("epifiles-concurrent");
    let host = start(&dir, &[]);
    let lab = basic("lab", LAB_PASSWORD);
    let data = random_file(&dir.join("src"), 40 * 4096 + 100, 3);
    let chunks: Vec<Vec<u8>> = data.chunks(4096).map(|c| c.to_vec()).collect();
    let total = chunks.len().to_string();
    let r = call(
        &host,
        "POST",
        "/epifiles/ws/manifestfile",
        &lab,
        &[
            ("content", &B64.encode(&chunks[0])),
            ("hash", &md5_hex(&chunks[0])),
            ("filename", "c.bin"),
            ("total_chunks", &total),
        ],
    );
    let pid = tag(&r.text(), "process_id").unwrap();
    // Three clients send every chunk, in different orders, at once.
    let ids = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let (chunks, url, lab, ids) = (
                chunks.clone(),
                host.url(&format!("/epifiles/ws/manifestfile/{pid}")),
                lab.clone(),
                ids.clone(),
            );
            std::thread::spawn(move || {
                let mut order: Vec<usize> = (1..chunks.len()).collect();
                if t == 1 {
                    order.reverse();
                }
                if t == 2 {
                    order.sort_by_key(|i| (i * 7919) % 41);
                }
                for i in order {
                    let body = form(&[
                        ("content", &B64.encode(&chunks[i])),
                        ("hash", &md5_hex(&chunks[i])),
                        ("chunk_index", &i.to_string()),
                    ]);
                    let r = validated(send(
                        "PUT",
                        &url,
                        &[
                            ("authorization", &lab),
                            ("content-type", "application/x-www-form-urlencoded"),
                        ],
                        &body,
                    ));
                    assert_eq!(r.status, 200, "{}", r.text());
                    if let Some(id) = tag(&r.text(), "id_manifest") {
                        ids.lock()
                            .unwrap()
                            .push(tag(&r.text(), "id").unwrap().to_string() + "/" + &id);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let ids = ids.lock().unwrap().clone();
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|i| *i == ids[0]), "one file: {ids:?}");
    let files = call(
        &host,
        "GET",
        "/epifiles/ws/manifestfile",
        &basic("boss", "boss-pw"),
        &[],
    )
    .text();
    assert_eq!(files.matches("<manifest_file>").count(), 1, "{files}");
    let id = ids[0].split('/').next().unwrap().to_string();
    let out = dir.join("out");
    epifiles(&[
        "download",
        &url_with(&host, "boss", "boss-pw"),
        &id,
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

/// What the webhook received: `Authorization` and the JSON body.
type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A webhook that records what it is sent.
fn webhook() -> (u16, Received) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let port = http_server(move |req| {
        if let Ok(v) = serde_json::from_slice(&req.body) {
            let auth = req.header("authorization").unwrap_or_default().to_string();
            sink.lock().unwrap().push((auth, v));
        }
        (204, "text/plain", Vec::new())
    });
    (port, got)
}

#[test]
fn archive_notifies_through_the_outbox_and_the_webhook() {
    let (port, got) = webhook();
    let dir = temp_dir("epifiles-notify");
    let hook = format!("http://127.0.0.1:{port}");
    let host = start(
        &dir,
        &[
            ("epifiles_notify_url", &format!("{hook}/hook")),
            ("epifiles_notify_host", &hook),
            ("epifiles_notify_key", "hook-key"),
        ],
    );
    let lab = basic("lab", LAB_PASSWORD);
    let r = call(
        &host,
        "POST",
        "/epifiles/ws/manifestfile",
        &lab,
        &[
            ("content", &B64.encode(b"hello")),
            ("hash", &md5_hex(b"hello")),
            ("filename", "h.txt"),
            ("total_chunks", "1"),
            ("comment", "greetings"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let manifest = tag(&r.text(), "id_manifest").unwrap();
    let message =
        "Reçu, merci. Les résultats seront intégrés dans le rapport hebdomadaire du laboratoire.";
    let r = call(
        &host,
        "PUT",
        &format!("/epifiles/ws/manifest/{manifest}"),
        &basic("boss", "boss-pw"),
        &[
            ("archived", "1"),
            ("notify", "1"),
            ("notify_message", &B64.encode(message)),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<status>success</status>"));
    let delivered = wait_for(20, || {
        let g = got.lock().unwrap();
        (g.len() >= 2).then(|| g.clone())
    })
    .expect("both notifications reach the webhook");
    // Two instances may deliver at once (each delivers what is due after
    // answering), so arrival order is not guaranteed: sort by event.
    let mut delivered = delivered;
    delivered.sort_by_key(|d| d.1["event"] != "deposit");
    assert!(delivered.iter().all(|d| d.0 == "Bearer hook-key"));
    assert_eq!(delivered[0].1["event"], "deposit");
    assert_eq!(delivered[1].1["event"], "archive");
    assert_eq!(
        delivered[1].1["subject"],
        message.chars().take(74).collect::<String>()
    );
    assert_eq!(delivered[1].1["recipients"][0]["email"], "lab@example.org");
    // The archived manifest is no longer listed; the outbox says delivered.
    let list = call(&host, "GET", "/epifiles/ws/manifest", &lab, &[]).text();
    assert!(!list.contains("<manifest>"), "{list}");
    let archived = call(
        &host,
        "GET",
        &format!("/epifiles/ws/manifest/{manifest}"),
        &lab,
        &[],
    );
    assert_eq!(tag(&archived.text(), "archived").as_deref(), Some("1"));
    let outbox = send(
        "GET",
        &host.url("/epifiles/admin/outbox"),
        &[("authorization", "Bearer admin-token-0123456789")],
        b"",
    )
    .json();
    let states: Vec<&str> = outbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["delivery"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["delivered", "delivered"]);
    assert_eq!(
        send("GET", &host.url("/epifiles/admin/outbox"), &[], b"").status,
        401
    );
}

/// A `Transfer-Encoding: chunked` body.
/// VmHWM of a process, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        / 1024
}

#[test]
fn a_256_mib_file_goes_through_with_bounded_host_memory() {
    let dir = temp_dir("epifiles-large");
    let host = start(&dir, &[]);
    let src = dir.join("large.bin");
    let size = 256 * 1024 * 1024;
    let data = random_file(&src, size, 11);
    let expected = md5_hex(&data);
    drop(data);
    let baseline = peak_rss_mib(host.pid());
    let started = std::time::Instant::now();
    let up = epifiles(&[
        "upload",
        &url_with(&host, "lab", LAB_PASSWORD),
        src.to_str().unwrap(),
    ]);
    let up_id = up["id"].as_str().unwrap().to_string();
    let upload_secs = started.elapsed().as_secs_f64();
    assert_eq!(up["md5"], expected);
    assert_eq!(up["chunks"], 256);
    let out = dir.join("large.out");
    let started = std::time::Instant::now();
    let down = epifiles(&[
        "download",
        &url_with(&host, "boss", "boss-pw"),
        up_id.as_str(),
        out.to_str().unwrap(),
    ]);
    let download_secs = started.elapsed().as_secs_f64();
    assert_eq!(down["md5"], expected);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), size as u64);
    let peak = peak_rss_mib(host.pid());
    eprintln!(
        "256 MiB: upload {upload_secs:.1} s, download {download_secs:.1} s; host peak RSS {peak} MiB (baseline {baseline} MiB)"
    );
    // The file is 256 MiB; a host (or guest) that buffered it whole would
    // pass that. Per-request memory is a few chunks.
    assert!(
        peak < baseline + 160,
        "host peak RSS {peak} MiB vs baseline {baseline} MiB"
    );
    // A download chunk's answer is streamed: its instance holds the 1 MiB
    // chunk and a part of its base64, not the 1.4 MB answer as well (that
    // was 3.4 MiB of linear memory per request).
    let logs = host.logs();
    let peaks: Vec<u64> = logs
        .lines()
        .filter(|l| l.contains("instance ended component=epifiles"))
        .filter_map(|l| l.split("peak_memory_bytes=").nth(1)?.trim().parse().ok())
        .collect();
    let downloads = &peaks[peaks.len().saturating_sub(256)..];
    assert_eq!(downloads.len(), 256, "one instance per download chunk");
    let most = downloads.iter().max().copied().unwrap_or_default();
    assert!(
        most <= 3 << 20,
        "a download chunk's instance peaked at {most} bytes"
    );
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&out);
}
