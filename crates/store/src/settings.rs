//! Store limits read from Spin variables, with the defaults documented in
//! README.md. Components pass a lookup (`spin_sdk::variables::get`); an
//! unset variable takes its default, a malformed one is an error (never
//! silently ignored).

use crate::blob::BlobConfig;
use crate::error::{Result, StoreError};
use crate::queue::QueueConfig;

/// Spin variable names (declare them in `spin.toml`).
pub const BLOB_CHUNK_SIZE: &str = "blob_chunk_size";
pub const BLOB_MAX_SIZE: &str = "blob_max_size";
pub const UPLOAD_RECLAIM_AFTER_SECS: &str = "upload_reclaim_after_secs";

#[derive(Debug, Clone, Copy)]
pub struct StoreSettings {
    pub blobs: BlobConfig,
    /// Unfinished uploads older than this are reclaimed (default 24 h).
    pub upload_reclaim_after_secs: u64,
    pub queue: QueueConfig,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            blobs: BlobConfig::default(),
            upload_reclaim_after_secs: 24 * 3600,
            queue: QueueConfig::default(),
        }
    }
}

impl StoreSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut s = StoreSettings::default();
        let num = |name: &str, default: u64, min: u64, max: u64| -> Result<u64> {
            match get(name) {
                None => Ok(default),
                Some(v) if v.trim().is_empty() => Ok(default),
                Some(v) => {
                    let n: u64 = v.trim().parse().map_err(|_| {
                        StoreError::invalid(format!("variable `{name}` = `{v}` is not a number"))
                    })?;
                    if !(min..=max).contains(&n) {
                        return Err(StoreError::invalid(format!(
                            "variable `{name}` = {n} is outside {min}..={max}"
                        )));
                    }
                    Ok(n)
                }
            }
        };
        s.blobs.chunk_size = num(BLOB_CHUNK_SIZE, s.blobs.chunk_size, 1024, 64 << 20)?;
        s.blobs.max_blob_size = num(BLOB_MAX_SIZE, s.blobs.max_blob_size, 1, 1 << 50)?;
        s.upload_reclaim_after_secs = num(
            UPLOAD_RECLAIM_AFTER_SECS,
            s.upload_reclaim_after_secs,
            60,
            365 * 24 * 3600,
        )?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_errors() {
        let s = StoreSettings::from_lookup(|_| None).unwrap();
        assert_eq!(s.blobs.chunk_size, 1 << 20);
        let s =
            StoreSettings::from_lookup(|n| (n == BLOB_CHUNK_SIZE).then(|| "65536".into())).unwrap();
        assert_eq!(s.blobs.chunk_size, 65536);
        assert!(
            StoreSettings::from_lookup(|n| (n == BLOB_CHUNK_SIZE).then(|| "big".into())).is_err()
        );
        assert!(
            StoreSettings::from_lookup(|n| (n == BLOB_CHUNK_SIZE).then(|| "10".into())).is_err()
        );
    }
}
