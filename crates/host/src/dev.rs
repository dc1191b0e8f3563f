//! Local development credentials (`--dev-credentials`, which `scripts/up`
//! passes). The manifest's defaults keep every protocol closed, which is
//! right for deployments but leaves a developer with nothing to try. So, on
//! a loopback address and when no credential is configured, the host makes
//! one set of credentials on the first run, keeps it in
//! `<state-dir>/dev-credentials.env` (mode 600, reused on later runs) and
//! passes it to the app as variables. Spin never does this: under `spin up`
//! or on a platform, the manifest's closed defaults apply.
//!
//! This is the one place the host knows assetgate's variable names.

use anyhow::{Context, Result, bail};
use base64::Engine;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Variables that hold credentials: if any is set, the user configures
/// access and nothing is generated.
pub const CREDENTIAL_VARIABLES: &[&str] = &[
    "upload_api_key",
    "ingest_api_key",
    "epifiles_users",
    "epifiles_admin_token",
    "compute_clients",
];

pub const FILE_NAME: &str = "dev-credentials.env";
const EPI_USER: &str = "dev";
const EPI_REPOSITORY: &str = "1";
const COMPUTE_CLIENT: &str = "dev";
const COMPUTE_API_KEY: &str = "assetgate-dev";
const COMPUTE_ORG: &str = "DEV@AdobeOrg";
/// Django's PBKDF2 iterations at the time of the EpiFiles reference; the
/// component pays them on every EpiFiles call.
const PBKDF2_ITERATIONS: u32 = 20_000;

/// The secrets kept in the credentials file; everything the app needs is
/// derived from them at each start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub upload_key: String,
    pub epi_password: String,
    pub admin_token: String,
    pub compute_token: String,
}

/// Why no credentials were generated, or which ones are in use.
#[derive(Debug)]
pub enum Outcome {
    Skipped(String),
    Active {
        credentials: Credentials,
        file: PathBuf,
        created: bool,
    },
}

/// Decides, loads or creates, and adds the app variables to `variables`.
/// `env` is the process environment (`SPIN_VARIABLE_*` counts as set).
pub fn apply(
    state_dir: &Path,
    listen: SocketAddr,
    env: &BTreeMap<String, String>,
    variables: &mut BTreeMap<String, String>,
) -> Result<Outcome> {
    if let Some(reason) = skip_reason(listen, env, variables) {
        return Ok(Outcome::Skipped(reason));
    }
    let file = state_dir.join(FILE_NAME);
    let (credentials, created) = load_or_create(&file)?;
    let origin = format!("http://{listen}");
    for (name, value) in app_variables(&credentials, &origin)? {
        let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
        // Conveniences (the ingest side trusting this very server) yield to
        // anything the user set.
        if !variables.contains_key(&name) && !env.contains_key(&env_name) {
            variables.insert(name, value);
        }
    }
    Ok(Outcome::Active {
        credentials,
        file,
        created,
    })
}

fn skip_reason(
    listen: SocketAddr,
    env: &BTreeMap<String, String>,
    variables: &BTreeMap<String, String>,
) -> Option<String> {
    if !listen.ip().is_loopback() {
        return Some(format!(
            "{listen} is not a loopback address; configure credentials through variables"
        ));
    }
    CREDENTIAL_VARIABLES.iter().find_map(|name| {
        let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
        if variables.contains_key(*name) {
            Some(format!("--variable {name} is set"))
        } else if env.contains_key(&env_name) {
            Some(format!("{env_name} is set"))
        } else {
            None
        }
    })
}

fn load_or_create(file: &Path) -> Result<(Credentials, bool)> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok((
            parse(&text).with_context(|| {
                format!(
                    "{} is damaged; delete it to get new credentials",
                    file.display()
                )
            })?,
            false,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let credentials = Credentials {
                upload_key: assetgate_web::secret::random_hex(24),
                epi_password: assetgate_web::secret::random_hex(12),
                admin_token: assetgate_web::secret::random_hex(24),
                compute_token: compute_token(),
            };
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            write_new(file, &render(&credentials))?;
            Ok((credentials, true))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Readable only by its owner; never overwrites (two hosts starting at once
/// cannot end with different credentials than they print).
fn write_new(file: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))
}

/// The file is a shell script (`. .spin/dev-credentials.env`) of plain
/// `NAME=value` lines; values are hex or base64url, so no quoting is needed.
pub fn render(c: &Credentials) -> String {
    format!(
        "# assetgate local development credentials, made by the first `scripts/up`\n\
         # (loopback only; delete this file for new ones). In a shell: . .spin/{FILE_NAME}\n\
         UPLOAD_KEY={}\n\
         EPI_USER={EPI_USER}\n\
         EPI_PASSWORD={}\n\
         EPI_REPOSITORY={EPI_REPOSITORY}\n\
         ADMIN_TOKEN={}\n\
         COMPUTE_TOKEN={}\n\
         COMPUTE_API_KEY={COMPUTE_API_KEY}\n\
         COMPUTE_ORG={COMPUTE_ORG}\n",
        c.upload_key, c.epi_password, c.admin_token, c.compute_token
    )
}

pub fn parse(text: &str) -> Result<Credentials> {
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            bail!("line `{line}` is not NAME=value");
        };
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        {
            bail!("{name} has characters a credential never has");
        }
        values.insert(name.to_string(), value.to_string());
    }
    let mut take = |name: &str| {
        values
            .remove(name)
            .filter(|v| !v.is_empty())
            .with_context(|| format!("{name} is missing"))
    };
    Ok(Credentials {
        upload_key: take("UPLOAD_KEY")?,
        epi_password: take("EPI_PASSWORD")?,
        admin_token: take("ADMIN_TOKEN")?,
        compute_token: take("COMPUTE_TOKEN")?,
    })
}

/// What the app is given. The password and the compute token go in as
/// hashes only, as a deployment would configure them.
fn app_variables(c: &Credentials, origin: &str) -> Result<Vec<(String, String)>> {
    let users = serde_json::json!([{
        "user": EPI_USER,
        "password": assetgate_identity::users::hash_password(
            &c.epi_password,
            &assetgate_web::secret::random_hex(12),
            PBKDF2_ITERATIONS,
        ),
        "email": "dev@localhost",
        // `phraseanet` and `compute` let the preview proxy show assets that
        // came in through those protocols (docs/03-preview.md).
        "repositories": {
            EPI_REPOSITORY: ["uploader", "manager", "downloader"],
            "phraseanet": "downloader",
            "compute": "downloader",
        },
    }]);
    let clients = serde_json::json!([{
        "name": COMPUTE_CLIENT,
        "api_key": COMPUTE_API_KEY,
        "org": COMPUTE_ORG,
        "token_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(c.compute_token.as_bytes())),
    }]);
    Ok(vec![
        ("upload_api_key".into(), c.upload_key.clone()),
        ("epifiles_users".into(), serde_json::to_string(&users)?),
        ("epifiles_admin_token".into(), c.admin_token.clone()),
        ("compute_clients".into(), serde_json::to_string(&clients)?),
        // The ingest side may pull from this server's own upload side, so
        // the README's round trip works without a second service.
        ("ingest_allowed_base_urls".into(), origin.to_string()),
        ("ingest_outbound_host".into(), origin.to_string()),
        ("ingest_pull_url".into(), origin.to_string()),
        ("ingest_pull_key".into(), c.upload_key.clone()),
    ])
}

/// A token shaped like `scripts/compute-token`'s: Adobe's events client
/// reads `client_id` from its middle part; the random third part is the
/// secret.
fn compute_token() -> String {
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let issued = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{}.{}.{}",
        b64(serde_json::json!({"alg": "none", "typ": "JWT", "kid": "assetgate"})),
        b64(serde_json::json!({
            "client_id": COMPUTE_API_KEY, "org": COMPUTE_ORG, "sub": COMPUTE_CLIENT,
            "iat": issued, "jti": assetgate_web::secret::random_hex(8),
        })),
        assetgate_web::secret::random_hex(32)
    )
}

/// What the host prints after its banner: the credentials and commands to
/// try on the first run, where they are on later runs.
pub fn banner(outcome: &Outcome, origin: &str) -> String {
    match outcome {
        Outcome::Skipped(reason) => {
            format!("Development credentials: not generated ({reason}).\n")
        }
        Outcome::Active {
            file,
            created: false,
            ..
        } => format!(
            "Development credentials: {} (made on the first run; `cat` it to see them).\n",
            shown_path(file)
        ),
        Outcome::Active {
            credentials: c,
            file,
            created: true,
        } => format!(
            "\nDevelopment credentials, made for this machine (loopback only), kept in {file}:\n\
             \x20 upload service    Authorization: Bearer {upload}\n\
             \x20 EpiFiles, proxy   user {EPI_USER}, password {password} (repository {EPI_REPOSITORY}: uploader, manager, downloader)\n\
             \x20 EpiFiles outbox   Authorization: Bearer {admin}\n\
             \x20 Asset Compute     Authorization: Bearer {token}\n\
             \x20                   x-api-key: {COMPUTE_API_KEY}, x-gw-ims-org-id: {COMPUTE_ORG}\n\
             They are shown this once. Try, from another shell:\n\
             \x20 curl -H 'Authorization: Bearer {upload}' -F file=@README.md {origin}/assets\n\
             \x20 curl -u '{EPI_USER}:{password}' {origin}/epifiles/ws/manifest\n\
             \x20 curl -X POST -H 'Authorization: Bearer {token}' -H 'x-api-key: {COMPUTE_API_KEY}' -H 'x-gw-ims-org-id: {COMPUTE_ORG}' {origin}/register\n\
             or, for README's examples: . {file}\n\n",
            file = shown_path(file),
            upload = c.upload_key,
            password = c.epi_password,
            admin = c.admin_token,
            token = c.compute_token,
        ),
    }
}

/// Relative to the working directory when the file is below it (what a
/// reader can paste), else absolute.
fn shown_path(file: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| file.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| file.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn temp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "assetgate-dev-{}-{}",
            std::process::id(),
            assetgate_web::secret::random_hex(4)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn created_once_then_reused_and_private() {
        let dir = temp();
        let mut vars = BTreeMap::new();
        let first = apply(&dir, addr("127.0.0.1:3000"), &BTreeMap::new(), &mut vars).unwrap();
        let Outcome::Active {
            credentials: a,
            created: true,
            file,
        } = first
        else {
            panic!("{first:?}")
        };
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(vars["upload_api_key"], a.upload_key);
        assert_eq!(vars["ingest_allowed_base_urls"], "http://127.0.0.1:3000");
        assert!(!vars["epifiles_users"].contains(&a.epi_password));
        assert!(!vars["compute_clients"].contains(&a.compute_token));

        let mut again = BTreeMap::new();
        let second = apply(&dir, addr("[::1]:3000"), &BTreeMap::new(), &mut again).unwrap();
        let Outcome::Active {
            credentials: b,
            created: false,
            ..
        } = &second
        else {
            panic!("{second:?}")
        };
        assert_eq!(&a, b);
        assert!(banner(&second, "http://[::1]:3000").contains("made on the first run"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn never_when_configured_or_not_loopback() {
        let dir = temp();
        let mut vars = BTreeMap::from([("compute_clients".to_string(), "[]".to_string())]);
        let out = apply(&dir, addr("127.0.0.1:3000"), &BTreeMap::new(), &mut vars).unwrap();
        assert!(matches!(&out, Outcome::Skipped(r) if r.contains("compute_clients")));
        let env = BTreeMap::from([("SPIN_VARIABLE_UPLOAD_API_KEY".to_string(), "k".to_string())]);
        let out = apply(&dir, addr("127.0.0.1:3000"), &env, &mut BTreeMap::new()).unwrap();
        assert!(matches!(&out, Outcome::Skipped(r) if r.contains("SPIN_VARIABLE_UPLOAD_API_KEY")));
        for listen in ["0.0.0.0:3000", "192.0.2.7:80", "[::]:3000"] {
            let out = apply(&dir, addr(listen), &BTreeMap::new(), &mut BTreeMap::new()).unwrap();
            assert!(
                matches!(&out, Outcome::Skipped(r) if r.contains("loopback")),
                "{listen}"
            );
        }
        assert!(!dir.join(FILE_NAME).exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn user_settings_win_over_conveniences() {
        let dir = temp();
        let env = BTreeMap::from([(
            "SPIN_VARIABLE_INGEST_PULL_URL".to_string(),
            "https://up.example".to_string(),
        )]);
        let mut vars = BTreeMap::from([(
            "ingest_allowed_base_urls".to_string(),
            "https://up.example".to_string(),
        )]);
        apply(&dir, addr("127.0.0.1:3000"), &env, &mut vars).unwrap();
        assert_eq!(vars["ingest_allowed_base_urls"], "https://up.example");
        assert!(!vars.contains_key("ingest_pull_url"));
        assert!(vars.contains_key("upload_api_key"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn damaged_file_is_an_error_not_new_credentials() {
        let dir = temp();
        std::fs::write(dir.join(FILE_NAME), "UPLOAD_KEY=$(rm -rf /)\n").unwrap();
        let e = apply(
            &dir,
            addr("127.0.0.1:3000"),
            &BTreeMap::new(),
            &mut BTreeMap::new(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("damaged"), "{e:#}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn file_round_trips_and_hash_is_djangos() {
        let c = Credentials {
            upload_key: "a1".into(),
            epi_password: "b2".into(),
            admin_token: "c3".into(),
            compute_token: "x.y-_.z".into(),
        };
        assert_eq!(parse(&render(&c)).unwrap(), c);
        // Python's hashlib.pbkdf2_hmac("sha256", b"secret", b"salt", 20000),
        // which is what scripts/epifiles-client hash-password writes.
        assert_eq!(
            assetgate_identity::users::hash_password("secret", "salt", PBKDF2_ITERATIONS),
            "pbkdf2_sha256$20000$salt$aygayFoVMfOGYCalrIzpK/oQ3JlgPPFaP0gEuVCKQlI="
        );
    }
}
