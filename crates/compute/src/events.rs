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

/// The rendition as sent, with target, file, watermark and worker URLs
/// redacted.
fn rendition(original: &Value) -> Value {
    let mut o: Map<String, Value> = original.as_object().cloned().unwrap_or_default();
    for (field, key) in [
        ("target", "urls"),
        ("files", "url"),
        ("watermark", "image"),
        ("worker", "url"),
    ] {
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
    original: &Value,
    request_id: &str,
    now: u64,
) -> Map<String, Value> {
    let mut e = Map::new();
    e.insert("type".into(), json!(kind));
    e.insert("date".into(), json!(time::rfc3339(now)));
    e.insert("requestId".into(), json!(request_id));
    // The source as sent, its URL redacted.
    e.insert("source".into(), redact_urls(&req.source_original, "url"));
    e.insert("rendition".into(), rendition(original));
    let user_data = req
        .user_data
        .clone()
        .or_else(|| original.get("userData").cloned());
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
    let mut e = base("rendition_created", req, &r.original, request_id, now);
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

/// `original`: the rendition object as the client sent it.
pub fn failed(
    req: &ProcessRequest,
    original: &Value,
    request_id: &str,
    f: &Failure,
    now: u64,
) -> Value {
    let mut e = base("rendition_failed", req, original, request_id, now);
    e.insert("errorReason".into(), json!(f.reason.as_str()));
    e.insert("errorMessage".into(), json!(f.message));
    if let Some(size) = f.size {
        e.insert("metadata".into(), json!({ "repo:size": size }));
    }
    Value::Object(e)
}

/// When an event was reported: its `date` (made by `time::rfc3339`, read
/// back here), in Unix seconds. `None` for anything else.
pub fn reported_at(event: &Value) -> Option<u64> {
    let s = event.get("date")?.as_str()?;
    let b = s.as_bytes();
    if b.len() != 25 || s.get(19..) != Some("+00:00") {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b[i] != c)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || hh > 23
        || mm > 59
        || ss > 59
    {
        return None;
    }
    // Howard Hinnant's civil date → days.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
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
        let e = failed(&req, req.renditions[0].original(), "rq1", &f, 0);
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

    #[test]
    fn reported_at_reads_back_every_date() {
        // Every day over centuries, at varied times of day.
        let mut t = 0u64;
        while t < 8_000_000_000 {
            let e = json!({ "date": time::rfc3339(t) });
            assert_eq!(reported_at(&e), Some(t), "{e}");
            t += 86_400 * 3 + 3_607;
        }
        for bad in [
            json!({}),
            json!({"date": 5}),
            json!({"date": ""}),
            json!({"date": "2024-01-01T00:00:00Z"}),
            json!({"date": "2024-13-01T00:00:00+00:00"}),
            json!({"date": "2024-01-01T24:00:00+00:00"}),
            json!({"date": "2024-01-01 00:00:00+00:00"}),
            json!({"date": "+024-01-01T00:00:00+00:00"}),
            json!({"date": "2024-01-01T00:00:00+01:00"}),
            json!({"date": "２０２４-01-01T00:00:00+00:00"}),
            json!({"date": "2024-01-01T00:00:0é00:00"}),
            json!({"date": "2024-01-01T00:00:00+00:0é"}),
        ] {
            assert_eq!(reported_at(&bad), None, "{bad}");
        }
    }
}
