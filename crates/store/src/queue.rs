//! Durable job queues with leases, retries with exponential backoff, and a
//! terminal failed state.
//!
//! A job is a versioned record; the queue's `open` index lists jobs that
//! still need work (ready or leased) so workers never scan the store. A
//! worker claims a job by compare-and-swapping it to `Leased` with its own
//! token and a deadline; if the worker dies, the lease expires and the job
//! is claimable again. Only the lease holder can complete or fail it.

use crate::backend::Kv;
use crate::error::{ErrorCode, Result, StoreError};
use crate::index::Index;
use crate::keys;
use crate::record::{Records, Versioned};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Queue behaviour; defaults in comments.
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// How long a claim lasts before another worker may take the job (60 s).
    pub lease_secs: u64,
    /// Attempts before a job fails for good (5).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each attempt (2 s)…
    pub backoff_base_secs: u64,
    /// …up to this (300 s).
    pub backoff_max_secs: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            lease_secs: 60,
            max_attempts: 5,
            backoff_base_secs: 2,
            backoff_max_secs: 300,
        }
    }
}

impl QueueConfig {
    /// Delay before retry number `attempts` (1-based).
    pub fn backoff(&self, attempts: u32) -> u64 {
        let factor = 1u64
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u64::MAX);
        self.backoff_base_secs
            .saturating_mul(factor)
            .min(self.backoff_max_secs)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum JobState {
    Ready { not_before: u64 },
    Leased { until: u64, token: String },
    Done { at: u64 },
    Failed { at: u64, reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job<T> {
    pub id: String,
    pub payload: T,
    #[serde(flatten)]
    pub state: JobState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: u64,
}

pub struct Queue<'a, K: Kv + ?Sized> {
    kv: &'a K,
    name: String,
    config: QueueConfig,
}

impl<'a, K: Kv + ?Sized> Queue<'a, K> {
    pub fn new(kv: &'a K, name: &str, config: QueueConfig) -> Result<Self> {
        keys::check_id("queue name", name)?;
        Ok(Queue {
            kv,
            name: name.to_string(),
            config,
        })
    }

    fn records(&self) -> Records<'a, K> {
        Records::new(self.kv, "job")
    }

    fn record_id(&self, id: &str) -> Result<String> {
        keys::check_id("job id", id)?;
        Ok(format!("{}:{id}", self.name))
    }

    fn open_index(&self) -> Result<Index<'a, K>> {
        Index::new(self.kv, &format!("queue.{}.open", self.name))
    }

    fn failed_index(&self) -> Result<Index<'a, K>> {
        Index::new(self.kv, &format!("queue.{}.failed", self.name))
    }

    /// Adds a job, ready now. `Conflict` if the id is taken (so enqueueing
    /// is idempotent for callers that derive ids from their request).
    pub fn enqueue<T: Serialize>(&self, id: &str, payload: T, now: u64) -> Result<()> {
        let job = Job {
            id: id.to_string(),
            payload,
            state: JobState::Ready { not_before: now },
            attempts: 0,
            last_error: None,
            created_at: now,
        };
        // Index first: a job in the index whose record is missing is skipped
        // by `claim`; a record missing from the index would be lost.
        self.open_index()?.add(&self.record_id(id)?)?;
        self.records().create(&self.record_id(id)?, &job)?;
        Ok(())
    }

    pub fn get<T: DeserializeOwned>(&self, id: &str) -> Result<Job<T>> {
        Ok(self.records().get(&self.record_id(id)?)?.value)
    }

    /// Claims the first claimable job (ready and due, or with an expired
    /// lease), examining at most `budget` open jobs. `token` identifies the
    /// claim; pass it back to `complete` or `fail`.
    pub fn claim<T>(&self, now: u64, token: &str, budget: usize) -> Result<Option<Job<T>>>
    where
        T: Serialize + DeserializeOwned + Clone,
    {
        let index = self.open_index()?;
        let records = self.records();
        let mut cursor = None;
        let mut examined = 0;
        loop {
            let page = index.page(cursor, 64)?;
            for rid in &page.members {
                examined += 1;
                // No record yet: its `enqueue` may be between the index and
                // the record (on another replica). Removing the entry here
                // lost that job for good (seen with three replicas on one
                // Redis); an entry left by an enqueue that died there costs
                // one read per claim instead.
                let Some(current) = records.try_get::<Job<T>>(rid)? else {
                    continue;
                };
                if matches!(
                    current.value.state,
                    JobState::Done { .. } | JobState::Failed { .. }
                ) {
                    index.remove(rid)?;
                } else if let Some(job) = self.lease(rid, &current, now, token)? {
                    return Ok(Some(job));
                }
                if examined >= budget {
                    return Ok(None);
                }
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => return Ok(None),
            }
        }
    }

    /// Claims job `id` if it is claimable now (ready and due, or with an
    /// expired lease); `None` if someone else holds it or it is finished.
    pub fn claim_id<T>(&self, id: &str, now: u64, token: &str) -> Result<Option<Job<T>>>
    where
        T: Serialize + DeserializeOwned + Clone,
    {
        let rid = self.record_id(id)?;
        match self.records().try_get::<Job<T>>(&rid)? {
            Some(current) => self.lease(&rid, &current, now, token),
            None => Ok(None),
        }
    }

    /// Leases the job in `current` if it is due; `None` if it is not, or
    /// another worker changed it first.
    fn lease<T>(
        &self,
        rid: &str,
        current: &Versioned<Job<T>>,
        now: u64,
        token: &str,
    ) -> Result<Option<Job<T>>>
    where
        T: Serialize + DeserializeOwned + Clone,
    {
        let due = match &current.value.state {
            JobState::Ready { not_before } => *not_before <= now,
            JobState::Leased { until, .. } => *until <= now,
            JobState::Done { .. } | JobState::Failed { .. } => false,
        };
        if !due {
            return Ok(None);
        }
        let mut job = current.value.clone();
        job.state = JobState::Leased {
            until: now + self.config.lease_secs,
            token: token.to_string(),
        };
        job.attempts += 1;
        match self.records().update(rid, current, &job) {
            Ok(_) => Ok(Some(job)),
            Err(e) if e.code == ErrorCode::Conflict => Ok(None), // another worker won
            Err(e) => Err(e),
        }
    }

    fn with_lease<T, F>(&self, id: &str, token: &str, f: F) -> Result<Job<T>>
    where
        T: Serialize + DeserializeOwned + Clone,
        F: Fn(&mut Job<T>),
    {
        let rid = self.record_id(id)?;
        let records = self.records();
        loop {
            let current: Versioned<Job<T>> = records.get(&rid)?;
            match &current.value.state {
                JobState::Leased { token: held, .. } if held == token => {}
                _ => {
                    return Err(StoreError::conflict(format!(
                        "job `{id}` is not leased by this worker (lease expired?)"
                    )));
                }
            }
            let mut job = current.value.clone();
            f(&mut job);
            match records.update(&rid, &current, &job) {
                Ok(_) => return Ok(job),
                Err(e) if e.code == ErrorCode::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Marks a claimed job done.
    pub fn complete<T>(&self, id: &str, token: &str, now: u64) -> Result<()>
    where
        T: Serialize + DeserializeOwned + Clone,
    {
        self.with_lease::<T, _>(id, token, |job| job.state = JobState::Done { at: now })?;
        self.open_index()?.remove(&self.record_id(id)?)
    }

    /// Records a failed attempt: the job is retried after a backoff, or,
    /// after `max_attempts`, fails for good with `reason`. Returns the state.
    pub fn fail<T>(&self, id: &str, token: &str, reason: &str, now: u64) -> Result<JobState>
    where
        T: Serialize + DeserializeOwned + Clone,
    {
        let config = self.config;
        let job = self.with_lease::<T, _>(id, token, |job| {
            job.last_error = Some(reason.to_string());
            job.state = if job.attempts >= config.max_attempts {
                JobState::Failed {
                    at: now,
                    reason: reason.to_string(),
                }
            } else {
                JobState::Ready {
                    not_before: now + config.backoff(job.attempts),
                }
            };
        })?;
        if let JobState::Failed { .. } = job.state {
            let rid = self.record_id(id)?;
            self.failed_index()?.add(&rid)?;
            self.open_index()?.remove(&rid)?;
        }
        Ok(job.state)
    }

    /// Ids of jobs that failed for good.
    pub fn failed(&self, cursor: Option<String>, limit: usize) -> Result<crate::index::Page> {
        let mut page = self.failed_index()?.page(cursor, limit)?;
        let prefix = format!("{}:", self.name);
        for m in &mut page.members {
            if let Some(id) = m.strip_prefix(&prefix) {
                *m = id.to_string();
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryKv;

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    enum Work {
        Render { asset: String, width: u32 },
    }

    fn cfg() -> QueueConfig {
        QueueConfig {
            lease_secs: 30,
            max_attempts: 3,
            backoff_base_secs: 2,
            backoff_max_secs: 5,
        }
    }

    /// A worker claiming between an enqueue's two writes (index, then
    /// record) must not drop the entry: the job is claimable once its
    /// record lands.
    #[test]
    fn a_claim_between_the_two_writes_of_an_enqueue_loses_nothing() {
        let kv = MemoryKv::new();
        let q = Queue::new(&kv, "render", cfg()).unwrap();
        let rid = q.record_id("j1").unwrap();
        q.open_index().unwrap().add(&rid).unwrap();
        assert!(q.claim::<Work>(100, "w1", 10).unwrap().is_none());
        let job = Job {
            id: "j1".to_string(),
            payload: Work::Render {
                asset: "a1".into(),
                width: 10,
            },
            state: JobState::Ready { not_before: 100 },
            attempts: 0,
            last_error: None,
            created_at: 100,
        };
        q.records().create(&rid, &job).unwrap();
        let claimed = q.claim::<Work>(100, "w1", 10).unwrap();
        assert_eq!(claimed.map(|j| j.id), Some("j1".to_string()));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = cfg();
        assert_eq!(
            (c.backoff(1), c.backoff(2), c.backoff(3), c.backoff(60)),
            (2, 4, 5, 5)
        );
    }

    #[test]
    fn lease_expiry_retry_and_terminal_failure() {
        let kv = MemoryKv::new();
        let q = Queue::new(&kv, "render", cfg()).unwrap();
        let work = Work::Render {
            asset: "a1".into(),
            width: 600,
        };
        q.enqueue("j1", work.clone(), 100).unwrap();
        assert_eq!(
            q.enqueue("j1", work.clone(), 100).unwrap_err().code,
            ErrorCode::Conflict
        );

        let job: Job<Work> = q.claim(100, "w1", 10).unwrap().unwrap();
        assert_eq!((job.payload.clone(), job.attempts), (work.clone(), 1));
        // Leased: nobody else gets it until the lease runs out.
        assert!(q.claim::<Work>(110, "w2", 10).unwrap().is_none());
        assert!(q.claim_id::<Work>("j1", 110, "w2").unwrap().is_none());
        let job = q
            .claim::<Work>(130, "w2", 10)
            .unwrap()
            .expect("lease expired");
        assert_eq!(job.attempts, 2);
        // The first worker lost its lease.
        assert_eq!(
            q.complete::<Work>("j1", "w1", 131).unwrap_err().code,
            ErrorCode::Conflict
        );
        // A failure schedules a retry after the backoff for attempt 2 (4 s).
        assert_eq!(
            q.fail::<Work>("j1", "w2", "boom", 131).unwrap(),
            JobState::Ready { not_before: 135 }
        );
        assert!(q.claim::<Work>(134, "w3", 10).unwrap().is_none());
        let job = q.claim::<Work>(135, "w3", 10).unwrap().unwrap();
        assert_eq!(job.attempts, 3);
        assert!(q.claim_id::<Work>("nope", 135, "w3").unwrap().is_none());
        let state = q.fail::<Work>("j1", "w3", "still broken", 136).unwrap();
        assert_eq!(
            state,
            JobState::Failed {
                at: 136,
                reason: "still broken".into()
            }
        );
        assert!(q.claim::<Work>(10_000, "w4", 10).unwrap().is_none());
        assert_eq!(q.failed(None, 10).unwrap().members, vec!["j1".to_string()]);
        assert_eq!(
            q.get::<Work>("j1").unwrap().last_error.as_deref(),
            Some("still broken")
        );
    }

    #[test]
    fn completed_jobs_leave_the_open_index() {
        let kv = MemoryKv::new();
        let q = Queue::new(&kv, "q", cfg()).unwrap();
        for i in 0..5 {
            q.enqueue(&format!("j{i}"), i, 0).unwrap();
        }
        let mut done = Vec::new();
        while let Some(job) = q.claim::<i32>(0, "w", 100).unwrap() {
            q.complete::<i32>(&job.id, "w", 1).unwrap();
            done.push(job.payload);
        }
        assert_eq!(done, vec![0, 1, 2, 3, 4]);
        assert!(q.open_index().unwrap().all().unwrap().is_empty());
        assert_eq!(q.get::<i32>("j3").unwrap().state, JobState::Done { at: 1 });
    }
}
