//! Routing and answers: a plain request in, status + headers + body out,
//! plus the id of a job to work after answering. The Spin components only
//! move bytes; every decision is here and unit-tested on the host.

use crate::clients::{Client, Credentials};
use crate::error::{ApiError, ApiResult};
use crate::journal::{self, Query};
use crate::request;
use crate::service::Service;
use assetgate_store::Kv;
use assetgate_web::{mime, query, secret};
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

/// Which endpoint a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Register,
    Unregister,
    Process,
    Journal(String),
}

/// A request that passed routing and authentication, its body not read
/// yet: [`admit`] decides from the method, path and headers alone, so a
/// caller without valid credentials is refused before it can make the
/// server read (and hold) a body.
pub struct Admitted<'s> {
    route: Route,
    client: &'s Client,
    rid: String,
}

impl Admitted<'_> {
    /// Only `/process` reads a body; the others ignore whatever is sent.
    pub fn needs_body(&self) -> bool {
        self.route == Route::Process
    }

    /// A refusal of this request's body (too large, cut short), with the
    /// request id every other answer to it would carry.
    pub fn refuse(&self, status: u16, message: &str) -> Response {
        error_response(ApiError::new(status, message), &self.rid, 0)
    }
}

/// Routing (404, 405) and credentials (401, 403), before any body.
pub fn admit<'s, K: Kv + ?Sized>(
    svc: &'s Service<'_, K>,
    method: &str,
    path: &str,
    headers: &[(String, String)],
) -> Result<Admitted<'s>, Response> {
    let rid = request_id(headers);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (route, allow) = match segs.as_slice() {
        ["register"] => (Route::Register, "POST"),
        ["unregister"] => (Route::Unregister, "POST"),
        ["process"] => (Route::Process, "POST"),
        ["journal", id] => (Route::Journal(id.to_string()), "GET"),
        _ => {
            return Err(error_response(
                ApiError::new(404, "no such endpoint"),
                &rid,
                0,
            ));
        }
    };
    if method != allow {
        let mut r = error_response(
            ApiError::new(405, format!("this resource answers {allow}")),
            &rid,
            0,
        );
        r.headers.push(("allow", allow.into()));
        return Err(r);
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let client = svc
        .clients
        .authenticate(Credentials {
            authorization: header("authorization"),
            api_key: header("x-api-key"),
            org: header("x-gw-ims-org-id").or(header("x-ims-org-id")),
        })
        .map_err(|e| error_response(e, &rid, 0))?;
    if route == Route::Process
        && let Some(ct) = header("content-type")
        && !is_json(ct)
    {
        return Err(error_response(
            ApiError::new(
                415,
                format!("/process takes application/json, not `{}`", ct.trim()),
            ),
            &rid,
            0,
        ));
    }
    Ok(Admitted { route, client, rid })
}

/// `application/json` or a `+json` type, any parameters. A request without
/// Content-Type is read as JSON (the reference's clients always send it).
fn is_json(content_type: &str) -> bool {
    let media = mime::essence(content_type);
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// The answer to an admitted request (`req.body` read if it needed one).
pub fn respond<K: Kv + ?Sized>(
    svc: &Service<'_, K>,
    admitted: Admitted<'_>,
    req: Request,
    now: u64,
) -> Outcome {
    let Admitted { route, client, rid } = admitted;
    let result = match &route {
        Route::Register => register(svc, &req, client, &rid, now).map(|r| (r, None)),
        Route::Unregister => svc
            .unregister(client)
            .map(|()| (json_response(200, &rid, json!({ "ok": true })), None)),
        Route::Process => process(svc, &req, client, &rid, now),
        Route::Journal(id) => read_journal(svc, &req, client, id, &rid, now).map(|r| (r, None)),
    };
    match result {
        Ok((response, job)) => Outcome { response, job },
        Err(e) => Outcome {
            response: error_response(e, &rid, svc.cfg.retry_after_secs),
            job: None,
        },
    }
}

/// [`admit`] then [`respond`], for a request whose body is at hand.
pub fn handle<K: Kv + ?Sized>(svc: &Service<'_, K>, req: Request, now: u64) -> Outcome {
    match admit(svc, req.method, req.path, req.headers) {
        Ok(admitted) => respond(svc, admitted, req, now),
        Err(response) => Outcome {
            response,
            job: None,
        },
    }
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
    now: u64,
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
    let page = journal::read(svc, &reg.journal, &q, now)?;
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
mod tests;
