//! Routing and answers: a plain request in, status + headers + body out,
//! plus the id of a job to work after answering. The Spin components only
//! move bytes; every decision is here and unit-tested on the host.

use crate::clients::{Client, Credentials};
use crate::error::{ApiError, ApiResult};
use crate::journal::{self, Query};
use crate::request;
use crate::service::Service;
use assetgate_store::Kv;
use assetgate_web::{query, secret};
use serde_json::{Value, json};

pub struct Request<'a> {
    pub method: &'a str,
    /// The whole path, without the query string.
    pub path: &'a str,
    pub query: &'a str,
    /// Lower-case names.
    pub headers: &'a [(String, String)],
    pub body: Vec<u8>,
    /// `scheme://host[:port]` the client used.
    pub origin: &'a str,
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What the component does: answer, then work `job` if there is one.
pub struct Outcome {
    pub response: Response,
    pub job: Option<String>,
}

/// The caller's `x-request-id` when it is a sane token, else a new one.
pub fn request_id(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .find(|(k, _)| k == "x-request-id")
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(secret::uuid_v4)
}

/// The answer for a request refused before it reached [`handle`] (body too
/// large, service misconfigured): same shape as every other error.
pub fn refusal(status: u16, message: &str, headers: &[(String, String)]) -> Response {
    error_response(ApiError::new(status, message), &request_id(headers), 0)
}

fn json_response(status: u16, rid: &str, mut body: Value) -> Response {
    if let Value::Object(o) = &mut body {
        o.insert("requestId".into(), json!(rid));
    }
    Response {
        status,
        headers: vec![
            ("content-type", "application/json".into()),
            ("x-request-id", rid.to_string()),
            ("cache-control", "no-store".into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

fn error_response(e: ApiError, rid: &str, retry_after: u64) -> Response {
    if e.status == 429 {
        // The reference: "the body is empty".
        return Response {
            status: 429,
            headers: vec![
                ("x-request-id", rid.to_string()),
                ("retry-after", retry_after.to_string()),
            ],
            body: Vec::new(),
        };
    }
    json_response(e.status, rid, json!({ "ok": false, "message": e.message }))
}

pub fn handle<K: Kv + ?Sized>(svc: &Service<'_, K>, req: Request, now: u64) -> Outcome {
    let rid = request_id(req.headers);
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let allow = match segs.as_slice() {
        ["register"] | ["unregister"] | ["process"] => "POST",
        ["journal", _] => "GET",
        _ => {
            return Outcome {
                response: error_response(ApiError::new(404, "no such endpoint"), &rid, 0),
                job: None,
            };
        }
    };
    if req.method != allow {
        let mut r = error_response(
            ApiError::new(405, format!("this resource answers {allow}")),
            &rid,
            0,
        );
        r.headers.push(("allow", allow.into()));
        return Outcome {
            response: r,
            job: None,
        };
    }
    let result = authenticate(svc, &req).and_then(|client| match segs.as_slice() {
        ["register"] => register(svc, &req, client, &rid, now).map(|r| (r, None)),
        ["unregister"] => {
            svc.unregister(client)?;
            Ok((json_response(200, &rid, json!({ "ok": true })), None))
        }
        ["process"] => process(svc, &req, client, &rid, now),
        ["journal", id] => read_journal(svc, &req, client, id, &rid).map(|r| (r, None)),
        _ => unreachable!("routes matched above"),
    });
    match result {
        Ok((response, job)) => Outcome { response, job },
        Err(e) => Outcome {
            response: error_response(e, &rid, svc.cfg.retry_after_secs),
            job: None,
        },
    }
}

fn authenticate<'s, K: Kv + ?Sized>(
    svc: &'s Service<'_, K>,
    req: &Request,
) -> ApiResult<&'s Client> {
    svc.clients.authenticate(Credentials {
        authorization: req.header("authorization"),
        api_key: req.header("x-api-key"),
        org: req.header("x-gw-ims-org-id").or(req.header("x-ims-org-id")),
    })
}

fn base_url<K: Kv + ?Sized>(svc: &Service<'_, K>, req: &Request) -> String {
    svc.cfg
        .public_url
        .clone()
        .unwrap_or_else(|| req.origin.to_string())
}

fn register<K: Kv + ?Sized>(
    svc: &Service<'_, K>,
    req: &Request,
    client: &Client,
    rid: &str,
    now: u64,
) -> ApiResult<Response> {
    let reg = svc.register(client, now)?;
    let journal = format!("{}/journal/{}", base_url(svc, req), reg.journal);
    Ok(json_response(
        200,
        rid,
        json!({ "ok": true, "journal": journal }),
    ))
}

fn process<K: Kv + ?Sized>(
    svc: &Service<'_, K>,
    req: &Request,
    client: &Client,
    rid: &str,
    now: u64,
) -> ApiResult<(Response, Option<String>)> {
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let parsed = request::parse(&body, &svc.cfg)?;
    let job = svc.accept(client, rid, parsed, now)?;
    Ok((json_response(200, rid, json!({ "ok": true })), Some(job)))
}

fn read_journal<K: Kv + ?Sized>(
    svc: &Service<'_, K>,
    req: &Request,
    client: &Client,
    id: &str,
    rid: &str,
) -> ApiResult<Response> {
    let reg = svc
        .registration(&client.name)?
        .filter(|r| r.journal == id)
        .ok_or_else(|| ApiError::new(404, "no such journal for this client"))?;
    let q = Query {
        since: query::get(req.query, "since"),
        limit: query::get(req.query, "limit"),
        latest: query::get(req.query, "latest").is_some_and(|v| v == "true"),
    };
    let page = journal::read(svc, &reg.journal, &q)?;
    let mut next = format!(
        "{}/journal/{}?since={}",
        base_url(svc, req),
        reg.journal,
        query::percent_encode(&page.next_since)
    );
    if let Some(l) = page.limit {
        next.push_str(&format!("&limit={l}"));
    }
    let link = format!("<{next}>; rel=\"next\"");
    Ok(match page.body {
        Some(body) => {
            let mut r = json_response(200, rid, body);
            r.headers.push(("link", link));
            r
        }
        None => Response {
            status: 204,
            headers: vec![
                ("x-request-id", rid.to_string()),
                ("link", link),
                ("retry-after", svc.cfg.retry_after_secs.to_string()),
                ("cache-control", "no-store".into()),
            ],
            body: Vec::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{Clients, token_hash};
    use crate::config::Config;
    use crate::error::Failure;
    use crate::runner::{self, Fetched, Transport};
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
            1000,
        )
    }

    fn json_of(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 200, 30]));
        crate::encode::png(img.as_raw(), w, h, 3, false, None)
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

        let page = call(&svc, "GET", &path, "latest=true&limit=3", Value::Null).response;
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
        // latest=true continues after what was served: nothing twice.
        assert_eq!(
            call(&svc, "GET", &path, "latest=true", Value::Null)
                .response
                .status,
            204
        );
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
        let body = json!({"source": "data:text/plain,hello", "renditions": [{"fmt": "text"}, {"fmt": "xmp"}]});
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
        let r = call(
            &svc,
            "POST",
            "/process",
            "",
            json!({"source": "https://a.example/x", "renditions": [{"fmt": "bmp"}]}),
        )
        .response;
        assert_eq!((r.status, json_of(&r)["ok"].clone()), (400, json!(false)));
        assert!(json_of(&r)["message"].as_str().unwrap().contains("bmp"));
        let r = call(
            &svc,
            "POST",
            "/process",
            "",
            json!({"source": "asset:nope", "renditions": [{"fmt": "png"}]}),
        )
        .response;
        assert_eq!(r.status, 400);
    }
}
