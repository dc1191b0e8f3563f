//! The platform end to end: the real host binary running the real `.wasm`
//! components of `spin.toml` and of the probe fixture (`tests/fixtures`).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;

const PROBE: &str = "tests/fixtures/probe.toml";

fn probe_host(name: &str) -> (Host, std::path::PathBuf) {
    let dir = temp_dir(name);
    let host = HostConfig::new(PROBE, &dir)
        .env("SPIN_VARIABLE_SECRET_TOKEN", "s3cret")
        .start();
    (host, dir)
}

/// A plain HTTP server on loopback answering every request with `ok`.
fn loopback_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (port, hits)
}

#[test]
fn status_component_serves_name_version_and_storage() {
    let dir = temp_dir("status");
    let host = HostConfig::new("spin.toml", &dir).start();
    let r = get(&host.url("/status"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = r.json();
    assert_eq!(j["name"], "assetgate");
    assert_eq!(j["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(j["storage"]["backend"], "key-value");
    assert_eq!(j["storage"]["ok"], true);
    assert_eq!(j["limits"]["blob_chunk_size"], 1 << 20);
    assert_eq!(j["limits"]["blob_max_size"], 8u64 << 30);
    let r = send("POST", &host.url("/status"), &[], b"x");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    // The durable store is where Spin keeps it.
    assert!(dir.join("sqlite_key_value.db").exists());
    host.stop();

    // A malformed limit is reported, not silently replaced by a default.
    let host = HostConfig::new("spin.toml", &dir)
        .env("SPIN_VARIABLE_BLOB_CHUNK_SIZE", "lots")
        .start();
    let r = get(&host.url("/status"));
    assert_eq!(r.status, 503);
    assert!(
        r.json()["limits"]["error"]
            .as_str()
            .unwrap()
            .contains("blob_chunk_size")
    );
}

#[test]
fn unknown_route_is_404() {
    let (host, _dir) = probe_host("notfound");
    assert_eq!(get(&host.url("/nope")).status, 404);
    assert_eq!(get(&host.url("/")).status, 404);
    // A private component has no public route.
    assert_eq!(get(&host.url("/probe-private/whoami")).status, 404);
}

#[test]
fn key_value_is_shared_between_components_and_survives_restart() {
    let (host, dir) = probe_host("kv");
    let r = send("PUT", &host.url("/a/kv/greeting"), &[], b"written by a");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = get(&host.url("/b/kv/greeting"));
    assert_eq!((r.status, r.text().as_str()), (200, "written by a"));
    let big: Vec<u8> = (0..(1 << 20)).map(|i| (i * 31 % 251) as u8).collect();
    assert_eq!(send("PUT", &host.url("/a/kv/big"), &[], &big).status, 204);
    assert_eq!(get(&host.url("/a/kv/missing")).status, 404);
    host.stop();

    let host = HostConfig::new(PROBE, &dir)
        .env("SPIN_VARIABLE_SECRET_TOKEN", "s3cret")
        .start();
    let r = get(&host.url("/b/kv/greeting"));
    assert_eq!((r.status, r.text().as_str()), (200, "written by a"));
    assert_eq!(get(&host.url("/b/kv/big")).body, big);
    assert_eq!(
        send("DELETE", &host.url("/b/kv/greeting"), &[], &[]).status,
        204
    );
    assert_eq!(get(&host.url("/a/kv/greeting")).status, 404);
}

#[test]
fn store_access_is_limited_to_declared_labels() {
    let (host, _dir) = probe_host("kvacl");
    assert_eq!(get(&host.url("/a/open/default")).status, 200);
    let r = get(&host.url("/c/open/default"));
    assert_eq!(r.status, 403);
    assert!(r.text().contains("AccessDenied"), "{}", r.text());
    assert_eq!(get(&host.url("/a/open/other")).status, 403);
}

#[test]
fn atomic_increment_and_compare_and_swap_under_concurrency() {
    let (host, _dir) = probe_host("atomics");
    let threads = 8;
    let per_thread = 20;
    let mut handles = Vec::new();
    for t in 0..threads {
        let base = host.base.clone();
        handles.push(std::thread::spawn(move || {
            let mut seen = Vec::new();
            for i in 0..per_thread {
                let r = send("POST", &format!("{base}/a/incr/counter"), &[], b"");
                assert_eq!(r.status, 200, "{}", r.text());
                seen.push(r.text().parse::<i64>().unwrap());
                let byte = [b'A' + t as u8];
                let path = if i % 2 == 0 {
                    "/a/append/log"
                } else {
                    "/b/append/log"
                };
                let r = send("POST", &format!("{base}{path}"), &[], &byte);
                assert_eq!(r.status, 200, "{}", r.text());
            }
            seen
        }));
    }
    let mut all: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    let expected: Vec<i64> = (1..=(threads * per_thread) as i64).collect();
    assert_eq!(all, expected, "every increment returns a distinct value");
    assert_eq!(
        get(&host.url("/a/kv/counter")).text(),
        (threads * per_thread).to_string()
    );
    let log = get(&host.url("/a/kv/log")).body;
    assert_eq!(log.len(), threads * per_thread, "no append lost");
    for t in 0..threads {
        let n = log.iter().filter(|&&b| b == b'A' + t as u8).count();
        assert_eq!(n, per_thread);
    }
    let r = send("POST", &host.url("/a/incr/counter?delta=-160"), &[], b"");
    assert_eq!(r.text(), "0");
}

#[test]
fn outbound_requests_follow_allowed_outbound_hosts() {
    let (port, hits) = loopback_server();
    let (host, _dir) = probe_host("outbound");
    let target = format!("http://127.0.0.1:{port}/x");

    let r = get(&host.url(&format!("/a/fetch?url={target}")));
    assert_eq!((r.status, r.text().as_str()), (200, "200 ok"));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    let r = get(&host.url(&format!("/b/fetch?url={target}")));
    assert_eq!(r.status, 502);
    assert!(r.text().contains("HttpRequestDenied"), "{}", r.text());
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "refused request never left"
    );
    assert!(host.wait_for_log("outbound request refused"));

    // a's allow-list has loopback, not other hosts.
    let r = get(&host.url("/a/fetch?url=http://localhost:1/"));
    assert_eq!(r.status, 502);
}

#[test]
fn service_chaining_stays_in_process() {
    let (host, _dir) = probe_host("chaining");
    let r = get(&host.url("/a/fetch?url=http://self/b/whoami"));
    assert_eq!((r.status, r.text().as_str()), (200, "200 probe"));
    let r = get(&host.url("/a/fetch?url=http://probe-private.spin.internal/whoami"));
    assert_eq!((r.status, r.text().as_str()), (200, "200 probe"));
    let r = get(&host.url("/a/fetch?url=http://nobody.spin.internal/whoami"));
    assert_eq!(r.status, 502);
    // b has no `http://self`.
    let r = get(&host.url("/b/fetch?url=http://self/a/whoami"));
    assert_eq!(r.status, 502);
}

#[test]
fn spin_headers_are_set_and_cannot_be_forged() {
    let (host, _dir) = probe_host("headers");
    let r = send(
        "GET",
        &host.url("/a/headers/x/y?q=1"),
        &[
            ("spin-path-info", "/forged"),
            ("spin-client-addr", "6.6.6.6:1"),
        ],
        &[],
    );
    assert_eq!(r.status, 200);
    let h = r.json();
    assert_eq!(h["spin-path-info"], "/headers/x/y");
    assert_eq!(h["spin-matched-route"], "/a/...");
    assert_eq!(h["spin-raw-component-route"], "/a/...");
    assert_eq!(h["spin-component-route"], "/a");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(h["spin-full-url"], host.url("/a/headers/x/y?q=1"));
    assert!(
        h["spin-client-addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[test]
fn variables_resolve_from_defaults_env_and_flags() {
    let (host, dir) = probe_host("vars");
    assert_eq!(get(&host.url("/a/var/greeting")).text(), "hello, world");
    assert_eq!(get(&host.url("/a/var/token")).text(), "s3cret");
    let r = get(&host.url("/a/var/undeclared"));
    assert_eq!(r.status, 404);
    assert!(r.text().contains("Undefined"), "{}", r.text());
    // Variables are per component: b declares none.
    assert_eq!(get(&host.url("/b/var/greeting")).status, 404);
    assert_eq!(get(&host.url("/a/env/PROBE_ROLE")).text(), "a");
    host.stop();

    let host = HostConfig::new(PROBE, &dir)
        .env("SPIN_VARIABLE_SECRET_TOKEN", "from-env")
        .env("SPIN_VARIABLE_GREETING", "hi")
        .arg("--variable")
        .arg("secret_token=from-flag")
        .start();
    assert_eq!(get(&host.url("/a/var/greeting")).text(), "hi, world");
    assert_eq!(get(&host.url("/a/var/token")).text(), "from-flag");
}

#[test]
fn a_trapping_component_gives_500_and_the_host_keeps_serving() {
    let (host, _dir) = probe_host("trap");
    let r = get(&host.url("/a/trap"));
    assert_eq!(r.status, 500);
    assert!(
        !r.text().contains("wasm"),
        "no internals leak: {}",
        r.text()
    );
    assert_eq!(get(&host.url("/a/whoami")).text(), "probe");
    assert!(host.wait_for_log("component failed"));
}

const FNV_OFFSET: u64 = 0xcbf29ce484222325;

fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(state, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8
}

/// A request body generated on the fly: the test never holds it either.
struct Generated {
    pos: u64,
    len: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = ((self.len - self.pos) as usize).min(buf.len());
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(self.pos + k as u64);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn large_bodies_stream_both_ways_without_buffering() {
    let (host, _dir) = probe_host("stream");
    let size: u64 = 256 << 20;
    let before = peak_rss_kib(host.pid());

    let resp = agent()
        .post(&host.url("/a/digest"))
        .set("content-length", &size.to_string())
        .send(Generated { pos: 0, len: size })
        .expect("upload");
    let expected_hash = {
        let mut h = FNV_OFFSET;
        let mut buf = vec![0u8; 1 << 16];
        let mut g = Generated { pos: 0, len: size };
        loop {
            let n = g.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            h = fnv1a(h, &buf[..n]);
        }
        h
    };
    assert_eq!(
        resp.into_string().unwrap(),
        format!("{size} {expected_hash:016x}")
    );

    let resp = agent()
        .get(&host.url(&format!("/a/generate/{size}")))
        .call()
        .unwrap();
    assert_eq!(
        resp.header("content-length"),
        Some(size.to_string().as_str())
    );
    let mut reader = resp.into_reader();
    let (mut got, mut hash) = (0u64, FNV_OFFSET);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hash = fnv1a(hash, &buf[..n]);
        got += n as u64;
    }
    assert_eq!((got, hash), (size, expected_hash));

    // A quarter GiB each way went through; the host's peak memory grew by far
    // less than one body.
    let grown_mib = (peak_rss_kib(host.pid()) - before) / 1024;
    assert!(grown_mib < 128, "host peak RSS grew by {grown_mib} MiB");
}

#[test]
fn busy_components_do_not_starve_others() {
    let (host, _dir) = probe_host("busy");
    // More CPU-bound requests than the host has worker threads.
    let busy: Vec<_> = (0..4)
        .map(|_| {
            let url = host.url("/a/spin?ms=5000");
            std::thread::spawn(move || get(&url).status)
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let r = get(&host.url("/b/whoami"));
    let waited = started.elapsed();
    assert_eq!(r.text(), "probe");
    assert!(
        waited < std::time::Duration::from_millis(2500),
        "a quick request waited {waited:?} behind busy ones"
    );
    for b in busy {
        assert_eq!(b.join().unwrap(), 200);
    }
}

#[test]
fn many_requests_run_at_once() {
    let (host, _dir) = probe_host("parallel");
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let url = host.url(&format!("/b/kv/none-{i}"));
            std::thread::spawn(move || get(&url).status)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 404);
    }
}

#[test]
fn start_up_fails_loudly_on_bad_manifests() {
    let dir = temp_dir("badmanifest");
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let probe = std::fs::read_to_string(root().join(PROBE))
        .unwrap()
        .replace("../../target", &format!("{}/target", root().display()));

    let cases = [
        (
            write(
                "files.toml",
                probe.replace("environment = {", "files = [\"x\"]\nenvironment = {"),
            ),
            "`files` is not supported",
            true,
        ),
        (
            write(
                "missing.toml",
                probe.replace("assetgate_probe.wasm", "nothing-here.wasm"),
            ),
            "cannot load",
            true,
        ),
        (
            write(
                "store.toml",
                probe.replace(
                    "key_value_stores = [\"default\"]\nallowed",
                    "key_value_stores = [\"elsewhere\"]\nallowed",
                ),
            ),
            "`elsewhere` is not defined",
            true,
        ),
        (
            write("required.toml", probe.clone()),
            "SPIN_VARIABLE_SECRET_TOKEN",
            false,
        ),
    ];
    for (path, expected, with_token) in cases {
        let mut config = HostConfig::new(&path, &dir);
        if with_token {
            config = config.env("SPIN_VARIABLE_SECRET_TOKEN", "t");
        }
        let err = config.start_failure();
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
}
