//! The raw key-value capability every higher-level store is built on.
//!
//! Backends: [`crate::MemoryKv`] (native tests) and, inside components,
//! `SpinKv` (`wasi:keyvalue@0.2.0-draft2`, which Spin serves from the same
//! stores as `fermyon:spin/key-value`). A new backend is one new file that
//! implements [`Kv`].

use crate::error::Result;

/// Raw key-value access. Keys are built only by [`crate::keys`].
///
/// Responsibilities: a backend stores bytes faithfully and makes
/// `compare_and_swap` and `increment` atomic with respect to every other
/// operation on the same key. It does not interpret values, except that
/// `increment` treats the value as a counter it alone writes.
pub trait Kv {
    /// The value at `key`, or `None` when absent (absence is not an error).
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Writes `value`, replacing any previous one.
    fn set(&self, key: &str, value: &[u8]) -> Result<()>;
    /// Removes `key`; removing an absent key succeeds.
    fn delete(&self, key: &str) -> Result<()>;
    fn exists(&self, key: &str) -> Result<bool>;
    /// Writes `new` only if the value still equals `expected` (`None`: the
    /// key must be absent). Returns `false`, writing nothing, when it does
    /// not; errors are reserved for backend failures.
    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool>;
    /// Atomically adds `delta` to the counter at `key` (absent = 0) and
    /// returns the new value.
    fn increment(&self, key: &str, delta: i64) -> Result<i64>;

    /// Several gets at once; backends with a batch call override it.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }
}

impl<T: Kv + ?Sized> Kv for &T {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        (**self).set(key, value)
    }
    fn delete(&self, key: &str) -> Result<()> {
        (**self).delete(key)
    }
    fn exists(&self, key: &str) -> Result<bool> {
        (**self).exists(key)
    }
    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool> {
        (**self).compare_and_swap(key, expected, new)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        (**self).increment(key, delta)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        (**self).get_many(keys)
    }
}
