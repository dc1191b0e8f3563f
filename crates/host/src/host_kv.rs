//! `fermyon:spin/key-value@2.0.0`, `wasi:keyvalue@0.2.0-draft2` (store,
//! atomics, batch) and `fermyon:spin/variables@2.0.0` for the guest. Both
//! key-value interfaces see the same data: a bucket opened as `default` is
//! the Spin store labelled `default`, whichever backend the label has
//! (`kv.rs`). Atomics exist only on SQLite-backed labels.

use crate::bindings::fermyon::spin::{key_value, variables};
use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::kv::{self, KvDb, Swap};
use crate::state::RequestState;
use wasmtime::Result;
use wasmtime::component::Resource;

/// An open Spin store.
pub struct SpinStore(kv::Store);
/// An open `wasi:keyvalue` bucket.
pub struct Bucket(kv::Store);
/// A compare-and-swap handle: the value as it was read.
pub struct Cas {
    db: KvDb,
    store: String,
    key: String,
    seen: Option<Vec<u8>>,
}

impl RequestState {
    /// The store behind `label`, if this component may open it. Cloned, so
    /// no borrow of `self` (which is not `Sync`) is held across an await.
    fn store(&self, label: &str) -> Option<kv::Store> {
        if !self.component.stores.contains(label) {
            return None;
        }
        // Every label a component lists was checked at start-up.
        self.kv.get(label).cloned()
    }
}

// ---- fermyon:spin/key-value -------------------------------------------------

impl key_value::Host for RequestState {}

impl key_value::HostStore for RequestState {
    async fn open(
        &mut self,
        label: String,
    ) -> Result<Result<Resource<SpinStore>, key_value::Error>> {
        let Some(store) = self.store(&label) else {
            return Ok(Err(key_value::Error::AccessDenied));
        };
        if let Err(e) = store.opened().await {
            return Ok(Err(key_value::Error::Other(e)));
        }
        Ok(Ok(self.table.push(SpinStore(store))?))
    }

    async fn get(
        &mut self,
        s: Resource<SpinStore>,
        key: String,
    ) -> Result<Result<Option<Vec<u8>>, key_value::Error>> {
        let store = self.table.get(&s)?.0.clone();
        Ok(store.get(key).await.map_err(key_value::Error::Other))
    }

    async fn set(
        &mut self,
        s: Resource<SpinStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<Result<(), key_value::Error>> {
        let store = self.table.get(&s)?.0.clone();
        Ok(store.set(key, value).await.map_err(key_value::Error::Other))
    }

    async fn delete(
        &mut self,
        s: Resource<SpinStore>,
        key: String,
    ) -> Result<Result<(), key_value::Error>> {
        let store = self.table.get(&s)?.0.clone();
        Ok(store.delete(key).await.map_err(key_value::Error::Other))
    }

    async fn exists(
        &mut self,
        s: Resource<SpinStore>,
        key: String,
    ) -> Result<Result<bool, key_value::Error>> {
        let store = self.table.get(&s)?.0.clone();
        Ok(store.exists(key).await.map_err(key_value::Error::Other))
    }

    async fn get_keys(
        &mut self,
        s: Resource<SpinStore>,
    ) -> Result<Result<Vec<String>, key_value::Error>> {
        let store = self.table.get(&s)?.0.clone();
        Ok(store.keys().await.map_err(key_value::Error::Other))
    }

    async fn drop(&mut self, s: Resource<SpinStore>) -> Result<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

// ---- wasi:keyvalue/store ----------------------------------------------------

impl store::Host for RequestState {
    async fn open(&mut self, identifier: String) -> Result<Result<Resource<Bucket>, store::Error>> {
        let Some(bucket) = self.store(&identifier) else {
            return Ok(Err(store::Error::AccessDenied));
        };
        if let Err(e) = bucket.opened().await {
            return Ok(Err(store::Error::Other(e)));
        }
        Ok(Ok(self.table.push(Bucket(bucket))?))
    }
}

impl store::HostBucket for RequestState {
    async fn get(
        &mut self,
        b: Resource<Bucket>,
        key: String,
    ) -> Result<Result<Option<Vec<u8>>, store::Error>> {
        let store = self.table.get(&b)?.0.clone();
        Ok(store.get(key).await.map_err(store::Error::Other))
    }

    async fn set(
        &mut self,
        b: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<Result<(), store::Error>> {
        let store = self.table.get(&b)?.0.clone();
        Ok(store.set(key, value).await.map_err(store::Error::Other))
    }

    async fn delete(
        &mut self,
        b: Resource<Bucket>,
        key: String,
    ) -> Result<Result<(), store::Error>> {
        let store = self.table.get(&b)?.0.clone();
        Ok(store.delete(key).await.map_err(store::Error::Other))
    }

    async fn exists(
        &mut self,
        b: Resource<Bucket>,
        key: String,
    ) -> Result<Result<bool, store::Error>> {
        let store = self.table.get(&b)?.0.clone();
        Ok(store.exists(key).await.map_err(store::Error::Other))
    }

    async fn list_keys(
        &mut self,
        b: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<Result<store::KeyResponse, store::Error>> {
        let store = self.table.get(&b)?.0.clone();
        Ok(store
            .list_keys(cursor)
            .await
            .map(|(keys, cursor)| store::KeyResponse { keys, cursor })
            .map_err(store::Error::Other))
    }

    async fn drop(&mut self, b: Resource<Bucket>) -> Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

// ---- wasi:keyvalue/atomics --------------------------------------------------

impl atomics::Host for RequestState {
    async fn increment(
        &mut self,
        b: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Result<Result<i64, store::Error>> {
        let store = self.table.get(&b)?.0.clone();
        let db = match store.atomics_db() {
            Ok(db) => db.clone(),
            Err(why) => return Ok(Err(store::Error::Other(why))),
        };
        let label = store.label().to_string();
        Ok(db
            .run(move |c| kv::increment(c, &label, &key, delta))
            .await
            .map_err(store::Error::Other))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> Result<Result<(), atomics::CasError>> {
        let Cas {
            db,
            store,
            key,
            seen,
        } = self.table.delete(cas)?;
        let (s, k) = (store.clone(), key.clone());
        let outcome = db
            .run(move |c| kv::compare_and_swap(c, &s, &k, seen.as_deref(), &value))
            .await;
        Ok(match outcome {
            Ok(Swap::Done) => Ok(()),
            Ok(Swap::Changed(current)) => {
                let fresh = self.table.push(Cas {
                    db,
                    store,
                    key,
                    seen: current,
                })?;
                Err(atomics::CasError::CasFailed(fresh))
            }
            Err(e) => Err(atomics::CasError::StoreError(store::Error::Other(e))),
        })
    }
}

impl atomics::HostCas for RequestState {
    async fn new(
        &mut self,
        b: Resource<Bucket>,
        key: String,
    ) -> Result<Result<Resource<Cas>, store::Error>> {
        let store = self.table.get(&b)?.0.clone();
        let db = match store.atomics_db() {
            Ok(db) => db.clone(),
            Err(why) => return Ok(Err(store::Error::Other(why))),
        };
        let label = store.label().to_string();
        let (l, k) = (label.clone(), key.clone());
        match db.read(move |c| kv::get(c, &l, &k)).await {
            Ok(seen) => Ok(Ok(self.table.push(Cas {
                db,
                store: label,
                key,
                seen,
            })?)),
            Err(e) => Ok(Err(store::Error::Other(e))),
        }
    }

    async fn current(
        &mut self,
        cas: Resource<Cas>,
    ) -> Result<Result<Option<Vec<u8>>, store::Error>> {
        Ok(Ok(self.table.get(&cas)?.seen.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

// ---- wasi:keyvalue/batch ----------------------------------------------------

impl batch::Host for RequestState {
    async fn get_many(
        &mut self,
        b: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Result<Vec<(String, Option<Vec<u8>>)>, store::Error>> {
        let store = self.table.get(&b)?.0.clone();
        Ok(store.get_many(keys).await.map_err(store::Error::Other))
    }

    async fn set_many(
        &mut self,
        b: Resource<Bucket>,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Result<Result<(), store::Error>> {
        let store = self.table.get(&b)?.0.clone();
        Ok(store.set_many(entries).await.map_err(store::Error::Other))
    }

    async fn delete_many(
        &mut self,
        b: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Result<(), store::Error>> {
        let store = self.table.get(&b)?.0.clone();
        Ok(store.delete_many(keys).await.map_err(store::Error::Other))
    }
}

// ---- fermyon:spin/variables -------------------------------------------------

impl variables::Host for RequestState {
    async fn get(&mut self, name: String) -> Result<Result<String, variables::Error>> {
        // As Spin: the name is validated before the lookup, so a malformed
        // name is `invalid-name` even where no such variable exists.
        if let Err(reason) = crate::variables::validate_name(&name) {
            return Ok(Err(variables::Error::InvalidName(reason)));
        }
        Ok(match self.component.variables.get(&name) {
            Some(v) => Ok(v.clone()),
            None => Err(variables::Error::Undefined(format!(
                "no variable for {:?}.{name:?}",
                self.component.id
            ))),
        })
    }
}
