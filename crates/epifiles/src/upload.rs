//! `POST manifestfile` (first chunk) and `PUT manifestfile/{process_id}`
//! (the others). Each chunk's MD5 is checked before anything is stored;
//! chunk `n` of the upload is chunk `n` of a blob, written set-if-absent,
//! so chunks may come in any order, twice, or from two clients at once
//! without corrupting the file. The request that stores the last missing
//! chunk completes the upload: blob, catalog asset, ManifestFile, Manifest,
//! notification — each step idempotent, so a later request can finish the
//! job if that one died.

use crate::error::{ApiError, ApiResult, done_if_conflict};
use crate::model::{self, Manifest, ManifestFile, Process, ProcessState, Ranges};
use crate::params::Params;
use crate::render;
use crate::service::{Service, can_read};
use crate::xml::Xml;
use assetgate_catalog::{Asset, Origin};
use assetgate_identity::User;
use assetgate_store::blob::Hashes;
use assetgate_store::hash::md5_hex;
use assetgate_store::{ErrorCode, Index, Kv, keys};
use assetgate_web::{mime, secret};

/// Longest `comment` and `filename` accepted.
const MAX_COMMENT: usize = 4000;
const MAX_FILENAME: usize = 255;
/// How long a completion may run before another request takes it over.
const COMPLETION_LEASE_SECS: u64 = 120;

impl<K: Kv + ?Sized> Service<'_, K> {
    /// `POST manifestfile`: validates everything, then stores chunk 0.
    pub fn start_upload(&self, user: &User, mut params: Params) -> ApiResult<Xml> {
        let filename = filename(params.require("filename")?)?;
        let total = params.number("total_chunks")?.ok_or_else(|| {
            ApiError::bad_request("missing_parameter", "parameter `total_chunks` is required")
        })?;
        if total == 0 {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                "`total_chunks` must be at least 1",
            ));
        }
        let hash = required_md5(&params)?;
        if params.number("chunk_index")?.is_some_and(|i| i != 0) {
            return Err(ApiError::bad_request(
                "chunk_index_out_of_range",
                "the first call carries chunk 0; send the others with PUT manifestfile/{process_id}",
            ));
        }
        let file_hash = params.md5("file_hash")?;
        let comment = params.get("comment").unwrap_or("").to_string();
        if comment.chars().count() > MAX_COMMENT {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("`comment` is longer than {MAX_COMMENT} characters"),
            ));
        }
        let declared_type = params.get("content_type").map(str::to_string);
        if declared_type
            .as_ref()
            .is_some_and(|t| !t.contains('/') || t.len() > 255)
        {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                "`content_type` must be a MIME type such as application/xml",
            ));
        }
        let repository = self.upload_repository(user, params.get("id_repository"))?;
        let existing = params
            .get("id_manifest")
            .map(|id| self.manifest_to_extend(user, id, &repository))
            .transpose()?;

        let content = params.take_content()?;
        self.check_chunk_size(&content, total)?;
        check_md5(&content, &hash)?;
        if total == 1 && file_hash.as_ref().is_some_and(|f| *f != hash) {
            return Err(ApiError::bad_request(
                "file_hash_mismatch",
                "single-chunk file: `file_hash` differs from the chunk's `hash`",
            ));
        }

        let head = &content[..content.len().min(512)];
        let (manifest, new_manifest) = match existing {
            Some(m) => (m.id, false),
            None => (
                keys::next_in_sequence(self.kv, model::MANIFEST)?.to_string(),
                true,
            ),
        };
        let p = Process {
            id: secret::random_hex(16),
            user: user.name.clone(),
            repository,
            filename: filename.clone(),
            comment,
            content_type: mime::resolve(declared_type.as_deref(), head, &filename),
            total_chunks: total,
            chunk_size: content.len() as u64,
            piece_size: Some(model::piece_size_for(
                content.len() as u64,
                self.cfg.store.blobs.chunk_size,
            )),
            file_hash,
            manifest,
            new_manifest,
            manifest_file: keys::next_in_sequence(self.kv, model::MANIFEST_FILE)?.to_string(),
            asset: secret::uuid_v4(),
            started_at: self.now,
            touched_at: self.now,
            received: Ranges::default(),
            last: None,
            state: ProcessState::Open,
        };
        // Index first: a process the sweep cannot find would never expire.
        Index::new(self.kv, model::PROCESSES_INDEX)?.add(&p.id)?;
        model::processes(self.kv).create(&p.id, &p)?;
        // MD5 only on the way in: chunks come in parallel, and the frontier
        // that hashes them in order is the upload's sequential part.
        self.blobs(p.piece_size())
            .begin_with(&p.asset, Hashes::Md5, self.now)?;
        self.store_chunk(p, 0, &content, &hash, None)
    }

    /// `PUT manifestfile/{process_id}`.
    pub fn continue_upload(
        &self,
        user: &User,
        process_id: &str,
        mut params: Params,
    ) -> ApiResult<Xml> {
        let p = self.process(process_id, user)?;
        let hash = required_md5(&params)?;
        let index = params.number("chunk_index")?;
        // `file_hash` may come with any chunk (a client that hashes the file
        // while its chunks travel sends it last); the first one given holds.
        let file_hash = params.md5("file_hash")?;
        if let Some(f) = &file_hash
            && p.file_hash.as_ref().is_some_and(|known| known != f)
        {
            return Err(ApiError::bad_request(
                "file_hash_mismatch",
                "`file_hash` differs from the one sent earlier",
            ));
        }
        let content = params.take_content()?;
        if content.is_empty() {
            return Err(ApiError::bad_request("empty_chunk", "`content` is empty"));
        }
        check_md5(&content, &hash)?;
        match &p.state {
            ProcessState::Done => return self.after_completion(&p, index, &content),
            ProcessState::Failed { reason } => {
                return Err(ApiError::conflict(
                    "upload_failed",
                    format!("this upload failed ({reason}); start again"),
                ));
            }
            _ => {}
        }
        let index = match index {
            Some(i) if i >= p.total_chunks => {
                return Err(ApiError::bad_request(
                    "chunk_index_out_of_range",
                    format!(
                        "chunk_index {i} is out of range: this file has {} chunks (0..{})",
                        p.total_chunks,
                        p.total_chunks - 1
                    ),
                ));
            }
            Some(i) => i,
            None => {
                let next = p.received.first_missing();
                // No index: a chunk identical to the one just stored is a
                // resend whose answer was lost, not a new chunk. (A file
                // whose consecutive chunks are equal needs `chunk_index`.)
                if p.last
                    .as_ref()
                    .is_some_and(|(i, h)| i + 1 == next && *h == hash)
                {
                    let mut x = Xml::new();
                    render::progress(&mut x, &p, next - 1);
                    return Ok(x);
                }
                if next >= p.total_chunks {
                    return Err(ApiError::conflict(
                        "upload_complete",
                        "every chunk of this file was already received",
                    ));
                }
                next
            }
        };
        if index + 1 < p.total_chunks && content.len() as u64 != p.chunk_size
            || content.len() as u64 > p.chunk_size
        {
            return Err(ApiError::bad_request(
                "chunk_size_mismatch",
                format!(
                    "chunk {index} has {} bytes; every chunk but the last has {} bytes (the size of chunk 0), the last at most that",
                    content.len(),
                    p.chunk_size
                ),
            ));
        }
        self.store_chunk(p, index, &content, &hash, file_hash)
    }

    fn store_chunk(
        &self,
        p: Process,
        index: u64,
        content: &[u8],
        hash: &str,
        file_hash: Option<String>,
    ) -> ApiResult<Xml> {
        let blobs = self.blobs(p.piece_size());
        let first = index * p.pieces_per_chunk();
        let stored = content
            .chunks(p.piece_size() as usize)
            .zip(first..)
            .try_for_each(|(piece, n)| blobs.put_chunk(&p.asset, n, piece, self.now).map(|_| ()));
        match stored {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::Conflict => {
                // Completed by a concurrent request since `p` was read: a
                // resend gets the file, anything else `upload_complete`.
                let now = model::processes(self.kv).get::<Process>(&p.id)?.value;
                if now.state == ProcessState::Done {
                    return self.after_completion(&now, Some(index), content);
                }
                return Err(ApiError::conflict(
                    "chunk_conflict",
                    format!(
                        "chunk {index} was already received with different content; nothing was changed"
                    ),
                ));
            }
            Err(e) if e.code == ErrorCode::NotFound => {
                return Err(ApiError::not_found(
                    "upload_expired",
                    "this upload's chunks were reclaimed; start again",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let now = self.now;
        let (p, complete) = model::processes(self.kv).modify(&p.id, |p: &mut Process| {
            p.received.insert(index);
            p.last = Some((index, hash.to_string()));
            if p.file_hash.is_none() {
                p.file_hash.clone_from(&file_hash);
            }
            p.touched_at = now;
            let all = p.received.count() == p.total_chunks;
            let take = match p.state {
                ProcessState::Open => all,
                ProcessState::Completing { since } => {
                    all && now.saturating_sub(since) > COMPLETION_LEASE_SECS
                }
                _ => false,
            };
            if take {
                p.state = ProcessState::Completing { since: now };
            }
            Ok((p.clone(), take))
        })?;
        if complete {
            return self.complete(p);
        }
        let mut x = Xml::new();
        if p.state == ProcessState::Done {
            // Completed by a concurrent request meanwhile.
            let f = self.manifest_file(&p.manifest_file)?;
            render::manifest_file(&mut x, &f, f.download_chunks(self.cfg.download_chunk_size));
        } else {
            render::progress(&mut x, &p, index);
        }
        Ok(x)
    }

    /// The last chunk is in: make the file an asset, a ManifestFile and part
    /// of its Manifest.
    fn complete(&self, p: Process) -> ApiResult<Xml> {
        let blobs = self.blobs(p.piece_size());
        let d = blobs.finish(&p.asset, &p.content_type, self.now)?;
        if let Some(expected) = p.file_hash.as_ref().filter(|f| **f != d.digests.md5) {
            blobs.delete(&p.asset)?;
            let reason = format!(
                "the chunks make a file with MD5 {} but `file_hash` is {expected}",
                d.digests.md5
            );
            let r = reason.clone();
            model::processes(self.kv).modify(&p.id, move |p: &mut Process| {
                p.state = ProcessState::Failed { reason: r.clone() };
                Ok(())
            })?;
            return Err(ApiError::bad_request(
                "file_hash_mismatch",
                format!("{reason}; the upload is discarded, start again"),
            ));
        }
        let purge_at = self.now + self.cfg.retention_days * 86_400;
        let mut asset = Asset::from_blob(
            &d,
            &p.filename,
            serde_json::json!({ "comment": p.comment, "repository": p.repository }),
            Origin::Epifiles {
                repository: p.repository.clone(),
                manifest: p.manifest.clone(),
                manifest_file: p.manifest_file.clone(),
            },
            self.now,
        );
        asset.expires_at = Some(purge_at);
        done_if_conflict(self.catalog().add(&asset))?;
        let file = ManifestFile {
            id: p.manifest_file.clone(),
            manifest: p.manifest.clone(),
            repository: p.repository.clone(),
            uploader: p.user.clone(),
            asset: p.asset.clone(),
            filename: p.filename.clone(),
            content_type: d.content_type.clone(),
            size: d.size,
            md5: d.digests.md5.clone(),
            created_at: self.now,
            purge_at,
            downloaded_by_mg: false,
        };
        done_if_conflict(
            model::manifest_files(self.kv)
                .create(&file.id, &file)
                .map(|_| ()),
        )?;
        let file = self.manifest_file(&file.id)?;
        let manifest = self.attach(&p, &file.id)?;
        if !manifest.archived {
            model::open_manifests(self.kv, &manifest.repository)?.add(&manifest.id)?;
        }
        let subject = format!("New file deposited: {}", p.filename);
        let message = format!(
            "{} deposited {} ({} bytes) in repository {} (manifest {}).{}",
            p.user,
            p.filename,
            file.size,
            p.repository,
            manifest.id,
            if p.comment.is_empty() {
                String::new()
            } else {
                format!("\n\n{}", p.comment)
            }
        );
        self.notify(
            format!("deposit-{}", file.id),
            "deposit",
            &manifest,
            Some(&file.id),
            subject,
            message,
            &p.user,
            |r| r.manager || r.downloader,
        )?;
        model::processes(self.kv).modify(&p.id, |p: &mut Process| {
            p.state = ProcessState::Done;
            Ok(())
        })?;
        let mut x = Xml::new();
        render::manifest_file(
            &mut x,
            &file,
            file.download_chunks(self.cfg.download_chunk_size),
        );
        Ok(x)
    }

    /// Adds the file to its manifest, creating the manifest for a new
    /// deposit; a new file makes the manifest partially downloaded again.
    fn attach(&self, p: &Process, file: &str) -> ApiResult<Manifest> {
        let records = model::manifests(self.kv);
        if p.new_manifest {
            let m = Manifest {
                id: p.manifest.clone(),
                repository: p.repository.clone(),
                owner: p.user.clone(),
                comment: p.comment.clone(),
                created_at: self.now,
                files: vec![file.to_string()],
                status: 1,
                archived: false,
                archived_at: None,
                archived_by: None,
            };
            done_if_conflict(records.create(&m.id, &m).map(|_| ()))?;
        }
        Ok(records.modify(&p.manifest, |m: &mut Manifest| {
            if !m.files.iter().any(|f| f == file) {
                m.files.push(file.to_string());
                m.status = 1;
            }
            Ok(m.clone())
        })?)
    }

    /// A chunk after completion: the same chunk again is a harmless resend
    /// (its answer was lost) and gets the completed file; anything else is
    /// refused.
    fn after_completion(&self, p: &Process, index: Option<u64>, content: &[u8]) -> ApiResult<Xml> {
        let blobs = self.blobs(p.piece_size());
        let same = match (index, blobs.stat(&p.asset)) {
            (Some(i), Ok(d)) if i < p.total_chunks => {
                let start = i * p.chunk_size;
                let end = (start + p.chunk_size).min(d.size);
                content.len() as u64 == end - start
                    && blobs
                        .read_range(&p.asset, start, end)
                        .and_then(|r| r.collect::<Result<Vec<_>, _>>())
                        .is_ok_and(|parts| parts.concat() == content)
            }
            _ => false,
        };
        if !same {
            return Err(ApiError::conflict(
                "upload_complete",
                format!(
                    "this upload is complete (manifest file {}); it takes no more chunks",
                    p.manifest_file
                ),
            ));
        }
        let f = self.manifest_file(&p.manifest_file)?;
        let mut x = Xml::new();
        render::manifest_file(&mut x, &f, f.download_chunks(self.cfg.download_chunk_size));
        Ok(x)
    }

    fn check_chunk_size(&self, content: &[u8], total: u64) -> ApiResult<()> {
        let len = content.len() as u64;
        if len == 0 {
            return Err(ApiError::bad_request("empty_chunk", "`content` is empty"));
        }
        if len > self.cfg.max_chunk_size {
            return Err(ApiError::too_large(
                "chunk_too_large",
                format!(
                    "a chunk holds at most {} bytes; this one has {len}",
                    self.cfg.max_chunk_size
                ),
            ));
        }
        let smallest = (total - 1).checked_mul(len).and_then(|n| n.checked_add(1));
        if smallest.is_none_or(|n| n > self.cfg.max_file_size) && total > 1
            || total == 1 && len > self.cfg.max_file_size
        {
            return Err(ApiError::too_large(
                "file_too_large",
                format!(
                    "{total} chunks of {len} bytes exceed the {}-byte file limit",
                    self.cfg.max_file_size
                ),
            ));
        }
        Ok(())
    }

    /// `id_repository`, or the one repository the user uploads to.
    fn upload_repository(&self, user: &User, requested: Option<&str>) -> ApiResult<String> {
        if let Some(r) = requested {
            return if user.roles(r).uploader {
                Ok(r.to_string())
            } else {
                Err(ApiError::forbidden(format!(
                    "{} may not deposit in repository {r}",
                    user.name
                )))
            };
        }
        match user.upload_repositories().as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(ApiError::forbidden(format!(
                "{} may not deposit in any repository",
                user.name
            ))),
            many => Err(ApiError::bad_request(
                "ambiguous_repository",
                format!(
                    "{} deposits in several repositories ({}); say which with `id_repository`",
                    user.name,
                    many.join(", ")
                ),
            )),
        }
    }

    /// `id_manifest` (assetgate's extension): add the file to an open
    /// manifest of the same repository that the user deposited.
    fn manifest_to_extend(&self, user: &User, id: &str, repository: &str) -> ApiResult<Manifest> {
        let m = self.manifest(id)?;
        if !can_read(user, &m) {
            return Err(ApiError::not_found(
                "not_found",
                format!("no manifest {id}"),
            ));
        }
        if m.owner != user.name || m.repository != repository {
            return Err(ApiError::forbidden(format!(
                "manifest {id} is not yours in repository {repository}"
            )));
        }
        if m.archived {
            return Err(ApiError::conflict(
                "manifest_archived",
                format!("manifest {id} is archived"),
            ));
        }
        Ok(m)
    }
}

fn required_md5(params: &Params) -> ApiResult<String> {
    params.md5("hash")?.ok_or_else(|| {
        ApiError::bad_request(
            "missing_parameter",
            "parameter `hash` (MD5 of the chunk) is required",
        )
    })
}

fn check_md5(content: &[u8], expected: &str) -> ApiResult<()> {
    let actual = md5_hex(content);
    if actual == expected {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "chunk_hash_mismatch",
            format!(
                "the chunk's MD5 is {actual}, not {expected}; nothing was stored, send it again"
            ),
        ))
    }
}

/// The name as the client's file system had it, without any directory.
fn filename(raw: &str) -> ApiResult<String> {
    let name = raw.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if name.is_empty() || name.chars().count() > MAX_FILENAME || name.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("`filename` must be 1-{MAX_FILENAME} characters without control characters"),
        ));
    }
    Ok(name.to_string())
}
