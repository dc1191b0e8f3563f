//! Commits: a batch of uploaded assets, its `AssetToken`, acknowledgement,
//! the unacknowledged listing the pull worker reads, and push state.

use crate::limits::Limits;
use assetgate_catalog::{Catalog, Origin};
use assetgate_store::{ErrorCode, Index, Kv, QueueConfig, Records, Result, StoreError};
use assetgate_web::secret;
use serde::{Deserialize, Serialize};

const KIND: &str = "commit";
/// token digest → commit id
const TOKEN_KIND: &str = "commit-token";
const UNACKED_INDEX: &str = "commits-unacked";
/// Token length in random bytes: 192 bits, above the 160 required.
const TOKEN_BYTES: usize = 24;

/// Delivery of the push notification (`POST {target}/api/v1/upload/enqueue`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushState {
    /// Attempts started (each claimed before it is sent).
    pub attempts: u32,
    pub delivered_at: Option<u64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<u64>,
    /// Retries exhausted; the commit stays pullable.
    pub gave_up: bool,
    /// An attempt is being sent until then: nobody else may send. A sender
    /// that died leaves it to expire, and the next one goes ahead.
    #[serde(default)]
    pub in_flight_until: Option<u64>,
}

impl PushState {
    /// Whether an attempt may start at `now`.
    pub fn due(&self, now: u64) -> bool {
        self.delivered_at.is_none()
            && !self.gave_up
            && self.next_attempt_at.is_none_or(|t| t <= now)
            && self.in_flight_until.is_none_or(|t| t <= now)
    }

    /// Nothing more will be sent.
    pub fn settled(&self) -> bool {
        self.delivered_at.is_some() || self.gave_up
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    pub id: String,
    pub token: String,
    pub assets: Vec<String>,
    pub publisher: String,
    pub form_data: serde_json::Value,
    pub notify: Option<serde_json::Value>,
    pub acknowledged: bool,
    pub acknowledged_at: Option<u64>,
    pub created_at: u64,
    pub size: u64,
    pub push: Option<PushState>,
}

impl Commit {
    /// The reference's JSON shape (`createdAt` in RFC 3339), plus our
    /// `size` and push state.
    pub fn to_json(&self, base_url: &str) -> serde_json::Value {
        serde_json::json!({
            "@id": format!("/commits/{}", self.id),
            "@type": "Commit",
            "id": self.id,
            "token": self.token,
            "assets": self.assets,
            "publisher": self.publisher,
            // What Phraseanet's pull worker reads as the publisher.
            "userId": self.publisher,
            "formData": self.form_data,
            "notify": self.notify,
            "acknowledged": self.acknowledged,
            "createdAt": assetgate_web::time::rfc3339(self.created_at),
            "size": self.size,
            "base_url": base_url,
            "push": self.push,
        })
    }
}

/// The outcome of checking an `AssetToken`.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    Granted(Box<Commit>),
    /// No token, or one no commit has: 401.
    Unauthorized,
    /// A real token, for another commit: 403.
    Forbidden,
}

pub struct Commits<'a, K: Kv + ?Sized> {
    kv: &'a K,
    catalog: &'a Catalog<'a, K>,
    limits: &'a Limits,
}

impl<'a, K: Kv + ?Sized> Commits<'a, K> {
    pub fn new(kv: &'a K, catalog: &'a Catalog<'a, K>, limits: &'a Limits) -> Self {
        Commits {
            kv,
            catalog,
            limits,
        }
    }

    fn records(&self) -> Records<'a, K> {
        Records::new(self.kv, KIND)
    }

    /// Commits uploaded assets as one batch.
    pub fn create(
        &self,
        assets: Vec<String>,
        publisher: &str,
        form_data: serde_json::Value,
        notify: Option<serde_json::Value>,
        now: u64,
    ) -> Result<Commit> {
        if assets.is_empty() {
            return Err(StoreError::invalid(
                "`assets` must list at least one asset id",
            ));
        }
        if assets.len() > self.limits.max_files_per_commit {
            return Err(StoreError::too_large(format!(
                "a commit holds at most {} assets ({} given)",
                self.limits.max_files_per_commit,
                assets.len()
            )));
        }
        if publisher.is_empty() || publisher.len() > 200 {
            return Err(StoreError::invalid("`publisher` must be 1-200 characters"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut size = 0u64;
        for id in &assets {
            if !seen.insert(id) {
                return Err(StoreError::invalid(format!("asset `{id}` is listed twice")));
            }
            let a = self.catalog.get(id, now)?;
            if a.origin != Origin::Upload {
                return Err(StoreError::invalid(format!(
                    "asset `{id}` was not uploaded here"
                )));
            }
            if let Some(c) = &a.commit {
                return Err(StoreError::conflict(format!(
                    "asset `{id}` already belongs to commit `{c}`"
                )));
            }
            size += a.size;
        }
        if size > self.limits.max_commit_size {
            return Err(StoreError::too_large(format!(
                "the commit's assets total {size} bytes; the limit is {}",
                self.limits.max_commit_size
            )));
        }
        let commit = Commit {
            id: secret::uuid_v4(),
            token: secret::random_hex(TOKEN_BYTES),
            assets,
            publisher: publisher.to_string(),
            form_data,
            notify,
            acknowledged: false,
            acknowledged_at: None,
            created_at: now,
            size,
            push: None,
        };
        // Claim every asset first: a concurrent commit of the same asset
        // makes one of the two fail instead of both owning it.
        let mut claimed: Vec<String> = Vec::new();
        for id in &commit.assets {
            let outcome = self.catalog.update(id, |a| {
                if let Some(c) = &a.commit {
                    return Err(StoreError::conflict(format!(
                        "asset `{id}` already belongs to commit `{c}`"
                    )));
                }
                a.commit = Some(commit.id.clone());
                Ok(())
            });
            if let Err(e) = outcome {
                for done in &claimed {
                    let _ = self.catalog.update(done, |a| {
                        a.commit = None;
                        Ok(())
                    });
                }
                return Err(e);
            }
            claimed.push(id.clone());
        }
        Records::new(self.kv, TOKEN_KIND).create(
            &assetgate_identity::token::lookup_key(&commit.token),
            &commit.id,
        )?;
        Index::new(self.kv, UNACKED_INDEX)?.add(&commit.id)?;
        self.records().create(&commit.id, &commit)?;
        Ok(commit)
    }

    pub fn get(&self, id: &str) -> Result<Commit> {
        Ok(self.records().get::<Commit>(id)?.value)
    }

    /// The commit a token belongs to, compared in constant time.
    fn commit_for_token(&self, token: &str) -> Result<Option<Commit>> {
        if token.is_empty() || token.len() > 256 {
            return Ok(None);
        }
        let Some(id) = Records::new(self.kv, TOKEN_KIND)
            .try_get::<String>(&assetgate_identity::token::lookup_key(token))?
        else {
            return Ok(None);
        };
        match self.records().try_get::<Commit>(&id.value)? {
            Some(c)
                if assetgate_identity::token::constant_time_eq(
                    c.value.token.as_bytes(),
                    token.as_bytes(),
                ) =>
            {
                Ok(Some(c.value))
            }
            _ => Ok(None),
        }
    }

    /// May `token` read asset `asset_id`? `NotFound` for an unknown asset
    /// is only reported to holders of a valid token.
    pub fn authorize_asset(&self, token: Option<&str>, asset_id: &str, now: u64) -> Result<Access> {
        let Some(commit) = self.commit_for_token(token.unwrap_or(""))? else {
            return Ok(Access::Unauthorized);
        };
        let asset = self.catalog.get(asset_id, now)?;
        if asset.commit.as_deref() == Some(commit.id.as_str()) {
            Ok(Access::Granted(Box::new(commit)))
        } else {
            Ok(Access::Forbidden)
        }
    }

    /// May `token` act on commit `commit_id`?
    pub fn authorize_commit(&self, token: Option<&str>, commit_id: &str) -> Result<Access> {
        let Some(commit) = self.commit_for_token(token.unwrap_or(""))? else {
            return Ok(Access::Unauthorized);
        };
        if commit.id == commit_id {
            Ok(Access::Granted(Box::new(commit)))
        } else {
            self.get(commit_id)?; // unknown commit: 404 before 403
            Ok(Access::Forbidden)
        }
    }

    /// Acknowledges a commit and its assets; idempotent. Returns the commit
    /// and whether this call changed it.
    pub fn ack(&self, id: &str, now: u64) -> Result<(Commit, bool)> {
        let changed = self.records().modify(id, |c: &mut Commit| {
            if c.acknowledged {
                return Ok(false);
            }
            c.acknowledged = true;
            c.acknowledged_at = Some(now);
            Ok(true)
        })?;
        let commit = self.get(id)?;
        if changed {
            for asset in &commit.assets {
                self.ack_asset_record(asset, now)?;
            }
            Index::new(self.kv, UNACKED_INDEX)?.remove(id)?;
        }
        Ok((commit, changed))
    }

    fn ack_asset_record(&self, asset: &str, now: u64) -> Result<bool> {
        let retention = self.limits.acked_retention_secs;
        match self.catalog.update(asset, |a| {
            if a.acknowledged {
                return Ok(false);
            }
            a.acknowledged = true;
            a.expires_at = Some(now + retention);
            Ok(true)
        }) {
            Err(e) if e.code == ErrorCode::NotFound => Ok(false),
            other => other,
        }
    }

    /// Acknowledges one asset; idempotent. Returns whether it changed.
    /// Phraseanet's worker acknowledges asset by asset: when the last asset
    /// of a commit is acknowledged, so is the commit, which then leaves the
    /// pull listing (else every poll would enqueue it again).
    pub fn ack_asset(&self, asset: &str, now: u64) -> Result<bool> {
        let record = self.catalog.get(asset, now)?;
        let changed = self.ack_asset_record(asset, now)?;
        if let Some(commit_id) = &record.commit {
            let commit = self.get(commit_id)?;
            let all_acked = !commit.acknowledged
                && commit
                    .assets
                    .iter()
                    .all(|a| match self.catalog.get(a, now) {
                        Ok(x) => x.acknowledged,
                        // An expired or removed asset needs no ack.
                        Err(e) => e.code == ErrorCode::NotFound,
                    });
            if all_acked {
                self.ack(commit_id, now)?;
            }
        }
        Ok(changed)
    }

    /// Page `page` (1-based) of the unacknowledged commits, oldest first,
    /// and their total count.
    pub fn list_unacked(&self, page: usize, per_page: usize) -> Result<(Vec<Commit>, usize)> {
        let ids = Index::new(self.kv, UNACKED_INDEX)?.all()?;
        let total = ids.len();
        let start = page.saturating_sub(1).saturating_mul(per_page);
        let mut out = Vec::new();
        for id in ids.iter().skip(start).take(per_page) {
            if let Some(c) = self.records().try_get::<Commit>(id)? {
                out.push(c.value);
            }
        }
        Ok((out, total))
    }

    /// Claims the next push attempt: `Some(attempt number)` when the caller
    /// is the one to send it now; `None` when it is delivered, given up,
    /// not due yet, or another sender's attempt is in flight. The claim is
    /// a compare-and-swap of the commit, so of concurrent callers, on one
    /// process or several, one wins.
    /// `policy.lease_secs` must outlast one delivery request.
    pub fn claim_push(&self, id: &str, now: u64, policy: &QueueConfig) -> Result<Option<u32>> {
        self.records().modify(id, |c: &mut Commit| {
            let p = c.push.get_or_insert_with(PushState::default);
            if !p.due(now) {
                return Ok(None);
            }
            p.attempts += 1;
            p.in_flight_until = Some(now + policy.lease_secs);
            Ok(Some(p.attempts))
        })
    }

    /// Records how a claimed attempt ended and schedules the next one.
    pub fn finish_push(
        &self,
        id: &str,
        outcome: std::result::Result<(), String>,
        now: u64,
        policy: &QueueConfig,
    ) -> Result<PushState> {
        self.records().modify(id, |c: &mut Commit| {
            let p = c.push.get_or_insert_with(PushState::default);
            p.in_flight_until = None;
            match &outcome {
                Ok(()) => {
                    p.delivered_at = Some(now);
                    p.last_error = None;
                    p.next_attempt_at = None;
                }
                // A late failure never undoes a delivery another attempt made.
                Err(_) if p.delivered_at.is_some() => {}
                Err(e) => {
                    p.last_error = Some(e.clone());
                    if p.attempts >= policy.max_attempts {
                        p.gave_up = true;
                        p.next_attempt_at = None;
                    } else {
                        p.next_attempt_at = Some(now + policy.backoff(p.attempts));
                    }
                }
            }
            Ok(p.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assetgate_catalog::Asset;
    use assetgate_store::{BlobConfig, Blobs, MemoryKv};

    fn upload(cat: &Catalog<MemoryKv>, id: &str, bytes: &[u8]) {
        let d = cat.blobs().put(id, bytes, "image/png", 0).unwrap();
        cat.add(&Asset::from_blob(
            &d,
            "x.png",
            serde_json::Value::Null,
            Origin::Upload,
            0,
        ))
        .unwrap();
    }

    #[test]
    fn tokens_scope_access_to_their_commit() {
        let kv = MemoryKv::new();
        let cat = Catalog::new(&kv, Blobs::new(&kv, BlobConfig::default()));
        let limits = Limits::default();
        let commits = Commits::new(&kv, &cat, &limits);
        for id in ["a", "b", "c"] {
            upload(&cat, id, id.as_bytes());
        }
        let c1 = commits
            .create(
                vec!["a".into(), "b".into()],
                "pub",
                serde_json::json!({}),
                None,
                5,
            )
            .unwrap();
        let c2 = commits
            .create(vec!["c".into()], "pub", serde_json::json!({}), None, 5)
            .unwrap();
        assert!(c1.token.len() >= 40, "at least 160 bits of hex");
        assert_ne!(c1.token, c2.token);
        assert!(matches!(
            commits.authorize_asset(Some(&c1.token), "a", 6).unwrap(),
            Access::Granted(_)
        ));
        assert_eq!(
            commits.authorize_asset(Some(&c1.token), "c", 6).unwrap(),
            Access::Forbidden
        );
        assert_eq!(
            commits.authorize_asset(Some("forged"), "a", 6).unwrap(),
            Access::Unauthorized
        );
        assert_eq!(
            commits.authorize_asset(None, "a", 6).unwrap(),
            Access::Unauthorized
        );
        let wrong_last_char = format!("{}0", &c1.token[..c1.token.len() - 1]);
        if wrong_last_char != c1.token {
            assert_eq!(
                commits
                    .authorize_asset(Some(&wrong_last_char), "a", 6)
                    .unwrap(),
                Access::Unauthorized
            );
        }
        assert_eq!(
            commits
                .authorize_asset(Some(&c1.token), "zzz", 6)
                .unwrap_err()
                .code,
            ErrorCode::NotFound
        );
        // An asset belongs to one commit only.
        assert_eq!(
            commits
                .create(vec!["a".into()], "pub", serde_json::json!({}), None, 5)
                .unwrap_err()
                .code,
            ErrorCode::Conflict
        );
        let (list, total) = commits.list_unacked(1, 10).unwrap();
        assert_eq!((list.len(), total), (2, 2));
        let (_, changed) = commits.ack(&c1.id, 10).unwrap();
        assert!(changed);
        let (again, changed) = commits.ack(&c1.id, 11).unwrap();
        assert!(!changed);
        assert_eq!(again.acknowledged_at, Some(10));
        assert_eq!(commits.list_unacked(1, 10).unwrap().1, 1);
        assert_eq!(
            cat.get("a", 12).unwrap().expires_at,
            Some(10 + limits.acked_retention_secs)
        );
    }

    /// Runs `f` on a store holding one commit of one asset.
    fn with_one_commit(f: impl FnOnce(&Commits<MemoryKv>, &str)) {
        let kv = MemoryKv::new();
        let cat = Catalog::new(&kv, Blobs::new(&kv, BlobConfig::default()));
        let limits = Limits::default();
        let commits = Commits::new(&kv, &cat, &limits);
        upload(&cat, "a", b"a");
        let c = commits
            .create(vec!["a".into()], "pub", serde_json::json!({}), None, 0)
            .unwrap();
        f(&commits, &c.id);
    }

    #[test]
    fn one_push_attempt_per_window_and_every_attempt_recorded() {
        with_one_commit(|commits, id| {
            let policy = QueueConfig {
                lease_secs: 60,
                max_attempts: 3,
                backoff_base_secs: 10,
                backoff_max_secs: 3600,
            };
            // The first caller sends; everyone else, while it is in flight, not.
            assert_eq!(commits.claim_push(id, 100, &policy).unwrap(), Some(1));
            for t in [100, 101, 159] {
                assert_eq!(commits.claim_push(id, t, &policy).unwrap(), None);
            }
            // It failed: nobody retries before the backoff, one caller after.
            let p = commits
                .finish_push(id, Err("503".into()), 102, &policy)
                .unwrap();
            assert_eq!((p.attempts, p.next_attempt_at), (1, Some(112)));
            assert_eq!(commits.claim_push(id, 111, &policy).unwrap(), None);
            assert_eq!(commits.claim_push(id, 112, &policy).unwrap(), Some(2));
            assert_eq!(commits.claim_push(id, 112, &policy).unwrap(), None);
            // Its sender died: once the lease is over, the next caller retries.
            assert_eq!(commits.claim_push(id, 172, &policy).unwrap(), Some(3));
            let p = commits.finish_push(id, Ok(()), 173, &policy).unwrap();
            assert_eq!((p.attempts, p.delivered_at), (3, Some(173)));
            // The dead sender's late failure does not undo the delivery.
            let p = commits
                .finish_push(id, Err("timeout".into()), 174, &policy)
                .unwrap();
            assert_eq!(p.delivered_at, Some(173));
            assert_eq!(commits.claim_push(id, 10_000, &policy).unwrap(), None);
        });
    }

    #[test]
    fn push_gives_up_after_the_last_attempt() {
        with_one_commit(|commits, id| {
            let policy = QueueConfig {
                lease_secs: 60,
                max_attempts: 2,
                backoff_base_secs: 1,
                backoff_max_secs: 1,
            };
            let mut now = 0;
            while let Some(n) = commits.claim_push(id, now, &policy).unwrap() {
                commits
                    .finish_push(id, Err(format!("fail {n}")), now, &policy)
                    .unwrap();
                now += 10;
            }
            let p = commits.get(id).unwrap().push.unwrap();
            assert_eq!((p.attempts, p.gave_up), (2, true));
            assert_eq!(p.last_error.as_deref(), Some("fail 2"));
        });
    }

    #[test]
    fn commit_limits() {
        let kv = MemoryKv::new();
        let cat = Catalog::new(&kv, Blobs::new(&kv, BlobConfig::default()));
        let limits = Limits {
            max_files_per_commit: 2,
            max_commit_size: 5,
            ..Limits::default()
        };
        let commits = Commits::new(&kv, &cat, &limits);
        upload(&cat, "a", b"1234");
        upload(&cat, "b", b"5678");
        upload(&cat, "c", b"9");
        let err = |ids: &[&str]| {
            commits
                .create(
                    ids.iter().map(|s| s.to_string()).collect(),
                    "p",
                    serde_json::Value::Null,
                    None,
                    0,
                )
                .unwrap_err()
                .code
        };
        assert_eq!(err(&[]), ErrorCode::Invalid);
        assert_eq!(err(&["a", "b", "c"]), ErrorCode::TooLarge);
        assert_eq!(err(&["a", "b"]), ErrorCode::TooLarge);
        assert_eq!(err(&["a", "a"]), ErrorCode::Invalid);
        assert_eq!(err(&["nope"]), ErrorCode::NotFound);
        // A failed commit leaves no asset claimed.
        commits
            .create(vec!["a".into()], "p", serde_json::Value::Null, None, 0)
            .unwrap();
        assert_eq!(cat.get("b", 0).unwrap().commit, None);
    }
}
