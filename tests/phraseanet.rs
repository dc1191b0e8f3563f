//! The Phraseanet upload flow end to end, on the real `spin.toml`: our
//! upload service and our ingest side, push and pull, a foreign upload
//! service, and the failures the protocol must survive.

mod common;

use common::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Every request of these tests goes through `common::send`, and every
/// response is checked against docs/openapi.json (`common::openapi`).
fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    openapi::send(method, url, headers, body)
}

fn get(url: &str) -> Reply {
    send("GET", url, &[], &[])
}

const KEY: &str = "upload-key-0123456789";
const INGEST_KEY: &str = "ingest-key-9876543210";

fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {KEY}"))
}

fn ingest_auth() -> (&'static str, String) {
    ("authorization", format!("ApiKey {INGEST_KEY}"))
}

fn with<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn multipart(file: &[u8], name: &str, mime: &str, form: &str) -> (String, Vec<u8>) {
    let boundary = "----assetgate-test-boundary";
    let mut b = Vec::new();
    b.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"formData\"\r\n\r\n{form}\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {mime}\r\n\r\n").as_bytes(),
    );
    b.extend_from_slice(file);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

fn post_form(host: &Host, content_type: &str, body: &[u8]) -> Reply {
    let auth = bearer();
    send(
        "POST",
        &host.url("/assets"),
        &[("content-type", content_type), (auth.0, &auth.1)],
        body,
    )
}

fn upload_multipart(host: &Host, file: &[u8], name: &str) -> serde_json::Value {
    let (ct, body) = multipart(file, name, "image/png", r#"{"title":"Test document"}"#);
    let r = post_form(host, &ct, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn upload_raw(host: &Host, file: &[u8], name: &str, mime: &str) -> Reply {
    let auth = bearer();
    send(
        "POST",
        &host.url("/assets"),
        &[
            ("content-type", mime),
            ("x-filename", name),
            (auth.0, &auth.1),
        ],
        file,
    )
}

fn commit(host: &Host, assets: &[&str]) -> serde_json::Value {
    let body = serde_json::json!({ "assets": assets, "publisher": "d03fc9f6-3c6b", "formData": {"batch": 1} });
    let auth = bearer();
    let r = send(
        "POST",
        &host.url("/commits"),
        &[("content-type", "application/json"), (auth.0, &auth.1)],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// Uploads each file, then commits them all: their ids and the commit.
fn upload_and_commit(host: &Host, files: &[Vec<u8>]) -> (Vec<String>, serde_json::Value) {
    let ids: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            upload_multipart(host, f, &format!("f{i}.png"))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let c = commit(host, &refs);
    (ids, c)
}

fn get_with(url: &str, headers: &[(&'static str, String)]) -> Reply {
    send("GET", url, &with(headers), &[])
}

fn wait_job(host: &Host, id: &str, done: &[&str]) -> serde_json::Value {
    wait_for(90, || {
        let r = get_with(
            &host.url(&format!("/api/v1/upload/jobs/{id}")),
            &[ingest_auth()],
        );
        (r.status == 200 && done.contains(&r.json()["status"].as_str().unwrap_or("")))
            .then(|| r.json())
    })
    .unwrap_or_else(|| {
        let r = get_with(
            &host.url(&format!("/api/v1/upload/jobs/{id}")),
            &[ingest_auth()],
        );
        panic!("job {id} did not reach {done:?}: {} {}", r.status, r.text())
    })
}

/// Our own upload service and ingest side in one app, calling each other
/// over loopback.
fn self_host(name: &str, push: bool) -> (Host, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = temp_dir(name);
    let mut cfg = HostConfig::new("spin.toml", &dir)
        .listen(port)
        .var("upload_api_key", KEY)
        .var("ingest_api_key", INGEST_KEY)
        .var("ingest_allowed_base_urls", &base)
        .var("ingest_outbound_host", &base)
        .var("blob_chunk_size", "65536");
    if push {
        cfg = cfg
            .var("upload_push_url", &base)
            .var("upload_push_host", &base)
            .var("upload_push_key", INGEST_KEY);
    } else {
        cfg = cfg
            .var("ingest_pull_url", &base)
            .var("ingest_pull_key", KEY);
    }
    (cfg.start(), base)
}

fn assert_ingested(host: &Host, job: &serde_json::Value, originals: &[&[u8]]) {
    assert!(
        job.get("token").is_none(),
        "the job view never shows the token"
    );
    let assets = job["assets"].as_array().unwrap();
    assert_eq!(assets.len(), originals.len());
    for (a, original) in assets.iter().zip(originals) {
        assert_eq!(a["state"], "stored", "{a}");
        let local = a["local_id"].as_str().unwrap();
        // Ingested into the shared catalog: the upload side serves it too.
        let r = get_with(&host.url(&format!("/assets/{local}/download")), &[bearer()]);
        assert_eq!(r.status, 200);
        assert!(r.body == *original, "ingested bytes differ");
    }
}

#[test]
fn push_mode_upload_commit_enqueue_pull_store_ack() {
    let (host, base) = self_host("push", true);
    let one = data(300_000, 1);
    let two = data(70_000, 2);
    let a1 = upload_multipart(&host, &one, "photo.png");
    assert_eq!(a1["size"], 300_000);
    assert_eq!(a1["originalName"], "photo.png");
    assert_eq!(a1["mimeType"], "image/png");
    assert_eq!(a1["formData"]["title"], "Test document");
    assert_eq!(a1["acknowledged"], false);
    let r = upload_raw(&host, &two, "scan.tif", "image/tiff");
    assert_eq!(r.status, 201, "{}", r.text());
    let a2 = r.json();

    let c = commit(
        &host,
        &[a1["id"].as_str().unwrap(), a2["id"].as_str().unwrap()],
    );
    let token = c["token"].as_str().unwrap();
    assert!(
        token.len() >= 40 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    assert_eq!(c["acknowledged"], false);
    let cid = c["id"].as_str().unwrap();

    let acked = wait_for(90, || {
        let r = get_with(&host.url(&format!("/commits/{cid}")), &[bearer()]);
        (r.json()["acknowledged"] == true).then(|| r.json())
    });
    let acked =
        acked.unwrap_or_else(|| panic!("commit never acknowledged; logs:\n{}", host.logs()));
    assert!(acked["push"]["delivered_at"].is_u64(), "{}", acked["push"]);
    let job = wait_job(&host, &ingest_job_id(&base, &c), &["done"]);
    assert_eq!(job["acknowledged"], true);
    assert_ingested(&host, &job, &[&one, &two]);
    // Acknowledged commits leave the pull listing.
    let listing = get_with(&host.url("/commits?acknowledged=false"), &[bearer()]).json();
    assert_eq!(listing["hydra:totalItems"], 0);
}

#[test]
fn push_without_commit_id_and_pull_of_the_same_commit_ingest_once() {
    // A sender pushes the reference's body (no `commit_id`); the job takes
    // the assets in but cannot acknowledge the commit. Later the pull sees
    // the commit, still listed: the same job, nothing downloaded again, and
    // now the commit is acknowledged.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = temp_dir("push-and-pull");
    let config = |pull: bool| {
        let mut cfg = HostConfig::new("spin.toml", &dir)
            .listen(port)
            .var("upload_api_key", KEY)
            .var("ingest_api_key", INGEST_KEY)
            .var("ingest_allowed_base_urls", &base)
            .var("ingest_outbound_host", &base);
        if pull {
            cfg = cfg
                .var("ingest_pull_url", &base)
                .var("ingest_pull_key", KEY);
        }
        cfg
    };
    let host = config(false).start();
    let files = [data(40_000, 11), data(20_000, 12)];
    let (ids, c) = upload_and_commit(&host, &files);
    let cid = c["id"].as_str().unwrap();
    let pushed = serde_json::json!({
        "assets": [ids[1], ids[0]],
        "publisher": c["publisher"],
        "token": c["token"],
        "base_url": base,
    });
    let r = enqueue(&host, pushed);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["id"], ingest_job_id(&base, &c));
    let pushed_job = wait_job(&host, &ingest_job_id(&base, &c), &["done"]);
    assert_eq!(pushed_job["acknowledged"], false);
    // The job keeps the order of the notification that made it.
    assert_ingested(&host, &pushed_job, &[&files[1], &files[0]]);
    let listed = get_with(&host.url("/commits?acknowledged=false"), &[bearer()]).json();
    assert_eq!(listed["hydra:totalItems"], 1);
    host.stop();

    let host = config(true).start();
    let r = poll(&host);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["enqueued"],
        0,
        "the pulled commit is the pushed job"
    );
    let acked = wait_for(20, || {
        let r = get_with(&host.url(&format!("/commits/{cid}")), &[bearer()]).json();
        (r["acknowledged"] == true).then_some(r)
    });
    assert!(
        acked.is_some(),
        "commit never acknowledged:\n{}",
        host.logs()
    );
    let job = wait_job(&host, &ingest_job_id(&base, &c), &["done"]);
    assert_eq!(job["acknowledged"], true, "{job}");
    assert_eq!(job["commit_id"], cid);
    // Nothing was taken in twice: the same local assets.
    assert_eq!(job["assets"], pushed_job["assets"]);
}

#[test]
fn pull_mode_poll_enqueues_each_commit_once() {
    let (host, base) = self_host("pull", false);
    let one = data(150_000, 3);
    let a = upload_multipart(&host, &one, "a.png");
    let c = commit(&host, &[a["id"].as_str().unwrap()]);
    let cid = c["id"].as_str().unwrap();

    let listing = get_with(&host.url("/commits?acknowledged=false"), &[bearer()]).json();
    assert_eq!(listing["hydra:totalItems"], 1);
    let member = &listing["hydra:member"][0];
    assert_eq!(member["id"], cid);
    assert_eq!(member["token"], c["token"]);
    assert_eq!(member["base_url"], base);

    let r = poll(&host);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["enqueued"], 1);
    let r = poll(&host);
    assert_eq!(r.json()["enqueued"], 0, "a commit is never enqueued twice");

    let job = wait_job(&host, &ingest_job_id(&base, &c), &["done"]);
    assert_ingested(&host, &job, &[&one]);
    let r = get_with(&host.url(&format!("/commits/{cid}")), &[bearer()]);
    assert_eq!(r.json()["acknowledged"], true);
}

/// A small, independent upload service speaking only the reference's
/// endpoints.
#[derive(Default)]
struct Foreign {
    /// id → (bytes, advertised size)
    assets: HashMap<String, (Vec<u8>, u64)>,
    token: String,
    downloads: Vec<String>,
    acks: Vec<String>,
    auth_seen: Vec<String>,
}

fn foreign_service(state: Arc<Mutex<Foreign>>) -> u16 {
    http_server(move |req| {
        let json = "application/json";
        let auth = req.header("authorization").unwrap_or_default().to_string();
        let mut st = state.lock().unwrap();
        st.auth_seen.push(auth.clone());
        if auth != format!("AssetToken {}", st.token) {
            return (401, json, b"{}".to_vec());
        }
        match (req.method.as_str(), req.segments().as_slice()) {
            ("GET", ["assets", id]) => match st.assets.get(*id) {
                Some((_, size)) => {
                    let meta = serde_json::json!({
                        "id": id, "size": size, "formData": {"title": "from afar"},
                        "originalName": format!("{id}.jpg"), "mimeType": "image/jpeg",
                        "createdAt": "2019-05-15T14:13:54+00:00"
                    });
                    (200, json, meta.to_string().into_bytes())
                }
                None => (404, json, b"{}".to_vec()),
            },
            ("GET", ["assets", id, "download"]) => match st.assets.get(*id).cloned() {
                Some((bytes, _)) => {
                    st.downloads.push(id.to_string());
                    (200, "image/jpeg", bytes)
                }
                None => (404, json, b"{}".to_vec()),
            },
            ("POST", ["commits", id, "ack"]) => {
                st.acks.push(id.to_string());
                (200, json, b"{}".to_vec())
            }
            _ => (404, json, b"{}".to_vec()),
        }
    })
}

/// `POST /api/v1/upload/poll`, as the DAM's scheduler calls it.
fn poll(host: &Host) -> Reply {
    send(
        "POST",
        &host.url("/api/v1/upload/poll"),
        &with(&[ingest_auth()]),
        b"",
    )
}

fn enqueue(host: &Host, body: serde_json::Value) -> Reply {
    let auth = ingest_auth();
    send(
        "POST",
        &host.url("/api/v1/upload/enqueue"),
        &[("content-type", "application/json"), (auth.0, &auth.1)],
        body.to_string().as_bytes(),
    )
}

#[test]
fn ingest_from_a_foreign_upload_service_and_its_failures() {
    let state = Arc::new(Mutex::new(Foreign {
        token: "f87700b7cd".into(),
        ..Foreign::default()
    }));
    let one = data(200_000, 9);
    let two = data(1234, 8);
    {
        let mut st = state.lock().unwrap();
        st.assets
            .insert("4c097077-a26b".into(), (one.clone(), one.len() as u64));
        st.assets
            .insert("a134145e-9461".into(), (two.clone(), two.len() as u64));
        // Advertises more bytes than it sends.
        st.assets.insert("liar".into(), (data(900, 7), 1000));
    }
    let port = foreign_service(state.clone());
    let foreign = format!("http://127.0.0.1:{port}");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dir = temp_dir("foreign");
    let host = HostConfig::new("spin.toml", &dir)
        .var("ingest_api_key", INGEST_KEY)
        .var("ingest_allowed_base_urls", &format!("{foreign},{dead}"))
        .var("ingest_outbound_host", "http://127.0.0.1:*")
        .var("ingest_max_attempts", "2")
        .var("ingest_retry_base_secs", "0")
        .start();

    // The reference's request, plus where to fetch from.
    let request = serde_json::json!({
        "assets": ["4c097077-a26b", "a134145e-9461"],
        "publisher": "d03fc9f6-3c6b",
        "token": "f87700b7cd",
        "commit_id": "c-1",
        "base_url": foreign,
    });
    let r = enqueue(&host, request.clone());
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["created"], true);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let job = wait_job(&host, &id, &["done"]);
    assert_eq!(job["assets"][0]["state"], "stored");
    assert_eq!(job["assets"][1]["state"], "stored");
    assert_eq!(state.lock().unwrap().acks, vec!["c-1".to_string()]);
    assert!(
        state
            .lock()
            .unwrap()
            .auth_seen
            .iter()
            .all(|a| a == "AssetToken f87700b7cd")
    );

    // Replayed notification: same job, nothing downloaded or stored twice.
    let r = enqueue(&host, request.clone());
    assert_eq!(
        (
            r.status,
            r.json()["id"].as_str().unwrap(),
            r.json()["created"].as_bool()
        ),
        (202, id.as_str(), Some(false))
    );
    send(
        "POST",
        &host.url("/api/v1/upload/work"),
        &with(&[ingest_auth()]),
        b"",
    );
    assert_eq!(state.lock().unwrap().downloads.len(), 2);
    assert_eq!(state.lock().unwrap().acks.len(), 1);

    // Size mismatch: the asset fails, the commit is not acknowledged.
    let mut liar = request.clone();
    liar["assets"] = serde_json::json!(["4c097077-a26b", "liar"]);
    liar["commit_id"] = "c-2".into();
    let id2 = enqueue(&host, liar).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait_job(&host, &id2, &["failed"]);
    assert_eq!(job["assets"][1]["state"], "failed");
    assert!(
        job["assets"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("size mismatch"),
        "{job}"
    );
    assert!(!state.lock().unwrap().acks.contains(&"c-2".to_string()));

    // Wrong token: the service refuses, the asset fails for good.
    let mut wrong = request.clone();
    wrong["token"] = "not-the-token".into();
    wrong["commit_id"] = "c-3".into();
    let id3 = enqueue(&host, wrong).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait_job(&host, &id3, &["failed"]);
    assert!(
        job["assets"][0]["reason"].as_str().unwrap().contains("401"),
        "{job}"
    );

    // Upload service down: retried, then failed with the reason.
    let mut down = request.clone();
    down["base_url"] = dead.clone().into();
    down["commit_id"] = "c-4".into();
    let id4 = enqueue(&host, down).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait_for(60, || {
        send(
            "POST",
            &host.url("/api/v1/upload/work"),
            &with(&[ingest_auth()]),
            b"",
        );
        let j = get_with(
            &host.url(&format!("/api/v1/upload/jobs/{id4}")),
            &[ingest_auth()],
        )
        .json();
        (j["status"] == "failed").then_some(j)
    })
    .expect("job against a dead service ends failed");
    assert_eq!(job["attempts"], 2);
    let reason = job["last_error"].as_str().unwrap();
    assert!(
        reason.contains("gave up after 2 attempts") && reason.contains("failed"),
        "{reason}"
    );
    assert_eq!(job["assets"][0]["state"], "failed");

    // A base_url outside the allow-list never receives the token.
    let mut evil = request.clone();
    evil["base_url"] = "http://127.0.0.1:1".into();
    let r = enqueue(&host, evil);
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("ingest_allowed_base_urls"),
        "{}",
        r.text()
    );
    // Malformed notifications.
    assert_eq!(
        enqueue(
            &host,
            serde_json::json!({"assets": [], "publisher": "p", "token": "t"})
        )
        .status,
        400
    );
    assert_eq!(
        enqueue(&host, serde_json::json!({"publisher": "p"})).status,
        400
    );
    let mut traversal = request.clone();
    traversal["assets"] = serde_json::json!(["../../admin"]);
    assert_eq!(enqueue(&host, traversal).status, 400);
    // The ingest key is required once configured.
    let r = send(
        "POST",
        &host.url("/api/v1/upload/enqueue"),
        &[("authorization", "ApiKey wrong")],
        request.to_string().as_bytes(),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn upload_side_auth_limits_ranges_and_acks() {
    let dir = temp_dir("upload-errors");
    let host = HostConfig::new("spin.toml", &dir)
        .var("upload_api_key", KEY)
        .var("upload_max_size", "500000")
        .var("upload_max_files_per_commit", "2")
        .var("upload_allowed_mime_types", "image/*,application/pdf")
        .start();
    let img = data(10_000, 5);

    // The API key guards uploads and the listing.
    let r = send(
        "POST",
        &host.url("/assets"),
        &[("content-type", "image/png")],
        &img,
    );
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    let r = send(
        "POST",
        &host.url("/assets"),
        &[
            ("content-type", "image/png"),
            ("authorization", "Bearer nope"),
        ],
        &img,
    );
    assert_eq!(r.status, 401);
    assert_eq!(get(&host.url("/commits?acknowledged=false")).status, 401);
    // Empty, oversized, refused types.
    assert_eq!(upload_raw(&host, b"", "e.png", "image/png").status, 400);
    // Too large: refused on Content-Length before the body is read, and
    // while streaming when the length is not announced.
    let big = data(600_000, 1);
    let announced = format!(
        "POST /assets HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-type: image/png\r\ncontent-length: {}\r\n\r\n",
        big.len()
    );
    assert_eq!(raw_request(&host, announced.as_bytes(), &[]).0, 413);
    let chunked = format!(
        "POST /assets HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-type: image/png\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let mut body = Vec::new();
    for piece in big.chunks(50_000) {
        body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw_request(&host, chunked.as_bytes(), &body).0, 413);
    let r = upload_raw(&host, b"just some text", "notes.txt", "text/plain");
    assert_eq!(r.status, 415, "{}", r.text());
    let (ct, mut body) = multipart(&img, "x.png", "image/png", "{}");
    body.truncate(body.len() - 10);
    let r = post_form(&host, &ct, &body);
    assert_eq!(r.status, 400, "truncated multipart: {}", r.text());

    let a = upload_raw(&host, &img, "a.png", "image/png").json();
    let b = upload_raw(&host, &img, "b.png", "image/png").json();
    let extra: Vec<String> = (0..2)
        .map(|_| {
            upload_raw(&host, &img, "x.png", "image/png").json()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let auth = bearer();
    let too_many = serde_json::json!({"assets": [extra[0], extra[1], a], "publisher": "p"});
    let r = send(
        "POST",
        &host.url("/commits"),
        &[("content-type", "application/json"), (auth.0, &auth.1)],
        too_many.to_string().as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    let c1 = commit(&host, &[a]);
    let c2 = commit(&host, &[b]);
    let t1 = c1["token"].as_str().unwrap();
    let t2 = c2["token"].as_str().unwrap();
    let tok = |t: &str| ("authorization", format!("AssetToken {t}"));

    // AssetToken scoping.
    let meta = get_with(&host.url(&format!("/assets/{a}")), &[tok(t1)]);
    assert_eq!(meta.status, 200);
    let m = meta.json();
    for field in [
        "id",
        "size",
        "formData",
        "originalName",
        "mimeType",
        "createdAt",
        "hash",
        "acknowledged",
    ] {
        assert!(m.get(field).is_some(), "metadata lacks {field}: {m}");
    }
    assert_eq!(
        get_with(&host.url(&format!("/assets/{a}")), &[tok(t2)]).status,
        403
    );
    assert_eq!(
        get_with(&host.url(&format!("/assets/{a}")), &[tok("forged")]).status,
        401
    );
    assert_eq!(get(&host.url(&format!("/assets/{a}"))).status, 401);
    assert_eq!(
        get_with(&host.url("/assets/unknown-asset"), &[tok(t1)]).status,
        404
    );
    assert_eq!(
        get_with(&host.url(&format!("/assets/{a}/download")), &[tok(t2)]).status,
        403
    );

    // Downloads: whole, ranged, unsatisfiable.
    let d = get_with(&host.url(&format!("/assets/{a}/download")), &[tok(t1)]);
    assert_eq!(d.status, 200);
    assert!(d.body == img);
    assert_eq!(d.header("content-length"), Some("10000"));
    assert!(d.header("content-disposition").unwrap().contains("a.png"));
    let d = get_with(
        &host.url(&format!("/assets/{a}/download")),
        &[tok(t1), ("range", "bytes=100-199".into())],
    );
    assert_eq!(d.status, 206);
    assert_eq!(d.header("content-range"), Some("bytes 100-199/10000"));
    assert!(d.body == img[100..200]);
    let d = get_with(
        &host.url(&format!("/assets/{a}/download")),
        &[tok(t1), ("range", "bytes=20000-".into())],
    );
    assert_eq!(d.status, 416);
    assert_eq!(d.header("content-range"), Some("bytes */10000"));

    // Acks are idempotent; an acknowledged commit leaves the listing.
    let ack = |t: &str, c: &str| {
        send(
            "POST",
            &host.url(&format!("/commits/{c}/ack")),
            &[("authorization", &format!("AssetToken {t}"))],
            b"",
        )
    };
    let c1id = c1["id"].as_str().unwrap();
    assert_eq!(ack(t2, c1id).status, 403);
    let r = ack(t1, c1id);
    assert_eq!((r.status, r.json()["changed"].as_bool()), (200, Some(true)));
    let r = ack(t1, c1id);
    assert_eq!(
        (
            r.status,
            r.json()["changed"].as_bool(),
            r.json()["acknowledged"].as_bool()
        ),
        (200, Some(false), Some(true))
    );
    assert_eq!(
        get_with(&host.url(&format!("/assets/{a}")), &[tok(t1)]).json()["acknowledged"],
        true
    );
    let r = send(
        "POST",
        &host.url(&format!("/assets/{b}/ack")),
        &[("authorization", &format!("AssetToken {t2}"))],
        b"",
    );
    assert_eq!(r.status, 200);
    // b was c2's only asset: acknowledging it acknowledges c2 (as
    // Phraseanet's per-asset acks expect), so neither commit is listed.
    let listing = get_with(&host.url("/commits?acknowledged=false"), &[bearer()]).json();
    assert_eq!(listing["hydra:totalItems"], 0);
    let c2id = c2["id"].as_str().unwrap();
    assert_eq!(
        get_with(&host.url(&format!("/commits/{c2id}")), &[bearer()]).json()["acknowledged"],
        true
    );
    assert_eq!(
        get_with(&host.url("/commits?acknowledged=false&page=0"), &[bearer()]).status,
        400
    );
    // Unknown routes and methods.
    assert_eq!(
        send(
            "DELETE",
            &host.url(&format!("/assets/{a}")),
            &with(&[bearer()]),
            b""
        )
        .status,
        405
    );
}

/// A DAM that counts the notifications it receives per commit, answers
/// slowly (so attempts overlap with other requests) and fails the first
/// `fail_first` of them with 503.
struct Dam {
    port: u16,
    received: Arc<Mutex<Vec<String>>>,
}

fn dam(delay_ms: u64, fail_first: usize) -> Dam {
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    let port = http_server(move |req| {
        // Phraseanet routes the path with its trailing slash only.
        if req.method != "POST" || req.path != "/api/v1/upload/enqueue/" {
            return (404, "text/plain", b"no".to_vec());
        }
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        let n = {
            let mut seen = seen.lock().unwrap();
            seen.push(body["commit_id"].as_str().unwrap_or("").to_string());
            seen.len()
        };
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if n <= fail_first {
            (503, "text/plain", b"busy".to_vec())
        } else {
            (202, "application/json", br#"{"id":"job"}"#.to_vec())
        }
    });
    Dam { port, received }
}

/// An upload service pushing to `dam`; `replicas` hosts on one store.
fn pushing_replicas(name: &str, dam: &Dam, replicas: usize, retry_secs: u64) -> Vec<Host> {
    let dir = temp_dir(name);
    let target = format!("http://127.0.0.1:{}", dam.port);
    (0..replicas)
        .map(|_| {
            HostConfig::new("spin.toml", &dir)
                .var("upload_api_key", KEY)
                .var("upload_push_url", &target)
                .var("upload_push_host", &target)
                .var("upload_push_retry_secs", &retry_secs.to_string())
                .start()
        })
        .collect()
}

/// Ordinary requests to every replica, from several clients at once, for
/// `secs` seconds: each runs the retry pass after its answer.
fn busy_clients(hosts: &[Host], asset: &str, secs: u64) {
    let urls: Vec<String> = hosts
        .iter()
        .map(|h| h.url(&format!("/assets/{asset}")))
        .collect();
    std::thread::scope(|s| {
        for i in 0..8 {
            let url = urls[i % urls.len()].clone();
            s.spawn(move || {
                let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
                while std::time::Instant::now() < end {
                    let r = get_with(&url, &[bearer()]);
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            });
        }
    });
}

/// Commits one asset on two replicas pushing to `dam`, keeps them busy for
/// `secs` seconds, and returns the commit as the other replica then sees it.
fn push_under_load(name: &str, dam: &Dam, secs: u64) -> serde_json::Value {
    let hosts = pushing_replicas(name, dam, 2, 1);
    let asset = upload_raw(&hosts[0], name.as_bytes(), "a.txt", "text/plain").json();
    let asset = asset["id"].as_str().unwrap();
    let c = commit(&hosts[1], &[asset]);
    busy_clients(&hosts, asset, secs);
    let cid = c["id"].as_str().unwrap();
    get_with(&hosts[0].url(&format!("/commits/{cid}")), &[bearer()]).json()
}

#[test]
fn push_is_sent_once_per_attempt_under_concurrent_requests_and_replicas() {
    // Delivered on the first attempt, which is in flight while 8 clients
    // keep two replicas busy: one notification.
    let dam_ok = dam(700, 0);
    let state = push_under_load("push-once", &dam_ok, 3);
    assert!(state["push"]["delivered_at"].is_u64(), "{state}");
    assert_eq!(state["push"]["attempts"], 1, "{state}");
    assert_eq!(
        *dam_ok.received.lock().unwrap(),
        vec![state["id"].as_str().unwrap().to_string()]
    );

    // The first attempt fails; after the 1 s backoff every busy request on
    // both replicas finds the retry due, and one of them sends it.
    let dam_flaky = dam(300, 1);
    let state = push_under_load("push-retry-once", &dam_flaky, 4);
    assert!(state["push"]["delivered_at"].is_u64(), "{state}");
    assert_eq!(state["push"]["attempts"], 2, "{state}");
    assert_eq!(dam_flaky.received.lock().unwrap().len(), 2);
}

#[test]
fn a_scheduler_retries_pushes_on_an_idle_service() {
    let dam = dam(0, 1);
    // A backoff long enough that a loaded machine still makes the refused
    // call below before the retry is due.
    let hosts = pushing_replicas("push-scheduler", &dam, 1, 4);
    let host = &hosts[0];
    let asset = upload_raw(host, b"idle", "c.txt", "text/plain").json();
    let c = commit(host, &[asset["id"].as_str().unwrap()]);
    let cid = c["id"].as_str().unwrap();
    let failed = wait_for(10, || {
        let r = get_with(&host.url(&format!("/commits/{cid}")), &[bearer()]).json();
        r["push"]["last_error"].is_string().then_some(r)
    })
    .expect("the first attempt fails");
    assert_eq!(failed["push"]["attempts"], 1);
    // The scheduler's call needs the API key (asked before the backoff is
    // over: every request, refused or not, runs the small retry pass).
    let r = send("POST", &host.url("/push/work"), &[], b"");
    assert_eq!(r.status, 401, "{}", r.text());
    // Idle past the backoff: nothing retries by itself.
    std::thread::sleep(std::time::Duration::from_millis(4500));
    assert_eq!(dam.received.lock().unwrap().len(), 1);
    let auth = bearer();
    let r = send("POST", &host.url("/push/work"), &[(auth.0, &auth.1)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"enabled": true, "attempted": 1, "delivered": 1, "failed": 0})
    );
    assert_eq!(dam.received.lock().unwrap().len(), 2);
    // Nothing left to do: a second call sends nothing.
    let r = send("POST", &host.url("/push/work"), &[(auth.0, &auth.1)], b"");
    assert_eq!(r.json()["attempted"], 0);
    assert_eq!(dam.received.lock().unwrap().len(), 2);
}

#[test]
fn a_phraseanet_like_worker_ingests_from_the_upload_service() {
    // The DAM: Phraseanet's route (trailing slash) and `OAuth` tokens.
    let notified: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let seen = notified.clone();
    let dam_port = http_server(move |req| {
        if req.method != "POST" || req.path != "/api/v1/upload/enqueue/" {
            return (404, "text/plain", b"No route found".to_vec());
        }
        let auth = req.header("authorization").unwrap_or("").to_string();
        seen.lock()
            .unwrap()
            .push((auth, serde_json::from_slice(&req.body).unwrap()));
        (200, "application/json", b"{}".to_vec())
    });
    let dam = format!("http://127.0.0.1:{dam_port}");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = temp_dir("phraseanet-worker");
    let host = HostConfig::new("spin.toml", &dir)
        .listen(port)
        .var("upload_api_key", KEY)
        .var("upload_push_url", &dam)
        .var("upload_push_host", &dam)
        .var("upload_push_key", "dam-token")
        .var("ingest_api_key", INGEST_KEY)
        .var("ingest_allowed_base_urls", &base)
        .var("ingest_outbound_host", &base)
        .start();
    let files = [data(5000, 7), data(9000, 8)];
    let (ids, c) = upload_and_commit(&host, &files);
    let cid = c["id"].as_str().unwrap();
    let (auth, note) =
        wait_for(10, || notified.lock().unwrap().first().cloned()).expect("the DAM was notified");
    assert_eq!(auth, "OAuth dam-token");
    openapi::check_value("/components/schemas/PushNotification", &note);
    assert_eq!(note["commit_id"], cid);
    assert_eq!(note["base_url"], base);
    let token = note["token"].as_str().unwrap().to_string();
    let asset_token = [("authorization", format!("AssetToken {token}"))];

    // Its pull worker reads `userId` as the publisher.
    let listing = get_with(&host.url("/commits?acknowledged=false"), &[bearer()]).json();
    assert_eq!(listing["hydra:member"][0]["userId"], c["publisher"]);

    // Its record worker: metadata, then the bytes from the metadata's `url`,
    // then an ack per asset.
    for (i, id) in ids.iter().enumerate() {
        let meta = get_with(&format!("{base}/assets/{id}"), &asset_token).json();
        let url = meta["url"].as_str().unwrap();
        assert_eq!(url, format!("{base}/assets/{id}/download"));
        let bytes = get_with(url, &asset_token);
        assert_eq!(bytes.status, 200);
        assert!(bytes.body == files[i], "asset {i} downloaded intact");
        let r = send(
            "POST",
            &format!("{base}/assets/{id}/ack"),
            &[
                ("content-type", "application/json"),
                (asset_token[0].0, &asset_token[0].1),
            ],
            br#"{"acknowledged":true}"#,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let state = get_with(&host.url(&format!("/commits/{cid}")), &[bearer()]).json();
        let listed = get_with(&host.url("/commits?acknowledged=false"), &[bearer()]).json();
        if i == 0 {
            // One asset of two: the commit is still to be taken.
            assert_eq!(state["acknowledged"], false);
            assert_eq!(listed["hydra:totalItems"], 1);
        } else {
            // Every asset acknowledged: so is the commit, out of the listing.
            assert_eq!(state["acknowledged"], true);
            assert_eq!(listed["hydra:totalItems"], 0);
        }
    }

    // Our ingest side takes what real senders send: Phraseanet's path with
    // its slash and the `OAuth` scheme, with the same key check.
    let body =
        serde_json::json!({"assets": [ids[0]], "publisher": "p", "token": token, "base_url": base});
    let enqueue = |auth: &str| {
        send(
            "POST",
            &host.url("/api/v1/upload/enqueue/"),
            &[
                ("content-type", "application/json"),
                ("authorization", auth),
            ],
            body.to_string().as_bytes(),
        )
    };
    assert_eq!(enqueue("OAuth wrong-key").status, 401);
    for scheme in ["OAuth", "Bearer", "ApiKey"] {
        let r = enqueue(&format!("{scheme} {INGEST_KEY}"));
        assert_eq!(r.status, 202, "{scheme}: {}", r.text());
    }
}
