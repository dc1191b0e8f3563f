//! The Spin side of the EpiFiles web services (`/epifiles/ws/manifest`,
//! `/epifiles/ws/manifestfile`) and their outbox (`/epifiles/admin/outbox`):
//! read the request, call [`crate::api`], write the answer; then sweep
//! expired uploads and deliver due notifications.

use crate::{ApiError, Body, Config, Request, Response, Service, api, xml};
use assetgate_component::{Req, check_status, fetch, method_name, send, send_parts, var};
use assetgate_store::spin::SpinKv;
use assetgate_web::{secret, time};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};

/// Notifications delivered per request, after the response.
const DELIVERIES_PER_REQUEST: usize = 2;

struct Webhook {
    url: String,
    key: Option<String>,
}

/// Answers one request of the `epifiles` component.
pub async fn serve(req: IncomingRequest, out: ResponseOutparam) {
    let mut req = Req::new(req);
    let kv = match SpinKv::open_default() {
        Ok(kv) => kv,
        Err(e) => return fail(out, ApiError::from(e)).await,
    };
    let cfg = match Config::from_lookup(var) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("epifiles: configuration error: {e}");
            let e = ApiError::new(
                500,
                "configuration",
                "the service is misconfigured; see its log",
            );
            return fail(out, e).await;
        }
    };
    let webhook = var("epifiles_notify_url").map(|url| Webhook {
        url,
        key: var("epifiles_notify_key"),
    });
    let svc = Service {
        kv: &kv,
        cfg: &cfg,
        now: time::now(),
        webhook: webhook.is_some(),
    };
    let method = method_name(&req.method);
    // Route, method and credentials first, from the request head: a
    // refused client gets its answer at once, its body never read.
    let admitted = match api::admit(&svc, &method, &req.full_path, req.header("authorization")) {
        Ok(a) => a,
        Err(refused) => {
            eprintln!("epifiles: {method} {} → {}", req.full_path, refused.status);
            return respond(out, refused).await;
        }
    };
    let body = match req.read_body(cfg.max_request_body()).await {
        Ok(b) => b,
        Err(e) => {
            let e = ApiError::from(e);
            let e = match e.status {
                413 => ApiError::too_large(
                    "request_too_large",
                    format!(
                        "{}: the limit follows epifiles_max_chunk_size (a base64 chunk plus form fields); send smaller chunks",
                        e.message
                    ),
                ),
                400 => ApiError::bad_request("incomplete_body", e.message),
                _ => e,
            };
            return fail(out, e).await;
        }
    };
    let resp = api::respond(
        &svc,
        admitted,
        Request {
            method: &method,
            path: &req.full_path,
            query: &req.query,
            authorization: req.header("authorization"),
            content_type: req.header("content-type"),
            body,
        },
    );
    if resp.status >= 400 {
        eprintln!("epifiles: {method} {} → {}", req.full_path, resp.status);
    }
    respond(out, resp).await;

    if let Err(e) = svc.sweep() {
        eprintln!("epifiles: sweep failed: {e}");
    }
    if let Some(hook) = &webhook {
        deliver(&svc, hook).await;
    }
}

async fn respond(out: ResponseOutparam, resp: Response) {
    match resp.body {
        Body::Whole(body) => send(out, resp.status, &resp.headers, body).await,
        Body::Chunk(chunk) => {
            let len = chunk.len();
            send_parts(out, resp.status, &resp.headers, len, *chunk).await
        }
    }
}

async fn fail(out: ResponseOutparam, e: ApiError) {
    // As every other answer of the service: never cached.
    let headers = [
        ("content-type", "text/xml; charset=utf-8".to_string()),
        ("cache-control", "no-store".to_string()),
    ];
    send(out, e.status, &headers, xml::failure(e.code, &e.message)).await
}

/// Posts due notifications to the webhook as JSON; failures back off and
/// stay in the outbox.
async fn deliver(svc: &Service<'_, SpinKv>, hook: &Webhook) {
    let outbox = svc.outbox();
    for _ in 0..DELIVERIES_PER_REQUEST {
        let token = secret::random_hex(8);
        let (job, note) = match outbox.claim(time::now(), &token) {
            Ok(Some(x)) => x,
            Ok(None) => return,
            Err(e) => {
                eprintln!("epifiles: outbox claim failed: {e}");
                return;
            }
        };
        let mut headers = vec![("content-type", "application/json".to_string())];
        if let Some(key) = &hook.key {
            headers.push(("authorization", format!("Bearer {key}")));
        }
        let body = serde_json::to_vec(&note).expect("notification serialises");
        let outcome = match fetch(Method::Post, &hook.url, &headers, body).await {
            Ok(resp) => check_status(&hook.url, resp.status()),
            Err(e) => Err(e),
        };
        let now = time::now();
        let recorded = match outcome {
            Ok(()) => outbox.delivered(&job.id, &token, now),
            Err(e) => {
                eprintln!("epifiles: notification {} not delivered: {e}", note.id);
                outbox
                    .failed(&job.id, &token, &e.to_string(), now)
                    .map(|_| ())
            }
        };
        if let Err(e) = recorded {
            eprintln!("epifiles: cannot record delivery of {}: {e}", note.id);
        }
    }
}
