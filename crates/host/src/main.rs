//! `assetgate-host`: runs a Spin app (`spin.toml` + its `.wasm` components)
//! without a Spin binary. It implements exactly the Spin host interfaces
//! assetgate uses; it is the embedded default for running and the engine of
//! the end-to-end tests, not a replacement for Spin.
//!
//! The host itself is the `assetgate_host` library (`src/lib.rs`); this
//! binary is its command line and accept loop.

use anyhow::{Context, Result, anyhow};
use assetgate_host::{connection, dev, manifest, profile, server};
use clap::Parser;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Parser, Debug)]
#[command(
    name = "assetgate-host",
    version,
    about = "Run a Spin app's spin.toml and .wasm components without Spin"
)]
struct Cli {
    /// The application manifest.
    #[arg(short = 'f', long, default_value = "spin.toml")]
    from: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Set an application variable (overrides SPIN_VARIABLE_<NAME>).
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    variables: Vec<String>,
    /// Directory for durable state (key-value database, compile cache);
    /// defaults to `.spin` next to the manifest, as Spin does.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Maximum linear memory of one component instance, in MiB.
    #[arg(long, default_value_t = 512)]
    max_instance_memory_mib: usize,
    /// The platform to hold components to: `spin` (what `spin up` allows)
    /// or `edge` (Fermyon Wasm Functions / Akamai Functions: no
    /// wasi:keyvalue/atomics, 128 MiB per instance, 10 MiB bodies, 30 s per
    /// request).
    #[arg(long, value_enum, default_value = "spin")]
    profile: profile::Profile,
    /// End each request after this many seconds, work after the response
    /// included (default: the profile's; none for `spin`, 30 for `edge`).
    #[arg(long, value_name = "SECS")]
    max_request_secs: Option<u64>,
    /// Where compiled components are cached (default: `<state-dir>/cache`).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Do not cache compiled components on disk.
    #[arg(long)]
    no_compile_cache: bool,
    /// On a loopback address with no credential variables set, make local
    /// development credentials on the first run (kept in
    /// `<state-dir>/dev-credentials.env`) and use them. `scripts/up` sets it.
    #[arg(long)]
    dev_credentials: bool,
    /// Spin's runtime config file: `[key_value_store.<label>]` tables with
    /// `type = "spin"` (`path`) or `type = "redis"` (`url`). Read from
    /// RUNTIME_CONFIG_FILE when not given, as Spin does.
    #[arg(long, value_name = "PATH", env = "RUNTIME_CONFIG_FILE")]
    runtime_config_file: Option<PathBuf>,
    /// Close a connection whose next request head (start line and headers)
    /// has not fully arrived this many seconds after the connection opened
    /// or after its previous response: slow-loris and idle keep-alive
    /// connections alike. Request bodies are not timed by it.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = connection::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    header_read_timeout_secs: u64,
}

fn parse_variables(raw: &[String]) -> Result<BTreeMap<String, String>> {
    raw.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--variable `{kv}` must be NAME=VALUE"))
        })
        .collect()
}

fn main() {
    bound_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("Error: cannot start the async runtime: {e}");
            std::process::exit(1);
        });
    runtime.block_on(serve());
}

/// glibc gives each thread that allocates its own arena (up to 8 per core),
/// and the blocking pool's key-value threads each held freed 1 MiB values
/// in theirs: 40–60 MiB of the host's peak in a chunked transfer. Two
/// arenas keep it near the live data. Before any thread starts, as the
/// setting only applies to arenas created later.
fn bound_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn serve() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSETGATE_LOG").unwrap_or_else(|_| {
                "info,wasmtime_wasi_http=warn,cranelift=warn,wasmtime=warn".into()
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let manifest = manifest::Manifest::load(&cli.from)?;
    // wasmtime's cache wants absolute paths, and the state must not move
    // with the working directory of whoever starts the host.
    let absolute = |p: PathBuf| {
        std::path::absolute(&p).with_context(|| format!("cannot resolve {}", p.display()))
    };
    let state_dir = absolute(cli.state_dir.unwrap_or_else(|| manifest.root.join(".spin")))?;
    let compile_cache = match (cli.no_compile_cache, cli.cache_dir) {
        (true, _) => None,
        (false, Some(dir)) => Some(absolute(dir)?),
        (false, None) => Some(state_dir.join("cache")),
    };
    // Bound before the app loads: the development credentials depend on
    // the address (loopback only, and the ingest side trusts this origin).
    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let addr = listener.local_addr()?;
    let mut variables = parse_variables(&cli.variables)?;
    let dev = if cli.dev_credentials {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Some(dev::apply(&state_dir, addr, &env, &mut variables)?)
    } else {
        None
    };
    let options = server::HostOptions {
        compile_cache,
        state_dir,
        variables,
        limits: profile::Limits::new(cli.profile, cli.max_instance_memory_mib << 20)
            .with_request_secs(cli.max_request_secs),
        runtime_config_file: cli.runtime_config_file,
    };
    let app = server::App::load(&manifest, &options)?;
    app.set_origin(addr);

    // Spin prints the same banner, first; the end-to-end tests read the
    // address from it when they ask for port 0.
    println!("Serving http://{addr}");
    println!("Available Routes:");
    for t in &manifest.triggers {
        if let Some(route) = &t.route {
            println!(
                "  {}: http://{addr}{}",
                t.component,
                route.trim_end_matches("/...")
            );
        }
    }
    if let Some(outcome) = &dev {
        print!("{}", dev::banner(outcome, &format!("http://{addr}")));
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(app = %app.name, version = %app.version, "application loaded");

    let limits = connection::Limits {
        header_read_timeout: std::time::Duration::from_secs(cli.header_read_timeout_secs),
    };
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, client) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                tokio::spawn(connection::serve(stream, client, Arc::clone(&app), limits));
            }
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
