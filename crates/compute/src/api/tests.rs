//! The API end to end on a memory store: requests in, answers and
//! journal events out, jobs worked by a fake transport.

use super::*;
use crate::clients::Clients;
use crate::config::Config;
use crate::error::Failure;
use crate::runner::{self, Fetched, Transport};
use assetgate_identity::token::lookup_key as token_hash;
use assetgate_store::{BlobConfig, MemoryKv};
use std::cell::RefCell;
use std::collections::HashMap;

/// Serves GETs from a map and records PUTs.
#[derive(Default)]
struct Fake {
    files: HashMap<String, Vec<u8>>,
    puts: RefCell<Vec<(String, usize)>>,
}

impl Transport for Fake {
    async fn get(&self, url: &str, max: u64) -> Result<Fetched, Failure> {
        let b = self
            .files
            .get(url)
            .ok_or_else(|| Failure::generic(format!("{url}: 404")))?;
        if b.len() as u64 > max {
            return Err(Failure::generic("too big"));
        }
        Ok(Fetched {
            bytes: b.clone(),
            content_type: None,
        })
    }
    async fn put(&self, url: &str, _: &str, body: Vec<u8>) -> Result<(), String> {
        self.puts.borrow_mut().push((url.to_string(), body.len()));
        Ok(())
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn service(kv: &MemoryKv, max_in_flight: usize) -> Service<'_, MemoryKv> {
    let clients = Clients::from_json(&format!(
        r#"[{{"name":"aem","api_key":"k","org":"O@AdobeOrg","token_sha256":"{}","max_in_flight":{max_in_flight}}}]"#,
        token_hash("tok")
    ))
    .unwrap();
    Service::new(kv, Config::default(), clients, BlobConfig::default())
}

fn headers() -> Vec<(String, String)> {
    vec![
        ("authorization".into(), "Bearer tok".into()),
        ("x-api-key".into(), "k".into()),
        ("x-gw-ims-org-id".into(), "O@AdobeOrg".into()),
    ]
}

fn call(
    svc: &Service<'_, MemoryKv>,
    method: &str,
    path: &str,
    query: &str,
    body: Value,
) -> Outcome {
    call_at(svc, method, path, query, body, 1000)
}

/// [`call`] at Unix time `now`.
fn call_at(
    svc: &Service<'_, MemoryKv>,
    method: &str,
    path: &str,
    query: &str,
    body: Value,
    now: u64,
) -> Outcome {
    let h = headers();
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    handle(
        svc,
        Request {
            method,
            path,
            query,
            headers: &h,
            body,
            origin: "http://gw",
        },
        now,
    )
}

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 200, 30]));
    assetgate_imaging::encode::png(img.as_raw(), w, h, 3, false, None)
}

#[test]
fn register_process_and_page_the_journal() {
    let kv = MemoryKv::new();
    let svc = service(&kv, 8);
    let reg = call(&svc, "POST", "/register", "", Value::Null).response;
    assert_eq!(reg.status, 200);
    let journal = json_of(&reg)["journal"].as_str().unwrap().to_string();
    assert!(journal.starts_with("http://gw/journal/"));
    // Idempotent.
    let again = call(&svc, "POST", "/register", "", Value::Null).response;
    assert_eq!(json_of(&again)["journal"], journal.as_str());
    let path = journal.trim_start_matches("http://gw").to_string();

    let empty = call(&svc, "GET", &path, "latest=true", Value::Null).response;
    assert_eq!(empty.status, 204);
    let link = empty
        .headers
        .iter()
        .find(|(k, _)| *k == "link")
        .unwrap()
        .1
        .clone();
    assert_eq!(link, format!("<{journal}?since=0>; rel=\"next\""));

    let mut fake = Fake::default();
    fake.files
        .insert("https://src.example/a.png".into(), png(40, 20));
    let body = json!({
        "source": "https://src.example/a.png",
        "renditions": [
            {"fmt": "jpg", "width": 10, "target": "https://t.example/1?sig=x"},
            {"fmt": "png", "embedBinaryLimit": 32768},
            {"fmt": "text"},
            {"fmt": "webp"}
        ]
    });
    // (`text` of a PNG: RenditionFormatUnsupported, made at run time.)
    let out = call(&svc, "POST", "/process", "", body);
    assert_eq!(
        out.response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&out.response.body)
    );
    let job = out.job.unwrap();
    assert!(block_on(runner::run(&svc, &fake, &job, || 1000)).unwrap());
    // A finished job is not worked twice.
    assert!(!block_on(runner::run(&svc, &fake, &job, || 1000)).unwrap());
    assert_eq!(fake.puts.borrow().len(), 1);

    // latest=true: the events of the last seconds (all four, reported at
    // 1000), then, later, only the end.
    let grace = crate::journal::LATEST_GRACE_SECS;
    for now in [1000, 1000 + grace] {
        let recent = call_at(&svc, "GET", &path, "latest=true", Value::Null, now).response;
        assert_eq!(json_of(&recent)["_page"]["count"], 4, "at {now}");
    }
    let later = 1000 + grace + 1;
    let end = call_at(&svc, "GET", &path, "latest=true", Value::Null, later).response;
    assert_eq!(end.status, 204);
    assert!(
        end.headers
            .iter()
            .any(|(k, v)| *k == "link" && v.contains("?since=4>")),
        "{:?}",
        end.headers
    );
    let page = call(&svc, "GET", &path, "since=0&limit=3", Value::Null).response;
    assert_eq!(page.status, 200);
    let p = json_of(&page);
    assert_eq!(p["_page"]["count"], 3);
    let events = p["events"].as_array().unwrap();
    assert_eq!(events[0]["event"]["type"], "rendition_created");
    assert_eq!(events[0]["event"]["metadata"]["tiff:ImageWidth"], 10);
    assert_eq!(
        events[0]["event"]["rendition"]["target"],
        "https://t.example/1?REDACTED"
    );
    assert!(
        events[1]["event"]["data"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(events[2]["event"]["type"], "rendition_failed");
    assert_eq!(
        events[2]["event"]["errorReason"],
        "RenditionFormatUnsupported"
    );
    let link = page
        .headers
        .iter()
        .find(|(k, _)| *k == "link")
        .unwrap()
        .1
        .clone();
    assert!(link.ends_with("?since=3&limit=3>; rel=\"next\""), "{link}");
    let rest = json_of(&call(&svc, "GET", &path, "since=3", Value::Null).response);
    let stored = &rest["events"][0]["event"];
    assert_eq!(
        stored["asset"]["url"].as_str().unwrap(),
        format!("asset:{}", stored["asset"]["id"].as_str().unwrap())
    );
    // Reading changed nothing: the start is still there for anyone.
    let again = json_of(&call(&svc, "GET", &path, "", Value::Null).response);
    assert_eq!(again["_page"]["count"], 4);
    assert_eq!(
        call(&svc, "GET", &path, "since=99", Value::Null)
            .response
            .status,
        400
    );

    assert_eq!(
        call(&svc, "POST", "/unregister", "", Value::Null)
            .response
            .status,
        200
    );
    assert_eq!(
        call(&svc, "POST", "/unregister", "", Value::Null)
            .response
            .status,
        404
    );
    assert_eq!(
        call(&svc, "GET", &path, "", Value::Null).response.status,
        404
    );
    let body = json!({"source": "https://src.example/a.png", "renditions": [{"fmt": "png"}]});
    assert_eq!(
        call(&svc, "POST", "/process", "", body).response.status,
        404
    );
}

#[test]
fn in_flight_limit_answers_429_with_retry_after() {
    let kv = MemoryKv::new();
    let svc = service(&kv, 1);
    call(&svc, "POST", "/register", "", Value::Null);
    let body = json!({"source": "data:text/plain,hello", "renditions": [{"fmt": "text"}]});
    let first = call(&svc, "POST", "/process", "", body.clone());
    assert_eq!(first.response.status, 200);
    let second = call(&svc, "POST", "/process", "", body.clone()).response;
    assert_eq!(second.status, 429);
    assert!(second.body.is_empty());
    assert!(
        second
            .headers
            .iter()
            .any(|(k, v)| *k == "retry-after" && v == "2")
    );
    block_on(runner::run(
        &svc,
        &Fake::default(),
        &first.job.unwrap(),
        || 1000,
    ))
    .unwrap();
    assert_eq!(
        call(&svc, "POST", "/process", "", body).response.status,
        200
    );
}

#[test]
fn abandoned_jobs_are_resumed_without_repeating_events() {
    let kv = MemoryKv::new();
    let svc = service(&kv, 8);
    let reg = json_of(&call(&svc, "POST", "/register", "", Value::Null).response);
    let journal_id = reg["journal"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let body =
        json!({"source": "data:text/plain,hello", "renditions": [{"fmt": "text"}, {"fmt": "xmp"}]});
    let job = call(&svc, "POST", "/process", "", body).job.unwrap();
    // A worker claims the job, reports the first rendition, and dies.
    let q = svc.queue().unwrap();
    q.claim_id::<crate::service::JobPayload>(&job, 1000, "dead")
        .unwrap()
        .unwrap();
    svc.journal(&journal_id)
        .unwrap()
        .append(b"{\"type\":\"rendition_created\"}")
        .unwrap();
    assetgate_store::Records::new(&kv, "compute-progress")
        .create(&job, &vec![0usize])
        .unwrap();
    // Before the lease runs out nobody takes it; after, `recover` does.
    assert!(!block_on(runner::recover(&svc, &Fake::default(), || 1100)).unwrap());
    assert!(block_on(runner::recover(&svc, &Fake::default(), || 1000 + 301)).unwrap());
    let all = svc
        .journal(&journal_id)
        .unwrap()
        .read_after(assetgate_store::Position::START, 10)
        .unwrap();
    assert_eq!(all.len(), 2);
    let second: Value = serde_json::from_slice(&all[1].payload).unwrap();
    assert_eq!(second["rendition"]["fmt"], "xmp");
    assert!(svc.in_flight("aem").unwrap().all().unwrap().is_empty());
}

#[test]
fn auth_request_ids_and_methods() {
    let kv = MemoryKv::new();
    let svc = service(&kv, 8);
    let mut h = headers();
    h.push(("x-request-id".into(), "abc-123".into()));
    let r = handle(
        &svc,
        Request {
            method: "POST",
            path: "/register",
            query: "",
            headers: &h,
            body: vec![],
            origin: "http://gw",
        },
        0,
    )
    .response;
    assert!(r.headers.contains(&("x-request-id", "abc-123".into())));
    assert_eq!(json_of(&r)["requestId"], "abc-123");
    let status = |h: Vec<(String, String)>| {
        handle(
            &svc,
            Request {
                method: "POST",
                path: "/register",
                query: "",
                headers: &h,
                body: vec![],
                origin: "",
            },
            0,
        )
        .response
        .status
    };
    assert_eq!(status(vec![]), 401);
    let mut wrong_key = headers();
    wrong_key[1].1 = "other".into();
    assert_eq!(status(wrong_key), 401);
    let mut wrong_org = headers();
    wrong_org[2].1 = "X@AdobeOrg".into();
    assert_eq!(status(wrong_org), 403);
    // x-ims-org-id (what the Node client sends on journal reads) counts.
    let mut alt = headers();
    alt[2].0 = "x-ims-org-id".into();
    assert_eq!(status(alt), 200);
    let get = call(&svc, "GET", "/process", "", Value::Null).response;
    assert_eq!(get.status, 405);
    assert!(get.headers.contains(&("allow", "POST".into())));
}

fn raw(
    svc: &Service<'_, MemoryKv>,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Outcome {
    handle(
        svc,
        Request {
            method,
            path,
            query: "",
            headers,
            body,
            origin: "http://gw",
        },
        1000,
    )
}

/// Credentials are judged from the headers alone, on every endpoint and
/// whatever the body: a refused caller gets its 401/403 from `admit`
/// (so the component never reads the body), no job, and nothing is
/// written to the store.
#[test]
fn credentials_are_checked_before_the_body() {
    let kv = MemoryKv::new();
    let svc = service(&kv, 8);
    let good = headers();
    let with = |i: usize, v: Option<&str>| {
        let mut h = good.clone();
        match v {
            Some(v) => h[i].1 = v.into(),
            None => {
                h.remove(i);
            }
        }
        h
    };
    let creds: Vec<(Vec<(String, String)>, u16)> = vec![
        (vec![], 401),
        (with(0, None), 401),
        (with(0, Some("Bearer wrong")), 401),
        (with(0, Some("Basic dG9rOg==")), 401),
        (with(0, Some("tok")), 401),
        (with(1, None), 401),
        (with(1, Some("another-clients-key")), 401),
        (with(1, Some("")), 401),
        (with(2, None), 403),
        (with(2, Some("OTHER@AdobeOrg")), 403),
    ];
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"{not json".to_vec(),
        json!({"source": "data:,x", "renditions": [{"fmt": "text"}]})
            .to_string()
            .into_bytes(),
        vec![b' '; 1 << 20],
    ];
    for (method, path) in [
        ("POST", "/register"),
        ("POST", "/unregister"),
        ("POST", "/process"),
        ("GET", "/journal/abc"),
    ] {
        for (h, want) in &creds {
            let refused = admit(&svc, method, path, h).err().map(|r| r.status);
            assert_eq!(refused, Some(*want), "{method} {path} {h:?}");
            for body in &bodies {
                let out = raw(&svc, method, path, h, body.clone());
                assert_eq!(out.response.status, *want, "{method} {path} {h:?}");
                assert!(out.job.is_none());
                let msg = json_of(&out.response)["message"]
                    .as_str()
                    .unwrap()
                    .to_string();
                // Never an echo of what was sent.
                assert!(!msg.is_empty(), "{msg}");
                for sent in ["wrong", "dG9rOg", "another-clients-key", "OTHER"] {
                    assert!(!msg.contains(sent), "{msg}");
                }
            }
        }
        let admitted = admit(&svc, method, path, &good).ok().unwrap();
        assert_eq!(admitted.needs_body(), path == "/process");
    }
    assert!(kv.is_empty(), "refused callers stored {:?}", kv.keys());
    // Routing comes first (it needs no credentials), then credentials.
    assert_eq!(admit(&svc, "GET", "/nope", &[]).err().unwrap().status, 404);
    assert_eq!(
        admit(&svc, "GET", "/process", &[]).err().unwrap().status,
        405
    );
}

/// Events of `journal_path` from the start, payloads only.
fn journal_events(svc: &Service<'_, MemoryKv>, path: &str) -> Vec<Value> {
    let r = call(svc, "GET", path, "since=0&limit=1000", Value::Null).response;
    if r.status == 204 {
        return Vec::new();
    }
    json_of(&r)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].clone())
        .collect()
}

fn registered(svc: &Service<'_, MemoryKv>) -> String {
    let reg = json_of(&call(svc, "POST", "/register", "", Value::Null).response);
    reg["journal"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://gw")
        .to_string()
}

/// A rendition this service cannot make (unknown `fmt`, custom
/// `worker`), wherever it sits among valid ones: 200, the valid ones
/// are made, and it gets its own `rendition_failed`
/// `RenditionFormatUnsupported` event, in request order, echoing the
/// rendition (URLs redacted) and its `userData`.
#[test]
fn unsupported_renditions_fail_alone() {
    let unsupported = [
        json!({"fmt": "bmp", "userData": {"n": 1}}),
        json!({"fmt": "heic", "width": 10, "target": "https://t.example/x?sig=SECRET"}),
        json!({"fmt": "PDF"}),
        json!({"worker": "https://w.example/run?sig=SECRET", "fmt": "png"}),
    ];
    let valid = [json!({"fmt": "text"}), json!({"fmt": "xmp"})];
    for (k, odd) in unsupported.iter().enumerate() {
        let kv = MemoryKv::new();
        let svc = service(&kv, 8);
        let path = registered(&svc);
        // The odd one at each place among the valid ones.
        for at in 0..=valid.len() {
            let mut list = valid.to_vec();
            list.insert(at, odd.clone());
            let body = json!({"source": "data:text/plain,hello", "renditions": list});
            let out = call(&svc, "POST", "/process", "", body);
            assert_eq!(out.response.status, 200, "{k} {at}");
            let job = out.job.unwrap();
            assert!(block_on(runner::run(&svc, &Fake::default(), &job, || 1000)).unwrap());
        }
        let events = journal_events(&svc, &path);
        assert_eq!(events.len(), 3 * (valid.len() + 1));
        for (at, batch) in events.chunks(valid.len() + 1).enumerate() {
            for (i, e) in batch.iter().enumerate() {
                if i == at {
                    assert_eq!(e["type"], "rendition_failed", "{e}");
                    assert_eq!(e["errorReason"], "RenditionFormatUnsupported");
                    assert!(
                        e["errorMessage"]
                            .as_str()
                            .unwrap()
                            .contains("not supported")
                    );
                    assert_eq!(e["rendition"]["fmt"], odd["fmt"]);
                    assert_eq!(
                        e["userData"],
                        odd.get("userData").cloned().unwrap_or(Value::Null)
                    );
                    assert!(!e.to_string().contains("SECRET"), "{e}");
                } else {
                    assert_eq!(e["type"], "rendition_created", "{e}");
                }
            }
        }
    }
}

/// What is known only when the job reads its source is reported per
/// rendition, not refused: a declared `source.size` over the limit
/// (`SourceUnsupported`, not fetched) and an `asset:` id not in the
/// store (`GenericError`). A zip rendition, which does not read the
/// source, is still made.
#[test]
fn source_problems_are_events() {
    let kv = MemoryKv::new();
    let svc = service(&kv, 8);
    let path = registered(&svc);
    let zip = json!({"fmt": "zip", "files": [{"url": "data:,hello", "path": "a.txt"}]});
    let fake = Fake::default();
    for source in [
        json!({"url": "https://src.example/big.png", "size": 1u64 << 40}),
        json!("asset:nope"),
    ] {
        let body = json!({"source": source, "renditions": [{"fmt": "png"}, zip, {"fmt": "text"}]});
        let out = call(&svc, "POST", "/process", "", body);
        assert_eq!(out.response.status, 200);
        assert!(block_on(runner::run(&svc, &fake, &out.job.unwrap(), || 1000)).unwrap());
    }
    let events = journal_events(&svc, &path);
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["errorReason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let f = |r: &str| ("rendition_failed".to_string(), r.to_string());
    let ok = ("rendition_created".to_string(), String::new());
    assert_eq!(
        summary,
        [
            f("SourceUnsupported"),
            ok.clone(),
            f("SourceUnsupported"),
            f("GenericError"),
            ok,
            f("GenericError")
        ]
    );
    assert!(
        events[3]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("asset:nope is not in the store")
    );
}

mod consumers;

/// `/process` takes JSON: another declared type is 415 from the headers
/// alone (no body read, no job); JSON types with parameters, `+json` and
/// no Content-Type at all are read.
#[test]
fn process_takes_json_only() {
    let kv = MemoryKv::new();
    let svc = service(&kv, 8);
    for (ct, want) in [
        (Some("application/json"), None),
        (Some("application/json; charset=utf-8"), None),
        (Some("Application/JSON"), None),
        (Some("application/vnd.adobe+json"), None),
        (None, None),
        (Some("application/x-www-form-urlencoded"), Some(415)),
        (Some("text/plain"), Some(415)),
        (Some("multipart/form-data; boundary=x"), Some(415)),
        (Some("application/jsonx"), Some(415)),
        (Some(""), Some(415)),
    ] {
        let mut h = headers();
        if let Some(ct) = ct {
            h.push(("content-type".into(), ct.into()));
        }
        let refused = admit(&svc, "POST", "/process", &h).err();
        assert_eq!(refused.as_ref().map(|r| r.status), want, "{ct:?}");
        if let Some(r) = refused {
            assert_eq!(json_of(&r)["ok"], json!(false));
        }
        // Other endpoints ignore whatever body and type they are sent.
        assert!(admit(&svc, "POST", "/register", &h).is_ok(), "{ct:?}");
    }
    assert!(kv.is_empty());
}
