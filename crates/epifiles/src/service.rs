//! The service state a request works with, and what every endpoint shares:
//! loading records with the right errors, who may see what, the sweep.

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::model::{self, Manifest, ManifestFile, Process, ProcessState};
use crate::outbox::{Notification, Outbox, Recipient};
use assetgate_catalog::Catalog;
use assetgate_identity::{Roles, User};
use assetgate_store::{BlobConfig, Blobs, Index, Kv, Result};
use assetgate_web::time;

/// Processes examined per sweep call.
const SWEEP_BUDGET: usize = 10;

pub struct Service<'a, K: Kv + ?Sized> {
    pub kv: &'a K,
    pub cfg: &'a Config,
    pub now: u64,
    /// Whether notifications are also queued for a webhook.
    pub webhook: bool,
}

impl<'a, K: Kv + ?Sized> Service<'a, K> {
    /// Blobs written in pieces of `chunk_size` (see
    /// [`crate::model::piece_size_for`]): upload chunk `n` is blob chunks
    /// `n × pieces … (n + 1) × pieces − 1`, so chunks can come in any order.
    pub fn blobs(&self, chunk_size: u64) -> Blobs<'a, K> {
        Blobs::new(
            self.kv,
            BlobConfig {
                chunk_size,
                max_blob_size: self.cfg.max_file_size,
            },
        )
    }

    pub fn catalog(&self) -> Catalog<'a, K> {
        Catalog::new(self.kv, Blobs::new(self.kv, self.cfg.store.blobs))
    }

    pub fn outbox(&self) -> Outbox<'a, K> {
        Outbox::new(self.kv)
    }

    pub fn manifest(&self, id: &str) -> ApiResult<Manifest> {
        valid_number("manifest", id)?;
        Ok(model::manifests(self.kv)
            .try_get::<Manifest>(id)?
            .ok_or_else(|| ApiError::not_found("not_found", format!("no manifest {id}")))?
            .value)
    }

    pub fn manifest_file(&self, id: &str) -> ApiResult<ManifestFile> {
        valid_number("manifest file", id)?;
        Ok(model::manifest_files(self.kv)
            .try_get::<ManifestFile>(id)?
            .ok_or_else(|| ApiError::not_found("not_found", format!("no manifest file {id}")))?
            .value)
    }

    /// The process, if it is `user`'s and has not expired (an expired one
    /// is reclaimed on the spot).
    pub fn process(&self, id: &str, user: &User) -> ApiResult<Process> {
        let unknown =
            || ApiError::not_found("unknown_process", format!("no upload process `{id}`"));
        if assetgate_store::keys::check_id("process", id).is_err() {
            return Err(unknown());
        }
        let p: Process = model::processes(self.kv)
            .try_get(id)?
            .ok_or_else(unknown)?
            .value;
        if p.user != user.name {
            return Err(ApiError::forbidden(format!(
                "upload process `{id}` belongs to another user"
            )));
        }
        if self.expired(&p) {
            self.discard(&p)?;
            return Err(ApiError::not_found(
                "upload_expired",
                format!(
                    "upload process `{id}` expired after {} s without a chunk; start again",
                    self.cfg.upload_expiry_secs
                ),
            ));
        }
        Ok(p)
    }

    fn expired(&self, p: &Process) -> bool {
        self.now.saturating_sub(p.touched_at) > self.cfg.upload_expiry_secs
    }

    /// Removes a process and, unless it completed, its chunks.
    pub fn discard(&self, p: &Process) -> Result<()> {
        if p.state != ProcessState::Done {
            self.blobs(p.piece_size()).delete(&p.asset)?;
        }
        model::processes(self.kv).delete(&p.id)?;
        Index::new(self.kv, model::PROCESSES_INDEX)?.remove(&p.id)
    }

    /// Removes expired processes, a few per call (after each response).
    pub fn sweep(&self) -> Result<usize> {
        let index = Index::new(self.kv, model::PROCESSES_INDEX)?;
        let mut removed = 0;
        for id in index.rotate("epifiles-process-sweep", SWEEP_BUDGET)? {
            match model::processes(self.kv).try_get::<Process>(&id)? {
                Some(v) if self.expired(&v.value) => {
                    self.discard(&v.value)?;
                    removed += 1;
                }
                Some(_) => {}
                None => index.remove(&id)?,
            }
        }
        self.catalog().sweep_expired(self.now, SWEEP_BUDGET)?;
        Ok(removed)
    }

    /// Notifies the repository's members picked by `pick` plus `also`.
    #[allow(clippy::too_many_arguments)]
    pub fn notify(
        &self,
        id: String,
        event: &str,
        manifest: &Manifest,
        manifest_file: Option<&str>,
        subject: String,
        message: String,
        also: &str,
        pick: impl Fn(Roles) -> bool,
    ) -> Result<()> {
        let mut recipients: Vec<Recipient> = Vec::new();
        let mut add = |name: &str, role: &str| {
            if !recipients.iter().any(|r| r.user == name) {
                recipients.push(Recipient {
                    user: name.to_string(),
                    email: self.cfg.users.get(name).and_then(|u| u.email.clone()),
                    role: role.to_string(),
                });
            }
        };
        add(also, "owner");
        for u in self.cfg.users.members(&manifest.repository, &pick) {
            let r = u.roles(&manifest.repository);
            add(
                &u.name,
                if r.manager {
                    "manager"
                } else if r.downloader {
                    "downloader"
                } else {
                    "uploader"
                },
            );
        }
        let n = Notification {
            id,
            event: event.to_string(),
            repository: manifest.repository.clone(),
            manifest: manifest.id.clone(),
            manifest_file: manifest_file.map(String::from),
            subject,
            message,
            recipients,
            created_at: time::rfc3339(self.now),
        };
        self.outbox().post(&n, self.webhook, self.now)
    }
}

/// Who sees a manifest: its owner, and the repository's managers and
/// downloaders.
pub fn can_read(user: &User, m: &Manifest) -> bool {
    assetgate_identity::access::reads(user, &m.owner, &m.repository)
}

/// Record ids of this protocol are decimal numbers.
fn valid_number(what: &str, id: &str) -> ApiResult<()> {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "not_found",
            format!("no {what} `{id}`"),
        ))
    }
}
