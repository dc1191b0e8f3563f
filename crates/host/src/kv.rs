//! The key-value stores behind both `fermyon:spin/key-value@2.0.0` and
//! `wasi:keyvalue@0.2.0-draft2`, one per store label: a SQLite file with the
//! same table layout as Spin's default store (`.spin/sqlite_key_value.db`),
//! so data written here is readable by `spin up` and the other way round;
//! or, from the runtime config, a Redis database used as Spin's
//! `key-value-redis` uses it (keys stored as given, no prefix).
//!
//! Every SQLite call is a short synchronous statement; callers run them on
//! the blocking pool (`run`) so request tasks never stall the reactor.

use crate::resp::{self, Cmd, Value};
use crate::runtime_config::KvBackend;
use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The key-value database shared by every component of the app.
#[derive(Clone)]
pub struct KvDb {
    conn: Arc<Mutex<Connection>>,
}

/// How often the checkpoint thread copies the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

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
        let db =
            Self::init(conn).with_context(|| format!("cannot initialise {}", path.display()))?;
        db.checkpoint_in_background(path)?;
        Ok(db)
    }

    /// Copies the WAL into the database from a connection and a thread of
    /// their own: a checkpoint syncs the disk, and run by the writer (SQLite's
    /// autocheckpoint) it held the connection's lock meanwhile, stalling every
    /// request's reads and writes (a 1 GiB upload, disk-bound, took 10% longer).
    /// A passive checkpoint never blocks the writer. The writer's own
    /// autocheckpoint stays as a bound (256 MiB of WAL) in case this one
    /// falls behind.
    fn checkpoint_in_background(&self, path: &Path) -> Result<()> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open key-value database {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let alive = Arc::downgrade(&self.conn);
        std::thread::Builder::new()
            .name("kv-checkpoint".into())
            .spawn(move || {
                while alive.strong_count() > 0 {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "key-value checkpoint failed");
                    }
                }
            })
            .context("cannot start the key-value checkpoint thread")?;
        Ok(())
    }

    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        // WAL: readers don't block the writer; NORMAL sync survives a process
        // crash (the durability `spin up` gives), at a fraction of FULL's cost.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // SQLite's 4 MiB autocheckpoint synced under the connection's lock
        // every four 1 MiB blob chunks; files get a checkpoint thread
        // (`checkpoint_in_background`), this is the bound behind it.
        conn.pragma_update(None, "wal_autocheckpoint", 65536)?;
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

    /// A read: run in place when the connection is free (a small read is a
    /// few microseconds, less than the two thread hand-offs of the blocking
    /// pool, which were a fifth of the host's CPU in a 304 revalidation),
    /// else on the blocking pool like every write, so a request never
    /// waits on the lock in the reactor.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let f = match self.conn.try_lock() {
            Ok(mut guard) => {
                return f(&mut guard).map_err(|e| format!("key-value database error: {e}"));
            }
            Err(_) => f,
        };
        self.run(f).await
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

/// Page size of `wasi:keyvalue` `list-keys` on SQLite; the cursor is the
/// last key returned.
const LIST_PAGE: u32 = 1000;

/// Every store label the app may use, with its backend.
#[derive(Clone)]
pub struct KvStores(Arc<BTreeMap<String, Store>>);

impl KvStores {
    /// Opens the SQLite files (a file named by several labels is opened
    /// once) and prepares the Redis pools; Redis is first reached when a
    /// guest opens the store, as in Spin.
    pub fn open(config: &BTreeMap<String, KvBackend>) -> Result<KvStores> {
        let mut files: HashMap<PathBuf, KvDb> = HashMap::new();
        let mut stores = BTreeMap::new();
        for (label, backend) in config {
            let backend = match backend {
                KvBackend::Sqlite(Some(path)) => match files.get(path) {
                    Some(db) => Backend::Sqlite(db.clone()),
                    None => {
                        let db = KvDb::open(path)
                            .with_context(|| format!("key-value store `{label}`"))?;
                        files.insert(path.clone(), db.clone());
                        Backend::Sqlite(db)
                    }
                },
                KvBackend::Sqlite(None) => Backend::Sqlite(KvDb::in_memory()?),
                KvBackend::Redis(address) => Backend::Redis(Arc::new(RedisKv {
                    pool: resp::Pool::new(address.clone()),
                    warned: AtomicBool::new(false),
                })),
            };
            let store = Store {
                label: label.clone(),
                backend,
            };
            stores.insert(label.clone(), store);
        }
        Ok(KvStores(Arc::new(stores)))
    }

    pub fn get(&self, label: &str) -> Option<&Store> {
        self.0.get(label)
    }
}

/// One store label and where its data lives; what a guest's open store or
/// bucket holds.
#[derive(Clone)]
pub struct Store {
    label: String,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(KvDb),
    Redis(Arc<RedisKv>),
}

struct RedisKv {
    pool: resp::Pool,
    /// The atomics refusal is logged once per label, not per request.
    warned: AtomicBool,
}

/// Why a Redis-backed label has no `wasi:keyvalue/atomics`.
fn atomics_refusal(label: &str) -> String {
    format!(
        "wasi:keyvalue/atomics is not offered on Redis-backed store `{label}`: Spin's Redis \
         compare-and-swap (crates/key-value-redis) ends every swap with `UNWATCH <key>`, which \
         Redis rejects, so a successful swap is reported as failed (and an aborted EXEC as \
         success); assetgate keeps coordination in Redis through fermyon:spin/redis instead \
         — set store_redis_url"
    )
}

/// How Spin's `key-value-redis` reports a Redis failure (`log_error`).
fn redis_error(label: &str, e: resp::Error) -> String {
    let text = e.spin_text();
    tracing::warn!(store = %label, "key-value error: {text}");
    text
}

fn unexpected(command: &str, v: &Value) -> String {
    format!("unexpected Redis reply to {command}: {v:?}")
}

/// Spin's limit on a buffered result, with Spin's message.
fn within_limit(size: usize) -> Result<(), String> {
    if size > resp::MAX_REPLY_BYTES {
        return Err(format!(
            "query result exceeds limit of {} bytes",
            resp::MAX_REPLY_BYTES
        ));
    }
    Ok(())
}

impl Store {
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The SQLite database for atomics; a Redis-backed label refuses them.
    pub fn atomics_db(&self) -> Result<&KvDb, String> {
        match &self.backend {
            Backend::Sqlite(db) => Ok(db),
            Backend::Redis(r) => {
                let why = atomics_refusal(&self.label);
                if !r.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(store = %self.label, "{why}");
                }
                Err(why)
            }
        }
    }

    /// Called when a guest opens the store: Redis must be reachable the
    /// first time (Spin connects then).
    pub async fn opened(&self) -> Result<(), String> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Redis(r) => r
                .pool
                .ensure_reached()
                .await
                .map_err(|e| redis_error(&self.label, e)),
        }
    }

    async fn redis(&self, r: &RedisKv, cmd: Cmd) -> Result<Value, String> {
        r.pool
            .query(&cmd)
            .await
            .map_err(|e| redis_error(&self.label, e))
    }

    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, String> {
        let label = self.label.clone();
        match &self.backend {
            Backend::Sqlite(db) => db.read(move |c| get(c, &label, &key)).await,
            Backend::Redis(r) => match self.redis(r, Cmd::new("GET").arg(&key)).await? {
                Value::Nil => Ok(None),
                Value::Bulk(v) => {
                    within_limit(std::mem::size_of::<Option<Vec<u8>>>() + v.len())?;
                    Ok(Some(v))
                }
                v => Err(unexpected("GET", &v)),
            },
        }
    }

    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), String> {
        let label = self.label.clone();
        match &self.backend {
            Backend::Sqlite(db) => db.run(move |c| set(c, &label, &key, &value)).await,
            Backend::Redis(r) => {
                self.redis(r, Cmd::new("SET").arg(&key).arg(&value)).await?;
                Ok(())
            }
        }
    }

    pub async fn delete(&self, key: String) -> Result<(), String> {
        let label = self.label.clone();
        match &self.backend {
            Backend::Sqlite(db) => db.run(move |c| delete(c, &label, &key)).await,
            Backend::Redis(r) => {
                self.redis(r, Cmd::new("DEL").arg(&key)).await?;
                Ok(())
            }
        }
    }

    pub async fn exists(&self, key: String) -> Result<bool, String> {
        let label = self.label.clone();
        match &self.backend {
            Backend::Sqlite(db) => db.read(move |c| exists(c, &label, &key)).await,
            Backend::Redis(r) => match self.redis(r, Cmd::new("EXISTS").arg(&key)).await? {
                Value::Int(n) => Ok(n != 0),
                v => Err(unexpected("EXISTS", &v)),
            },
        }
    }

    /// Every key (`fermyon:spin/key-value` `get-keys`).
    pub async fn keys(&self) -> Result<Vec<String>, String> {
        let label = self.label.clone();
        match &self.backend {
            Backend::Sqlite(db) => db.run(move |c| keys_after(c, &label, None, None)).await,
            Backend::Redis(r) => self.redis_keys(r).await,
        }
    }

    /// `wasi:keyvalue` `list-keys`: SQLite pages through the keys; Redis
    /// answers with all of them at once and, as Spin, takes no cursor.
    pub async fn list_keys(
        &self,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), String> {
        let label = self.label.clone();
        match &self.backend {
            Backend::Sqlite(db) => {
                let keys = db
                    .read(move |c| keys_after(c, &label, cursor.as_deref(), Some(LIST_PAGE)))
                    .await?;
                let next = (keys.len() == LIST_PAGE as usize).then(|| keys[keys.len() - 1].clone());
                Ok((keys, next))
            }
            Backend::Redis(_) if cursor.is_some() => {
                Err("list_keys: cursor not supported".to_owned())
            }
            Backend::Redis(r) => Ok((self.redis_keys(r).await?, None)),
        }
    }

    async fn redis_keys(&self, r: &RedisKv) -> Result<Vec<String>, String> {
        let Value::Array(items) = self.redis(r, Cmd::new("KEYS").arg("*")).await? else {
            return Err("unexpected Redis reply to KEYS".into());
        };
        let keys = items
            .into_iter()
            .map(|v| match v {
                Value::Bulk(b) => String::from_utf8(b)
                    .map_err(|_| format!("store `{}` holds a key that is not UTF-8", self.label)),
                v => Err(unexpected("KEYS", &v)),
            })
            .collect::<Result<Vec<String>, String>>()?;
        let size: usize = keys
            .iter()
            .map(|k| std::mem::size_of::<String>() + k.len())
            .sum();
        within_limit(std::mem::size_of::<Vec<String>>() + size)?;
        Ok(keys)
    }

    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, String> {
        let label = self.label.clone();
        match &self.backend {
            // Many values may be large: on the pool, like writes.
            Backend::Sqlite(db) => {
                db.run(move |c| {
                    keys.into_iter()
                        .map(|k| get(c, &label, &k).map(|v| (k, v)))
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .await
            }
            Backend::Redis(_) if keys.is_empty() => Ok(Vec::new()),
            Backend::Redis(r) => {
                let reply = self.redis(r, Cmd::new("MGET").args(&keys)).await?;
                let Value::Array(values) = reply else {
                    return Err(unexpected("MGET", &reply));
                };
                if values.len() != keys.len() {
                    return Err("Redis answered MGET with the wrong number of values".into());
                }
                let mut size = std::mem::size_of::<Vec<(String, Option<Vec<u8>>)>>();
                let pairs = keys
                    .into_iter()
                    .zip(values)
                    .map(|(k, v)| {
                        let v = match v {
                            Value::Nil => None,
                            Value::Bulk(b) => Some(b),
                            v => return Err(unexpected("MGET", &v)),
                        };
                        size += std::mem::size_of::<(String, Option<Vec<u8>>)>()
                            + k.len()
                            + v.as_ref().map_or(0, Vec::len);
                        Ok((k, v))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                within_limit(size)?;
                Ok(pairs)
            }
        }
    }

    pub async fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        let label = self.label.clone();
        match &self.backend {
            Backend::Sqlite(db) => db.run(move |c| set_many(c, &label, &entries)).await,
            Backend::Redis(_) if entries.is_empty() => Ok(()),
            Backend::Redis(r) => {
                let mut cmd = Cmd::new("MSET");
                for (k, v) in &entries {
                    cmd = cmd.arg(k).arg(v);
                }
                self.redis(r, cmd).await?;
                Ok(())
            }
        }
    }

    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), String> {
        let label = self.label.clone();
        match &self.backend {
            Backend::Sqlite(db) => db.run(move |c| delete_many(c, &label, &keys)).await,
            Backend::Redis(_) if keys.is_empty() => Ok(()),
            Backend::Redis(r) => {
                self.redis(r, Cmd::new("DEL").args(&keys)).await?;
                Ok(())
            }
        }
    }
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

    fn stores(config: &[(&str, KvBackend)]) -> KvStores {
        let config = config
            .iter()
            .map(|(l, b)| (l.to_string(), b.clone()))
            .collect();
        KvStores::open(&config).unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_redis_label_keeps_keys_as_given() {
        let server = crate::resp::test_server::RedisServer::start();
        let kv = stores(&[
            ("cache", KvBackend::Redis(server.address())),
            ("local", KvBackend::Sqlite(None)),
        ]);
        let cache = kv.get("cache").unwrap();
        cache.opened().await.unwrap();
        let binary = b"\0x\r\ny".to_vec();
        cache.set("a".into(), binary.clone()).await.unwrap();
        cache.set("b".into(), b"2".to_vec()).await.unwrap();
        assert_eq!(cache.get("a".into()).await.unwrap(), Some(binary.clone()));
        assert_eq!(cache.get("zz".into()).await.unwrap(), None);
        assert!(cache.exists("b".into()).await.unwrap());
        assert!(!cache.exists("zz".into()).await.unwrap());
        let mut keys = cache.keys().await.unwrap();
        keys.sort();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(
            cache
                .get_many(vec!["b".into(), "zz".into(), "a".into()])
                .await
                .unwrap(),
            vec![
                ("b".to_string(), Some(b"2".to_vec())),
                ("zz".to_string(), None),
                ("a".to_string(), Some(binary)),
            ]
        );
        assert_eq!(cache.get_many(vec![]).await.unwrap(), vec![]);
        cache
            .set_many(vec![
                ("c".into(), b"3".to_vec()),
                ("d".into(), b"4".to_vec()),
            ])
            .await
            .unwrap();
        cache.delete("a".into()).await.unwrap();
        cache.delete("a".into()).await.unwrap();
        cache
            .delete_many(vec!["b".into(), "c".into()])
            .await
            .unwrap();
        cache.delete_many(vec![]).await.unwrap();
        assert_eq!(
            cache.list_keys(None).await.unwrap(),
            (vec!["d".to_string()], None)
        );
        assert_eq!(
            cache.list_keys(Some("d".into())).await.unwrap_err(),
            "list_keys: cursor not supported"
        );
        // Stored raw, no label prefix: another Redis client sees the key.
        let mut raw = crate::resp::Connection::connect(&server.address())
            .await
            .unwrap();
        let got = raw.query(&Cmd::new("GET").arg("d")).await.unwrap();
        assert_eq!(got, Value::Bulk(b"4".to_vec()));
        // A Redis error reaches the guest in Spin's words.
        raw.query(&Cmd::new("SADD").arg("set").arg("m"))
            .await
            .unwrap();
        let e = cache.get("set".into()).await.unwrap_err();
        assert!(e.starts_with("WRONGTYPE: "), "{e}");

        // Other labels are untouched.
        assert_eq!(
            kv.get("local").unwrap().keys().await.unwrap(),
            Vec::<String>::new()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn atomics_are_refused_on_redis_only() {
        let server = crate::resp::test_server::RedisServer::start();
        let kv = stores(&[
            ("default", KvBackend::Redis(server.address())),
            ("local", KvBackend::Sqlite(None)),
        ]);
        let refused = kv.get("default").unwrap().atomics_db().err().unwrap();
        assert_eq!(
            refused,
            "wasi:keyvalue/atomics is not offered on Redis-backed store `default`: Spin's Redis \
             compare-and-swap (crates/key-value-redis) ends every swap with `UNWATCH <key>`, \
             which Redis rejects, so a successful swap is reported as failed (and an aborted EXEC \
             as success); assetgate keeps coordination in Redis through fermyon:spin/redis \
             instead — set store_redis_url"
        );
        // Spin's own swap ends with `UNWATCH <key>`, which Redis refuses.
        let mut raw = crate::resp::Connection::connect(&server.address())
            .await
            .unwrap();
        let unwatch = raw.query(&Cmd::new("UNWATCH").arg("k")).await;
        assert!(matches!(unwatch, Err(resp::Error::Server(m)) if m.contains("wrong number")));
        assert!(kv.get("local").unwrap().atomics_db().is_ok());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unreachable_redis_fails_the_first_open() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let address = resp::Address::parse(&format!("redis://127.0.0.1:{port}")).unwrap();
        let kv = stores(&[("cache", KvBackend::Redis(address))]);
        assert!(kv.get("cache").unwrap().opened().await.is_err());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn labels_sharing_a_file_share_a_database_but_not_keys() {
        let dir = std::env::temp_dir().join(format!("assetgate-kvs-{}", std::process::id()));
        let file = dir.join("kv.db");
        let kv = stores(&[
            ("a", KvBackend::Sqlite(Some(file.clone()))),
            ("b", KvBackend::Sqlite(Some(file))),
            ("m1", KvBackend::Sqlite(None)),
            ("m2", KvBackend::Sqlite(None)),
        ]);
        for label in ["a", "m1"] {
            kv.get(label)
                .unwrap()
                .set("k".into(), b"v".to_vec())
                .await
                .unwrap();
        }
        for label in ["b", "m2"] {
            assert_eq!(kv.get(label).unwrap().get("k".into()).await.unwrap(), None);
        }
        assert_eq!(
            kv.get("a").unwrap().list_keys(None).await.unwrap(),
            (vec!["k".to_string()], None)
        );
        std::fs::remove_dir_all(dir).unwrap();
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
