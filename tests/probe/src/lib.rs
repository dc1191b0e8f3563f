//! Test fixture: a component that exercises every host interface the
//! platform offers, driven by the end-to-end tests in `tests/platform.rs`.
//! Not part of the application (`spin.toml`); declared in
//! `tests/fixtures/probe.toml`, once per component id it plays.

use futures::{SinkExt, StreamExt};
use spin_sdk::http::{
    Fields, IncomingRequest, Method, OutgoingResponse, Request, Response, ResponseOutparam,
};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

mod store_routes;

use assetgate_web::query::get as param;

use assetgate_store::spin::bindings::wasi::keyvalue::{atomics, store as wasi_store};

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let path_info = header(&req, "spin-path-info").unwrap_or_default();
    let method = match req.method() {
        Method::Get => "Get",
        Method::Put => "Put",
        Method::Post => "Post",
        Method::Delete => "Delete",
        _ => "Other",
    }
    .to_string();
    let query = req
        .path_with_query()
        .and_then(|p| p.split_once('?').map(|(_, q)| q.to_string()))
        .unwrap_or_default();
    if let Some(id) = path_info
        .strip_prefix("/store/blob/")
        .filter(|rest| !rest.contains('/'))
        .filter(|_| method == "Get")
    {
        return store_routes::stream_blob(id, &query, out).await;
    }
    if path_info == "/digest" {
        return digest(req, out).await;
    }
    if let Some(n) = path_info.strip_prefix("/generate/") {
        let n = n.parse().unwrap_or(0);
        return generate(n, out).await;
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let body = req.into_body().await.unwrap_or_default();
    let resp = match path_info.strip_prefix("/store/") {
        Some(rest) => store_routes::route(&method, rest, &query, body),
        None => route(&method, &path_info, &query, &headers, body).await,
    };
    let fields = Fields::new();
    for (k, v) in resp.headers() {
        let _ = fields.append(k, v.as_bytes());
    }
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(*resp.status());
    let mut sink = response.take_body();
    out.set(response);
    let _ = sink.send(resp.into_body()).await;
}

fn header(req: &IncomingRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn text(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.into())
        .build()
}

async fn route(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Response {
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
    let arg = segments.get(1).copied().unwrap_or("");
    match (method, segments[0]) {
        ("Get", "kv") => match Store::open_default().and_then(|s| s.get(arg)) {
            Ok(Some(v)) => Response::new(200, v),
            Ok(None) => text(404, "absent"),
            Err(e) => text(500, format!("{e:?}")),
        },
        ("Put", "kv") => match Store::open_default().and_then(|s| s.set(arg, &body)) {
            Ok(()) => text(204, ""),
            Err(e) => text(500, format!("{e:?}")),
        },
        ("Delete", "kv") => match Store::open_default().and_then(|s| s.delete(arg)) {
            Ok(()) => text(204, ""),
            Err(e) => text(500, format!("{e:?}")),
        },
        ("Get", "open") => match Store::open(arg) {
            Ok(_) => text(200, "opened"),
            Err(e) => text(403, format!("{e:?}")),
        },
        ("Post", "incr") => {
            let delta: i64 = param(query, "delta")
                .and_then(|d| d.parse().ok())
                .unwrap_or(1);
            match wasi_store::open("default").and_then(|b| atomics::increment(&b, arg, delta)) {
                Ok(n) => text(200, n.to_string()),
                Err(e) => text(500, format!("{e:?}")),
            }
        }
        // Appends the body to the value at `arg` with a compare-and-swap
        // loop; answers with the number of conflicts it retried through.
        ("Post", "append") => {
            let bucket = match wasi_store::open("default") {
                Ok(b) => b,
                Err(e) => return text(500, format!("{e:?}")),
            };
            let mut cas = match atomics::Cas::new(&bucket, arg) {
                Ok(c) => c,
                Err(e) => return text(500, format!("{e:?}")),
            };
            let mut conflicts = 0;
            loop {
                let mut value = cas.current().ok().flatten().unwrap_or_default();
                value.extend_from_slice(&body);
                match atomics::swap(cas, &value) {
                    Ok(()) => return text(200, conflicts.to_string()),
                    Err(atomics::CasError::CasFailed(fresh)) => {
                        conflicts += 1;
                        cas = fresh;
                    }
                    Err(atomics::CasError::StoreError(e)) => return text(500, format!("{e:?}")),
                }
            }
        }
        ("Get", "var") => match spin_sdk::variables::get(arg) {
            Ok(v) => text(200, v),
            Err(e) => text(404, format!("{e:?}")),
        },
        ("Get", "env") => match std::env::var(arg) {
            Ok(v) => text(200, v),
            Err(_) => text(404, "unset"),
        },
        ("Get", "headers") => {
            // `spin-*` only, or every header with `?all=1`.
            let all = param(query, "all").is_some();
            let spin: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .filter(|(k, _)| all || k.starts_with("spin-"))
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&spin).unwrap())
                .build()
        }
        ("Get", "fetch") => {
            let url = param(query, "url").unwrap_or_default();
            let result: Result<Response, _> = spin_sdk::http::send(Request::get(url)).await;
            match result {
                Ok(resp) => {
                    let status = *resp.status();
                    let mut body = format!("{status} ").into_bytes();
                    body.extend_from_slice(resp.body());
                    Response::new(200, body)
                }
                Err(e) => text(502, format!("{e}")),
            }
        }
        ("Get", "trap") => {
            // A real trap, not a Rust panic caught somewhere.
            core::arch::wasm32::unreachable()
        }
        ("Get", "whoami") => text(200, "probe"),
        // Burns CPU without ever calling the host.
        ("Get", "spin") => {
            let ms: u64 = param(query, "ms")
                .and_then(|m| m.parse().ok())
                .unwrap_or(100);
            let start = std::time::Instant::now();
            let mut x = 0u64;
            while start.elapsed().as_millis() < ms as u128 {
                for i in 0..10_000u64 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
                }
            }
            text(200, format!("{x}"))
        }
        _ => text(404, format!("probe: no {method} {path}")),
    }
}

/// FNV-1a, 64-bit: a checksum both the probe and the tests can compute.
pub fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(state, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}
const FNV_OFFSET: u64 = 0xcbf29ce484222325;

/// The byte at `i` of a generated body (the tests use the same formula).
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8
}

/// Consumes the request body as a stream, never holding more than one
/// chunk, and answers `<length> <fnv1a-hex>`.
async fn digest(req: IncomingRequest, out: ResponseOutparam) {
    let mut stream = req.into_body_stream();
    let (mut len, mut hash) = (0u64, FNV_OFFSET);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                len += bytes.len() as u64;
                hash = fnv1a(hash, &bytes);
            }
            Err(_) => return,
        }
    }
    let body = format!("{len} {hash:016x}");
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(200);
    let mut sink = response.take_body();
    out.set(response);
    let _ = sink.send(body.into_bytes()).await;
}

/// Streams `n` generated bytes in 64 KiB writes.
async fn generate(n: u64, out: ResponseOutparam) {
    let headers = Fields::new();
    let _ = headers.append("content-length", n.to_string().as_bytes());
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(200);
    let mut sink = response.take_body();
    out.set(response);
    let mut i = 0u64;
    while i < n {
        let len = (n - i).min(64 * 1024);
        let chunk: Vec<u8> = (i..i + len).map(pattern).collect();
        if sink.send(chunk).await.is_err() {
            return;
        }
        i += len;
    }
}
