//! The `assetgate` command-line client (crates/cli) end to end, against the
//! real components on the in-repo host: every subcommand, chunks in flight
//! together, resuming after the server is killed in the middle of an upload
//! and of a download, and the exit statuses scripts rely on.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn cli_binary() -> PathBuf {
    let path = std::env::var_os("ASSETGATE_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/debug/assetgate"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/test, or `cargo build -p assetgate-cli`",
        path.display()
    );
    path
}

fn cli(args: &[&str]) -> Output {
    cli_with_stdin(args, b"")
}

fn cli_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(cli_binary())
        .args(args)
        .env_remove("EPIFILES_USER")
        .env_remove("EPIFILES_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the CLI runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Stdout's last JSON line, after checking the exit status.
fn ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The exit status, and the error as the last line of stderr (progress
/// lines may precede it).
fn failed(out: &Output, code: i32, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && last.contains(says), "{err}");
}

const USER_URL: &str = "http://lab:lab-pw@";

fn users() -> String {
    serde_json::json!([
        {"user": "lab", "password": password_hash("lab-pw", 1000),
         "repositories": {"23": "uploader", "phraseanet": "manager"}},
    ])
    .to_string()
}

fn start(dir: &Path, port: u16) -> Host {
    HostConfig::new("spin.toml", dir)
        .listen(port)
        .var("epifiles_users", &users())
        .var("upload_api_key", "cli-upload-key-0123456789")
        .start()
}

fn base(port: u16) -> String {
    format!("{USER_URL}127.0.0.1:{port}")
}

#[test]
fn epifiles_transfers_in_parallel_resume_after_a_kill_and_exit_statuses() {
    let dir = temp_dir("cli-epifiles");
    let port = free_port();
    let host = start(&dir, port);
    let files = temp_dir("cli-epifiles-files");

    // Several chunks in flight, base64 (the reference) and raw.
    for (raw, size) in [(false, (5 << 20) + 123), (true, 3 << 20)] {
        let path = files.join(format!("data-{raw}.bin"));
        let bytes = noise(size, size as u64);
        std::fs::write(&path, &bytes).unwrap();
        let mut args = vec![
            "epifiles",
            "upload",
            "--quiet",
            "--chunk-size",
            "262144",
            "--parallel",
            "4",
        ];
        if raw {
            args.push("--raw");
        }
        let url = base(port);
        let p = path.to_str().unwrap();
        args.extend([url.as_str(), p]);
        let up = ok(&cli(&args));
        assert_eq!(up["size"], size as u64);
        assert_eq!(up["chunks"], size.div_ceil(262144) as u64);
        assert!(!path.with_extension("bin.assetgate-upload").exists());
        let id = up["id"].as_str().unwrap();
        let out = files.join(format!("copy-{raw}.bin"));
        let down = ok(&cli(&[
            "epifiles",
            "download",
            "--quiet",
            "--parallel",
            "4",
            &url,
            id,
            out.to_str().unwrap(),
        ]));
        assert_eq!(down["md5"], up["md5"]);
        assert!(std::fs::read(&out).unwrap() == bytes, "the copy differs");
    }

    // Killed in the middle of an upload: the state file keeps what the
    // server acknowledged; the same command after a restart finishes it.
    let big = files.join("big.bin");
    let bytes = noise(24 << 20, 99);
    std::fs::write(&big, &bytes).unwrap();
    let state = files.join("big.bin.assetgate-upload");
    let url = base(port);
    let child = Command::new(cli_binary())
        .args([
            "epifiles",
            "upload",
            "--chunk-size",
            "131072",
            "--parallel",
            "2",
            &url,
            big.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let acknowledged = |at_least: usize| {
        wait_for(60, || {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).ok()?).ok()?;
            (v["done"].as_array()?.len() >= at_least).then_some(())
        })
    };
    acknowledged(20).expect("the upload progresses");
    drop(host); // SIGKILL
    let out = child.wait_with_output().unwrap();
    failed(&out, 3, "");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let done = saved["done"].as_array().unwrap().len();
    assert!(
        (20..192).contains(&done),
        "{done} of 192 chunks acknowledged"
    );
    let host = start(&dir, port);
    let up = ok(&cli(&[
        "epifiles",
        "upload",
        "--quiet",
        "--chunk-size",
        "131072",
        "--parallel",
        "3",
        &url,
        big.to_str().unwrap(),
    ]));
    assert!(up["resumed_chunks"].as_u64().unwrap() >= 20, "{up}");
    assert!(!state.exists());
    let id = up["id"].as_str().unwrap().to_string();

    // Killed in the middle of a download: OUT.part and its state stay, the
    // same command finishes it, and the whole file's MD5 is checked.
    let out = files.join("big-copy.bin");
    let dstate = files.join("big-copy.bin.assetgate-download");
    let child = Command::new(cli_binary())
        .args([
            "epifiles",
            "download",
            "--parallel",
            "1",
            &url,
            &id,
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(60, || {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&dstate).ok()?).ok()?;
        (v["done"].as_array()?.len() >= 3).then_some(())
    })
    .expect("the download progresses");
    drop(host);
    failed(&child.wait_with_output().unwrap(), 3, "");
    assert!(files.join("big-copy.bin.part").exists() && !out.exists());
    let host = start(&dir, port);
    let down = ok(&cli(&[
        "epifiles",
        "download",
        "--quiet",
        &url,
        &id,
        out.to_str().unwrap(),
    ]));
    assert!(down["resumed_chunks"].as_u64().unwrap() >= 3, "{down}");
    assert!(
        std::fs::read(&out).unwrap() == bytes,
        "the resumed copy differs"
    );

    // Exit statuses: refused (1), usage (2), network (3), local file (5).
    let wrong = format!("http://lab:nope@127.0.0.1:{port}");
    failed(
        &cli(&["epifiles", "download", &wrong, &id, "/dev/null"]),
        1,
        "401 unauthorized",
    );
    failed(
        &cli(&["epifiles", "download", &url, "no-such-file", "/dev/null"]),
        1,
        "404",
    );
    failed(
        &cli(&["epifiles", "upload", "ftp://x/", "Cargo.toml"]),
        2,
        "http://",
    );
    assert_eq!(cli(&["epifiles", "frobnicate"]).status.code(), Some(2));
    let closed = format!("http://127.0.0.1:{}", free_port());
    failed(
        &cli(&["epifiles", "download", &closed, "1", "/dev/null"]),
        3,
        "",
    );
    failed(
        &cli(&["epifiles", "upload", &url, "no/such/file"]),
        5,
        "no/such/file",
    );
    host.stop();
}

#[test]
fn phraseanet_upload_commit_compute_and_preview() {
    let dir = temp_dir("cli-protocols");
    let files = temp_dir("cli-protocols-files");
    let port = free_port();

    // `compute token` makes the client entry the server is configured with;
    // `hash-password` the user's password.
    let issued = ok(&cli(&[
        "compute",
        "token",
        "--name",
        "cli",
        "--api-key",
        "cli-key",
        "--org",
        "CLI@AdobeOrg",
    ]));
    let token = issued["token"].as_str().unwrap().to_string();
    assert_eq!(issued["client"]["api_key"], "cli-key");
    let hashed = cli_with_stdin(
        &["hash-password", "--iterations", "1000", "--salt", "s4lt"],
        b"lab-pw\n",
    );
    let hash = String::from_utf8(hashed.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("pbkdf2_sha256$1000$s4lt$"), "{hash}");
    let users = serde_json::json!([{"user": "lab", "password": hash,
        "repositories": {"phraseanet": "manager"}}]);
    let host = HostConfig::new("spin.toml", &dir)
        .listen(port)
        .var("epifiles_users", &users.to_string())
        .var("upload_api_key", "cli-upload-key-0123456789")
        .var(
            "compute_clients",
            &serde_json::json!([issued["client"]]).to_string(),
        )
        .start();
    let url = format!("http://127.0.0.1:{port}");

    // `upload`: two files and a commit; the DAM side reads them with the
    // commit's token.
    let photo = files.join("photo 1.jpg");
    std::fs::write(&photo, jpeg(320, 200)).unwrap();
    let note = files.join("note.txt");
    std::fs::write(&note, b"a note").unwrap();
    let up = ok(&cli(&[
        "upload",
        &url,
        photo.to_str().unwrap(),
        note.to_str().unwrap(),
        "--api-key",
        "cli-upload-key-0123456789",
        "--form-data",
        r#"{"title":"From the CLI"}"#,
        "--commit",
    ]));
    let assets = up["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 2);
    let asset = assets[0]["id"].as_str().unwrap().to_string();
    let commit_token = up["commit"]["token"].as_str().unwrap();
    let auth = format!("AssetToken {commit_token}");
    let meta = send(
        "GET",
        &host.url(&format!("/assets/{asset}")),
        &[("authorization", &auth)],
        b"",
    );
    assert_eq!(meta.status, 200, "{}", meta.text());
    assert_eq!(meta.json()["originalName"], "photo 1.jpg");
    assert_eq!(meta.json()["formData"]["title"], "From the CLI");
    let body = send(
        "GET",
        &host.url(&format!("/assets/{asset}/download")),
        &[("authorization", &auth)],
        b"",
    );
    assert!(body.body == std::fs::read(&photo).unwrap());
    failed(
        &cli(&["upload", &url, note.to_str().unwrap(), "--api-key", "wrong"]),
        1,
        "401",
    );

    // `compute`: register, process with --watch (events as they arrive),
    // a failed rendition's exit status, unregister.
    let reg = ok(&cli(&["compute", "register", &url, "--token", &token]));
    assert!(reg["journal"].as_str().unwrap().contains("/journal/"));
    let source = format!("asset:{asset}");
    // `compute process` of the asset with these renditions and options.
    let process = |extra: &[&str]| {
        let mut args = vec![
            "compute", "process", &url, "--token", &token, "--source", &source,
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let out = process(&[
        "--rendition",
        "fmt=png,width=64,name=small.png",
        "--rendition",
        "fmt=jpg,name=crop.jpg,crop=10:20:100:50",
        "--watch",
        "--timeout",
        "60",
    ]);
    let summary = ok(&out);
    assert_eq!(summary["created"], 2);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let event = |name: &str| {
        lines
            .iter()
            .find(|e| e["rendition"]["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(event("small.png")["type"], "rendition_created");
    assert_eq!(event("small.png")["metadata"]["tiff:ImageWidth"], 64);
    assert_eq!(event("crop.jpg")["metadata"]["tiff:ImageWidth"], 100);
    assert_eq!(event("crop.jpg")["metadata"]["tiff:ImageLength"], 50);
    let out = process(&[
        "--rendition",
        "fmt=png,width=8,name=ok.png",
        "--rendition",
        "fmt=bmp,name=no.bmp",
        "--watch",
        "--timeout",
        "60",
    ]);
    failed(&out, 6, "no.bmp");
    assert!(String::from_utf8_lossy(&out.stdout).contains("RenditionFormatUnsupported"));
    let forged = [
        "--token",
        "forged.token.value",
        "--api-key",
        "k",
        "--org",
        "o",
    ];
    let mut args = vec!["compute", "register", &url];
    args.extend_from_slice(&forged);
    failed(&cli(&args), 1, "401");
    ok(&cli(&["compute", "unregister", &url, "--token", &token]));
    failed(&process(&["--rendition", "fmt=png"]), 1, "404");
    failed(&process(&["--rendition", "width=3"]), 2, "fmt");

    // `preview`: log on with the user in the URL, fetch a fitted preview.
    let shot = files.join("preview.jpg");
    let with_user = format!("http://lab:lab-pw@127.0.0.1:{port}");
    let got = ok(&cli(&[
        "preview",
        &with_user,
        "--object",
        &asset,
        "--args",
        "maxWidth_160_maxHeight_160.jpg",
        "-o",
        shot.to_str().unwrap(),
    ]));
    assert_eq!(got["content_type"], "image/jpeg");
    let img = image::load_from_memory(&std::fs::read(&shot).unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (160, 100));
    failed(
        &cli(&[
            "preview",
            &format!("http://lab:bad@127.0.0.1:{port}"),
            "--object",
            &asset,
            "-o",
            "/dev/null",
        ]),
        1,
        "401",
    );
    host.stop();
}
