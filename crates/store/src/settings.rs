//! Store limits read from Spin variables, with the defaults documented in
//! docs/configuration.md. Components pass a lookup (`spin_sdk::variables::get`); an
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

/// Parses a whole-number variable in `min..=max`; unset or blank → `default`.
/// Every component reads its numeric limits through this one function.
pub fn number(value: Option<String>, name: &str, default: u64, min: u64, max: u64) -> Result<u64> {
    let Some(v) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(default);
    };
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ if max == u64::MAX => Err(StoreError::invalid(format!(
            "variable `{name}` = `{v}` must be a whole number ≥ {min}"
        ))),
        _ => Err(StoreError::invalid(format!(
            "variable `{name}` = `{v}` must be a whole number in {min}..={max}"
        ))),
    }
}

impl StoreSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut s = StoreSettings::default();
        let num = |name: &str, default: u64, min: u64, max: u64| {
            number(get(name), name, default, min, max)
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
