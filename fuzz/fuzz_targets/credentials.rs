//! Credentials in request headers: HTTP Basic against the EpiFiles users
//! (crates/identity/src/users.rs, also the preview log-on), the Asset
//! Compute Bearer token with its API key and organisation
//! (crates/compute/src/clients.rs), the EpiFiles admin Bearer token
//! (api.rs) and the preview ticket as Bearer or cookie (preview/proxy.rs).
//!
//! Input: one mode byte, then NUL-separated fields. In the header fields
//! `{T}` stands for the right secret (the preview ticket is random), so the
//! fuzzer can reach the accepting paths.
//! Invariants: each check accepts exactly what an independent reading of
//! the header accepts, and refuses with 401 (403 for a known token with
//! the wrong key or organisation).
#![no_main]

use assetgate_compute::clients::{Clients, Credentials};
use assetgate_identity::token::lookup_key as token_hash;
use assetgate_identity::Directory;
use assetgate_epifiles::provenance::Manifests;
use assetgate_fuzz::Input;
use assetgate_preview::proxy::{Decision, ProxyRequest, decide};
use assetgate_identity::Tickets;
use assetgate_store::MemoryKv;
use assetgate_web::query::percent_decode;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

const USER: &str = "lab";
const PASSWORD: &str = "pa:ss wörd";
/// PBKDF2-SHA256 of PASSWORD, salt `fuzzsalt`, 1000 iterations (the fewest
/// the directory accepts: every accepted header pays for one).
const USERS: &str = r#"[{"user": "lab", "password": "pbkdf2_sha256$1000$fuzzsalt$genvaudSkV3N03RPA5dC/iCT0FjLkul5VC9ItncRWac="}]"#;
const TOKEN: &str = "s3cret";
const API_KEY: &str = "key1";
const ORG: &str = "ORG1@AdobeOrg";
const ADMIN: &str = "adm1n";
const NOW: u64 = 1_000_000;

struct World {
    users: Directory,
    clients: Clients,
    kv: MemoryKv,
    ticket: String,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let kv = MemoryKv::new();
    let ticket = Tickets::new(&kv).issue(USER, None, 3600, NOW).unwrap();
    World {
        users: Directory::parse(USERS).unwrap(),
        clients: Clients::from_json(&format!(
            r#"[{{"name":"aem","api_key":"{API_KEY}","org":"{ORG}","token_sha256":"{}"}}]"#,
            token_hash(TOKEN)
        ))
        .unwrap(),
        kv,
        ticket,
    }
});

fuzz_target!(|data: &[u8]| {
    let w = &*WORLD;
    let mut input = Input::new(data);
    match input.byte() % 5 {
        0 => basic(w, &input.text()),
        1 => {
            // A well-formed header around fuzzed names and passwords.
            let scheme = input.text();
            let (user, password) = (input.text(), input.text());
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                user,
                password.replace("{T}", PASSWORD)
            ));
            basic(w, &format!("{scheme} {b64}"));
        }
        2 => {
            let (auth, key, org) = (input.text(), input.text(), input.text());
            compute(w, &auth.replace("{T}", TOKEN), &key, &org);
        }
        3 => admin(&input.text().replace("{T}", ADMIN)),
        _ => {
            let auth = input.text().replace("{T}", &w.ticket);
            let cookie = input.text().replace("{T}", &w.ticket);
            preview(w, &auth, &cookie);
        }
    }
});

/// The credentials of `<scheme> <credentials>` when the scheme matches.
fn credentials<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = header.trim().split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

fn basic(w: &World, header: &str) {
    let expected = credentials(header, "basic")
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (n, p) = s.split_once(':')?;
            let plain = n == USER && p == PASSWORD;
            let decoded = percent_decode(n, false) == USER && percent_decode(p, false) == PASSWORD;
            Some(plain || decoded)
        })
        .unwrap_or(false);
    match w.users.authenticate(Some(header)) {
        Ok(u) => {
            assert!(expected, "{header:?} accepted");
            assert_eq!(u.name, USER);
        }
        Err(e) => {
            assert!(!expected, "{header:?} refused");
            assert_eq!(e.status(), 401);
        }
    }
}

fn compute(w: &World, auth: &str, key: &str, org: &str) {
    let c = Credentials {
        authorization: Some(auth),
        api_key: Some(key),
        org: Some(org),
    };
    // 401 unless the token and its client's API key are right; then 403
    // for another organisation (the reference's split).
    let token_ok = credentials(auth, "bearer") == Some(TOKEN);
    let key_ok = key.trim() == API_KEY;
    let org_ok = org.trim() == ORG;
    match w.clients.authenticate(c) {
        Ok(client) => {
            assert!(
                token_ok && key_ok && org_ok,
                "{auth:?} {key:?} {org:?} accepted"
            );
            assert_eq!(client.name, "aem");
        }
        Err(e) => {
            assert!(
                !(token_ok && key_ok && org_ok),
                "{auth:?} {key:?} {org:?} refused"
            );
            let status = if token_ok && key_ok { 403 } else { 401 };
            assert_eq!(e.status, status, "{auth:?} {key:?} {org:?}: {}", e.message);
        }
    }
}

fn admin(auth: &str) {
    static CFG: LazyLock<assetgate_epifiles::Config> = LazyLock::new(|| {
        assetgate_epifiles::Config::from_lookup(|name| match name {
            "epifiles_users" => Some(USERS.to_string()),
            "epifiles_admin_token" => Some(ADMIN.to_string()),
            _ => None,
        })
        .unwrap()
    });
    let kv = MemoryKv::new();
    let svc = assetgate_epifiles::Service {
        kv: &kv,
        cfg: &CFG,
        now: NOW,
        webhook: false,
    };
    let r = assetgate_epifiles::handle(
        &svc,
        assetgate_epifiles::Request {
            method: "GET",
            path: "/epifiles/admin/outbox",
            query: "",
            authorization: Some(auth),
            content_type: None,
            body: Vec::new(),
        },
    );
    let expected = credentials(auth, "bearer") == Some(ADMIN);
    assert_eq!(r.status, if expected { 200 } else { 401 }, "{auth:?}");
}

fn preview(w: &World, auth: &str, cookie: &str) {
    let params = [
        ("objectid".to_string(), "no-such-asset".to_string()),
        ("rendition".to_string(), "native".to_string()),
        ("ww-app".to_string(), "fuzz".to_string()),
    ];
    let req = ProxyRequest {
        params: &params,
        authorization: Some(auth),
        cookie: Some(cookie),
        if_none_match: None,
    };
    // Bearer first; else the first `ticket` cookie.
    let given = credentials(auth, "bearer").or_else(|| {
        cookie.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == "ticket").then_some(v.trim())
        })
    });
    match decide(&w.kv, &w.users, &Manifests, &req, NOW) {
        Decision::Refuse { status, code, .. } => {
            if given == Some(w.ticket.as_str()) {
                // Past the ticket: the asset does not exist.
                assert_eq!((status, code), (404, "not-found"), "{auth:?} {cookie:?}");
            } else {
                assert_eq!(status, 401, "{auth:?} {cookie:?}: {code}");
            }
        }
        other => panic!("{other:?} for an asset that does not exist"),
    }
}
