//! `GET /status`: the application's name and version and the storage this
//! component sees — the smallest proof that routing, the Spin SDK and the
//! store work on the host it runs on. Also `GET /openapi.json`: the OpenAPI
//! 3.1 description of the JSON APIs, `docs/openapi.json` as built in
//! (docs/api.md).

use assetgate_store::Kv;
use assetgate_store::spin::SpinKv;
use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;

/// The API description, checked against real responses by the end-to-end
/// tests (`tests/common/openapi.rs`).
const OPENAPI: &str = include_str!("../../../docs/openapi.json");

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    if *req.method() != Method::Get && *req.method() != Method::Head {
        return Ok(Response::builder()
            .status(405)
            .header("allow", "GET, HEAD")
            .header("content-type", "application/json")
            .body(r#"{"error":"method not allowed"}"#)
            .build());
    }
    if request_path(req.uri()) == "/openapi.json" {
        return Ok(Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(OPENAPI)
            .build());
    }
    Ok(status())
}

/// The path of `uri` (absolute, or origin-form as some hosts pass it).
fn request_path(uri: &str) -> &str {
    let path = match uri.find("://") {
        Some(i) => {
            let rest = &uri[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => uri,
    };
    path.split(['?', '#']).next().unwrap_or_default()
}

/// `/status`: 200 when the store answers and the limits parse, else 503.
fn status() -> Response {
    // The store every component opens (Redis when store_redis_url is set);
    // `exists` on a fixed key proves it answers without reading or listing.
    let storage = match SpinKv::open_default() {
        Ok(kv) => match kv.exists("assetgate/status/probe") {
            Ok(_) => serde_json::json!({ "backend": kv.backend_name(), "ok": true }),
            Err(e) => {
                serde_json::json!({ "backend": kv.backend_name(), "ok": false, "error": e.to_string() })
            }
        },
        Err(e) => serde_json::json!({ "ok": false, "error": e.to_string() }),
    };
    // Settings are read the way every component reads them, so a malformed
    // variable shows up here first.
    let settings = match assetgate_store::StoreSettings::from_lookup(|name| {
        spin_sdk::variables::get(name).ok()
    }) {
        Ok(s) => serde_json::json!({
            "blob_chunk_size": s.blobs.chunk_size,
            "blob_max_size": s.blobs.max_blob_size,
            "upload_reclaim_after_secs": s.upload_reclaim_after_secs,
        }),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    let healthy = storage["ok"] == true && settings.get("error").is_none();
    let body = serde_json::json!({
        "name": "assetgate",
        "version": env!("CARGO_PKG_VERSION"),
        "component": "status",
        "status": if healthy { "ok" } else { "degraded" },
        "storage": storage,
        "limits": settings,
    });
    Response::builder()
        .status(if healthy { 200 } else { 503 })
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body.to_string())
        .build()
}
