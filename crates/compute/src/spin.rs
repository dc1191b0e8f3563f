//! The Spin side, shared by the `compute` and `journal` components: admit
//! the request from its headers ([`crate::api::admit`]: route and
//! credentials), only then read its body, answer ([`crate::api::respond`]);
//! then work the job the request created, and take over one abandoned job
//! if there is one (Spin has no timers: polling the journal is what keeps
//! the queue moving).

use crate::api::{self, Request};
use crate::clients::Clients;
use crate::config::Config;
use crate::error::{Failure, Reason};
use crate::runner::{self, Fetched, Transport};
use crate::service::Service;
use assetgate_component::{FetchError, Req, check_status, fetch, method_name, send, var};
use assetgate_store::spin::SpinKv;
use assetgate_store::{ErrorCode, StoreSettings};
use assetgate_web::time;
use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};

/// `wasi:http` with the component's `allowed_outbound_hosts`. Redirects
/// are not followed (a redirect could lead past the URL policy).
pub struct SpinTransport;

impl Transport for SpinTransport {
    async fn get(&self, url: &str, max: u64) -> Result<Fetched, Failure> {
        let shown = crate::urls::redact(url);
        let failed = |e: FetchError| Failure::generic(format!("{shown}: {e}").replace(url, &shown));
        let resp = fetch(Method::Get, url, &[], Vec::new())
            .await
            .map_err(failed)?;
        check_status(&shown, resp.status()).map_err(failed)?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .into_iter()
                .next()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        let too_big = |n: u64| {
            Failure::new(
                Reason::SourceUnsupported,
                format!("{shown} has {n} bytes; at most {max} are processed"),
            )
        };
        if let Some(n) = header("content-length").and_then(|v| v.trim().parse::<u64>().ok())
            && n > max
        {
            return Err(too_big(n));
        }
        let content_type = header("content-type");
        let mut bytes = Vec::new();
        let mut stream = resp.take_body_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| Failure::generic(format!("{shown}: body cut short: {e:?}")))?;
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(too_big((bytes.len() + chunk.len()) as u64));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            bytes,
            content_type,
        })
    }

    async fn put(&self, url: &str, content_type: &str, body: Vec<u8>) -> Result<(), String> {
        // Presigned stores (S3, Azure) refuse chunked uploads: say the length.
        let headers = [
            ("content-type", content_type.to_string()),
            ("content-length", body.len().to_string()),
        ];
        let shown = crate::urls::redact(url);
        let resp = fetch(Method::Put, url, &headers, body)
            .await
            .map_err(|e| e.to_string().replace(url, &shown))?;
        check_status(&shown, resp.status()).map_err(|e| e.to_string())
    }
}

async fn refuse(out: ResponseOutparam, status: u16, message: &str, headers: &[(String, String)]) {
    let r = crate::api::refusal(status, message, headers);
    send(out, r.status, &r.headers, r.body).await
}

pub async fn serve(req: IncomingRequest, out: ResponseOutparam) {
    let mut req = Req::new(req);
    let headers = req.headers();
    let loaded = (|| {
        let kv = SpinKv::open_default().map_err(|e| e.to_string())?;
        let cfg = Config::from_lookup(var).map_err(|e| e.to_string())?;
        let clients = Clients::from_json(&var("compute_clients").unwrap_or_else(|| "[]".into()))?;
        let settings = StoreSettings::from_lookup(var).map_err(|e| e.to_string())?;
        Ok::<_, String>((kv, cfg, clients, settings))
    })();
    let (kv, cfg, clients, settings) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("compute: configuration error: {e}");
            let m = "the service is misconfigured; see its log";
            return refuse(out, 500, m, &headers).await;
        }
    };
    let svc = Service::new(&kv, cfg, clients, settings.blobs);
    let method = method_name(&req.method);
    // Credentials first: a caller without them is answered at once, its
    // body never read (nor held), and sets no work going.
    let admitted = match api::admit(&svc, &method, &req.full_path, &headers) {
        Ok(a) => a,
        Err(r) => {
            eprintln!("compute: {method} {} → {}", req.full_path, r.status);
            return send(out, r.status, &r.headers, r.body).await;
        }
    };
    let body = if admitted.needs_body() {
        match req.read_body(svc.cfg.max_request_bytes as usize).await {
            Ok(b) => b,
            Err(e) => {
                let status = if e.code == ErrorCode::TooLarge {
                    413
                } else {
                    400
                };
                let r = admitted.refuse(status, &e.message);
                eprintln!("compute: {method} {} → {status}", req.full_path);
                return send(out, r.status, &r.headers, r.body).await;
            }
        }
    } else {
        Vec::new()
    };
    let outcome = api::respond(
        &svc,
        admitted,
        Request {
            method: &method,
            path: &req.full_path,
            query: &req.query,
            headers: &headers,
            body,
            origin: &req.origin,
        },
        time::now(),
    );
    let r = outcome.response;
    if r.status >= 400 {
        eprintln!("compute: {method} {} → {}", req.full_path, r.status);
    }
    send(out, r.status, &r.headers, r.body).await;

    if let Some(job) = outcome.job
        && let Err(e) = runner::run(&svc, &SpinTransport, &job, time::now).await
    {
        eprintln!("compute: job {job}: {e}");
    }
    if let Err(e) = runner::recover(&svc, &SpinTransport, time::now).await {
        eprintln!("compute: recovering abandoned jobs: {e}");
    }
}
