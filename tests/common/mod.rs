//! End-to-end harness: starts the real `assetgate-host` binary on a free
//! port with a real manifest and real `.wasm` components, and talks HTTP to
//! it. Nothing is mocked. `scripts/test` builds the binary and components
//! first; run it (or `scripts/build-components && cargo build -p
//! assetgate-host`) before `cargo test` on its own.
#![allow(dead_code)]

pub mod openapi;
pub mod redis;
pub mod xsd;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn host_binary() -> PathBuf {
    let path = std::env::var_os("ASSETGATE_HOST")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/debug/assetgate-host"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/test, or `cargo build -p assetgate-host` and scripts/build-components",
        path.display()
    );
    path
}

/// A fresh, empty directory for one test's durable state.
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = root()
        .join("target/e2e")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running host process; killed when dropped.
pub struct Host {
    child: Child,
    pub base: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
}

pub struct HostConfig<'a> {
    pub manifest: PathBuf,
    pub state_dir: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub listen: String,
}

/// A port that was free a moment ago (for hosts whose own URL must be
/// known before they start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the protocol suites run as the edge platforms would run them:
/// `ASSETGATE_E2E_PROFILE=edge` (scripts/test sets it for a second pass).
/// Then `spin.toml` means the edge build (`spin.edge.toml`) under the
/// host's `--profile edge`, with the store in Redis.
pub fn edge() -> bool {
    std::env::var("ASSETGATE_E2E_PROFILE").as_deref() == Ok("edge")
}

/// The Redis database that holds `state_dir`'s store in edge runs: the same
/// one for every host on that directory, so a restart finds its data.
fn edge_db(state_dir: &Path) -> u32 {
    static DBS: std::sync::Mutex<Vec<(PathBuf, u32)>> = std::sync::Mutex::new(Vec::new());
    let mut dbs = DBS.lock().unwrap();
    if let Some((_, db)) = dbs.iter().find(|(d, _)| d == state_dir) {
        return *db;
    }
    let db = redis::fresh_db();
    dbs.push((state_dir.to_path_buf(), db));
    db
}

impl<'a> HostConfig<'a> {
    pub fn new(manifest: impl AsRef<Path>, state_dir: &'a Path) -> Self {
        let config = HostConfig {
            manifest: root().join(manifest.as_ref()),
            state_dir,
            args: Vec::new(),
            env: Vec::new(),
            listen: "127.0.0.1:0".into(),
        };
        if !(edge() && config.manifest == root().join("spin.toml")) {
            return config;
        }
        let server = redis::shared();
        let mut config = config.redis_store(&server.url(edge_db(state_dir)), &server.host());
        config.manifest = root().join("spin.edge.toml");
        config.arg("--profile").arg("edge")
    }

    /// The whole store in the Redis at `url` (`store_redis_url`), reached
    /// through `host` (`store_redis_host`, for allowed_outbound_hosts).
    pub fn redis_store(self, url: &str, host: &str) -> Self {
        self.var("store_redis_url", url)
            .var("store_redis_host", host)
    }

    pub fn listen(mut self, port: u16) -> Self {
        self.listen = format!("127.0.0.1:{port}");
        self
    }

    pub fn var(self, name: &str, value: &str) -> Self {
        self.arg("--variable").arg(&format!("{name}={value}"))
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(host_binary());
        cmd.arg("--from")
            .arg(&self.manifest)
            .arg("--listen")
            .arg(&self.listen)
            .arg("--state-dir")
            .arg(self.state_dir)
            // Compiled components are shared between tests: compiling is the
            // slow part of a start, and the cache is keyed by content.
            .arg("--cache-dir")
            .arg(root().join("target/e2e/compile-cache"))
            .args(&self.args)
            .env("ASSETGATE_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts the host and waits until it serves.
    pub fn start(&self) -> Host {
        Host::spawn(self.command())
    }

    /// Runs the host expecting it to fail at start-up; returns its stderr.
    pub fn start_failure(&self) -> String {
        let mut child = self.command().spawn().expect("spawn assetgate-host");
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(!status.success(), "host exited successfully");
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                return err;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("host kept running although start-up should fail");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Host {
    /// Spawns `cmd` (the host binary, or a script that execs it) and waits
    /// until it prints its `Serving` banner.
    pub fn spawn(mut cmd: Command) -> Host {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the host");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                eprint!("{text}");
                sink.lock().unwrap().push_str(&text);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let out_sink = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Serving ") {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut all = out_sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!("host did not start ({status}):\n{}", stderr.lock().unwrap());
            }
        };
        Host {
            child,
            base,
            stderr,
            stdout: printed,
        }
    }

    /// What the host printed on stdout, once it has printed `text` (within a
    /// few seconds; the banner's lines arrive after `Serving`).
    pub fn printed_through(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let printed = self.stdout.lock().unwrap().clone();
            if printed.contains(text) || Instant::now() > deadline {
                return printed;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the host logs `text` within a few seconds (stderr is read
    /// by a thread, so a line can arrive after the response).
    pub fn wait_for_log(&self, text: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.stderr.lock().unwrap().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Stops the host the way an operator would (SIGTERM) and waits.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, whatever its status.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build()
}

pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = if body.is_empty() && matches!(method, "GET" | "HEAD" | "DELETE") {
        req.call()
    } else {
        req.send_bytes(body)
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or("").to_string();
            (n, v)
        })
        .collect();
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

pub fn get(url: &str) -> Reply {
    send("GET", url, &[], &[])
}

/// Polls `f` until it returns `Some`, for up to `secs` seconds.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A password hash for `epifiles_users`, made by `scripts/epifiles-client
/// hash-password` (so the script is exercised too).
pub fn password_hash(password: &str, iterations: u32) -> String {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg(root().join("scripts/epifiles-client"))
        .args(["hash-password", "--iterations", &iterations.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs scripts/epifiles-client");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "hash-password failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// An Asset Compute client: its token and its `compute_clients` entry, made
/// by `scripts/compute-token` (so the script is exercised too).
pub fn compute_client(
    name: &str,
    api_key: &str,
    org: &str,
    max_in_flight: Option<u32>,
) -> (String, serde_json::Value) {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("scripts/compute-token")).args([
        "--name",
        name,
        "--api-key",
        api_key,
        "--org",
        org,
    ]);
    if let Some(n) = max_in_flight {
        cmd.args(["--max-in-flight", &n.to_string()]);
    }
    let out = cmd.output().expect("python3 runs scripts/compute-token");
    assert!(out.status.success(), "compute-token failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["token"].as_str().unwrap().to_string(),
        v["client"].clone(),
    )
}

/// A request received by [`http_server`].
pub struct Incoming {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Path segments after the leading `/`.
    pub fn segments(&self) -> Vec<&str> {
        self.path.trim_start_matches('/').split('/').collect()
    }
}

/// A small HTTP/1.1 server on a free loopback port, for the peers the tests
/// play (upload services, webhooks, buckets): one thread per connection,
/// one request per connection, `Content-Length` or chunked bodies.
/// `handler` answers (status, content type, body).
pub fn http_server<F>(handler: F) -> u16
where
    F: Fn(Incoming) -> (u16, &'static str, Vec<u8>) + Send + Sync + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = std::sync::Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = handler.clone();
            std::thread::spawn(move || {
                if let Some(req) = read_request(&stream) {
                    let (status, ctype, body) = handler(req);
                    write_response(stream, status, ctype, &body);
                }
            });
        }
    });
    port
}

fn read_request(stream: &std::net::TcpStream) -> Option<Incoming> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    let path = target.split('?').next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(&mut reader)
    } else {
        let length = find("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).ok()?;
        body
    };
    Some(Incoming {
        method,
        path,
        headers,
        body,
    })
}

fn read_chunked(reader: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        if reader.read_line(&mut size).unwrap_or(0) == 0 {
            return body;
        }
        let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16).unwrap_or(0);
        let mut part = vec![0u8; n + 2];
        if n == 0 || reader.read_exact(&mut part).is_err() {
            return body;
        }
        body.extend_from_slice(&part[..n]);
    }
}

fn write_response(mut stream: std::net::TcpStream, status: u16, ctype: &str, body: &[u8]) {
    use std::io::Write;
    let reason = if status < 400 { "OK" } else { "Error" };
    // 204 and 304 carry no body and no Content-Length.
    let length = if status == 204 || status == 304 {
        String::new()
    } else {
        format!("content-length: {}\r\n", body.len())
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\n{length}connection: close\r\n\r\n"
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Sends a request over a raw socket, tolerating the server closing the
/// request early (as it may when it refuses a body: clients that write the
/// whole body before reading can see EPIPE); returns the status and the
/// response head.
pub fn raw_request(host: &Host, head: &[u8], body: &[u8]) -> (u16, String) {
    let (status, head, _) = raw_exchange(host, head, body);
    (status, head)
}

/// Sends `head` and as much of `body` as the server reads (it may answer
/// before reading it all); the status, the response head and its body.
pub fn raw_exchange(host: &Host, head: &[u8], body: &[u8]) -> (u16, String, String) {
    use std::io::Write;
    let addr = host.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head).unwrap();
    for piece in body.chunks(16 * 1024) {
        if stream.write_all(piece).is_err() {
            break;
        }
    }
    let mut reader = BufReader::new(stream);
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        text.push_str(&line);
    }
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in `{text}`"));
    let length = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut content = vec![0u8; length];
    let _ = reader.read_exact(&mut content);
    (status, text, String::from_utf8_lossy(&content).into_owned())
}

/// A `w`×`h` gradient JPEG (quality 90), a typical photo-like source.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x ^ y) & 0xff) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// The ingest job of a commit: its identity is the upload service, the
/// commit's token and its assets (see `assetgate_phraseanet::ingest::job_id`).
pub fn ingest_job_id(base_url: &str, commit: &serde_json::Value) -> String {
    let mut assets: Vec<&str> = commit["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assets.sort_unstable();
    let mut parts = vec![base_url, commit["token"].as_str().unwrap()];
    parts.extend(assets);
    assetgate_web::secret::digest_parts(&parts)[..32].to_string()
}

/// Reads an Asset Compute journal from `start` (a URL) until `n` events
/// arrived, following `Link: rel="next"` as Adobe's client does; `fetch`
/// makes each GET (of the absolute URL the journal gave).
pub fn follow_journal(
    start: String,
    n: usize,
    secs: u64,
    mut fetch: impl FnMut(&str) -> Reply,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut next = start;
    let done = wait_for(secs, || {
        let r = fetch(&next);
        let link = r
            .header("link")
            .expect("every journal answer has a Link")
            .to_string();
        next = link
            .trim_start_matches('<')
            .split(">;")
            .next()
            .unwrap()
            .to_string();
        assert!(link.ends_with("rel=\"next\""), "{link}");
        match r.status {
            200 => out.extend(
                r.json()["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["event"].clone()),
            ),
            204 => assert!(r.header("retry-after").is_some()),
            s => panic!("journal answered {s}: {}", r.text()),
        }
        (out.len() >= n).then_some(())
    });
    assert!(done.is_some(), "only {} of {n} events arrived", out.len());
    out
}

/// Every key of the store behind `state_dir` (the SQLite file the host
/// keeps there, or its Redis database in edge runs), sorted: to check that
/// a refused request left nothing behind.
pub fn store_keys(state_dir: &Path) -> Vec<String> {
    let mut keys: Vec<String> = if edge() {
        redis::shared()
            .command(edge_db(state_dir), &["KEYS", "*"])
            .expect("redis KEYS")
            .lines()
            .map(String::from)
            .collect()
    } else {
        sqlite_query(state_dir, "SELECT key FROM spin_key_value", &[])
    };
    keys.sort();
    keys
}

/// The value of `key` in the store behind `state_dir`, as text.
pub fn store_value(state_dir: &Path, key: &str) -> Option<String> {
    if edge() {
        let v = redis::shared()
            .command(edge_db(state_dir), &["GET", key])
            .expect("redis GET");
        return (!v.is_empty()).then_some(v);
    }
    sqlite_query(
        state_dir,
        "SELECT CAST(value AS TEXT) FROM spin_key_value WHERE key = ?",
        &[key],
    )
    .into_iter()
    .next()
}

/// One column of a query on the host's SQLite store, read with python3's
/// sqlite3 (the host holds the file open; WAL lets another reader in).
fn sqlite_query(state_dir: &Path, sql: &str, args: &[&str]) -> Vec<String> {
    let db = state_dir.join("sqlite_key_value.db");
    let script = "import json, sqlite3, sys\n\
                  c = sqlite3.connect(sys.argv[1])\n\
                  rows = c.execute(sys.argv[2], sys.argv[3:]).fetchall()\n\
                  print(json.dumps([r[0] for r in rows]))";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&db)
        .arg(sql)
        .args(args)
        .output()
        .expect("python3 reads the store");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list of strings")
}

/// Deposits `bytes` through EpiFiles as user `lab` (password `lab-pw`), one
/// raw chunk; the ManifestFile id (what the preview proxy takes as
/// `objectid`).
pub fn deposit(host: &Host, name: &str, bytes: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("lab:lab-pw")
    );
    let url = host.url(&format!(
        "/epifiles/ws/manifestfile?hash={}&filename={name}&total_chunks=1",
        hex::encode(md5::Md5::digest(bytes))
    ));
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/octet-stream"),
    ];
    let r = send("POST", &url, &headers, bytes);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let start = text.find("<id>").unwrap() + 4;
    text[start..start + text[start..].find('<').unwrap()].to_string()
}

/// Deterministic bytes that do not compress or repeat (xorshift64).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
