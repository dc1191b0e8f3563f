//! Where the in-repo host must behave as Spin does (Spin's
//! `trigger-http`, `expressions`, `outbound-networking-config` and loader),
//! checked on the real host binary with the probe fixture and hand-made
//! components. Each test fails on a host that differs from Spin there.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const PROBE: &str = "tests/fixtures/probe.toml";

fn probe_host(name: &str) -> Host {
    HostConfig::new(PROBE, &temp_dir(name))
        .env("SPIN_VARIABLE_SECRET_TOKEN", "s3cret")
        .start()
}

/// The probe manifest with absolute sources, for variants written elsewhere.
fn probe_manifest() -> String {
    std::fs::read_to_string(root().join(PROBE))
        .unwrap()
        .replace("../../target", &format!("{}/target", root().display()))
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A one-component app whose component is `source`.
fn single_component_manifest(source: &Path, allowed_hosts: &str) -> String {
    format!(
        "spin_manifest_version = 2\n\
         [application]\nname = \"one\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"one\"\n\
         [component.one]\nsource = \"{}\"\nallowed_outbound_hosts = [{allowed_hosts}]\n",
        source.display()
    )
}

#[test]
fn route_match_and_request_headers_are_spins() {
    let host = probe_host("conformance-headers");
    let r = send(
        "GET",
        &host.url("/m/seg-1/two/headers?all=1&q=1"),
        &[
            ("spin-path-match-path-segment", "forged"),
            ("connection", "keep-alive"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let h = r.json();
    // `:path_segment` → `spin-path-match-path-segment`: lowercase, `_` → `-`.
    assert_eq!(h["spin-path-match-path-segment"], "seg-1");
    assert_eq!(h["spin-path-match-other-name"], "two");
    assert!(
        h.as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("spin-") || !k.contains('_')),
        "{h}"
    );
    assert_eq!(h["spin-matched-route"], "/m/:path_segment/:Other_Name/...");
    assert_eq!(
        h["spin-raw-component-route"],
        "/m/:path_segment/:Other_Name/..."
    );
    assert_eq!(h["spin-component-route"], "/m/:path_segment/:Other_Name");
    assert_eq!(h["spin-path-info"], "/headers");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(
        h["spin-full-url"],
        host.url("/m/seg-1/two/headers?all=1&q=1")
    );
    let client = h["spin-client-addr"].as_str().unwrap();
    assert!(
        client
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .ip()
            .is_loopback(),
        "{client}"
    );
    // Transport information never reaches the guest.
    assert!(h.get("connection").is_none(), "{h}");
    // Spin's trailing-slash rule for the wildcard's remainder.
    let h = get(&host.url("/a/headers/x/")).json();
    assert_eq!(h["spin-path-info"], "/headers/x/");
    assert_eq!(h["spin-component-route"], "/a");
}

#[test]
fn variable_names_are_checked_before_the_lookup() {
    let host = probe_host("conformance-vars");
    for (name, reason) in [
        ("4invalidname", "must start with a lowercase ASCII letter"),
        ("a__b", "must not contain multiple consecutive underscores"),
        (
            "greeting_",
            "must end with a lowercase ASCII letter or digit",
        ),
        ("Greeting", "invalid character 'G'"),
    ] {
        let r = get(&host.url(&format!("/a/var/{name}")));
        assert_eq!(r.status, 404, "{name}");
        let text = r.text();
        assert!(
            text.contains("InvalidName") && text.contains(reason),
            "{name}: {text}"
        );
    }
    let r = get(&host.url("/a/var/undeclared"));
    assert!(r.text().contains("Undefined"), "{}", r.text());
    assert_eq!(get(&host.url("/a/var/greeting")).text(), "hello, world");
    drop(host);

    // The manifest follows the same rule.
    let dir = temp_dir("conformance-var-manifest");
    for (bad, reason) in [
        ("greeting_", "must end with"),
        ("gree__ting", "consecutive"),
    ] {
        let text = probe_manifest().replace("greeting", bad);
        let path = write(&dir, "vars.toml", text);
        let err = HostConfig::new(&path, &dir)
            .env("SPIN_VARIABLE_SECRET_TOKEN", "t")
            .start_failure();
        assert!(err.contains(reason), "{bad}: {err}");
    }
}

/// A component whose only content is an import of `name` (an empty
/// instance type): enough for the loader to see what it imports.
fn component_importing(name: &str) -> Vec<u8> {
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType,
    };
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    let mut imports = ComponentImportSection::new();
    imports.import(name, ComponentTypeRef::Instance(0));
    let mut component = Component::new();
    component.section(&types);
    component.section(&imports);
    component.finish()
}

#[test]
fn components_importing_sockets_are_refused_at_start_up() {
    let dir = temp_dir("conformance-sockets");
    for interface in [
        "wasi:sockets/tcp@0.2.0",
        "wasi:sockets/ip-name-lookup@0.2.3",
    ] {
        let source = write(&dir, "sockets.wasm", component_importing(interface));
        let manifest = write(
            &dir,
            "sockets.toml",
            single_component_manifest(&source, "\"*://*:*\""),
        );
        let err = HostConfig::new(&manifest, &dir).start_failure();
        assert!(
            err.contains(interface) && err.contains("does not implement"),
            "{err}"
        );
    }
}

#[test]
fn core_modules_are_refused_with_what_to_do() {
    let dir = temp_dir("conformance-core");
    // The smallest core module: magic and version 1.
    let source = write(&dir, "module.wasm", b"\0asm\x01\0\0\0");
    let manifest = write(&dir, "module.toml", single_component_manifest(&source, ""));
    let err = HostConfig::new(&manifest, &dir).start_failure();
    assert!(
        err.contains("is a core wasm module") && err.contains("wasm32-wasip2"),
        "{err}"
    );
}

#[test]
fn every_allowed_outbound_hosts_form_spin_accepts_loads_and_matches() {
    let (port, _hits) = {
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let port = http_server(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (200, "text/plain", b"ok".to_vec())
        });
        (port, hits)
    };
    let dir = temp_dir("conformance-outbound");
    let probe = root().join("target/wasm32-wasip2/release/assetgate_probe.wasm");
    let forms = format!(
        "\"*://127.0.0.0/24:{port}\", \"http://[::1]:1\", \"*://10.0.0.0/8:*\", \
         \"redis://cache.example.com\", \"mysql://db.example.com\", \
         \"postgres://pg.example.com:5433\", \"mqtt://broker.example.com\", \
         \"tcp://192.0.2.1:9000\", \"https://example.org/\", \"http://self\""
    );
    let manifest = write(
        &dir,
        "forms.toml",
        single_component_manifest(&probe, &forms),
    );
    let host = HostConfig::new(&manifest, &dir).start();
    // Inside the range, on the port: allowed; another port: refused.
    let r = get(&host.url(&format!("/fetch?url=http://127.0.0.1:{port}/x")));
    assert_eq!((r.status, r.text().as_str()), (200, "200 ok"));
    let other = free_port();
    let r = get(&host.url(&format!("/fetch?url=http://127.0.0.1:{other}/x")));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("HttpRequestDenied"), "{}", r.text());
    drop(host);

    // What Spin refuses, this host refuses, at start-up.
    for (bad, reason) in [
        ("\"ftp://files.example.com\"", "no well-known port"),
        ("\"*://self\"", "no well-known port"),
        ("\"insecure:allow-all\"", "*://*:*"),
        ("\"https://example.com/path\"", "path"),
        ("\"https://a.*.example.com\"", "wildcards"),
    ] {
        let manifest = write(&dir, "bad.toml", single_component_manifest(&probe, bad));
        let err = HostConfig::new(&manifest, &dir).start_failure();
        assert!(err.contains(reason), "{bad}: expected `{reason}` in\n{err}");
    }
}

#[test]
fn header_values_that_are_not_utf8_are_refused_as_spin_does() {
    let host = probe_host("conformance-bytes");
    // Spin turns every header value into a string before the guest runs;
    // one that is not UTF-8 ends the request with a bodiless 500.
    let (status, head) = raw_request(
        &host,
        b"GET /a/headers HTTP/1.1\r\nHost: x\r\nX-Raw: caf\xe9\r\nConnection: close\r\n\r\n",
        b"",
    );
    assert_eq!(status, 500, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 0"),
        "{head}"
    );
    assert!(host.wait_for_log("a header value is not UTF-8"));
    // UTF-8 beyond ASCII is a string like any other.
    let (status, _) = raw_request(
        &host,
        "GET /a/headers HTTP/1.1\r\nHost: x\r\nX-Name: café\r\nConnection: close\r\n\r\n"
            .as_bytes(),
        b"",
    );
    assert_eq!(status, 200);
}

#[test]
fn hostile_basic_credentials_get_401_from_epifiles() {
    use base64::Engine;
    let dir = temp_dir("conformance-basic");
    let users = serde_json::json!([{
        "user": "lab", "password": password_hash("pw", 1000),
        "repositories": {"1": "uploader"},
    }]);
    let host = HostConfig::new("spin.toml", &dir)
        .var("epifiles_users", &users.to_string())
        .start();
    let url = host.url("/epifiles/ws/manifest");
    let basic = |raw: &[u8]| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };
    for raw in [
        &b"\xff\xfe:pw"[..],
        b"lab:%\xc3\xa9",
        b"lab:%a\xc3\xa9",
        "lab:a%é%".as_bytes(),
        b"lab:%",
        b"lab",
    ] {
        let r = send("GET", &url, &[("authorization", &basic(raw))], b"");
        assert_eq!(r.status, 401, "{raw:?}: {}", r.text());
        assert!(r.text().contains("<status>failed</status>"), "{}", r.text());
    }
    let r = send("GET", &url, &[("authorization", &basic(b"lab:pw"))], b"");
    assert_eq!(r.status, 200, "{}", r.text());
}

// ---- HTTP/1.1 hygiene: Host header, slow clients, head limits ----------
//
// Here the host does better than Spin, which drops the connection without
// an answer on a bad Host and sets no header read timeout (see docs/host.md); each test fails on a host that behaves like Spin there.

/// A host on the probe app whose header read timeout is `secs`.
fn probe_host_with_header_timeout(name: &str, secs: u64) -> Host {
    HostConfig::new(PROBE, &temp_dir(name))
        .env("SPIN_VARIABLE_SECRET_TOKEN", "s3cret")
        .arg("--header-read-timeout-secs")
        .arg(&secs.to_string())
        .start()
}

fn connect(host: &Host) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(host.base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    stream
}

/// Reads from `stream` until the server closes it or `limit` passes: what
/// was read, and how long after `since` it closed (`None`: still open).
fn read_until_closed(
    stream: &mut std::net::TcpStream,
    since: std::time::Instant,
    limit: std::time::Duration,
) -> (Vec<u8>, Option<std::time::Duration>) {
    use std::io::{ErrorKind, Read};
    let mut read = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while since.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return (read, Some(since.elapsed())),
            Ok(n) => read.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (read, Some(since.elapsed())),
        }
    }
    (read, None)
}

/// Sends `head` (which asks the server to close) and reads the answer to
/// the end: its status and its body, de-chunked.
fn exchange_to_close(host: &Host, head: &[u8]) -> (u16, String) {
    use std::io::Write;
    let mut stream = connect(host);
    stream.write_all(head).unwrap();
    let (read, closed) = read_until_closed(
        &mut stream,
        std::time::Instant::now(),
        std::time::Duration::from_secs(30),
    );
    assert!(closed.is_some(), "the server kept the connection open");
    let text = String::from_utf8_lossy(&read).into_owned();
    let (response_head, mut body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = response_head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in `{text}`"));
    if !response_head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return (status, body.to_string());
    }
    let mut decoded = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        decoded.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    (status, decoded)
}

/// Host values a client or an attacker sends that are not `host[:port]`:
/// the list, then every character a name may not hold put into
/// otherwise valid names, ports out of range and malformed brackets.
fn invalid_host_values() -> Vec<Vec<u8>> {
    let mut values: Vec<Vec<u8>> = [
        "",
        " ",
        "a b",
        "host:port:port",
        "host:80:80",
        "[::1",
        "::1",
        "[::1]x",
        "[]",
        "[fe80::1%25eth0]",
        "%zz",
        "%41",
        "user@host",
        "@host",
        "host/path",
        "host?q",
        "x:65536",
        "x:-1",
        ":80",
        "x:8O",
        "café.example",
        "[::1]:80:80",
        "[v1.]",
    ]
    .iter()
    .map(|v| v.as_bytes().to_vec())
    .collect();
    for bad in [
        ' ', '"', '<', '>', '\\', '^', '`', '{', '|', '}', '%', '@', '/', '?', '#', '\t', '[', ']',
        'é',
    ] {
        for name in ["example.com", "127.0.0.1", "localhost:3000"] {
            let (a, b) = name.split_at(3);
            values.push(format!("{a}{bad}{b}").into_bytes());
        }
    }
    // Control characters: hyper refuses most of them while parsing, the
    // host the rest; either way a 400.
    for c in (0x01u8..0x20).chain([0x7f]) {
        if c != b'\r' && c != b'\n' {
            values.push([b"ex", &[c][..], b"ample.com"].concat());
        }
    }
    values
}

#[test]
fn bad_host_headers_get_400_before_any_component_runs() {
    let host = probe_host("conformance-host-header");
    // (what the request is, its head, whether the host's own message is
    // expected; hyper answers a bare 400 to bytes it cannot parse).
    let mut cases: Vec<(String, Vec<u8>, bool)> = Vec::new();
    for (i, value) in invalid_host_values().into_iter().enumerate() {
        let printable = value.iter().all(|&b| b == b'\t' || b >= 0x20 && b != 0x7f);
        for (method, body) in [("GET", ""), ("POST", "payload")] {
            let head = [
                format!("{method} /a/hostcase/{i} HTTP/1.1\r\nHost: ").as_bytes(),
                &value,
                format!("\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
            ]
            .concat();
            cases.push((format!("{method} Host {value:?}"), head, printable));
        }
        // HTTP/1.0 may omit Host, not send a bad one.
        let head = [
            format!("GET /a/hostcase/{i}/v10 HTTP/1.0\r\nHost: ").as_bytes(),
            &value,
            b"\r\n\r\n",
        ]
        .concat();
        cases.push((format!("HTTP/1.0 Host {value:?}"), head, printable));
    }
    for (version, pair) in [
        ("1.1", ["x", "x"]),
        ("1.1", ["x", "y"]),
        ("1.1", ["x", ""]),
        ("1.1", ["a b", "x"]),
        ("1.0", ["x", "x"]),
    ] {
        let head = format!(
            "GET /a/hostcase/two HTTP/{version}\r\nHost: {}\r\nX-Between: 1\r\nhost: {}\r\n\r\n",
            pair[0], pair[1]
        );
        cases.push((format!("two Hosts {pair:?}"), head.into_bytes(), true));
    }
    for (what, head) in [
        ("no Host", "GET /a/hostcase/none HTTP/1.1\r\n\r\n"),
        (
            "no Host, absolute-form",
            "GET http://x/a/hostcase/abs HTTP/1.1\r\n\r\n",
        ),
        (
            "Host not the target's",
            "GET http://x/a/hostcase/abs HTTP/1.1\r\nHost: y\r\n\r\n",
        ),
    ] {
        cases.push((what.to_string(), head.as_bytes().to_vec(), true));
    }
    let mut ours = 0;
    for (what, head, printable) in &cases {
        let (status, response_head, body) = raw_exchange(&host, head, b"");
        assert_eq!(status, 400, "{what}: {response_head}");
        if *printable {
            ours += 1;
            assert!(
                body.starts_with("Bad Request: ") && body.contains("Host"),
                "{what}: {body}"
            );
            assert!(
                response_head
                    .to_ascii_lowercase()
                    .contains("connection: close"),
                "{what}: {response_head}"
            );
        } else {
            assert!(body.is_empty() || body.contains("Host"), "{what}: {body}");
        }
    }
    assert!(ours > 100, "{ours} of {} cases", cases.len());

    // What is valid still reaches the component, as it is (wasi-http hides
    // `host` itself from guests; `spin-full-url` carries it).
    for value in ["x", "localhost:1", "[::1]:3000", "a.b.c.", "x:", "[v7.fe]"] {
        let head =
            format!("GET /a/headers?all=1 HTTP/1.1\r\nHost: {value}\r\nConnection: close\r\n\r\n");
        let (status, body) = exchange_to_close(&host, head.as_bytes());
        assert_eq!(status, 200, "{value}: {body}");
        let h: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            h["spin-full-url"],
            format!("http://{value}/a/headers?all=1"),
            "{h}"
        );
    }
    // RFC 9112 §3.2 requires Host of HTTP/1.1 only: an HTTP/1.0 request
    // without one is served, the listening address standing in (Spin drops
    // it), or the target's authority when it is in absolute form.
    let (status, body) = exchange_to_close(&host, b"GET /a/headers HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["spin-full-url"], host.url("/a/headers"), "{h}");
    let (status, body) =
        exchange_to_close(&host, b"GET http://a.example:81/a/headers HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["spin-full-url"], "http://a.example:81/a/headers", "{h}");

    // No component ran for any refused request: the log has the host's
    // refusals and not one component line for their paths.
    assert!(host.wait_for_log("request refused: bad Host header"));
    let (status, _) = raw_request(
        &host,
        b"GET /a/hostcase-marker HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
    );
    assert_eq!(status, 404);
    assert!(host.wait_for_log("path=/a/hostcase-marker"));
    let logs = host.logs();
    let ran: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("component=") && l.contains("/hostcase/"))
        .collect();
    assert!(
        ran.is_empty(),
        "components ran for refused requests:\n{ran:#?}"
    );
    let refused = logs
        .lines()
        .filter(|l| l.contains("request refused: bad Host header"))
        .count();
    assert_eq!(refused, ours, "one log line per refusal of the host's own");
}

/// The status of the answer to `head`, written whole or until the server
/// stops reading (it answers a head over the limit before reading it all).
fn status_of_head(host: &Host, head: &[u8]) -> u16 {
    use std::io::Write;
    let mut stream = connect(host);
    let _ = stream.write_all(head);
    let (read, _) = read_until_closed(
        &mut stream,
        std::time::Instant::now(),
        std::time::Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&read);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in `{text}`"))
}

#[test]
fn oversized_request_heads_get_431() {
    let host = probe_host("conformance-head-limits");
    // 100 header lines pass (hyper's and Spin's limit), 101 do not.
    for (lines, expected) in [(100, 200), (101, 431), (1000, 431)] {
        let extra: String = (2..lines).map(|i| format!("X-H{i}: v\r\n")).collect();
        let head =
            format!("GET /a/headers HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
        assert_eq!(
            status_of_head(&host, head.as_bytes()),
            expected,
            "{lines} header lines"
        );
    }
    // 64 KiB of head pass, in one line or many; more does not.
    for (size, expected) in [(60 * 1024, 200), (70 * 1024, 431), (1024 * 1024, 431)] {
        for pieces in [1, 16] {
            let extra: String = (0..pieces)
                .map(|i| format!("X-Big{i}: {}\r\n", "a".repeat(size / pieces)))
                .collect();
            let head =
                format!("GET /a/headers HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
            assert_eq!(
                status_of_head(&host, head.as_bytes()),
                expected,
                "{size} bytes in {pieces} headers"
            );
        }
    }
    assert_eq!(get(&host.url("/a/headers")).status, 200);
}

#[test]
fn slow_and_idle_connections_are_closed_after_the_header_timeout() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let timeout = Duration::from_secs(1);
    let host = probe_host_with_header_timeout("conformance-slowloris", 1);
    // Longer than this, a connection was not closed by the timeout.
    let limit = Duration::from_secs(8);
    std::thread::scope(|s| {
        let mut watchers = Vec::new();
        // Slow-loris: a head trickled a byte every 50 ms, never finished.
        for i in 0..8 {
            let mut stream = connect(&host);
            watchers.push(s.spawn(move || {
                let started = Instant::now();
                let mut writer = stream.try_clone().unwrap();
                let trickle = std::thread::spawn(move || {
                    let head = format!("POST /a/digest HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ");
                    let mut sent = 0;
                    for b in head.bytes().chain(std::iter::repeat(b'a')) {
                        if writer.write_all(&[b]).is_err() || started.elapsed() > limit {
                            break;
                        }
                        sent += 1;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    sent
                });
                let (read, closed) = read_until_closed(&mut stream, started, limit);
                drop(stream);
                ("trickled", read, closed, trickle.join().unwrap())
            }));
        }
        // Silent: a connection that never sends a byte.
        for _ in 0..4 {
            let mut stream = connect(&host);
            watchers.push(s.spawn(move || {
                let (read, closed) = read_until_closed(&mut stream, Instant::now(), limit);
                ("silent", read, closed, 0)
            }));
        }
        // Idle keep-alive: one request served, then nothing; the timer
        // starts when the response is finished.
        for _ in 0..2 {
            let mut stream = connect(&host);
            watchers.push(s.spawn(move || {
                stream
                    .write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let started = Instant::now();
                let mut response = Vec::new();
                while !response.ends_with(b"Not Found\n") && started.elapsed() < limit {
                    let (read, closed) =
                        read_until_closed(&mut stream, Instant::now(), Duration::from_millis(50));
                    response.extend(read);
                    assert!(closed.is_none(), "closed before the response");
                }
                // Timed from the request: the response was finished after it.
                let (read, closed) = read_until_closed(&mut stream, started, limit);
                ("idle", [response, read].concat(), closed, 1)
            }));
        }
        for watcher in watchers {
            let (kind, read, closed, sent) = watcher.join().unwrap();
            let closed = closed.unwrap_or_else(|| panic!("{kind}: still open after {limit:?}"));
            assert!(
                closed >= timeout.mul_f32(0.8) && closed < timeout * 6,
                "{kind}: closed after {closed:?}"
            );
            let text = String::from_utf8_lossy(&read);
            match kind {
                "idle" => assert!(text.starts_with("HTTP/1.1 404"), "{text}"),
                _ => assert!(!text.contains(" 200 "), "{kind}: {text}"),
            }
            if kind == "trickled" {
                // It was sending all along, not idle.
                assert!(sent >= 10, "{sent} bytes trickled");
            }
        }
    });
    // The host serves on, and logged no request for them.
    assert_eq!(get(&host.url("/a/headers")).status, 200);
    assert!(!host.logs().contains("path=/a/digest"), "{}", host.logs());
}

#[test]
fn slow_steady_uploads_outlive_the_header_timeout() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let host = probe_host_with_header_timeout("conformance-slow-body", 1);
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 48;
    let body: Vec<u8> = (0..CHUNK * CHUNKS)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let hash = body.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    let expected = format!("{} {hash:016x}", body.len());
    std::thread::scope(|s| {
        for chunked in [false, true] {
            let (host, body, expected) = (&host, &body, &expected);
            s.spawn(move || {
                let started = Instant::now();
                let mut stream = connect(host);
                let framing = if chunked {
                    "Transfer-Encoding: chunked".to_string()
                } else {
                    format!("Content-Length: {}", body.len())
                };
                write!(
                    stream,
                    "POST /a/digest HTTP/1.1\r\nHost: x\r\n{framing}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                // 3 MiB over about 5 s: five times the header timeout.
                for piece in body.chunks(CHUNK) {
                    if chunked {
                        write!(stream, "{:x}\r\n", piece.len()).unwrap();
                    }
                    stream.write_all(piece).unwrap();
                    if chunked {
                        stream.write_all(b"\r\n").unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                if chunked {
                    stream.write_all(b"0\r\n\r\n").unwrap();
                }
                let (read, closed) =
                    read_until_closed(&mut stream, Instant::now(), Duration::from_secs(60));
                assert!(closed.is_some(), "no end of response");
                assert!(started.elapsed() > Duration::from_secs(4));
                let text = String::from_utf8_lossy(&read);
                assert!(
                    text.starts_with("HTTP/1.1 200"),
                    "chunked={chunked}: {text}"
                );
                assert!(
                    text.contains(expected.as_str()),
                    "chunked={chunked}: {text}"
                );
            });
        }
    });
}
