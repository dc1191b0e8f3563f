//! The Spin side of the preview proxy (Elvis proxy protocol):
//! `GET|POST|OPTIONS /proxy` and `/restproxyindex.php` (also at the
//! reference's path, `/Enterprise/server/plugins/Elvis/restproxyindex.php`),
//! plus `POST /proxy/logon` for tickets. The decisions are
//! [`crate::proxy::decide`]; this streams blobs, renders on a cache miss
//! and writes the answer. The component passes the other protocols' object
//! ids and read rules ([`Provenance`]).

use crate::proxy::{self, Decision, ProxyConfig, ProxyRequest};
use assetgate_catalog::provenance::Provenance;
use assetgate_component::{Req, send, send_blob, send_error, send_status, var};
use assetgate_identity::{Directory, Tickets};
use assetgate_store::spin::SpinKv;
use assetgate_store::{Blobs, StoreError, StoreSettings};
use assetgate_web::{query, secret, time};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};

/// Where the reference's Enterprise Server plug-in serves the proxy.
const REFERENCE_PATH: &str = "/Enterprise/server/plugins/Elvis/restproxyindex.php";
const ALLOW: &str = "GET, POST, OPTIONS";
/// Form bodies of `POST /proxy` and `/proxy/logon`.
const MAX_FORM: usize = 64 * 1024;
/// The cache sweep runs after one proxy request in this many.
const SWEEP_EVERY: u32 = 16;

struct Ctx {
    kv: SpinKv,
    store: StoreSettings,
    cfg: ProxyConfig,
    users: Directory,
}

fn load() -> Result<Ctx, StoreError> {
    Ok(Ctx {
        kv: SpinKv::open_default()?,
        store: StoreSettings::from_lookup(var)?,
        cfg: ProxyConfig::from_lookup(var)?,
        users: Directory::parse(&var("epifiles_users").unwrap_or_default())
            .map_err(StoreError::invalid)?,
    })
}

/// Answers one request of the preview component.
pub async fn serve(req: IncomingRequest, out: ResponseOutparam, provenance: &dyn Provenance) {
    let mut req = Req::new(req);
    let ctx = match load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("preview: configuration error: {e}");
            return send_status(
                out,
                500,
                "configuration",
                "the service is misconfigured; see its log",
                &[],
            )
            .await;
        }
    };
    let segs = match req.path_segments() {
        Ok(s) => s,
        Err(e) => return send_error(out, &e).await,
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let logon = segs == ["proxy", "logon"];
    let known = logon
        || segs == ["proxy"]
        || segs == ["restproxyindex.php"]
        || segs.join("/") == REFERENCE_PATH.trim_start_matches('/');
    if !known {
        return send_status(out, 404, "not-found", "no such endpoint", &[]).await;
    }
    let cors = cors_headers(&req);
    match (&req.method, logon) {
        (Method::Options, _) => {
            let mut headers = vec![("allow", ALLOW.to_string())];
            headers.extend(cors);
            send(out, 204, &headers, Vec::new()).await
        }
        (Method::Post, true) => log_on(&mut req, &ctx, out).await,
        (_, true) => {
            send_status(
                out,
                405,
                "method-not-allowed",
                "log on with POST",
                &[("allow", "POST".into())],
            )
            .await
        }
        (Method::Get | Method::Post, false) => {
            proxy_request(&mut req, &ctx, provenance, cors, out).await;
            // After the response: drop renders whose source is gone or old.
            // One request in SWEEP_EVERY examines SWEEP_EVERY × 10 entries:
            // the same coverage as 10 per request, without the cursor write
            // on every request (which halved the 304 rate;
            // docs/benchmarks.md).
            if secret::one_in(SWEEP_EVERY) {
                let swept = crate::cache::sweep(
                    &ctx.kv,
                    ctx.store.blobs,
                    time::now(),
                    ctx.cfg.cache_secs,
                    10 * SWEEP_EVERY as usize,
                );
                if let Err(e) = swept {
                    eprintln!("preview: cache sweep failed: {e}");
                }
            }
        }
        _ => {
            send_status(
                out,
                405,
                "method-not-allowed",
                "only GET, POST and OPTIONS are supported",
                &[("allow", ALLOW.into())],
            )
            .await
        }
    }
}

/// CORS for the origins in `preview_allowed_origins` (comma-separated),
/// with credentials so cookies work.
fn cors_headers(req: &Req) -> Vec<(&'static str, String)> {
    let Some(origin) = req.header("origin") else {
        return Vec::new();
    };
    let allowed = var("preview_allowed_origins").unwrap_or_default();
    if !allowed.split(',').map(str::trim).any(|o| o == origin) {
        return Vec::new();
    }
    vec![
        ("access-control-allow-origin", origin.to_string()),
        ("access-control-allow-credentials", "true".into()),
        ("access-control-allow-methods", ALLOW.into()),
        (
            "access-control-allow-headers",
            "authorization, if-none-match, range".into(),
        ),
        (
            "access-control-expose-headers",
            "etag, content-length, content-range".into(),
        ),
        ("vary", "origin".into()),
    ]
}

/// Parameters from the query string and, for POST, a form body, both
/// decoded strictly (a malformed one is a 400 naming it).
async fn params(req: &mut Req) -> Result<Vec<(String, String)>, StoreError> {
    let mut p = req.params()?;
    if req.method == Method::Post {
        let body = req.read_body(MAX_FORM).await?;
        let form = query::parse_strict(&body)
            .map_err(|e| StoreError::invalid(format!("malformed form body: {e}")))?;
        p.extend(form);
    }
    Ok(p)
}

/// `POST /proxy/logon` with `user` and `password` (form or HTTP Basic),
/// optional `ww-app`: a ticket in JSON and in the `ticket` cookie.
async fn log_on(req: &mut Req, ctx: &Ctx, out: ResponseOutparam) {
    let p = match params(req).await {
        Ok(p) => p,
        Err(e) => return send_error(out, &e).await,
    };
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let user = match (get("user"), get("password")) {
        (Some(u), Some(pw)) => ctx.users.login(u, pw),
        _ => ctx.users.authenticate(req.header("authorization")).ok(),
    };
    let Some(user) = user else {
        return send_status(
            out,
            401,
            "unauthorized",
            "wrong user or password",
            &[("www-authenticate", "Basic realm=\"assetgate\"".into())],
        )
        .await;
    };
    let now = time::now();
    match Tickets::new(&ctx.kv).issue(&user.name, get("ww-app"), ctx.cfg.ticket_ttl, now) {
        Ok(ticket) => {
            let cookie = format!(
                "{}={ticket}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax",
                proxy::TICKET_COOKIE,
                ctx.cfg.ticket_ttl
            );
            let body = serde_json::json!({ "ticket": ticket, "user": user.name, "expires_in": ctx.cfg.ticket_ttl });
            send(
                out,
                200,
                &[
                    ("content-type", "application/json".into()),
                    ("set-cookie", cookie),
                    ("cache-control", "no-store".into()),
                ],
                body.to_string().into_bytes(),
            )
            .await
        }
        Err(e) => send_error(out, &e).await,
    }
}

async fn proxy_request(
    req: &mut Req,
    ctx: &Ctx,
    provenance: &dyn Provenance,
    cors: Vec<(&'static str, String)>,
    out: ResponseOutparam,
) {
    let p = match params(req).await {
        Ok(p) => p,
        Err(e) => return send_error(out, &e).await,
    };
    let now = time::now();
    let request = ProxyRequest {
        params: &p,
        authorization: req.header("authorization"),
        cookie: req.header("cookie"),
        if_none_match: req.header("if-none-match"),
    };
    let decision = proxy::decide(&ctx.kv, &ctx.users, provenance, &request, now);
    let cache_control = ctx.cfg.cache_control();
    let range = req.header("range").map(String::from);
    match decision {
        Decision::Refuse {
            status,
            code,
            message,
        } => {
            let mut extra = cors;
            if status == 405 {
                extra.push(("allow", ALLOW.into()));
            }
            send_status(out, status, code, &message, &extra).await
        }
        Decision::NotModified { etag } => {
            let mut headers = vec![("etag", etag), ("cache-control", cache_control)];
            headers.extend(cors);
            // 304 carries no body and no Content-Length of one.
            send(out, 304, &headers, Vec::new()).await
        }
        Decision::Native { asset, etag } => {
            let mut headers = vec![
                ("content-type", asset.mime_type.clone()),
                ("etag", etag),
                ("cache-control", cache_control),
            ];
            headers.extend(cors);
            send_blob(
                out,
                &ctx.kv,
                ctx.store.blobs,
                &asset.id,
                range.as_deref(),
                &headers,
            )
            .await
        }
        Decision::Preview {
            asset,
            args,
            etag,
            cache_id,
        } => {
            let mut headers = vec![
                ("content-type", args.format.mime().to_string()),
                ("etag", etag),
                ("cache-control", cache_control),
            ];
            headers.extend(cors.iter().cloned());
            if Blobs::new(&ctx.kv, ctx.store.blobs).stat(&cache_id).is_ok() {
                return send_blob(
                    out,
                    &ctx.kv,
                    ctx.store.blobs,
                    &cache_id,
                    range.as_deref(),
                    &headers,
                )
                .await;
            }
            match proxy::render_and_cache(
                &ctx.kv,
                ctx.store.blobs,
                &ctx.cfg,
                &asset,
                &args,
                &cache_id,
                now,
            ) {
                Ok(bytes) => send(out, 200, &headers, bytes).await,
                Err((status, message)) => {
                    let code = match status {
                        413 => "too-large",
                        422 => "unprocessable",
                        400 => "invalid-preview-args",
                        _ => "internal",
                    };
                    send_status(out, status, code, &message, &cors).await
                }
            }
        }
    }
}
