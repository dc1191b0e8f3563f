//! `spin.toml` as the host reads it (crates/host/src/manifest.rs), with the
//! variable templates, outbound host patterns and routes it checks.
//!
//! Input: the manifest text.
//! Invariants: an accepted manifest has at least one trigger, each naming
//! a declared component; every variable is either required or has a
//! default; key-value labels are plain names; parsing is deterministic.
#![no_main]

use assetgate_host::manifest::Manifest;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let root = Path::new("/app");
    let Ok(m) = Manifest::parse(text, root) else {
        return;
    };
    assert!(!m.triggers.is_empty());
    for t in &m.triggers {
        assert!(m.components.contains_key(&t.component), "{:?}", t.component);
    }
    for (name, v) in &m.variables {
        assert!(v.required != v.default.is_some(), "variable {name}");
    }
    for c in m.components.values() {
        for label in &c.key_value_stores {
            assert!(!label.is_empty());
            assert!(
                label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            );
        }
    }
    let again = Manifest::parse(text, root).expect("accepted once");
    assert_eq!(again.triggers, m.triggers);
    assert_eq!(again.variables, m.variables);
});
