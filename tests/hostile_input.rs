//! Hostile request data against every endpoint family of `spin.toml`, end
//! to end over raw sockets (so nothing re-encodes what is sent): malformed
//! percent-encoding in paths, query strings, form bodies and Basic
//! credentials; bodies cut short or with broken chunk framing; a large
//! unauthenticated EpiFiles upload; oversized PNG sources. No answer may
//! be a 5xx or show internals; the protocols whose decoding this checks
//! (EpiFiles, ingest, preview) answer a specific 400 (401 for
//! credentials) in their own envelope; nothing is stored.

mod common;

use base64::Engine;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const UPLOAD_KEY: &str = "upload-key-0123456789";
const INGEST_KEY: &str = "ingest-key-0123456789";
const ADMIN_TOKEN: &str = "admin-token-0123456789";
const ORG: &str = "HOSTILE@AdobeOrg";
const API_KEY: &str = "hostile-key";

/// Malformed percent-encoding, as the client sends it: `%C3` followed by
/// a raw multi-byte character (the example), a `%` or a half
/// escape followed by one (what trapped: the old decoder sliced the `str`
/// inside the character), lone and truncated escapes, escapes that are
/// not hex, overlong UTF-8, bytes that never start UTF-8, NUL, a
/// surrogate, truncated sequences, and a raw character before a dangling
/// lead byte.
const HOSTILE: [&str; 14] = [
    "%C3é",
    "%Cé",
    "%é",
    "%",
    "%G1",
    "%C",
    "%C0%AF",
    "%FF",
    "%00",
    "%ED%A0%80",
    "a%C3%28",
    "%E2%82",
    "é%C3",
    "x%F0%9F%98",
];

/// What a probe must get back.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This status, in the protocol's envelope, saying `malformed` (the
    /// decoder's words) or, for 401, refusing the credentials.
    Exactly(u16),
    /// Components whose decoding belongs to other work: any 4xx with a
    /// readable envelope (status ignores the query: any non-5xx).
    ClientError,
    NotServerError,
    /// 400 saying what was wrong with the body (`incomplete_body` on
    /// EpiFiles).
    BrokenBody,
}

/// A response read off the socket.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Writes `request` (then, with `close_write`, ends the sending side, as a
/// client that gave up mid-body does) and reads the answer: head, then a
/// Content-Length or chunked body, or up to EOF.
fn exchange(host: &Host, request: &[u8], close_write: bool) -> Answer {
    let addr = host.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request);
    if close_write {
        let _ = s.shutdown(Shutdown::Write);
    }
    let a = read_answer(&mut s);
    validate_epifiles(request, &a);
    a
}

/// Every answer of the EpiFiles web services (not their outbox, which
/// answers JSON) is XML valid against docs/epifiles.xsd.
fn validate_epifiles(request: &[u8], a: &Answer) {
    let target = request.split(|&b| b == b' ').nth(1).unwrap_or_default();
    if target.starts_with(b"/epifiles/") && !target.starts_with(b"/epifiles/admin/") {
        assert_eq!(
            a.header("content-type"),
            Some("text/xml; charset=utf-8"),
            "{} {}",
            a.status,
            a.body
        );
        xsd::check_epifiles(&a.body);
    }
}

fn read_answer(s: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let mut piece = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut piece) {
            Ok(0) | Err(_) => panic!(
                "connection ended without a response head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&piece[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut answer = Answer {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}")),
        head,
        body: String::new(),
    };
    let mut body = buf[head_end..].to_vec();
    let length = answer
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    let chunked = answer
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"));
    let done = |b: &[u8]| match length {
        Some(n) => b.len() >= n,
        None if chunked => b.ends_with(b"0\r\n\r\n"),
        None => false,
    };
    let bodiless = matches!(answer.status, 204 | 304);
    while !bodiless && !done(&body) {
        match s.read(&mut piece) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&piece[..n]),
        }
    }
    if chunked {
        body = dechunk(&body);
    }
    answer.body = String::from_utf8_lossy(&body).into_owned();
    answer
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        let start = eol + 2;
        if size == 0 || start + size > b.len() {
            break;
        }
        out.extend_from_slice(&b[start..start + size]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// An HTTP/1.1 request with `target` as raw bytes.
fn request(method: &str, target: &[u8], headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} ").into_bytes();
    r.extend_from_slice(target);
    r.extend_from_slice(b" HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (k, v) in headers {
        r.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT") {
        r.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

fn basic(user: &[u8], password: &[u8]) -> String {
    let raw = [user, b":", password].concat();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

struct Creds {
    lab: String,
    compute: Vec<(&'static str, String)>,
}

fn start(dir: &Path) -> (Host, Creds) {
    let users = serde_json::json!([
        {"user": "lab", "password": password_hash("lab-pw", 2000),
         "repositories": {"23": "uploader", "phraseanet": "downloader"}},
    ]);
    let (token, client) = compute_client("hostile", API_KEY, ORG, None);
    let host = HostConfig::new(root().join("spin.toml"), dir)
        .var("epifiles_users", &users.to_string())
        .var("epifiles_admin_token", ADMIN_TOKEN)
        .var("upload_api_key", UPLOAD_KEY)
        .var("ingest_api_key", INGEST_KEY)
        .var(
            "compute_clients",
            &serde_json::Value::Array(vec![client]).to_string(),
        )
        .start();
    let creds = Creds {
        lab: basic(b"lab", b"lab-pw"),
        compute: vec![
            ("authorization", format!("Bearer {token}")),
            ("x-api-key", API_KEY.to_string()),
            ("x-gw-ims-org-id", ORG.to_string()),
        ],
    };
    (host, creds)
}

/// Output that means internals reached the client: Debug of host
/// resources and errors, Rust's option and result wrappers.
const INTERNALS: [&str; 7] = [
    "Resource {",
    "handle:",
    "Error {",
    "ErrorCode::",
    "Some(",
    "Err(",
    "panicked",
];

/// The checks every answer passes, whoever produced it.
fn check(what: &str, a: &Answer, expect: Expect) {
    let text = format!("{what}: {} {}", a.status, a.body);
    assert!(a.status < 500, "server error for {text}");
    for bad in INTERNALS {
        assert!(!a.body.contains(bad), "internals ({bad}) in {text}");
    }
    let xml = a.header("content-type").is_some_and(|c| c.contains("xml"));
    if a.status >= 400 {
        let message = if xml {
            assert!(a.body.contains("<status>failed</status>"), "{text}");
            tag(&a.body, "message")
        } else {
            let v: serde_json::Value =
                serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
            v["message"].as_str().map(String::from)
        };
        let message = message.unwrap_or_else(|| panic!("no message: {text}"));
        assert!(message.len() > 10, "a message a client can act on: {text}");
    }
    match expect {
        Expect::Exactly(status) => {
            assert_eq!(a.status, status, "{text}");
            // Strict decoding: nothing was turned into U+FFFD on the way.
            assert!(!a.body.contains('\u{FFFD}'), "{text}");
            if status == 400 {
                assert!(a.body.contains("malformed"), "{text}");
                if xml {
                    assert_eq!(
                        tag(&a.body, "code").as_deref(),
                        Some("invalid_encoding"),
                        "{text}"
                    );
                }
            }
            if status == 401 {
                assert!(a.header("www-authenticate").is_some(), "{text}");
            }
        }
        Expect::ClientError => assert!((400..500).contains(&a.status), "{text}"),
        Expect::NotServerError => {}
        Expect::BrokenBody => {
            assert_eq!(a.status, 400, "{text}");
            assert!(a.body.contains("request body"), "{text}");
            if xml {
                let code = tag(&a.body, "code");
                assert_eq!(code.as_deref(), Some("incomplete_body"), "{text}");
            }
        }
    }
}

fn tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

/// Nothing any probe sent was stored: no EpiFiles manifest, file or
/// notification, no upload commit.
fn assert_nothing_stored(host: &Host, creds: &Creds) {
    let get = |target: &str, auth: String| {
        exchange(
            host,
            &request("GET", target.as_bytes(), &[("authorization", auth)], b""),
            false,
        )
    };
    let manifests = get("/epifiles/ws/manifest", creds.lab.clone());
    assert_eq!(manifests.status, 200, "{}", manifests.body);
    assert!(!manifests.body.contains("<manifest>"), "{}", manifests.body);
    let files = get("/epifiles/ws/manifestfile", creds.lab.clone());
    assert_eq!(files.status, 200, "{}", files.body);
    assert!(!files.body.contains("<manifest_file>"), "{}", files.body);
    let outbox = get("/epifiles/admin/outbox", format!("Bearer {ADMIN_TOKEN}"));
    let outbox: serde_json::Value = serde_json::from_str(&outbox.body).unwrap();
    assert_eq!(outbox["notifications"], serde_json::json!([]), "{outbox}");
    let commits = get(
        "/commits?acknowledged=false",
        format!("Bearer {UPLOAD_KEY}"),
    );
    let commits: serde_json::Value = serde_json::from_str(&commits.body).unwrap();
    assert_eq!(commits["hydra:totalItems"], 0, "{commits}");
}

type Probe = (
    String,
    Vec<u8>,
    Vec<(&'static str, String)>,
    Vec<u8>,
    Expect,
);

/// Every place request text is decoded, on every family, with `h`.
fn probes(h: &str, creds: &Creds) -> Vec<Probe> {
    use Expect::*;
    let lab = || vec![("authorization", creds.lab.clone())];
    let form = |mut v: Vec<(&'static str, String)>| {
        v.push((
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        ));
        v
    };
    let ingest = || vec![("authorization", format!("ApiKey {INGEST_KEY}"))];
    let upload = || vec![("authorization", format!("Bearer {UPLOAD_KEY}"))];
    let good_chunk = "content=aGk%3D&hash=49f68a5c8493ec2c0bf489821c21fc3b&total_chunks=1";
    let probe = |method: &str, target: String, headers, body: Vec<u8>, expect| {
        (
            method.to_string(),
            target.into_bytes(),
            headers,
            body,
            expect,
        )
    };
    vec![
        // EpiFiles: path, query, form body, credentials.
        probe(
            "GET",
            format!("/epifiles/ws/manifest/{h}"),
            lab(),
            vec![],
            Exactly(400),
        ),
        probe(
            "GET",
            format!("/epifiles/ws/manifestfile/1{h}"),
            lab(),
            vec![],
            Exactly(400),
        ),
        probe(
            "PUT",
            format!("/epifiles/ws/{h}/1"),
            lab(),
            vec![],
            Exactly(400),
        ),
        probe(
            "GET",
            format!("/epifiles/ws/manifestfile?id_manifest={h}"),
            lab(),
            vec![],
            Exactly(400),
        ),
        probe(
            "GET",
            format!("/epifiles/ws/manifest?{h}=1"),
            lab(),
            vec![],
            Exactly(400),
        ),
        probe(
            "POST",
            "/epifiles/ws/manifestfile".into(),
            form(lab()),
            format!("{good_chunk}&filename={h}").into_bytes(),
            Exactly(400),
        ),
        probe(
            "POST",
            "/epifiles/ws/manifestfile".into(),
            form(lab()),
            format!("{h}=1&filename=a.txt&{good_chunk}").into_bytes(),
            Exactly(400),
        ),
        probe(
            "POST",
            format!(
                "/epifiles/ws/manifestfile?filename=a.txt&hash=49f68a5c8493ec2c0bf489821c21fc3b&total_chunks=1&comment={h}"
            ),
            {
                let mut v = lab();
                v.push(("content-type", "application/octet-stream".into()));
                v
            },
            b"hi".to_vec(),
            Exactly(400),
        ),
        probe(
            "PUT",
            "/epifiles/ws/manifest/1".into(),
            form(lab()),
            format!("archived=1&notify_message={h}").into_bytes(),
            Exactly(400),
        ),
        probe(
            "GET",
            "/epifiles/ws/manifest".into(),
            vec![("authorization", basic(b"lab", h.as_bytes()))],
            vec![],
            Exactly(401),
        ),
        probe(
            "POST",
            "/epifiles/ws/manifestfile".into(),
            form(vec![("authorization", basic(h.as_bytes(), b"lab-pw"))]),
            format!("{good_chunk}&filename=a.txt").into_bytes(),
            Exactly(401),
        ),
        probe(
            "GET",
            format!("/epifiles/admin/outbox?after={h}"),
            vec![("authorization", format!("Bearer {ADMIN_TOKEN}"))],
            vec![],
            Exactly(400),
        ),
        // Ingest: path segments.
        probe(
            "GET",
            format!("/api/v1/upload/jobs/{h}"),
            ingest(),
            vec![],
            Exactly(400),
        ),
        probe(
            "POST",
            format!("/api/v1/upload/{h}"),
            ingest(),
            vec![],
            Exactly(400),
        ),
        // Preview: path, query, form body, credentials, on all three routes.
        probe(
            "GET",
            format!("/proxy?objectid={h}&rendition=preview&ticket=t"),
            vec![],
            vec![],
            Exactly(400),
        ),
        probe("GET", format!("/proxy/{h}"), vec![], vec![], Exactly(400)),
        probe(
            "GET",
            format!("/restproxyindex.php?{h}=1"),
            vec![],
            vec![],
            Exactly(400),
        ),
        probe(
            "GET",
            format!("/Enterprise/server/plugins/Elvis/restproxyindex.php?ticket={h}"),
            vec![],
            vec![],
            Exactly(400),
        ),
        probe(
            "POST",
            "/proxy".into(),
            form(vec![]),
            format!("rendition=preview&objectid={h}").into_bytes(),
            Exactly(400),
        ),
        probe(
            "POST",
            "/proxy/logon".into(),
            form(vec![]),
            format!("user=lab&password={h}").into_bytes(),
            Exactly(400),
        ),
        probe(
            "POST",
            "/proxy/logon".into(),
            vec![("authorization", basic(b"lab", h.as_bytes()))],
            vec![],
            Exactly(401),
        ),
        // Upload (its decoding is another task's): never a 5xx.
        probe("GET", format!("/assets/{h}"), upload(), vec![], ClientError),
        probe(
            "POST",
            format!("/assets/{h}/ack"),
            vec![],
            vec![],
            ClientError,
        ),
        probe(
            "GET",
            format!("/commits/{h}"),
            upload(),
            vec![],
            ClientError,
        ),
        probe(
            "GET",
            format!("/commits?acknowledged=false&page={h}"),
            upload(),
            vec![],
            ClientError,
        ),
        // Asset Compute and its journal (another task's): never a 5xx.
        probe(
            "GET",
            format!("/journal/{h}"),
            creds.compute.clone(),
            vec![],
            ClientError,
        ),
        probe(
            "GET",
            format!("/journal/hostile?since={h}"),
            creds.compute.clone(),
            vec![],
            ClientError,
        ),
        probe(
            "POST",
            format!("/process?{h}"),
            creds.compute.clone(),
            vec![],
            ClientError,
        ),
        // Status reads nothing from the request.
        probe(
            "GET",
            format!("/status?{h}"),
            vec![],
            vec![],
            NotServerError,
        ),
    ]
}

#[test]
fn malformed_percent_encoding_is_a_specific_4xx_on_every_family() {
    let dir = temp_dir("hostile-encoding");
    let (host, creds) = start(&dir);
    let mut checked = 0;
    for h in HOSTILE {
        for (method, target, headers, body, expect) in probes(h, &creds) {
            let what = format!("{method} {}", String::from_utf8_lossy(&target));
            let a = exchange(&host, &request(&method, &target, &headers, &body), false);
            check(&what, &a, expect);
            checked += 1;
        }
    }
    // Raw bytes that are not UTF-8 in form bodies and credentials.
    for raw in [&b"\xFF"[..], b"\xC3", b"\xED\xA0\x80", b"%C3\xFF"] {
        let body = [b"user=lab&password=".as_slice(), raw].concat();
        let form = [(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )];
        let a = exchange(
            &host,
            &request("POST", b"/proxy/logon", &form, &body),
            false,
        );
        check("POST /proxy/logon (raw bytes)", &a, Expect::Exactly(400));
        let mut headers = form.to_vec();
        headers.push(("authorization", creds.lab.clone()));
        let body = [b"filename=".as_slice(), raw].concat();
        let a = exchange(
            &host,
            &request("POST", b"/epifiles/ws/manifestfile", &headers, &body),
            false,
        );
        check("POST manifestfile (raw bytes)", &a, Expect::Exactly(400));
        let auth = [("authorization", basic(b"lab", raw))];
        let a = exchange(
            &host,
            &request("GET", b"/epifiles/ws/manifest", &auth, b""),
            false,
        );
        check("Basic with raw bytes", &a, Expect::Exactly(401));
    }
    assert!(checked >= HOSTILE.len() * 25, "{checked} probes");
    assert_nothing_stored(&host, &creds);
    assert!(!host.logs().contains("panicked"), "a guest panicked");
}

type BodyTarget = (&'static str, Vec<(&'static str, String)>, Expect);

/// Sends each target bodies cut short or with broken chunk framing (then
/// ends the connection's sending side, as a client that gave up does).
fn broken_bodies(host: &Host, targets: &[BodyTarget]) {
    let sent = b"filename=a.txt&total_chunks=1&content=aGk";
    for (target, headers, expect) in targets {
        let mut head = format!("POST {target} HTTP/1.1\r\nhost: localhost\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let cases: [(&str, Vec<u8>); 4] = [
            (
                "shorter than its Content-Length",
                [
                    format!("{head}content-length: 1000\r\n\r\n").as_bytes(),
                    sent,
                ]
                .concat(),
            ),
            (
                "chunk size that is not hex",
                format!("{head}transfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
                    .into_bytes(),
            ),
            (
                "chunk cut short",
                format!("{head}transfer-encoding: chunked\r\n\r\n100\r\nabc").into_bytes(),
            ),
            (
                "no last chunk",
                format!("{head}transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n").into_bytes(),
            ),
        ];
        for (why, bytes) in cases {
            let what = format!("POST {target}, body {why}");
            let a = exchange(host, &bytes, true);
            check(&what, &a, *expect);
            if matches!(expect, Expect::BrokenBody) && why.contains("Content-Length") {
                assert!(a.body.contains("Content-Length"), "{what}: {}", a.body);
            }
        }
    }
}

#[test]
fn truncated_and_broken_chunked_bodies_get_a_readable_400() {
    let dir = temp_dir("hostile-bodies");
    let (host, creds) = start(&dir);
    let form = || {
        (
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )
    };
    let json = || ("content-type", "application/json".to_string());
    broken_bodies(
        &host,
        &[
            (
                "/epifiles/ws/manifestfile",
                vec![("authorization", creds.lab.clone()), form()],
                Expect::BrokenBody,
            ),
            ("/proxy/logon", vec![form()], Expect::BrokenBody),
            ("/proxy", vec![form()], Expect::BrokenBody),
            (
                "/api/v1/upload/enqueue",
                vec![("authorization", format!("ApiKey {INGEST_KEY}")), json()],
                Expect::BrokenBody,
            ),
            // Read by the shared component glue (`Req::read_body`).
            (
                "/commits",
                vec![("authorization", format!("Bearer {UPLOAD_KEY}")), json()],
                Expect::BrokenBody,
            ),
        ],
    );
    assert_nothing_stored(&host, &creds);
}

/// The same for the bodies the upload service and Asset Compute stream
/// themselves: any 4xx, but never internals in the message.
#[test]
fn streamed_upload_and_compute_bodies_cut_short_show_no_internals() {
    let dir = temp_dir("hostile-streams");
    let (host, creds) = start(&dir);
    broken_bodies(
        &host,
        &[
            ("/process", creds.compute.clone(), Expect::ClientError),
            (
                "/assets",
                vec![
                    ("authorization", format!("Bearer {UPLOAD_KEY}")),
                    ("content-type", "application/octet-stream".into()),
                    ("x-filename", "a.bin".into()),
                ],
                Expect::ClientError,
            ),
        ],
    );
    assert_nothing_stored(&host, &creds);
}

#[test]
fn unauthenticated_large_epifiles_uploads_are_refused_at_once() {
    let dir = temp_dir("hostile-large");
    let (host, creds) = start(&dir);
    let addr = host.base.trim_start_matches("http://").to_string();
    let little = vec![b'a'; 64 * 1024];
    // 30 MiB declared: under the default request limit (4 × 8 MiB chunks
    // plus form fields), so only the credentials can refuse it at once;
    // 40 MiB with good credentials: over it, refused from the header.
    for (auth, declared, expected) in [
        (None, 30 << 20, 401),
        (Some(basic(b"lab", b"wrong")), 30 << 20, 401),
        (Some(basic(b"lab", "%C3é".as_bytes())), 30 << 20, 401),
        (Some(creds.lab.clone()), 40 << 20, 413),
    ] {
        for target in ["/epifiles/ws/manifestfile", "/epifiles/ws/manifestfile/abc"] {
            let method = if target.ends_with("abc") {
                "PUT"
            } else {
                "POST"
            };
            let mut head = format!(
                "{method} {target} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {declared}\r\n"
            );
            if let Some(a) = &auth {
                head.push_str(&format!("authorization: {a}\r\n"));
            }
            head.push_str("\r\n");
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let started = Instant::now();
            s.write_all(head.as_bytes()).unwrap();
            let _ = s.write_all(&little);
            // The rest of the 30 MiB never comes: the answer must not wait
            // for it.
            let a = read_answer(&mut s);
            let took = started.elapsed();
            validate_epifiles(head.as_bytes(), &a);
            let what = format!("{method} {target} with {auth:?}");
            assert!(took < Duration::from_secs(2), "{what}: took {took:?}");
            assert_eq!(a.status, expected, "{what}: {}", a.body);
            check(&what, &a, Expect::ClientError);
            let code = tag(&a.body, "code");
            let want = if expected == 401 {
                "unauthorized"
            } else {
                "request_too_large"
            };
            assert_eq!(code.as_deref(), Some(want), "{what}: {}", a.body);
        }
    }
    assert_nothing_stored(&host, &creds);
}

/// A PNG of its signature, an IHDR claiming `w` × `h` pixels (`color`
/// type, `depth` bits), a token of image data and an IEND.
fn png_header(w: u32, h: u32, depth: u8, color: u8, adam7: bool) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let crc = assetgate_imaging::encode::crc32(&c[4..]);
        c.extend_from_slice(&crc.to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, adam7 as u8]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]));
    png.extend(chunk(b"IEND", b""));
    png
}

#[test]
fn oversized_png_sources_are_413_naming_the_limit_and_truncated_ones_422() {
    let dir = temp_dir("hostile-png");
    let (host, creds) = start(&dir);
    let logon = exchange(
        &host,
        &request(
            "POST",
            b"/proxy/logon",
            &[("authorization", creds.lab.clone())],
            b"",
        ),
        false,
    );
    assert_eq!(logon.status, 200, "{}", logon.body);
    let ticket: serde_json::Value = serde_json::from_str(&logon.body).unwrap();
    let ticket = ticket["ticket"].as_str().unwrap().to_string();
    // Within the pixel limit, a PNG too large to decode whole is read row
    // by row (crates/imaging/src/png_rows.rs): this header-only one then
    // fails as the truncated image it is, 422, without running out of
    // memory.
    // An interlaced one is decoded whole, and that is over the budget.
    for (w, h, depth, color, adam7, status, variable) in [
        (
            20_000,
            20_000,
            8,
            6,
            false,
            413,
            "preview_max_source_pixels",
        ),
        (
            60_000,
            60_000,
            16,
            6,
            false,
            413,
            "preview_max_source_pixels",
        ),
        (7_000, 7_000, 16, 6, false, 422, "cannot be read"),
        (7_000, 7_000, 16, 6, true, 413, "preview_max_decode_bytes"),
    ] {
        let png = png_header(w, h, depth, color, adam7);
        let md5 = {
            use md5::Digest;
            hex::encode(md5::Md5::digest(&png))
        };
        let target =
            format!("/epifiles/ws/manifestfile?filename=big.png&total_chunks=1&hash={md5}");
        let headers = [
            ("authorization", creds.lab.clone()),
            ("content-type", "application/octet-stream".to_string()),
        ];
        let a = exchange(
            &host,
            &request("POST", target.as_bytes(), &headers, &png),
            false,
        );
        assert_eq!(a.status, 200, "{}", a.body);
        let id = tag(&a.body, "id").unwrap();
        for args in ["", "&preview-args=maxWidth_100.png"] {
            let target = format!("/proxy?ticket={ticket}&objectid={id}&rendition=preview{args}");
            let a = exchange(&host, &request("GET", target.as_bytes(), &[], b""), false);
            let what = format!("{w}x{h} {depth}-bit PNG{args}");
            check(&what, &a, Expect::ClientError);
            assert_eq!(a.status, status, "{what}: {}", a.body);
            assert!(a.body.contains(variable), "{what}: {}", a.body);
            assert!(!a.body.contains("Memory limit"), "{what}: {}", a.body);
        }
    }
}
