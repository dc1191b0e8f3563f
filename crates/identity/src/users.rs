//! Users, their repositories ("compartiments") and roles, from the
//! `epifiles_users` Spin variable (JSON):
//!
//! ```json
//! [{"user": "lab", "password": "pbkdf2_sha256$20000$salt$base64hash",
//!   "email": "lab@example.org", "repositories": {"23": "uploader", "24": ["manager", "downloader"]}}]
//! ```
//!
//! Passwords are stored as salted PBKDF2-HMAC-SHA256 in Django's format
//! (`scripts/epifiles-client hash-password` makes one). EpiFiles calls
//! all carry HTTP Basic credentials: [`Directory::authenticate_remembered`]
//! pays the iteration count once a minute per credential, not per call.

use crate::token::constant_time_eq;
use assetgate_store::{Kv, Records};
use assetgate_web::decode::percent_decode;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;

const MIN_ITERATIONS: u32 = 1_000;
/// How long a verified HTTP Basic credential is accepted without PBKDF2
/// ([`Directory::authenticate_remembered`]).
pub const REMEMBER_SECS: u64 = 60;
const REMEMBERED_KIND: &str = "verified-credential";
const MAX_ITERATIONS: u32 = 2_000_000;

/// A refused HTTP Basic check: 401, whatever was wrong (nothing tells a
/// caller whether the name exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

impl Unauthorized {
    pub const MESSAGE: &'static str = "missing or wrong credentials (HTTP Basic)";

    pub fn status(self) -> u16 {
        401
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    pub uploader: bool,
    pub manager: bool,
    pub downloader: bool,
}

impl Roles {
    /// Managers and downloaders see every manifest of the repository.
    pub fn reads_all(self) -> bool {
        self.manager || self.downloader
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub email: Option<String>,
    pub repositories: BTreeMap<String, Roles>,
    password: PasswordHash,
}

impl User {
    pub fn roles(&self, repository: &str) -> Roles {
        self.repositories
            .get(repository)
            .copied()
            .unwrap_or_default()
    }

    pub fn upload_repositories(&self) -> Vec<&str> {
        self.repositories
            .iter()
            .filter(|(_, r)| r.uploader)
            .map(|(k, _)| k.as_str())
            .collect()
    }
}

#[derive(Debug, Clone)]
struct PasswordHash {
    iterations: u32,
    salt: String,
    hash: Vec<u8>,
}

impl PasswordHash {
    fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('$').collect();
        let [algo, iterations, salt, hash] = parts[..] else {
            return Err("expected pbkdf2_sha256$<iterations>$<salt>$<base64 hash>".into());
        };
        if algo != "pbkdf2_sha256" {
            return Err(format!(
                "unknown hash algorithm `{algo}` (use pbkdf2_sha256)"
            ));
        }
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|n| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(n))
            .ok_or(format!(
                "iterations must be {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            ))?;
        if salt.is_empty() {
            return Err("empty salt".into());
        }
        let hash = base64::engine::general_purpose::STANDARD
            .decode(hash)
            .map_err(|_| "hash is not base64".to_string())?;
        if hash.len() < 16 {
            return Err("hash shorter than 16 bytes".into());
        }
        Ok(PasswordHash {
            iterations,
            salt: salt.to_string(),
            hash,
        })
    }

    /// The store id of a verified credential: HMAC-SHA256 of the name and
    /// password, keyed by this stored hash.
    fn remembered_id(&self, name: &str, password: &str) -> String {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.hash)
            .expect("HMAC takes any key length");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn verify(&self, password: &str) -> bool {
        let mut out = vec![0u8; self.hash.len()];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
            password.as_bytes(),
            self.salt.as_bytes(),
            self.iterations,
            &mut out,
        );
        constant_time_eq(&out, &self.hash)
    }
}

/// A password as `epifiles_users` stores it: Django's
/// `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`.
pub fn hash_password(password: &str, salt: &str, iterations: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut out);
    format!(
        "pbkdf2_sha256${iterations}${salt}${}",
        base64::engine::general_purpose::STANDARD.encode(out)
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    user: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    repositories: BTreeMap<String, RoleList>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RoleList {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Default)]
pub struct Directory {
    users: Vec<User>,
}

impl Directory {
    /// Parses `epifiles_users`; any mistake is an error naming the entry.
    pub fn parse(json: &str) -> Result<Directory, String> {
        if json.trim().is_empty() {
            return Ok(Directory::default());
        }
        let entries: Vec<UserEntry> = serde_json::from_str(json)
            .map_err(|e| format!("epifiles_users is not a JSON list of users: {e}"))?;
        let mut users: Vec<User> = Vec::new();
        for e in entries {
            let who = format!("epifiles_users: user `{}`", e.user);
            if e.user.is_empty() || e.user.contains(':') {
                return Err(format!("{who}: names are non-empty and have no `:`"));
            }
            if users.iter().any(|u| u.name == e.user) {
                return Err(format!("{who} is listed twice"));
            }
            let password = PasswordHash::parse(&e.password).map_err(|m| format!("{who}: {m}"))?;
            let mut repositories = BTreeMap::new();
            for (repo, list) in e.repositories {
                assetgate_store::keys::check_id("repository", &repo)
                    .map_err(|m| format!("{who}: {}", m.message))?;
                let names = match list {
                    RoleList::One(r) => vec![r],
                    RoleList::Many(v) => v,
                };
                let mut roles = Roles::default();
                for r in names {
                    match r.as_str() {
                        "uploader" => roles.uploader = true,
                        "manager" => roles.manager = true,
                        "downloader" => roles.downloader = true,
                        other => {
                            return Err(format!(
                                "{who}: unknown role `{other}` (uploader, manager, downloader)"
                            ));
                        }
                    }
                }
                repositories.insert(repo, roles);
            }
            users.push(User {
                name: e.user,
                email: e.email.filter(|m| !m.trim().is_empty()),
                repositories,
                password,
            });
        }
        Ok(Directory { users })
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Everyone holding a role in `repository` matched by `pick`.
    pub fn members(&self, repository: &str, pick: impl Fn(Roles) -> bool) -> Vec<&User> {
        self.users
            .iter()
            .filter(|u| u.repositories.get(repository).is_some_and(|r| pick(*r)))
            .collect()
    }

    /// Checks `Authorization: Basic …`. Clients that put `user:password@`
    /// in the URL are told to percent-encode reserved characters; some
    /// send them encoded in the header too, so a failed check is retried
    /// once with both parts decoded.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<&User, Unauthorized> {
        self.basic(authorization, |name, password| self.login(name, password))
    }

    /// [`Directory::authenticate`] for clients that send the same
    /// credentials on every request (chunked transfers): a credential
    /// verified in the last [`REMEMBER_SECS`] is accepted without paying
    /// PBKDF2 again. The store keeps only an HMAC of the credential keyed
    /// by the user's stored hash (which lives in the configuration, not
    /// the store), and an expiry; a changed password changes the key.
    pub fn authenticate_remembered<K: Kv + ?Sized>(
        &self,
        kv: &K,
        authorization: Option<&str>,
        now: u64,
    ) -> Result<&User, Unauthorized> {
        self.basic(authorization, |name, password| {
            self.login_remembered(kv, name, password, now)
        })
    }

    fn basic<'d>(
        &'d self,
        authorization: Option<&str>,
        login: impl Fn(&str, &str) -> Option<&'d User>,
    ) -> Result<&'d User, Unauthorized> {
        let encoded = authorization
            .and_then(|h| h.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, c)| c.trim())
            .ok_or(Unauthorized)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(Unauthorized)?;
        let (name, password) = decoded.split_once(':').ok_or(Unauthorized)?;
        if let Some(u) = login(name, password) {
            return Ok(u);
        }
        // Decoded strictly: credentials whose escapes are malformed are
        // simply wrong credentials (401), whatever the bytes.
        if name.contains('%') || password.contains('%') {
            let decode = |s: &str| percent_decode(s.as_bytes(), false).ok();
            if let (Some(n), Some(p)) = (decode(name), decode(password))
                && let Some(u) = login(&n, &p)
            {
                return Ok(u);
            }
        }
        Err(Unauthorized)
    }

    /// [`Directory::login`] through the store's record of recently
    /// verified credentials. Store errors only cost the PBKDF2 run.
    fn login_remembered<K: Kv + ?Sized>(
        &self,
        kv: &K,
        name: &str,
        password: &str,
        now: u64,
    ) -> Option<&User> {
        let Some(user) = self.get(name) else {
            return self.login(name, password);
        };
        let records = Records::new(kv, REMEMBERED_KIND);
        let id = user.password.remembered_id(name, password);
        let known = records.try_get::<u64>(&id).ok().flatten();
        if known.as_ref().is_some_and(|v| v.value > now) {
            return Some(user);
        }
        let user = self.login(name, password)?;
        let until = now + REMEMBER_SECS;
        let _ = match &known {
            Some(v) => records.update(&id, v, &until).map(drop),
            None => records.create(&id, &until).map(drop),
        };
        Some(user)
    }

    /// The user, if `password` is theirs (other protocols' log-on forms).
    pub fn login(&self, name: &str, password: &str) -> Option<&User> {
        match self.get(name) {
            Some(u) => u.password.verify(password).then_some(u),
            None => {
                // Same work for unknown names, so timing does not tell
                // which user names exist.
                if let Some(any) = self.users.first() {
                    any.password.verify("\u{0}");
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(password: &str, salt: &str) -> String {
        hash_password(password, salt, 1000)
    }

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn django_format_matches_a_known_vector() {
        // Django 1.x test vector: make_password('lètmein', 'seasalt', 'pbkdf2_sha256') with 10000 iterations.
        let h = PasswordHash::parse(
            "pbkdf2_sha256$10000$seasalt$CWWFdHOWwPnki7HvkcqN9iA2T3KLW1cf2uZ5kvArtVY=",
        )
        .unwrap();
        assert!(h.verify("lètmein"));
        assert!(!h.verify("letmein"));
    }

    #[test]
    fn directory_parsing_and_errors() {
        let json = format!(
            r#"[{{"user":"lab","password":"{}","email":"lab@x","repositories":{{"23":"uploader","24":["manager","downloader"]}}}}]"#,
            hash("pw", "s1")
        );
        let d = Directory::parse(&json).unwrap();
        let u = d.get("lab").unwrap();
        assert!(u.roles("23").uploader && !u.roles("23").manager);
        assert!(u.roles("24").reads_all());
        assert_eq!(u.upload_repositories(), vec!["23"]);
        for bad in [
            "{}",
            r#"[{"user":"a","password":"md5$x"}]"#,
            r#"[{"user":"a","password":"pbkdf2_sha256$10$s$AAAAAAAAAAAAAAAAAAAAAA=="}]"#,
            r#"[{"user":"a:b","password":"pbkdf2_sha256$1000$s$AAAAAAAAAAAAAAAAAAAAAA=="}]"#,
            r#"[{"user":"a","password":"pbkdf2_sha256$1000$s$AAAAAAAAAAAAAAAAAAAAAA==","repositories":{"1":"admin"}}]"#,
            r#"[{"user":"a","password":"pbkdf2_sha256$1000$s$AAAAAAAAAAAAAAAAAAAAAA==","repositories":{"a/b":"uploader"}}]"#,
            r#"[{"user":"a","password":"pbkdf2_sha256$1000$s$AAAAAAAAAAAAAAAAAAAAAA==","extra":1}]"#,
        ] {
            assert!(Directory::parse(bad).is_err(), "{bad}");
        }
        assert!(Directory::parse("").unwrap().get("x").is_none());
    }

    #[test]
    fn basic_auth_plain_and_percent_encoded() {
        let json = format!(
            r#"[{{"user":"a@b","password":"{}"}}]"#,
            hash("p:ss/w=rd?", "s")
        );
        let d = Directory::parse(&json).unwrap();
        assert!(d.authenticate(Some(&basic("a@b", "p:ss/w=rd?"))).is_ok());
        assert!(
            d.authenticate(Some(&basic("a%40b", "p%3Ass%2Fw%3Drd%3F")))
                .is_ok()
        );
        for bad in [
            None,
            Some("Bearer x".to_string()),
            Some("Basic !!!".to_string()),
            Some(basic("a@b", "wrong")),
            Some(basic("nobody", "p:ss/w=rd?")),
        ] {
            assert_eq!(d.authenticate(bad.as_deref()).unwrap_err().status(), 401);
        }
    }

    #[test]
    fn malformed_credentials_are_401_whatever_the_bytes() {
        let json = format!(r#"[{{"user":"lab","password":"{}"}}]"#, hash("pw", "s"));
        let d = Directory::parse(&json).unwrap();
        let b64 = |raw: &[u8]| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        };
        let hostile: [&[u8]; 10] = [
            "%C3é".as_bytes(),
            b"%",
            b"%G1",
            b"%C",
            b"%C0%AF",
            b"%FF",
            b"%00",
            b"%ED%A0%80",
            b"\xff\xfe",
            b"\xc3",
        ];
        for h in hostile {
            for raw in [
                [b"lab:".as_slice(), h].concat(),
                [h, b":pw".as_slice()].concat(),
                [h, b":", h].concat(),
                h.to_vec(),
            ] {
                let e = d.authenticate(Some(&b64(&raw))).unwrap_err();
                assert_eq!(e.status(), 401, "{raw:?}");
            }
        }
        for header in ["Basic", "Basic ", "Basic %C3é", "Basic ====", "basic\tx"] {
            assert_eq!(d.authenticate(Some(header)).unwrap_err().status(), 401);
        }
    }

    #[test]
    fn verified_credentials_are_remembered_briefly_by_an_hmac_only() {
        use assetgate_store::MemoryKv;
        let json = format!(r#"[{{"user":"lab","password":"{}"}}]"#, hash("pw", "s"));
        let d = Directory::parse(&json).unwrap();
        let kv = MemoryKv::new();
        let now = 1_000;
        assert!(
            d.authenticate_remembered(&kv, Some(&basic("lab", "nope")), now)
                .is_err()
        );
        assert!(
            kv.keys().is_empty(),
            "nothing remembered for a wrong password"
        );
        assert!(
            d.authenticate_remembered(&kv, Some(&basic("lab", "pw")), now)
                .is_ok()
        );
        let keys = kv.keys();
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(
            !keys[0].contains("pw") && !keys[0].contains("lab"),
            "{keys:?}"
        );
        // The record is what is trusted: planted for a wrong password (which
        // needs the stored hash, from the configuration), it is accepted
        // until it expires, then PBKDF2 decides again.
        let u = d.get("lab").unwrap();
        let id = u.password.remembered_id("lab", "planted");
        Records::new(&kv, REMEMBERED_KIND)
            .create(&id, &(now + 10))
            .unwrap();
        assert!(
            d.authenticate_remembered(&kv, Some(&basic("lab", "planted")), now + 9)
                .is_ok()
        );
        assert!(
            d.authenticate_remembered(&kv, Some(&basic("lab", "planted")), now + 10)
                .is_err()
        );
        // The right password past its expiry: verified again, renewed.
        let later = now + REMEMBER_SECS + 1;
        assert!(
            d.authenticate_remembered(&kv, Some(&basic("lab", "pw")), later)
                .is_ok()
        );
        let id = u.password.remembered_id("lab", "pw");
        let until: u64 = Records::new(&kv, REMEMBERED_KIND).get(&id).unwrap().value;
        assert_eq!(until, later + REMEMBER_SECS);
        // A new password hash is a new key: nothing carries over.
        let json = format!(r#"[{{"user":"lab","password":"{}"}}]"#, hash("pw2", "s"));
        let d2 = Directory::parse(&json).unwrap();
        assert!(
            d2.authenticate_remembered(&kv, Some(&basic("lab", "pw")), later)
                .is_err()
        );
        // Unknown users and malformed headers: 401 as before.
        assert!(
            d.authenticate_remembered(&kv, Some(&basic("ghost", "pw")), now)
                .is_err()
        );
        assert!(
            d.authenticate_remembered(&kv, Some("Basic !!"), now)
                .is_err()
        );
    }
}
