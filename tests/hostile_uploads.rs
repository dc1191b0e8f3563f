//! Hostile uploads end to end (issue 16), on the real `spin.toml`: broken
//! multipart framing and malformed file-name encodings are refused with a
//! 400 that says why and leave nothing in the store; hostile names that do
//! decode are accepted and come back only in their safe form — in the
//! metadata, in the download's `Content-Disposition` and in the catalog
//! record, which keeps the submitted name beside it.

mod common;

use assetgate_web::filename::{self, safe_filename};
use common::*;
use std::path::PathBuf;

const KEY: &str = "hostile-upload-key-0123456789";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n0123456789abcdef0123456789abcdef";

struct Service {
    host: Host,
    dir: PathBuf,
}

fn start(name: &str) -> Service {
    let dir = temp_dir(name);
    let host = HostConfig::new("spin.toml", &dir)
        .var("upload_api_key", KEY)
        .start();
    Service { host, dir }
}

/// `POST /assets` with exactly these header lines (raw bytes: some tests
/// send what no HTTP library would) and body; status and JSON body.
fn post(svc: &Service, headers: &[Vec<u8>], body: &[u8]) -> (u16, serde_json::Value) {
    let mut head = format!(
        "POST /assets HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for h in headers {
        head.extend_from_slice(h);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let (status, _, text) = raw_exchange(&svc.host, &head, body);
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json)
}

fn header(name: &str, value: &[u8]) -> Vec<u8> {
    let mut h = format!("{name}: ").into_bytes();
    h.extend_from_slice(value);
    h
}

const BOUNDARY: &str = "----hostile-boundary-7MA4YWxk";

fn form_type() -> Vec<u8> {
    header(
        "content-type",
        format!("multipart/form-data; boundary={BOUNDARY}").as_bytes(),
    )
}

/// A form whose `file` part has `part_headers` (raw, CRLF-separated).
fn form(part_headers: &[u8]) -> Vec<u8> {
    let mut b = format!("--{BOUNDARY}\r\n").into_bytes();
    b.extend_from_slice(part_headers);
    b.extend_from_slice(b"\r\n\r\n");
    b.extend_from_slice(PNG);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn file_part(disposition_params: &str) -> Vec<u8> {
    format!("Content-Disposition: form-data; name=\"file\"{disposition_params}\r\nContent-Type: image/png")
        .into_bytes()
}

/// `POST /assets` that must be refused: 400, a message naming the problem
/// (`why`), and the store exactly as it was.
fn assert_refused(svc: &Service, case: &str, headers: &[Vec<u8>], body: &[u8], why: &str) {
    let before = store_keys(&svc.dir);
    let (status, body) = post(svc, headers, body);
    assert_eq!(status, 400, "{case}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains(&why.to_lowercase()),
        "{case}: the message should mention `{why}`: {body}"
    );
    assert_eq!(store_keys(&svc.dir), before, "{case}: something was stored");
}

/// One accepted upload, so that the housekeeping records every request
/// touches exist before the store is compared.
fn warm_up(svc: &Service) {
    let (status, body) = post(svc, &[header("content-type", b"image/png")], PNG);
    assert_eq!(status, 201, "{body}");
    post(svc, &[header("content-type", b"image/png")], PNG);
    let keys = store_keys(&svc.dir);
    assert!(
        keys.iter()
            .any(|k| k == &format!("rec/asset/{}", body["id"].as_str().unwrap())),
        "the store is visible to the test: {keys:?}"
    );
}

#[test]
fn broken_multipart_framing_is_refused_and_stores_nothing() {
    let svc = start("hostile-framing");
    warm_up(&svc);
    let good = file_part("; filename=\"a.png\"");
    let ct = |v: &str| vec![header("content-type", v.as_bytes())];
    let boundary_cases: Vec<(String, &str)> = vec![
        ("multipart/form-data".into(), "no boundary"),
        ("multipart/form-data;".into(), "no boundary"),
        ("multipart/form-data; charset=utf-8".into(), "no boundary"),
        ("Multipart/Form-Data".into(), "no boundary"),
        ("multipart/form-data; boundary=".into(), "1 to 70"),
        ("multipart/form-data; boundary=\"\"".into(), "1 to 70"),
        (
            format!("multipart/form-data; boundary={}", "b".repeat(71)),
            "1 to 70",
        ),
        (
            format!("multipart/form-data; boundary={}", "b".repeat(5000)),
            "1 to 70",
        ),
        ("multipart/form-data; boundary=a{b}".into(), "may hold"),
        ("multipart/form-data; boundary=a@b".into(), "may hold"),
        (
            "multipart/form-data; boundary=\"a\\\"b\"".into(),
            "may hold",
        ),
        (
            "multipart/form-data; boundary=\"ab \"".into(),
            "end with a space",
        ),
        (
            "multipart/form-data; boundary=x; boundary=y".into(),
            "twice",
        ),
        (
            "multipart/form-data; boundary=\"open".into(),
            "not terminated",
        ),
    ];
    for (content_type, why) in &boundary_cases {
        // The body is a well-formed form for *some* boundary: refused all
        // the same, not stored as a raw file of type multipart/form-data.
        assert_refused(&svc, content_type, &ct(content_type), &form(&good), why);
    }

    let many_lines: String = (0..40)
        .map(|i| format!("\r\nX-Pad-{i}: {}", "p".repeat(1000)))
        .collect();
    let header_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "20 KiB header line",
            [
                good.clone(),
                format!("\r\nX-Junk: {}", "j".repeat(20 * 1024)).into_bytes(),
            ]
            .concat(),
            "exceed",
        ),
        (
            "64 KiB file name",
            file_part(&format!("; filename=\"{}.png\"", "n".repeat(64 * 1024))),
            "exceed",
        ),
        (
            "40 KiB over 40 lines",
            [good.clone(), many_lines.into_bytes()].concat(),
            "exceed",
        ),
        (
            "too many header lines",
            [
                good.clone(),
                (0..20)
                    .map(|i| format!("\r\nX-{i}: v"))
                    .collect::<String>()
                    .into_bytes(),
            ]
            .concat(),
            "header lines",
        ),
        (
            "bare LF in a file name",
            file_part("; filename=\"a\nb.png\""),
            "bare CR or LF",
        ),
        (
            "bare CR in a file name",
            file_part("; filename=\"a\rb.png\""),
            "bare CR or LF",
        ),
        (
            "NUL in a file name",
            file_part("; filename=\"a\0b.png\""),
            "NUL",
        ),
        (
            "folded header",
            [good.clone(), b"\r\n folded".to_vec()].concat(),
            "folded",
        ),
        (
            "line without colon",
            [good.clone(), b"\r\nno colon here".to_vec()].concat(),
            "no `:`",
        ),
        (
            "two dispositions",
            [
                good.clone(),
                b"\r\nContent-Disposition: form-data; name=\"file\"".to_vec(),
            ]
            .concat(),
            "two",
        ),
        (
            "unterminated quote",
            file_part("; filename=\"a.png"),
            "not terminated",
        ),
        (
            "repeated filename",
            file_part("; filename=a; filename=b"),
            "twice",
        ),
    ];
    for (case, part_headers, why) in &header_cases {
        assert_refused(&svc, case, &[form_type()], &form(part_headers), why);
    }
    let mut latin1 = file_part("; filename=\"caf");
    latin1.extend_from_slice(b"\xe9.png\"");
    assert_refused(
        &svc,
        "Latin-1 file name",
        &[form_type()],
        &form(&latin1),
        "UTF-8",
    );

    // Bodies that end or go on where they must not.
    let whole = form(&good);
    let mut unterminated = format!("--{BOUNDARY}\r\n").into_bytes();
    unterminated.extend_from_slice(&good);
    let mut after_close = whole.clone();
    after_close.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"evil.sh\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n")
            .as_bytes(),
    );
    let mut long_epilogue = whole.clone();
    long_epilogue.extend_from_slice(&vec![b'e'; 64 * 1024]);
    let mut long_preamble = vec![b'p'; 64 * 1024];
    long_preamble.extend_from_slice(b"\r\n");
    long_preamble.extend_from_slice(&whole);
    let many_parts: Vec<u8> = (0..40)
        .flat_map(|i| {
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"x{i}\"\r\n\r\nv\r\n")
                .into_bytes()
        })
        .chain(whole.clone())
        .collect();
    let body_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("headers never end", unterminated, "inside a part's headers"),
        (
            "body cut in the file",
            whole[..whole.len() - 12].to_vec(),
            "closing boundary",
        ),
        ("no boundary line at all", PNG.to_vec(), "no boundary line"),
        (
            "a part after the closing boundary",
            after_close,
            "after the closing boundary",
        ),
        (
            "64 KiB epilogue",
            long_epilogue,
            "after the closing boundary",
        ),
        (
            "64 KiB preamble",
            long_preamble,
            "before the first boundary",
        ),
        ("40 parts", many_parts, "more than 32 parts"),
    ];
    for (case, body, why) in &body_cases {
        assert_refused(&svc, case, &[form_type()], body, why);
    }
}

/// Percent garbage where a file name is decoded strictly.
const BAD_ESCAPES: &[&str] = &[
    "%C3\u{e9}.jpg", // an escape, then a raw multi-byte character
    "%",
    "100%",
    "%FF.jpg",
    "%G1.jpg",
    "a%2",
    "%C3",
    "%E2%82",
    "%C0%AF", // an overlong `/`
    "%ED%A0%80",
    "a%00b",
];

#[test]
fn malformed_name_encodings_are_refused_and_store_nothing() {
    let svc = start("hostile-encodings");
    warm_up(&svc);
    for bad in BAD_ESCAPES {
        let ext = format!("UTF-8''{bad}");
        let part = file_part(&format!("; filename=\"ok.png\"; filename*={ext}"));
        assert_refused(
            &svc,
            &format!("part filename*={ext}"),
            &[form_type()],
            &form(&part),
            "filename*",
        );

        let raw = [
            header("content-type", b"image/png"),
            header(
                "content-disposition",
                format!("attachment; filename*={ext}").as_bytes(),
            ),
        ];
        assert_refused(
            &svc,
            &format!("raw filename*={ext}"),
            &raw,
            PNG,
            "filename*",
        );

        let raw = [
            header("content-type", b"image/png"),
            header("x-filename", bad.as_bytes()),
        ];
        assert_refused(&svc, &format!("X-Filename: {bad}"), &raw, PNG, "X-Filename");
    }
    // RFC 8187's own rules: characters that must be escaped, charsets,
    // language tags, the three fields.
    for ext in [
        "UTF-8''a b.jpg",
        "UTF-8''\u{e9}t\u{e9}.jpg",
        "UTF-8''a\"b",
        "UTF-8''a'b",
        "UTF-8''a/b",
        "KOI8-R''abc",
        "UTF-8'not a tag'abc",
        "UTF-8'abc",
        "abc.jpg",
    ] {
        let part = file_part(&format!("; filename*={ext}"));
        assert_refused(
            &svc,
            &format!("part filename*={ext}"),
            &[form_type()],
            &form(&part),
            "filename*",
        );
    }
}

/// Names an attacker would try, and what must be left of them.
const NAMED: &[(&str, &str)] = &[
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("/var/www/html/", "file"),
    ("..", "file"),
    (".", "file"),
    ("....", "file"),
    (".htaccess", "htaccess"),
    (
        "evil.txt\r\nSet-Cookie: session=stolen",
        "evil.txtSet-Cookie_ session=stolen",
    ),
    ("a\tb\u{7f}c\u{85}d\u{9b}.png", "abcd.png"),
    ("\u{202e}gnp.exe", "gnp.exe"),
    ("quote\"and\\backslash.png", "backslash.png"),
    ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
    ("con.txt", "_con.txt"),
    ("what?<*>|.jpg", "what_____.jpg"),
    ("été 日本語 😀.jpg", "été 日本語 😀.jpg"),
    ("%41%42%2F..%2F.png", "%41%42%2F..%2F.png"),
    ("fullwidth\u{ff0f}slash.png", "fullwidth_slash.png"),
    ("trailing dots and spaces. . .", "trailing dots and spaces"),
];

/// Deterministic pseudo-random names built from hostile pieces.
fn generated_names(n: usize) -> Vec<String> {
    const PIECES: &[&str] = &[
        "../",
        "..\\",
        ".",
        "..",
        "/",
        "\\",
        "\r\n",
        "\r",
        "\n",
        "\t",
        "\u{1}",
        "\u{7f}",
        "\u{9f}",
        "\"",
        "'",
        "%",
        "%2F",
        "%00",
        ";",
        "=",
        ":",
        "*",
        "?",
        "<",
        ">",
        "|",
        "\u{202e}",
        "\u{200b}",
        "\u{2028}",
        "\u{feff}",
        "\u{ff0f}",
        "CON",
        "nul",
        " ",
        "é",
        "\0",
        "日本",
        "😀",
        "a",
        "photo",
        ".jpg",
        ".png",
        "x=1",
        "filename=",
        "\u{fffd}",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |m: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m as u64) as usize
    };
    let mut names = Vec::new();
    for _ in 0..n {
        let mut name = String::new();
        for _ in 0..1 + next(12) {
            name.push_str(PIECES[next(PIECES.len())]);
        }
        names.push(name);
    }
    names.push(format!("{}.png", "é".repeat(1000)));
    names.push(format!("{}.tar.gz", "../".repeat(300)));
    names.push("x".repeat(2000));
    names
}

/// How a name travels: the four ways `POST /assets` takes one.
#[derive(Debug, Clone, Copy)]
enum Channel {
    /// `filename="…"`, quotes and backslashes escaped (RFC 7578 quoted
    /// string); names with CR, LF or NUL cannot travel this way.
    PartQuoted,
    /// `filename*=UTF-8''…` next to a plain `filename=`.
    PartExtended,
    /// A raw body with `X-Filename: <percent-encoded>`.
    XFilename,
    /// A raw body with `Content-Disposition: attachment; filename*=…`.
    RawDisposition,
}

fn upload_named(svc: &Service, name: &str, channel: Channel) -> (u16, serde_json::Value) {
    let ext = filename::encode_ext_value(name);
    match channel {
        Channel::PartQuoted => {
            let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
            post(
                svc,
                &[form_type()],
                &form(&file_part(&format!("; filename=\"{quoted}\""))),
            )
        }
        Channel::PartExtended => post(
            svc,
            &[form_type()],
            &form(&file_part(&format!(
                "; filename=\"fallback.png\"; filename*=UTF-8''{ext}"
            ))),
        ),
        Channel::XFilename => post(
            svc,
            &[
                header("content-type", b"image/png"),
                header("x-filename", ext.as_bytes()),
            ],
            PNG,
        ),
        Channel::RawDisposition => post(
            svc,
            &[
                header("content-type", b"image/png"),
                header(
                    "content-disposition",
                    format!("attachment; filename*=UTF-8''{ext}").as_bytes(),
                ),
            ],
            PNG,
        ),
    }
}

/// What every name a client receives must be, checked on its own terms
/// (not by calling the function under test).
fn assert_safe_name(name: &str, context: &str) {
    assert!(!name.is_empty(), "{context}: empty name");
    assert!(name.len() <= 255, "{context}: {} bytes", name.len());
    assert!(
        !name.contains(['/', '\\']),
        "{context}: separator in {name:?}"
    );
    assert!(
        !name.chars().any(char::is_control),
        "{context}: control in {name:?}"
    );
    assert!(
        !name.contains(['\u{202e}', '\u{200b}', '\u{2028}', '\u{feff}', '"']),
        "{context}: invisible or quote in {name:?}"
    );
    assert!(
        !name.starts_with('.') && name != "..",
        "{context}: {name:?}"
    );
}

/// The accepted upload `asset` of `submitted`: its metadata, download and
/// catalog record all carry the safe name only.
fn assert_served_safe(svc: &Service, asset: &serde_json::Value, submitted: &str, context: &str) {
    let id = asset["id"].as_str().unwrap();
    let safe = safe_filename(submitted);
    assert_eq!(
        asset["originalName"],
        safe.as_str(),
        "{context}: upload answer"
    );
    assert_safe_name(&safe, context);
    let auth = format!("Bearer {KEY}");
    let meta = send(
        "GET",
        &svc.host.url(&format!("/assets/{id}")),
        &[("authorization", &auth)],
        &[],
    );
    assert_eq!(meta.status, 200, "{context}");
    assert_eq!(
        meta.json()["originalName"],
        safe.as_str(),
        "{context}: metadata"
    );

    let d = send(
        "GET",
        &svc.host.url(&format!("/assets/{id}/download")),
        &[("authorization", &auth)],
        &[],
    );
    assert_eq!(d.status, 200, "{context}");
    assert_eq!(d.body, PNG, "{context}");
    let cd = d
        .header("content-disposition")
        .expect("a Content-Disposition");
    assert!(
        cd.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "{context}: {cd:?}"
    );
    let fallback = cd
        .strip_prefix("attachment; filename=\"")
        .and_then(|r| r.split_once("\"; filename*=UTF-8''"))
        .unwrap_or_else(|| panic!("{context}: unexpected shape {cd:?}"))
        .0;
    assert!(!fallback.contains(['"', '\\', '%']), "{context}: {cd:?}");
    let decoded = filename::parse_disposition(cd).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_eq!(
        decoded.filename.as_deref(),
        Some(safe.as_str()),
        "{context}: filename* round trip"
    );

    // The catalog keeps what was submitted, beside the safe name.
    let record = store_value(&svc.dir, &format!("rec/asset/{id}")).expect("the asset's record");
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let value = &record["value"];
    assert_eq!(value["original_name"], safe.as_str(), "{context}: record");
    if safe == submitted {
        assert!(value.get("submitted_name").is_none(), "{context}: {value}");
    } else {
        assert_eq!(
            value["submitted_name"], submitted,
            "{context}: submitted name kept"
        );
    }
}

#[test]
fn hostile_names_are_stored_and_served_safe() {
    let svc = start("hostile-names");
    let channels = [
        Channel::PartQuoted,
        Channel::PartExtended,
        Channel::XFilename,
        Channel::RawDisposition,
    ];
    for (name, want) in NAMED {
        assert_eq!(safe_filename(name), *want, "the rule for {name:?}");
        for channel in channels {
            if matches!(channel, Channel::PartQuoted) && name.contains(['\r', '\n', '\0']) {
                continue;
            }
            let context = format!("{name:?} via {channel:?}");
            let (status, asset) = upload_named(&svc, name, channel);
            assert_eq!(status, 201, "{context}: {asset}");
            assert_served_safe(&svc, &asset, name, &context);
        }
    }
    for (i, name) in generated_names(60).iter().enumerate() {
        let channel = channels[i % channels.len()];
        let context = format!("{name:?} via {channel:?}");
        let (status, reply) = upload_named(&svc, name, channel);
        let quoted_breaks = matches!(channel, Channel::PartQuoted) && name.contains(['\r', '\n']);
        if name.contains('\0') || quoted_breaks {
            // Cannot be sent safely this way (NUL is never a name; a raw
            // CR/LF ends a header line): refused, never stored.
            assert_eq!(status, 400, "{context}: {reply}");
            continue;
        }
        assert_eq!(status, 201, "{context}: {reply}");
        assert_served_safe(&svc, &reply, name, &context);
    }
}
