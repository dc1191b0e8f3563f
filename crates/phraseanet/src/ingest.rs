//! The ingest side (the DAM's `POST /api/v1/upload/enqueue`): validating a
//! notification, deriving an idempotent job id, and the job record that
//! tracks each asset from pending to stored or failed.

use assetgate_store::{Result, StoreError};
use assetgate_web::secret;
use serde::{Deserialize, Serialize};

/// The reference's enqueue body.
#[derive(Debug, Clone, Deserialize)]
pub struct EnqueueRequest {
    pub assets: Vec<String>,
    pub publisher: String,
    pub token: String,
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
}

impl EnqueueRequest {
    /// A commit of an upload service's pull listing (`hydra:member`) as
    /// the notification it stands for; what is missing or mistyped comes
    /// out empty, for validation to refuse.
    pub fn from_listed_commit(m: &serde_json::Value, base_url: &str) -> EnqueueRequest {
        let text = |k: &str| m[k].as_str().unwrap_or("").to_string();
        EnqueueRequest {
            assets: m["assets"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            publisher: text("publisher"),
            token: text("token"),
            commit_id: m["id"].as_str().map(String::from),
            base_url: Some(base_url.to_string()),
        }
    }
}

/// Upload-service base URLs we may call (and send tokens to): each entry
/// is `scheme://host[:port][/path]`; a base URL is allowed when it equals
/// an entry or extends it by a path.
#[derive(Debug, Clone, Default)]
pub struct AllowedBaseUrls(Vec<String>);

impl AllowedBaseUrls {
    /// Comma-separated entries (the `ingest_allowed_base_urls` variable).
    pub fn parse(list: &str) -> Result<Self> {
        let mut out = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            out.push(normalize_base_url(entry)?);
        }
        Ok(AllowedBaseUrls(out))
    }

    pub fn allows(&self, base_url: &str) -> bool {
        self.0.iter().any(|a| {
            base_url == a
                || base_url
                    .strip_prefix(a.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// `scheme://host[:port][/path]` with http(s) only, no credentials, query
/// or fragment; lower-cased scheme and host; no trailing slash.
pub fn normalize_base_url(url: &str) -> Result<String> {
    let bad = |why: &str| StoreError::invalid(format!("base_url `{url}`: {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not an absolute URL"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad("only http and https are allowed"));
    }
    if rest.contains(['?', '#', '@', '\\', ' ']) || rest.chars().any(|c| c.is_control()) {
        return Err(bad("must not contain credentials, a query or a fragment"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(bad("has no host"));
    }
    if path.split('/').any(is_dot_segment) {
        return Err(bad("must not contain dot segments"));
    }
    Ok(format!(
        "{scheme}://{}{}",
        authority.to_ascii_lowercase(),
        path.trim_end_matches('/')
    ))
}

/// `.` or `..`, also percent-encoded: an HTTP client reads `%2e` as a dot
/// (WHATWG URL), so `/api/%2e%2e/x` would leave an allowed `/api`.
fn is_dot_segment(seg: &str) -> bool {
    let seg = seg.to_ascii_lowercase().replace("%2e", ".");
    seg == "." || seg == ".."
}

fn remote_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id != "."
        && id != ".."
}

/// A job is a commit's assets, as one upload service names them with the
/// commit's token (both are the commit's alone), whatever else the
/// notification says: a push with or without `commit_id`, a replay and a
/// pull of the same commit are one job, and nothing is ingested twice. A
/// notification with another token is another job (a sender that corrects a
/// wrong token is not stuck with the failed one).
pub fn job_id(base_url: &str, token: &str, assets: &[String]) -> String {
    let mut ids: Vec<&str> = assets.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut parts = vec![base_url, token];
    parts.extend(ids);
    secret::digest_parts(&parts)[..32].to_string()
}

/// A validated notification.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    pub assets: Vec<String>,
    pub publisher: String,
    pub token: String,
    pub commit_id: Option<String>,
    pub base_url: String,
    /// Deterministic: the same notification gives the same job.
    pub job_id: String,
}

impl EnqueueRequest {
    pub fn validate(
        self,
        default_base_url: Option<&str>,
        allowed: &AllowedBaseUrls,
        max_assets: usize,
    ) -> Result<ValidRequest> {
        if self.assets.is_empty() {
            return Err(StoreError::invalid(
                "`assets` must list at least one asset id",
            ));
        }
        if self.assets.len() > max_assets {
            return Err(StoreError::too_large(format!(
                "at most {max_assets} assets per notification"
            )));
        }
        if let Some(bad) = self.assets.iter().find(|a| !remote_id_ok(a)) {
            return Err(StoreError::invalid(format!(
                "asset id `{bad}` is not valid"
            )));
        }
        if self.token.is_empty()
            || self.token.len() > 256
            || !self.token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(StoreError::invalid(
                "`token` must be 1-256 visible ASCII characters",
            ));
        }
        if self.publisher.len() > 200 {
            return Err(StoreError::invalid(
                "`publisher` is longer than 200 characters",
            ));
        }
        if let Some(c) = &self.commit_id
            && !remote_id_ok(c)
        {
            return Err(StoreError::invalid(format!("commit_id `{c}` is not valid")));
        }
        let raw = self
            .base_url
            .as_deref()
            .filter(|b| !b.is_empty())
            .or(default_base_url)
            .ok_or_else(|| {
                StoreError::invalid("`base_url` is missing and no default is configured")
            })?;
        let base_url = normalize_base_url(raw)?;
        if !allowed.allows(&base_url) {
            return Err(StoreError::invalid(format!(
                "base_url `{base_url}` is not in ingest_allowed_base_urls"
            )));
        }
        let job_id = job_id(&base_url, &self.token, &self.assets);
        Ok(ValidRequest {
            assets: self.assets,
            publisher: self.publisher,
            token: self.token,
            commit_id: self.commit_id,
            base_url,
            job_id,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssetState {
    Pending,
    Downloading,
    Stored,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestAsset {
    pub remote_id: String,
    pub state: AssetState,
    pub reason: Option<String>,
    pub attempts: u32,
    /// Id in our catalog once stored.
    pub local_id: Option<String>,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestJob {
    pub id: String,
    pub base_url: String,
    pub commit_id: Option<String>,
    /// The AssetToken; never shown or logged.
    pub token: String,
    pub publisher: String,
    pub publisher_info: Option<serde_json::Value>,
    pub publisher_error: Option<String>,
    pub assets: Vec<IngestAsset>,
    pub status: JobStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub acknowledged: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

impl IngestJob {
    pub fn new(req: &ValidRequest, now: u64) -> Self {
        IngestJob {
            id: req.job_id.clone(),
            base_url: req.base_url.clone(),
            commit_id: req.commit_id.clone(),
            token: req.token.clone(),
            publisher: req.publisher.clone(),
            publisher_info: None,
            publisher_error: None,
            assets: req
                .assets
                .iter()
                .map(|a| IngestAsset {
                    remote_id: a.clone(),
                    state: AssetState::Pending,
                    reason: None,
                    attempts: 0,
                    local_id: None,
                    size: None,
                })
                .collect(),
            status: JobStatus::Queued,
            attempts: 0,
            last_error: None,
            acknowledged: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// Assets still to fetch.
    pub fn remaining(&self) -> impl Iterator<Item = &IngestAsset> {
        self.assets
            .iter()
            .filter(|a| matches!(a.state, AssetState::Pending | AssetState::Downloading))
    }

    /// The public view: everything but the token.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "status": self.status,
            "base_url": self.base_url,
            "commit_id": self.commit_id,
            "publisher": self.publisher,
            "publisher_info": self.publisher_info,
            "publisher_error": self.publisher_error,
            "acknowledged": self.acknowledged,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "assets": self.assets,
            "createdAt": assetgate_web::time::rfc3339(self.created_at),
            "updatedAt": assetgate_web::time::rfc3339(self.updated_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(base: Option<&str>) -> EnqueueRequest {
        EnqueueRequest {
            assets: vec!["4c097077-a26b".into(), "a134145e".into()],
            publisher: "d03fc9f6".into(),
            token: "f87700b7cd".into(),
            commit_id: Some("c1".into()),
            base_url: base.map(String::from),
        }
    }

    #[test]
    fn base_urls_are_normalised_and_checked() {
        let allowed =
            AllowedBaseUrls::parse("https://upload.example.com, http://127.0.0.1:8080/api")
                .unwrap();
        let ok = req(Some("HTTPS://Upload.Example.com/"))
            .validate(None, &allowed, 10)
            .unwrap();
        assert_eq!(ok.base_url, "https://upload.example.com");
        assert!(
            req(Some("http://127.0.0.1:8080/api/v2"))
                .validate(None, &allowed, 10)
                .is_ok()
        );
        for bad in [
            "http://127.0.0.1:8080/apix",
            "https://upload.example.com.evil.net",
            "https://upload.example.com@evil.net",
            "http://upload.example.com",
            "file:///etc/passwd",
            "https://upload.example.com/../x",
            // Found by fuzzing (fuzz/artifacts/hydra_ingest_json): encoded
            // dot segments passed as ordinary path segments.
            "https://upload.example.com/%2e%2e/x",
            "http://127.0.0.1:8080/api/.%2E/x",
            "http://127.0.0.1:8080/api/%2e",
            "https://upload.example.com?x=1",
        ] {
            assert!(
                req(Some(bad)).validate(None, &allowed, 10).is_err(),
                "{bad}"
            );
        }
        // Default base URL applies when absent; nothing allowed by default.
        assert!(
            req(None)
                .validate(Some("https://upload.example.com"), &allowed, 10)
                .is_ok()
        );
        assert!(req(None).validate(None, &allowed, 10).is_err());
        assert!(
            req(Some("https://upload.example.com"))
                .validate(None, &AllowedBaseUrls::default(), 10)
                .is_err()
        );
    }

    #[test]
    fn job_ids_are_stable_and_inputs_checked() {
        let allowed = AllowedBaseUrls::parse("https://u.example").unwrap();
        let a = req(Some("https://u.example"))
            .validate(None, &allowed, 10)
            .unwrap();
        let b = req(Some("https://u.example/"))
            .validate(None, &allowed, 10)
            .unwrap();
        assert_eq!(
            a.job_id, b.job_id,
            "a replayed notification is the same job"
        );
        // Identity is the assets: with or without a commit id, in any
        // order, the same job; other assets, another job.
        let mut same = req(Some("https://u.example"));
        same.commit_id = None;
        same.assets.reverse();
        assert_eq!(same.validate(None, &allowed, 10).unwrap().job_id, a.job_id);
        let mut other = req(Some("https://u.example"));
        other.assets.pop();
        assert_ne!(other.validate(None, &allowed, 10).unwrap().job_id, a.job_id);
        let mut other = req(Some("https://u.example"));
        other.token = "another".into();
        assert_ne!(other.validate(None, &allowed, 10).unwrap().job_id, a.job_id);
        let mut bad = req(Some("https://u.example"));
        bad.assets = vec!["../etc".into()];
        assert!(bad.validate(None, &allowed, 10).is_err());
        let mut bad = req(Some("https://u.example"));
        bad.token = "a b".into();
        assert!(bad.validate(None, &allowed, 10).is_err());
        assert_eq!(
            req(Some("https://u.example"))
                .validate(None, &allowed, 1)
                .unwrap_err()
                .code,
            assetgate_store::ErrorCode::TooLarge
        );
        let job = IngestJob::new(&a, 1);
        assert!(job.view().get("token").is_none());
        assert_eq!(job.remaining().count(), 2);
    }
}
