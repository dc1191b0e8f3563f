//! The key-value backend: `wasi:keyvalue@0.2.0-draft2` (store, atomics,
//! batch), which Spin links next to `fermyon:spin/key-value@2.0.0` over the
//! same stores. Bound with `wit-bindgen` from the WIT in `wit/`. Correct on
//! Spin's SQLite store (the default); not on a Redis-backed one, whose
//! atomics are broken, nor on the edge, which has none (see `redis.rs`).

use crate::backend::Kv;
use crate::error::{Result, StoreError};

/// The raw `wasi:keyvalue` bindings, for components that need them directly
/// (binding the same world twice in one component breaks the link).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "assetgate:platform/keyvalue-atomics",
        generate_all,
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// A key-value store opened by label (`default` unless configured).
pub struct KeyValueKv {
    bucket: store::Bucket,
}

fn backend(e: store::Error) -> StoreError {
    StoreError::backend(match e {
        store::Error::NoSuchStore => "no such key-value store".to_string(),
        store::Error::AccessDenied => {
            "access to the key-value store denied (key_value_stores in spin.toml)".to_string()
        }
        store::Error::Other(m) => m,
    })
}

impl KeyValueKv {
    pub fn open(label: &str) -> Result<Self> {
        Ok(KeyValueKv {
            bucket: store::open(label).map_err(backend)?,
        })
    }
}

impl Kv for KeyValueKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.bucket.get(key).map_err(backend)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.bucket.set(key, value).map_err(backend)
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.bucket.delete(key).map_err(backend)
    }
    fn exists(&self, key: &str) -> Result<bool> {
        self.bucket.exists(key).map_err(backend)
    }
    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool> {
        let cas = atomics::Cas::new(&self.bucket, key).map_err(backend)?;
        if cas.current().map_err(backend)?.as_deref() != expected {
            return Ok(false);
        }
        match atomics::swap(cas, new) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(backend(e)),
        }
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        atomics::increment(&self.bucket, key, delta).map_err(backend)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let found = batch::get_many(&self.bucket, keys).map_err(backend)?;
        // The interface does not promise order; answer in the caller's.
        let mut by_key: std::collections::HashMap<String, Option<Vec<u8>>> =
            found.into_iter().collect();
        Ok(keys.iter().map(|k| by_key.remove(k).flatten()).collect())
    }
}
