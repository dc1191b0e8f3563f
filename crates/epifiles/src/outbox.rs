//! Notifications (the e-mails the reference sends on deposit and archive)
//! go to an outbox in the store: a journal, in order, read by
//! `GET /epifiles/admin/outbox`. When `epifiles_notify_url` is set, each
//! one is also a delivery job, posted as JSON to that webhook with retries;
//! a delivery that gives up stays visible as `failed`. Nothing is dropped
//! silently.

use crate::error::done_if_conflict;
use assetgate_store::{
    ErrorCode, Job, JobState, Journal, Kv, Position, Queue, QueueConfig, Records, Result,
};
use serde::{Deserialize, Serialize};

const JOURNAL: &str = "epifiles-outbox";
const QUEUE: &str = "epifiles-notify";
const RECORDS: &str = "epifiles-notification";

/// Webhook retries: 10 s, doubling, at most an hour apart, 8 attempts.
pub const DELIVERY: QueueConfig = QueueConfig {
    lease_secs: 60,
    max_attempts: 8,
    backoff_base_secs: 10,
    backoff_max_secs: 3600,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    pub user: String,
    pub email: Option<String>,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Derived from the event (`deposit-<file>`, `archive-<manifest>`), so
    /// a retried request does not notify twice.
    pub id: String,
    pub event: String,
    pub repository: String,
    pub manifest: String,
    pub manifest_file: Option<String>,
    pub subject: String,
    pub message: String,
    pub recipients: Vec<Recipient>,
    /// RFC 3339.
    pub created_at: String,
}

pub struct Outbox<'a, K: Kv + ?Sized> {
    kv: &'a K,
}

impl<'a, K: Kv + ?Sized> Outbox<'a, K> {
    pub fn new(kv: &'a K) -> Self {
        Outbox { kv }
    }

    fn queue(&self) -> Result<Queue<'a, K>> {
        Queue::new(self.kv, QUEUE, DELIVERY)
    }

    /// Files a notification; with `deliver`, queues it for the webhook.
    /// Journal first: a crash in between may repeat it, never lose it.
    pub fn post(&self, n: &Notification, deliver: bool, now: u64) -> Result<()> {
        let records = Records::new(self.kv, RECORDS);
        if records.try_get::<Notification>(&n.id)?.is_some() {
            return Ok(());
        }
        let raw = serde_json::to_vec(n).expect("notification serialises");
        Journal::new(self.kv, JOURNAL)?.append(&raw)?;
        done_if_conflict(records.create(&n.id, n).map(|_| ()))?;
        if deliver {
            done_if_conflict(self.queue()?.enqueue(&n.id, n.id.clone(), now))?;
        }
        Ok(())
    }

    /// A page of the outbox after `after` (a position token, or the start),
    /// each notification with its delivery state, and the token to read on
    /// from (the same one when caught up).
    pub fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<serde_json::Value>, String)> {
        let after = match after {
            Some(t) => Position::parse(t)?,
            None => Position::START,
        };
        let entries = Journal::new(self.kv, JOURNAL)?.read_after(after, limit)?;
        let queue = self.queue()?;
        let mut out = Vec::new();
        for e in &entries {
            let n: Notification = serde_json::from_slice(&e.payload).map_err(|err| {
                assetgate_store::StoreError::corrupt(format!("outbox entry: {err}"))
            })?;
            let delivery = match queue.get::<String>(&n.id) {
                Ok(job) => delivery_json(&job),
                Err(err) if err.code == ErrorCode::NotFound => {
                    serde_json::json!({ "state": "not-delivered", "reason": "no webhook configured when it was filed" })
                }
                Err(err) => return Err(err),
            };
            let mut v = serde_json::to_value(&n).expect("notification serialises");
            v["position"] = e.position.token().into();
            v["delivery"] = delivery;
            out.push(v);
        }
        let next = entries.last().map_or(after, |e| e.position).token();
        Ok((out, next))
    }

    /// A notification due for delivery, leased to `token`.
    pub fn claim(&self, now: u64, token: &str) -> Result<Option<(Job<String>, Notification)>> {
        let Some(job) = self.queue()?.claim::<String>(now, token, 20)? else {
            return Ok(None);
        };
        let n = Records::new(self.kv, RECORDS)
            .get::<Notification>(&job.payload)?
            .value;
        Ok(Some((job, n)))
    }

    pub fn delivered(&self, id: &str, token: &str, now: u64) -> Result<()> {
        self.queue()?.complete::<String>(id, token, now)
    }

    pub fn failed(&self, id: &str, token: &str, reason: &str, now: u64) -> Result<JobState> {
        self.queue()?.fail::<String>(id, token, reason, now)
    }
}

fn delivery_json(job: &Job<String>) -> serde_json::Value {
    let state = match &job.state {
        JobState::Ready { .. } | JobState::Leased { .. } => "pending",
        JobState::Done { .. } => "delivered",
        JobState::Failed { .. } => "failed",
    };
    serde_json::json!({ "state": state, "attempts": job.attempts, "last_error": job.last_error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use assetgate_store::MemoryKv;

    fn note(id: &str) -> Notification {
        Notification {
            id: id.into(),
            event: "deposit".into(),
            repository: "23".into(),
            manifest: "1".into(),
            manifest_file: Some("1".into()),
            subject: "s".into(),
            message: "m".into(),
            recipients: vec![],
            created_at: "2026-01-01T00:00:00+00:00".into(),
        }
    }

    #[test]
    fn filed_once_listed_in_order_and_delivered_with_retries() {
        let kv = MemoryKv::new();
        let o = Outbox::new(&kv);
        o.post(&note("a"), true, 100).unwrap();
        o.post(&note("a"), true, 100).unwrap(); // a retried request
        o.post(&note("b"), false, 100).unwrap();
        let (list, next) = o.list(None, 10).unwrap();
        assert_eq!(list.len(), 2);
        assert!(o.list(Some(&next), 10).unwrap().0.is_empty(), "caught up");
        assert_eq!(list[0]["id"], "a");
        assert_eq!(list[0]["delivery"]["state"], "pending");
        assert_eq!(list[1]["delivery"]["state"], "not-delivered");
        let (page, next) = o.list(None, 1).unwrap();
        assert_eq!(page.len(), 1);
        let (rest, _) = o.list(Some(&next), 1).unwrap();
        assert_eq!(rest[0]["id"], "b");

        let (job, n) = o.claim(100, "t1").unwrap().unwrap();
        assert_eq!(n.id, "a");
        assert!(o.claim(100, "t2").unwrap().is_none(), "leased");
        o.failed(&job.id, "t1", "502", 100).unwrap();
        assert!(o.claim(105, "t3").unwrap().is_none(), "backing off");
        let (job, _) = o.claim(111, "t4").unwrap().unwrap();
        o.delivered(&job.id, "t4", 111).unwrap();
        let (list, _) = o.list(None, 10).unwrap();
        assert_eq!(list[0]["delivery"]["state"], "delivered");
        assert_eq!(list[0]["delivery"]["attempts"], 2);
    }
}
