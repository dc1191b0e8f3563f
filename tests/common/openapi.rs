//! Real responses against `docs/openapi.json`, so the API description
//! cannot drift from the product (docs/api.md).
//!
//! [`check`] finds the operation by method and path template, takes the
//! response documented for the status (a status the document does not list
//! fails), resolves `$ref`s to response and header objects, checks the
//! required headers and each documented header's value against its schema,
//! then the body: none when none is documented, a documented media type,
//! and a JSON body validated against its schema with a JSON Schema 2020-12
//! validator (`boon`) that has the whole document loaded, so `$ref`s into
//! `#/components/schemas` resolve as in the document itself. Formats
//! (`date-time`, `uri`) are asserted.
//!
//! A path item's `x-other-methods` maps statuses to what a method the path
//! does not list gets (405). `HEAD` is checked as the path's `GET`, without
//! a body.

use super::{Reply, root};
use boon::{Compiler, Draft, SchemaIndex, Schemas};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Responses checked so far by this test binary.
static CHECKED: AtomicUsize = AtomicUsize::new(0);

pub fn checked() -> usize {
    CHECKED.load(Ordering::SeqCst)
}

/// `docs/openapi.json`, read now (a test that edits it sees the edit).
pub fn document_path() -> std::path::PathBuf {
    root().join("docs/openapi.json")
}

pub fn document() -> Value {
    let path = document_path();
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// `common::send`, then [`check_reply`].
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let r = super::send(method, url, headers, body);
    check_reply(method, url, &r);
    r
}

/// Checks a [`Reply`] to `method url` against the document.
pub fn check_reply(method: &str, url: &str, r: &Reply) {
    check(method, url, r.status, &r.headers, Some(&r.body));
}

/// Checks a response read off a raw socket (`common::raw_exchange`'s head
/// and body; `None` when the body was not read).
pub fn check_raw(method: &str, path: &str, status: u16, head: &str, body: Option<&[u8]>) {
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    check(method, path, status, &headers, body);
}

/// Checks one response. `url` is absolute or a path (the query is
/// ignored); `body` is `None` when it was not read.
pub fn check(
    method: &str,
    url: &str,
    status: u16,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) {
    with_spec(|spec| spec.check(method, url, status, headers, body));
    CHECKED.fetch_add(1, Ordering::SeqCst);
}

/// Validates `value` against the schema at `pointer` (a JSON pointer into
/// the document, e.g. `/components/schemas/Commit`).
pub fn check_value(pointer: &str, value: &Value) {
    with_spec(|spec| {
        if let Err(e) = spec.validate(pointer, value) {
            panic!("{value} does not match docs/openapi.json#{pointer}:\n{e}");
        }
    });
}

/// Compiles the schema at `pointer`: `Err` when it is not a valid JSON
/// Schema 2020-12 schema or a `$ref` in it does not resolve.
pub fn compile(pointer: &str) -> Result<(), String> {
    with_spec(|spec| spec.compile(pointer).map(|_| ()))
}

/// JSON pointer token escaping (RFC 6901).
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The path template of the document that `path` (no query) falls under:
/// segment by segment, empty segments ignored (as the components route),
/// `{name}` matching any one segment; the most literal template wins.
pub fn template_for(doc: &Value, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut best: Option<(usize, &String)> = None;
    for template in doc["paths"].as_object()?.keys() {
        let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let matches = parts.iter().zip(&segments).all(|(p, s)| {
            if p.starts_with('{') && p.ends_with('}') {
                true
            } else {
                literal += 1;
                p == s
            }
        });
        if matches && best.is_none_or(|(n, _)| literal > n) {
            best = Some((literal, template));
        }
    }
    best.map(|(_, t)| t.clone())
}

/// The path of an absolute URL or a path, without query or fragment.
fn path_of(url: &str) -> &str {
    let path = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => url,
    };
    path.split(['?', '#']).next().unwrap_or_default()
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

fn shorten(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(2000) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.into_owned(),
    }
}

/// The document, loaded into a validator once per thread.
struct Spec {
    doc: Value,
    /// Where the document was loaded from: the base of every location.
    location: String,
    compiler: Compiler,
    schemas: Schemas,
    compiled: HashMap<String, SchemaIndex>,
    /// `METHOD template status` already reported on this thread.
    reported: HashSet<String>,
}

thread_local! {
    static SPEC: RefCell<Option<Spec>> = const { RefCell::new(None) };
}

fn with_spec<T>(f: impl FnOnce(&mut Spec) -> T) -> T {
    SPEC.with(|cell| {
        let mut cell = cell.borrow_mut();
        f(cell.get_or_insert_with(Spec::load))
    })
}

impl Spec {
    fn load() -> Spec {
        let doc = document();
        let location = document_path().display().to_string();
        let mut compiler = Compiler::new();
        // OpenAPI 3.1's schemas are JSON Schema 2020-12.
        compiler.set_default_draft(Draft::V2020_12);
        compiler.enable_format_assertions();
        compiler
            .add_resource(&location, doc.clone())
            .unwrap_or_else(|e| panic!("docs/openapi.json cannot be loaded: {e:#}"));
        Spec {
            doc,
            location,
            compiler,
            schemas: Schemas::new(),
            compiled: HashMap::new(),
            reported: HashSet::new(),
        }
    }

    fn compile(&mut self, pointer: &str) -> Result<SchemaIndex, String> {
        if let Some(i) = self.compiled.get(pointer) {
            return Ok(*i);
        }
        // The pointer travels as a URI fragment: percent-encode what a
        // fragment cannot hold (`{id}`, spaces, …).
        let fragment: String = pointer
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let index = self
            .compiler
            .compile(&format!("{}#{fragment}", self.location), &mut self.schemas)
            .map_err(|e| format!("docs/openapi.json#{pointer} is not a valid schema: {e:#}"))?;
        self.compiled.insert(pointer.to_string(), index);
        Ok(index)
    }

    fn validate(&mut self, pointer: &str, value: &Value) -> Result<(), String> {
        let index = self.compile(pointer)?;
        self.schemas
            .validate(value, index)
            .map_err(|e| format!("{e:#}"))
    }

    /// Follows a Reference Object (`{"$ref": "#/…"}`) to what it names.
    fn resolve(&self, mut pointer: String) -> (String, Value) {
        loop {
            let v = self
                .doc
                .pointer(&pointer)
                .unwrap_or_else(|| panic!("docs/openapi.json has nothing at #{pointer}"))
                .clone();
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    pointer = r
                        .strip_prefix('#')
                        .unwrap_or_else(|| panic!("#{pointer}: only local $refs: {r}"))
                        .to_string()
                }
                None => return (pointer, v),
            }
        }
    }

    fn check(
        &mut self,
        method: &str,
        url: &str,
        status: u16,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) {
        let path = path_of(url);
        let Some(template) = template_for(&self.doc, path) else {
            panic!("{method} {path} → {status}: no path of docs/openapi.json matches {path}");
        };
        let what = format!("{method} {path} → {status} (docs/openapi.json {template})");
        let seen = format!("{method} {template} {status}");
        let item = format!("/paths/{}", escape(&template));
        let m = method.to_ascii_lowercase();
        let has = |op: &str| self.doc.pointer(&format!("{item}/{op}")).is_some();
        let responses = if has(&m) {
            format!("{item}/{m}/responses")
        } else if m == "head" && has("get") {
            format!("{item}/get/responses")
        } else if has("x-other-methods") {
            format!("{item}/x-other-methods")
        } else {
            panic!("{what}: the document has no {method} operation for {template}");
        };
        let listed = &self.doc.pointer(&responses).unwrap();
        let key = [status.to_string(), format!("{}XX", status / 100)]
            .into_iter()
            .find(|k| listed.get(k).is_some())
            .unwrap_or_else(|| {
                let documented: Vec<&String> = listed.as_object().unwrap().keys().collect();
                panic!(
                    "{what}: status {status} is not documented (documented: {documented:?}); body: {}",
                    shorten(body.unwrap_or_default())
                )
            });
        let (response, spec) = self.resolve(format!("{responses}/{}", escape(&key)));

        // Headers: the required ones present, every documented one valid.
        for name in spec["headers"]
            .as_object()
            .map(|h| h.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let (at, h) = self.resolve(format!("{response}/headers/{}", escape(&name)));
            match header(headers, &name) {
                None if h["required"] == true => {
                    panic!("{what}: no `{name}` header; the response has {headers:?}")
                }
                None => {}
                Some(v) => {
                    if h.get("schema").is_some()
                        && let Err(e) = self.validate(&format!("{at}/schema"), &Value::from(v))
                    {
                        panic!("{what}: header `{name}: {v}` does not match #{at}/schema:\n{e}");
                    }
                }
            }
        }

        // The body.
        let head = m == "head";
        let Some(content) = spec.get("content").and_then(Value::as_object) else {
            if let Some(b) = body.filter(|b| !b.is_empty() && !head) {
                panic!("{what}: documented without a body, got {}", shorten(b));
            }
            return self.done(seen);
        };
        let Some(body) = body.filter(|_| !head) else {
            return self.done(seen);
        };
        let ctype = header(headers, "content-type")
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_else(|| panic!("{what}: no Content-Type; documented: {:?}", content.keys()));
        let major = format!("{}/*", ctype.split('/').next().unwrap_or_default());
        let Some(media) = [ctype.as_str(), major.as_str(), "*/*"]
            .into_iter()
            .find(|k| content.contains_key(*k))
        else {
            panic!(
                "{what}: Content-Type {ctype} is not documented (documented: {:?})",
                content.keys()
            );
        };
        if is_json(media) {
            let value: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
                panic!("{what}: the body is not JSON ({e}): {}", shorten(body))
            });
            let schema = format!("{response}/content/{}/schema", escape(media));
            if let Err(e) = self.validate(&schema, &value) {
                panic!(
                    "{what}: the body does not match #{schema}:\n{e}\nbody: {}",
                    shorten(body)
                );
            }
        }
        self.done(seen)
    }

    /// Says once per thread which operation and status conformed (a
    /// load test checks thousands of answers).
    fn done(&mut self, key: String) {
        if self.reported.insert(key.clone()) {
            eprintln!("openapi: conforms: {key}");
        }
    }
}
