//! Reading `spin.toml` (manifest version 2).
//!
//! Only the features the in-repo host implements are accepted; anything else
//! Spin understands (files, SQLite databases, AI models, component
//! dependencies, other triggers…) is refused at start-up with a message that
//! names it, so an app never runs here with part of its manifest ignored.

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parts of a Spin manifest the host acts on, validated.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// Directory of `spin.toml`; relative `source` paths resolve against it.
    pub root: PathBuf,
    pub variables: BTreeMap<String, VariableDecl>,
    pub triggers: Vec<HttpTrigger>,
    pub components: BTreeMap<String, ComponentDecl>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariableDecl {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpTrigger {
    pub component: String,
    /// `None` for `route = { private = true }`: reachable only in-process.
    pub route: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ComponentDecl {
    pub source: PathBuf,
    pub allowed_outbound_hosts: Vec<String>,
    pub key_value_stores: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// Component variable name → template over application variables.
    pub variables: BTreeMap<String, String>,
}

// ---- raw serde shapes -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: i64,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: BTreeMap<String, toml::Value>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    trigger: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpTrigger {
    #[serde(default)]
    id: Option<String>,
    route: toml::Value,
    component: toml::Value,
    #[serde(default)]
    executor: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    build: Option<toml::Value>,
    // Spin features this host does not implement: accepted by serde only so
    // that the error can name them.
    #[serde(default)]
    files: Option<toml::Value>,
    #[serde(default)]
    exclude_files: Option<toml::Value>,
    #[serde(default)]
    sqlite_databases: Option<toml::Value>,
    #[serde(default)]
    ai_models: Option<toml::Value>,
    #[serde(default)]
    dependencies: Option<toml::Value>,
    #[serde(default)]
    dependencies_inherit_configuration: Option<toml::Value>,
    #[serde(default)]
    allowed_http_hosts: Option<toml::Value>,
    #[serde(default)]
    tool: Option<toml::Value>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        // Absolute, so that everything derived from it (component sources,
        // the `.spin` state and compile cache, which wasmtime requires to be
        // absolute) means the same whatever the working directory was.
        let path = std::path::absolute(path)
            .with_context(|| format!("cannot resolve manifest path {}", path.display()))?;
        let root = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        Self::parse(&text, &root).with_context(|| format!("invalid manifest {}", path.display()))
    }

    pub fn parse(text: &str, root: &Path) -> Result<Self> {
        let raw: RawManifest = toml::from_str(text)?;
        ensure!(
            raw.spin_manifest_version == 2,
            "spin_manifest_version {} is not supported (only 2)",
            raw.spin_manifest_version
        );
        let _ = (&raw.application.authors, &raw.application.description);
        if let Some(t) = &raw.application.trigger {
            check_app_trigger(t)?;
        }

        let mut variables = BTreeMap::new();
        for (name, v) in raw.variables {
            check_variable_name(&name)?;
            ensure!(
                !(v.required && v.default.is_some()),
                "variable `{name}` cannot be both required and have a default"
            );
            ensure!(
                v.required || v.default.is_some(),
                "variable `{name}` needs a default or `required = true`"
            );
            variables.insert(
                name,
                VariableDecl {
                    default: v.default,
                    required: v.required,
                    secret: v.secret,
                },
            );
        }

        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let comp = check_component(&id, c, root)?;
            for (name, template) in &comp.variables {
                check_variable_name(name)
                    .with_context(|| format!("component `{id}` variable `{name}`"))?;
                for reference in crate::variables::template_references(template)? {
                    ensure!(
                        variables.contains_key(&reference),
                        "component `{id}` variable `{name}` refers to undefined application variable `{reference}`"
                    );
                }
            }
            for host in &comp.allowed_outbound_hosts {
                for reference in crate::variables::template_references(host)? {
                    ensure!(
                        variables.contains_key(&reference),
                        "component `{id}` allowed_outbound_hosts entry `{host}` refers to undefined application variable `{reference}`"
                    );
                }
            }
            components.insert(id, comp);
        }

        let mut triggers = Vec::new();
        for (kind, value) in raw.trigger {
            ensure!(
                kind == "http",
                "trigger type `{kind}` is not supported by the in-repo host (only `http`)"
            );
            let list: Vec<RawHttpTrigger> = value
                .try_into()
                .context("`[[trigger.http]]` must be an array of tables")?;
            for t in list {
                triggers.push(check_trigger(t, &components)?);
            }
        }
        ensure!(
            !triggers.is_empty(),
            "the manifest declares no `[[trigger.http]]`"
        );

        Ok(Manifest {
            name: raw.application.name,
            version: raw.application.version.unwrap_or_else(|| "0.0.0".into()),
            root: root.to_path_buf(),
            variables,
            triggers,
            components,
        })
    }
}

fn check_app_trigger(t: &toml::Value) -> Result<()> {
    let table = t
        .as_table()
        .ok_or_else(|| anyhow!("`[application.trigger]` must be a table"))?;
    for (kind, settings) in table {
        ensure!(
            kind == "http",
            "application trigger `{kind}` is not supported"
        );
        if let Some(base) = settings.get("base").and_then(|b| b.as_str()) {
            ensure!(
                base == "/",
                "`application.trigger.http.base` other than \"/\" is not supported"
            );
        }
    }
    Ok(())
}

fn check_variable_name(name: &str) -> Result<()> {
    crate::variables::validate_name(name).map_err(|e| anyhow!("variable name {e}"))
}

fn check_component(id: &str, c: RawComponent, root: &Path) -> Result<ComponentDecl> {
    let unsupported = [
        ("files", c.files.is_some()),
        ("exclude_files", c.exclude_files.is_some()),
        ("sqlite_databases", c.sqlite_databases.is_some()),
        ("ai_models", c.ai_models.is_some()),
        ("dependencies", c.dependencies.is_some()),
        (
            "dependencies_inherit_configuration",
            c.dependencies_inherit_configuration.is_some(),
        ),
        ("allowed_http_hosts", c.allowed_http_hosts.is_some()),
    ];
    for (key, present) in unsupported {
        ensure!(
            !present,
            "component `{id}`: `{key}` is not supported by the in-repo host; run this app with `spin up`"
        );
    }
    let _ = (&c.description, &c.build, &c.tool);
    let source = match c.source {
        toml::Value::String(s) => root.join(s),
        _ => bail!("component `{id}`: only a local file path is supported as `source`"),
    };
    for label in &c.key_value_stores {
        ensure!(
            !label.is_empty()
                && label
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'),
            "component `{id}`: invalid key-value store label `{label}`"
        );
    }
    crate::outbound::validate(&c.allowed_outbound_hosts)
        .with_context(|| format!("component `{id}`: allowed_outbound_hosts"))?;
    Ok(ComponentDecl {
        source,
        allowed_outbound_hosts: c.allowed_outbound_hosts,
        key_value_stores: c.key_value_stores,
        environment: c.environment,
        variables: c.variables,
    })
}

fn check_trigger(
    t: RawHttpTrigger,
    components: &BTreeMap<String, ComponentDecl>,
) -> Result<HttpTrigger> {
    let _ = &t.id;
    if let Some(exec) = &t.executor {
        let kind = exec.get("type").and_then(|k| k.as_str()).unwrap_or("");
        ensure!(
            kind == "spin",
            "http trigger executor `{kind}` is not supported by the in-repo host (only `spin`)"
        );
    }
    let component = match t.component {
        toml::Value::String(s) => s,
        _ => bail!("inline trigger components are not supported; use `component = \"<id>\"`"),
    };
    ensure!(
        components.contains_key(&component),
        "trigger refers to undefined component `{component}`"
    );
    let route = match t.route {
        toml::Value::String(r) => {
            crate::routes::Route::parse(&r)?;
            Some(r)
        }
        toml::Value::Table(tab) if tab.get("private").and_then(|p| p.as_bool()) == Some(true) => {
            None
        }
        other => bail!("unsupported route `{other}`"),
    };
    Ok(HttpTrigger { component, route })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
version = "1.2.3"
[variables]
api_key = { default = "k" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/status"
component = "status"
[[trigger.http]]
route = { private = true }
component = "status"
[component.status]
source = "x.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["https://example.com", "http://self"]
[component.status.variables]
key = "prefix-{{ api_key }}"
[component.status.build]
command = "cargo build"
"#;

    #[test]
    fn parses_supported_manifest() {
        let m = Manifest::parse(BASE, Path::new("/app")).unwrap();
        assert_eq!(m.name, "app");
        assert_eq!(m.version, "1.2.3");
        assert_eq!(m.triggers.len(), 2);
        assert_eq!(m.triggers[1].route, None);
        let c = &m.components["status"];
        assert_eq!(c.source, PathBuf::from("/app/x.wasm"));
        assert_eq!(c.key_value_stores, vec!["default".to_string()]);
        assert!(m.variables["token"].required);
        assert!(m.variables["token"].secret);
    }

    fn err(text: &str) -> String {
        format!("{:#}", Manifest::parse(text, Path::new(".")).unwrap_err())
    }

    #[test]
    fn refuses_unsupported_features_loudly() {
        let cases = [
            (
                BASE.replace("key_value_stores", "files = [\"a\"]\nkey_value_stores"),
                "`files` is not supported",
            ),
            (
                BASE.replace(
                    "[[trigger.http]]\nroute = \"/status\"",
                    "[[trigger.redis]]\nchannel = \"x\"\n[[trigger.http]]\nroute = \"/status\"",
                ),
                "trigger type `redis` is not supported",
            ),
            (
                BASE.replace("spin_manifest_version = 2", "spin_manifest_version = 1"),
                "spin_manifest_version 1",
            ),
            (
                BASE.replace(
                    "source = \"x.wasm\"",
                    "source = { url = \"https://x\", digest = \"sha256:0\" }",
                ),
                "only a local file path",
            ),
            (
                BASE.replace("source = \"x.wasm\"", "source = \"x.wasm\"\nbogus = 1"),
                "unknown field `bogus`",
            ),
            (
                BASE.replace("{{ api_key }}", "{{ nope }}"),
                "undefined application variable `nope`",
            ),
            (
                BASE.replace("component = \"status\"\n[[", "component = \"other\"\n[["),
                "undefined component `other`",
            ),
            (
                BASE.replace("api_key = {", "ApiKey = {"),
                "variable name \"ApiKey\"",
            ),
            (
                BASE.replace("api_key = {", "api_key_ = {")
                    .replace("{{ api_key }}", "{{ api_key_ }}"),
                "must end with",
            ),
            (
                BASE.replace("api_key = {", "api__key = {")
                    .replace("{{ api_key }}", "{{ api__key }}"),
                "consecutive underscores",
            ),
            (
                BASE.replace("https://example.com", "ftp://example.com"),
                "scheme",
            ),
        ];
        for (text, expected) in cases {
            let e = err(&text);
            assert!(e.contains(expected), "expected `{expected}` in `{e}`");
        }
    }
}
