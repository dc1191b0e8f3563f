//! Spin glue shared by assetgate's components: the parts of a request the
//! handlers need, responses (JSON, errors, streamed blobs), variables, and
//! outbound requests. Protocol logic stays in the protocol crates.

use assetgate_store::{BlobConfig, Blobs, ErrorCode, Kv, StoreError};
use assetgate_web::range::{self, ByteRange};
use futures::{SinkExt, StreamExt};
use spin_sdk::http::{
    ErrorCode as HttpErrorCode, Fields, IncomingRequest, Method, OutgoingResponse, ResponseOutparam,
};

/// What a handler needs to know about a request (the body stays in `body`).
pub struct Req {
    pub method: Method,
    /// Path below the component's route (`spin-path-info`).
    pub path: String,
    pub query: String,
    headers: Vec<(String, String)>,
    /// `scheme://host[:port]` the client used (from `spin-full-url`).
    pub origin: String,
    /// The whole request path, for components serving several routes.
    pub full_path: String,
    pub body: Option<IncomingRequest>,
}

impl Req {
    pub fn new(req: IncomingRequest) -> Req {
        let headers: Vec<(String, String)> = req
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let full = find("spin-full-url").unwrap_or_default();
        let origin = full
            .find("://")
            .map(|i| match full[i + 3..].find('/') {
                Some(j) => full[..i + 3 + j].to_string(),
                None => full.clone(),
            })
            .unwrap_or_default();
        let path_with_query = req.path_with_query().unwrap_or_default();
        let (full_path, query) = match path_with_query.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (path_with_query, String::new()),
        };
        Req {
            method: req.method(),
            path: find("spin-path-info").unwrap_or_default(),
            query,
            origin,
            full_path,
            headers,
            body: Some(req),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The credentials of `Authorization: <scheme> <credentials>`, when the
    /// scheme matches (case-insensitively).
    pub fn auth(&self, scheme: &str) -> Option<&str> {
        let value = self.header("authorization")?.trim();
        let (s, rest) = value.split_once(' ')?;
        s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
    }

    /// Every header, names in lower case.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.headers.clone()
    }

    /// Lenient: a malformed value is decoded with U+FFFD. Request
    /// handlers use [`Req::param`].
    pub fn query_param(&self, name: &str) -> Option<String> {
        assetgate_web::query::get(&self.query, name)
    }

    /// Lenient: malformed escapes are kept and bytes that are not UTF-8
    /// become U+FFFD. Request handlers use [`Req::path_segments`].
    pub fn segments(&self) -> Vec<String> {
        self.full_path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| assetgate_web::query::percent_decode(s, false))
            .collect()
    }

    /// Segments of the whole path, each percent-decoded strictly: a
    /// malformed one is a 400 naming it.
    pub fn path_segments(&self) -> Result<Vec<String>, StoreError> {
        decode_path(&self.full_path)
    }

    /// The query string's pairs, decoded strictly (400 naming the pair).
    pub fn params(&self) -> Result<Vec<(String, String)>, StoreError> {
        assetgate_web::query::parse_strict(self.query.as_bytes())
            .map_err(|e| StoreError::invalid(format!("malformed query string: {e}")))
    }

    /// The first value of `name` in the query string; the whole query
    /// string must decode.
    pub fn param(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .params()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v))
    }

    /// Reads the whole body, refusing more than `max` bytes (JSON and form
    /// bodies only; files are streamed): before reading when
    /// `Content-Length` announces more, else while reading.
    pub async fn read_body(&mut self, max: usize) -> Result<Vec<u8>, StoreError> {
        let announced = self
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|n| n > max as u64) {
            return Err(StoreError::too_large(format!(
                "request body over {max} bytes"
            )));
        }
        let Some(req) = self.body.take() else {
            return Ok(Vec::new());
        };
        let chunked = self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let mut stream = req.into_body_stream();
        // Sized from Content-Length when it is announced: growing by
        // doubling held the old and the new buffer at once, 16 MiB of
        // linear memory for an 8 MiB chunk, which an instance never gives
        // back.
        let mut out = Vec::with_capacity(announced.map_or(0, |n| n as usize));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                // The host's words are for the operator; the client is
                // told what went wrong with what it sent.
                eprintln!("request body unreadable: {}", e.to_debug_string());
                StoreError::invalid(body_failure(announced, chunked, out.len()))
            })?;
            if out.len() + chunk.len() > max {
                return Err(StoreError::too_large(format!(
                    "request body over {max} bytes"
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    pub async fn read_json(&mut self, max: usize) -> Result<serde_json::Value, StoreError> {
        let body = self.read_body(max).await?;
        serde_json::from_slice(&body)
            .map_err(|e| StoreError::invalid(format!("body is not valid JSON: {e}")))
    }
}

/// Segments of `path`, each percent-decoded strictly.
pub fn decode_path(path: &str) -> Result<Vec<String>, StoreError> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| {
            assetgate_web::decode::percent_decode(s.as_bytes(), false).map_err(|e| {
                StoreError::invalid(format!("malformed URL path: segment {}: {e}", i + 1))
            })
        })
        .collect()
}

/// Why a request body could not be read, as the client can act on it.
impl Req {
    /// The 400 for a body that could not be read after `received` bytes,
    /// in the client's terms (the host's words, `detail`, go to the log).
    pub fn unreadable_body(&self, received: usize, detail: &str) -> StoreError {
        let announced = self
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let chunked = self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        eprintln!("request body unreadable: {detail}");
        StoreError::invalid(body_failure(announced, chunked, received))
    }
}

pub fn body_failure(announced: Option<u64>, chunked: bool, received: usize) -> String {
    match announced {
        Some(n) if !chunked => format!(
            "the request body ended after {received} of the {n} bytes its Content-Length announced; send the whole body"
        ),
        _ if chunked => format!(
            "the chunked request body is malformed or was cut off after {received} bytes; send it again with valid chunk framing"
        ),
        _ => format!(
            "the request body could not be read to its end (the connection failed after {received} bytes); send it again"
        ),
    }
}

/// Sends the status and `headers` (then `more`) and opens the body, every
/// answer's start.
fn open_body(
    out: ResponseOutparam,
    status: u16,
    headers: &[(&str, String)],
    more: &[(&str, String)],
) -> impl futures::Sink<Vec<u8>> + use<> {
    let fields = Fields::new();
    for (k, v) in headers.iter().chain(more) {
        let _ = fields.append(k, v.as_bytes());
    }
    let resp = OutgoingResponse::new(fields);
    let _ = resp.set_status_code(status);
    let sink = resp.take_body();
    out.set(resp);
    sink
}

/// A response head plus a body written in one go.
pub async fn send(out: ResponseOutparam, status: u16, headers: &[(&str, String)], body: Vec<u8>) {
    // 204 and 304 have no body to measure (a 304's Content-Length would
    // describe the cached representation, not this answer).
    let bodiless = status == 204 || status == 304;
    let mut length = Vec::new();
    if !bodiless
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        length.push(("content-length", body.len().to_string()));
    }
    let mut sink = open_body(out, status, headers, &length);
    if !body.is_empty() {
        let _ = sink.send(body).await;
    }
    // Dropping the sink finishes the body, so the client has the whole
    // response even if the handler goes on working.
    drop(sink);
}

/// An answer whose body is made part by part as it is written (`len`
/// bytes in all, sent as its Content-Length), so the instance never holds
/// the whole body. A client gone midway ends the writing.
pub async fn send_parts(
    out: ResponseOutparam,
    status: u16,
    headers: &[(&str, String)],
    len: usize,
    parts: impl Iterator<Item = Vec<u8>>,
) {
    let mut sink = open_body(out, status, headers, &[("content-length", len.to_string())]);
    for part in parts {
        if sink.send(part).await.is_err() {
            return;
        }
    }
}

pub async fn send_json(out: ResponseOutparam, status: u16, value: &serde_json::Value) {
    send(
        out,
        status,
        &[("content-type", "application/json".into())],
        value.to_string().into_bytes(),
    )
    .await
}

/// The one place store errors become HTTP: status from the stable code,
/// body `{"error": code, "message": …}`. Backend failures are logged and
/// answered without their details.
pub async fn send_error(out: ResponseOutparam, e: &StoreError) {
    let message = if matches!(e.code, ErrorCode::Backend | ErrorCode::Corrupt) {
        eprintln!("internal error: {e}");
        "internal error".to_string()
    } else {
        e.message.clone()
    };
    send_json(
        out,
        e.code.http_status(),
        &serde_json::json!({ "error": e.code.as_str(), "message": message }),
    )
    .await
}

/// An error with a status that is not one of the store's codes.
pub async fn send_status(
    out: ResponseOutparam,
    status: u16,
    code: &str,
    message: &str,
    extra: &[(&str, String)],
) {
    let mut headers = vec![("content-type", "application/json".to_string())];
    headers.extend(extra.iter().cloned());
    let body = serde_json::json!({ "error": code, "message": message });
    send(out, status, &headers, body.to_string().into_bytes()).await
}

/// 405 for a known resource asked with the wrong method, with the
/// `Allow` header HTTP requires.
pub async fn send_method_not_allowed(out: ResponseOutparam, allow: &str) {
    send_status(
        out,
        405,
        "method-not-allowed",
        &format!("method not allowed on this resource (allowed: {allow})"),
        &[("allow", allow.to_string())],
    )
    .await
}

/// 404 for a path no endpoint serves.
pub async fn send_not_found(out: ResponseOutparam) {
    send_status(out, 404, "not-found", "no such endpoint", &[]).await
}

/// Streams blob `id` honouring `Range` (200, 206 or 416), chunk by chunk.
pub async fn send_blob<K: Kv + ?Sized>(
    out: ResponseOutparam,
    kv: &K,
    config: BlobConfig,
    id: &str,
    range_header: Option<&str>,
    headers: &[(&str, String)],
) {
    let blobs = Blobs::new(kv, config);
    let d = match blobs.stat(id) {
        Ok(d) => d,
        Err(e) => return send_error(out, &e).await,
    };
    let range = range::parse(range_header, d.size);
    let (status, start, end) = match range {
        ByteRange::Full => (200, 0, d.size),
        ByteRange::Partial { start, end } => (206, start, end),
        ByteRange::Unsatisfiable => {
            let cr = range.content_range(d.size).unwrap_or_default();
            return send_status(
                out,
                416,
                "range-not-satisfiable",
                "range outside the asset",
                &[("content-range", cr)],
            )
            .await;
        }
    };
    if let Some(max) = max_body().filter(|&m| end - start > m) {
        let message = format!(
            "this deployment answers at most {max} bytes per response (http_max_body_bytes); \
             this one would be {} bytes: fetch it in ranges, e.g. `Range: bytes=0-{}`",
            end - start,
            max - 1
        );
        let extra = [("accept-ranges", "bytes".to_string())];
        return send_status(out, 413, "too-large", &message, &extra).await;
    }
    let mut more = vec![
        ("content-length", (end - start).to_string()),
        ("accept-ranges", "bytes".to_string()),
    ];
    if let Some(cr) = range.content_range(d.size) {
        more.push(("content-range", cr));
    }
    let mut sink = open_body(out, status, headers, &more);
    let reader = match blobs.read_range(id, start, end) {
        Ok(r) => r,
        Err(_) => return,
    };
    for chunk in reader {
        match chunk {
            Ok(bytes) => {
                if sink.send(bytes).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Headers are sent: cutting the body short is the only signal.
                eprintln!("blob `{id}` read failed mid-stream: {e}");
                return;
            }
        }
    }
}

/// The method as its upper-case name.
pub fn method_name(m: &Method) -> String {
    match m {
        Method::Get => "GET".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Patch => "PATCH".into(),
        Method::Head => "HEAD".into(),
        Method::Options => "OPTIONS".into(),
        Method::Connect => "CONNECT".into(),
        Method::Trace => "TRACE".into(),
        Method::Other(s) => s.to_ascii_uppercase(),
    }
}

/// A Spin variable; unset, undeclared or blank → `None`.
pub fn var(name: &str) -> Option<String> {
    spin_sdk::variables::get(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// `http_max_body_bytes`: the largest request or response body the
/// platform carries (the edge platforms: 10 MiB), or `None` when the
/// platform sets no limit (`0`, Spin's default). Checked before any work,
/// so a refusal is a clear 413 instead of a cut connection.
pub fn max_body() -> Option<u64> {
    var("http_max_body_bytes")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&n| n > 0)
}

/// Outbound HTTP failures, split by what a retry can fix.
#[derive(Debug, Clone)]
pub enum FetchError {
    /// Network trouble or a 5xx/429: worth retrying.
    Transient(String),
    /// A definitive answer (4xx) or a refused destination: retrying won't help.
    Permanent(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Transient(m) | FetchError::Permanent(m) => f.write_str(m),
        }
    }
}

/// Sends a request; answers the response (any status) or why it failed.
pub async fn fetch(
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<spin_sdk::http::IncomingResponse, FetchError> {
    let mut builder = spin_sdk::http::Request::builder();
    builder.method(method).uri(url);
    for (k, v) in headers {
        builder.header(*k, v.as_str());
    }
    builder.body(body);
    match spin_sdk::http::send::<_, spin_sdk::http::IncomingResponse>(builder.build()).await {
        Ok(r) => Ok(r),
        Err(spin_sdk::http::SendError::Http(code)) => {
            let why = describe_http_error(&code);
            if matches!(
                code,
                HttpErrorCode::HttpRequestDenied | HttpErrorCode::HttpRequestUriInvalid
            ) {
                Err(FetchError::Permanent(format!(
                    "request to {url} refused: {why}"
                )))
            } else {
                Err(FetchError::Transient(format!(
                    "request to {url} failed: {why}"
                )))
            }
        }
        Err(spin_sdk::http::SendError::Io(e)) => {
            eprintln!("request to {url}: stream error: {e:?}");
            Err(FetchError::Transient(format!(
                "request to {url} failed: the connection broke while sending or receiving"
            )))
        }
        Err(e) => Err(FetchError::Transient(format!(
            "request to {url} failed: {e}"
        ))),
    }
}

/// An outbound failure in words (these reach clients through job errors
/// and gateway answers), not the binding's Debug form.
fn describe_http_error(code: &HttpErrorCode) -> String {
    match code {
        HttpErrorCode::DnsTimeout => "DNS lookup timed out".into(),
        HttpErrorCode::DnsError(_) => "DNS lookup failed".into(),
        HttpErrorCode::DestinationNotFound => "host not found".into(),
        HttpErrorCode::DestinationUnavailable => "host unavailable".into(),
        HttpErrorCode::DestinationIpProhibited | HttpErrorCode::DestinationIpUnroutable => {
            "destination address not reachable".into()
        }
        HttpErrorCode::ConnectionRefused => "connection refused".into(),
        HttpErrorCode::ConnectionTerminated => "connection closed by the server".into(),
        HttpErrorCode::ConnectionTimeout => "connection timed out".into(),
        HttpErrorCode::ConnectionReadTimeout | HttpErrorCode::HttpResponseTimeout => {
            "the server did not answer in time".into()
        }
        HttpErrorCode::ConnectionWriteTimeout => "sending the request timed out".into(),
        HttpErrorCode::ConnectionLimitReached => "too many connections".into(),
        HttpErrorCode::TlsProtocolError
        | HttpErrorCode::TlsCertificateError
        | HttpErrorCode::TlsAlertReceived(_) => "TLS handshake failed".into(),
        HttpErrorCode::HttpRequestDenied => {
            "destination not allowed by this application's allowed_outbound_hosts".into()
        }
        HttpErrorCode::HttpRequestUriInvalid => "invalid URL".into(),
        HttpErrorCode::HttpResponseIncomplete => "the response ended early".into(),
        HttpErrorCode::HttpProtocolError => "the server broke the HTTP protocol".into(),
        HttpErrorCode::InternalError(Some(m)) => format!("internal error ({m})"),
        other => format!("HTTP error ({})", variant_name(other)),
    }
}

/// `HttpErrorCode::Foo(…)` → `Foo`: the variant's name without its payload.
fn variant_name(code: &HttpErrorCode) -> String {
    let text = format!("{code:?}");
    let name = text.split(['(', ' ', '{']).next().unwrap_or("");
    name.rsplit("::").next().unwrap_or(name).to_string()
}

/// Classifies a response status: 2xx → Ok, else why.
pub fn check_status(url: &str, status: u16) -> Result<(), FetchError> {
    match status {
        200..=299 => Ok(()),
        429 | 500..=599 => Err(FetchError::Transient(format!("{url} answered {status}"))),
        _ => Err(FetchError::Permanent(format!("{url} answered {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_strictly_naming_the_segment() {
        assert_eq!(
            decode_path("/api/v1/upload/jobs/a%2Db").unwrap(),
            ["api", "v1", "upload", "jobs", "a-b"]
        );
        assert_eq!(decode_path("//proxy/").unwrap(), ["proxy"]);
        assert!(decode_path("").unwrap().is_empty());
        for (path, segment) in [
            ("/proxy/%C3é", 2),
            ("/%/x", 1),
            ("/a/b/%G1", 3),
            ("/a/%C0%AF", 2),
            ("/a/%00", 2),
            ("/a/%ED%A0%80/b", 2),
            ("/%Cé", 1),
        ] {
            let e = decode_path(path).unwrap_err();
            assert_eq!(e.code, ErrorCode::Invalid, "{path}");
            assert!(
                e.message
                    .starts_with(&format!("malformed URL path: segment {segment}: ")),
                "{path}: {}",
                e.message
            );
        }
    }

    #[test]
    fn body_failures_say_what_to_fix_without_internals() {
        let table = [
            (Some(1000), false, 41, "ended after 41 of the 1000 bytes"),
            (
                None,
                true,
                3,
                "chunked request body is malformed or was cut off",
            ),
            (Some(1000), true, 3, "chunked"),
            (None, false, 0, "could not be read to its end"),
        ];
        for (announced, chunked, received, says) in table {
            let m = body_failure(announced, chunked, received);
            assert!(m.contains(says), "{m}");
            assert!(!m.contains('{') && !m.contains("Resource"), "{m}");
        }
    }
}
