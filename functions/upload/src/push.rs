//! Push mode: after a commit, `POST {upload_push_url}/api/v1/upload/enqueue`
//! with `{assets, publisher, commit_id, token, base_url}` and
//! `Authorization: <upload_push_auth_scheme> <upload_push_key>`. A failed
//! delivery is recorded on the commit and retried with exponential backoff
//! on later requests; the commit stays pullable whatever happens.

use crate::Ctx;
use assetgate_catalog::Catalog;
use assetgate_component::{check_status, fetch, var};
use assetgate_phraseanet::Commits;
use assetgate_store::settings::number;
use assetgate_store::{Index, QueueConfig, StoreError};
use assetgate_web::time;
use spin_sdk::http::Method;

const PENDING: &str = "push-pending";
/// Due retries attempted per request.
const RETRY_BUDGET: usize = 2;

pub struct PushConfig {
    url: String,
    scheme: String,
    key: Option<String>,
    backoff: QueueConfig,
}

impl PushConfig {
    /// `None` when push is off; malformed retry settings are errors, as
    /// every other limit.
    pub fn load() -> Result<Option<PushConfig>, StoreError> {
        let Some(url) = var("upload_push_url") else {
            return Ok(None);
        };
        let n = |name: &str, default: u64| number(var(name), name, default, 1, u64::MAX);
        Ok(Some(PushConfig {
            url: url.trim_end_matches('/').to_string(),
            scheme: var("upload_push_auth_scheme").unwrap_or_else(|| "ApiKey".into()),
            key: var("upload_push_key"),
            backoff: QueueConfig {
                max_attempts: n("upload_push_max_attempts", 8)? as u32,
                backoff_base_secs: n("upload_push_retry_secs", 10)?,
                backoff_max_secs: 3600,
                ..QueueConfig::default()
            },
        }))
    }
}

/// First delivery attempt, right after the commit was answered.
pub async fn notify(ctx: &Ctx, commit_id: &str) {
    let Some(cfg) = &ctx.push else { return };
    if let Err(e) = Index::new(&ctx.kv, PENDING).and_then(|i| i.add(commit_id)) {
        eprintln!("push: cannot track commit {commit_id}: {e}");
    }
    attempt(ctx, cfg, commit_id).await;
}

/// Retries deliveries whose backoff has elapsed.
pub async fn retry_due(ctx: &Ctx) {
    let Some(cfg) = &ctx.push else { return };
    let Ok(index) = Index::new(&ctx.kv, PENDING) else {
        return;
    };
    let Ok(page) = index.page(None, 50) else {
        return;
    };
    let catalog = Catalog::new(&ctx.kv, ctx.blobs());
    let commits = Commits::new(&ctx.kv, &catalog, &ctx.limits);
    let now = time::now();
    let mut tried = 0;
    for id in page.members {
        let due = match commits.get(&id) {
            Ok(c) => c
                .push
                .as_ref()
                .and_then(|p| p.next_attempt_at)
                .is_none_or(|t| t <= now),
            Err(_) => {
                let _ = index.remove(&id);
                false
            }
        };
        if due {
            attempt(ctx, cfg, &id).await;
            tried += 1;
            if tried >= RETRY_BUDGET {
                return;
            }
        }
    }
}

async fn attempt(ctx: &Ctx, cfg: &PushConfig, commit_id: &str) {
    let catalog = Catalog::new(&ctx.kv, ctx.blobs());
    let commits = Commits::new(&ctx.kv, &catalog, &ctx.limits);
    let Ok(commit) = commits.get(commit_id) else {
        return;
    };
    if commit
        .push
        .as_ref()
        .is_some_and(|p| p.delivered_at.is_some() || p.gave_up)
    {
        let _ = Index::new(&ctx.kv, PENDING).and_then(|i| i.remove(commit_id));
        return;
    }
    let url = format!("{}/api/v1/upload/enqueue", cfg.url);
    let body = serde_json::json!({
        "assets": commit.assets,
        "publisher": commit.publisher,
        "commit_id": commit.id,
        "token": commit.token,
        "base_url": ctx.base_url,
    });
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(key) = &cfg.key {
        headers.push(("authorization", format!("{} {key}", cfg.scheme)));
    }
    let outcome = match fetch(Method::Post, &url, &headers, body.to_string().into_bytes()).await {
        Ok(resp) => check_status(&url, resp.status()),
        Err(e) => Err(e),
    };
    let now = time::now();
    let backoff = cfg.backoff;
    let state = commits.update_push(commit_id, |p| {
        p.attempts += 1;
        match &outcome {
            Ok(()) => {
                p.delivered_at = Some(now);
                p.last_error = None;
                p.next_attempt_at = None;
            }
            Err(e) => {
                p.last_error = Some(e.to_string());
                if p.attempts >= backoff.max_attempts {
                    p.gave_up = true;
                    p.next_attempt_at = None;
                } else {
                    p.next_attempt_at = Some(now + backoff.backoff(p.attempts));
                }
            }
        }
    });
    match state {
        Ok(p) if p.delivered_at.is_some() || p.gave_up => {
            let _ = Index::new(&ctx.kv, PENDING).and_then(|i| i.remove(commit_id));
            if p.gave_up {
                eprintln!(
                    "push: commit {commit_id}: giving up after {} attempts: {:?}",
                    p.attempts, p.last_error
                );
            }
        }
        Ok(p) => eprintln!(
            "push: commit {commit_id}: attempt {} failed: {:?}",
            p.attempts, p.last_error
        ),
        Err(e) => eprintln!("push: commit {commit_id}: cannot record the attempt: {e}"),
    }
}
