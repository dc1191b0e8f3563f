//! Limits and settings, one struct, from Spin variables (docs/configuration.md
//! documents each; defaults in comments).

use assetgate_store::settings::number;
use assetgate_store::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body (16 MiB; `data:` sources travel inside it).
    pub max_request_bytes: u64,
    /// Renditions per `/process` request (20).
    pub max_renditions: usize,
    /// Largest source or zip member, in bytes (64 MiB).
    pub max_source_bytes: u64,
    /// Largest source image, in pixels (50 MP).
    pub max_source_pixels: u64,
    /// Memory one image rendition may plan to use (96 MiB); over it the
    /// rendition fails with `ServiceOverLoad` instead of trapping.
    pub max_decode_bytes: u64,
    /// Largest `width`/`height` a rendition may ask for (8192).
    pub max_output_side: u32,
    /// Jobs a client may have in flight before `/process` answers 429 (8);
    /// a client's own `max_in_flight` overrides it.
    pub max_in_flight: usize,
    /// Seconds a worker holds a job before another may take it over (300).
    pub lease_secs: u64,
    /// Attempts before a job whose worker keeps dying is failed (3).
    pub max_attempts: u32,
    /// Seconds one job may spend fetching and rendering (120); past it the
    /// remaining renditions fail with `GenericError`.
    pub job_timeout_secs: u64,
    /// `Retry-After` on an empty journal page and on 429 (2 s).
    pub retry_after_secs: u64,
    /// Renditions kept in our store (no target) expire after this (7 days).
    pub retention_days: u64,
    /// `host[:port]` allowed over plain `http:` and despite being loopback
    /// or private (empty).
    pub allowed_http_hosts: Vec<String>,
    /// Base URL of journal links (empty: the URL the client used).
    pub public_url: Option<String>,
}

/// Largest `embedBinaryLimit` honoured; larger asks are capped.
pub const MAX_EMBED_BYTES: u64 = 32 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            max_request_bytes: 16 << 20,
            max_renditions: 20,
            max_source_bytes: 64 << 20,
            max_source_pixels: 50_000_000,
            max_decode_bytes: 96 << 20,
            max_output_side: 8192,
            max_in_flight: 8,
            lease_secs: 300,
            max_attempts: 3,
            job_timeout_secs: 120,
            retry_after_secs: 2,
            retention_days: 7,
            allowed_http_hosts: Vec::new(),
            public_url: None,
        }
    }
}

impl Config {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let d = Config::default();
        let num = |name: &str, default: u64, min: u64, max: u64| {
            number(get(name), name, default, min, max)
        };
        let allowed_http_hosts = get("compute_allowed_http_hosts")
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>();
        for h in &allowed_http_hosts {
            if h.contains('/') || h.contains('@') {
                return Err(StoreError::invalid(format!(
                    "variable `compute_allowed_http_hosts`: `{h}` must be host or host:port"
                )));
            }
        }
        Ok(Config {
            max_request_bytes: num(
                "compute_max_request_bytes",
                d.max_request_bytes,
                1024,
                1 << 30,
            )?,
            max_renditions: num("compute_max_renditions", d.max_renditions as u64, 1, 1000)?
                as usize,
            max_source_bytes: num("compute_max_source_bytes", d.max_source_bytes, 1, 1 << 40)?,
            max_source_pixels: num("compute_max_source_pixels", d.max_source_pixels, 1, 1 << 40)?,
            max_decode_bytes: num(
                "compute_max_decode_bytes",
                d.max_decode_bytes,
                1 << 20,
                1 << 40,
            )?,
            max_output_side: num(
                "compute_max_output_side",
                d.max_output_side as u64,
                16,
                65_535,
            )? as u32,
            max_in_flight: num("compute_max_in_flight", d.max_in_flight as u64, 1, 100_000)?
                as usize,
            lease_secs: num("compute_lease_secs", d.lease_secs, 5, 86_400)?,
            max_attempts: num("compute_max_attempts", d.max_attempts as u64, 1, 100)? as u32,
            job_timeout_secs: num("compute_job_timeout_secs", d.job_timeout_secs, 1, 86_400)?,
            retry_after_secs: num("compute_retry_after_secs", d.retry_after_secs, 1, 3600)?,
            retention_days: num("compute_retention_days", d.retention_days, 1, 3650)?,
            allowed_http_hosts,
            public_url: get("compute_public_url")
                .map(|u| u.trim().trim_end_matches('/').to_string()),
        })
    }

    pub fn preview_limits(&self) -> assetgate_imaging::Limits {
        assetgate_imaging::Limits {
            max_source_pixels: self.max_source_pixels,
            max_source_bytes: self.max_source_bytes,
            max_output_side: self.max_output_side,
            max_decode_bytes: self.max_decode_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_refusals() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!((c.max_renditions, c.max_in_flight), (20, 8));
        let c = Config::from_lookup(|n| match n {
            "compute_max_renditions" => Some("3".into()),
            "compute_allowed_http_hosts" => Some(" 127.0.0.1:8080, Example.test ".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.max_renditions, 3);
        assert_eq!(c.allowed_http_hosts, ["127.0.0.1:8080", "example.test"]);
        assert!(
            Config::from_lookup(|n| (n == "compute_max_renditions").then(|| "0".into())).is_err()
        );
        assert!(
            Config::from_lookup(|n| (n == "compute_allowed_http_hosts")
                .then(|| "http://x/".into()))
            .is_err()
        );
    }
}
