//! Query strings, form bodies, percent-decoding and submitted file names
//! (crates/web: query.rs, decode.rs, filename.rs): every query parameter,
//! form field, path segment, `X-Filename` and `filename*=` goes through
//! them.
//!
//! Input: bytes, read as a query string, a form body, a path segment, a
//! file name; then their lines (split at the first tab) are form-encoded
//! and parsed back.
//! Invariants: the strict decoder accepts exactly what an independent
//! reading accepts (two hex digits per `%`, UTF-8 once decoded, no NUL)
//! and then agrees with the lenient one; strict parsing fails or gives the
//! lenient pairs; encode then decode is the identity in every mode;
//! encoding writes only unreserved characters and `%XX`; `get` is the
//! first value `parse` gives; form pairs round-trip; a safe file name is a
//! base name without controls, at most 255 bytes, never empty, idempotent;
//! an RFC 8187 value decodes back to its name.
#![no_main]

use assetgate_web::{decode, filename, query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lossy = String::from_utf8_lossy(data);
    let s = lossy.as_ref();

    for plus in [false, true] {
        // The lenient decoder (older callers).
        let d = query::percent_decode(s, plus);
        assert!(d.len() <= s.len(), "{s:?} grew to {d:?}");
        let escapes = s.contains('%') || plus && s.contains('+');
        if !escapes {
            assert_eq!(d, s);
        }
        assert_eq!(query::percent_decode(&query::percent_encode(s), plus), s);
        // The strict one (request data).
        match decode::percent_decode(data, plus) {
            Ok(t) => {
                assert!(strictly_valid(data, plus), "{data:?} accepted");
                // Raw bytes that are not UTF-8 may complete an escape's
                // character; the lenient reader saw them replaced.
                if std::str::from_utf8(data).is_ok() {
                    assert_eq!(t, d, "strict and lenient disagree on {s:?}");
                }
            }
            Err(_) => assert!(!strictly_valid(data, plus), "{data:?} refused"),
        }
        if !s.contains('\0') {
            let e = query::percent_encode(s);
            assert_eq!(decode::percent_decode(e.as_bytes(), plus).as_deref(), Ok(s));
        }
    }
    encoded_chars(&query::percent_encode(s));

    let pairs = query::parse(s);
    // A few names only: `get` parses the whole string each time.
    for (k, _) in pairs.iter().take(4) {
        let first = pairs.iter().find(|(k2, _)| k2 == k).map(|(_, v)| v);
        assert_eq!(query::get(s, k).as_ref(), first, "get({k:?})");
    }
    if let Ok(strict) = query::parse_strict(data)
        && std::str::from_utf8(data).is_ok()
    {
        assert_eq!(strict, pairs, "strict and lenient pairs of {s:?}");
    }

    let fields: Vec<(&str, &str)> = s
        .lines()
        .map(|l| l.split_once('\t').unwrap_or((l, "")))
        .collect();
    let encoded = query::form_encode(&fields);
    let expected: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        query::parse(&encoded),
        expected,
        "form pairs through {encoded:?}"
    );
    if !s.contains('\0') {
        assert_eq!(
            query::parse_strict(encoded.as_bytes()).as_ref(),
            Ok(&expected)
        );
    }

    let safe = filename::safe_filename(s);
    assert!(
        !safe.is_empty() && safe.len() <= filename::MAX_NAME_BYTES,
        "{safe:?}"
    );
    assert!(
        !safe.contains(['/', '\\']) && !safe.chars().any(char::is_control),
        "{safe:?}"
    );
    assert!(!safe.starts_with('.'), "{safe:?}");
    assert_eq!(filename::safe_filename(&safe), safe, "not idempotent");
    let cd = filename::attachment(s);
    assert!(cd.bytes().all(|b| (0x20..0x7f).contains(&b)), "{cd:?}");
    if !s.contains('\0') {
        let v = format!("UTF-8''{}", filename::encode_ext_value(s));
        assert_eq!(filename::decode_ext_value(&v).as_deref(), Ok(s), "{v}");
    }
    let _ = filename::decode_ext_value(s);
    if let Ok(n) = filename::decode_header_name(s) {
        assert_eq!(Ok(n), decode::percent_decode(s.as_bytes(), false));
    }
});

/// `%` then two hex digits everywhere, and the decoded bytes UTF-8
/// without NUL: what the strict decoder must accept.
fn strictly_valid(input: &[u8], plus: bool) -> bool {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let h = |j: usize| input.get(j).filter(|c| c.is_ascii_hexdigit());
                let (Some(hi), Some(lo)) = (h(i + 1), h(i + 2)) else {
                    return false;
                };
                let v = |c: &u8| (*c as char).to_digit(16).unwrap() as u8;
                out.push(v(hi) << 4 | v(lo));
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    !out.contains(&0) && std::str::from_utf8(&out).is_ok()
}

/// Only unreserved characters and upper-case `%XX` escapes.
fn encoded_chars(e: &str) {
    let b = e.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.len() >= i + 3
                && b[i + 1..i + 3]
                    .iter()
                    .all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F'));
            assert!(ok, "bad escape in {e}");
            i += 3;
        } else {
            assert!(
                b[i].is_ascii_alphanumeric() || b"-_.~".contains(&b[i]),
                "{e}"
            );
            i += 1;
        }
    }
}
