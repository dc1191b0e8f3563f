//! `GET /status`: the application's name and version and the storage this
//! component sees — the smallest proof that routing, the Spin SDK and the
//! store work on the host it runs on.

use assetgate_store::Kv;
use assetgate_store::spin::SpinKv;
use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;

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
    Ok(Response::builder()
        .status(if healthy { 200 } else { 503 })
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(serde_json::to_vec(&body)?)
        .build())
}
