//! Spin variables: application variables with defaults from `spin.toml`,
//! overridden by `SPIN_VARIABLE_<NAME>` environment variables and then by
//! `--variable name=value`, exposed to each component through the templates
//! in its `[component.x.variables]` table.

use crate::manifest::Manifest;
use anyhow::{Context, Result, bail, ensure};
use std::collections::BTreeMap;

/// Spin's rule for variable names (`spin-expressions`' `Key`), checked in the
/// manifest and before every lookup: lowercase letters, digits and single
/// underscores, starting with a letter and not ending with `_`. The reason
/// reads as Spin's.
pub fn validate_name(name: &str) -> Result<(), String> {
    let reason = if name.is_empty() {
        "must not be empty".to_string()
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        )
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a lowercase ASCII letter".to_string()
    } else if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        "must end with a lowercase ASCII letter or digit".to_string()
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores".to_string()
    } else {
        return Ok(());
    };
    Err(format!("{name:?}: {reason}"))
}

/// Application variable names a template refers to (`{{ name }}`).
pub fn template_references(template: &str) -> Result<Vec<String>> {
    Ok(parse_template(template)?
        .into_iter()
        .filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Lit(_) => None,
        })
        .collect())
}

#[derive(Debug, PartialEq)]
enum Part {
    Lit(String),
    Var(String),
}

fn parse_template(template: &str) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Lit(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unterminated `{{{{` in template `{template}`");
        };
        let name = after[..end].trim();
        ensure!(
            !name.is_empty(),
            "empty `{{{{ }}}}` in template `{template}`"
        );
        parts.push(Part::Var(name.to_string()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    Ok(parts)
}

/// Resolved values of every component's variables, computed once at start-up.
#[derive(Debug, Clone, Default)]
pub struct ResolvedVariables {
    /// Application variable → value.
    app: BTreeMap<String, String>,
    /// component id → variable name → value
    by_component: BTreeMap<String, BTreeMap<String, String>>,
}

fn render(template: &str, app: &BTreeMap<String, String>) -> Result<String> {
    let mut value = String::new();
    for part in parse_template(template)? {
        match part {
            Part::Lit(l) => value.push_str(&l),
            Part::Var(v) => match app.get(&v) {
                Some(x) => value.push_str(x),
                None => bail!("`{v}` has no value"),
            },
        }
    }
    Ok(value)
}

impl ResolvedVariables {
    /// `env` is the process environment; `overrides` come from `--variable`.
    pub fn resolve(
        manifest: &Manifest,
        env: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self> {
        for name in overrides.keys() {
            ensure!(
                manifest.variables.contains_key(name),
                "--variable `{name}` is not declared in spin.toml [variables]"
            );
        }
        let mut app = BTreeMap::new();
        for (name, decl) in &manifest.variables {
            let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
            let value = overrides
                .get(name)
                .or_else(|| env.get(&env_name))
                .or(decl.default.as_ref());
            match value {
                Some(v) => {
                    app.insert(name.clone(), v.clone());
                }
                None if decl.required => bail!(
                    "variable `{name}` is required: set {env_name} or pass --variable {name}=…"
                ),
                None => {}
            }
        }
        let mut by_component = BTreeMap::new();
        for (id, comp) in &manifest.components {
            let mut vars = BTreeMap::new();
            for (name, template) in &comp.variables {
                let value = render(template, &app)
                    .with_context(|| format!("component `{id}` variable `{name}`"))?;
                vars.insert(name.clone(), value);
            }
            by_component.insert(id.clone(), vars);
        }
        Ok(ResolvedVariables { app, by_component })
    }

    /// Renders a template over application variables (Spin allows them in
    /// `allowed_outbound_hosts`).
    pub fn render(&self, template: &str) -> Result<String> {
        render(template, &self.app)
    }

    pub fn for_component(&self, id: &str) -> BTreeMap<String, String> {
        self.by_component.get(id).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
greeting = { default = "hello" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "c.wasm"
[component.c.variables]
message = "{{ greeting }}, {{token}}!"
plain = "literal"
"#;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn precedence_is_flag_then_env_then_default() {
        let m = Manifest::parse(MANIFEST, Path::new(".")).unwrap();
        let env = map(&[
            ("SPIN_VARIABLE_TOKEN", "from-env"),
            ("SPIN_VARIABLE_GREETING", "hi"),
        ]);
        let v = ResolvedVariables::resolve(&m, &env, &BTreeMap::new()).unwrap();
        assert_eq!(v.for_component("c")["message"], "hi, from-env!");
        assert_eq!(v.for_component("c")["plain"], "literal");
        let v = ResolvedVariables::resolve(&m, &env, &map(&[("token", "flag")])).unwrap();
        assert_eq!(v.for_component("c")["message"], "hi, flag!");
        let v =
            ResolvedVariables::resolve(&m, &map(&[("SPIN_VARIABLE_TOKEN", "t")]), &BTreeMap::new())
                .unwrap();
        assert_eq!(v.for_component("c")["message"], "hello, t!");
    }

    #[test]
    fn missing_required_and_unknown_override_fail() {
        let m = Manifest::parse(MANIFEST, Path::new(".")).unwrap();
        let e = ResolvedVariables::resolve(&m, &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("SPIN_VARIABLE_TOKEN"), "{e}");
        let e =
            ResolvedVariables::resolve(&m, &BTreeMap::new(), &map(&[("nope", "1")])).unwrap_err();
        assert!(e.to_string().contains("not declared"), "{e}");
    }

    #[test]
    fn renders_app_templates_for_allowed_hosts() {
        let m = Manifest::parse(MANIFEST, Path::new(".")).unwrap();
        let env = map(&[("SPIN_VARIABLE_TOKEN", "x")]);
        let v = ResolvedVariables::resolve(&m, &env, &BTreeMap::new()).unwrap();
        assert_eq!(
            v.render("https://{{ greeting }}.example.com").unwrap(),
            "https://hello.example.com"
        );
        assert!(v.render("{{ nope }}").is_err());
    }

    #[test]
    fn names_follow_spins_rule() {
        for ok in ["a", "api_key", "a1", "x_2_y"] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("4invalidname", "start"),
            ("_a", "start"),
            ("a_", "end"),
            ("a__b", "consecutive"),
            ("ApiKey", "invalid character 'A'"),
            ("a-b", "invalid character '-'"),
        ] {
            let e = validate_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn template_parsing() {
        assert_eq!(
            template_references("a{{ x }}b{{y}}").unwrap(),
            vec!["x", "y"]
        );
        assert!(parse_template("{{ x").is_err());
        assert!(parse_template("{{ }}").is_err());
    }
}
