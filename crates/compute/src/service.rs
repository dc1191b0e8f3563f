//! State behind the API: registrations (one journal per registered
//! client), accepted jobs in a durable queue, the in-flight count that
//! backs 429, and journal reads.

use crate::clients::{Client, Clients};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::request::ProcessRequest;
use assetgate_store::{
    BlobConfig, ErrorCode, Index, Journal, Kv, Queue, QueueConfig, Records, Result,
};
use assetgate_web::secret;
use serde::{Deserialize, Serialize};

const REGISTRATION: &str = "compute-registration";
/// Where earlier versions kept one shared read position per journal for
/// `latest=true`; positions now travel in the consumers' links. Only
/// deleted, with its journal.
const LEGACY_READ_MARK: &str = "compute-read-mark";
const QUEUE: &str = "compute";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// Random id: the journal's URL and store name.
    pub journal: String,
    pub created_at: u64,
}

/// What the queue keeps for one `/process` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPayload {
    pub client: String,
    pub journal: String,
    pub request_id: String,
    pub request: ProcessRequest,
}

pub struct Service<'a, K: Kv + ?Sized> {
    pub kv: &'a K,
    pub cfg: Config,
    pub clients: Clients,
    pub blobs: BlobConfig,
}

impl<'a, K: Kv + ?Sized> Service<'a, K> {
    pub fn new(kv: &'a K, cfg: Config, clients: Clients, blobs: BlobConfig) -> Self {
        Service {
            kv,
            cfg,
            clients,
            blobs,
        }
    }

    fn registrations(&self) -> Records<'a, K> {
        Records::new(self.kv, REGISTRATION)
    }

    pub fn queue(&self) -> Result<Queue<'a, K>> {
        Queue::new(
            self.kv,
            QUEUE,
            QueueConfig {
                lease_secs: self.cfg.lease_secs,
                max_attempts: self.cfg.max_attempts,
                ..QueueConfig::default()
            },
        )
    }

    /// Jobs of `client` not finished yet.
    pub fn in_flight(&self, client: &str) -> Result<Index<'a, K>> {
        Index::new(self.kv, &format!("compute.inflight.{client}"))
    }

    pub fn journal(&self, id: &str) -> Result<Journal<'a, K>> {
        Journal::new(self.kv, &format!("compute.{id}"))
    }

    pub fn registration(&self, client: &str) -> Result<Option<Registration>> {
        Ok(self.registrations().try_get(client)?.map(|v| v.value))
    }

    /// Idempotent: the existing registration, else a new one.
    pub fn register(&self, client: &Client, now: u64) -> Result<Registration> {
        if let Some(r) = self.registration(&client.name)? {
            return Ok(r);
        }
        let fresh = Registration {
            journal: secret::random_hex(16),
            created_at: now,
        };
        match self.registrations().create(&client.name, &fresh) {
            Ok(_) => Ok(fresh),
            // A concurrent register won: use its journal.
            Err(e) if e.code == ErrorCode::Conflict => self
                .registration(&client.name)?
                .ok_or_else(|| assetgate_store::StoreError::backend("registration vanished")),
            Err(e) => Err(e),
        }
    }

    /// Removes the registration and its journal; 404 when not registered.
    pub fn unregister(&self, client: &Client) -> ApiResult<()> {
        let reg = self
            .registration(&client.name)?
            .ok_or_else(|| ApiError::new(404, "this client is not registered"))?;
        self.registrations().delete(&client.name)?;
        self.journal(&reg.journal)?.remove()?;
        Records::new(self.kv, LEGACY_READ_MARK).delete(&reg.journal)?;
        Ok(())
    }

    /// Persists a job for `req`; answers its id. 404 when the client is not
    /// registered, 429 when it has too many jobs in flight. Whether the
    /// source can be read (an `asset:` id still in the store, a URL that
    /// answers) is for the job to find out, one event per rendition.
    pub fn accept(
        &self,
        client: &Client,
        request_id: &str,
        req: ProcessRequest,
        now: u64,
    ) -> ApiResult<String> {
        let reg = self.registration(&client.name)?.ok_or_else(|| {
            ApiError::new(404, "this client is not registered: call /register first")
        })?;
        let limit = client.max_in_flight.unwrap_or(self.cfg.max_in_flight);
        let job_id = secret::uuid_v4();
        let in_flight = self.in_flight(&client.name)?;
        // Add first, then count: two racing requests may both be refused,
        // never both admitted over the limit.
        in_flight.add(&job_id)?;
        if in_flight.all()?.len() > limit {
            in_flight.remove(&job_id)?;
            return Err(ApiError::new(
                429,
                format!("{limit} jobs already in flight for this client"),
            ));
        }
        let payload = JobPayload {
            client: client.name.clone(),
            journal: reg.journal,
            request_id: request_id.to_string(),
            request: req,
        };
        if let Err(e) = self.queue()?.enqueue(&job_id, payload, now) {
            in_flight.remove(&job_id)?;
            return Err(e.into());
        }
        Ok(job_id)
    }
}
