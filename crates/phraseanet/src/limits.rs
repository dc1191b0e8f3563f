//! Upload-service limits and retention, from Spin variables (docs/configuration.md
//! lists them with their defaults). Malformed values are errors.

use assetgate_store::settings::number;
use assetgate_store::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest single asset (default 2 GiB).
    pub max_upload_size: u64,
    /// Assets in one commit (default 100).
    pub max_files_per_commit: usize,
    /// Sum of a commit's asset sizes (default 10 GiB).
    pub max_commit_size: u64,
    /// MIME patterns accepted, e.g. `image/*` (default `*/*`: all).
    pub allowed_mime_types: Vec<String>,
    /// Lifetime of an unacknowledged asset (default 7 days).
    pub retention_secs: u64,
    /// Lifetime of an acknowledged asset (default 1 day).
    pub acked_retention_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_size: 2 << 30,
            max_files_per_commit: 100,
            max_commit_size: 10 << 30,
            allowed_mime_types: vec!["*/*".into()],
            retention_secs: 7 * 86_400,
            acked_retention_secs: 86_400,
        }
    }
}

pub const MAX_UPLOAD_SIZE: &str = "upload_max_size";
pub const MAX_FILES_PER_COMMIT: &str = "upload_max_files_per_commit";
pub const MAX_COMMIT_SIZE: &str = "upload_max_commit_size";
pub const ALLOWED_MIME_TYPES: &str = "upload_allowed_mime_types";
pub const RETENTION_DAYS: &str = "upload_retention_days";
pub const ACKED_RETENTION_DAYS: &str = "upload_acked_retention_days";

impl Limits {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let d = Limits::default();
        let mime = get(ALLOWED_MIME_TYPES)
            .map(|v| {
                v.split(',')
                    .map(|m| m.trim().to_ascii_lowercase())
                    .filter(|m| !m.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or(d.allowed_mime_types);
        for m in &mime {
            if m.split('/').count() != 2 {
                return Err(StoreError::invalid(format!(
                    "variable `{ALLOWED_MIME_TYPES}`: `{m}` is not a type/subtype pattern"
                )));
            }
        }
        let n =
            |name: &str, default: u64, min: u64| number(get(name), name, default, min, u64::MAX);
        // Bounded (a century) so that seconds and `now + retention` cannot
        // overflow.
        let days =
            |name: &str, default: u64, min: u64| number(get(name), name, default, min, 36_500);
        Ok(Limits {
            max_upload_size: n(MAX_UPLOAD_SIZE, d.max_upload_size, 1)?,
            max_files_per_commit: n(MAX_FILES_PER_COMMIT, d.max_files_per_commit as u64, 1)?
                as usize,
            max_commit_size: n(MAX_COMMIT_SIZE, d.max_commit_size, 1)?,
            allowed_mime_types: mime,
            retention_secs: days(RETENTION_DAYS, 7, 1)? * 86_400,
            acked_retention_secs: days(ACKED_RETENTION_DAYS, 1, 0)? * 86_400,
        })
    }

    /// Whether `mime` (e.g. `image/png; charset=…`) matches an allowed pattern.
    pub fn mime_allowed(&self, mime: &str) -> bool {
        let mime = assetgate_web::mime::essence(mime);
        let Some((t, s)) = mime.split_once('/') else {
            return false;
        };
        self.allowed_mime_types.iter().any(|p| {
            let (pt, ps) = p.split_once('/').unwrap_or(("", ""));
            (pt == "*" || pt == t) && (ps == "*" || ps == s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_and_mime_patterns() {
        let l = Limits::from_lookup(|n| match n {
            ALLOWED_MIME_TYPES => Some("image/*, application/pdf".into()),
            MAX_FILES_PER_COMMIT => Some("3".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(l.max_files_per_commit, 3);
        assert!(l.mime_allowed("image/png"));
        assert!(l.mime_allowed("IMAGE/JPEG; q=1"));
        assert!(l.mime_allowed("application/pdf"));
        assert!(!l.mime_allowed("application/zip"));
        assert!(!l.mime_allowed("garbage"));
        assert!(Limits::default().mime_allowed("video/mp4"));
        assert!(Limits::from_lookup(|n| (n == MAX_UPLOAD_SIZE).then(|| "x".into())).is_err());
        let huge = u64::MAX.to_string();
        assert!(Limits::from_lookup(|n| (n == RETENTION_DAYS).then(|| huge.clone())).is_err());
        assert!(
            Limits::from_lookup(|n| (n == ALLOWED_MIME_TYPES).then(|| "image".into())).is_err()
        );
    }
}
