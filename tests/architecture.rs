//! The crate graph's rules (README "Layout"), read from `cargo metadata`:
//! no protocol crate depends on another protocol crate, shared crates
//! depend on no protocol crate, and every crate says where it sits.

use std::collections::BTreeMap;
use std::process::Command;

/// One crate per wire protocol.
const PROTOCOLS: [&str; 4] = [
    "assetgate-phraseanet",
    "assetgate-epifiles",
    "assetgate-preview",
    "assetgate-compute",
];
/// What the protocols share.
const SHARED: [&str; 7] = [
    "assetgate-store",
    "assetgate-web",
    "assetgate-identity",
    "assetgate-imaging",
    "assetgate-catalog",
    "assetgate-component",
    "assetgate-host",
];

/// Workspace package name → the workspace packages it depends on (every
/// kind: normal, dev, build; every target).
fn graph() -> BTreeMap<String, Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: Vec<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["name"].as_str().unwrap())
                .filter(|d| names.contains(d))
                .map(String::from)
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

#[test]
fn no_protocol_crate_depends_on_another_and_shared_crates_on_none() {
    let graph = graph();
    for name in PROTOCOLS.iter().chain(&SHARED) {
        assert!(graph.contains_key(*name), "{name} is not in the workspace");
    }
    let mut broken = Vec::new();
    for (name, deps) in &graph {
        let is_protocol = PROTOCOLS.contains(&name.as_str());
        let is_shared = SHARED.contains(&name.as_str());
        for dep in deps {
            if (is_protocol || is_shared) && PROTOCOLS.contains(&dep.as_str()) {
                broken.push(format!("{name} → {dep}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "protocol crates are used only by components, tests and fuzz targets: {broken:?}"
    );
}

#[test]
fn every_crate_opens_with_a_doc_comment_naming_its_place() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let lib = dir.join("src/lib.rs");
        let main = dir.join("src/main.rs");
        let file = if lib.exists() { lib } else { main };
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: Vec<&str> = text.lines().take_while(|l| l.starts_with("//!")).collect();
        assert!(
            doc.len() >= 2,
            "{} does not open with a doc comment of a few lines",
            file.display()
        );
    }
}
