//! Rendered previews are blobs named after their ETag. Each is listed with
//! its source asset so a sweep (a slice of entries after some requests) removes
//! renders whose source is gone or that are older than the cache's
//! lifetime: the cache cannot grow without bound.

use assetgate_catalog::Catalog;
use assetgate_store::{BlobConfig, Blobs, ErrorCode, Index, Kv, Records, Result};
use serde::{Deserialize, Serialize};

const INDEX: &str = "preview-cache";
const KIND: &str = "preview-cache";
const CURSOR: &str = "preview-cache-sweep";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    asset: String,
    created_at: u64,
}

/// Lists a cached render of `asset` (idempotent).
pub fn remember<K: Kv + ?Sized>(kv: &K, cache_id: &str, asset: &str, now: u64) -> Result<()> {
    // Index first: an entry the sweep cannot reach would never leave.
    Index::new(kv, INDEX)?.add(cache_id)?;
    let entry = Entry {
        asset: asset.to_string(),
        created_at: now,
    };
    match Records::new(kv, KIND).create(cache_id, &entry) {
        Err(e) if e.code == ErrorCode::Conflict => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Examines `budget` entries; removes those whose source is gone or that
/// are older than `max_age_secs`. Returns how many went.
pub fn sweep<K: Kv + ?Sized>(
    kv: &K,
    blobs: BlobConfig,
    now: u64,
    max_age_secs: u64,
    budget: usize,
) -> Result<usize> {
    let index = Index::new(kv, INDEX)?;
    let records = Records::new(kv, KIND);
    let catalog = Catalog::new(kv, Blobs::new(kv, blobs));
    let mut removed = 0;
    for id in index.rotate(CURSOR, budget)? {
        let stale = match records.try_get::<Entry>(&id)? {
            None => true,
            Some(v) => {
                now.saturating_sub(v.value.created_at) > max_age_secs
                    || match catalog.get(&v.value.asset, now) {
                        Ok(_) => false,
                        Err(e) if e.code == ErrorCode::NotFound => true,
                        Err(e) => return Err(e),
                    }
            }
        };
        if stale {
            Blobs::new(kv, blobs).delete(&id)?;
            match records.delete(&id) {
                Err(e) if e.code != ErrorCode::NotFound => return Err(e),
                _ => {}
            }
            index.remove(&id)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use assetgate_catalog::{Asset, Origin};
    use assetgate_store::MemoryKv;

    #[test]
    fn renders_leave_with_their_source_or_with_age() {
        let kv = MemoryKv::new();
        let cfg = BlobConfig::default();
        let blobs = Blobs::new(&kv, cfg);
        let catalog = Catalog::new(&kv, Blobs::new(&kv, cfg));
        for id in ["a", "b"] {
            let d = blobs.put(id, b"source", "image/jpeg", 0).unwrap();
            catalog
                .add(&Asset::from_blob(
                    &d,
                    "x.jpg",
                    serde_json::Value::Null,
                    Origin::Upload,
                    0,
                ))
                .unwrap();
        }
        for (cache, asset, at) in [
            ("preview-1", "a", 100),
            ("preview-2", "b", 100),
            ("preview-3", "a", 10),
        ] {
            blobs.put(cache, b"render", "image/jpeg", at).unwrap();
            remember(&kv, cache, asset, at).unwrap();
            remember(&kv, cache, asset, at).unwrap();
        }
        catalog.delete("b").unwrap();
        // preview-2: source gone; preview-3: older than 50 s at t=100.
        assert_eq!(sweep(&kv, cfg, 100, 50, 10).unwrap(), 2);
        assert!(blobs.stat("preview-1").is_ok());
        assert!(blobs.stat("preview-2").is_err() && blobs.stat("preview-3").is_err());
        assert_eq!(sweep(&kv, cfg, 100, 50, 10).unwrap(), 0);
    }
}
