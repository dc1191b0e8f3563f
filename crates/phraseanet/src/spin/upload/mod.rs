//! The Spin side of the Phraseanet upload service: `POST /assets`,
//! `POST /commits`, the `AssetToken`-protected reads and downloads,
//! acknowledgements, the pull listing and push notifications. Decisions
//! live in the crate's plain modules; bytes go straight between HTTP and
//! the blob store.

mod push;
mod receive;

use crate::{Access, Commits, Limits, hydra};
use assetgate_catalog::{Asset, Catalog};
use assetgate_component::{
    Req, send_blob, send_error, send_json, send_method_not_allowed, send_not_found, send_status,
    var,
};
use assetgate_store::spin::SpinKv;
use assetgate_store::{Blobs, StoreError, StoreSettings};
use assetgate_web::{filename, time};
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};

/// Commits per page of the pull listing.
const PER_PAGE: usize = 30;
/// Push retries after each request (a page of pending commits read)…
const PUSH_BUDGET_PER_REQUEST: push::Budget = push::Budget {
    attempts: 2,
    examined: 50,
};
/// …and per scheduler call (`POST /push/work`).
const SCHEDULED_PUSH_BUDGET: push::Budget = push::Budget {
    attempts: 50,
    examined: 5000,
};

pub struct Ctx {
    pub kv: SpinKv,
    pub settings: StoreSettings,
    pub limits: Limits,
    /// `upload_public_url`, else the origin the client used.
    pub base_url: String,
    /// Push notifications, when `upload_push_url` is set.
    pub push: Option<push::PushConfig>,
}

impl Ctx {
    fn load(req: &Req) -> Result<Ctx, StoreError> {
        Ok(Ctx {
            kv: SpinKv::open_default()?,
            settings: StoreSettings::from_lookup(var)?,
            limits: Limits::from_lookup(var)?,
            base_url: var("upload_public_url")
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or_else(|| req.origin.clone()),
            push: push::PushConfig::load()?,
        })
    }

    pub fn blobs(&self) -> Blobs<'_, SpinKv> {
        Blobs::new(&self.kv, self.settings.blobs)
    }
}

/// Answers one request of the `upload` component, then does a little
/// housekeeping.
pub async fn serve(req: IncomingRequest, out: ResponseOutparam) {
    let mut req = Req::new(req);
    let ctx = match Ctx::load(&req) {
        Ok(c) => c,
        Err(e) => return send_error(out, &e).await,
    };
    route(&mut req, &ctx, out).await;
    // After the response: retention and push retries, a little per request.
    housekeeping(&ctx).await;
}

async fn route(req: &mut Req, ctx: &Ctx, out: ResponseOutparam) {
    let segs = match req.path_segments() {
        Ok(s) => s,
        Err(e) => return send_error(out, &e).await,
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method.clone();
    match (segs.as_slice(), m) {
        (["assets"], Method::Post) => {
            if let Err(resp) = require_api_key(req) {
                return resp.send(out).await;
            }
            match receive::receive(req, ctx).await {
                Ok(asset) => send_json(out, 201, &asset_json(&asset, &ctx.base_url)).await,
                Err(e) => send_error(out, &e).await,
            }
        }
        (["assets", id], Method::Get) => {
            with_asset_access(req, ctx, id, out, |asset, out| async move {
                send_json(out, 200, &asset_json(&asset, &ctx.base_url)).await
            })
            .await
        }
        (["assets", id, "download"], Method::Get) => {
            let range = req.header("range").map(String::from);
            with_asset_access(req, ctx, id, out, |asset, out| async move {
                // Safe again at the edge: assets pulled in by the ingest
                // side carry the name a remote service gave.
                let disposition = filename::attachment(&asset.original_name);
                let headers = [
                    ("content-type", asset.mime_type.clone()),
                    ("content-disposition", disposition),
                    ("etag", format!("\"{}\"", asset.sha256)),
                ];
                send_blob(
                    out,
                    &ctx.kv,
                    ctx.settings.blobs,
                    &asset.id,
                    range.as_deref(),
                    &headers,
                )
                .await
            })
            .await
        }
        (["assets", id, "ack"], Method::Post) => {
            let id = id.to_string();
            with_asset_access(req, ctx, &id.clone(), out, |_, out| async move {
                let catalog = Catalog::new(&ctx.kv, ctx.blobs());
                let commits = Commits::new(&ctx.kv, &catalog, &ctx.limits);
                match commits.ack_asset(&id, time::now()) {
                    Ok(changed) => send_json(
                        out,
                        200,
                        &serde_json::json!({ "id": id, "acknowledged": true, "changed": changed }),
                    )
                    .await,
                    Err(e) => send_error(out, &e).await,
                }
            })
            .await
        }
        // The scheduler's entry point: a pass over due push retries, so an
        // idle service still retries (docs/01-phraseanet.md, "Push").
        (["push", "work"], Method::Post) => {
            if let Err(resp) = require_api_key(req) {
                return resp.send(out).await;
            }
            let pass = push::retry_due(ctx, SCHEDULED_PUSH_BUDGET).await;
            let body = serde_json::json!({
                "enabled": ctx.push.is_some(),
                "attempted": pass.attempted,
                "delivered": pass.delivered,
                "failed": pass.failed,
            });
            send_json(out, 200, &body).await
        }
        (["commits"], Method::Post) => {
            if let Err(resp) = require_api_key(req) {
                return resp.send(out).await;
            }
            match create_commit(req, ctx).await {
                Ok(commit) => {
                    send_json(out, 201, &commit.to_json(&ctx.base_url)).await;
                    push::notify(ctx, &commit.id).await;
                }
                Err(e) => send_error(out, &e).await,
            }
        }
        (["commits"], Method::Get) => {
            if let Err(resp) = require_api_key(req) {
                return resp.send(out).await;
            }
            list_commits(req, ctx, out).await
        }
        (["commits", id], Method::Get) => {
            let id = id.to_string();
            with_commit_access(req, ctx, &id, out, |commit, out| async move {
                send_json(out, 200, &commit.to_json(&ctx.base_url)).await
            })
            .await
        }
        (["commits", id, "ack"], Method::Post) => {
            let id = id.to_string();
            with_commit_access(req, ctx, &id.clone(), out, |_, out| async move {
                let catalog = Catalog::new(&ctx.kv, ctx.blobs());
                let commits = Commits::new(&ctx.kv, &catalog, &ctx.limits);
                match commits.ack(&id, time::now()) {
                    Ok((commit, changed)) => {
                        let mut body = commit.to_json(&ctx.base_url);
                        body["changed"] = changed.into();
                        send_json(out, 200, &body).await
                    }
                    Err(e) => send_error(out, &e).await,
                }
            })
            .await
        }
        _ => match allowed(&segs) {
            Some(allow) => send_method_not_allowed(out, allow).await,
            None => send_not_found(out).await,
        },
    }
}

/// The methods a known path of the upload service answers.
fn allowed(segs: &[&str]) -> Option<&'static str> {
    Some(match segs {
        ["assets"] | ["assets", _, "ack"] | ["commits", _, "ack"] | ["push", "work"] => "POST",
        ["assets", _] | ["assets", _, "download"] | ["commits", _] => "GET",
        ["commits"] => "GET, POST",
        _ => return None,
    })
}

/// A refusal to send later (keeps `route` flat).
struct Refusal(u16, &'static str, String);

impl Refusal {
    async fn send(self, out: ResponseOutparam) {
        let extra = if self.0 == 401 {
            vec![("www-authenticate", "Bearer realm=\"assetgate\"".to_string())]
        } else {
            vec![]
        };
        send_status(out, self.0, self.1, &self.2, &extra).await
    }
}

/// `Authorization: Bearer <upload_api_key>`, compared in constant time.
fn require_api_key(req: &Req) -> Result<(), Refusal> {
    let Some(key) = var("upload_api_key") else {
        return Err(Refusal(
            503,
            "not-configured",
            "set the upload_api_key variable to enable this endpoint".into(),
        ));
    };
    match req.auth("Bearer") {
        Some(given)
            if assetgate_identity::token::constant_time_eq(given.as_bytes(), key.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(Refusal(
            401,
            "unauthorized",
            "a valid Bearer API key is required".into(),
        )),
    }
}

/// 401 for a missing or unknown token, 403 for another commit's token.
async fn refuse(denied: Access, what: &str, out: ResponseOutparam) {
    let refusal = match denied {
        Access::Forbidden => Refusal(
            403,
            "forbidden",
            format!("this token does not grant access to this {what}"),
        ),
        _ => Refusal(
            401,
            "unauthorized",
            "a valid `Authorization: AssetToken <token>` is required".into(),
        ),
    };
    refusal.send(out).await
}

fn api_key_ok(req: &Req) -> bool {
    require_api_key(req).is_ok()
}

/// Runs `then` if the caller may read `asset_id`: the API key, or the
/// `AssetToken` of the asset's commit. Wrong token → 401, another
/// commit's token → 403, unknown asset → 404.
async fn with_asset_access<F, Fut>(
    req: &Req,
    ctx: &Ctx,
    asset_id: &str,
    out: ResponseOutparam,
    then: F,
) where
    F: FnOnce(Asset, ResponseOutparam) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let catalog = Catalog::new(&ctx.kv, ctx.blobs());
    let now = time::now();
    // `hash` and the ETag are the SHA-256, which a chunked EpiFiles upload
    // leaves to be computed on first use.
    let get = || {
        let mut a = catalog.get(asset_id, now)?;
        catalog.ensure_sha256(&mut a)?;
        Ok::<_, StoreError>(a)
    };
    if api_key_ok(req) {
        return match get() {
            Ok(a) => then(a, out).await,
            Err(e) => send_error(out, &e).await,
        };
    }
    let commits = Commits::new(&ctx.kv, &catalog, &ctx.limits);
    match commits.authorize_asset(req.auth("AssetToken"), asset_id, now) {
        Ok(Access::Granted(_)) => match get() {
            Ok(a) => then(a, out).await,
            Err(e) => send_error(out, &e).await,
        },
        Ok(denied) => refuse(denied, "asset", out).await,
        Err(e) => send_error(out, &e).await,
    }
}

async fn with_commit_access<F, Fut>(
    req: &Req,
    ctx: &Ctx,
    commit_id: &str,
    out: ResponseOutparam,
    then: F,
) where
    F: FnOnce(crate::Commit, ResponseOutparam) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let catalog = Catalog::new(&ctx.kv, ctx.blobs());
    let commits = Commits::new(&ctx.kv, &catalog, &ctx.limits);
    if api_key_ok(req) {
        return match commits.get(commit_id) {
            Ok(c) => then(c, out).await,
            Err(e) => send_error(out, &e).await,
        };
    }
    match commits.authorize_commit(req.auth("AssetToken"), commit_id) {
        Ok(Access::Granted(c)) => then(*c, out).await,
        Ok(denied) => refuse(denied, "commit", out).await,
        Err(e) => send_error(out, &e).await,
    }
}

/// The reference's metadata shape, plus `hash` (hex SHA-256) and
/// `acknowledged`.
/// The reference's metadata, plus `hash`, `acknowledged` and `url` (the
/// absolute download URL, which Phraseanet's record worker reads).
fn asset_json(a: &Asset, base_url: &str) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "url": format!("{base_url}/assets/{}/download", a.id),
        "size": a.size,
        "formData": a.form_data,
        "originalName": filename::safe_filename(&a.original_name),
        "mimeType": a.mime_type,
        "createdAt": time::rfc3339(a.created_at),
        "hash": a.sha256,
        "acknowledged": a.acknowledged,
    })
}

async fn create_commit(req: &mut Req, ctx: &Ctx) -> Result<crate::Commit, StoreError> {
    let body = req.read_json(256 * 1024).await?;
    let assets: Vec<String> = match body.get("assets") {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| StoreError::invalid("`assets` must be an array of asset ids"))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(StoreError::invalid(
                "`assets` (array of asset ids) is required",
            ));
        }
    };
    let publisher = body
        .get("publisher")
        .and_then(|p| p.as_str())
        .ok_or_else(|| StoreError::invalid("`publisher` (string) is required"))?;
    let form_data = body
        .get("formData")
        .cloned()
        .unwrap_or(serde_json::json!({}));
    let notify = body.get("notify").cloned();
    let catalog = Catalog::new(&ctx.kv, ctx.blobs());
    Commits::new(&ctx.kv, &catalog, &ctx.limits).create(
        assets,
        publisher,
        form_data,
        notify,
        time::now(),
    )
}

async fn list_commits(req: &Req, ctx: &Ctx, out: ResponseOutparam) {
    let (acknowledged, page) = match (req.param("acknowledged"), req.param("page")) {
        (Ok(a), Ok(p)) => (a, p),
        (Err(e), _) | (_, Err(e)) => return send_error(out, &e).await,
    };
    match acknowledged.as_deref() {
        None | Some("false") | Some("0") => {}
        Some(_) => {
            return send_status(
                out,
                400,
                "invalid",
                "only `acknowledged=false` listings are kept",
                &[],
            )
            .await;
        }
    }
    let page = match page.map(|p| p.parse::<usize>()) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        Some(_) => {
            return send_status(
                out,
                400,
                "invalid",
                "`page` must be a whole number ≥ 1",
                &[],
            )
            .await;
        }
    };
    let catalog = Catalog::new(&ctx.kv, ctx.blobs());
    match Commits::new(&ctx.kv, &catalog, &ctx.limits).list_unacked(page, PER_PAGE) {
        Ok((commits, total)) => {
            send_json(
                out,
                200,
                &hydra::commits_collection(&commits, total, page, PER_PAGE, &ctx.base_url),
            )
            .await
        }
        Err(e) => send_error(out, &e).await,
    }
}

async fn housekeeping(ctx: &Ctx) {
    let catalog = Catalog::new(&ctx.kv, ctx.blobs());
    if let Err(e) = catalog.sweep_expired(time::now(), 20) {
        eprintln!("retention sweep failed: {e}");
    }
    let _ = ctx
        .blobs()
        .reclaim_stale(time::now(), ctx.settings.upload_reclaim_after_secs, 20);
    push::retry_due(ctx, PUSH_BUDGET_PER_REQUEST).await;
}
