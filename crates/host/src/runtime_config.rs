//! Spin's runtime configuration file, given with `--runtime-config-file`
//! (Spin's flag), of which this host implements the key-value stores:
//!
//! - `[key_value_store.<label>]` with `type = "spin"`: a SQLite file at
//!   `path`, a relative path being relative to the directory of the runtime
//!   config file (as Spin: its `runtime_config_dir`, not the state dir); no
//!   `path` means an in-memory store, as in Spin. With `type = "redis"`:
//!   the Redis database at `url` (`redis://[user:password@]host[:port][/db]`).
//!   Any other type, or a missing or malformed field, stops the start-up
//!   with an error naming the label. Fields Spin does not read are ignored
//!   with a warning (Spin ignores them silently).
//! - Label `default` is a SQLite file in the state dir
//!   (`<state-dir>/sqlite_key_value.db`) unless the file redefines it.
//!
//! Other tables Spin knows are either ignored with a warning, when they
//! configure what this host does not provide (`sqlite_database`,
//! `llm_compute`) or only tune or record it (`log_dir`,
//! `max_instance_memory`, connection limits in `outbound_*`,
//! `client_tls`); or refused, when ignoring them would change where the
//! app's data lives, what it reads, or what it may reach: `state_dir`
//! (use `--state-dir`), `variables_provider` / `config_provider` (variables
//! come from `SPIN_VARIABLE_*` and `--variable` only), and
//! `outbound_networking.block_networks`. A key Spin does not know is
//! refused as Spin refuses it ("unused runtime config key(s)").

use crate::resp::Address;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a key-value store label keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvBackend {
    /// A SQLite file; `None` is an in-memory database.
    Sqlite(Option<PathBuf>),
    Redis(Address),
}

/// The file Spin keeps the `default` store in, in the state dir.
const DEFAULT_STORE_FILE: &str = "sqlite_key_value.db";

/// Tables this host reads no further, and why.
const IGNORED: &[(&str, &str)] = &[
    (
        "log_dir",
        "component output goes to the host's stdout and stderr",
    ),
    ("max_instance_memory", "use --max-instance-memory-mib"),
    (
        "sqlite_database",
        "this host does not provide fermyon:spin/sqlite",
    ),
    ("llm_compute", "this host does not provide fermyon:spin/llm"),
    (
        "client_tls",
        "outbound TLS is not configurable in this host",
    ),
    (
        "outbound_networking",
        "connection limits are not enforced by this host",
    ),
    (
        "outbound_http",
        "connection limits are not enforced by this host",
    ),
    (
        "outbound_redis",
        "connection limits are not enforced by this host",
    ),
    (
        "outbound_pg",
        "this host does not provide fermyon:spin/postgres",
    ),
    (
        "outbound_mysql",
        "this host does not provide fermyon:spin/mysql",
    ),
    (
        "outbound_mqtt",
        "this host does not provide fermyon:spin/mqtt",
    ),
];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    key_value_stores: BTreeMap<String, KvBackend>,
}

impl RuntimeConfig {
    pub fn load(path: &Path) -> Result<RuntimeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config file {}", path.display()))?;
        let path = std::path::absolute(path)?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        Self::parse(&text, dir).with_context(|| format!("runtime config file {}", path.display()))
    }

    /// `dir`: the directory relative store paths are resolved against.
    pub fn parse(text: &str, dir: &Path) -> Result<RuntimeConfig> {
        let table: toml::Table = toml::from_str(text).context("not valid TOML")?;
        let mut config = RuntimeConfig::default();
        let mut unknown = Vec::new();
        for (key, value) in &table {
            match key.as_str() {
                "key_value_store" => {
                    let Some(stores) = value.as_table() else {
                        bail!("`key_value_store` must be a table of store labels");
                    };
                    for (label, store) in stores {
                        let backend = parse_store(store, dir)
                            .with_context(|| format!("key-value store `{label}`"))?;
                        config.key_value_stores.insert(label.clone(), backend);
                    }
                }
                "state_dir" => bail!(
                    "`state_dir` is not supported by assetgate-host (it would move the \
                     `default` store): pass --state-dir instead"
                ),
                "variables_provider" | "config_provider" => bail!(
                    "`{key}` is not supported by assetgate-host: variables come from \
                     SPIN_VARIABLE_<NAME> and --variable only"
                ),
                "outbound_networking" if value.get("block_networks").is_some() => bail!(
                    "`outbound_networking.block_networks` is not supported by assetgate-host, \
                     which cannot block those networks"
                ),
                other => match IGNORED.iter().find(|(k, _)| *k == other) {
                    Some((_, why)) => {
                        tracing::warn!("runtime config: `{other}` is ignored: {why}");
                    }
                    None => unknown.push(other.to_string()),
                },
            }
        }
        if !unknown.is_empty() {
            bail!("unused runtime config key(s): {}", unknown.join(", "));
        }
        Ok(config)
    }
}

fn parse_store(store: &toml::Value, dir: &Path) -> Result<KvBackend> {
    let Some(fields) = store.as_table() else {
        bail!("must be a table with a `type`");
    };
    let string = |name: &str| -> Result<Option<&str>> {
        match fields.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .with_context(|| format!("`{name}` must be a string")),
        }
    };
    let Some(kind) = string("type")? else {
        bail!("`type` is missing (\"spin\" or \"redis\")");
    };
    let known: &[&str] = match kind {
        "spin" => &["type", "path"],
        "redis" => &["type", "url"],
        "azure_cosmos" | "aws_dynamo" => {
            bail!(
                "type \"{kind}\" is not supported by assetgate-host (only \"spin\" and \"redis\")"
            )
        }
        other => bail!("unknown type \"{other}\" (assetgate-host supports \"spin\" and \"redis\")"),
    };
    for field in fields.keys().filter(|f| !known.contains(&f.as_str())) {
        tracing::warn!("runtime config: key-value store field `{field}` is ignored");
    }
    Ok(match kind {
        "spin" => KvBackend::Sqlite(string("path")?.map(|p| dir.join(p))),
        _ => {
            let Some(url) = string("url")? else {
                bail!("type \"redis\" needs `url = \"redis://host:port\"`");
            };
            KvBackend::Redis(Address::parse(url)?)
        }
    })
}

/// The store labels the app has: the runtime config's, and `default` in
/// the state dir unless the runtime config defines it.
pub fn key_value_stores(
    config: Option<&RuntimeConfig>,
    state_dir: &Path,
) -> BTreeMap<String, KvBackend> {
    let mut stores = config
        .map(|c| c.key_value_stores.clone())
        .unwrap_or_default();
    stores
        .entry("default".into())
        .or_insert_with(|| KvBackend::Sqlite(Some(state_dir.join(DEFAULT_STORE_FILE))));
    stores
}

/// Refuses a component's store label that no one defined, as Spin does.
pub fn check_labels<'a>(
    component: &str,
    labels: impl IntoIterator<Item = &'a String>,
    stores: &BTreeMap<String, KvBackend>,
    config_file: Option<&Path>,
) -> Result<()> {
    for label in labels {
        if !stores.contains_key(label) {
            match config_file {
                None => bail!(
                    "component `{component}`: key-value store `{label}` is not defined; \
                     without a runtime config only `default` exists (as in Spin): define \
                     [key_value_store.{label}] in a file given with --runtime-config-file"
                ),
                Some(f) => bail!(
                    "component `{component}`: key-value store `{label}` is not defined: \
                     {} has no [key_value_store.{label}]",
                    f.display()
                ),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuntimeConfig> {
        RuntimeConfig::parse(text, Path::new("/etc/app"))
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn spin_and_redis_labels() {
        let c = parse(
            r#"
            [key_value_store.cache]
            type = "redis"
            url = "redis://:pw@cache.internal:6380/1"

            [key_value_store.local]
            type = "spin"
            path = "data/kv.db"

            [key_value_store.abs]
            type = "spin"
            path = "/var/kv.db"

            [key_value_store.scratch]
            type = "spin"
            "#,
        )
        .unwrap();
        let stores = key_value_stores(Some(&c), Path::new("/state"));
        let redis = Address::parse("redis://:pw@cache.internal:6380/1").unwrap();
        let expected = BTreeMap::from([
            (
                "abs".to_string(),
                KvBackend::Sqlite(Some("/var/kv.db".into())),
            ),
            ("cache".to_string(), KvBackend::Redis(redis)),
            (
                "default".to_string(),
                KvBackend::Sqlite(Some("/state/sqlite_key_value.db".into())),
            ),
            (
                "local".to_string(),
                KvBackend::Sqlite(Some("/etc/app/data/kv.db".into())),
            ),
            ("scratch".to_string(), KvBackend::Sqlite(None)),
        ]);
        assert_eq!(stores, expected);
    }

    #[test]
    fn default_can_be_redefined_and_exists_without_a_file() {
        let c = parse("[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://r\"").unwrap();
        let stores = key_value_stores(Some(&c), Path::new("/state"));
        assert_eq!(stores.len(), 1);
        assert!(matches!(stores["default"], KvBackend::Redis(_)));
        let stores = key_value_stores(None, Path::new("/state"));
        assert_eq!(
            stores,
            BTreeMap::from([(
                "default".to_string(),
                KvBackend::Sqlite(Some("/state/sqlite_key_value.db".into()))
            )])
        );
    }

    #[test]
    fn relative_paths_follow_the_files_directory() {
        let dir = std::env::temp_dir().join(format!("assetgate-rc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("runtime-config.toml");
        std::fs::write(
            &file,
            "[key_value_store.x]\ntype = \"spin\"\npath = \"x.db\"\n",
        )
        .unwrap();
        let c = RuntimeConfig::load(&file).unwrap();
        assert_eq!(
            c.key_value_stores["x"],
            KvBackend::Sqlite(Some(dir.join("x.db")))
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_stores_are_refused_naming_the_label() {
        let e = error("[key_value_store.cache]\ntype = \"memcached\"");
        assert!(
            e.contains("`cache`") && e.contains("unknown type \"memcached\""),
            "{e}"
        );
        let e = error("[key_value_store.cache]\ntype = \"redis\"");
        assert!(e.contains("`cache`") && e.contains("needs `url"), "{e}");
        let e = error("[key_value_store.cache]\ntype = \"redis\"\nurl = \"http://x\"");
        assert!(e.contains("`cache`") && e.contains("redis://"), "{e}");
        let e = error("[key_value_store.cache]\ntype = \"azure_cosmos\"");
        assert!(e.contains("`cache`") && e.contains("not supported"), "{e}");
        let e = error("[key_value_store.cache]\npath = \"x.db\"");
        assert!(
            e.contains("`cache`") && e.contains("`type` is missing"),
            "{e}"
        );
        let e = error("[key_value_store.cache]\ntype = \"spin\"\npath = 3");
        assert!(e.contains("`path` must be a string"), "{e}");
    }

    #[test]
    fn undefined_labels_are_refused() {
        let c = parse("[key_value_store.cache]\ntype = \"spin\"").unwrap();
        let stores = key_value_stores(Some(&c), Path::new("/state"));
        let labels = ["default".to_string(), "cache".to_string()];
        check_labels("web", &labels, &stores, Some(Path::new("rc.toml"))).unwrap();
        let labels = ["default".to_string(), "sessions".to_string()];
        let e = check_labels("web", &labels, &stores, Some(Path::new("rc.toml"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "component `web`: key-value store `sessions` is not defined: rc.toml has no \
             [key_value_store.sessions]"
        );
        let stores = key_value_stores(None, Path::new("/state"));
        let e = check_labels("web", &["cache".to_string()], &stores, None).unwrap_err();
        assert!(e.to_string().contains("only `default` exists"), "{e}");
    }

    #[test]
    fn other_tables_are_ignored_or_refused() {
        let c = parse(
            "log_dir = \"logs\"\n[sqlite_database.default]\ntype = \"spin\"\n\
             [outbound_networking]\nmax_total_connections = 5\n",
        )
        .unwrap();
        assert_eq!(c, RuntimeConfig::default());
        assert!(error("state_dir = \"/x\"").contains("--state-dir"));
        assert!(error("[variables_provider]\ntype = \"vault\"").contains("--variable"));
        assert!(error("[outbound_networking]\nblock_networks = [\"private\"]").contains("block"));
        assert_eq!(
            error("baz = 1\nqux = 2"),
            "unused runtime config key(s): baz, qux"
        );
        assert!(error("[key_value_store").contains("TOML"));
    }
}
