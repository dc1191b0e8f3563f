//! The Phraseanet JSON the ingest side reads (crates/phraseanet/src/
//! ingest.rs): the enqueue notification (`POST /api/v1/upload/enqueue`)
//! and the Hydra commit listing the pull mode reads from an upload
//! service (each `hydra:member` becomes a notification, as
//! functions/ingest/src/worker.rs maps it); base URLs and the allow-list.
//!
//! Input: one mode byte, then a JSON body (modes 0–1: notification, 2:
//! listing) or a base URL (3).
//! Invariants: an accepted notification has 1..=max valid asset ids, a
//! visible-ASCII token, a normalised base URL on the allow-list, and a
//! 32-hex job id that does not depend on the order or repetition of its
//! assets; normalising is idempotent and never keeps credentials, a query
//! or dot segments.
#![no_main]

use assetgate_fuzz::Input;
use assetgate_phraseanet::ingest::{
    AllowedBaseUrls, EnqueueRequest, IngestJob, ValidRequest, job_id, normalize_base_url,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::LazyLock;

const MAX_ASSETS: usize = 20;
static ALLOWED: LazyLock<AllowedBaseUrls> = LazyLock::new(|| {
    AllowedBaseUrls::parse("https://uploader.example.com, http://127.0.0.1:8080/api").unwrap()
});

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.byte() % 4;
    let body = input.rest();
    match mode {
        0 | 1 => {
            let default = (mode == 1).then_some("https://uploader.example.com/");
            if let Ok(req) = serde_json::from_slice::<EnqueueRequest>(body) {
                validate(req, default);
            }
        }
        2 => {
            let Ok(listing) = serde_json::from_slice::<Value>(body) else {
                return;
            };
            let base = "http://127.0.0.1:8080/api";
            for m in listing["hydra:member"].as_array().into_iter().flatten() {
                validate(EnqueueRequest::from_listed_commit(m, base), None);
            }
            let _ = listing["hydra:view"].get("hydra:next").is_some();
        }
        _ => base_url(&String::from_utf8_lossy(body)),
    }
});

fn validate(req: EnqueueRequest, default: Option<&str>) {
    let assets = req.assets.clone();
    match req.validate(default, &ALLOWED, MAX_ASSETS) {
        Ok(v) => check(&v, &assets),
        Err(e) => assert!(!e.message.is_empty()),
    }
}

fn check(v: &ValidRequest, assets: &[String]) {
    assert!((1..=MAX_ASSETS).contains(&v.assets.len()));
    for a in &v.assets {
        assert!(
            !a.is_empty() && a.len() <= 200 && a != "." && a != "..",
            "{a:?}"
        );
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
    }
    assert!(!v.token.is_empty() && v.token.bytes().all(|b| b.is_ascii_graphic()));
    assert!(ALLOWED.allows(&v.base_url));
    assert_eq!(normalize_base_url(&v.base_url).unwrap(), v.base_url);
    assert!(v.job_id.len() == 32 && v.job_id.bytes().all(|b| b.is_ascii_hexdigit()));
    // Order and repetition of the assets do not make another job.
    let mut shuffled: Vec<String> = assets.iter().rev().cloned().collect();
    shuffled.extend(assets.iter().take(2).cloned());
    assert_eq!(job_id(&v.base_url, &v.token, &shuffled), v.job_id);
    let job = IngestJob::new(v, 0);
    assert_eq!(job.remaining().count(), v.assets.len());
    // No `token` field anywhere in the view (its value may legitimately
    // equal another field's, e.g. an asset id, so not a text search).
    let view = job.view();
    assert!(view.get("token").is_none(), "the token is shown");
    if let Some(assets) = view.get("assets").and_then(|a| a.as_array()) {
        assert!(
            assets.iter().all(|a| a.get("token").is_none()),
            "the token is shown"
        );
    }
}

fn base_url(url: &str) {
    let Ok(n) = normalize_base_url(url) else {
        return;
    };
    assert_eq!(normalize_base_url(&n).ok().as_ref(), Some(&n), "{url:?}");
    assert!(n.starts_with("http://") || n.starts_with("https://"));
    let rest = n.split_once("://").unwrap().1;
    assert!(!rest.contains(['?', '#', '@', '\\', ' ']), "{n:?}");
    // Dot segments, also percent-encoded: an HTTP client resolves `%2e%2e`
    // as `..` (WHATWG URL), which would leave an allowed path.
    let dot = |s: &str| {
        let d = assetgate_web::query::percent_decode(s, false);
        d == "." || d == ".."
    };
    assert!(!rest.split('/').skip(1).any(dot), "{n:?}");
    assert!(!n.ends_with('/'), "{n:?}");
    if n.contains(',') {
        return; // the allow-list is comma-separated: not an entry
    }
    let list = AllowedBaseUrls::parse(&n).expect("a normalised URL is a valid entry");
    assert!(list.allows(&n));
    assert!(list.allows(&format!("{n}/more")));
    assert!(!list.allows(&format!("{n}more")));
}
