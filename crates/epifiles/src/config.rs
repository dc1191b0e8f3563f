//! Limits and settings of the EpiFiles service, from Spin variables; every
//! default is in docs/configuration.md.

use assetgate_identity::Directory;
use assetgate_store::settings::number;
use assetgate_store::{StoreError, StoreSettings};

#[derive(Debug, Clone)]
pub struct Config {
    pub users: Directory,
    /// Bytes per chunk in downloads (`epifiles_download_chunk_size`, 1 MiB).
    pub download_chunk_size: u64,
    /// Largest upload chunk, decoded (`epifiles_max_chunk_size`, 8 MiB).
    pub max_chunk_size: u64,
    /// Largest file (`epifiles_max_file_size`, 8 GiB, at most `blob_max_size`).
    pub max_file_size: u64,
    /// Days from deposit to `purge_date` (`epifiles_retention_days`, 30).
    pub retention_days: u64,
    /// Idle time after which an unfinished upload is gone
    /// (`upload_reclaim_after_secs`, shared with the upload service, 1 day).
    pub upload_expiry_secs: u64,
    /// Bearer token of `GET /epifiles/admin/outbox` (`epifiles_admin_token`);
    /// unset → that endpoint refuses everyone.
    pub admin_token: Option<String>,
    pub store: StoreSettings,
}

impl Config {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, StoreError> {
        let store = StoreSettings::from_lookup(&get)?;
        let num = |name: &str, default: u64, min: u64, max: u64| {
            number(get(name), name, default, min, max)
        };
        let max_chunk_size = num("epifiles_max_chunk_size", 8 << 20, 1024, 64 << 20)?;
        Ok(Config {
            users: Directory::parse(&get("epifiles_users").unwrap_or_default())
                .map_err(StoreError::invalid)?,
            download_chunk_size: num("epifiles_download_chunk_size", 1 << 20, 1024, 64 << 20)?,
            max_chunk_size,
            max_file_size: num("epifiles_max_file_size", 8 << 30, 1, 1 << 50)?
                .min(store.blobs.max_blob_size),
            retention_days: num("epifiles_retention_days", 30, 1, 36_500)?,
            upload_expiry_secs: store.upload_reclaim_after_secs,
            admin_token: get("epifiles_admin_token").filter(|t| !t.trim().is_empty()),
            store,
        })
    }

    /// Largest request body: a base64 chunk of the largest size plus the
    /// other form fields.
    pub fn max_request_body(&self) -> usize {
        (self.max_chunk_size.div_ceil(3) * 4 * 3 + 64 * 1024) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.download_chunk_size, 1 << 20);
        assert_eq!(c.max_chunk_size, 8 << 20);
        assert_eq!(c.retention_days, 30);
        assert!(c.max_request_body() > (8 << 20) * 4 / 3);
        let bad = |k: &'static str, v: &'static str| {
            Config::from_lookup(move |n| (n == k).then(|| v.to_string())).is_err()
        };
        assert!(bad("epifiles_max_chunk_size", "10"));
        assert!(bad("epifiles_retention_days", "0"));
        assert!(bad("epifiles_users", "not json"));
        let c = Config::from_lookup(|n| (n == "blob_max_size").then(|| "1000".into())).unwrap();
        assert_eq!(
            c.max_file_size, 1000,
            "never above what the blob store takes"
        );
    }
}
