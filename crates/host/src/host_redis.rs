//! `fermyon:spin/redis@2.0.0` (outbound Redis) for the guest, as Spin's
//! `factor-outbound-redis` serves it: `open` is checked against the
//! component's `allowed_outbound_hosts` with scheme `redis`; each open
//! connection is one TCP connection to Redis, closed with its resource;
//! replies and errors are converted as Spin converts them.

use crate::bindings::fermyon::spin::redis::{
    self, Error, HostConnection, RedisParameter, RedisResult,
};
use crate::outbound::OutboundPolicy;
use crate::resp::{self, Cmd, Value};
use crate::state::RequestState;
use wasmtime::component::Resource;

/// An open connection (the guest's `connection` resource).
pub struct RedisConnection(resp::Connection);

fn other(e: resp::Error) -> Error {
    Error::Other(e.spin_text())
}

fn unexpected(command: &str, v: &Value) -> Error {
    Error::Other(format!("unexpected Redis reply to {command}: {v:?}"))
}

/// Spin's limit on a buffered result, with Spin's message.
fn within_limit(size: usize) -> Result<(), Error> {
    if size > resp::MAX_REPLY_BYTES {
        return Err(Error::Other(format!(
            "query result exceeds limit of {} bytes",
            resp::MAX_REPLY_BYTES
        )));
    }
    Ok(())
}

/// Spin's `OutboundUrl::parse(address, "redis")`: the scheme, host and port
/// the allow-list is checked against. As Spin, the userinfo is encoded
/// first (a password may hold URL syntax), and an address that is not a
/// URL with a host is read again as `redis://<address>`.
fn outbound_target(address: &str) -> Option<(String, String, Option<u16>)> {
    let mut url = address.to_string();
    if let Some(at) = url.find('@') {
        let scheme_end = url.find("://").map(|e| e + 3).unwrap_or(0);
        let path_start = url[scheme_end..]
            .find('/')
            .map(|e| e + scheme_end)
            .unwrap_or(usize::MAX);
        if at < path_start && scheme_end <= at {
            let encoded = encode_component(&url[scheme_end..at]);
            url = format!("{}{encoded}{}", &url[..scheme_end], &url[at..]);
        }
    }
    let parsed = match url::Url::parse(&url) {
        Ok(u) if u.has_host() => u,
        _ => url::Url::parse(&format!("redis://{url}")).ok()?,
    };
    let host = parsed.host_str()?.to_string();
    Some((parsed.scheme().to_string(), host, parsed.port()))
}

/// `urlencoding::encode`: everything but ASCII letters, digits and `-_.~`.
fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// `open`: the allow-list first (a refusal or an unreadable address is
/// `invalid-address`, as in Spin), then the connection.
async fn connect(
    component: &str,
    policy: &OutboundPolicy,
    address: &str,
) -> Result<resp::Connection, Error> {
    match outbound_target(address) {
        Some((scheme, host, port)) if policy.allows_address(&scheme, &host, port) => {}
        target => {
            let shown = target.map_or("an unreadable address".into(), |(s, h, p)| {
                format!(
                    "{s}://{h}{}",
                    p.map(|p| format!(":{p}")).unwrap_or_default()
                )
            });
            tracing::warn!(%component, "fermyon:spin/redis: {shown} is not in allowed_outbound_hosts");
            return Err(Error::InvalidAddress);
        }
    }
    let target = match resp::Address::parse(address) {
        Ok(a) => a,
        Err(e @ resp::Error::Unsupported(_)) => return Err(other(e)),
        Err(_) => return Err(Error::InvalidAddress),
    };
    resp::Connection::connect(&target).await.map_err(other)
}

async fn publish(c: &mut resp::Connection, channel: String, payload: Vec<u8>) -> Result<(), Error> {
    let cmd = Cmd::new("PUBLISH").arg(channel).arg(payload);
    c.query(&cmd).await.map_err(other)?;
    Ok(())
}

async fn get(c: &mut resp::Connection, key: String) -> Result<Option<Vec<u8>>, Error> {
    match c.query(&Cmd::new("GET").arg(key)).await.map_err(other)? {
        Value::Nil => Ok(None),
        Value::Bulk(v) => {
            within_limit(std::mem::size_of::<Option<Vec<u8>>>() + v.len())?;
            Ok(Some(v))
        }
        v => Err(unexpected("GET", &v)),
    }
}

async fn set(c: &mut resp::Connection, key: String, value: Vec<u8>) -> Result<(), Error> {
    c.query(&Cmd::new("SET").arg(key).arg(value))
        .await
        .map_err(other)?;
    Ok(())
}

async fn incr(c: &mut resp::Connection, key: String) -> Result<i64, Error> {
    // Spin's `incr(key, 1)` sends INCRBY.
    match c
        .query(&Cmd::new("INCRBY").arg(key).arg("1"))
        .await
        .map_err(other)?
    {
        Value::Int(n) => Ok(n),
        v => Err(unexpected("INCRBY", &v)),
    }
}

/// A count reply; a reply that is not one is `type-error` where Spin maps
/// the `redis` crate's conversion failure to it (`sadd`), else `other`.
async fn count(c: &mut resp::Connection, cmd: Cmd, type_error: bool) -> Result<u32, Error> {
    match c.query(&cmd).await.map_err(other)? {
        Value::Int(n) if u32::try_from(n).is_ok() => Ok(n as u32),
        _ if type_error => Err(Error::TypeError),
        v => Err(unexpected("a counting command", &v)),
    }
}

async fn smembers(c: &mut resp::Connection, key: String) -> Result<Vec<String>, Error> {
    let reply = c
        .query(&Cmd::new("SMEMBERS").arg(key))
        .await
        .map_err(other)?;
    let Value::Array(items) = reply else {
        return Err(unexpected("SMEMBERS", &reply));
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::Bulk(b) => {
                String::from_utf8(b).map_err(|_| Error::Other("a set member is not UTF-8".into()))
            }
            v => Err(unexpected("SMEMBERS", &v)),
        })
        .collect()
}

async fn execute(
    c: &mut resp::Connection,
    command: String,
    arguments: Vec<RedisParameter>,
) -> Result<Vec<RedisResult>, Error> {
    let mut cmd = Cmd::new(&command);
    for a in arguments {
        cmd = match a {
            RedisParameter::Int64(n) => cmd.arg(n.to_string()),
            RedisParameter::Binary(b) => cmd.arg(b),
        };
    }
    let reply = c.query(&cmd).await.map_err(other)?;
    let mut results = Vec::new();
    flatten(reply, &mut results).map_err(|e| Error::Other(resp::spin_error_text(&e)))?;
    let size: usize = results
        .iter()
        .map(|r| {
            std::mem::size_of::<RedisResult>()
                + match r {
                    RedisResult::Nil | RedisResult::Int64(_) => 0,
                    RedisResult::Binary(b) => b.len(),
                    RedisResult::Status(s) => s.len(),
                }
        })
        .sum();
    within_limit(std::mem::size_of::<Vec<RedisResult>>() + size)?;
    Ok(results)
}

/// Spin's `RedisResults`: nested arrays flattened in order, an empty one
/// contributing nothing; an error reply anywhere fails the whole call (the
/// first one, depth first, as the `redis` crate finds it).
fn flatten(v: Value, out: &mut Vec<RedisResult>) -> Result<(), String> {
    match v {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(n) => out.push(RedisResult::Int64(n)),
        Value::Bulk(b) => out.push(RedisResult::Binary(b)),
        Value::Status(s) => out.push(RedisResult::Status(s)),
        Value::Error(e) => return Err(e),
        Value::Array(items) => {
            for item in items {
                flatten(item, out)?;
            }
        }
    }
    Ok(())
}

impl redis::Host for RequestState {}

type Res<T> = wasmtime::Result<Result<T, Error>>;

impl RequestState {
    fn redis(&mut self, c: &Resource<RedisConnection>) -> wasmtime::Result<&mut resp::Connection> {
        Ok(&mut self.table.get_mut(c)?.0)
    }
}

impl HostConnection for RequestState {
    async fn open(&mut self, address: String) -> Res<Resource<RedisConnection>> {
        let component = self.component.clone();
        match connect(&component.id, &component.outbound, &address).await {
            Ok(conn) => Ok(Ok(self.table.push(RedisConnection(conn))?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn publish(
        &mut self,
        c: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Res<()> {
        Ok(publish(self.redis(&c)?, channel, payload).await)
    }

    async fn get(&mut self, c: Resource<RedisConnection>, key: String) -> Res<Option<Vec<u8>>> {
        Ok(get(self.redis(&c)?, key).await)
    }

    async fn set(&mut self, c: Resource<RedisConnection>, key: String, value: Vec<u8>) -> Res<()> {
        Ok(set(self.redis(&c)?, key, value).await)
    }

    async fn incr(&mut self, c: Resource<RedisConnection>, key: String) -> Res<i64> {
        Ok(incr(self.redis(&c)?, key).await)
    }

    async fn del(&mut self, c: Resource<RedisConnection>, keys: Vec<String>) -> Res<u32> {
        let cmd = Cmd::new("DEL").args(keys);
        Ok(count(self.redis(&c)?, cmd, false).await)
    }

    async fn sadd(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Res<u32> {
        let cmd = Cmd::new("SADD").arg(key).args(values);
        Ok(count(self.redis(&c)?, cmd, true).await)
    }

    async fn smembers(&mut self, c: Resource<RedisConnection>, key: String) -> Res<Vec<String>> {
        Ok(smembers(self.redis(&c)?, key).await)
    }

    async fn srem(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Res<u32> {
        let cmd = Cmd::new("SREM").arg(key).args(values);
        Ok(count(self.redis(&c)?, cmd, false).await)
    }

    async fn execute(
        &mut self,
        c: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Res<Vec<RedisResult>> {
        Ok(execute(self.redis(&c)?, command, arguments).await)
    }

    async fn drop(&mut self, c: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::test_server::RedisServer;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        let entries: Vec<(String, bool)> = entries.iter().map(|e| (e.to_string(), false)).collect();
        OutboundPolicy::new(&entries, &[]).unwrap()
    }

    /// The bindings' types have no `PartialEq`.
    #[track_caller]
    fn same(got: Vec<RedisResult>, expected: &[RedisResult]) {
        assert_eq!(format!("{got:?}"), format!("{expected:?}"));
    }

    fn bin(s: &str) -> RedisResult {
        RedisResult::Binary(s.as_bytes().to_vec())
    }

    #[test]
    fn addresses_are_read_as_spin_reads_them() {
        let t = |a: &str| outbound_target(a);
        let target = |s: &str, h: &str, p: Option<u16>| Some((s.into(), h.into(), p));
        assert_eq!(
            t("redis://127.0.0.1:6380/2"),
            target("redis", "127.0.0.1", Some(6380))
        );
        assert_eq!(
            t("redis://u:p@ss@cache.example"),
            target("redis", "cache.example", None)
        );
        assert_eq!(
            t("cache.example:7000"),
            target("redis", "cache.example", Some(7000))
        );
        assert_eq!(
            t("redis://[::1]:6379"),
            target("redis", "[::1]", Some(6379))
        );
    }

    #[tokio::test]
    async fn open_is_checked_against_allowed_outbound_hosts() {
        let server = RedisServer::start();
        let port = server.port();
        let url = format!("redis://127.0.0.1:{port}");
        let refused = [
            policy(&[]),
            policy(&["redis://127.0.0.1"]),
            policy(&[&format!("http://127.0.0.1:{port}")]),
            policy(&[&format!("redis://localhost:{port}")]),
            policy(&["redis://self", "http://self"]),
        ];
        for p in &refused {
            assert!(
                matches!(connect("t", p, &url).await, Err(Error::InvalidAddress)),
                "{p:?}"
            );
        }
        let allowed = policy(&[&format!("redis://127.0.0.1:{port}")]);
        let mut c = connect("t", &allowed, &url).await.unwrap();
        set(&mut c, "k".into(), b"v".to_vec()).await.unwrap();
        for p in [policy(&["redis://127.0.0.0/8:*"]), policy(&["*://*:*"])] {
            connect("t", &p, &url).await.unwrap();
        }
        // Unreadable, or allowed but not a Redis URL: invalid-address too.
        let any = policy(&["*://*:*"]);
        for bad in ["", "redis://", "::::", &format!("http://127.0.0.1:{port}")] {
            assert!(
                matches!(connect("t", &any, bad).await, Err(Error::InvalidAddress)),
                "{bad}"
            );
        }
        match connect("t", &any, "rediss://127.0.0.1:1").await {
            Err(Error::Other(m)) => assert!(m.contains("TLS"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
        // Allowed but nobody listening: `other`, with the I/O error.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let gone = format!("redis://127.0.0.1:{}", free.port());
        assert!(matches!(
            connect("t", &any, &gone).await,
            Err(Error::Other(_))
        ));
    }

    #[tokio::test]
    async fn commands_and_execute_results_as_spin_gives_them() {
        let server = RedisServer::start();
        let any = policy(&["*://*:*"]);
        let mut c = connect("t", &any, &format!("redis://127.0.0.1:{}", server.port()))
            .await
            .unwrap();
        let binary = b"\0a\r\nb".to_vec();
        set(&mut c, "k".into(), binary.clone()).await.unwrap();
        assert_eq!(get(&mut c, "k".into()).await.unwrap(), Some(binary));
        assert_eq!(get(&mut c, "missing".into()).await.unwrap(), None);
        assert_eq!(incr(&mut c, "n".into()).await.unwrap(), 1);
        assert_eq!(incr(&mut c, "n".into()).await.unwrap(), 2);
        assert!(matches!(
            incr(&mut c, "k".into()).await,
            Err(Error::Other(_))
        ));
        publish(&mut c, "chan".into(), b"hello".to_vec())
            .await
            .unwrap();
        let sadd = |vals: &[&str]| Cmd::new("SADD").arg("s").args(vals.to_vec());
        assert_eq!(
            count(&mut c, sadd(&["a", "b", "a"]), true).await.unwrap(),
            2
        );
        let mut members = smembers(&mut c, "s".into()).await.unwrap();
        members.sort();
        assert_eq!(members, ["a", "b"]);
        let srem = Cmd::new("SREM").arg("s").arg("a").arg("z");
        assert_eq!(count(&mut c, srem, false).await.unwrap(), 1);
        match count(&mut c, Cmd::new("SADD").arg("k").arg("x"), true).await {
            Err(Error::Other(m)) => assert!(m.starts_with("WRONGTYPE: "), "{m}"),
            other => panic!("{other:?}"),
        }
        let del = Cmd::new("DEL").arg("k").arg("n").arg("missing");
        assert_eq!(count(&mut c, del, false).await.unwrap(), 2);

        let eval = |script: &str| {
            let args = vec![
                RedisParameter::Binary(script.into()),
                RedisParameter::Int64(0),
            ];
            ("EVAL".to_string(), args)
        };
        let (cmd, args) = eval("return {1,'a',false}");
        same(
            execute(&mut c, cmd, args).await.unwrap(),
            &[RedisResult::Int64(1), bin("a"), RedisResult::Nil],
        );
        let (cmd, args) = eval("return {{1,{}},{'x',{redis.status_reply('Y')}}}");
        same(
            execute(&mut c, cmd, args).await.unwrap(),
            &[
                RedisResult::Int64(1),
                bin("x"),
                RedisResult::Status("Y".into()),
            ],
        );
        let mset = vec![
            RedisParameter::Binary(b"a".to_vec()),
            RedisParameter::Int64(-7),
            RedisParameter::Binary(b"b".to_vec()),
            RedisParameter::Binary(b"\0".to_vec()),
        ];
        same(
            execute(&mut c, "MSET".into(), mset).await.unwrap(),
            &[RedisResult::Status("OK".into())],
        );
        let mget = ["a", "nope", "b"]
            .map(|k| RedisParameter::Binary(k.into()))
            .to_vec();
        same(
            execute(&mut c, "MGET".into(), mget).await.unwrap(),
            &[bin("-7"), RedisResult::Nil, RedisResult::Binary(vec![0])],
        );
        same(
            execute(&mut c, "PING".into(), vec![]).await.unwrap(),
            &[RedisResult::Status("PONG".into())],
        );
        match execute(&mut c, "NOPE".into(), vec![]).await {
            Err(Error::Other(m)) => assert!(
                m.starts_with(
                    "An error was signalled by the server - ResponseError: unknown command"
                ),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        // An error inside a reply fails the call too.
        let (cmd, args) = eval("return {1, redis.error_reply('ERR inner')}");
        match execute(&mut c, cmd, args).await {
            Err(Error::Other(m)) => {
                assert_eq!(
                    m,
                    "An error was signalled by the server - ResponseError: inner"
                )
            }
            other => panic!("{other:?}"),
        }
        // The connection is still usable after errors.
        assert_eq!(get(&mut c, "a".into()).await.unwrap(), Some(b"-7".to_vec()));
    }
}
