//! The Asset Compute `/process` body (crates/compute/src/request.rs) and the
//! URL policy every source, target, zip member and watermark goes through
//! (urls.rs), as the compute component reads them.
//!
//! Input: one mode byte, then either a JSON body (even) or one URL (odd).
//! Invariants: a body that is not a JSON object with renditions is refused
//! with 400; an accepted request respects every documented bound (1–20
//! renditions, sides ≤ 8192, quality 1–100, zip paths relative without
//! `..`, checked URLs) and survives the job queue's JSON round trip; a
//! `data:` URL's bytes are its payload decoded; redaction never shows a
//! query.
#![no_main]

use assetgate_compute::Config;
use assetgate_compute::request::{self, ProcessRequest, Requested, Target};
use assetgate_compute::urls::{self, Location, Use};
use assetgate_fuzz::Input;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let cfg = Config::default();
    if input.byte() & 1 == 1 {
        let url = String::from_utf8_lossy(input.rest());
        return check_url(&url, &cfg);
    }
    let Ok(body) = serde_json::from_slice::<Value>(input.rest()) else {
        return;
    };
    match request::parse(&body, &cfg) {
        Ok(req) => check(&req, &body, &cfg),
        Err(e) => {
            assert_eq!(e.status, 400, "{}", e.message);
            assert!(!e.message.is_empty());
        }
    }
});

fn check(req: &ProcessRequest, body: &Value, cfg: &Config) {
    assert!(body.is_object());
    assert!((1..=cfg.max_renditions).contains(&req.renditions.len()));
    let side = cfg.max_output_side;
    for r in &req.renditions {
        let Requested::Make(r) = r else { continue };
        assert!(r.width.is_none_or(|w| (1..=side).contains(&w)));
        assert!(r.height.is_none_or(|h| (1..=side).contains(&h)));
        assert!(r.quality.is_none_or(|q| (1..=100).contains(&q)));
        assert!(r.embed_binary_limit <= assetgate_compute::config::MAX_EMBED_BYTES);
        for f in &r.files {
            let p = &f.path;
            assert!(
                !p.is_empty() && !p.starts_with('/') && !p.contains('\\'),
                "{p:?}"
            );
            assert!(
                p.split('/').all(|s| !s.is_empty() && s != "." && s != ".."),
                "{p:?}"
            );
            assert!(urls::check(&f.url, &cfg.allowed_http_hosts, Use::Read).is_ok());
        }
        match &r.target {
            Some(Target::Put(u)) => remote(u, cfg),
            Some(Target::Multipart {
                urls,
                min_part_size,
                max_part_size,
            }) => {
                assert!(!urls.is_empty() && *max_part_size > 0 && min_part_size <= max_part_size);
                urls.iter().for_each(|u| remote(u, cfg));
            }
            None => {}
        }
    }
    if let Some(s) = &req.source {
        assert!(urls::check(&s.url, &cfg.allowed_http_hosts, Use::Read).is_ok());
    }
    // The job queue keeps the validated request as JSON.
    let text = serde_json::to_string(req).unwrap();
    let back: ProcessRequest = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the queued form does not read back: {e}: {text}"));
    if &back != req {
        // serde_json's default float parsing may move a float by one ulp;
        // anything else is a lost field.
        assert!(
            text.contains(['.', 'e', 'E']),
            "queue round trip changed the request: {text}"
        );
    }
}

fn remote(u: &str, cfg: &Config) {
    assert!(matches!(
        urls::check(u, &cfg.allowed_http_hosts, Use::Write),
        Ok(Location::Remote(_))
    ));
}

fn check_url(url: &str, cfg: &Config) {
    let shown = urls::redact(url);
    let t = url.trim();
    let data = t.len() >= 5 && t.as_bytes()[..5].eq_ignore_ascii_case(b"data:");
    if !data && t.contains('?') {
        let kept = shown.strip_suffix("?REDACTED");
        assert!(
            kept.is_some_and(|k| !k.contains('?')),
            "{url:?} redacted to {shown:?}"
        );
    }
    for usage in [Use::Read, Use::Write] {
        match urls::check(url, &cfg.allowed_http_hosts, usage) {
            Ok(Location::Remote(u)) => {
                let lower = u.to_ascii_lowercase();
                assert!(
                    lower.starts_with("https://"),
                    "{u:?} (no http host is allowed)"
                );
                let authority = lower[8..].split(['/', '?', '#']).next().unwrap();
                assert!(!authority.contains('@'), "credentials in {u:?}");
            }
            Ok(Location::Data { mime, bytes }) => {
                assert_eq!(usage, Use::Read);
                assert_eq!(mime, mime.to_ascii_lowercase());
                let (meta, payload) = url.trim()[5..].split_once(',').unwrap();
                if !meta.ends_with(";base64") {
                    assert_eq!(bytes, percent_decoded(payload), "{url:?}");
                }
            }
            Ok(Location::Asset(id)) => {
                assert_eq!(usage, Use::Read);
                assert!(!id.is_empty() && id.len() <= 128);
            }
            Err(e) => assert!(!e.is_empty()),
        }
    }
}

/// `%` and two hex digits is a byte; anything else is itself (RFC 3986).
fn percent_decoded(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}
