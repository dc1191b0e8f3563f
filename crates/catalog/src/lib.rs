//! The asset catalog: one record per asset, whatever protocol brought it
//! in, with its bytes in the blob store under the same id. Previews,
//! renditions and downloads of every protocol resolve asset ids here. A
//! shared crate under the protocol crates: [`provenance`] is how one
//! protocol lends its object ids and read rules to another.

pub mod provenance;

use assetgate_store::{
    Blobs, Descriptor, ErrorCode, Index, Kv, Records, Result, StoreError, Versioned,
};
use serde::{Deserialize, Serialize};

const KIND: &str = "asset";
/// Every asset, for the retention sweep.
const ALL_INDEX: &str = "assets";
/// Where the retention sweep resumes.
const SWEEP_CURSOR: &str = "assets-sweep";

/// Where an asset came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum Origin {
    /// `POST /assets` of the upload service.
    Upload,
    /// Pulled by the ingest side from an upload service.
    Ingest {
        job: String,
        remote_id: String,
        base_url: String,
    },
    /// A ManifestFile completed through the EpiFiles chunked protocol.
    Epifiles {
        repository: String,
        manifest: String,
        manifest_file: String,
    },
    /// A rendition made by Asset Compute `/process` without a target.
    Compute { client: String, request_id: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub id: String,
    pub size: u64,
    pub mime_type: String,
    /// The name clients see (Phraseanet's `originalName`, download file
    /// names): for uploads, `assetgate_web::filename::safe_filename` of the
    /// submitted name.
    pub original_name: String,
    /// The name exactly as the client submitted it, kept (never sent) when
    /// it differed from `original_name`: CR/LF, path components, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_name: Option<String>,
    /// Free-form metadata the client sent (`formData`).
    pub form_data: serde_json::Value,
    /// Unix seconds.
    pub created_at: u64,
    pub md5: String,
    pub sha256: String,
    pub origin: Origin,
    /// The upload commit the asset belongs to, once committed.
    pub commit: Option<String>,
    pub acknowledged: bool,
    /// Unix seconds after which the asset is gone.
    pub expires_at: Option<u64>,
}

impl Asset {
    /// What identifies the content in validators (ETags): its SHA-256, or
    /// its MD5 while the SHA-256 is not computed yet ([`Catalog::ensure_sha256`]).
    pub fn content_tag(&self) -> String {
        if self.sha256.is_empty() {
            format!("md5-{}", self.md5)
        } else {
            self.sha256.clone()
        }
    }

    /// A catalog entry for a finished blob.
    pub fn from_blob(
        d: &Descriptor,
        original_name: &str,
        form_data: serde_json::Value,
        origin: Origin,
        now: u64,
    ) -> Asset {
        Asset {
            id: d.id.clone(),
            size: d.size,
            mime_type: d.content_type.clone(),
            original_name: original_name.to_string(),
            submitted_name: None,
            form_data,
            created_at: now,
            md5: d.digests.md5.clone(),
            sha256: d.digests.sha256.clone(),
            origin,
            commit: None,
            acknowledged: false,
            expires_at: None,
        }
    }

    pub fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

pub struct Catalog<'a, K: Kv + ?Sized> {
    kv: &'a K,
    blobs: Blobs<'a, K>,
}

impl<'a, K: Kv + ?Sized> Catalog<'a, K> {
    pub fn new(kv: &'a K, blobs: Blobs<'a, K>) -> Self {
        Catalog { kv, blobs }
    }

    pub fn blobs(&self) -> &Blobs<'a, K> {
        &self.blobs
    }

    fn records(&self) -> Records<'a, K> {
        Records::new(self.kv, KIND)
    }

    /// Adds an asset whose blob is complete. `Conflict` if the id exists.
    pub fn add(&self, asset: &Asset) -> Result<()> {
        self.blobs.stat(&asset.id)?;
        Index::new(self.kv, ALL_INDEX)?.add(&asset.id)?;
        self.records().create(&asset.id, asset)?;
        Ok(())
    }

    /// The asset, or `NotFound` — also when it has expired (its bytes are
    /// then reclaimed on the spot).
    pub fn get(&self, id: &str, now: u64) -> Result<Asset> {
        let v: Versioned<Asset> = self.records().get(id)?;
        if v.value.expired(now) {
            self.delete(id)?;
            return Err(StoreError::not_found(format!("asset `{id}` not found")));
        }
        Ok(v.value)
    }

    /// Read-modify-write of an asset record (retried on conflict).
    pub fn update<R>(&self, id: &str, f: impl FnMut(&mut Asset) -> Result<R>) -> Result<R> {
        self.records().modify(id, f)
    }

    /// Fills `asset.sha256` when its upload hashed MD5 only (a chunked
    /// EpiFiles upload), from its bytes, and records it so that this
    /// happens once per asset. A store error while reading is returned as
    /// is; `asset` is left as it was.
    pub fn ensure_sha256(&self, asset: &mut Asset) -> Result<()> {
        if !asset.sha256.is_empty() {
            return Ok(());
        }
        let reader = self.blobs.reader(&asset.id)?;
        let digest = assetgate_store::hash::sha256_hex(reader).map_err(StoreError::from_io)?;
        let d = digest.clone();
        self.update(&asset.id, move |a| {
            a.sha256 = d.clone();
            Ok(())
        })?;
        asset.sha256 = digest;
        Ok(())
    }

    /// Removes the record, then the bytes.
    pub fn delete(&self, id: &str) -> Result<()> {
        self.records().delete(id)?;
        self.blobs.delete(id)?;
        Index::new(self.kv, ALL_INDEX)?.remove(id)
    }

    /// Deletes expired assets, examining at most `budget` per call; returns
    /// their ids. Each call continues where the previous one stopped (the
    /// cursor is a record), so every asset is examined in turn.
    pub fn sweep_expired(&self, now: u64, budget: usize) -> Result<Vec<String>> {
        let index = Index::new(self.kv, ALL_INDEX)?;
        let mut gone = Vec::new();
        for id in index.rotate(SWEEP_CURSOR, budget)? {
            match self.records().try_get::<Asset>(&id)? {
                Some(v) if v.value.expired(now) => {
                    self.delete(&id)?;
                    gone.push(id);
                }
                Some(_) => {}
                None => index.remove(&id)?,
            }
        }
        Ok(gone)
    }

    /// Whether `id` names a catalog asset (expired or not).
    pub fn exists(&self, id: &str) -> Result<bool> {
        match self.records().try_get::<Asset>(id) {
            Ok(v) => Ok(v.is_some()),
            Err(e) if e.code == ErrorCode::Invalid => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assetgate_store::{BlobConfig, MemoryKv};

    #[test]
    fn the_sweep_resumes_and_wraps_around() {
        let kv = MemoryKv::new();
        let cat = Catalog::new(&kv, Blobs::new(&kv, BlobConfig::default()));
        for i in 0..5 {
            let id = format!("x{i}");
            let d = cat.blobs().put(&id, b"b", "a/b", 0).unwrap();
            let mut a = Asset::from_blob(&d, "n", serde_json::Value::Null, Origin::Upload, 0);
            // Only the newest expires early: a fixed window would never see it.
            a.expires_at = Some(if i == 4 { 10 } else { 1000 });
            cat.add(&a).unwrap();
        }
        let mut gone = Vec::new();
        for _ in 0..4 {
            gone.extend(cat.sweep_expired(20, 2).unwrap());
        }
        assert_eq!(gone, vec!["x4".to_string()]);
        let mut later = Vec::new();
        for _ in 0..4 {
            later.extend(cat.sweep_expired(2000, 2).unwrap());
        }
        later.sort();
        assert_eq!(later, vec!["x0", "x1", "x2", "x3"]);
    }

    #[test]
    fn an_md5_only_upload_gets_its_sha256_on_first_use_once() {
        use assetgate_store::blob::Hashes;
        let kv = MemoryKv::new();
        let cat = Catalog::new(
            &kv,
            Blobs::new(
                &kv,
                BlobConfig {
                    chunk_size: 4,
                    ..BlobConfig::default()
                },
            ),
        );
        let bytes = b"chunked upload, hashed MD5 only";
        cat.blobs().begin_with("e1", Hashes::Md5, 0).unwrap();
        for (n, c) in bytes.chunks(4).enumerate().rev() {
            cat.blobs().put_chunk("e1", n as u64, c, 0).unwrap();
        }
        let d = cat.blobs().finish("e1", "text/plain", 0).unwrap();
        let a = Asset::from_blob(&d, "e.txt", serde_json::Value::Null, Origin::Upload, 0);
        cat.add(&a).unwrap();
        let mut got = cat.get("e1", 0).unwrap();
        assert_eq!(got.sha256, "");
        assert_eq!(got.content_tag(), format!("md5-{}", d.digests.md5));
        cat.ensure_sha256(&mut got).unwrap();
        let full = assetgate_store::hash::MultiHasher::digest(bytes);
        assert_eq!(got.sha256, full.sha256);
        assert_eq!(got.content_tag(), full.sha256);
        assert_eq!(cat.get("e1", 0).unwrap().sha256, full.sha256, "recorded");
        // Bytes gone: the error says so, the record is unchanged.
        let mut ghost = a.clone();
        ghost.id = "ghost".into();
        assert_eq!(
            cat.ensure_sha256(&mut ghost).unwrap_err().code,
            ErrorCode::NotFound
        );
        assert_eq!(ghost.sha256, "");
    }

    #[test]
    fn add_get_expire_and_sweep() {
        let kv = MemoryKv::new();
        let cat = Catalog::new(&kv, Blobs::new(&kv, BlobConfig::default()));
        let d = cat.blobs().put("a1", b"bytes", "image/png", 10).unwrap();
        let mut a = Asset::from_blob(&d, "a.png", serde_json::json!({"t": 1}), Origin::Upload, 10);
        a.expires_at = Some(100);
        cat.add(&a).unwrap();
        assert_eq!(cat.add(&a).unwrap_err().code, ErrorCode::Conflict);
        assert_eq!(cat.get("a1", 50).unwrap().md5, d.digests.md5);
        cat.update("a1", |x| {
            x.acknowledged = true;
            Ok(())
        })
        .unwrap();
        assert!(cat.get("a1", 50).unwrap().acknowledged);
        // A catalog entry needs its bytes first.
        let mut b = a.clone();
        b.id = "nobytes".into();
        assert_eq!(cat.add(&b).unwrap_err().code, ErrorCode::NotFound);

        let d2 = cat.blobs().put("a2", b"more", "text/plain", 10).unwrap();
        let mut a2 = Asset::from_blob(&d2, "b.txt", serde_json::Value::Null, Origin::Upload, 10);
        a2.expires_at = Some(1000);
        cat.add(&a2).unwrap();
        assert_eq!(cat.sweep_expired(200, 100).unwrap(), vec!["a1".to_string()]);
        assert!(cat.sweep_expired(200, 100).unwrap().is_empty());
        assert_eq!(
            cat.blobs().stat("a1").unwrap_err().code,
            ErrorCode::NotFound
        );
        assert_eq!(cat.get("a2", 2000).unwrap_err().code, ErrorCode::NotFound);
        assert_eq!(
            cat.blobs().stat("a2").unwrap_err().code,
            ErrorCode::NotFound,
            "bytes reclaimed"
        );
    }
}
