//! Where the in-repo host must behave as Spin does (Spin's
//! `trigger-http`, `expressions`, `outbound-networking-config` and loader),
//! checked on the real host binary with the probe fixture and hand-made
//! components. Each test fails on a host that differs from Spin there.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const PROBE: &str = "tests/fixtures/probe.toml";

fn probe_host(name: &str) -> Host {
    HostConfig::new(PROBE, &temp_dir(name))
        .env("SPIN_VARIABLE_SECRET_TOKEN", "s3cret")
        .start()
}

/// The probe manifest with absolute sources, for variants written elsewhere.
fn probe_manifest() -> String {
    std::fs::read_to_string(root().join(PROBE))
        .unwrap()
        .replace("../../target", &format!("{}/target", root().display()))
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A one-component app whose component is `source`.
fn single_component_manifest(source: &Path, allowed_hosts: &str) -> String {
    format!(
        "spin_manifest_version = 2\n\
         [application]\nname = \"one\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"one\"\n\
         [component.one]\nsource = \"{}\"\nallowed_outbound_hosts = [{allowed_hosts}]\n",
        source.display()
    )
}

#[test]
fn route_match_and_request_headers_are_spins() {
    let host = probe_host("conformance-headers");
    let r = send(
        "GET",
        &host.url("/m/seg-1/two/headers?all=1&q=1"),
        &[
            ("spin-path-match-path-segment", "forged"),
            ("connection", "keep-alive"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let h = r.json();
    // `:path_segment` → `spin-path-match-path-segment`: lowercase, `_` → `-`.
    assert_eq!(h["spin-path-match-path-segment"], "seg-1");
    assert_eq!(h["spin-path-match-other-name"], "two");
    assert!(
        h.as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("spin-") || !k.contains('_')),
        "{h}"
    );
    assert_eq!(h["spin-matched-route"], "/m/:path_segment/:Other_Name/...");
    assert_eq!(
        h["spin-raw-component-route"],
        "/m/:path_segment/:Other_Name/..."
    );
    assert_eq!(h["spin-component-route"], "/m/:path_segment/:Other_Name");
    assert_eq!(h["spin-path-info"], "/headers");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(
        h["spin-full-url"],
        host.url("/m/seg-1/two/headers?all=1&q=1")
    );
    let client = h["spin-client-addr"].as_str().unwrap();
    assert!(
        client
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .ip()
            .is_loopback(),
        "{client}"
    );
    // Transport information never reaches the guest.
    assert!(h.get("connection").is_none(), "{h}");
    // Spin's trailing-slash rule for the wildcard's remainder.
    let h = get(&host.url("/a/headers/x/")).json();
    assert_eq!(h["spin-path-info"], "/headers/x/");
    assert_eq!(h["spin-component-route"], "/a");
}

#[test]
fn variable_names_are_checked_before_the_lookup() {
    let host = probe_host("conformance-vars");
    for (name, reason) in [
        ("4invalidname", "must start with a lowercase ASCII letter"),
        ("a__b", "must not contain multiple consecutive underscores"),
        (
            "greeting_",
            "must end with a lowercase ASCII letter or digit",
        ),
        ("Greeting", "invalid character 'G'"),
    ] {
        let r = get(&host.url(&format!("/a/var/{name}")));
        assert_eq!(r.status, 404, "{name}");
        let text = r.text();
        assert!(
            text.contains("InvalidName") && text.contains(reason),
            "{name}: {text}"
        );
    }
    let r = get(&host.url("/a/var/undeclared"));
    assert!(r.text().contains("Undefined"), "{}", r.text());
    assert_eq!(get(&host.url("/a/var/greeting")).text(), "hello, world");
    drop(host);

    // The manifest follows the same rule.
    let dir = temp_dir("conformance-var-manifest");
    for (bad, reason) in [
        ("greeting_", "must end with"),
        ("gree__ting", "consecutive"),
    ] {
        let text = probe_manifest().replace("greeting", bad);
        let path = write(&dir, "vars.toml", text);
        let err = HostConfig::new(&path, &dir)
            .env("SPIN_VARIABLE_SECRET_TOKEN", "t")
            .start_failure();
        assert!(err.contains(reason), "{bad}: {err}");
    }
}

/// A component whose only content is an import of `name` (an empty
/// instance type): enough for the loader to see what it imports.
fn component_importing(name: &str) -> Vec<u8> {
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType,
    };
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    let mut imports = ComponentImportSection::new();
    imports.import(name, ComponentTypeRef::Instance(0));
    let mut component = Component::new();
    component.section(&types);
    component.section(&imports);
    component.finish()
}

#[test]
fn components_importing_sockets_are_refused_at_start_up() {
    let dir = temp_dir("conformance-sockets");
    for interface in [
        "wasi:sockets/tcp@0.2.0",
        "wasi:sockets/ip-name-lookup@0.2.3",
    ] {
        let source = write(&dir, "sockets.wasm", component_importing(interface));
        let manifest = write(
            &dir,
            "sockets.toml",
            single_component_manifest(&source, "\"*://*:*\""),
        );
        let err = HostConfig::new(&manifest, &dir).start_failure();
        assert!(
            err.contains(interface) && err.contains("does not implement"),
            "{err}"
        );
    }
}

#[test]
fn core_modules_are_refused_with_what_to_do() {
    let dir = temp_dir("conformance-core");
    // The smallest core module: magic and version 1.
    let source = write(&dir, "module.wasm", b"\0asm\x01\0\0\0");
    let manifest = write(&dir, "module.toml", single_component_manifest(&source, ""));
    let err = HostConfig::new(&manifest, &dir).start_failure();
    assert!(
        err.contains("is a core wasm module") && err.contains("wasm32-wasip2"),
        "{err}"
    );
}

#[test]
fn every_allowed_outbound_hosts_form_spin_accepts_loads_and_matches() {
    let (port, _hits) = {
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let port = http_server(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (200, "text/plain", b"ok".to_vec())
        });
        (port, hits)
    };
    let dir = temp_dir("conformance-outbound");
    let probe = root().join("target/wasm32-wasip2/release/assetgate_probe.wasm");
    let forms = format!(
        "\"*://127.0.0.0/24:{port}\", \"http://[::1]:1\", \"*://10.0.0.0/8:*\", \
         \"redis://cache.example.com\", \"mysql://db.example.com\", \
         \"postgres://pg.example.com:5433\", \"mqtt://broker.example.com\", \
         \"tcp://192.0.2.1:9000\", \"https://example.org/\", \"http://self\""
    );
    let manifest = write(
        &dir,
        "forms.toml",
        single_component_manifest(&probe, &forms),
    );
    let host = HostConfig::new(&manifest, &dir).start();
    // Inside the range, on the port: allowed; another port: refused.
    let r = get(&host.url(&format!("/fetch?url=http://127.0.0.1:{port}/x")));
    assert_eq!((r.status, r.text().as_str()), (200, "200 ok"));
    let other = free_port();
    let r = get(&host.url(&format!("/fetch?url=http://127.0.0.1:{other}/x")));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("HttpRequestDenied"), "{}", r.text());
    drop(host);

    // What Spin refuses, this host refuses, at start-up.
    for (bad, reason) in [
        ("\"ftp://files.example.com\"", "no well-known port"),
        ("\"*://self\"", "no well-known port"),
        ("\"insecure:allow-all\"", "*://*:*"),
        ("\"https://example.com/path\"", "path"),
        ("\"https://a.*.example.com\"", "wildcards"),
    ] {
        let manifest = write(&dir, "bad.toml", single_component_manifest(&probe, bad));
        let err = HostConfig::new(&manifest, &dir).start_failure();
        assert!(err.contains(reason), "{bad}: expected `{reason}` in\n{err}");
    }
}

#[test]
fn header_values_that_are_not_utf8_are_refused_as_spin_does() {
    let host = probe_host("conformance-bytes");
    // Spin turns every header value into a string before the guest runs;
    // one that is not UTF-8 ends the request with a bodiless 500.
    let (status, head) = raw_request(
        &host,
        b"GET /a/headers HTTP/1.1\r\nHost: x\r\nX-Raw: caf\xe9\r\nConnection: close\r\n\r\n",
        b"",
    );
    assert_eq!(status, 500, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 0"),
        "{head}"
    );
    assert!(host.wait_for_log("a header value is not UTF-8"));
    // UTF-8 beyond ASCII is a string like any other.
    let (status, _) = raw_request(
        &host,
        "GET /a/headers HTTP/1.1\r\nHost: x\r\nX-Name: café\r\nConnection: close\r\n\r\n"
            .as_bytes(),
        b"",
    );
    assert_eq!(status, 200);
}

#[test]
fn hostile_basic_credentials_get_401_from_epifiles() {
    use base64::Engine;
    let dir = temp_dir("conformance-basic");
    let users = serde_json::json!([{
        "user": "lab", "password": password_hash("pw", 1000),
        "repositories": {"1": "uploader"},
    }]);
    let host = HostConfig::new("spin.toml", &dir)
        .var("epifiles_users", &users.to_string())
        .start();
    let url = host.url("/epifiles/ws/manifest");
    let basic = |raw: &[u8]| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };
    for raw in [
        &b"\xff\xfe:pw"[..],
        b"lab:%\xc3\xa9",
        b"lab:%a\xc3\xa9",
        "lab:a%é%".as_bytes(),
        b"lab:%",
        b"lab",
    ] {
        let r = send("GET", &url, &[("authorization", &basic(raw))], b"");
        assert_eq!(r.status, 401, "{raw:?}: {}", r.text());
        assert!(r.text().contains("<status>failed</status>"), "{}", r.text());
    }
    let r = send("GET", &url, &[("authorization", &basic(b"lab:pw"))], b"");
    assert_eq!(r.status, 200, "{}", r.text());
}
