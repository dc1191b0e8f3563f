//! A new user's first hour: README's run command exactly as written, the
//! development credentials it makes, and every shell example of README run
//! against them, so the documentation cannot drift from the product.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// The origin README's examples are written for (`scripts/up`'s default).
const README_ORIGIN: &str = "http://127.0.0.1:3000";
/// Its address, also found in URLs with credentials (`http://user:pw@…`).
const README_ADDRESS: &str = "127.0.0.1:3000";
/// Put before a ```sh block that the examples test must not run (it starts
/// a server or runs this very suite).
const NOT_RUN: &str = "<!-- not run by tests/readme.rs:";

/// A shell command line run from `cwd`, as a user types it. `exec`, so that
/// stopping the returned host stops the host process itself.
fn shell(cwd: &Path, line: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("exec {line}"))
        .current_dir(cwd)
        .env("ASSETGATE_LOG", "info");
    // What the user's environment would not set either.
    for (name, _) in std::env::vars() {
        if name.starts_with("SPIN_VARIABLE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs a banner's `curl` line; its HTTP status.
fn run_curl_line(cwd: &Path, line: &str) -> u16 {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{line} -sS -o /dev/null -w '%{{http_code}}'"))
        .current_dir(cwd)
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout);
    code.trim()
        .parse()
        .unwrap_or_else(|_| panic!("`{line}` printed {code:?}"))
}

#[test]
fn scripts_up_as_written_from_the_root_and_from_elsewhere() {
    let root = root();
    assert!(
        std::net::TcpListener::bind("127.0.0.1:3000").is_ok(),
        "127.0.0.1:3000 is taken (is scripts/up running?): this test runs README's \
         `scripts/up` as written, which listens there"
    );
    let credentials = root.join(".spin/dev-credentials.env");
    let first_run = !credentials.exists();

    // From the repository root, as README writes it.
    let host = Host::spawn(shell(&root, "scripts/up"));
    assert_eq!(host.base, README_ORIGIN);
    let status = get(&host.url("/status"));
    assert_eq!(status.status, 200, "{}", status.text());
    let printed = host.printed_through("Development credentials");
    let key = std::fs::read_to_string(&credentials)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("UPLOAD_KEY=").map(str::to_string))
        .expect("the credentials file has the upload key");
    if first_run {
        // Shown once, with commands that work as printed.
        assert!(printed.contains(&key), "{printed}");
        let tries: Vec<&str> = printed
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("curl "))
            .collect();
        assert_eq!(tries.len(), 3, "{printed}");
        for line in tries {
            let code = run_curl_line(&root, line);
            assert!((200..300).contains(&code), "`{line}` answered {code}");
        }
    } else {
        assert!(printed.contains("made on the first run"), "{printed}");
    }
    host.stop();

    // From another directory, through the script's relative path: same
    // state, same credentials, and the secret is not printed again.
    let host = Host::spawn(shell(&root.join("crates"), "../scripts/up"));
    assert_eq!(host.base, README_ORIGIN);
    assert_eq!(get(&host.url("/status")).status, 200);
    let printed = host.printed_through("made on the first run");
    assert!(printed.contains("made on the first run"), "{printed}");
    assert!(!printed.contains(&key), "{printed}");
    let upload = send(
        "POST",
        &host.url("/assets"),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "text/plain"),
            ("x-filename", "note.txt"),
        ],
        b"kept credentials still open the upload service",
    );
    assert_eq!(upload.status, 201, "{}", upload.text());
    host.stop();
}

/// The ```sh blocks of README.md and docs/*.md, in reading order, without
/// those marked [`NOT_RUN`].
fn examples() -> (String, Vec<String>) {
    let mut files = vec![root().join("README.md")];
    if let Ok(dir) = std::fs::read_dir(root().join("docs")) {
        let mut docs: Vec<_> = dir
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        docs.sort();
        files.extend(docs);
    }
    let mut script = String::new();
    let mut skipped = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines = text.lines();
        let mut previous = "";
        while let Some(line) = lines.next() {
            if line.trim() == "```sh" {
                let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
                if previous.trim_start().starts_with(NOT_RUN) {
                    skipped.push(block.join("\n"));
                } else {
                    script.push_str(&format!("\n# --- {}\n", file.display()));
                    script.push_str(&block.join("\n"));
                    script.push('\n');
                }
            }
            previous = line;
        }
    }
    (script, skipped)
}

#[test]
fn readme_examples_run_as_written_against_the_development_credentials() {
    let root = root();
    // The user's working copy: the repository's files, a state of its own.
    let work = temp_dir("readme");
    for name in ["scripts", "docs", "README.md"] {
        std::os::unix::fs::symlink(root.join(name), work.join(name)).unwrap();
    }
    let state = work.join(".spin");
    let cache = root.join("target/e2e/compile-cache");
    let host = Host::spawn(shell(
        &root,
        &format!(
            "scripts/up --listen 127.0.0.1:0 --state-dir '{}' --cache-dir '{}'",
            state.display(),
            cache.display()
        ),
    ));
    assert!(
        host.printed_through("They are shown this once")
            .contains("They are shown this once")
    );

    let (examples, skipped) = examples();
    // Only the blocks that start a server or run this suite are skipped.
    for block in &skipped {
        assert!(
            block.contains("scripts/up")
                || block.contains("scripts/test")
                || block.contains("assetgate-host ")
                || block.contains("spin "),
            "a skipped block that could run:\n{block}"
        );
    }
    // Every protocol has a working example.
    for needle in [
        "/assets",
        "/api/v1/upload/enqueue",
        "/epifiles/ws/manifest",
        "restproxyindex.php",
        "/process",
    ] {
        assert!(examples.contains(needle), "no example uses {needle}");
    }
    let script = format!(
        "set -euo pipefail\n\
         # As in a terminal, but a failed request stops the run (with its body).\n\
         curl() {{ command curl --silent --show-error --fail-with-body \"$@\"; }}\n{}",
        examples.replace(README_ADDRESS, host.base.trim_start_matches("http://"))
    );
    std::fs::write(work.join("examples.sh"), &script).unwrap();
    let out = Command::new("timeout")
        .args(["600", "bash", "examples.sh"])
        .current_dir(&work)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "README's examples failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- script: {}",
        out.status,
        work.join("examples.sh").display()
    );
    eprintln!(
        "README examples: {} lines of shell ran",
        script.lines().count()
    );
}

#[test]
fn development_credentials_only_on_loopback_and_when_nothing_is_configured() {
    // Configured by the user: nothing is generated, the user's key works.
    let dir = temp_dir("dev-configured");
    let host = HostConfig::new("spin.toml", &dir)
        .arg("--dev-credentials")
        .var("upload_api_key", "mine")
        .start();
    let printed = host.printed_through("Development credentials");
    assert!(
        printed.contains("not generated (--variable upload_api_key is set)"),
        "{printed}"
    );
    assert!(!dir.join("dev-credentials.env").exists());
    let r = send(
        "POST",
        &host.url("/assets"),
        &[
            ("authorization", "Bearer mine"),
            ("content-type", "text/plain"),
            ("x-filename", "a.txt"),
        ],
        b"a",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    drop(host);

    // A non-loopback address: nothing is generated, every protocol closed.
    let dir = temp_dir("dev-public");
    let mut config = HostConfig::new("spin.toml", &dir).arg("--dev-credentials");
    config.listen = "0.0.0.0:0".into();
    let host = config.start();
    let printed = host.printed_through("Development credentials");
    assert!(printed.contains("is not a loopback address"), "{printed}");
    assert!(!dir.join("dev-credentials.env").exists());
    assert_eq!(get(&host.url("/status")).status, 200);
    let r = send(
        "POST",
        &host.url("/assets"),
        &[("content-type", "text/plain"), ("x-filename", "a.txt")],
        b"a",
    );
    assert_eq!(r.status, 503, "uploads stay closed: {}", r.text());
    drop(host);

    // Without the flag (how every other test and a deployment runs): no
    // credentials, no file, no banner.
    let dir = temp_dir("dev-off");
    let host = HostConfig::new("spin.toml", &dir).start();
    assert!(
        !host
            .printed_through("Available Routes")
            .contains("Development")
    );
    assert!(!dir.join("dev-credentials.env").exists());
    drop(host);

    // Under Spin the manifest's own defaults apply: they open nothing.
    let manifest: toml::Table = std::fs::read_to_string(root().join("spin.toml"))
        .unwrap()
        .parse()
        .unwrap();
    for name in [
        "upload_api_key",
        "ingest_api_key",
        "epifiles_users",
        "epifiles_admin_token",
        "compute_clients",
    ] {
        let default = manifest["variables"][name]["default"].as_str().unwrap();
        assert!(
            default.is_empty() || default == "[]",
            "{name} defaults to {default:?}"
        );
    }
}
