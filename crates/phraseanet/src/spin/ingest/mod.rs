//! The DAM side of the Phraseanet flow: `POST /api/v1/upload/enqueue`
//! persists a job before answering 202, then pulls the commit's assets into
//! the shared store; `POST /api/v1/upload/poll` pulls commits from a
//! configured upload service; `GET /api/v1/upload/jobs/{id}` shows a job.
//! Jobs live in a durable queue: one whose worker died is picked up again
//! once its lease expires, by any later request (`POST /api/v1/upload/work`
//! exists for schedulers).

mod worker;

use crate::ingest::{AllowedBaseUrls, EnqueueRequest, IngestJob, JobStatus, ValidRequest};
use assetgate_component::{
    Req, send_error, send_json, send_method_not_allowed, send_not_found, send_status, var,
};
use assetgate_store::settings::number;
use assetgate_store::spin::SpinKv;
use assetgate_store::{ErrorCode, Queue, QueueConfig, Records, StoreError, StoreSettings};
use assetgate_web::time;
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};

pub const JOB_KIND: &str = "ingest-job";
pub const QUEUE: &str = "ingest";

pub struct Ctx {
    pub kv: SpinKv,
    pub settings: StoreSettings,
    pub queue: QueueConfig,
    pub allowed: AllowedBaseUrls,
    pub default_base_url: Option<String>,
    pub max_assets: usize,
}

impl Ctx {
    fn load() -> Result<Ctx, StoreError> {
        let n =
            |name: &str, default: u64, min: u64| number(var(name), name, default, min, u64::MAX);
        Ok(Ctx {
            kv: SpinKv::open_default()?,
            settings: StoreSettings::from_lookup(var)?,
            queue: QueueConfig {
                lease_secs: n("ingest_lease_secs", 300, 1)?,
                max_attempts: n("ingest_max_attempts", 5, 1)? as u32,
                backoff_base_secs: n("ingest_retry_base_secs", 5, 0)?,
                backoff_max_secs: 3600,
            },
            allowed: AllowedBaseUrls::parse(&var("ingest_allowed_base_urls").unwrap_or_default())?,
            default_base_url: var("ingest_default_base_url"),
            max_assets: n("upload_max_files_per_commit", 100, 1)? as usize,
        })
    }

    pub fn queue(&self) -> Result<Queue<'_, SpinKv>, StoreError> {
        Queue::new(&self.kv, QUEUE, self.queue)
    }

    pub fn jobs(&self) -> Records<'_, SpinKv> {
        Records::new(&self.kv, JOB_KIND)
    }
}

/// Answers one request of the `ingest` component, then works queued jobs.
pub async fn serve(req: IncomingRequest, out: ResponseOutparam) {
    let mut req = Req::new(req);
    let ctx = match Ctx::load() {
        Ok(c) => c,
        Err(e) => return send_error(out, &e).await,
    };
    let segs = match req.path_segments() {
        Ok(s) => s,
        Err(e) => return send_error(out, &e).await,
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let tail = match segs.as_slice() {
        ["api", "v1", "upload", rest @ ..] => rest.to_vec(),
        _ => return send_not_found(out).await,
    };
    if let Err((status, message)) = check_key(&req) {
        let challenge = (
            "www-authenticate",
            r#"Bearer realm="assetgate""#.to_string(),
        );
        return send_status(out, status, "unauthorized", message, &[challenge]).await;
    }
    let work_after = match (tail.as_slice(), req.method.clone()) {
        (["enqueue"], Method::Post) => {
            match enqueue(&mut req, &ctx).await {
                Ok(p) => {
                    send_json(
                        out,
                        202,
                        &serde_json::json!({ "id": p.id, "created": p.created }),
                    )
                    .await;
                    if p.needs_ack {
                        worker::acknowledge_late(&ctx, &p.id).await;
                    }
                }
                Err(e) => {
                    send_error(out, &e).await;
                    return;
                }
            }
            // The notification is also the signal to look for pulled work.
            worker::poll(&ctx).await.ok();
            true
        }
        (["poll"], Method::Post) => {
            match worker::poll(&ctx).await {
                Ok(v) => send_json(out, 200, &v).await,
                // The upload service failed us: a gateway error, with why.
                Err(e) => send_status(out, 502, "upstream", &e.message, &[]).await,
            }
            true
        }
        (["work"], Method::Post) => {
            send_json(out, 202, &serde_json::json!({ "working": true })).await;
            true
        }
        // A DAM watching its job also keeps the queue moving: a job whose
        // worker vanished resumes here once its lease has expired.
        (["jobs", id], Method::Get) => {
            match ctx.jobs().get::<IngestJob>(id) {
                Ok(job) => send_json(out, 200, &job.value.view()).await,
                Err(e) => send_error(out, &e).await,
            }
            true
        }
        (["enqueue"] | ["poll"] | ["work"], _) => {
            send_method_not_allowed(out, "POST").await;
            false
        }
        (["jobs", _], _) => {
            send_method_not_allowed(out, "GET").await;
            false
        }
        _ => {
            send_not_found(out).await;
            false
        }
    };
    if work_after {
        worker::run(&ctx, 4).await;
    }
}

/// Schemes real push senders use: Phraseanet's uploader sends `OAuth`,
/// others `ApiKey` or `Bearer`.
const SENDER_SCHEMES: [&str; 3] = ["OAuth", "ApiKey", "Bearer"];

/// `Authorization: <scheme> <ingest_api_key>` when a key is configured, the
/// scheme being `ingest_auth_scheme` or one of [`SENDER_SCHEMES`].
fn check_key(req: &Req) -> Result<(), (u16, &'static str)> {
    let Some(key) = var("ingest_api_key") else {
        return Ok(());
    };
    let configured = var("ingest_auth_scheme").unwrap_or_else(|| "ApiKey".into());
    let given = std::iter::once(configured.as_str())
        .chain(SENDER_SCHEMES)
        .find_map(|scheme| req.auth(scheme));
    match given {
        Some(given)
            if assetgate_identity::token::constant_time_eq(given.as_bytes(), key.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err((
            401,
            "a valid Authorization header with the ingest API key is required",
        )),
    }
}

/// Validates and persists the job before anything is answered. A replayed
/// notification maps to the same job (`created: false`).
async fn enqueue(req: &mut Req, ctx: &Ctx) -> Result<Persisted, StoreError> {
    let body = req.read_body(256 * 1024).await?;
    let parsed: EnqueueRequest = serde_json::from_slice(&body)
        .map_err(|e| StoreError::invalid(format!("invalid enqueue body: {e}")))?;
    let valid = parsed.validate(
        ctx.default_base_url.as_deref(),
        &ctx.allowed,
        ctx.max_assets,
    )?;
    persist(ctx, &valid)
}

/// What persisting a notification did.
pub struct Persisted {
    pub id: String,
    pub created: bool,
    /// The job had finished without the commit's id, which this
    /// notification brought: the commit is still to be acknowledged.
    pub needs_ack: bool,
}

pub fn persist(ctx: &Ctx, valid: &ValidRequest) -> Result<Persisted, StoreError> {
    let now = time::now();
    let job = IngestJob::new(valid, now);
    let created = match ctx.jobs().create(&job.id, &job) {
        Ok(_) => true,
        Err(e) if e.code == ErrorCode::Conflict => false,
        Err(e) => return Err(e),
    };
    // The same assets came again (a push without `commit_id`, then a pull
    // with it): one job, which learns the commit to acknowledge.
    // Read first: every poll meets every listed commit's job again, and
    // only the first notification with the commit's id has to write.
    let mut needs_ack = false;
    if !created && let Some(commit) = &valid.commit_id {
        let mut stored: IngestJob = ctx.jobs().get(&job.id)?.value;
        if stored.commit_id.is_none() {
            stored = ctx.jobs().modify(&job.id, |j: &mut IngestJob| {
                if j.commit_id.is_none() {
                    j.commit_id = Some(commit.clone());
                    j.updated_at = now;
                }
                Ok(j.clone())
            })?;
        }
        needs_ack = stored.status == JobStatus::Done && !stored.acknowledged;
    }
    match ctx.queue()?.enqueue(&job.id, job.id.clone(), now) {
        Ok(()) => {}
        Err(e) if e.code == ErrorCode::Conflict => {}
        Err(e) => return Err(e),
    }
    Ok(Persisted {
        id: job.id,
        created,
        needs_ack,
    })
}
