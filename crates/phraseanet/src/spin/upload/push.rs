//! Push mode: after a commit, `POST {upload_push_url}{upload_push_path}`
//! with `{assets, publisher, commit_id, token, base_url}` and
//! `Authorization: <upload_push_auth_scheme> <upload_push_key>`. Each
//! attempt is claimed on the commit before it is sent (a lease of
//! `upload_push_lease_secs`), so concurrent requests, on one process or on
//! several replicas, send it once. A failed delivery is recorded and retried
//! with exponential backoff, after later requests or from the scheduler
//! (`POST /push/work`); the commit stays pullable whatever happens.

use super::Ctx;
use crate::Commits;
use assetgate_catalog::Catalog;
use assetgate_component::{check_status, fetch, var};
use assetgate_store::settings::number;
use assetgate_store::{Index, QueueConfig, StoreError};
use assetgate_web::time;
use spin_sdk::http::Method;

const PENDING: &str = "push-pending";

pub struct PushConfig {
    /// The whole enqueue URL: `upload_push_url` + `upload_push_path`.
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
            // Phraseanet routes the path with its trailing slash, and its
            // API takes `OAuth` tokens: those are the defaults.
            url: format!(
                "{}{}",
                url.trim_end_matches('/'),
                var("upload_push_path").unwrap_or_else(|| "/api/v1/upload/enqueue/".into())
            ),
            scheme: var("upload_push_auth_scheme").unwrap_or_else(|| "OAuth".into()),
            key: var("upload_push_key"),
            backoff: QueueConfig {
                max_attempts: n("upload_push_max_attempts", 8)? as u32,
                backoff_base_secs: n("upload_push_retry_secs", 10)?,
                backoff_max_secs: 3600,
                lease_secs: n("upload_push_lease_secs", 60)?,
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

/// What a pass over the pending deliveries did.
#[derive(Debug, Default)]
pub struct Pass {
    pub attempted: usize,
    pub delivered: usize,
    pub failed: usize,
}

/// How much one pass may do.
pub struct Budget {
    /// Attempts sent.
    pub attempts: usize,
    /// Pending commits read (most wait for their backoff).
    pub examined: usize,
}

/// Retries deliveries whose backoff has elapsed: a little after every
/// request, more from the scheduler (`POST /push/work`), so an idle service
/// still retries.
pub async fn retry_due(ctx: &Ctx, budget: Budget) -> Pass {
    let mut pass = Pass::default();
    let Some(cfg) = &ctx.push else { return pass };
    let Ok(index) = Index::new(&ctx.kv, PENDING) else {
        return pass;
    };
    let catalog = Catalog::new(&ctx.kv, ctx.blobs());
    let commits = Commits::new(&ctx.kv, &catalog, &ctx.limits);
    let mut cursor = None;
    let mut examined = 0;
    loop {
        let Ok(page) = index.page(cursor.clone(), 50) else {
            return pass;
        };
        for id in &page.members {
            examined += 1;
            let now = time::now();
            // A read first: claiming writes, and most pending commits are
            // waiting for their backoff.
            let due = match commits.get(id) {
                Ok(c) => c.push.as_ref().is_none_or(|p| p.due(now)),
                Err(_) => {
                    let _ = index.remove(id);
                    continue;
                }
            };
            if due && pass.attempted < budget.attempts {
                match attempt(ctx, cfg, id).await {
                    Some(true) => pass.delivered += 1,
                    Some(false) => pass.failed += 1,
                    None => continue,
                }
                pass.attempted += 1;
            }
        }
        match page.next {
            Some(next) if pass.attempted < budget.attempts && examined < budget.examined => {
                cursor = Some(next)
            }
            _ => break,
        }
    }
    pass
}

/// One claimed attempt: `Some(delivered?)`, or `None` when another sender
/// holds the attempt or nothing is due.
async fn attempt(ctx: &Ctx, cfg: &PushConfig, commit_id: &str) -> Option<bool> {
    let catalog = Catalog::new(&ctx.kv, ctx.blobs());
    let commits = Commits::new(&ctx.kv, &catalog, &ctx.limits);
    let untrack = || {
        let _ = Index::new(&ctx.kv, PENDING).and_then(|i| i.remove(commit_id));
    };
    let number = match commits.claim_push(commit_id, time::now(), &cfg.backoff) {
        Ok(Some(n)) => n,
        Ok(None) => {
            if commits
                .get(commit_id)
                .is_ok_and(|c| c.push.is_some_and(|p| p.settled()))
            {
                untrack();
            }
            return None;
        }
        Err(e) => {
            eprintln!("push: commit {commit_id}: cannot claim an attempt: {e}");
            return None;
        }
    };
    let commit = commits.get(commit_id).ok()?;
    let url = &cfg.url;
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
    let outcome = match fetch(Method::Post, url, &headers, body.to_string().into_bytes()).await {
        Ok(resp) => check_status(url, resp.status()),
        Err(e) => Err(e),
    };
    let delivered = outcome.is_ok();
    let state = commits.finish_push(
        commit_id,
        outcome.map_err(|e| e.to_string()),
        time::now(),
        &cfg.backoff,
    );
    match state {
        Ok(p) if p.settled() => {
            untrack();
            if p.gave_up {
                eprintln!(
                    "push: commit {commit_id}: giving up after {} attempts: {:?}",
                    p.attempts, p.last_error
                );
            }
        }
        Ok(p) => eprintln!(
            "push: commit {commit_id}: attempt {number} failed: {:?}",
            p.last_error
        ),
        Err(e) => eprintln!("push: commit {commit_id}: cannot record attempt {number}: {e}"),
    }
    Some(delivered)
}
