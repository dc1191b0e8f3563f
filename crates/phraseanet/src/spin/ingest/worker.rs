//! Running ingest jobs: claim with a lease, fetch each asset's metadata and
//! bytes with its `AssetToken`, verify size and hash, store, and
//! acknowledge the commit only when every asset is in.

use super::{Ctx, persist};
use crate::ingest::{AssetState, EnqueueRequest, IngestJob, JobStatus};
use assetgate_catalog::{Asset, Catalog, Origin};
use assetgate_component::{FetchError, check_status, fetch, var};
use assetgate_store::{BlobWriter, Blobs, ErrorCode, JobState, StoreError};
use assetgate_web::{secret, time};
use futures::StreamExt;
use spin_sdk::http::Method;

/// Pages of a pull listing read per poll.
const MAX_POLL_PAGES: usize = 20;

/// Works through up to `budget` due jobs.
pub async fn run(ctx: &Ctx, budget: usize) {
    let lease = secret::random_hex(12);
    for _ in 0..budget {
        let claimed = ctx
            .queue()
            .and_then(|q| q.claim::<String>(time::now(), &lease, 200));
        match claimed {
            Ok(Some(job)) => process(ctx, &job.payload, &lease, job.attempts).await,
            Ok(None) => return,
            Err(e) => {
                eprintln!("ingest: cannot claim a job: {e}");
                return;
            }
        }
    }
}

fn update(ctx: &Ctx, id: &str, f: impl Fn(&mut IngestJob)) -> Result<IngestJob, StoreError> {
    ctx.jobs().modify(id, |job: &mut IngestJob| {
        f(job);
        job.updated_at = time::now();
        Ok(job.clone())
    })
}

fn set_asset(ctx: &Ctx, id: &str, remote: &str, f: impl Fn(&mut crate::ingest::IngestAsset)) {
    if let Err(e) = update(ctx, id, |job| {
        if let Some(a) = job.assets.iter_mut().find(|a| a.remote_id == remote) {
            f(a);
        }
    }) {
        eprintln!("ingest {id}: cannot record asset {remote}: {e}");
    }
}

async fn process(ctx: &Ctx, id: &str, lease: &str, attempt: u32) {
    let job = match update(ctx, id, |j| {
        j.status = JobStatus::Running;
        j.attempts = attempt;
    }) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("ingest {id}: cannot start: {e}");
            return;
        }
    };
    publisher_info(ctx, &job).await;

    let mut transient = None;
    let remaining: Vec<(String, bool)> = job
        .remaining()
        .map(|a| {
            // Left `downloading` by workers that vanished mid-download (a
            // crash, or a platform ending the request at its time limit)
            // as often as retries allow: it will not fit; say so.
            let interrupted =
                a.state == AssetState::Downloading && a.attempts >= ctx.queue.max_attempts;
            (a.remote_id.clone(), interrupted)
        })
        .collect();
    for (remote, interrupted) in remaining {
        if interrupted {
            set_asset(ctx, id, &remote, |a| {
                a.state = AssetState::Failed;
                a.reason = Some(format!(
                    "the download was interrupted {} times (its worker's request ended: a \
                     crash, or the platform's time limit)",
                    a.attempts
                ));
            });
            continue;
        }
        set_asset(ctx, id, &remote, |a| {
            a.state = AssetState::Downloading;
            a.attempts += 1;
        });
        match fetch_asset(ctx, &job, &remote).await {
            Ok((local, size)) => set_asset(ctx, id, &remote, |a| {
                a.state = AssetState::Stored;
                a.local_id = Some(local.clone());
                a.size = Some(size);
                a.reason = None;
            }),
            Err(FetchError::Permanent(m)) => set_asset(ctx, id, &remote, |a| {
                a.state = AssetState::Failed;
                a.reason = Some(m.clone());
            }),
            Err(FetchError::Transient(m)) => {
                set_asset(ctx, id, &remote, |a| {
                    a.state = AssetState::Pending;
                    a.reason = Some(m.clone());
                });
                transient = Some(m);
            }
        }
    }
    if let Some(reason) = transient {
        return retry_later(ctx, id, lease, &reason);
    }
    let Ok(job) = ctx.jobs().get::<IngestJob>(id).map(|v| v.value) else {
        return;
    };
    let failed = job
        .assets
        .iter()
        .filter(|a| a.state == AssetState::Failed)
        .count();
    if failed > 0 {
        let reason = format!(
            "{failed} of {} assets failed; the commit is not acknowledged",
            job.assets.len()
        );
        return finish(ctx, id, lease, JobStatus::Failed, Some(reason), false);
    }
    if let Some(commit) = &job.commit_id {
        match post_ack(&job, commit).await {
            Ok(()) => {}
            Err(FetchError::Transient(m)) => {
                return retry_later(ctx, id, lease, &format!("acknowledgement: {m}"));
            }
            Err(FetchError::Permanent(m)) => {
                return finish(
                    ctx,
                    id,
                    lease,
                    JobStatus::Failed,
                    Some(format!("acknowledgement refused: {m}")),
                    false,
                );
            }
        }
    }
    finish(
        ctx,
        id,
        lease,
        JobStatus::Done,
        None,
        job.commit_id.is_some(),
    );
}

fn finish(
    ctx: &Ctx,
    id: &str,
    lease: &str,
    status: JobStatus,
    reason: Option<String>,
    acked: bool,
) {
    if let Err(e) = update(ctx, id, |j| {
        j.status = status.clone();
        j.last_error = reason.clone();
        j.acknowledged = acked;
    }) {
        eprintln!("ingest {id}: cannot record the outcome: {e}");
    }
    if let Err(e) = ctx
        .queue()
        .and_then(|q| q.complete::<String>(id, lease, time::now()))
    {
        eprintln!("ingest {id}: cannot complete the queue entry: {e}");
    }
    if let Some(r) = reason {
        eprintln!("ingest {id}: {status:?}: {r}");
    }
}

/// A transient failure: back off, or give up for good after the last attempt.
fn retry_later(ctx: &Ctx, id: &str, lease: &str, reason: &str) {
    let state = ctx
        .queue()
        .and_then(|q| q.fail::<String>(id, lease, reason, time::now()));
    let (status, reason) = match state {
        Ok(JobState::Failed { .. }) => (
            JobStatus::Failed,
            format!(
                "gave up after {} attempts: {reason}",
                ctx.queue.max_attempts
            ),
        ),
        Ok(_) => (JobStatus::Queued, reason.to_string()),
        Err(e) => {
            eprintln!("ingest {id}: cannot schedule a retry: {e}");
            return;
        }
    };
    eprintln!("ingest {id}: {reason}");
    let failed = status == JobStatus::Failed;
    let _ = update(ctx, id, |j| {
        j.status = status.clone();
        j.last_error = Some(reason.clone());
        if failed {
            for a in j.assets.iter_mut() {
                if matches!(a.state, AssetState::Pending | AssetState::Downloading) {
                    a.state = AssetState::Failed;
                }
            }
        }
    });
}

/// A body that broke off mid-read. The host's words go to the log; the
/// job (which its client reads) says what happened.
fn transient(what: &str, e: impl std::fmt::Debug) -> FetchError {
    eprintln!("ingest: {what}: {e:?}");
    FetchError::Transient(format!("{what}: the connection broke off"))
}

fn store_failure(e: StoreError) -> FetchError {
    match e.code {
        ErrorCode::Backend | ErrorCode::Conflict => FetchError::Transient(e.to_string()),
        _ => FetchError::Permanent(e.to_string()),
    }
}

/// Metadata, then bytes, of one remote asset; returns our asset id.
async fn fetch_asset(
    ctx: &Ctx,
    job: &IngestJob,
    remote: &str,
) -> Result<(String, u64), FetchError> {
    let blobs = Blobs::new(&ctx.kv, ctx.settings.blobs);
    let catalog = Catalog::new(&ctx.kv, Blobs::new(&ctx.kv, ctx.settings.blobs));
    // Deterministic: a retried or replayed job never stores an asset twice.
    let local = secret::digest_parts(&[&job.id, remote])[..32].to_string();
    if let Ok(existing) = catalog.get(&local, time::now()) {
        return Ok((local, existing.size));
    }
    let auth = [("authorization", format!("AssetToken {}", job.token))];

    let url = format!("{}/assets/{remote}", job.base_url);
    let resp = fetch(Method::Get, &url, &auth, Vec::new()).await?;
    check_status(&url, resp.status())?;
    let body = resp
        .into_body()
        .await
        .map_err(|e| transient(&format!("{url}: reading the metadata"), e))?;
    let meta: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| FetchError::Permanent(format!("{url}: metadata is not JSON: {e}")))?;
    let size = meta["size"]
        .as_u64()
        .ok_or_else(|| FetchError::Permanent(format!("{url}: metadata has no `size`")))?;
    if size == 0 {
        return Err(FetchError::Permanent(format!("{url}: the asset is empty")));
    }
    if size > ctx.settings.blobs.max_blob_size {
        return Err(FetchError::Permanent(format!(
            "asset of {size} bytes exceeds blob_max_size"
        )));
    }
    let name = meta["originalName"].as_str().unwrap_or(remote).to_string();
    let declared = meta["mimeType"].as_str().map(String::from);
    let hash = meta["hash"].as_str().map(|h| h.to_ascii_lowercase());

    let url = format!("{}/assets/{remote}/download", job.base_url);
    let resp = fetch(Method::Get, &url, &auth, Vec::new()).await?;
    check_status(&url, resp.status())?;
    // An earlier attempt may have died mid-transfer: start clean.
    let _ = blobs.delete(&local);
    let now = time::now();
    let mut writer = BlobWriter::begin(&blobs, &local, size, now).map_err(store_failure)?;
    let mut head = Vec::new();
    let mut stream = resp.take_body_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = writer.abort();
                return Err(transient(
                    &format!("{url}: after {received} of {size} bytes"),
                    e,
                ));
            }
        };
        received += chunk.len() as u64;
        if head.len() < 32 {
            head.extend_from_slice(&chunk[..chunk.len().min(32 - head.len())]);
        }
        if let Err(e) = writer.write(&chunk) {
            let _ = writer.abort();
            return Err(if e.code == ErrorCode::TooLarge {
                FetchError::Permanent(format!(
                    "size mismatch: metadata says {size} bytes, the download is longer"
                ))
            } else {
                store_failure(e)
            });
        }
    }
    if received != size {
        let _ = writer.abort();
        return Err(FetchError::Permanent(format!(
            "size mismatch: metadata says {size} bytes, received {received}"
        )));
    }
    let mime = assetgate_web::mime::resolve(declared.as_deref(), &head, &name);
    let d = writer.finish(&mime, now).map_err(store_failure)?;
    // MD5 and SHA-256 were computed as the bytes arrived; a SHA-1 (40
    // digits) is computed only for the sender that gives one.
    let sha1_matches = |h: &str| {
        h.len() == 40
            && blobs
                .reader(&local)
                .ok()
                .and_then(|r| assetgate_store::hash::sha1_hex(r).ok())
                .is_some_and(|s| s == h)
    };
    if let Some(h) = hash
        && h != d.digests.md5
        && h != d.digests.sha256
        && !sha1_matches(&h)
    {
        let _ = blobs.delete(&local);
        return Err(FetchError::Permanent(format!(
            "hash mismatch: metadata says {h}, content is sha256 {}",
            d.digests.sha256
        )));
    }
    let form = meta
        .get("formData")
        .cloned()
        .unwrap_or(serde_json::json!({}));
    // A remote service's name is as hostile as a client's: store the safe
    // form, keep what was sent when it differs (as the upload side does).
    let safe = assetgate_web::filename::safe_filename(&name);
    let mut asset = Asset::from_blob(
        &d,
        &safe,
        form,
        Origin::Ingest {
            job: job.id.clone(),
            remote_id: remote.to_string(),
            base_url: job.base_url.clone(),
        },
        now,
    );
    asset.submitted_name = (safe != name).then_some(name);
    match catalog.add(&asset) {
        Ok(()) => Ok((local, size)),
        Err(e) if e.code == ErrorCode::Conflict => Ok((local, size)),
        Err(e) => Err(store_failure(e)),
    }
}

/// Publisher details from the auth service, when one is configured; a
/// failure is recorded on the job, not fatal.
async fn publisher_info(ctx: &Ctx, job: &IngestJob) {
    let Some(auth) = var("ingest_auth_url") else {
        return;
    };
    if job.publisher_info.is_some() || job.publisher.is_empty() {
        return;
    }
    let ok = job
        .publisher
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let result = if !ok {
        Err("publisher id is not a plain identifier".to_string())
    } else {
        let url = format!("{}/users/{}", auth.trim_end_matches('/'), job.publisher);
        let headers: Vec<(&str, String)> = var("ingest_auth_key")
            .map(|k| vec![("authorization", format!("Bearer {k}"))])
            .unwrap_or_default();
        match fetch(Method::Get, &url, &headers, Vec::new()).await {
            Ok(resp) => match check_status(&url, resp.status()) {
                Ok(()) => match resp.into_body().await {
                    Ok(b) => serde_json::from_slice::<serde_json::Value>(&b)
                        .map_err(|e| format!("{url}: not JSON: {e}")),
                    Err(e) => {
                        eprintln!("ingest: {url}: {e:?}");
                        Err(format!("{url}: the connection broke off"))
                    }
                },
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        }
    };
    let _ = update(ctx, &job.id, |j| match &result {
        Ok(v) => {
            j.publisher_info = Some(v.clone());
            j.publisher_error = None;
        }
        Err(e) => j.publisher_error = Some(e.clone()),
    });
}

/// `POST {base_url}/commits/{commit}/ack` with the job's AssetToken.
async fn post_ack(job: &IngestJob, commit: &str) -> Result<(), FetchError> {
    let url = format!("{}/commits/{commit}/ack", job.base_url);
    let auth = [("authorization", format!("AssetToken {}", job.token))];
    match fetch(Method::Post, &url, &auth, Vec::new()).await {
        Ok(resp) => check_status(&url, resp.status()),
        Err(e) => Err(e),
    }
}

/// Acknowledges the commit of a job that finished before it knew the
/// commit's id (a notification without `commit_id`, the same assets pulled
/// later). A failure is logged and left: the commit stays listed, so the
/// next poll tries again.
pub async fn acknowledge_late(ctx: &Ctx, id: &str) {
    let Ok(job) = ctx.jobs().get::<IngestJob>(id).map(|v| v.value) else {
        return;
    };
    let Some(commit) = job.commit_id.as_deref().filter(|_| !job.acknowledged) else {
        return;
    };
    match post_ack(&job, commit).await {
        Ok(()) => {
            if let Err(e) = update(ctx, id, |j| j.acknowledged = true) {
                eprintln!("ingest {id}: cannot record the acknowledgement: {e}");
            }
        }
        Err(e) => eprintln!("ingest {id}: late acknowledgement of {commit} failed: {e:?}"),
    }
}

/// Pull mode: reads the configured upload service's unacknowledged commits
/// and makes each unseen one a job.
pub async fn poll(ctx: &Ctx) -> Result<serde_json::Value, StoreError> {
    let Some(base) = var("ingest_pull_url").map(|u| u.trim_end_matches('/').to_string()) else {
        return Ok(serde_json::json!({ "polled": false, "reason": "ingest_pull_url is not set" }));
    };
    let headers: Vec<(&str, String)> = var("ingest_pull_key")
        .map(|k| vec![("authorization", format!("Bearer {k}"))])
        .unwrap_or_default();
    let (mut seen, mut created) = (0, 0);
    for page in 1..=MAX_POLL_PAGES {
        let url = format!("{base}/commits?acknowledged=false&page={page}");
        let resp = fetch(Method::Get, &url, &headers, Vec::new())
            .await
            .map_err(|e| StoreError::backend(format!("poll: {e}")))?;
        check_status(&url, resp.status()).map_err(|e| StoreError::backend(format!("poll: {e}")))?;
        let body = resp.into_body().await.map_err(|e| {
            eprintln!("poll: {url}: {e:?}");
            StoreError::backend(format!("poll: {url}: the connection broke off"))
        })?;
        let listing: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| StoreError::backend(format!("poll: {url}: not JSON: {e}")))?;
        let members = listing["hydra:member"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for m in &members {
            seen += 1;
            let request = EnqueueRequest::from_listed_commit(m, &base);
            match request
                .validate(None, &ctx.allowed, ctx.max_assets)
                .and_then(|v| persist(ctx, &v))
            {
                Ok(p) => {
                    created += usize::from(p.created);
                    if p.needs_ack {
                        acknowledge_late(ctx, &p.id).await;
                    }
                }
                Err(e) => eprintln!("poll: skipping commit {:?}: {e}", m["id"]),
            }
        }
        if members.is_empty() || listing["hydra:view"].get("hydra:next").is_none() {
            break;
        }
    }
    Ok(serde_json::json!({ "polled": true, "seen": seen, "enqueued": created }))
}
