//! A small Redis client speaking RESP2, for the Redis-backed key-value
//! stores and `fermyon:spin/redis`. Spin uses the `redis` crate; this host
//! needs only commands and replies (no TLS, RESP3, pub/sub receiving or
//! cluster), which fit in this file instead of another client stack.
//!
//! A `Connection` runs one command at a time and is reused for many.

use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Spin's `MAX_HOST_BUFFERED_BYTES`: the most a reply may hold.
pub const MAX_REPLY_BYTES: usize = 128 << 20;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deeper nesting than any real reply; a bound so a broken server cannot
/// make the parser allocate without end.
const MAX_DEPTH: usize = 512;

/// A reply. A top-level error reply is `Err(Error::Server)`; one nested in
/// an array (a failed command inside `EXEC`) stays a `Value::Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    /// A simple string, e.g. `OK`.
    Status(String),
    Error(String),
    Array(Vec<Value>),
}

#[derive(Debug)]
pub enum Error {
    /// Not a Redis URL.
    Address(String),
    /// A Redis URL this client cannot serve (TLS, Unix socket).
    Unsupported(String),
    Io(io::Error),
    /// The server sent something that is not RESP2.
    Protocol(String),
    /// An error reply, in Redis's words (`ERR unknown command ...`).
    Server(String),
    /// The reply was larger than allowed; it was read and dropped, so the
    /// connection stays usable.
    TooLarge(usize),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Address(m) | Error::Unsupported(m) | Error::Server(m) => f.write_str(m),
            Error::Io(e) => e.fmt(f),
            Error::Protocol(m) => write!(f, "Redis protocol error: {m}"),
            Error::TooLarge(n) => write!(f, "query result exceeds limit of {n} bytes"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// The error codes the `redis` crate (0.32, Spin's) knows, with the name it
/// prints for each; any other code is an "extension error".
const KNOWN_CODES: &[(&str, &str)] = &[
    ("ERR", "ResponseError"),
    ("EXECABORT", "ExecAbortError"),
    ("LOADING", "BusyLoadingError"),
    ("NOSCRIPT", "NoScriptError"),
    ("MOVED", "Moved"),
    ("ASK", "Ask"),
    ("TRYAGAIN", "TryAgain"),
    ("CLUSTERDOWN", "ClusterDown"),
    ("CROSSSLOT", "CrossSlot"),
    ("MASTERDOWN", "MasterDown"),
    ("READONLY", "ReadOnly"),
    ("NOTBUSY", "NotBusy"),
    ("NOSUB", "NoSub"),
];

/// The text Spin hands a guest for a Redis error reply: the `redis` crate's
/// `Display`, so a guest sees the same message under either host.
pub fn spin_error_text(reply: &str) -> String {
    let (code, detail) = match reply.split_once(' ') {
        Some((c, d)) => (c, Some(d)),
        None => (reply, None),
    };
    let desc = "An error was signalled by the server";
    match (KNOWN_CODES.iter().find(|(c, _)| *c == code), detail) {
        (Some((_, kind)), Some(d)) => format!("{desc} - {kind}: {d}"),
        (Some((_, kind)), None) => format!("{desc}- {kind}"),
        (None, d) => format!(
            "{code}: {}",
            d.unwrap_or("Unknown extension error encountered")
        ),
    }
}

impl Error {
    /// How Spin words this error to a guest (see `spin_error_text`).
    pub fn spin_text(&self) -> String {
        match self {
            Error::Server(m) => spin_error_text(m),
            other => other.to_string(),
        }
    }
}

/// Where to connect: `redis://[user:password@]host[:port][/db]`, read as
/// the `redis` crate reads it (port 6379, db 0, percent-decoded userinfo).
#[derive(Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
    username: Option<String>,
    password: Option<String>,
    pub db: i64,
}

impl std::fmt::Debug for Address {
    // Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis://{}:{}/{}", self.host, self.port, self.db)
    }
}

impl Address {
    /// Errors never quote the URL: it may hold a password.
    pub fn parse(s: &str) -> Result<Address, Error> {
        let bad = |why: &str| Error::Address(format!("invalid Redis URL: {why}"));
        let url = url::Url::parse(s).map_err(|e| {
            bad(&format!(
                "{e} (expected redis://[user:password@]host[:port][/db])"
            ))
        })?;
        match url.scheme() {
            "redis" | "valkey" => {}
            "rediss" | "valkeys" => {
                return Err(Error::Unsupported(
                    "Redis over TLS (rediss://) is not supported by assetgate-host".into(),
                ));
            }
            "unix" | "redis+unix" | "valkey+unix" => {
                return Err(Error::Unsupported(
                    "Redis over a Unix socket is not supported by assetgate-host".into(),
                ));
            }
            _ => return Err(bad("the scheme must be redis://")),
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err(bad("no host")),
        };
        let db = match url.path().trim_matches('/') {
            "" => 0,
            p => p.parse().map_err(|_| bad("invalid database number"))?,
        };
        let decode = |s: &str| percent_decode(s).ok_or_else(|| bad("userinfo is not UTF-8"));
        Ok(Address {
            host,
            port: url.port().unwrap_or(6379),
            username: match url.username() {
                "" => None,
                u => Some(decode(u)?),
            },
            password: url.password().map(decode).transpose()?,
            db,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A command: its name and arguments, all sent as binary-safe bulk strings.
#[derive(Debug, Clone)]
pub struct Cmd(Vec<Vec<u8>>);

impl Cmd {
    pub fn new(name: &str) -> Cmd {
        Cmd(vec![name.as_bytes().to_vec()])
    }

    pub fn arg(mut self, arg: impl AsRef<[u8]>) -> Cmd {
        self.0.push(arg.as_ref().to_vec());
        self
    }

    pub fn args<A: AsRef<[u8]>>(mut self, args: impl IntoIterator<Item = A>) -> Cmd {
        self.0.extend(args.into_iter().map(|a| a.as_ref().to_vec()));
        self
    }

    fn encode(&self) -> Vec<u8> {
        let size: usize = self.0.iter().map(|a| a.len() + 16).sum();
        let mut out = Vec::with_capacity(size + 16);
        out.extend_from_slice(format!("*{}\r\n", self.0.len()).as_bytes());
        for a in &self.0 {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// One TCP connection to Redis.
pub struct Connection {
    stream: BufReader<TcpStream>,
    /// Set while a command is under way: a call that fails or is cancelled
    /// half-way leaves a reply unread, and the connection must not be used
    /// again (its next reply would be the wrong one).
    broken: bool,
    max_reply_bytes: usize,
    response_timeout: Option<Duration>,
}

impl Connection {
    /// Connects, authenticates (`AUTH`) and selects the database (`SELECT`)
    /// when the address asks for them.
    pub async fn connect(address: &Address) -> Result<Connection, Error> {
        let target = (address.host.as_str(), address.port);
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {}:{} timed out", address.host, address.port),
                )
            })??;
        stream.set_nodelay(true)?;
        let mut conn = Connection {
            stream: BufReader::new(stream),
            broken: false,
            max_reply_bytes: MAX_REPLY_BYTES,
            response_timeout: None,
        };
        if let Some(password) = &address.password {
            let auth = match &address.username {
                Some(user) => Cmd::new("AUTH").arg(user),
                None => Cmd::new("AUTH"),
            };
            conn.query(&auth.arg(password)).await?;
        }
        if address.db != 0 {
            conn.query(&Cmd::new("SELECT").arg(address.db.to_string()))
                .await?;
        }
        Ok(conn)
    }

    /// Bounds the wait for each reply (none by default: a guest may run
    /// blocking commands such as `BLPOP key 0`, as under Spin).
    pub fn set_response_timeout(&mut self, timeout: Option<Duration>) {
        self.response_timeout = timeout;
    }

    #[cfg(test)]
    pub fn set_max_reply_bytes(&mut self, limit: usize) {
        self.max_reply_bytes = limit;
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Sends `cmd` and reads its reply.
    pub async fn query(&mut self, cmd: &Cmd) -> Result<Value, Error> {
        if self.broken {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Redis connection failed in an earlier command",
            )));
        }
        self.broken = true;
        let limit = self.max_reply_bytes;
        let stream = &mut self.stream;
        let exchange = async move {
            stream.get_mut().write_all(&cmd.encode()).await?;
            read_reply(stream, limit).await
        };
        let result = match self.response_timeout {
            None => exchange.await,
            Some(t) => tokio::time::timeout(t, exchange).await.unwrap_or_else(|_| {
                Err(Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("Redis did not answer within {t:?}"),
                )))
            }),
        };
        if matches!(result, Ok(_) | Err(Error::TooLarge(_))) {
            self.broken = false;
        }
        match result? {
            Value::Error(m) => Err(Error::Server(m)),
            v => Ok(v),
        }
    }
}

/// Reads one whole reply. Arrays are folded with an explicit stack, so a
/// deep reply cannot overflow the task's stack.
async fn read_reply<R: AsyncBufRead + Unpin>(r: &mut R, limit: usize) -> Result<Value, Error> {
    let mut left = limit;
    let mut over = false;
    let mut stack: Vec<(usize, Vec<Value>)> = Vec::new();
    loop {
        let line = read_line(r).await?;
        let text = || String::from_utf8_lossy(&line[1..]).into_owned();
        let mut charge = |n: usize| match left.checked_sub(n) {
            Some(rest) if !over => {
                left = rest;
                true
            }
            _ => {
                over = true;
                false
            }
        };
        let mut value = match line[0] {
            b'+' => {
                charge(line.len());
                Value::Status(text())
            }
            b'-' => {
                charge(line.len());
                Value::Error(text())
            }
            b':' => Value::Int(parse_int(&line[1..])?),
            b'$' => match usize::try_from(parse_int(&line[1..])?) {
                Err(_) => Value::Nil,
                Ok(n) if charge(n) => Value::Bulk(read_bulk(r, n).await?),
                Ok(n) => {
                    // Over the limit: read past it, keep nothing.
                    let skip = n as u64 + 2;
                    let skipped =
                        tokio::io::copy(&mut (&mut *r).take(skip), &mut tokio::io::sink()).await?;
                    if skipped != skip {
                        return Err(closed());
                    }
                    Value::Nil
                }
            },
            b'*' => match usize::try_from(parse_int(&line[1..])?) {
                Err(_) => Value::Nil,
                Ok(0) => Value::Array(Vec::new()),
                Ok(n) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(Error::Protocol("reply nested too deeply".into()));
                    }
                    stack.push((n, Vec::with_capacity(n.min(1024))));
                    continue;
                }
            },
            other => {
                return Err(Error::Protocol(format!(
                    "unexpected reply type {:?}",
                    other as char
                )));
            }
        };
        loop {
            let Some((remaining, items)) = stack.last_mut() else {
                return if over {
                    Err(Error::TooLarge(limit))
                } else {
                    Ok(value)
                };
            };
            items.push(value);
            *remaining -= 1;
            if *remaining > 0 {
                break;
            }
            let (_, items) = stack.pop().expect("just looked at it");
            value = Value::Array(items);
        }
    }
}

fn closed() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "Redis closed the connection",
    ))
}

/// A line without its CRLF; never empty.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Vec<u8>, Error> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).await?;
    if line.is_empty() {
        return Err(closed());
    }
    if !line.ends_with(b"\r\n") || line.len() < 3 {
        return Err(Error::Protocol("a reply line does not end in CRLF".into()));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

async fn read_bulk<R: AsyncBufRead + Unpin>(r: &mut R, n: usize) -> Result<Vec<u8>, Error> {
    let mut data = vec![0; n + 2];
    r.read_exact(&mut data).await.map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => closed(),
        _ => Error::Io(e),
    })?;
    if !data.ends_with(b"\r\n") {
        return Err(Error::Protocol("a bulk string does not end in CRLF".into()));
    }
    data.truncate(n);
    Ok(data)
}

fn parse_int(digits: &[u8]) -> Result<i64, Error> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Protocol("malformed integer".into()))
}

/// Connections to one Redis shared by every request: a key-value store
/// label's backend. Requests in flight each hold a connection of their own;
/// finished ones go back to the pool.
pub struct Pool {
    address: Address,
    idle: Mutex<Vec<Connection>>,
    /// Bounds the connections one label opens, however many requests run.
    permits: tokio::sync::Semaphore,
    reached: std::sync::atomic::AtomicBool,
}

const POOL_CONNECTIONS: usize = 16;
/// Key-value commands never block in Redis; a reply this late means the
/// server is gone, and the request should fail rather than hang.
const POOL_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

impl Pool {
    pub fn new(address: Address) -> Pool {
        Pool {
            address,
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(POOL_CONNECTIONS),
            reached: Default::default(),
        }
    }

    /// As Spin's Redis store: the first open connects and reports failure;
    /// after that, opening succeeds and each command (re)connects as needed.
    pub async fn ensure_reached(&self) -> Result<(), Error> {
        use std::sync::atomic::Ordering;
        if !self.reached.load(Ordering::Relaxed) {
            self.query(&Cmd::new("PING")).await?;
            self.reached.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Runs `cmd` on a pooled connection. Only for idempotent commands: a
    /// pooled connection that died while idle (Redis restarted) is replaced
    /// and the command sent again.
    pub async fn query(&self, cmd: &Cmd) -> Result<Value, Error> {
        let _permit = self.permits.acquire().await.expect("never closed");
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let reused = idle.is_some();
        let mut conn = match idle {
            Some(c) => c,
            None => self.connect().await?,
        };
        let mut result = conn.query(cmd).await;
        let died = |r: &Result<Value, Error>| matches!(r, Err(Error::Io(e)) if e.kind() != io::ErrorKind::TimedOut);
        if reused && conn.is_broken() && died(&result) {
            conn = self.connect().await?;
            result = conn.query(cmd).await;
        }
        if !conn.is_broken() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < POOL_CONNECTIONS {
                idle.push(conn);
            }
        }
        result
    }

    async fn connect(&self) -> Result<Connection, Error> {
        let mut conn = Connection::connect(&self.address).await?;
        conn.set_response_timeout(Some(POOL_RESPONSE_TIMEOUT));
        Ok(conn)
    }
}

/// A throw-away `redis-server` for tests: its own port, no persistence,
/// killed on drop.
#[cfg(test)]
pub mod test_server {
    use super::Address;
    use std::io::{Read, Write};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    pub struct RedisServer {
        child: Child,
        port: u16,
        extra: Vec<String>,
    }

    impl RedisServer {
        pub fn start() -> RedisServer {
            Self::start_with(&[])
        }

        /// With extra `redis-server` arguments, e.g. `--requirepass`.
        pub fn start_with(extra: &[&str]) -> RedisServer {
            let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            // A free port can be taken between the probe and the spawn;
            // another one is tried then.
            for _ in 0..5 {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free local port")
                    .port();
                if let Some(child) = spawn(port, &extra) {
                    return RedisServer { child, port, extra };
                }
            }
            panic!("redis-server did not start (see the reasons above)");
        }

        pub fn port(&self) -> u16 {
            self.port
        }

        pub fn address(&self) -> Address {
            Address::parse(&format!("redis://127.0.0.1:{}", self.port)).expect("valid URL")
        }

        /// Stops the server and starts a new, empty one on the same port.
        pub fn restart(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(child) = spawn(self.port, &self.extra) {
                    self.child = child;
                    return;
                }
                assert!(Instant::now() < deadline, "redis-server did not restart");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The server, once it answers; `None` if it exited (port taken).
    fn spawn(port: u16, extra: &[String]) -> Option<Child> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): these tests need a real Redis; \
                     install it with `scripts/setup --for-tests`"
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("redis-server on port {port} exited: {status}");
                return None;
            }
            if answers_ping(port) {
                return Some(child);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server on port {port} did not answer PING within 10s");
    }

    fn answers_ping(port: u16) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut first = [0u8; 1];
        // `+PONG`, or `-NOAUTH` when a password is required: up either way.
        s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
            && s.read_exact(&mut first).is_ok()
            && matches!(first[0], b'+' | b'-')
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::RedisServer;
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Value, Error> {
        let mut r = bytes;
        read_reply(&mut r, MAX_REPLY_BYTES).await
    }

    #[tokio::test]
    async fn parses_every_reply_type() {
        assert_eq!(parse(b"+OK\r\n").await.unwrap(), Value::Status("OK".into()));
        assert_eq!(parse(b":-42\r\n").await.unwrap(), Value::Int(-42));
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Value::Nil);
        assert_eq!(parse(b"*-1\r\n").await.unwrap(), Value::Nil);
        assert_eq!(
            parse(b"$4\r\na\r\nb\r\n").await.unwrap(),
            Value::Bulk(b"a\r\nb".to_vec())
        );
        assert_eq!(
            parse(b"*3\r\n:1\r\n*2\r\n$1\r\nx\r\n*0\r\n-ERR no\r\n")
                .await
                .unwrap(),
            Value::Array(vec![
                Value::Int(1),
                Value::Array(vec![Value::Bulk(b"x".to_vec()), Value::Array(vec![])]),
                Value::Error("ERR no".into()),
            ])
        );
        for bad in [
            &b"?x\r\n"[..],
            b"+OK\n",
            b":12a\r\n",
            b"$5\r\nab\r\n",
            b"*2\r\n:1\r\n",
        ] {
            assert!(parse(bad).await.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_as_the_redis_crate_reads_them() {
        let a = Address::parse("redis://127.0.0.1").unwrap();
        assert_eq!((a.host.as_str(), a.port, a.db), ("127.0.0.1", 6379, 0));
        assert_eq!((a.username, a.password), (None, None));
        let a = Address::parse("redis://us%65r:p%40ss@cache.example:6380/3").unwrap();
        assert_eq!((a.host.as_str(), a.port, a.db), ("cache.example", 6380, 3));
        assert_eq!(a.username.as_deref(), Some("user"));
        assert_eq!(a.password.as_deref(), Some("p@ss"));
        let a = Address::parse("redis://:secret@[::1]").unwrap();
        assert_eq!(
            (a.host.as_str(), a.username, a.password.as_deref()),
            ("::1", None, Some("secret"))
        );
        for bad in [
            "localhost:6379",
            "http://x",
            "rediss://x",
            "redis:///x",
            "redis://x/db",
        ] {
            let e = Address::parse(bad).unwrap_err();
            assert!(!e.to_string().contains("secret"));
        }
        assert!(!format!("{:?}", Address::parse("redis://:secret@x").unwrap()).contains("secret"));
    }

    #[test]
    fn error_text_is_the_redis_crates() {
        assert_eq!(
            spin_error_text("ERR unknown command 'NOPE'"),
            "An error was signalled by the server - ResponseError: unknown command 'NOPE'"
        );
        assert_eq!(
            spin_error_text("WRONGTYPE Operation against a key holding the wrong kind of value"),
            "WRONGTYPE: Operation against a key holding the wrong kind of value"
        );
    }

    #[tokio::test]
    async fn round_trips_against_redis_server() {
        let server = RedisServer::start();
        let mut c = Connection::connect(&server.address()).await.unwrap();
        let binary = b"a\0b\r\nc\r\n\0".to_vec();
        let set = Cmd::new("SET").arg(b"k\r\n\0".as_slice()).arg(&binary);
        assert_eq!(c.query(&set).await.unwrap(), Value::Status("OK".into()));
        let get = Cmd::new("GET").arg(b"k\r\n\0".as_slice());
        assert_eq!(c.query(&get).await.unwrap(), Value::Bulk(binary));
        assert_eq!(
            c.query(&Cmd::new("GET").arg("none")).await.unwrap(),
            Value::Nil
        );
        assert_eq!(
            c.query(&Cmd::new("INCRBY").arg("n").arg("-5"))
                .await
                .unwrap(),
            Value::Int(-5)
        );
        let eval = Cmd::new("EVAL")
            .arg("return {1, {'a', {}}, false, redis.status_reply('FINE')}")
            .arg("0");
        assert_eq!(
            c.query(&eval).await.unwrap(),
            Value::Array(vec![
                Value::Int(1),
                Value::Array(vec![Value::Bulk(b"a".to_vec()), Value::Array(vec![])]),
                Value::Nil,
                Value::Status("FINE".into()),
            ])
        );
        match c.query(&Cmd::new("NOPE")).await {
            Err(Error::Server(m)) => assert!(m.starts_with("ERR unknown command"), "{m}"),
            other => panic!("{other:?}"),
        }
        // An error nested in an array stays in the array.
        c.query(&Cmd::new("MULTI")).await.unwrap();
        c.query(&Cmd::new("SET").arg("s").arg("x")).await.unwrap();
        c.query(&Cmd::new("INCR").arg("s")).await.unwrap();
        match c.query(&Cmd::new("EXEC")).await.unwrap() {
            Value::Array(items) => {
                assert_eq!(items[0], Value::Status("OK".into()));
                assert!(matches!(&items[1], Value::Error(m) if m.starts_with("ERR value is not")));
            }
            other => panic!("{other:?}"),
        }
        // The connection is still in step after all of that.
        assert_eq!(
            c.query(&Cmd::new("PING")).await.unwrap(),
            Value::Status("PONG".into())
        );
    }

    #[tokio::test]
    async fn an_oversized_reply_is_dropped_and_the_connection_kept() {
        let server = RedisServer::start();
        let mut c = Connection::connect(&server.address()).await.unwrap();
        c.query(&Cmd::new("SET").arg("big").arg(vec![7u8; 5000]))
            .await
            .unwrap();
        c.set_max_reply_bytes(1000);
        let got = c.query(&Cmd::new("MGET").arg("big").arg("big")).await;
        assert!(matches!(got, Err(Error::TooLarge(1000))), "{got:?}");
        assert!(!c.is_broken());
        assert_eq!(
            c.query(&Cmd::new("PING")).await.unwrap(),
            Value::Status("PONG".into())
        );
    }

    #[tokio::test]
    async fn auth_and_select_from_the_url() {
        let server = RedisServer::start_with(&["--requirepass", "p@ss word"]);
        let port = server.port();
        let url = format!("redis://:p%40ss%20word@127.0.0.1:{port}/2");
        let mut c = Connection::connect(&Address::parse(&url).unwrap())
            .await
            .unwrap();
        c.query(&Cmd::new("SET").arg("k").arg("in db 2"))
            .await
            .unwrap();
        let url = format!("redis://default:p%40ss%20word@127.0.0.1:{port}");
        let mut c0 = Connection::connect(&Address::parse(&url).unwrap())
            .await
            .unwrap();
        assert_eq!(
            c0.query(&Cmd::new("GET").arg("k")).await.unwrap(),
            Value::Nil
        );
        let wrong = format!("redis://:nope@127.0.0.1:{port}");
        let err = Connection::connect(&Address::parse(&wrong).unwrap())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::Server(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_pool_survives_a_redis_restart() {
        let mut server = RedisServer::start();
        let pool = Pool::new(server.address());
        pool.ensure_reached().await.unwrap();
        pool.query(&Cmd::new("SET").arg("k").arg("1"))
            .await
            .unwrap();
        server.restart();
        assert_eq!(
            pool.query(&Cmd::new("GET").arg("k")).await.unwrap(),
            Value::Nil
        );
    }
}
