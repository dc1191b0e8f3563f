//! `GET manifestfile/{id}?chunk_index=N` (one chunk of a stored file, in
//! base64 with its MD5) and `GET manifestfile` (the files the user sees).

use crate::chunk_encode::ChunkStream;
use crate::error::{ApiError, ApiResult};
use crate::model::{self, Manifest, ManifestFile};
use crate::render;
use crate::service::{Service, can_read};
use crate::xml::Xml;
use assetgate_identity::User;
use assetgate_store::{ErrorCode, Kv};

impl<K: Kv + ?Sized> Service<'_, K> {
    pub fn download(
        &self,
        user: &User,
        id: &str,
        chunk_index: Option<u64>,
    ) -> ApiResult<ChunkStream> {
        let f = self.manifest_file(id)?;
        let m = self.manifest(&f.manifest)?;
        if !can_read(user, &m) {
            return Err(ApiError::forbidden(format!(
                "{} may not download manifest file {id}",
                user.name
            )));
        }
        let purged = || {
            ApiError::not_found(
                "purged",
                format!(
                    "manifest file {id} was purged on {}",
                    render::date(f.purge_at)
                ),
            )
        };
        if self.now >= f.purge_at {
            // The catalog reclaims the bytes of an expired asset on access.
            let _ = self.catalog().get(&f.asset, self.now);
            return Err(purged());
        }
        match self.catalog().get(&f.asset, self.now) {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::NotFound => return Err(purged()),
            Err(e) => return Err(e.into()),
        }
        let cs = self.cfg.download_chunk_size;
        let total = f.download_chunks(self.cfg.download_chunk_size);
        let n = chunk_index.unwrap_or(0);
        if n >= total {
            return Err(ApiError::bad_request(
                "chunk_index_out_of_range",
                format!(
                    "chunk_index {n} is out of range: this file has {total} chunks of {cs} bytes (0..{})",
                    total - 1
                ),
            ));
        }
        let start = n * cs;
        let end = (start + cs).min(f.size);
        // Read whole before the answer is written: a store failure is an
        // error answer, and a manager's last chunk is marked only once read.
        let pieces = self
            .blobs(cs)
            .read_range(&f.asset, start, end)?
            .collect::<Result<Vec<_>, _>>()?;
        let f = if n + 1 == total && user.roles(&f.repository).manager && !f.downloaded_by_mg {
            self.mark_downloaded(&f)?
        } else {
            f
        };
        Ok(render::download_chunk(&f, n, total, pieces))
    }

    /// A manager fetched the last chunk: the file counts as downloaded, and
    /// the manifest is complete (2) once all its files are.
    fn mark_downloaded(&self, f: &ManifestFile) -> ApiResult<ManifestFile> {
        let f = model::manifest_files(self.kv).modify(&f.id, |f: &mut ManifestFile| {
            f.downloaded_by_mg = true;
            Ok(f.clone())
        })?;
        let files = model::manifest_files(self.kv);
        model::manifests(self.kv).modify(&f.manifest, |m: &mut Manifest| {
            let mut all = true;
            for id in &m.files {
                all &= files
                    .try_get::<ManifestFile>(id)?
                    .is_none_or(|v| v.value.downloaded_by_mg);
            }
            m.status = if all { 2 } else { 1 };
            Ok(())
        })?;
        Ok(f)
    }

    /// Files of the open manifests the user sees (optionally of one
    /// manifest), without content; purged files are left out.
    pub fn list_files(&self, user: &User, manifest: Option<&str>) -> ApiResult<Xml> {
        let manifests = match manifest {
            Some(id) => {
                let m = self.manifest(id)?;
                if !can_read(user, &m) {
                    return Err(ApiError::forbidden(format!(
                        "{} may not see manifest {id}",
                        user.name
                    )));
                }
                vec![m]
            }
            None => self.visible_manifests(user)?,
        };
        let mut x = Xml::new();
        for m in manifests {
            for id in &m.files {
                let f = self.manifest_file(id)?;
                if self.now < f.purge_at {
                    render::manifest_file(
                        &mut x,
                        &f,
                        f.download_chunks(self.cfg.download_chunk_size),
                    );
                }
            }
        }
        Ok(x)
    }
}
