//! The store a component opens, chosen by configuration: the whole store in
//! Redis when the `store_redis_url` variable is set (replicas, SpinKube, the
//! edge), else Spin's key-value store `default`. The edge build (feature
//! `edge`) has only the Redis path, so it imports no `wasi:keyvalue` at all.

use crate::backend::Kv;
use crate::error::Result;
#[cfg(not(feature = "edge"))]
pub use crate::keyvalue::{KeyValueKv, bindings};
pub use crate::redis::RedisKv;

/// The variable naming the Redis that holds the store.
pub const REDIS_URL_VARIABLE: &str = "store_redis_url";

pub enum SpinKv {
    #[cfg(not(feature = "edge"))]
    KeyValue(KeyValueKv),
    Redis(RedisKv),
}

impl SpinKv {
    /// Opens the configured store. A component that does not declare
    /// `store_redis_url` reads it as unset.
    pub fn open_default() -> Result<Self> {
        let url = spin_sdk::variables::get(REDIS_URL_VARIABLE)
            .ok()
            .filter(|u| !u.trim().is_empty());
        match url {
            Some(url) => Ok(SpinKv::Redis(RedisKv::open(url.trim())?)),
            #[cfg(not(feature = "edge"))]
            None => Ok(SpinKv::KeyValue(KeyValueKv::open("default")?)),
            #[cfg(feature = "edge")]
            None => Err(crate::error::StoreError::backend(
                "the edge build keeps its store in Redis: set the store_redis_url variable \
                 (and store_redis_host, which allowed_outbound_hosts lists)",
            )),
        }
    }

    /// `redis` or `key-value`, for status pages and logs.
    pub fn backend_name(&self) -> &'static str {
        match self {
            #[cfg(not(feature = "edge"))]
            SpinKv::KeyValue(_) => "key-value",
            SpinKv::Redis(_) => "redis",
        }
    }

    fn inner(&self) -> &dyn Kv {
        match self {
            #[cfg(not(feature = "edge"))]
            SpinKv::KeyValue(kv) => kv,
            SpinKv::Redis(kv) => kv,
        }
    }
}

impl Kv for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner().get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.inner().set(key, value)
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.inner().delete(key)
    }
    fn exists(&self, key: &str) -> Result<bool> {
        self.inner().exists(key)
    }
    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool> {
        self.inner().compare_and_swap(key, expected, new)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.inner().increment(key, delta)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.inner().get_many(keys)
    }
}
