//! The Redis backend: the whole store in one Redis, through Spin's outbound
//! Redis interface (`fermyon:spin/redis@2.0.0`).
//!
//! Why: Spin's Redis key-value store cannot do `wasi:keyvalue/atomics` (its
//! compare-and-swap ends with `UNWATCH <key>`, which Redis rejects, so a swap
//! that wrote is reported as failed), and the edge platforms offer no atomics
//! at all. Here compare-and-swap is one Lua script, increments are `INCRBY`,
//! so every record, index, queue, lease, journal and counter built on [`Kv`]
//! is atomic on any Spin. Blob chunks live here too: they are read by the
//! request after the one that wrote them, and the edge key-value store only
//! promises read-your-writes within one request.
//!
//! Keys are stored as they are, without a prefix, as Spin's Redis key-value
//! store does, so data written through either path is the same data.

use crate::backend::Kv;
use crate::error::{Result, StoreError};
use spin_sdk::redis::{Connection, Error, RedisParameter, RedisResult};

/// `GET` and compare with the expected value, then `SET`: one script, so no
/// other client runs in between. `ARGV[1]` is `1` when a value is expected
/// (`ARGV[2]`), `0` when the key must be absent. Lua strings are byte
/// strings, so binary values compare exactly.
const CAS_SCRIPT: &str = "local cur = redis.call('GET', KEYS[1]) \
if ARGV[1] == '1' then if cur ~= ARGV[2] then return 0 end \
elseif cur then return 0 end \
redis.call('SET', KEYS[1], ARGV[3]) return 1";

pub struct RedisKv {
    conn: Connection,
}

fn backend(what: &str, e: Error) -> StoreError {
    StoreError::backend(match e {
        Error::InvalidAddress => format!(
            "redis {what}: the address is invalid or not allowed \
             (store_redis_url, and store_redis_host in allowed_outbound_hosts)"
        ),
        Error::TooManyConnections => format!("redis {what}: too many connections"),
        Error::TypeError => format!("redis {what}: a value has the wrong type"),
        Error::Other(m) => format!("redis {what}: {m}"),
    })
}

fn binary(v: &[u8]) -> RedisParameter {
    RedisParameter::Binary(v.to_vec())
}

impl RedisKv {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`).
    pub fn open(url: &str) -> Result<Self> {
        Ok(RedisKv {
            conn: Connection::open(url).map_err(|e| backend("open", e))?,
        })
    }

    fn execute(&self, command: &str, args: &[RedisParameter]) -> Result<Vec<RedisResult>> {
        self.conn
            .execute(command, args)
            .map_err(|e| backend(command, e))
    }

    fn integer(&self, command: &str, args: &[RedisParameter]) -> Result<i64> {
        match self.execute(command, args)?.as_slice() {
            [RedisResult::Int64(n)] => Ok(*n),
            other => Err(StoreError::backend(format!(
                "redis {command}: expected an integer, got {other:?}"
            ))),
        }
    }
}

impl Kv for RedisKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.conn.get(key).map_err(|e| backend("GET", e))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.conn.set(key, value).map_err(|e| backend("SET", e))
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.conn
            .del(&[key.to_string()])
            .map(|_| ())
            .map_err(|e| backend("DEL", e))
    }
    fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.integer("EXISTS", &[binary(key.as_bytes())])? == 1)
    }
    fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool> {
        let args = [
            binary(CAS_SCRIPT.as_bytes()),
            RedisParameter::Int64(1),
            binary(key.as_bytes()),
            binary(if expected.is_some() { b"1" } else { b"0" }),
            binary(expected.unwrap_or_default()),
            binary(new),
        ];
        Ok(self.integer("EVAL", &args)? == 1)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.integer(
            "INCRBY",
            &[binary(key.as_bytes()), RedisParameter::Int64(delta)],
        )
        .map_err(|e| StoreError::new(e.code, format!("counter `{key}`: {}", e.message)))
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let args: Vec<_> = keys.iter().map(|k| binary(k.as_bytes())).collect();
        let found = self.execute("MGET", &args)?;
        if found.len() != keys.len() {
            return Err(StoreError::backend(format!(
                "redis MGET: {} keys asked, {} values answered",
                keys.len(),
                found.len()
            )));
        }
        found
            .into_iter()
            .map(|v| match v {
                RedisResult::Nil => Ok(None),
                RedisResult::Binary(b) => Ok(Some(b)),
                other => Err(StoreError::backend(format!(
                    "redis MGET: unexpected {other:?}"
                ))),
            })
            .collect()
    }
}
