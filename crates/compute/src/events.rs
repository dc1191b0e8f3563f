//! `rendition_created` / `rendition_failed` payloads, with the attributes
//! of the reference. Presigned URLs are redacted wherever the request's
//! objects are echoed; everything else the client sent comes back as sent
//! (the Node client matches events on `userData` and `rendition.userData`).

use crate::error::Failure;
use crate::render::Output;
use crate::request::{ProcessRequest, Rendition};
use crate::urls::redact;
use assetgate_web::time;
use serde_json::{Map, Value, json};

/// Where a rendition went, for the event.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// PUT to the target (single or multipart).
    Target,
    /// Embedded as a `data:` URI (`embedBinaryLimit`).
    Embedded(String),
    /// Kept in our store: an `asset:<id>` usable as a source.
    Stored(String),
}

/// `v` with its URLs redacted: a string is a URL, an array holds values of
/// the same kind, and in an object the URL (or list of URLs) is at `key`.
fn redact_urls(v: &Value, key: &str) -> Value {
    match v {
        Value::String(s) => Value::String(redact(s)),
        Value::Array(a) => Value::Array(a.iter().map(|e| redact_urls(e, key)).collect()),
        Value::Object(o) => {
            let mut o = o.clone();
            if let Some(inner) = o.get(key) {
                let redacted = redact_urls(inner, key);
                o.insert(key.into(), redacted);
            }
            Value::Object(o)
        }
        other => other.clone(),
    }
}

/// The rendition as sent, with target, file and watermark URLs redacted.
fn rendition(r: &Rendition) -> Value {
    let mut o: Map<String, Value> = r.original.as_object().cloned().unwrap_or_default();
    for (field, key) in [("target", "urls"), ("files", "url"), ("watermark", "image")] {
        if let Some(v) = o.get(field) {
            let redacted = redact_urls(v, key);
            o.insert(field.into(), redacted);
        }
    }
    Value::Object(o)
}

fn base(
    kind: &str,
    req: &ProcessRequest,
    r: &Rendition,
    request_id: &str,
    now: u64,
) -> Map<String, Value> {
    let mut e = Map::new();
    e.insert("type".into(), json!(kind));
    e.insert("date".into(), json!(time::rfc3339(now)));
    e.insert("requestId".into(), json!(request_id));
    // The source as sent, its URL redacted.
    e.insert("source".into(), redact_urls(&req.source_original, "url"));
    e.insert("rendition".into(), rendition(r));
    let user_data = req
        .user_data
        .clone()
        .or_else(|| r.original.get("userData").cloned());
    if let Some(u) = user_data {
        e.insert("userData".into(), u);
    }
    e
}

pub fn created(
    req: &ProcessRequest,
    r: &Rendition,
    request_id: &str,
    out: &Output,
    sha1: &str,
    delivered: &Delivered,
    now: u64,
) -> Value {
    let mut e = base("rendition_created", req, r, request_id, now);
    let mut m = Map::new();
    m.insert("repo:size".into(), json!(out.bytes.len()));
    m.insert("repo:sha1".into(), json!(sha1));
    m.insert("dc:format".into(), json!(out.mime));
    if let Some(enc) = out.encoding {
        m.insert("repo:encoding".into(), json!(enc));
    }
    if let (Some(w), Some(h)) = (out.width, out.height) {
        m.insert("tiff:ImageWidth".into(), json!(w));
        m.insert("tiff:ImageLength".into(), json!(h));
    }
    e.insert("metadata".into(), Value::Object(m));
    match delivered {
        Delivered::Target => {}
        Delivered::Embedded(uri) => {
            e.insert("data".into(), json!(uri));
        }
        Delivered::Stored(id) => {
            e.insert(
                "asset".into(),
                json!({ "id": id, "url": format!("asset:{id}") }),
            );
        }
    }
    Value::Object(e)
}

pub fn failed(
    req: &ProcessRequest,
    r: &Rendition,
    request_id: &str,
    f: &Failure,
    now: u64,
) -> Value {
    let mut e = base("rendition_failed", req, r, request_id, now);
    e.insert("errorReason".into(), json!(f.reason.as_str()));
    e.insert("errorMessage".into(), json!(f.message));
    if let Some(size) = f.size {
        e.insert("metadata".into(), json!({ "repo:size": size }));
    }
    Value::Object(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::error::Reason;

    #[test]
    fn echoes_with_urls_redacted() {
        let body = json!({
            "source": {"url": "https://s.example/a.jpg?sig=SECRET", "name": "a.jpg"},
            "renditions": [{"fmt": "png", "target": {"urls": ["https://t.example/1?sig=SECRET"], "maxPartSize": 10},
                            "userData": {"assetComputeClient": {"index": 0, "length": 1}}}],
            "userData": {"assetComputeClient": {"id": "c1"}}
        });
        let req = crate::request::parse(&body, &Config::default()).unwrap();
        let f = Failure {
            reason: Reason::RenditionTooLarge,
            message: "too big".into(),
            size: Some(99),
        };
        let e = failed(&req, &req.renditions[0], "rq1", &f, 0);
        let text = e.to_string();
        assert!(!text.contains("SECRET"), "{text}");
        assert_eq!(e["source"]["url"], "https://s.example/a.jpg?REDACTED");
        assert_eq!(
            e["rendition"]["target"]["urls"][0],
            "https://t.example/1?REDACTED"
        );
        assert_eq!(e["rendition"]["userData"]["assetComputeClient"]["index"], 0);
        assert_eq!(e["userData"]["assetComputeClient"]["id"], "c1");
        assert_eq!(
            (
                e["errorReason"].as_str(),
                e["metadata"]["repo:size"].as_u64()
            ),
            (Some("RenditionTooLarge"), Some(99))
        );
        assert_eq!(e["date"], "1970-01-01T00:00:00+00:00");
    }
}
