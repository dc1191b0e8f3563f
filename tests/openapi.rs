//! The API description, `docs/openapi.json` (docs/api.md): served as
//! written at `GET /openapi.json`, a well-formed OpenAPI 3.1 document whose
//! every path is routed by the manifests and whose every schema compiles,
//! and a checker (`common::openapi`, which the protocol suites run on every
//! response they receive) that refuses what the document does not say.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Routes whose answers the document leaves to their protocol pages: the
/// EpiFiles web services speak XML, the proxy answers images
/// (docs/02-epifiles.md, docs/03-preview.md).
const UNDOCUMENTED_ROUTES: [&str; 3] = [
    "/epifiles/...",
    "/restproxyindex.php",
    "/Enterprise/server/plugins/Elvis/restproxyindex.php",
];

#[test]
fn served_as_written_with_status_beside_it() {
    let dir = temp_dir("openapi");
    let host = HostConfig::new("spin.toml", &dir).start();
    let written = std::fs::read(openapi::document_path()).unwrap();
    for url in ["/openapi.json", "/openapi.json?download=1"] {
        let r = openapi::send("GET", &host.url(url), &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(
            r.body == written,
            "GET {url} does not serve docs/openapi.json as written: rebuild the components \
             (scripts/build-components)"
        );
    }
    let r = openapi::send("HEAD", &host.url("/openapi.json"), &[], b"");
    assert_eq!((r.status, r.body.len()), (200, 0));
    for method in ["POST", "PUT", "DELETE"] {
        let r = openapi::send(method, &host.url("/openapi.json"), &[], b"{}");
        assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    }
    // `/status`, the same component, by the same document.
    assert_eq!(
        openapi::send("GET", &host.url("/status"), &[], b"").status,
        200
    );
    assert_eq!(
        openapi::send("HEAD", &host.url("/status"), &[], b"").status,
        200
    );
    assert_eq!(
        openapi::send("POST", &host.url("/status"), &[], b"x").status,
        405
    );
    host.stop();

    // Degraded: /status says so (503, named), the document is still served.
    let host = HostConfig::new("spin.toml", &dir)
        .env("SPIN_VARIABLE_BLOB_CHUNK_SIZE", "lots")
        .start();
    let r = openapi::send("GET", &host.url("/status"), &[], b"");
    assert_eq!(r.status, 503, "{}", r.text());
    let r = openapi::send("GET", &host.url("/openapi.json"), &[], b"");
    assert!(r.status == 200 && r.body == written);
    // Each answer above went through the checker.
    assert!(openapi::checked() >= 11, "{} checked", openapi::checked());
}

/// Every `$ref` in `v` (at `at`), with where it stands.
fn refs(v: &Value, at: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "$ref"
                    && let Some(r) = x.as_str()
                {
                    out.push((at.clone(), r.to_string()));
                }
                refs(x, format!("{at}/{}", openapi::escape(k)), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                refs(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Pointers of every schema the document holds outside `components/schemas`
/// (media types, parameters, headers), below `at`.
fn schema_locations(v: &Value, at: String, out: &mut Vec<String>) {
    if let Value::Object(o) = v {
        for (k, x) in o {
            let here = format!("{at}/{}", openapi::escape(k));
            if k == "schema" && x.is_object() {
                out.push(here);
            } else if k != "example" {
                schema_locations(x, here, out);
            }
        }
    }
}

/// Follows a Reference Object.
fn resolve<'d>(doc: &'d Value, mut v: &'d Value) -> &'d Value {
    while let Some(r) = v.get("$ref").and_then(Value::as_str) {
        v = doc.pointer(r.trim_start_matches('#')).expect("resolved");
    }
    v
}

#[test]
fn a_well_formed_openapi_3_1_document() {
    let doc = openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "assetgate");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    // Every reference resolves, inside the document.
    let mut all = Vec::new();
    refs(&doc, String::new(), &mut all);
    assert!(all.len() > 50, "{} references", all.len());
    for (at, r) in &all {
        let target = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("#{at}: `{r}` is not a local reference"));
        assert!(
            doc.pointer(target).is_some(),
            "#{at}: `{r}` resolves to nothing"
        );
    }

    // Operations: unique ids, known tags and security schemes, every path
    // parameter declared, every response described.
    let tags: HashSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut ids = HashSet::new();
    let mut operations = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        assert!(template.starts_with('/'), "{template}");
        let declared_in = |params: &Value| -> Vec<String> {
            params
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| resolve(&doc, p))
                        .filter(|p| p["in"] == "path")
                        .map(|p| {
                            assert_eq!(p["required"], true, "{template}: {p}");
                            p["name"].as_str().unwrap().to_string()
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let wanted: BTreeSet<String> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(String::from)
            .collect();
        let mut responses: Vec<(String, &Value)> = Vec::new();
        if let Some(other) = item.get("x-other-methods") {
            responses.push((format!("{template} x-other-methods"), other));
        }
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            operations += 1;
            let id = op["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            for tag in op["tags"].as_array().unwrap() {
                assert!(tags.contains(tag.as_str().unwrap()), "{id}: tag {tag}");
            }
            for requirement in op["security"].as_array().expect("security") {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{id}: scheme {name}");
                }
            }
            let mut declared: BTreeSet<String> =
                declared_in(&item["parameters"]).into_iter().collect();
            declared.extend(declared_in(&op["parameters"]));
            assert_eq!(declared, wanted, "{id}: path parameters of {template}");
            responses.push((id.to_string(), &op["responses"]));
        }
        for (what, listed) in responses {
            let listed = listed.as_object().unwrap();
            assert!(!listed.is_empty(), "{what}: no responses");
            for (status, r) in listed {
                assert!(
                    status.len() == 3
                        && status.starts_with(['1', '2', '3', '4', '5'])
                        && (status[1..].bytes().all(|b| b.is_ascii_digit())
                            || &status[1..] == "XX"),
                    "{what}: status {status}"
                );
                let r = resolve(&doc, r);
                assert!(r["description"].is_string(), "{what} {status}: description");
            }
        }
    }
    assert_eq!(operations, 21, "operations in docs/openapi.json");

    // Every schema is a valid JSON Schema 2020-12 schema (and compiles with
    // its references): the components, and those of media types,
    // parameters and headers.
    let mut locations: Vec<String> = doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| format!("/components/schemas/{}", openapi::escape(k)))
        .collect();
    for part in ["paths", "webhooks", "components"] {
        schema_locations(&doc[part], format!("/{part}"), &mut locations);
    }
    assert!(locations.len() > 100, "{} schemas", locations.len());
    let errors: Vec<String> = locations
        .iter()
        .filter_map(|l| openapi::compile(l).err())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// `(route, component)` of every `[[trigger.http]]` of a manifest.
fn routes(manifest: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join(manifest)).unwrap();
    let m: toml::Value = toml::from_str(&text).unwrap();
    m["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["route"].as_str().unwrap().to_string(),
                t["component"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Whether Spin sends requests for `path` (a template) to `route`.
fn routed(route: &str, path: &str) -> bool {
    match route.strip_suffix("/...") {
        Some(prefix) => path == prefix || path.starts_with(&format!("{prefix}/")),
        None => path == route,
    }
}

#[test]
fn every_path_is_routed_and_every_json_route_is_documented() {
    let doc = openapi::document();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for manifest in ["spin.toml", "spin.edge.toml"] {
        let routes = routes(manifest);
        for path in &paths {
            let by: Vec<&(String, String)> =
                routes.iter().filter(|(r, _)| routed(r, path)).collect();
            assert_eq!(by.len(), 1, "{manifest}: {path} is routed by {by:?}");
        }
        for (route, component) in &routes {
            let documented = paths.iter().any(|p| routed(route, p));
            if UNDOCUMENTED_ROUTES.contains(&route.as_str()) {
                assert!(
                    !documented,
                    "{route} is documented after all: update the list"
                );
            } else {
                assert!(
                    documented,
                    "{manifest}: route {route} ({component}) has no path in docs/openapi.json"
                );
            }
        }
    }
    // The status component answers the document.
    assert!(routes("spin.toml").contains(&("/openapi.json".to_string(), "status".to_string())));
}

/// Whether `f` panics (the checker's refusals).
fn refused(f: impl FnOnce() + std::panic::UnwindSafe) -> bool {
    std::panic::catch_unwind(f).is_err()
}

fn json_headers() -> Vec<(String, String)> {
    vec![("Content-Type".into(), "application/json".into())]
}

#[test]
fn the_checker_refuses_what_the_document_does_not_say() {
    let asset = json!({
        "id": "0b0e8a4e-58f4-4c5e-9a2f-2d4c0a4b6f11",
        "url": "http://127.0.0.1:3000/assets/0b0e8a4e-58f4-4c5e-9a2f-2d4c0a4b6f11/download",
        "size": 3, "formData": {"title": "x"}, "originalName": "a.png", "mimeType": "image/png",
        "createdAt": "2024-05-15T14:13:54+00:00",
        "hash": "a".repeat(64), "acknowledged": false,
    });
    let check = |method: &'static str, path: &'static str, status: u16, body: Value| {
        let bytes = body.to_string().into_bytes();
        move || openapi::check(method, path, status, &json_headers(), Some(&bytes))
    };
    // What conforms passes…
    check("GET", "/assets/x", 200, asset.clone())();
    check("POST", "http://h/assets?x=1", 201, asset.clone())();
    // …and every kind of drift is refused.
    let mut missing = asset.clone();
    missing.as_object_mut().unwrap().remove("hash");
    let mut extra = asset.clone();
    extra["sha256"] = json!("a");
    let mut mistyped = asset.clone();
    mistyped["size"] = json!("3");
    let mut date = asset.clone();
    date["createdAt"] = json!("yesterday");
    for (why, body) in [
        ("missing field", missing),
        ("undocumented field", extra),
        ("wrong type", mistyped),
        ("not a date-time", date),
    ] {
        assert!(refused(check("GET", "/assets/x", 200, body)), "{why}");
    }
    assert!(
        refused(check("GET", "/assets/x", 418, asset.clone())),
        "undocumented status"
    );
    assert!(
        refused(check("GET", "/nowhere", 200, asset.clone())),
        "undocumented path"
    );
    assert!(
        refused(check("PATCH", "/push/work", 200, json!({}))),
        "undocumented method"
    );
    // Error envelopes: the code fixed per status.
    let error = |code: &str| json!({"error": code, "message": "m"});
    let with_allow = |body: Value| {
        let bytes = body.to_string().into_bytes();
        let mut headers = json_headers();
        headers.push(("Allow".to_string(), "GET".to_string()));
        move || openapi::check("DELETE", "/assets/x", 405, &headers, Some(&bytes))
    };
    with_allow(error("method-not-allowed"))();
    assert!(refused(with_allow(error("forbidden"))));
    assert!(
        refused(check(
            "DELETE",
            "/assets/x",
            405,
            error("method-not-allowed")
        )),
        "a 405 without Allow"
    );
    assert!(refused(check(
        "GET",
        "/commits/x",
        404,
        json!({"error": "not-found"})
    )));
    // Headers: a journal's 204 without `Link` or `Retry-After`, a 429 with a body.
    let no_link = [("X-Request-Id".to_string(), "r1".to_string())];
    assert!(refused(move || openapi::check(
        "GET",
        "/journal/abc",
        204,
        &no_link,
        Some(b"")
    )));
    let busy = [
        ("X-Request-Id".to_string(), "r1".to_string()),
        ("Retry-After".to_string(), "2".to_string()),
    ];
    openapi::check("POST", "/process", 429, &busy, Some(b""));
    assert!(refused(move || openapi::check(
        "POST",
        "/process",
        429,
        &busy,
        Some(b"{}")
    )));
    // Events: a failure's reason is one of the reference's.
    let page = |reason: &str| {
        json!({"requestId": "r1", "_page": {"last": "1", "count": 1}, "events": [{"position": "1", "event": {
            "type": "rendition_failed", "date": "2024-05-15T14:13:54+00:00", "requestId": "r1",
            "source": "https://s.example/a.jpg", "rendition": {"fmt": "bmp"},
            "errorReason": reason, "errorMessage": "no"}}]})
    };
    let link = [
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-Request-Id".to_string(), "r1".to_string()),
        (
            "Link".to_string(),
            "<http://h/journal/abc?since=1>; rel=\"next\"".to_string(),
        ),
    ];
    let bytes = page("RenditionFormatUnsupported").to_string().into_bytes();
    openapi::check("GET", "/journal/abc", 200, &link, Some(&bytes));
    let bytes = page("Unsupported").to_string().into_bytes();
    assert!(refused(move || openapi::check(
        "GET",
        "/journal/abc",
        200,
        &link,
        Some(&bytes)
    )));
}
