//! EpiFiles request parameters (crates/epifiles/src/params.rs): a form
//! body, a multipart body or a raw chunk, plus the query string; typed
//! values; the base64 chunk.
//!
//! Input: a mode byte. Modes 0–3: query, content type (mode 3 only) and
//! body as NUL-separated fields, the body sent as a form, a form without a
//! content type, or with the field's content type. Mode 4: lines of
//! `name<TAB>value` sent both as a form body and as a multipart body.
//! Invariants: a refusal is a 4xx with a code; typed readers agree with the
//! text they read; the first value wins, body before query; a decoded
//! chunk is canonical base64 of its bytes; a raw body is the chunk as sent;
//! a form and a multipart body with the same fields read the same (plain
//! field names are always accepted).
#![no_main]

use assetgate_epifiles::params::{Params, decode_base64, encode_base64};
use assetgate_fuzz::Input;
use assetgate_web::query;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 10] = [
    "content",
    "hash",
    "md5",
    "chunk_index",
    "total_chunks",
    "id_manifest",
    "is_last",
    "filename",
    "limit",
    "",
];
const BOUNDARY: &str = "fuzzB0undary";

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.byte() % 5;
    if mode == 4 {
        return form_and_multipart(&input.text());
    }
    let q = input.text();
    let ct = match mode {
        0 => Some("application/x-www-form-urlencoded".to_string()),
        1 => None,
        2 => Some("application/octet-stream".to_string()),
        _ => Some(input.text()),
    };
    let body = input.rest().to_vec();
    match Params::parse(&q, ct.as_deref(), body.clone()) {
        Ok(p) => check(p, &q, ct.as_deref(), &body),
        Err(e) => {
            assert!((400..500).contains(&e.status), "{}", e.message);
            assert!(!e.code.is_empty());
        }
    }
    let text = String::from_utf8_lossy(&body);
    if let Ok(bytes) = decode_base64(&text) {
        assert_eq!(encode_base64(&bytes), cleaned(&text));
    }
});

/// What the base64 decoder reads: line breaks dropped, spaces as `+`.
fn cleaned(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .map(|c| if c == ' ' { '+' } else { c })
        .collect()
}

fn check(mut p: Params, q: &str, ct: Option<&str>, body: &[u8]) {
    let mime = ct
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let raw = mime == "application/octet-stream" && !body.is_empty();
    // The pairs in the order they are looked up (forms only: a multipart
    // body's fields are checked in mode 4).
    let form = mime.is_empty() || mime == "application/x-www-form-urlencoded";
    let mut pairs = Vec::new();
    if form && !body.is_empty() {
        pairs = query::parse_strict(body).expect("accepted, so it decodes");
    }
    pairs.extend(query::parse_strict(q.as_bytes()).expect("accepted, so it decodes"));
    for name in NAMES {
        let v = p.get(name);
        assert!(v.is_none_or(|v| !v.trim().is_empty()));
        if form || body.is_empty() {
            let first = pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.trim().is_empty());
            assert_eq!(v, first, "`{name}`");
        }
        match p.number(name) {
            Ok(Some(n)) => assert_eq!(v.unwrap().trim().parse::<u64>(), Ok(n)),
            Ok(None) => assert!(v.is_none()),
            Err(e) => assert_eq!((e.status, e.code), (400, "invalid_parameter")),
        }
        match p.flag(name) {
            Ok(Some(f)) => assert!(matches!(
                (f, v.unwrap().trim().to_ascii_lowercase().as_str()),
                (true, "1" | "true" | "yes") | (false, "0" | "false" | "no")
            )),
            Ok(None) => assert!(v.is_none()),
            Err(e) => assert_eq!(e.status, 400),
        }
        if let Ok(Some(m)) = p.md5(name) {
            assert!(m.len() == 32 && m.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        }
    }
    let content = pairs
        .iter()
        .find(|(k, _)| k == "content")
        .map(|(_, v)| v.clone());
    match p.take_content() {
        Ok(bytes) if raw => assert_eq!(bytes, body),
        Ok(bytes) => {
            if form || body.is_empty() {
                let text = content.expect("content was given");
                assert_eq!(encode_base64(&bytes), cleaned(&text));
            }
        }
        Err(e) => {
            assert!(!raw, "a raw body is the chunk");
            assert_eq!(e.status, 400);
        }
    }
}

fn form_and_multipart(text: &str) {
    let fields: Vec<(&str, &str)> = text
        .lines()
        .map(|l| l.split_once('\t').unwrap_or((l, "")))
        // What a multipart writer cannot carry as it is: line breaks in a
        // name, the boundary in a value.
        .filter(|(k, v)| !k.contains(['\r', '\n']) && !v.contains(BOUNDARY) && !v.contains('\r'))
        .collect();
    let form = query::form_encode(&fields);
    let mut mp = Vec::new();
    for (k, v) in &fields {
        let name = k.replace('\\', "\\\\").replace('"', "\\\"");
        mp.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{v}\r\n"
            )
            .as_bytes(),
        );
    }
    mp.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let a = Params::parse(
        "",
        Some("application/x-www-form-urlencoded"),
        form.into_bytes(),
    );
    let b = Params::parse(
        "",
        Some(&ct),
        if fields.is_empty() { Vec::new() } else { mp },
    );
    let a = a.expect("a form of any fields");
    // Plain names (printable ASCII, no quote or backslash) must be read;
    // others may be refused by the part-header rules, not misread.
    let plain = |k: &str| {
        k.bytes()
            .all(|c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
    };
    let b = match b {
        Ok(b) => b,
        Err(e) if fields.iter().all(|(k, _)| plain(k)) => {
            panic!("multipart refused: {}", e.message)
        }
        Err(_) => return,
    };
    for (k, _) in &fields {
        assert_eq!(a.get(k), b.get(k), "field `{k}`");
    }
    for name in NAMES {
        assert_eq!(a.get(name), b.get(name), "field `{name}`");
    }
}
