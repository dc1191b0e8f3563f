//! Working a job after `/process` has answered: claim it (a lease, so a
//! worker that dies leaves it to the next), fetch the source once, make
//! and deliver each rendition, append one event per rendition, remember
//! which are done (a retried job does not redo or re-announce them), and
//! release the client's in-flight slot.
//!
//! Outbound HTTP goes through [`Transport`], which the Spin component
//! implements with `wasi:http` and unit tests with a map.

use crate::error::{Failure, Reason};
use crate::events::{self, Delivered};
use crate::multipart;
use crate::render::{self, Output};
use crate::request::{Fmt, Rendition, Requested, Target};
use crate::service::{JobPayload, Service};
use crate::urls::{self, Location, Use};
use crate::zipper::Archive;
use assetgate_catalog::{Asset, Catalog, Origin};
use assetgate_store::{Blobs, ErrorCode, Job, Kv, Records, Result};
use base64::Engine;
use sha1::{Digest, Sha1};

/// Bytes fetched from a URL.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

#[allow(async_fn_in_trait)]
pub trait Transport {
    /// GET `url`; more than `max_bytes` is an error.
    async fn get(&self, url: &str, max_bytes: u64) -> std::result::Result<Fetched, Failure>;
    /// PUT `body` to `url`; a non-2xx answer is an error.
    async fn put(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> std::result::Result<(), String>;
}

/// Renditions of a job already reported, by index.
const PROGRESS: &str = "compute-progress";

/// Works job `id` if it can be claimed now. Returns whether it ran.
pub async fn run<K: Kv + ?Sized, T: Transport>(
    svc: &Service<'_, K>,
    t: &T,
    id: &str,
    now: impl Fn() -> u64,
) -> Result<bool> {
    let token = assetgate_web::secret::random_hex(8);
    let Some(job) = svc.queue()?.claim_id::<JobPayload>(id, now(), &token)? else {
        return Ok(false);
    };
    work(svc, t, job, &token, now).await?;
    Ok(true)
}

/// Takes over one job whose worker vanished (lease expired), if any.
pub async fn recover<K: Kv + ?Sized, T: Transport>(
    svc: &Service<'_, K>,
    t: &T,
    now: impl Fn() -> u64,
) -> Result<bool> {
    let token = assetgate_web::secret::random_hex(8);
    let Some(job) = svc.queue()?.claim::<JobPayload>(now(), &token, 16)? else {
        return Ok(false);
    };
    eprintln!(
        "compute: resuming job {} (request {}, attempt {})",
        job.id, job.payload.request_id, job.attempts
    );
    work(svc, t, job, &token, now).await?;
    Ok(true)
}

async fn work<K: Kv + ?Sized, T: Transport>(
    svc: &Service<'_, K>,
    t: &T,
    job: Job<JobPayload>,
    token: &str,
    now: impl Fn() -> u64,
) -> Result<()> {
    let p = &job.payload;
    let progress = Records::new(svc.kv, PROGRESS);
    let mut done: Vec<usize> = progress
        .try_get::<Vec<usize>>(&job.id)?
        .map(|v| v.value)
        .unwrap_or_default();
    let started = now();
    // A job whose workers keep dying (e.g. out of memory on its source)
    // stops here instead of taking the next worker down too.
    let overloaded = job.attempts > svc.cfg.max_attempts;
    let mut source: Option<std::result::Result<(Vec<u8>, String), Failure>> = None;
    for (i, requested) in p.request.renditions.iter().enumerate() {
        if done.contains(&i) {
            continue;
        }
        let result = match requested {
            Requested::Unsupported { message, .. } => Err(Failure::new(
                Reason::RenditionFormatUnsupported,
                message.clone(),
            )),
            Requested::Make(_) if overloaded => Err(Failure::new(
                Reason::ServiceOverLoad,
                format!("the job was abandoned after {} attempts", job.attempts - 1),
            )),
            Requested::Make(_) if now().saturating_sub(started) > svc.cfg.job_timeout_secs => {
                Err(Failure::generic(format!(
                    "the job ran past compute_job_timeout_secs ({} s)",
                    svc.cfg.job_timeout_secs
                )))
            }
            Requested::Make(r) => {
                // Fetched once, by the first rendition that needs it (zip
                // renditions read their own files).
                if source.is_none() && r.fmt != Fmt::Zip {
                    source = Some(fetch_source(svc, t, p).await);
                }
                make_and_deliver(svc, t, p, r, source.as_ref(), now())
                    .await
                    .map(|(out, delivered)| (r, out, delivered))
            }
        };
        let event = match &result {
            Ok((r, out, delivered)) => {
                let sha1 = hex::encode(Sha1::digest(&out.bytes));
                events::created(&p.request, r, &p.request_id, out, &sha1, delivered, now())
            }
            Err(f) => {
                eprintln!(
                    "compute: request {} rendition {i} failed: {} {}",
                    p.request_id,
                    f.reason.as_str(),
                    f.message
                );
                events::failed(&p.request, requested.original(), &p.request_id, f, now())
            }
        };
        append_event(svc, p, &event)?;
        done.push(i);
        progress_save(&progress, &job.id, &done)?;
    }
    svc.queue()?.complete::<JobPayload>(&job.id, token, now())?;
    svc.in_flight(&p.client)?.remove(&job.id)?;
    progress.delete(&job.id)?;
    Ok(())
}

fn progress_save<K: Kv + ?Sized>(records: &Records<'_, K>, id: &str, done: &[usize]) -> Result<()> {
    let done = done.to_vec();
    match records.try_get::<Vec<usize>>(id)? {
        Some(v) => records.update(id, &v, &done).map(|_| ()),
        None => records.create(id, &done).map(|_| ()),
    }
}

/// Appends to the client's journal unless it unregistered meanwhile.
fn append_event<K: Kv + ?Sized>(
    svc: &Service<'_, K>,
    p: &JobPayload,
    event: &serde_json::Value,
) -> Result<()> {
    match svc.registration(&p.client)? {
        Some(reg) if reg.journal == p.journal => {
            svc.journal(&p.journal)?
                .append(event.to_string().as_bytes())?;
        }
        _ => eprintln!(
            "compute: client {} unregistered; event for request {} dropped",
            p.client, p.request_id
        ),
    }
    Ok(())
}

/// Bytes and media type of whatever `url` names.
async fn read<K: Kv + ?Sized, T: Transport>(
    svc: &Service<'_, K>,
    t: &T,
    url: &str,
    declared: Option<&str>,
) -> std::result::Result<(Vec<u8>, String), Failure> {
    let max = svc.cfg.max_source_bytes;
    let too_big = |n: u64| {
        Failure::new(
            Reason::SourceUnsupported,
            format!("the source has {n} bytes; at most {max} are processed"),
        )
    };
    let loc = urls::check(url, &svc.cfg.allowed_http_hosts, Use::Read).map_err(|e| {
        Failure::new(
            Reason::SourceUnsupported,
            format!("{}: {e}", urls::redact(url)),
        )
    })?;
    let (bytes, mime) = match loc {
        Location::Data { mime, bytes } => {
            if bytes.len() as u64 > max {
                return Err(too_big(bytes.len() as u64));
            }
            (bytes, mime)
        }
        Location::Asset(id) => {
            let catalog = Catalog::new(svc.kv, Blobs::new(svc.kv, svc.blobs));
            let asset = catalog
                .get(&id, assetgate_web::time::now())
                .map_err(|e| match e.code {
                    ErrorCode::NotFound => {
                        Failure::generic(format!("asset:{id} is not in the store"))
                    }
                    _ => Failure::generic(format!("asset:{id}: {}", e.message)),
                })?;
            if asset.size > max {
                return Err(too_big(asset.size));
            }
            let bytes = catalog
                .blobs()
                .read_all(&id)
                .map_err(|e| Failure::generic(format!("asset:{id}: {}", e.message)))?;
            (bytes, asset.mime_type)
        }
        Location::Remote(u) => {
            let f = t.get(&u, max).await?;
            (f.bytes, f.content_type.unwrap_or_default())
        }
    };
    let mime = declared
        .map(str::to_string)
        .filter(|m| !m.is_empty())
        .unwrap_or(mime);
    Ok((bytes, assetgate_web::mime::essence(&mime)))
}

async fn fetch_source<K: Kv + ?Sized, T: Transport>(
    svc: &Service<'_, K>,
    t: &T,
    p: &JobPayload,
) -> std::result::Result<(Vec<u8>, String), Failure> {
    let Some(src) = &p.request.source else {
        return Err(Failure::generic("this rendition needs a `source`"));
    };
    let max = svc.cfg.max_source_bytes;
    if let Some(size) = src.size
        && size > max
    {
        // Not fetched: the client said it is too big.
        return Err(Failure::new(
            Reason::SourceUnsupported,
            format!("`source.size` is {size} bytes; sources of at most {max} bytes are processed"),
        ));
    }
    let (bytes, mime) = read(svc, t, &src.url, src.mimetype.as_deref()).await?;
    if bytes.is_empty() {
        return Err(Failure::new(Reason::SourceCorrupt, "the source is empty"));
    }
    Ok((bytes, mime))
}

async fn make_and_deliver<K: Kv + ?Sized, T: Transport>(
    svc: &Service<'_, K>,
    t: &T,
    p: &JobPayload,
    r: &Rendition,
    source: Option<&std::result::Result<(Vec<u8>, String), Failure>>,
    now: u64,
) -> std::result::Result<(Output, Delivered), Failure> {
    let out = match r.fmt {
        Fmt::Zip => zip(svc, t, r).await?,
        fmt => {
            let (bytes, mime) = match source {
                Some(Ok(s)) => (&s.0, s.1.as_str()),
                Some(Err(e)) => return Err(e.clone()),
                None => return Err(Failure::generic("no source")),
            };
            match fmt {
                Fmt::Text => render::text(bytes, mime)?,
                Fmt::Xmp => render::xmp(bytes, mime, &svc.cfg)?,
                _ => {
                    let watermark = match &r.watermark {
                        Some(w) => Some(read(svc, t, &w.image, None).await?.0),
                        None => None,
                    };
                    render::image(bytes, r, watermark.as_deref(), &svc.cfg)?
                }
            }
        }
    };
    let delivered = deliver(svc, t, p, r, &out, now).await?;
    Ok((out, delivered))
}

async fn zip<K: Kv + ?Sized, T: Transport>(
    svc: &Service<'_, K>,
    t: &T,
    r: &Rendition,
) -> std::result::Result<Output, Failure> {
    let mut archive = Archive::new(r.ignore_duplicates);
    let mut total = 0u64;
    for f in &r.files {
        if r.ignore_duplicates && archive.has(&f.path) {
            continue;
        }
        let (bytes, _) = read(svc, t, &f.url, None).await?;
        total += bytes.len() as u64;
        if total > svc.cfg.max_source_bytes {
            return Err(Failure::new(
                Reason::SourceUnsupported,
                format!(
                    "the archive's files exceed {} bytes",
                    svc.cfg.max_source_bytes
                ),
            ));
        }
        archive.add(&f.path, &bytes)?;
    }
    Ok(Output {
        bytes: archive.finish()?,
        mime: "application/zip",
        width: None,
        height: None,
        encoding: None,
    })
}

async fn deliver<K: Kv + ?Sized, T: Transport>(
    svc: &Service<'_, K>,
    t: &T,
    p: &JobPayload,
    r: &Rendition,
    out: &Output,
    now: u64,
) -> std::result::Result<Delivered, Failure> {
    let size = out.bytes.len() as u64;
    if r.embed_binary_limit > 0 && size <= r.embed_binary_limit {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&out.bytes);
        return Ok(Delivered::Embedded(format!(
            "data:{};base64,{b64}",
            out.mime
        )));
    }
    let put_failed = |url: &str, e: String| {
        Failure::generic(format!("upload to {} failed: {e}", urls::redact(url)))
    };
    match &r.target {
        Some(Target::Put(url)) => {
            t.put(url, out.mime, out.bytes.clone())
                .await
                .map_err(|e| put_failed(url, e))?;
            Ok(Delivered::Target)
        }
        Some(Target::Multipart {
            urls,
            min_part_size,
            max_part_size,
        }) => {
            let parts = multipart::plan(size, urls.len(), *min_part_size, *max_part_size)?;
            for ((start, end), url) in parts.into_iter().zip(urls) {
                let body = out.bytes[start as usize..end as usize].to_vec();
                t.put(url, out.mime, body)
                    .await
                    .map_err(|e| put_failed(url, e))?;
            }
            Ok(Delivered::Target)
        }
        None => store(svc, p, r, out, now)
            .map_err(|e| Failure::generic(format!("storing the rendition failed: {}", e.message))),
    }
}

/// Keeps a rendition without a target in our store, as a catalog asset.
fn store<K: Kv + ?Sized>(
    svc: &Service<'_, K>,
    p: &JobPayload,
    r: &Rendition,
    out: &Output,
    now: u64,
) -> Result<Delivered> {
    let id = assetgate_web::secret::uuid_v4();
    let blobs = Blobs::new(svc.kv, svc.blobs);
    let d = blobs.put(&id, &out.bytes, out.mime, now)?;
    let name = r
        .original
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("rendition.{}", extension(r.fmt)));
    let mut asset = Asset::from_blob(
        &d,
        &name,
        serde_json::json!({}),
        Origin::Compute {
            client: p.client.clone(),
            request_id: p.request_id.clone(),
        },
        now,
    );
    asset.expires_at = Some(now + svc.cfg.retention_days * 86_400);
    Catalog::new(svc.kv, blobs).add(&asset)?;
    Ok(Delivered::Stored(id))
}

fn extension(fmt: Fmt) -> &'static str {
    match fmt {
        Fmt::Png => "png",
        Fmt::Jpg => "jpg",
        Fmt::Webp => "webp",
        Fmt::Gif => "gif",
        Fmt::Tif => "tif",
        Fmt::Text => "txt",
        Fmt::Xmp => "xmp",
        Fmt::Zip => "zip",
    }
}
