//! Typed records with optimistic concurrency.
//!
//! A record is stored as `{"version": n, "value": …}`. An update names the
//! version it read; the write is a compare-and-swap against the exact bytes
//! read, so a concurrent update makes it fail with `Conflict` instead of
//! being silently overwritten.

use crate::backend::Kv;
use crate::error::{ErrorCode, Result, StoreError};
use crate::keys;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How many times [`Records::modify`] re-reads and retries on conflict.
const MAX_MODIFY_ATTEMPTS: usize = 64;

/// A record as read: its value and the version to name when updating it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
    raw: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    version: u64,
    value: T,
}

pub struct Records<'a, K: Kv + ?Sized> {
    kv: &'a K,
    kind: &'static str,
}

impl<'a, K: Kv + ?Sized> Records<'a, K> {
    /// `kind` names the record type (e.g. `"commit"`); one namespace each.
    pub fn new(kv: &'a K, kind: &'static str) -> Self {
        Records { kv, kind }
    }

    fn key(&self, id: &str) -> Result<String> {
        keys::check_id("record id", id)?;
        Ok(keys::record(self.kind, id))
    }

    /// The record, or `NotFound`.
    pub fn get<T: DeserializeOwned>(&self, id: &str) -> Result<Versioned<T>> {
        self.try_get(id)?
            .ok_or_else(|| StoreError::not_found(format!("{} `{id}` not found", self.kind)))
    }

    /// The record, or `None` when absent.
    pub fn try_get<T: DeserializeOwned>(&self, id: &str) -> Result<Option<Versioned<T>>> {
        let Some(raw) = self.kv.get(&self.key(id)?)? else {
            return Ok(None);
        };
        let env: Envelope<T> = serde_json::from_slice(&raw)
            .map_err(|e| StoreError::corrupt(format!("{} `{id}`: {e}", self.kind)))?;
        Ok(Some(Versioned {
            version: env.version,
            value: env.value,
            raw,
        }))
    }

    /// Creates the record at version 1; `Conflict` if it already exists.
    pub fn create<T: Serialize>(&self, id: &str, value: &T) -> Result<u64> {
        let bytes = encode(1, value)?;
        if self.kv.compare_and_swap(&self.key(id)?, None, &bytes)? {
            Ok(1)
        } else {
            Err(StoreError::conflict(format!(
                "{} `{id}` already exists",
                self.kind
            )))
        }
    }

    /// Replaces the record read as `current` with `value`; returns the new
    /// version, or `Conflict` if someone else wrote it since.
    pub fn update<T: Serialize>(&self, id: &str, current: &Versioned<T>, value: &T) -> Result<u64> {
        let version = current.version + 1;
        let bytes = encode(version, value)?;
        if self
            .kv
            .compare_and_swap(&self.key(id)?, Some(&current.raw), &bytes)?
        {
            Ok(version)
        } else {
            Err(StoreError::conflict(format!(
                "{} `{id}` changed since version {}",
                self.kind, current.version
            )))
        }
    }

    /// Read-modify-write with retries: `f` gets the current value and may
    /// change it; it runs again on a fresh read after a conflict. Returns
    /// what `f` returned for the attempt that was written.
    pub fn modify<T, R>(&self, id: &str, mut f: impl FnMut(&mut T) -> Result<R>) -> Result<R>
    where
        T: Serialize + DeserializeOwned,
    {
        for _ in 0..MAX_MODIFY_ATTEMPTS {
            let current: Versioned<T> = self.get(id)?;
            let mut value: T = serde_json::from_slice::<Envelope<T>>(&current.raw)
                .map_err(|e| StoreError::corrupt(e.to_string()))?
                .value;
            let out = f(&mut value)?;
            match self.update(id, &current, &value) {
                Ok(_) => return Ok(out),
                Err(e) if e.code == ErrorCode::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::conflict(format!(
            "{} `{id}`: too much contention",
            self.kind
        )))
    }

    /// Deletes the record (absent is fine).
    pub fn delete(&self, id: &str) -> Result<()> {
        self.kv.delete(&self.key(id)?)
    }
}

fn encode<T: Serialize>(version: u64, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(&Envelope { version, value })
        .map_err(|e| StoreError::invalid(format!("cannot encode record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryKv;
    use proptest::prelude::*;
    use std::sync::Arc;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Counter {
        n: u64,
        log: Vec<u32>,
    }

    #[test]
    fn create_get_update_conflict() {
        let kv = MemoryKv::new();
        let r = Records::new(&kv, "counter");
        assert_eq!(r.get::<Counter>("a").unwrap_err().code, ErrorCode::NotFound);
        r.create("a", &Counter { n: 0, log: vec![] }).unwrap();
        assert_eq!(
            r.create("a", &Counter { n: 9, log: vec![] })
                .unwrap_err()
                .code,
            ErrorCode::Conflict
        );
        let v1: Versioned<Counter> = r.get("a").unwrap();
        let v1b = v1.clone();
        assert_eq!(
            r.update("a", &v1, &Counter { n: 1, log: vec![] }).unwrap(),
            2
        );
        // The stale reader loses instead of overwriting.
        assert_eq!(
            r.update("a", &v1b, &Counter { n: 7, log: vec![] })
                .unwrap_err()
                .code,
            ErrorCode::Conflict
        );
        assert_eq!(r.get::<Counter>("a").unwrap().value.n, 1);
        assert_eq!(
            r.get::<Counter>("a/../b").unwrap_err().code,
            ErrorCode::Invalid
        );
        kv.set(&keys::record("counter", "bad"), b"{not json")
            .unwrap();
        assert_eq!(
            r.get::<Counter>("bad").unwrap_err().code,
            ErrorCode::Corrupt
        );
        r.delete("a").unwrap();
        assert!(r.try_get::<Counter>("a").unwrap().is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn interleaved_updates_never_lose_a_write(threads in 2usize..6, per_thread in 1usize..30) {
            let kv = Arc::new(MemoryKv::new());
            Records::new(&*kv, "counter").create("c", &Counter { n: 0, log: vec![] }).unwrap();
            let conflicts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let handles: Vec<_> = (0..threads).map(|t| {
                let (kv, conflicts) = (kv.clone(), conflicts.clone());
                std::thread::spawn(move || {
                    let r = Records::new(&*kv, "counter");
                    for i in 0..per_thread {
                        // Half the writers use the raw update and retry by
                        // hand, counting the conflicts they see.
                        if t % 2 == 0 {
                            r.modify("c", |c: &mut Counter| { c.n += 1; c.log.push((t * 1000 + i) as u32); Ok(()) }).unwrap();
                        } else {
                            loop {
                                let cur: Versioned<Counter> = r.get("c").unwrap();
                                let mut next = cur.value.clone();
                                next.n += 1;
                                next.log.push((t * 1000 + i) as u32);
                                match r.update("c", &cur, &next) {
                                    Ok(_) => break,
                                    Err(e) => { assert_eq!(e.code, ErrorCode::Conflict); conflicts.fetch_add(1, std::sync::atomic::Ordering::SeqCst); }
                                }
                            }
                        }
                    }
                })
            }).collect();
            for h in handles { h.join().unwrap(); }
            let fin: Versioned<Counter> = Records::new(&*kv, "counter").get("c").unwrap();
            prop_assert_eq!(fin.value.n as usize, threads * per_thread);
            prop_assert_eq!(fin.version as usize, threads * per_thread + 1);
            let mut log = fin.value.log.clone();
            log.sort();
            let mut expected: Vec<u32> = (0..threads).flat_map(|t| (0..per_thread).map(move |i| (t * 1000 + i) as u32)).collect();
            expected.sort();
            prop_assert_eq!(log, expected);
        }
    }
}
