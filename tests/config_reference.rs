//! docs/configuration.md is the configuration reference: one table row per
//! Spin variable. This test holds it to the manifests, so that neither can
//! drift from the other: every variable of `spin.toml`'s `[variables]` is
//! documented with its default exactly as written there (or `required`) and
//! its `secret` flag, nothing documented is missing from `spin.toml`,
//! `spin.edge.toml` declares the same variables, and where the edge default
//! differs the table's "edge default" column gives it (and is blank
//! elsewhere). Only text files are read: no component, no server.
//!
//! The table the test reads (any number of them, each under this header):
//!
//! ```text
//! | variable | default | edge default | secret | meaning |
//! |---|---|---|---|---|
//! | `name` | `value` (comment) | `edge value` (comment) | yes | … |
//! ```
//!
//! A default cell starts with the value as a code span, or with `empty`
//! (the empty string) or `required` (no default); what follows is comment.
//! A blank edge-default cell means "as in `spin.toml`". The secret cell is
//! `yes` or blank.

use std::collections::BTreeMap;
use std::path::PathBuf;

const DOC: &str = "docs/configuration.md";
const HEADER: [&str; 5] = ["variable", "default", "edge default", "secret", "meaning"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// A variable's default: a value (possibly empty), or none (`required`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Default {
    Value(String),
    Required,
}

impl std::fmt::Display for Default {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Default::Value(v) if v.is_empty() => f.write_str("empty"),
            Default::Value(v) => write!(f, "`{v}`"),
            Default::Required => f.write_str("required"),
        }
    }
}

/// A variable as a manifest declares it.
#[derive(Debug)]
struct Declared {
    default: Default,
    secret: bool,
}

/// A variable as the reference documents it.
#[derive(Debug)]
struct Documented {
    line: usize,
    default: Default,
    /// `None`: the cell is blank, the edge build keeps the default.
    edge: Option<Default>,
    secret: bool,
}

/// The `[variables]` of a manifest; malformed declarations are problems.
fn declared(name: &str, manifest: &str, problems: &mut Vec<String>) -> BTreeMap<String, Declared> {
    let table: toml::Table = manifest
        .parse()
        .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
    let Some(variables) = table.get("variables").and_then(|v| v.as_table()) else {
        problems.push(format!("{name} has no [variables] table"));
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (var, decl) in variables {
        let Some(decl) = decl.as_table() else {
            problems.push(format!("{name}: `{var}` is not a table"));
            continue;
        };
        let required = decl.get("required").and_then(|v| v.as_bool()) == Some(true);
        let default = match (decl.get("default"), required) {
            (Some(toml::Value::String(s)), false) => Default::Value(s.clone()),
            (None, true) => Default::Required,
            _ => {
                problems.push(format!(
                    "{name}: `{var}` needs either a string `default` or `required = true`"
                ));
                continue;
            }
        };
        let secret = decl.get("secret").and_then(|v| v.as_bool()) == Some(true);
        out.insert(var.clone(), Declared { default, secret });
    }
    out
}

/// A table row's cells, split on the pipes that are not escaped (`\|`).
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim();
    let inner = inner.strip_prefix('|').unwrap_or(inner);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.iter().map(|c| c.trim().to_string()).collect()
}

/// Spin's rule for variable names: lowercase letters, digits and single
/// underscores, a letter first, no `_` last.
fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('_')
        && !name.contains("__")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A default cell: a code span, `empty` or `required`, then any comment.
fn parse_default(cell: &str) -> Result<Default, String> {
    let starts_with_word = |word: &str| {
        cell == word
            || cell
                .strip_prefix(word)
                .is_some_and(|rest| rest.starts_with([' ', '(', ';', ',']))
    };
    if let Some(rest) = cell.strip_prefix('`') {
        if rest.starts_with('`') {
            return Err("a double-backtick code span; write `empty` for the empty string".into());
        }
        let end = rest.find('`').ok_or("an unclosed code span")?;
        Ok(Default::Value(rest[..end].to_string()))
    } else if starts_with_word("empty") {
        Ok(Default::Value(String::new()))
    } else if starts_with_word("required") {
        Ok(Default::Required)
    } else {
        Err("it should start with the value as a code span, `empty` or `required`".into())
    }
}

/// Every row of every reference table of `doc`; unreadable rows are problems.
fn documented(doc: &str, problems: &mut Vec<String>) -> BTreeMap<String, Documented> {
    let mut out: BTreeMap<String, Documented> = BTreeMap::new();
    let mut tables = 0;
    let mut lines = doc.lines().enumerate().peekable();
    while let Some((_, line)) = lines.next() {
        if !line.trim_start().starts_with('|') || cells(line) != HEADER {
            continue;
        }
        tables += 1;
        match lines.next() {
            Some((_, sep))
                if cells(sep)
                    .iter()
                    .all(|c| c.chars().all(|c| "-: ".contains(c))) => {}
            _ => problems.push(format!(
                "{DOC}: a reference table without its separator row"
            )),
        }
        while let Some((i, row)) = lines.next_if(|(_, l)| l.trim_start().starts_with('|')) {
            let line = i + 1;
            let at = format!("{DOC}:{line}");
            let row = cells(row);
            let [var, default, edge, secret, _meaning] = row.as_slice() else {
                problems.push(format!("{at}: {} cells, not {}", row.len(), HEADER.len()));
                continue;
            };
            let Some(name) = var
                .strip_prefix('`')
                .and_then(|v| v.strip_suffix('`'))
                .filter(|v| is_variable_name(v))
            else {
                problems.push(format!(
                    "{at}: the first cell, {var:?}, is not one `variable_name`"
                ));
                continue;
            };
            let default = match parse_default(default) {
                Ok(d) => d,
                Err(why) => {
                    problems.push(format!("{at}: `{name}`'s default {default:?}: {why}"));
                    continue;
                }
            };
            let edge = if edge.is_empty() {
                None
            } else {
                match parse_default(edge) {
                    Ok(d) => Some(d),
                    Err(why) => {
                        problems.push(format!("{at}: `{name}`'s edge default {edge:?}: {why}"));
                        continue;
                    }
                }
            };
            let secret = match secret.as_str() {
                "yes" => true,
                "" => false,
                other => {
                    problems.push(format!(
                        "{at}: `{name}`'s secret cell is {other:?}, not `yes` or blank"
                    ));
                    continue;
                }
            };
            if let Some(first) = out.get(name) {
                problems.push(format!(
                    "{at}: `{name}` is documented twice (first on line {})",
                    first.line
                ));
                continue;
            }
            out.insert(
                name.to_string(),
                Documented {
                    line,
                    default,
                    edge,
                    secret,
                },
            );
        }
    }
    if tables == 0 {
        problems.push(format!(
            "{DOC} has no table headed `| {} |`",
            HEADER.join(" | ")
        ));
    }
    out
}

/// Everything that differs between the manifests and the reference.
fn check(spin: &str, edge: &str, doc: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let spin = declared("spin.toml", spin, &mut problems);
    let edge = declared("spin.edge.toml", edge, &mut problems);
    let doc = documented(doc, &mut problems);

    for (name, declared) in &spin {
        let Some(documented) = doc.get(name) else {
            problems.push(format!(
                "`{name}` (spin.toml, default {}) is not documented in {DOC}",
                declared.default
            ));
            continue;
        };
        let at = format!("{DOC}:{}", documented.line);
        if documented.default != declared.default {
            problems.push(format!(
                "{at}: `{name}` documented with default {}, spin.toml gives {}",
                documented.default, declared.default
            ));
        }
        if documented.secret != declared.secret {
            problems.push(format!(
                "{at}: `{name}` documented as {}secret, spin.toml declares it {}secret",
                if documented.secret { "" } else { "not " },
                if declared.secret { "" } else { "not " },
            ));
        }
        let Some(on_edge) = edge.get(name) else {
            continue;
        };
        if on_edge.secret != declared.secret {
            problems.push(format!(
                "`{name}` is secret in one manifest only (spin.toml: {}, spin.edge.toml: {})",
                declared.secret, on_edge.secret
            ));
        }
        match (&documented.edge, on_edge.default != declared.default) {
            (None, true) => problems.push(format!(
                "{at}: `{name}`'s edge default {} (spin.edge.toml) is not documented",
                on_edge.default
            )),
            (Some(doc_edge), true) if *doc_edge != on_edge.default => problems.push(format!(
                "{at}: `{name}` documented with edge default {doc_edge}, spin.edge.toml gives {}",
                on_edge.default
            )),
            (Some(doc_edge), false) => problems.push(format!(
                "{at}: `{name}` documented with edge default {doc_edge}, but spin.edge.toml \
                 keeps spin.toml's {} (leave the cell blank)",
                declared.default
            )),
            _ => {}
        }
    }
    for (name, documented) in &doc {
        if !spin.contains_key(name) {
            problems.push(format!(
                "{DOC}:{}: `{name}` is documented but spin.toml does not declare it",
                documented.line
            ));
        }
    }
    for name in spin.keys().filter(|n| !edge.contains_key(*n)) {
        problems.push(format!(
            "`{name}` is declared in spin.toml, not in spin.edge.toml"
        ));
    }
    for name in edge.keys().filter(|n| !spin.contains_key(*n)) {
        problems.push(format!(
            "`{name}` is declared in spin.edge.toml, not in spin.toml"
        ));
    }
    problems
}

#[test]
fn configuration_reference_matches_both_manifests() {
    let (spin, edge, doc) = (read("spin.toml"), read("spin.edge.toml"), read(DOC));
    let variables = declared("spin.toml", &spin, &mut Vec::new()).len();
    assert!(variables > 0, "spin.toml declares no variables");
    let problems = check(&spin, &edge, &doc);
    assert!(
        problems.is_empty(),
        "{DOC} and the manifests disagree ({} problems):\n{}",
        problems.len(),
        problems.join("\n")
    );
    let documented = documented(&doc, &mut Vec::new()).len();
    assert_eq!(documented, variables);
}

/// The check itself: each kind of drift is reported, naming the variable.
#[test]
fn drift_is_reported() {
    let (spin, edge, doc) = (read("spin.toml"), read("spin.edge.toml"), read(DOC));
    let row = |name: &str| {
        doc.lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("{DOC} has no row for `{name}`"))
            .to_string()
    };
    let fails_naming = |spin: &str, edge: &str, doc: &str, name: &str, what: &str| {
        let problems = check(spin, edge, doc);
        assert!(
            problems.iter().any(|p| p.contains(&format!("`{name}`"))),
            "{what}: no problem names `{name}`: {problems:?}"
        );
    };

    // A row removed.
    let removed = doc.replace(&format!("{}\n", row("blob_max_size")), "");
    fails_naming(&spin, &edge, &removed, "blob_max_size", "row removed");

    // A default changed in the reference, then in the manifest.
    let changed = doc.replace(
        &row("upload_max_size"),
        &row("upload_max_size").replacen("`2147483648`", "`2147483647`", 1),
    );
    assert_ne!(changed, doc);
    fails_naming(
        &spin,
        &edge,
        &changed,
        "upload_max_size",
        "default changed in the doc",
    );
    let changed = spin.replace(
        "upload_retention_days = { default = \"7\" }",
        "upload_retention_days = { default = \"8\" }",
    );
    assert_ne!(changed, spin);
    fails_naming(
        &changed,
        &edge,
        &doc,
        "upload_retention_days",
        "default changed in spin.toml",
    );

    // An edge default dropped from the reference; one added to spin.edge.toml.
    let r = row("compute_lease_secs");
    let dropped = doc.replace(&r, &r.replacen("| `35` |", "| |", 1));
    assert_ne!(dropped, doc);
    fails_naming(
        &spin,
        &edge,
        &dropped,
        "compute_lease_secs",
        "edge default dropped",
    );
    let changed = edge.replace(
        "blob_chunk_size = { default = \"1048576\" }",
        "blob_chunk_size = { default = \"524288\" }",
    );
    assert_ne!(changed, edge);
    fails_naming(
        &spin,
        &changed,
        &doc,
        "blob_chunk_size",
        "edge default added",
    );

    // A variable documented that no manifest declares; one declared nowhere else.
    let extra = doc.replace(
        &row("blob_max_size"),
        &format!(
            "{}\n| `blob_min_size` | `0` | | | made up |",
            row("blob_max_size")
        ),
    );
    fails_naming(
        &spin,
        &edge,
        &extra,
        "blob_min_size",
        "undeclared variable documented",
    );
    let only_edge = edge.replace(
        "[variables]\n",
        "[variables]\nedge_only = { default = \"1\" }\n",
    );
    assert_ne!(only_edge, edge);
    fails_naming(
        &spin,
        &only_edge,
        &doc,
        "edge_only",
        "variable in spin.edge.toml only",
    );

    // The secret flag.
    let r = row("upload_api_key");
    let unflagged = doc.replace(&r, &r.replacen("| yes |", "| |", 1));
    assert_ne!(unflagged, doc);
    fails_naming(
        &spin,
        &edge,
        &unflagged,
        "upload_api_key",
        "secret flag dropped",
    );
}
