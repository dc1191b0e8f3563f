//! A real `redis-server` for the tests that put the store in Redis (the
//! replica test, the edge-profile runs). Started on a free port, with no
//! persistence, and stopped when the test process ends.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Databases per server: each test (state dir) gets its own.
const DATABASES: u32 = 4096;

pub struct RedisServer {
    pub port: u16,
    _child: Child,
}

impl RedisServer {
    /// Starts a server for this test process (or the caller's own, when
    /// it must be killed mid-test).
    pub fn start() -> RedisServer {
        let port = super::free_port();
        // A watchdog stops the server when the test process goes away,
        // however it ends (a test binary does not drop its statics).
        let script = format!(
            "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no \
             --databases {DATABASES} --loglevel warning >/dev/null & rs=$!; \
             while kill -0 {pid} 2>/dev/null && kill -0 $rs 2>/dev/null; do sleep 0.5; done; \
             kill $rs 2>/dev/null",
            pid = std::process::id()
        );
        assert!(
            Command::new("sh")
                .args(["-c", "command -v redis-server"])
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false),
            "redis-server is not installed: run scripts/setup --for-tests"
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = RedisServer {
            port,
            _child: child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.command(0, &["PING"]).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `redis://127.0.0.1:port`, as allowed_outbound_hosts lists it.
    pub fn host(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, db: u32) -> String {
        format!("{}/{db}", self.host())
    }

    /// One command on database `db`; the reply as text (simple strings,
    /// integers and bulk strings; arrays as their elements, one per line).
    pub fn command(&self, db: u32, args: &[&str]) -> Result<String, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut out = Vec::new();
        for cmd in [
            vec!["SELECT".to_string(), db.to_string()],
            args.iter().map(|a| a.to_string()).collect(),
        ] {
            out.extend(format!("*{}\r\n", cmd.len()).as_bytes());
            for a in &cmd {
                out.extend(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
        }
        s.write_all(&out).map_err(|e| e.to_string())?;
        let mut r = BufReader::new(s);
        read_reply(&mut r)?;
        read_reply(&mut r)
    }
}

fn read_reply(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1.min(line.len()));
    match kind {
        "+" | ":" => Ok(rest.to_string()),
        "-" => Err(rest.to_string()),
        "$" if rest == "-1" => Ok(String::new()),
        "$" => {
            let n: usize = rest.parse().map_err(|_| line.to_string())?;
            let mut buf = vec![0; n + 2];
            std::io::Read::read_exact(r, &mut buf).map_err(|e| e.to_string())?;
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| line.to_string())?;
            let items: Result<Vec<_>, _> = (0..n.max(0)).map(|_| read_reply(r)).collect();
            Ok(items?.join("\n"))
        }
        _ => Err(format!("unexpected reply `{line}`")),
    }
}

/// The server this test process shares between its hosts.
pub fn shared() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start)
}

/// A database of the shared server no other test of this process uses.
pub fn fresh_db() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let db = NEXT.fetch_add(1, Ordering::SeqCst);
    assert!(db < DATABASES, "out of Redis databases");
    db
}
