//! `assetgate`, the command-line client of an assetgate server (and of any
//! server speaking the same four protocols): EpiFiles chunked transfers
//! with several chunks in flight and resume, Phraseanet uploads and
//! commits, Asset Compute requests and their events, previews.
//!
//! Results go to stdout as JSON (one line per result or event); errors go
//! to stderr as `error: …` with an exit status a script can test:
//! 0 success, 1 refused by the server, 2 usage, 3 network, 4 integrity
//! (an MD5, a size, an unreadable answer), 5 local file, 6 renditions
//! failed or not reported in time.

mod compute;
mod epifiles;
mod fail;
mod http;
mod phraseanet;
mod preview;
mod progress;

use clap::{Args, Parser, Subcommand};
use fail::{Fail, Result};
use http::Client;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "assetgate", version, about, long_about = None)]
struct Cli {
    /// No progress on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// EpiFiles chunked transfers (`/epifiles/ws/manifestfile`).
    Epifiles {
        #[command(subcommand)]
        command: Epifiles,
    },
    /// Upload files to the Phraseanet upload service (`POST /assets`), and
    /// optionally commit them (`POST /commits`): prints ids, commit id and
    /// token.
    Upload {
        /// Server base URL.
        url: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The upload service key.
        #[arg(long, env = "ASSETGATE_UPLOAD_KEY")]
        api_key: String,
        /// JSON sent as each file's `formData` part.
        #[arg(long)]
        form_data: Option<String>,
        /// Commit the uploaded files as one batch.
        #[arg(long)]
        commit: bool,
        /// The commit's publisher.
        #[arg(long, default_value = "assetgate-cli")]
        publisher: String,
    },
    /// Asset Compute: tokens, registration, renditions.
    Compute {
        #[command(subcommand)]
        command: Compute,
    },
    /// Fetch a preview through the preview proxy, after logging on.
    Preview {
        /// Server base URL (`http://user:password@host:port` or --user).
        url: String,
        /// The object (asset) id.
        #[arg(long)]
        object: String,
        /// preview-args, e.g. `maxWidth_600_maxHeight_400.jpg`.
        #[arg(long)]
        args: Option<String>,
        /// `preview`, `thumbnail` or `native`.
        #[arg(long, default_value = "preview")]
        rendition: String,
        #[arg(long, short)]
        output: PathBuf,
        #[command(flatten)]
        credentials: Credentials,
    },
    /// Hash a password read from stdin, Django-style
    /// (`pbkdf2_sha256$…`), for the `epifiles_users` variable.
    HashPassword {
        #[arg(long, default_value_t = 20000)]
        iterations: u32,
        /// Salt without `$` (default: 24 random hex digits).
        #[arg(long)]
        salt: Option<String>,
    },
}

#[derive(Args)]
struct Credentials {
    /// User when the URL carries none.
    #[arg(long, env = "EPIFILES_USER")]
    user: Option<String>,
    /// Password when the URL carries none.
    #[arg(long, env = "EPIFILES_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

#[derive(Subcommand)]
enum Epifiles {
    /// Upload files in chunks, several in flight; resumes from
    /// `FILE.assetgate-upload` after an interruption.
    Upload {
        /// Server base URL (`http://user:password@host:port` or --user).
        url: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Bytes per chunk.
        #[arg(long, default_value_t = 8 << 20)]
        chunk_size: u64,
        /// Chunks in flight at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// Send chunks as raw bodies (an assetgate extension; a third
        /// fewer bytes than base64).
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        repository: Option<String>,
        #[arg(long)]
        comment: Option<String>,
        #[arg(long)]
        content_type: Option<String>,
        #[command(flatten)]
        credentials: Credentials,
    },
    /// Download a manifest file in chunks, several in flight, into OUT
    /// (via `OUT.part`); resumes after an interruption.
    Download {
        url: String,
        id: String,
        out: PathBuf,
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        #[command(flatten)]
        credentials: Credentials,
    },
}

#[derive(Args)]
struct Caller {
    /// The client's access token.
    #[arg(long, env = "ASSETGATE_COMPUTE_TOKEN", hide_env_values = true)]
    token: String,
    /// x-api-key (default: the one the token carries).
    #[arg(long)]
    api_key: Option<String>,
    /// x-gw-ims-org-id (default: the one the token carries).
    #[arg(long)]
    org: Option<String>,
}

#[derive(Subcommand)]
enum Compute {
    /// Issue a client's access token and its `compute_clients` entry.
    Token {
        #[arg(long)]
        name: String,
        #[arg(long)]
        api_key: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        max_in_flight: Option<u32>,
    },
    /// Register (idempotent): prints the journal URL.
    Register {
        url: String,
        #[command(flatten)]
        caller: Caller,
    },
    /// Remove the registration and its journal.
    Unregister {
        url: String,
        #[command(flatten)]
        caller: Caller,
    },
    /// Submit renditions of a source.
    Process {
        url: String,
        /// A URL the service may read, or `asset:<id>`.
        #[arg(long)]
        source: String,
        /// `fmt=png,width=200[,name=…][,target=URL][,crop=x:y:w:h]…`;
        /// repeat for several.
        #[arg(long = "rendition", required = true)]
        renditions: Vec<String>,
        /// Print this request's events as they arrive, until all are in.
        #[arg(long)]
        watch: bool,
        /// Seconds to wait for the events with --watch.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        #[command(flatten)]
        caller: Caller,
    },
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(serde_json::Value::Null) => {}
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    }
}

fn client(url: &str, c: Option<&Credentials>) -> Result<Client> {
    Client::new(
        url,
        c.and_then(|c| c.user.as_deref()),
        c.and_then(|c| c.password.as_deref()),
    )
}

fn run(cli: Cli) -> Result<serde_json::Value> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Epifiles { command } => match command {
            Epifiles::Upload {
                url,
                files,
                chunk_size,
                parallel,
                raw,
                repository,
                comment,
                content_type,
                credentials,
            } => {
                if chunk_size == 0 || parallel == 0 {
                    return Err(Fail::Usage(
                        "--chunk-size and --parallel must be at least 1".into(),
                    ));
                }
                let c = client(&url, Some(&credentials))?;
                let mut fields = Vec::new();
                for (k, v) in [
                    ("id_repository", repository),
                    ("comment", comment),
                    ("content_type", content_type),
                ] {
                    if let Some(v) = v {
                        fields.push((k, v));
                    }
                }
                let o = epifiles::UploadOptions {
                    chunk_size,
                    parallel,
                    raw,
                    fields,
                    quiet,
                };
                let mut out = Vec::new();
                for f in &files {
                    out.push(epifiles::upload(&c, f, &o)?);
                }
                Ok(if out.len() == 1 {
                    out.remove(0)
                } else {
                    serde_json::Value::Array(out)
                })
            }
            Epifiles::Download {
                url,
                id,
                out,
                parallel,
                credentials,
            } => {
                let c = client(&url, Some(&credentials))?;
                epifiles::download(&c, &id, &out, parallel.max(1), quiet)
            }
        },
        Command::Upload {
            url,
            files,
            api_key,
            form_data,
            commit,
            publisher,
        } => {
            let form_data = form_data
                .map(|f| {
                    serde_json::from_str::<serde_json::Value>(&f)
                        .map_err(|e| Fail::Usage(format!("--form-data is not JSON: {e}")))
                })
                .transpose()?;
            let c = client(&url, None)?.with_authorization(format!("Bearer {api_key}"));
            let files: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
            let o = phraseanet::Options {
                form_data: form_data.as_ref(),
                commit,
                publisher: &publisher,
            };
            phraseanet::upload(&c, &files, &o)
        }
        Command::Compute { command } => match command {
            Compute::Token {
                name,
                api_key,
                org,
                max_in_flight,
            } => Ok(compute::token(&name, &api_key, &org, max_in_flight)),
            Compute::Register { url, caller } => {
                let who = compute::Caller::new(caller.token, caller.api_key, caller.org)?;
                compute::register(&client(&url, None)?, &who)
            }
            Compute::Unregister { url, caller } => {
                let who = compute::Caller::new(caller.token, caller.api_key, caller.org)?;
                compute::unregister(&client(&url, None)?, &who)
            }
            Compute::Process {
                url,
                source,
                renditions,
                watch,
                timeout,
                caller,
            } => {
                let who = compute::Caller::new(caller.token, caller.api_key, caller.org)?;
                let renditions = renditions
                    .iter()
                    .map(|r| compute::rendition(r))
                    .collect::<Result<Vec<_>>>()?;
                let body = serde_json::json!({"source": source, "renditions": renditions});
                compute::process(
                    &client(&url, None)?,
                    &who,
                    &body,
                    watch,
                    Duration::from_secs(timeout),
                )
            }
        },
        Command::Preview {
            url,
            object,
            args,
            rendition,
            output,
            credentials,
        } => {
            let parsed = url::Url::parse(&url)
                .map_err(|e| Fail::Usage(format!("{url} is not a URL: {e}")))?;
            let (user, password) = http::credentials(
                &parsed,
                credentials.user.as_deref(),
                credentials.password.as_deref(),
            )
            .ok_or_else(|| Fail::Usage("a user is required (in the URL or --user)".into()))?;
            let c = client(&url, None)?;
            preview::fetch(
                &c,
                &user,
                &password,
                &object,
                &rendition,
                args.as_deref(),
                &output,
            )
        }
        Command::HashPassword { iterations, salt } => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| Fail::io("stdin", e))?;
            let password = line.trim_end_matches(['\n', '\r']);
            let salt = salt.unwrap_or_else(|| hex::encode(phraseanet::random::<12>()));
            if salt.is_empty() || salt.contains('$') || iterations == 0 {
                return Err(Fail::Usage(
                    "the salt must be non-empty without `$`, iterations at least 1".into(),
                ));
            }
            // The bare hash, ready to paste into `epifiles_users`.
            println!(
                "{}",
                assetgate_identity::users::hash_password(password, &salt, iterations)
            );
            Ok(serde_json::Value::Null)
        }
    }
}
