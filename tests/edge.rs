//! The edge build (`spin.edge.toml`, `target/edge/`) and the host's edge
//! profile, which holds a component to the limits of Fermyon Wasm Functions
//! / Akamai Functions: no `wasi:keyvalue/atomics`, 128 MiB of memory,
//! 10 MiB bodies, 30 s per request. The protocol suites also run whole under
//! this profile (`ASSETGATE_E2E_PROFILE=edge`, the second pass of
//! scripts/test); this file checks what only the edge has.

mod common;

use common::redis::{fresh_db, shared};
use common::*;
use std::collections::BTreeMap;

/// Defaults the edge manifest lowers to fit the platforms' limits.
const EDGE_DEFAULTS: &[(&str, &str)] = &[
    ("http_max_body_bytes", "10485760"),
    ("epifiles_max_chunk_size", "2097152"),
    ("preview_max_decode_bytes", "50331648"),
    ("compute_max_request_bytes", "10485760"),
    ("compute_max_decode_bytes", "50331648"),
    ("upload_push_lease_secs", "35"),
    ("ingest_lease_secs", "35"),
    ("compute_lease_secs", "35"),
    ("compute_job_timeout_secs", "25"),
];

fn manifest(path: &str) -> toml::Table {
    std::fs::read_to_string(root().join(path))
        .unwrap()
        .parse()
        .unwrap()
}

fn table<'a>(t: &'a toml::Table, key: &str) -> &'a toml::Table {
    t[key].as_table().unwrap()
}

/// The edge manifest is spin.toml with the edge build's sources, no
/// key-value store, the Redis store required and the platforms' body limit.
#[test]
fn the_edge_manifest_is_spin_toml_with_the_edge_build() {
    let (spin, edge) = (manifest("spin.toml"), manifest("spin.edge.toml"));
    assert_eq!(spin["application"], edge["application"]);
    assert_eq!(spin["trigger"], edge["trigger"], "same routes");

    let (sv, ev) = (table(&spin, "variables"), table(&edge, "variables"));
    let names = |t: &toml::Table| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(sv), names(ev), "same variables");
    for (name, decl) in sv {
        match name.as_str() {
            "store_redis_url" | "store_redis_host" => {
                assert_eq!(ev[name]["required"].as_bool(), Some(true), "{name}");
                assert_eq!(ev[name].get("secret"), decl.get("secret"), "{name}");
            }
            _ if EDGE_DEFAULTS.iter().any(|(n, _)| n == name) => {
                let edge_default = EDGE_DEFAULTS.iter().find(|(n, _)| n == name).unwrap().1;
                assert_eq!(ev[name]["default"].as_str(), Some(edge_default), "{name}");
                assert_ne!(decl["default"], ev[name]["default"], "{name}");
            }
            _ => assert_eq!(&ev[name], decl, "variable {name}"),
        }
    }

    let (sc, ec) = (table(&spin, "component"), table(&edge, "component"));
    assert_eq!(names(sc), names(ec), "same components");
    for (id, c) in sc {
        let (c, e) = (c.as_table().unwrap(), ec[id].as_table().unwrap());
        let source = c["source"].as_str().unwrap();
        let file = source.rsplit('/').next().unwrap();
        assert_eq!(
            e["source"].as_str(),
            Some(format!("target/edge/{file}").as_str())
        );
        assert!(
            e.get("key_value_stores").is_none(),
            "{id} uses no key-value store"
        );
        assert_eq!(
            c["allowed_outbound_hosts"], e["allowed_outbound_hosts"],
            "{id}"
        );
        assert!(
            c["allowed_outbound_hosts"]
                .as_array()
                .unwrap()
                .contains(&"{{ store_redis_host }}".into()),
            "{id} may reach the Redis store"
        );
        assert_eq!(c["variables"], e["variables"], "{id}");
        assert_eq!(
            c["variables"]["store_redis_url"].as_str(),
            Some("{{ store_redis_url }}"),
            "{id} reads the store's address"
        );
        let build = e["build"]["command"].as_str().unwrap();
        assert!(
            build.contains("--features assetgate-store/edge")
                && build.ends_with(&format!(
                    "cp target/wasm32-wasip2/release/{file} target/edge/"
                )),
            "{id}: {build}"
        );
    }
}

fn edge_host(dir: &std::path::Path) -> HostConfig<'_> {
    let redis = shared();
    HostConfig::new("spin.edge.toml", dir)
        .arg("--profile")
        .arg("edge")
        .redis_store(&redis.url(fresh_db()), &redis.host())
}

/// The profile refuses, at start-up, any import outside the platforms'
/// list: the default build (atomics) fails, naming the interface; the edge
/// build starts.
#[test]
fn the_edge_profile_accepts_the_edge_build_and_refuses_atomics() {
    let dir = temp_dir("edge-imports");
    let err = HostConfig::new("spin.toml", &dir)
        .arg("--profile")
        .arg("edge")
        .start_failure();
    assert!(
        err.contains("wasi:keyvalue/atomics") && err.contains("edge"),
        "{err}"
    );
    let host = edge_host(&dir).start();
    let r = get(&host.url("/status"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["storage"]["backend"], "redis");
}

/// Without the Redis store the edge build says what to set.
#[test]
fn the_edge_build_requires_the_redis_store() {
    let dir = temp_dir("edge-no-redis");
    let err = HostConfig::new("spin.edge.toml", &dir)
        .arg("--profile")
        .arg("edge")
        .start_failure();
    assert!(
        err.contains("store_redis_") && err.contains("required"),
        "{err}"
    );
}

/// A body over 10 MiB: the component refuses it by its length, naming the
/// limit and the alternatives, before reading it; a download over 10 MiB
/// is refused the same way and served in ranges.
#[test]
fn bodies_over_the_platform_limit_get_a_clear_413() {
    let dir = temp_dir("edge-bodies");
    let host = edge_host(&dir)
        .var("upload_api_key", "edge-key-0123456789")
        .var("upload_max_size", "67108864")
        .start();
    let auth = ("authorization", "Bearer edge-key-0123456789");
    // Over a raw socket: the answer comes before the body is read.
    let big = vec![7u8; (10 << 20) + 1];
    let head = format!(
        "POST /assets HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        auth.1,
        big.len()
    );
    let (status, head, body) = raw_exchange(&host, head.as_bytes(), &big);
    assert_eq!(status, 413, "{head}{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    let message = reply["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("http_max_body_bytes") && message.contains("EpiFiles"),
        "{message}"
    );
    // Just under the limit: stored, and served whole.
    let fits = vec![9u8; 10 << 20];
    let r = send(
        "POST",
        &host.url("/assets"),
        &[auth, ("content-type", "application/octet-stream")],
        &fits,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = send(
        "GET",
        &host.url(&format!("/assets/{id}/download")),
        &[auth],
        &[],
    );
    assert_eq!((r.status, r.body.len()), (200, 10 << 20));

    // An asset over the limit (ingested by another path, here a Spin
    // replica on the same Redis) is served in ranges only.
    let spin_dir = temp_dir("edge-bodies-spin");
    let redis = shared();
    let db = fresh_db();
    let spin = HostConfig::new("spin.toml", &spin_dir)
        .redis_store(&redis.url(db), &redis.host())
        .var("upload_api_key", "edge-key-0123456789")
        .start();
    let large: Vec<u8> = (0..(12 << 20)).map(|i: u32| (i % 251) as u8).collect();
    let r = send(
        "POST",
        &spin.url("/assets"),
        &[auth, ("content-type", "application/octet-stream")],
        &large,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let edge_dir = temp_dir("edge-bodies-edge");
    let edge = HostConfig::new("spin.edge.toml", &edge_dir)
        .arg("--profile")
        .arg("edge")
        .redis_store(&redis.url(db), &redis.host())
        .var("upload_api_key", "edge-key-0123456789")
        .start();
    let url = edge.url(&format!("/assets/{id}/download"));
    let r = send("GET", &url, &[auth], &[]);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Range: bytes=0-10485759")
    );
    let mut got = Vec::new();
    let mut ranges = BTreeMap::new();
    while got.len() < large.len() {
        let range = format!(
            "bytes={}-{}",
            got.len(),
            (got.len() + (10 << 20) - 1).min(large.len() - 1)
        );
        let r = send("GET", &url, &[auth, ("range", &range)], &[]);
        assert_eq!(r.status, 206, "{}", r.text());
        ranges.insert(got.len(), r.body.len());
        got.extend(r.body);
    }
    assert_eq!(ranges.len(), 2);
    assert!(got == large, "ranges reassemble the asset");
}

/// Work after the response ends with the request's time limit (3 s here
/// instead of the platforms' 30, `--max-request-secs`): an ingest job cut
/// short resumes on later requests once its lease expires, one asset at a
/// time, and an asset whose download never fits fails with the reason
/// instead of restarting for ever.
#[test]
fn work_cut_by_the_time_limit_resumes_and_what_never_fits_fails_clearly() {
    #[derive(Default)]
    struct Slow {
        downloads: Vec<String>,
        acks: usize,
    }
    let state = std::sync::Arc::new(std::sync::Mutex::new(Slow::default()));
    let seen = state.clone();
    let port = http_server(move |req| {
        let json = "application/json";
        match (req.method.as_str(), req.segments().as_slice()) {
            ("GET", ["assets", id]) => {
                let meta = serde_json::json!({
                    "id": id, "size": 1000, "formData": {},
                    "originalName": format!("{id}.bin"), "mimeType": "application/octet-stream",
                    "createdAt": "2026-11-29T00:00:00+00:00"
                });
                (200, json, meta.to_string().into_bytes())
            }
            ("GET", ["assets", id, "download"]) => {
                seen.lock().unwrap().downloads.push(id.to_string());
                // `slow-…` takes 2 s (fits in 3), `huge` 5 s (never fits).
                let secs = if *id == "huge" { 5 } else { 2 };
                std::thread::sleep(std::time::Duration::from_secs(secs));
                (200, "application/octet-stream", vec![b'x'; 1000])
            }
            ("POST", ["commits", _, "ack"]) => {
                seen.lock().unwrap().acks += 1;
                (200, json, b"{}".to_vec())
            }
            _ => (404, json, b"{}".to_vec()),
        }
    });
    let foreign = format!("http://127.0.0.1:{port}");
    let dir = temp_dir("edge-time-limit");
    let host = edge_host(&dir)
        .arg("--max-request-secs")
        .arg("3")
        .var("ingest_allowed_base_urls", &foreign)
        .var("ingest_outbound_host", "http://127.0.0.1:*")
        // Longer than a request may live, as spin.edge.toml's 35 s are.
        .var("ingest_lease_secs", "4")
        .var("ingest_max_attempts", "3")
        .start();
    let enqueue = |assets: &[&str], commit: &str| {
        let body = serde_json::json!({
            "assets": assets, "publisher": "p", "token": "t",
            "commit_id": commit, "base_url": foreign,
        });
        let r = send(
            "POST",
            &host.url("/api/v1/upload/enqueue"),
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 202, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    };
    let watch = |id: &str, want: &str| {
        wait_for(60, || {
            let r = get(&host.url(&format!("/api/v1/upload/jobs/{id}")));
            (r.json()["status"] == want).then(|| r.json())
        })
        .unwrap_or_else(|| panic!("job {id} never {want}"))
    };

    // Three 2-second downloads: more than one request can do.
    let id = enqueue(&["slow-1", "slow-2", "slow-3"], "c-fits");
    let job = watch(&id, "done");
    for a in job["assets"].as_array().unwrap() {
        assert_eq!(a["state"], "stored", "{a}");
    }
    assert!(
        job["attempts"].as_u64().unwrap() >= 2,
        "the job was resumed after a cut: {job}"
    );
    assert!(host.wait_for_log("over the profile's time limit"));
    assert_eq!(state.lock().unwrap().acks, 1, "acknowledged once");

    // A download longer than any request: failed after the attempts.
    let id = enqueue(&["huge"], "c-huge");
    let job = watch(&id, "failed");
    let reason = job["assets"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("interrupted 3 times"), "{job}");
    let tries = state
        .lock()
        .unwrap()
        .downloads
        .iter()
        .filter(|d| *d == "huge")
        .count();
    assert_eq!(tries, 3, "no download after the last attempt");
}
