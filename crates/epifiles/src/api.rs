//! Routing: a plain request in, status + headers + body out. The Spin
//! component only moves bytes; every decision is here and unit-tested on
//! the host with the in-memory store.

use crate::chunk_encode::ChunkStream;
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::service::Service;
use crate::xml::{self, Xml};
use assetgate_identity::User;
use assetgate_identity::token::constant_time_eq;
use assetgate_store::Kv;

pub struct Request<'a> {
    pub method: &'a str,
    /// The whole path, without the query string.
    pub path: &'a str,
    pub query: &'a str,
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: Vec<u8>,
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

/// An answer's bytes: whole, or a download chunk written part by part.
pub enum Body {
    Whole(Vec<u8>),
    Chunk(Box<ChunkStream>),
}

impl Body {
    pub fn len(&self) -> usize {
        match self {
            Body::Whole(b) => b.len(),
            Body::Chunk(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Body::Whole(b) => b,
            Body::Chunk(c) => (*c).into_bytes(),
        }
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What a route answers on success.
enum Answer {
    Xml(Xml),
    Chunk(ChunkStream),
}

impl Response {
    fn xml(status: u16, body: Vec<u8>) -> Response {
        Self::with_body(status, Body::Whole(body))
    }

    fn with_body(status: u16, body: Body) -> Response {
        Response {
            status,
            headers: vec![
                ("content-type", "text/xml; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
            ],
            body,
        }
    }

    fn error(e: ApiError) -> Response {
        let mut r = Response::xml(e.status, xml::failure(e.code, &e.message));
        if e.status == 401 {
            r.headers.push((
                "www-authenticate",
                "Basic realm=\"EpiFiles\", charset=\"UTF-8\"".into(),
            ));
        }
        r
    }

    fn method_not_allowed(allow: &'static str) -> Response {
        let mut r = Response::error(ApiError::new(
            405,
            "method_not_allowed",
            format!("this resource answers {allow}"),
        ));
        r.headers.push(("allow", allow.into()));
        r
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Route {
    Manifests,
    Manifest(String),
    Files,
    File(String),
    Outbox,
}

/// The route of `path`, its segments percent-decoded strictly: a
/// malformed one is a 400 (`invalid_encoding`), not an unknown route.
fn route(path: &str) -> ApiResult<Option<Route>> {
    let mut segs = Vec::new();
    for (i, s) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        let seg = assetgate_web::decode::percent_decode(s.as_bytes(), false).map_err(|e| {
            ApiError::bad_request(
                "invalid_encoding",
                format!("malformed URL path: segment {}: {e}", i + 1),
            )
        })?;
        segs.push(seg);
    }
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    Ok(Some(match segs.as_slice() {
        ["epifiles", "ws", "manifest"] => Route::Manifests,
        ["epifiles", "ws", "manifest", id] => Route::Manifest(id.to_string()),
        ["epifiles", "ws", "manifestfile"] => Route::Files,
        ["epifiles", "ws", "manifestfile", id] => Route::File(id.to_string()),
        ["epifiles", "admin", "outbox"] => Route::Outbox,
        _ => return Ok(None),
    }))
}

/// A request whose route, method and credentials passed: what the body
/// may be read for.
pub struct Admitted<'c> {
    route: Route,
    /// `None` for the outbox, whose Bearer token was checked.
    user: Option<&'c User>,
}

/// Everything decided from the request line and headers alone: the
/// route, the method, the credentials. The component calls it before
/// reading the body, so a client without credentials gets its 401 at
/// once, however large a body it is sending.
pub fn admit<'c, K: Kv + ?Sized>(
    svc: &Service<'c, K>,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> Result<Admitted<'c>, Response> {
    let route = match route(path) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(Response::error(ApiError::not_found(
                "not_found",
                "no such endpoint",
            )));
        }
        Err(e) => return Err(Response::error(e)),
    };
    let allow = match route {
        Route::Manifests | Route::Outbox => "GET",
        Route::Manifest(_) | Route::File(_) => "GET, PUT",
        Route::Files => "GET, POST",
    };
    if !allow.split(", ").any(|m| m == method) {
        return Err(Response::method_not_allowed(allow));
    }
    let cfg: &'c Config = svc.cfg;
    if let Route::Outbox = route {
        return match admin_token_ok(cfg, authorization) {
            true => Ok(Admitted { route, user: None }),
            false => Err(outbox_unauthorized()),
        };
    }
    // Every call of a chunked transfer carries the same Basic credentials:
    // verified once, then remembered for a minute (crates/identity).
    match cfg
        .users
        .authenticate_remembered(svc.kv, authorization, svc.now)
    {
        Ok(user) => Ok(Admitted {
            route,
            user: Some(user),
        }),
        Err(_) => Err(Response::error(ApiError::unauthorized(
            assetgate_identity::Unauthorized::MESSAGE,
        ))),
    }
}

/// The answer to an admitted request, once its body is read.
pub fn respond<K: Kv + ?Sized>(
    svc: &Service<'_, K>,
    admitted: Admitted<'_>,
    req: Request<'_>,
) -> Response {
    let Some(user) = admitted.user else {
        return outbox(svc, &req);
    };
    match serve(svc, admitted.route, user, req) {
        Ok(Answer::Xml(x)) => Response::xml(200, xml::success(x)),
        Ok(Answer::Chunk(c)) => Response::with_body(200, Body::Chunk(Box::new(c))),
        Err(e) => Response::error(e),
    }
}

/// The whole service as one function: [`admit`], then [`respond`].
pub fn handle<K: Kv + ?Sized>(svc: &Service<'_, K>, req: Request<'_>) -> Response {
    match admit(svc, req.method, req.path, req.authorization) {
        Ok(admitted) => respond(svc, admitted, req),
        Err(refused) => refused,
    }
}

fn serve<K: Kv + ?Sized>(
    svc: &Service<'_, K>,
    route: Route,
    user: &User,
    req: Request<'_>,
) -> ApiResult<Answer> {
    let body = if req.method == "GET" {
        Vec::new()
    } else {
        req.body
    };
    let params = Params::parse(req.query, req.content_type, body)?;
    let chunk = |id: &str| {
        svc.download(user, id, params.number("chunk_index")?)
            .map(Answer::Chunk)
    };
    let xml = match (route, req.method) {
        (Route::Manifests, _) => svc.list_manifests(user),
        (Route::Manifest(id), "GET") => svc.show_manifest(user, &id),
        (Route::Manifest(id), _) => svc.archive(user, &id, &params),
        (Route::Files, "GET") => match params.get("id") {
            Some(id) => return chunk(id),
            None => svc.list_files(user, params.get("id_manifest")),
        },
        (Route::Files, _) => svc.start_upload(user, params),
        (Route::File(id), "GET") => return chunk(&id),
        (Route::File(id), _) => svc.continue_upload(user, &id, params),
        // `respond` answers the outbox before this.
        (Route::Outbox, _) => Err(ApiError::not_found("not_found", "no such endpoint")),
    };
    xml.map(Answer::Xml)
}

fn admin_token_ok(cfg: &Config, authorization: Option<&str>) -> bool {
    let token = authorization
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match (&cfg.admin_token, token) {
        (Some(expected), Some(given)) => constant_time_eq(expected.as_bytes(), given.as_bytes()),
        _ => false,
    }
}

fn json(status: u16, v: serde_json::Value) -> Response {
    Response {
        status,
        headers: vec![
            ("content-type", "application/json".into()),
            ("cache-control", "no-store".into()),
        ],
        body: Body::Whole(v.to_string().into_bytes()),
    }
}

fn outbox_unauthorized() -> Response {
    let mut r = json(
        401,
        serde_json::json!({"error": "unauthorized", "message": "Bearer <epifiles_admin_token> required"}),
    );
    r.headers.push(("www-authenticate", "Bearer".into()));
    r
}

/// `GET /epifiles/admin/outbox?after=&limit=` with `Authorization: Bearer
/// <epifiles_admin_token>`: the notifications, in order, as JSON.
fn outbox<K: Kv + ?Sized>(svc: &Service<'_, K>, req: &Request<'_>) -> Response {
    let params = match Params::parse(req.query, None, Vec::new()) {
        Ok(p) => p,
        Err(e) => {
            return json(
                e.status,
                serde_json::json!({"error": e.code, "message": e.message}),
            );
        }
    };
    let limit = match params.number("limit") {
        Ok(n) => n.unwrap_or(100).clamp(1, 1000) as usize,
        Err(e) => {
            return json(
                e.status,
                serde_json::json!({"error": e.code, "message": e.message}),
            );
        }
    };
    match svc.outbox().list(params.get("after"), limit) {
        Ok((items, next)) => json(
            200,
            serde_json::json!({"notifications": items, "next": next}),
        ),
        Err(e) => {
            let e = ApiError::from(e);
            json(
                e.status,
                serde_json::json!({"error": e.code, "message": e.message}),
            )
        }
    }
}
