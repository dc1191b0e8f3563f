//! `/store/...`: drives the shared store crate (`assetgate-store`) over the
//! Spin backend, so the end-to-end tests can check that components share
//! blobs, records and journals through the host's key-value store.

use assetgate_store::spin::SpinKv;
use assetgate_store::{Blobs, ChunkWrite, Journal, Position, Records, StoreError, StoreSettings};
use assetgate_web::query::get as param;
use futures::SinkExt;
use spin_sdk::http::{Fields, OutgoingResponse, Response, ResponseOutparam};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn settings() -> Result<StoreSettings, StoreError> {
    StoreSettings::from_lookup(|name| spin_sdk::variables::get(name).ok())
}

/// The one place store errors become HTTP responses.
pub fn error(e: StoreError) -> Response {
    let body = serde_json::json!({ "error": e.code.as_str(), "message": e.message });
    Response::builder()
        .status(e.code.http_status())
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

fn json(v: serde_json::Value) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(v.to_string())
        .build()
}

pub fn route(method: &str, path: &str, query: &str, body: Vec<u8>) -> Response {
    match handle(method, path, query, body) {
        Ok(r) => r,
        Err(e) => error(e),
    }
}

fn handle(method: &str, path: &str, query: &str, body: Vec<u8>) -> Result<Response, StoreError> {
    let kv = SpinKv::open_default()?;
    let settings = settings()?;
    let blobs = Blobs::new(&kv, settings.blobs);
    let parts: Vec<&str> = path.split('/').collect();
    match (method, parts.as_slice()) {
        ("Put", ["blob", id, n]) => {
            let n: u64 = n
                .parse()
                .map_err(|_| StoreError::invalid(format!("bad chunk index `{n}`")))?;
            blobs.begin(id, now())?;
            let outcome = blobs.put_chunk(id, n, &body, now())?;
            Ok(json(serde_json::json!({
                "chunk": n,
                "stored": outcome == ChunkWrite::Stored,
            })))
        }
        ("Post", ["blob", id, "finish"]) => {
            let content_type =
                param(query, "type").unwrap_or_else(|| "application/octet-stream".into());
            let d = blobs.finish(id, &content_type, now())?;
            Ok(json(serde_json::to_value(d).expect("descriptor is JSON")))
        }
        ("Get", ["blob", id, "stat"]) => Ok(json(
            serde_json::to_value(blobs.stat(id)?).expect("descriptor is JSON"),
        )),
        ("Delete", ["blob", id]) => {
            blobs.delete(id)?;
            Ok(json(serde_json::json!({ "deleted": id })))
        }
        ("Post", ["reclaim"]) => {
            let max_age = param(query, "max_age")
                .and_then(|v| v.parse().ok())
                .unwrap_or(settings.upload_reclaim_after_secs);
            let ids = blobs.reclaim_stale(now(), max_age, 1000)?;
            Ok(json(serde_json::json!({ "reclaimed": ids })))
        }
        ("Post", ["journal", name]) => {
            let pos = Journal::new(&kv, name)?.append(&body)?;
            Ok(json(serde_json::json!({ "position": pos.token() })))
        }
        ("Get", ["journal", name]) => {
            let after = match param(query, "after") {
                Some(t) => Position::parse(&t)?,
                None => Position::START,
            };
            let limit = param(query, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(100);
            let events: Vec<serde_json::Value> = Journal::new(&kv, name)?
                .read_after(after, limit)?
                .into_iter()
                .map(|e| {
                    serde_json::json!({
                        "position": e.position.token(),
                        "payload": String::from_utf8_lossy(&e.payload),
                    })
                })
                .collect();
            Ok(json(serde_json::Value::Array(events)))
        }
        ("Post", ["counter", id]) => {
            let records = Records::new(&kv, "counter");
            if records.try_get::<u64>(id)?.is_none() {
                // Lost creation races are fine: the record exists either way.
                let _ = records.create(id, &0u64);
            }
            let n = records.modify(id, |n: &mut u64| {
                *n += 1;
                Ok(*n)
            })?;
            Ok(json(serde_json::json!({ "value": n })))
        }
        _ => Err(StoreError::not_found(format!(
            "probe: no {method} /store/{path}"
        ))),
    }
}

/// `GET /store/blob/{id}[?range=start-end]`: streams the blob chunk by
/// chunk; the component never holds more than one chunk.
pub async fn stream_blob(id: &str, query: &str, out: ResponseOutparam) {
    let opened = SpinKv::open_default().and_then(|kv| {
        let config = settings()?.blobs;
        let blobs = Blobs::new(&kv, config);
        let d = blobs.stat(id)?;
        let range = param(query, "range");
        let (start, end) = match range.as_deref().and_then(|r| r.split_once('-')) {
            Some((s, e)) => (
                s.parse().map_err(|_| StoreError::invalid("bad range"))?,
                e.parse().map_err(|_| StoreError::invalid("bad range"))?,
            ),
            None => (0, d.size),
        };
        blobs.read_range(id, start, end)?;
        Ok((kv, config, d, start, end))
    });
    let (kv, config, d, start, end) = match opened {
        Ok(x) => x,
        Err(e) => {
            let resp = error(e);
            let fields = Fields::new();
            let _ = fields.append("content-type", b"application/json");
            let r = OutgoingResponse::new(fields);
            let _ = r.set_status_code(*resp.status());
            let mut sink = r.take_body();
            out.set(r);
            let _ = sink.send(resp.into_body()).await;
            return;
        }
    };
    let fields = Fields::new();
    let _ = fields.append("content-type", d.content_type.as_bytes());
    let _ = fields.append("content-length", (end - start).to_string().as_bytes());
    let r = OutgoingResponse::new(fields);
    let _ = r.set_status_code(200);
    let mut sink = r.take_body();
    out.set(r);
    let blobs = Blobs::new(&kv, config);
    let Ok(reader) = blobs.read_range(id, start, end) else {
        return;
    };
    for chunk in reader {
        match chunk {
            Ok(bytes) => {
                if sink.send(bytes).await.is_err() {
                    return;
                }
            }
            // Headers are gone; cutting the body short is the only signal.
            Err(_) => return,
        }
    }
}
