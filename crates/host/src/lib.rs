//! The in-repo host as a library: what the `assetgate-host` binary runs,
//! and what outside callers (the fuzz targets) reach without going through
//! the binary. The binary (`main.rs`) only parses its command line and runs
//! the accept loop over these modules.
//!
//! For fuzzing the manifest reader, [`manifest::Manifest::parse`] reads a
//! `spin.toml` from a string without touching the filesystem (`root` is
//! only joined to relative `source` paths); it returns an error for any
//! input it refuses and never panics.

pub mod connection;
pub mod dev;
pub mod host_header;
pub mod manifest;
pub mod profile;
pub mod server;

mod bindings;
mod engine;
mod host_kv;
mod host_redis;
mod kv;
mod outbound;
mod resp;
mod routes;
mod runtime_config;
mod state;
mod variables;

#[cfg(test)]
mod tests {
    use crate::manifest::Manifest;
    use proptest::prelude::*;
    use std::path::Path;

    /// Real manifests, the starting points of the mutations below.
    const SEEDS: &[&str] = &[
        include_str!("../../../spin.toml"),
        include_str!("../../../tests/fixtures/probe.toml"),
    ];

    /// Bytes that matter to TOML, routes, templates and host patterns.
    const ALPHABET: &[u8] = b"\"'[]{}=.,:/*_-{}\\\n #ab0\xc3\xa9";

    fn parse(text: &str) {
        // Errors are expected; a panic fails the test.
        let _ = Manifest::parse(text, Path::new("/app"));
    }

    #[test]
    fn seeds_parse() {
        for seed in SEEDS {
            Manifest::parse(seed, Path::new("/app")).unwrap();
        }
    }

    proptest! {
        /// What a fuzz target does: any text in, an error out, no panic.
        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            parse(&text);
        }

        /// Small edits of real manifests reach past the TOML parser into
        /// the checks of routes, variables, templates and outbound hosts.
        #[test]
        fn edited_manifests_never_panic(
            seed in 0..SEEDS.len(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..3u8, any::<prop::sample::Index>()), 1..8),
        ) {
            let mut bytes = SEEDS[seed].as_bytes().to_vec();
            for (at, kind, pick) in edits {
                let i = at.index(bytes.len() + 1);
                let b = *pick.get(ALPHABET);
                match kind {
                    0 if i < bytes.len() => { bytes.remove(i); }
                    1 if i < bytes.len() => bytes[i] = b,
                    _ => bytes.insert(i, b),
                }
            }
            parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
