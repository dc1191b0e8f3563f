//! The durable key-value store behind both `fermyon:spin/key-value@2.0.0`
//! and `wasi:keyvalue@0.2.0-draft2`: one SQLite file, the same table layout
//! as Spin's default store (`.spin/sqlite_key_value.db`), so data written
//! here is readable by `spin up` and the other way round.
//!
//! Every call is a short synchronous SQLite statement; callers run them on
//! the blocking pool (`run`) so request tasks never stall the reactor.

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The key-value database shared by every component of the app.
#[derive(Clone)]
pub struct KvDb {
    conn: Arc<Mutex<Connection>>,
}

/// Result of a compare-and-swap.
#[derive(Debug, PartialEq, Eq)]
pub enum Swap {
    Done,
    /// The value changed since it was read; carries the current value.
    Changed(Option<Vec<u8>>),
}

impl KvDb {
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open key-value database {}", path.display()))?;
        Self::init(conn).with_context(|| format!("cannot initialise {}", path.display()))
    }

    #[cfg(test)]
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        // WAL: readers don't block the writer; NORMAL sync survives a process
        // crash (the durability `spin up` gives), at a fraction of FULL's cost.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
        )?;
        Ok(KvDb {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on tokio's blocking pool.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| format!("key-value task failed: {e}"))?
        .map_err(|e| format!("key-value database error: {e}"))
    }
}

pub fn get(c: &Connection, store: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .query_row(params![store, key], |r| r.get(0))
        .optional()
}

pub fn set(c: &Connection, store: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![store, key, value])?;
    Ok(())
}

pub fn delete(c: &Connection, store: &str, key: &str) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .execute(params![store, key])?;
    Ok(())
}

pub fn exists(c: &Connection, store: &str, key: &str) -> rusqlite::Result<bool> {
    c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .exists(params![store, key])
}

/// Keys in order, strictly after `after`, at most `limit`.
pub fn keys_after(
    c: &Connection,
    store: &str,
    after: Option<&str>,
    limit: Option<u32>,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT key FROM spin_key_value WHERE store = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
    )?;
    let limit = limit.map(i64::from).unwrap_or(-1);
    stmt.query_map(params![store, after.unwrap_or(""), limit], |r| r.get(0))?
        .collect()
}

/// Atomically adds `delta` to the integer stored at `key` (absent = 0) and
/// returns the new value. Counters are stored as ASCII decimal so that a
/// plain `get` reads them too.
pub fn increment(c: &mut Connection, store: &str, key: &str, delta: i64) -> rusqlite::Result<i64> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = get(&tx, store, key)?;
    let n = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| {
                rusqlite::Error::ToSqlConversionFailure(
                    format!("value at `{key}` is not an integer counter").into(),
                )
            })?,
    };
    let next = n.checked_add(delta).ok_or_else(|| {
        rusqlite::Error::ToSqlConversionFailure(format!("counter `{key}` overflows").into())
    })?;
    set(&tx, store, key, next.to_string().as_bytes())?;
    tx.commit()?;
    Ok(next)
}

/// Writes `value` only if `key` still holds `expected` (`None` = absent).
pub fn compare_and_swap(
    c: &mut Connection,
    store: &str,
    key: &str,
    expected: Option<&[u8]>,
    value: &[u8],
) -> rusqlite::Result<Swap> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = get(&tx, store, key)?;
    if current.as_deref() != expected {
        return Ok(Swap::Changed(current));
    }
    set(&tx, store, key, value)?;
    tx.commit()?;
    Ok(Swap::Done)
}

pub fn set_many(
    c: &mut Connection,
    store: &str,
    entries: &[(String, Vec<u8>)],
) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    for (k, v) in entries {
        set(&tx, store, k, v)?;
    }
    tx.commit()
}

pub fn delete_many(c: &mut Connection, store: &str, keys: &[String]) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    for k in keys {
        delete(&tx, store, k)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_operations_and_store_isolation() {
        let db = KvDb::in_memory().unwrap();
        let mut c = db.conn.lock().unwrap();
        assert_eq!(get(&c, "default", "k").unwrap(), None);
        set(&c, "default", "k", b"v1").unwrap();
        set(&c, "default", "k", b"v2").unwrap();
        assert_eq!(get(&c, "default", "k").unwrap(), Some(b"v2".to_vec()));
        assert_eq!(get(&c, "other", "k").unwrap(), None);
        assert!(exists(&c, "default", "k").unwrap());
        delete(&c, "default", "k").unwrap();
        delete(&c, "default", "k").unwrap();
        assert!(!exists(&c, "default", "k").unwrap());
        set_many(
            &mut c,
            "default",
            &[
                ("a".into(), vec![1]),
                ("b".into(), vec![2]),
                ("c".into(), vec![3]),
            ],
        )
        .unwrap();
        assert_eq!(
            keys_after(&c, "default", None, None).unwrap(),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            keys_after(&c, "default", Some("a"), Some(1)).unwrap(),
            vec!["b"]
        );
        delete_many(&mut c, "default", &["a".into(), "c".into()]).unwrap();
        assert_eq!(keys_after(&c, "default", None, None).unwrap(), vec!["b"]);
    }

    #[test]
    fn increment_and_cas() {
        let db = KvDb::in_memory().unwrap();
        let mut c = db.conn.lock().unwrap();
        assert_eq!(increment(&mut c, "s", "n", 5).unwrap(), 5);
        assert_eq!(increment(&mut c, "s", "n", -2).unwrap(), 3);
        assert_eq!(get(&c, "s", "n").unwrap(), Some(b"3".to_vec()));
        set(&c, "s", "x", b"not a number").unwrap();
        assert!(increment(&mut c, "s", "x", 1).is_err());
        assert_eq!(
            compare_and_swap(&mut c, "s", "k", None, b"a").unwrap(),
            Swap::Done
        );
        assert_eq!(
            compare_and_swap(&mut c, "s", "k", None, b"b").unwrap(),
            Swap::Changed(Some(b"a".to_vec()))
        );
        assert_eq!(
            compare_and_swap(&mut c, "s", "k", Some(b"a"), b"b").unwrap(),
            Swap::Done
        );
        assert_eq!(get(&c, "s", "k").unwrap(), Some(b"b".to_vec()));
    }

    #[test]
    fn data_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("assetgate-kv-{}", std::process::id()));
        let path = dir.join("kv.db");
        {
            let db = KvDb::open(&path).unwrap();
            set(&db.conn.lock().unwrap(), "default", "k", b"v").unwrap();
        }
        let db = KvDb::open(&path).unwrap();
        assert_eq!(
            get(&db.conn.lock().unwrap(), "default", "k").unwrap(),
            Some(b"v".to_vec())
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
