//! Serving the app: routing, one fresh component instance per request from a
//! pre-instantiated component, streamed bodies, and outbound requests
//! (refused, chained in-process, or sent to the network).

use crate::kv::KvStores;
use crate::manifest::Manifest;
use crate::outbound::{Destination, OutboundPolicy};
use crate::profile::Capped;
use crate::routes::{RouteMatch, Router};
use crate::state::{ComponentConfig, RequestState};
use crate::variables::ResolvedVariables;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Instant;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpHooks, WasiHttpView};

/// How often running guests yield to the executor.
const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Host settings that are not in the manifest.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Where `.spin/` state lives (the key-value database, compile cache).
    pub state_dir: PathBuf,
    /// `--variable` overrides.
    pub variables: BTreeMap<String, String>,
    /// The platform's limits (`--profile`, `--max-instance-memory-mib`).
    pub limits: crate::profile::Limits,
    /// Directory to cache compiled components in, if any.
    pub compile_cache: Option<PathBuf>,
    /// Spin's runtime config file (`--runtime-config-file`): key-value
    /// store labels beyond `default`.
    pub runtime_config_file: Option<PathBuf>,
}

struct LoadedComponent {
    pre: ProxyPre<RequestState>,
    config: Arc<ComponentConfig>,
    /// The first public route of the component, for chained requests sent
    /// straight to it (`http://<id>.spin.internal`).
    route: Option<String>,
}

/// A loaded application, ready to serve.
pub struct App {
    pub name: String,
    pub version: String,
    engine: Engine,
    router: Router,
    components: HashMap<String, LoadedComponent>,
    kv: KvStores,
    limits: crate::profile::Limits,
    /// `http://host:port` the app is reachable at (for `spin-full-url`).
    origin: std::sync::OnceLock<String>,
    me: Weak<App>,
}

/// Which component a request goes to.
enum Target {
    Route,
    Component(String),
}

impl App {
    pub fn load(manifest: &Manifest, options: &HostOptions) -> Result<Arc<App>> {
        let config = crate::engine::config(options.compile_cache.as_deref())?;
        let engine = Engine::new(&config)?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;

        let mut linker: Linker<RequestState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        add_spin_interfaces(&mut linker)?;

        let env: BTreeMap<String, String> = std::env::vars().collect();
        let variables = ResolvedVariables::resolve(manifest, &env, &options.variables)?;
        let runtime_config = options
            .runtime_config_file
            .as_deref()
            .map(crate::runtime_config::RuntimeConfig::load)
            .transpose()?;
        let store_config =
            crate::runtime_config::key_value_stores(runtime_config.as_ref(), &options.state_dir);
        let kv = KvStores::open(&store_config)?;

        let mut components = HashMap::new();
        // For `*.spin.internal` in allowed_outbound_hosts.
        let component_ids: Vec<String> = manifest.components.keys().cloned().collect();
        for (id, decl) in &manifest.components {
            crate::runtime_config::check_labels(
                id,
                &decl.key_value_stores,
                &store_config,
                options.runtime_config_file.as_deref(),
            )?;
            let started = Instant::now();
            refuse_core_module(id, &decl.source)?;
            let component = Component::from_file(&engine, &decl.source)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component `{id}`: cannot load {} (built? run scripts/build-components)",
                        decl.source.display()
                    )
                })?;
            refuse_unserved_imports(id, &component, &engine)?;
            options.limits.check_imports(
                id,
                component
                    .component_type()
                    .imports(&engine)
                    .map(|(name, _)| name),
            )?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("component `{id}` imports something this host does not provide")
                })?;
            let pre = ProxyPre::new(pre)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("component `{id}` does not export wasi:http/incoming-handler")
                })?;
            tracing::debug!(component = %id, ms = started.elapsed().as_millis() as u64, "component ready");
            let route = manifest
                .triggers
                .iter()
                .find(|t| &t.component == id)
                .and_then(|t| t.route.clone());
            let config = ComponentConfig {
                id: id.clone(),
                stores: decl.key_value_stores.iter().cloned().collect(),
                variables: variables.for_component(id),
                environment: decl.environment.clone(),
                outbound: {
                    let hosts = decl
                        .allowed_outbound_hosts
                        .iter()
                        .map(|h| Ok((variables.render(h)?, h.contains("{{"))))
                        .collect::<Result<Vec<_>>>()?;
                    OutboundPolicy::new(&hosts, &component_ids).with_context(|| {
                        format!("component `{id}`: allowed_outbound_hosts is malformed")
                    })?
                },
            };
            components.insert(
                id.clone(),
                LoadedComponent {
                    pre,
                    config: Arc::new(config),
                    route,
                },
            );
        }

        let router = Router::new(
            manifest
                .triggers
                .iter()
                .filter_map(|t| t.route.clone().map(|r| (r, t.component.clone()))),
        )?;

        Ok(Arc::new_cyclic(|me| App {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            engine,
            router,
            components,
            kv,
            limits: options.limits.clone(),
            origin: std::sync::OnceLock::new(),
            me: me.clone(),
        }))
    }

    pub fn set_origin(&self, addr: SocketAddr) {
        let _ = self.origin.set(format!("http://{addr}"));
    }

    /// Serves one request from the network.
    pub async fn handle<B>(
        &self,
        req: Request<B>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let mut req = req;
        // RFC 9112 §3.2, before routing: no component sees a request whose
        // Host is missing (HTTP/1.1), repeated or malformed.
        if let Err(refusal) = crate::host_header::check(&mut req) {
            tracing::info!(method = %req.method(), path = %req.uri().path(), status = 400, reason = refusal.reason(), "request refused: bad Host header");
            let mut resp = text_response(StatusCode::BAD_REQUEST, refusal.body());
            // The client is broken or hostile: do not read another request.
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
        self.dispatch(req, Some(client), Target::Route).await
    }

    async fn dispatch<B>(
        &self,
        mut req: Request<B>,
        client: Option<SocketAddr>,
        target: Target,
    ) -> Response<HyperOutgoingBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let matched = match &target {
            Target::Route => self.router.route(&path),
            Target::Component(id) => self
                .components
                .get(id)
                .map(|c| direct_match(id, c.route.as_deref(), &path)),
        };
        let Some(matched) = matched else {
            tracing::info!(%method, %path, status = 404, "no route");
            return text_response(StatusCode::NOT_FOUND, "Not Found\n");
        };
        let component = &self.components[&matched.component];
        // Spin hands the guest header values as strings and refuses the
        // request before any guest code runs when one is not UTF-8: a 500
        // with no body. So do we, so that tests see what production sees.
        if let Some((name, _)) = req
            .headers()
            .iter()
            .find(|(_, v)| std::str::from_utf8(v.as_bytes()).is_err())
        {
            tracing::error!(component = %matched.component, %method, %path, header = %name, status = 500, "request refused: a header value is not UTF-8 (as Spin does)");
            return empty_response(StatusCode::INTERNAL_SERVER_ERROR);
        }
        self.set_spin_headers(&mut req, &matched, client);

        let response = match self.run_component(component, req).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(component = %matched.component, %method, %path, error = format!("{e:#}"), "component failed");
                text_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
            }
        };
        tracing::info!(
            component = %matched.component, %method, %path,
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        response
    }

    fn set_spin_headers<B>(
        &self,
        req: &mut Request<B>,
        m: &RouteMatch,
        client: Option<SocketAddr>,
    ) {
        let origin = self
            .origin
            .get()
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:3000".into());
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("http://{h}"))
            .unwrap_or(origin);
        // Transport information only; Spin removes it before the guest sees
        // the request (it breaks guests that forward requests).
        req.headers_mut().remove(http::header::CONNECTION);
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let full_url = format!("{host}{path_and_query}");
        let headers = req.headers_mut();
        // A caller must never be able to forge what the router decided.
        let forged: Vec<_> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("spin-"))
            .cloned()
            .collect();
        for k in forged {
            headers.remove(k);
        }
        if !headers.contains_key(http::header::HOST) {
            let authority = host.trim_start_matches("http://").to_string();
            if let Ok(v) = HeaderValue::from_str(&authority) {
                headers.insert(http::header::HOST, v);
            }
        }
        let mut set = |name: &str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(
                    http::HeaderName::from_bytes(name.as_bytes()).expect("static header name"),
                    v,
                );
            }
        };
        set("spin-full-url", &full_url);
        set("spin-path-info", &m.path_info);
        set("spin-matched-route", &m.raw_route);
        set("spin-base-path", "/");
        set("spin-raw-component-route", &m.raw_route);
        set("spin-component-route", &m.component_route);
        set(
            "spin-client-addr",
            &client
                .map(|c| c.to_string())
                .unwrap_or_else(|| "127.0.0.1:0".into()),
        );
        for (name, value) in &m.params {
            // Spin's header for `:path_segment` is
            // `spin-path-match-path-segment` (lowercase, `_` → `-`).
            set(
                &format!(
                    "spin-path-match-{}",
                    name.to_ascii_lowercase().replace('_', "-")
                ),
                value,
            );
        }
    }

    async fn run_component<B>(
        &self,
        component: &LoadedComponent,
        req: Request<B>,
    ) -> Result<Response<HyperOutgoingBody>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let config = component.config.clone();
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        for (k, v) in &config.environment {
            wasi.env(k, v);
        }
        let state = RequestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks {
                app: self.me.clone(),
                component: config.clone(),
            },
            component: config,
            kv: self.kv.clone(),
            limits: crate::state::MemoryLimits::new(self.limits.max_instance_memory),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Yield(1)));

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let max_body = self.limits.max_body;
        let req = req.map(|body| {
            let body = body.map_err(Into::into).boxed_unsync();
            match max_body {
                Some(max) => Capped::request(body, max).boxed_unsync(),
                None => body,
            }
        });
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = component.pre.clone();
        let timeout = self.limits.request_timeout;
        let id = component.config.id.clone();
        // The guest keeps running after it has set the response head, to
        // stream the body and finish its work; that continues in this task,
        // within the profile's time limit.
        let task = tokio::task::spawn(async move {
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            let done = match timeout {
                None => run.await,
                Some(limit) => match tokio::time::timeout(limit, run).await {
                    Ok(done) => done,
                    Err(_) => {
                        tracing::warn!(component = %id, secs = limit.as_secs(), "request ended: over the profile's time limit (its work stops here)");
                        Err(wasmtime::Error::msg(format!(
                            "the request ran over the profile's {} s",
                            limit.as_secs()
                        )))
                    }
                },
            };
            let peak = store.data().limits.peak;
            tracing::info!(component = %id, peak_memory_bytes = peak, "instance ended");
            done
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(self.cap_response(&component.config.id, resp)),
            Ok(Err(code)) => bail!("component answered with error code {code:?}"),
            Err(_) => match task.await {
                Ok(Ok(())) => bail!("component returned without setting a response"),
                Ok(Err(e)) => Err(anyhow::Error::from(e).context("component trapped")),
                Err(e) => Err(anyhow::Error::from(e).context("component task panicked")),
            },
        }
    }
}

impl App {
    /// The profile's response limit: a body declared over it becomes a
    /// 500 (as the platform would fail it), a streamed one is cut there.
    fn cap_response(
        &self,
        id: &str,
        resp: Response<HyperOutgoingBody>,
    ) -> Response<HyperOutgoingBody> {
        let Some(max) = self.limits.max_body else {
            return resp;
        };
        let declared = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max) {
            tracing::error!(component = %id, bytes = declared, max, "response refused: body over the profile's limit");
            return text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error: response body over the platform's limit\n",
            );
        }
        resp.map(|body| Capped::response(body, max).boxed_unsync())
    }
}

fn direct_match(id: &str, route: Option<&str>, path: &str) -> RouteMatch {
    let raw_route = route.unwrap_or("/...").to_string();
    let component_route = raw_route
        .strip_suffix("/...")
        .unwrap_or(&raw_route)
        .to_string();
    RouteMatch {
        component: id.to_string(),
        raw_route,
        component_route,
        path_info: path.to_string(),
        params: Vec::new(),
    }
}

fn add_spin_interfaces(linker: &mut Linker<RequestState>) -> Result<()> {
    use crate::bindings::{fermyon, wasi};
    use wasmtime::component::HasSelf;
    fermyon::spin::key_value::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    fermyon::spin::variables::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    wasi::keyvalue::store::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    wasi::keyvalue::atomics::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    wasi::keyvalue::batch::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    fermyon::spin::redis::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

/// Spin turns a core module (`wasm32-wasip1`, `wasm32-unknown-unknown`) into
/// a component when it loads it; this host does not, so it says what to do
/// instead of failing in the component parser.
fn refuse_core_module(id: &str, source: &std::path::Path) -> Result<()> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let read = std::fs::File::open(source).and_then(|mut f| f.read_exact(&mut head));
    if read.is_ok() && head == *b"\0asm\x01\0\0\0" {
        bail!(
            "component `{id}`: {} is a core wasm module, not a component. Spin converts \
             modules when it loads them; this host does not: build for wasm32-wasip2, or \
             convert it with `wasm-tools component new {} --adapt \
             wasi_snapshot_preview1.reactor.wasm -o component.wasm`",
            source.display(),
            source.display()
        );
    }
    Ok(())
}

/// Interfaces wasmtime's WASI links but this host does not serve the way
/// Spin does (Spin checks sockets against `allowed_outbound_hosts`). A
/// component that imports one fails at start-up, naming it, rather than at
/// its first connection.
const UNSERVED_IMPORTS: &[&str] = &["wasi:sockets/"];

fn refuse_unserved_imports(id: &str, component: &Component, engine: &Engine) -> Result<()> {
    let ty = component.component_type();
    let unserved: Vec<&str> = ty
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| UNSERVED_IMPORTS.iter().any(|p| name.starts_with(p)))
        .collect();
    if !unserved.is_empty() {
        bail!(
            "component `{id}` imports {}, which this host does not implement \
             (Spin serves wasi:sockets under allowed_outbound_hosts): run it under Spin, \
             or use wasi:http for outbound requests",
            unserved.join(", ")
        );
    }
    Ok(())
}

/// An answer with no body, as Spin gives when it refuses a request itself.
fn empty_response(status: StatusCode) -> Response<HyperOutgoingBody> {
    let mut resp = Response::new(
        Full::new(Bytes::new())
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp
}

pub fn text_response(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    let mut resp = empty_response(status);
    *resp.body_mut() = Full::new(Bytes::from_static(body.as_bytes()))
        .map_err(|e| match e {})
        .boxed_unsync();
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Outbound HTTP for one component: the `allowed_outbound_hosts` check, and
/// Spin's service chaining handled in-process.
pub struct OutboundHooks {
    app: Weak<App>,
    component: Arc<ComponentConfig>,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let decision = self
            .component
            .outbound
            .decide(&scheme, uri.host(), uri.port_u16());
        let target = match decision {
            Err(reason) => {
                tracing::warn!(component = %self.component.id, url = %uri, %reason, "outbound request refused");
                return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
            }
            Ok(Destination::Network) => {
                return wasmtime_wasi_http::default_hooks().send_request(request, options, fut);
            }
            Ok(Destination::SelfApp) => Target::Route,
            Ok(Destination::Component(id)) => Target::Component(id),
        };
        let app = self.app.clone();
        Box::new(async move {
            let app = app
                .upgrade()
                .ok_or(wasmtime_wasi_http::Error::DestinationUnavailable)?;
            if let Target::Component(id) = &target
                && !app.components.contains_key(id)
            {
                return Err(wasmtime_wasi_http::Error::DestinationNotFound);
            }
            let resp = Box::pin(app.dispatch(request, None, target)).await;
            let done: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((resp, done))
        })
    }
}
