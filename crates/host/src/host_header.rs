//! The `Host` header of a request from the network, checked before routing
//! (RFC 9112 §3.2): an HTTP/1.1 request without one, any request with more
//! than one, or one whose value is not `uri-host [":" port]` (RFC 3986
//! §3.2.2-3.2.3) is answered 400 and never reaches a component.
//!
//! Spin reads the same header into an `http::uri::Authority` and drops the
//! connection without an answer when that fails; this host answers 400
//! with a reason, and is stricter where Spin is lax (a userinfo part, a
//! second `Host`, a port that is not a number up to 65535).

use http::header::HOST;
use http::{HeaderValue, Request, Version};
use std::net::Ipv6Addr;

/// Why a request's `Host` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Repeated,
    Invalid,
    /// An absolute-form target (`GET http://a/ HTTP/1.1`) naming another
    /// authority than `Host`: Spin refuses it too (hyper issue 1612).
    Mismatch,
}

impl Refusal {
    /// The body of the 400, for the client.
    pub fn body(self) -> &'static str {
        match self {
            Refusal::Missing => "Bad Request: an HTTP/1.1 request needs a Host header\n",
            Refusal::Repeated => "Bad Request: more than one Host header\n",
            Refusal::Invalid => "Bad Request: the Host header is not a valid host[:port]\n",
            Refusal::Mismatch => {
                "Bad Request: the Host header does not match the authority of the request target\n"
            }
        }
    }

    /// A short reason for the host's log.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "no Host header",
            Refusal::Repeated => "several Host headers",
            Refusal::Invalid => "invalid Host header",
            Refusal::Mismatch => "Host header differs from the target's authority",
        }
    }
}

/// Checks the `Host` of a request from the network. An HTTP/1.0 request may
/// lack one (RFC 9112 §3.2 only requires it of HTTP/1.1); then the
/// authority of an absolute-form target is written into `Host`, and with
/// none the server fills in its listening address later, as before.
pub fn check<B>(req: &mut Request<B>) -> Result<(), Refusal> {
    let mut values = req.headers().get_all(HOST).iter();
    let (first, second) = (values.next(), values.next());
    let target = req.uri().authority().map(|a| a.as_str().to_string());
    match (first, second) {
        (Some(_), Some(_)) => Err(Refusal::Repeated),
        (None, _) if req.version() != Version::HTTP_10 => Err(Refusal::Missing),
        (None, _) => {
            if let Some(t) = target {
                // It stands in for Host, so it is held to the same rule.
                if !is_valid_host(t.as_bytes()) {
                    return Err(Refusal::Invalid);
                }
                let v = HeaderValue::from_str(&t).map_err(|_| Refusal::Invalid)?;
                req.headers_mut().insert(HOST, v);
            }
            Ok(())
        }
        (Some(value), None) => {
            let host = value.as_bytes();
            if !is_valid_host(host) {
                return Err(Refusal::Invalid);
            }
            match target {
                Some(t) if !t.as_bytes().eq_ignore_ascii_case(host) => Err(Refusal::Mismatch),
                _ => Ok(()),
            }
        }
    }
}

/// `uri-host [":" port]` for the `http` scheme: the host is not empty
/// (RFC 9110 §4.2.1), the port is a TCP port, and there is no userinfo.
/// Percent-encoded names are refused, as Spin (the `http` crate) refuses
/// them: DNS names never need them.
pub fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(end) => {
                if !is_ip_literal(&value[1..end]) {
                    return false;
                }
                (&value[..=end], &value[end + 1..])
            }
            None => return false,
        },
        _ => {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            let name = &value[..end];
            if name.is_empty() || !name.iter().all(|&b| is_unreserved(b) || is_sub_delim(b)) {
                return false;
            }
            (name, &value[end..])
        }
    };
    debug_assert!(!host.is_empty());
    match port {
        [] => true,
        [b':', digits @ ..] => is_port(digits),
        _ => false,
    }
}

/// `port = *DIGIT`, which may be empty (RFC 3986 §3.2.3); when present it
/// must name a TCP port.
fn is_port(digits: &[u8]) -> bool {
    digits.is_empty()
        || (digits.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(digits).is_ok_and(|d| d.parse::<u16>().is_ok()))
}

/// Inside the brackets: an IPv6 address (no zone identifier) or
/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn is_ip_literal(inner: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inner {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, address) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !address.is_empty()
            && address
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inner).is_ok_and(|s| s.parse::<Ipv6Addr>().is_ok())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(version: Version, target: &str, hosts: &[&[u8]]) -> Request<()> {
        let mut req = Request::builder()
            .version(version)
            .uri(target)
            .body(())
            .unwrap();
        for h in hosts {
            req.headers_mut()
                .append(HOST, HeaderValue::from_bytes(h).unwrap());
        }
        req
    }

    const VALID: &[&str] = &[
        "example.com",
        "example.com:8080",
        "EXAMPLE.com.",
        "127.0.0.1",
        "127.0.0.1:3000",
        "localhost:",
        "[::1]",
        "[::1]:3000",
        "[2001:db8::ff00:42:8329]:65535",
        "[v7.fe:80]",
        "a-b_c~d",
        "a!$&'()*+,;=b",
        "x:0",
        "x:00080",
    ];

    /// Every one of them broken in a way a client or an attacker would
    /// send: empty, spaces, extra colons, unbalanced brackets, percent
    /// signs, control characters, userinfo, ports out of range.
    const INVALID: &[&[u8]] = &[
        b"",
        b" ",
        b"a b",
        b"host:port",
        b"host:80:80",
        b"host:port:port",
        b"[::1",
        b"::1",
        b"[::1]x",
        b"[::1]:x",
        b"[::g]",
        b"[]",
        b"[fe80::1%25eth0]",
        b"[v.x]",
        b"[v1.]",
        b"%zz",
        b"%41",
        b"a%2",
        b"a\tb",
        b"a\x7fb",
        b"user@host",
        b"@host",
        b"host/path",
        b"host?q",
        b"host#f",
        b"x:65536",
        b"x:99999999999999999999",
        b":80",
        b"caf\xc3\xa9.example",
        b"\xff",
        b"a\"b",
        b"<a>",
        b"a\\b",
        b"a{b}",
    ];

    #[test]
    fn valid_hosts_are_accepted_and_spin_would_accept_them() {
        for h in VALID {
            assert!(is_valid_host(h.as_bytes()), "{h}");
            assert!(h.parse::<http::uri::Authority>().is_ok(), "{h}");
            let mut req = request(Version::HTTP_11, "/x", &[h.as_bytes()]);
            assert_eq!(check(&mut req), Ok(()), "{h}");
        }
    }

    #[test]
    fn invalid_hosts_are_refused() {
        for h in INVALID {
            assert!(!is_valid_host(h), "{:?}", String::from_utf8_lossy(h));
            // Header values cannot hold every byte; those that can go
            // through `check` as well.
            if HeaderValue::from_bytes(h).is_ok() {
                let mut req = request(Version::HTTP_11, "/x", &[h]);
                assert_eq!(check(&mut req), Err(Refusal::Invalid), "{h:?}");
            }
        }
    }

    #[test]
    fn missing_repeated_and_mismatched_hosts() {
        let mut req = request(Version::HTTP_11, "/x", &[]);
        assert_eq!(check(&mut req), Err(Refusal::Missing));
        // HTTP/1.1 needs Host even with an absolute-form target.
        let mut req = request(Version::HTTP_11, "http://a.example/x", &[]);
        assert_eq!(check(&mut req), Err(Refusal::Missing));
        for pair in [[b"a".as_slice(), b"a"], [b"a", b"b"], [b"a", b""]] {
            for version in [Version::HTTP_10, Version::HTTP_11] {
                let mut req = request(version, "/x", &pair);
                assert_eq!(check(&mut req), Err(Refusal::Repeated), "{pair:?}");
            }
        }
        let mut req = request(Version::HTTP_11, "http://a.example/x", &[b"b.example"]);
        assert_eq!(check(&mut req), Err(Refusal::Mismatch));
        let mut req = request(
            Version::HTTP_11,
            "http://A.example:80/x",
            &[b"a.EXAMPLE:80"],
        );
        assert_eq!(check(&mut req), Ok(()));
    }

    #[test]
    fn http_1_0_may_omit_host() {
        let mut req = request(Version::HTTP_10, "/x", &[]);
        assert_eq!(check(&mut req), Ok(()));
        assert!(req.headers().get(HOST).is_none());
        let mut req = request(Version::HTTP_10, "http://a.example:81/x", &[]);
        assert_eq!(check(&mut req), Ok(()));
        assert_eq!(req.headers()[HOST], "a.example:81");
        // An absolute-form target standing in for Host obeys its rule.
        let mut req = request(Version::HTTP_10, "http://u@a.example/x", &[]);
        assert_eq!(check(&mut req), Err(Refusal::Invalid));
        // What it does send is checked like any other.
        let mut req = request(Version::HTTP_10, "/x", &[b"a b"]);
        assert_eq!(check(&mut req), Err(Refusal::Invalid));
    }

    proptest! {
        /// Whatever bytes come in, the check answers; and what it accepts,
        /// Spin's parser (the `http` crate) accepts too, so a component
        /// never sees a Host that Spin would not have let through.
        #[test]
        fn accepted_hosts_are_authorities(value in proptest::collection::vec(any::<u8>(), 0..40)) {
            if is_valid_host(&value) {
                let text = std::str::from_utf8(&value).unwrap();
                prop_assert!(text.parse::<http::uri::Authority>().is_ok(), "{text:?}");
            }
        }

        #[test]
        fn grammar_shaped_hosts(
            value in "(\\[[0-9a-fA-F:.v%]{0,12}\\]|[a-zA-Z0-9._~!$&'()*+,;=%@:/ -]{0,16})(:[0-9a-z:]{0,7})?"
        ) {
            if is_valid_host(value.as_bytes()) {
                prop_assert!(value.parse::<http::uri::Authority>().is_ok(), "{value:?}");
                prop_assert!(!value.contains(['%', '@', ' ', '/']), "{value:?}");
            }
        }

        /// Generated valid names and ports are accepted.
        #[test]
        fn generated_valid_hosts(
            name in "[a-z0-9][a-z0-9.-]{0,20}",
            port in proptest::option::of(0u16..),
        ) {
            let value = match port {
                Some(p) => format!("{name}:{p}"),
                None => name,
            };
            prop_assert!(is_valid_host(value.as_bytes()), "{value:?}");
        }
    }
}
