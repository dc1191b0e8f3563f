//! Where the service may read and write. `https:` goes anywhere public;
//! plain `http:` and loopback, private, link-local or internal names only
//! to hosts on `compute_allowed_http_hosts`; `data:` and `asset:` only
//! where a source is read. Credentials in URLs are refused. Spin's
//! `allowed_outbound_hosts` is checked again by the platform.
//!
//! Host names are not resolved here (a component cannot): a public name
//! pointing at a private address is the platform's `allowed_outbound_hosts`
//! to stop, which is why it lists `https://*:443` and nothing broader.

use base64::Engine;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A place bytes come from or go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An `http(s):` URL that passed the policy.
    Remote(String),
    /// Inline bytes with their media type.
    Data { mime: String, bytes: Vec<u8> },
    /// An asset of our own store.
    Asset(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Read: `data:` and `asset:` allowed.
    Read,
    /// Written with PUT: remote URLs only.
    Write,
}

/// Checks `url` against the policy; the error says why, without echoing
/// secrets (only the scheme and host are named).
pub fn check(url: &str, allowed_http_hosts: &[String], usage: Use) -> Result<Location, String> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| "is not an absolute URL".to_string())?;
    match scheme.to_ascii_lowercase().as_str() {
        "data" if usage == Use::Read => parse_data(rest),
        "asset" if usage == Use::Read => {
            let id = rest.trim_start_matches("//");
            if id.is_empty()
                || id.len() > 128
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err("is not a valid `asset:<id>` reference".into());
            }
            Ok(Location::Asset(id.to_string()))
        }
        s @ ("http" | "https") => {
            let authority = rest
                .strip_prefix("//")
                .ok_or_else(|| format!("is not a valid {s} URL"))?
                .split(['/', '?', '#'])
                .next()
                .unwrap_or_default();
            if authority.contains('@') {
                return Err("URLs with credentials are not accepted".into());
            }
            let host_port = authority.to_ascii_lowercase();
            let host = host_of(&host_port);
            if host.is_empty() {
                return Err(format!("{s} URL without a host"));
            }
            let listed = allowed_http_hosts
                .iter()
                .any(|a| *a == host_port || *a == host);
            if s == "http" && !listed {
                return Err(format!(
                    "plain http to `{host_port}` is not allowed (https, or a host on compute_allowed_http_hosts)"
                ));
            }
            if !listed && internal(host) {
                return Err(format!(
                    "`{host}` is a loopback, private, link-local or internal address"
                ));
            }
            Ok(Location::Remote(url.to_string()))
        }
        other => Err(format!("the `{other}:` scheme is not accepted here")),
    }
}

/// `host` of `host[:port]`, IPv6 brackets removed.
fn host_of(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

fn internal(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host == "localhost"
        || host == "self"
        || host.ends_with(".localhost")
        || host.ends_with(".internal")
        || host.ends_with(".local")
    {
        return true;
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return internal_v4(ip);
    }
    if let Ok(ip) = host.parse::<Ipv6Addr>() {
        if let Some(v4) = ip.to_ipv4_mapped() {
            return internal_v4(v4);
        }
        let s = ip.segments();
        return ip.is_loopback()
            || ip.is_unspecified()
            || ip.is_multicast()
            || (s[0] & 0xfe00) == 0xfc00 // unique local
            || (s[0] & 0xffc0) == 0xfe80; // link-local
    }
    // Numeric forms a resolver may still read as an address (`2130706433`,
    // `0x7f.1`, `127.1`): refuse rather than guess.
    host.bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b'x')
        && host.bytes().any(|b| b.is_ascii_digit())
        && !host
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'x' && !b.is_ascii_hexdigit())
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT
}

fn parse_data(rest: &str) -> Result<Location, String> {
    let (meta, payload) = rest
        .split_once(',')
        .ok_or_else(|| "is not a valid data: URI (no comma)".to_string())?;
    let (mime, base64) = match meta.strip_suffix(";base64") {
        Some(m) => (m, true),
        None => (meta, false),
    };
    let mime = assetgate_web::mime::essence(mime);
    let mime = if mime.is_empty() {
        "text/plain".to_string()
    } else {
        mime
    };
    let bytes = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|e| format!("data: URI is not valid base64: {e}"))?
    } else {
        percent_decode_bytes(payload)
    };
    Ok(Location::Data { mime, bytes })
}

/// `%XX` escapes to bytes (a `data:` payload need not be UTF-8).
fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            // Two hex digits: `from_str_radix` alone takes a sign (`%+1`).
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// What events and logs may show of a URL: presigned URLs carry their
/// signature in the query, so the query is replaced; `data:` URIs are
/// shortened to their media type.
pub fn redact(url: &str) -> String {
    let t = url.trim();
    // `get`: a URL is client text, and byte 5 may fall inside a character.
    if t.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) {
        let meta = t[5..].split(',').next().unwrap_or_default();
        return format!("data:{meta},…");
    }
    match t.split_once('?') {
        Some((base, _)) => format!("{base}?REDACTED"),
        None => t.split('#').next().unwrap_or(t).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["127.0.0.1:9000".into()]
    }

    #[test]
    fn redacting_never_cuts_a_character() {
        // Fuzzer reproducer (fuzz/artifacts/process_json/redact-not-ascii):
        // byte 5 inside a character.
        for url in ["ééé", "daté", "é", "data", "https://x/é?sig=1"] {
            let _ = redact(url);
        }
        assert_eq!(redact("ééé"), "ééé");
        // Fuzzer reproducer (data-url-signed-escape): `%+1` is not an escape.
        assert_eq!(percent_decode_bytes("%+1%2B%41"), b"%+1+A".to_vec());
        assert_eq!(
            redact("DATA:image/png;base64,xx"),
            "data:image/png;base64,…"
        );
    }

    #[test]
    fn policy_table() {
        let ok = |u: &str, use_: Use| check(u, &allowed(), use_).is_ok();
        let cases: &[(&str, Use, bool)] = &[
            ("https://bucket.example.com/a.jpg?sig=1", Use::Read, true),
            ("https://bucket.example.com/a.jpg", Use::Write, true),
            ("http://bucket.example.com/a.jpg", Use::Read, false),
            ("http://127.0.0.1:9000/a.jpg", Use::Read, true),
            ("http://127.0.0.1:9001/a.jpg", Use::Read, false),
            ("https://127.0.0.1/a", Use::Read, false),
            ("https://10.1.2.3/a", Use::Write, false),
            ("https://192.168.0.1/a", Use::Read, false),
            ("https://169.254.169.254/latest/meta-data", Use::Read, false),
            ("https://[::1]/a", Use::Read, false),
            ("https://[fe80::1]/a", Use::Read, false),
            ("https://[::ffff:10.0.0.1]/a", Use::Read, false),
            ("https://localhost/a", Use::Read, false),
            ("https://upload.spin.internal/a", Use::Read, false),
            ("http://self/assets", Use::Read, false),
            ("https://2130706433/a", Use::Read, false),
            ("https://0x7f.1/a", Use::Read, false),
            ("https://user:pw@example.com/a", Use::Read, false),
            ("ftp://example.com/a", Use::Read, false),
            ("file:///etc/passwd", Use::Read, false),
            ("data:text/plain,hi", Use::Read, true),
            ("data:text/plain,hi", Use::Write, false),
            ("asset:abc-123", Use::Read, true),
            ("asset:../x", Use::Read, false),
            ("asset:abc", Use::Write, false),
            ("https://cafe.example/a", Use::Read, true),
            ("https://8.8.8.8/a", Use::Read, true),
        ];
        for (u, use_, want) in cases {
            assert_eq!(ok(u, *use_), *want, "{u}");
        }
    }

    #[test]
    fn data_uris() {
        assert_eq!(
            check("data:image/png;base64,aGk=", &[], Use::Read).unwrap(),
            Location::Data {
                mime: "image/png".into(),
                bytes: b"hi".to_vec()
            }
        );
        assert_eq!(
            check("data:,a%20b", &[], Use::Read).unwrap(),
            Location::Data {
                mime: "text/plain".into(),
                bytes: b"a b".to_vec()
            }
        );
        assert!(check("data:image/png;base64,a$$", &[], Use::Read).is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("https://b.s3.amazonaws.com/x.png?X-Amz-Signature=abc"),
            "https://b.s3.amazonaws.com/x.png?REDACTED"
        );
        assert_eq!(redact("https://h/x.png"), "https://h/x.png");
        assert_eq!(
            redact("data:image/png;base64,AAAA"),
            "data:image/png;base64,…"
        );
    }
}
