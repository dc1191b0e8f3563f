//! `allowed_outbound_hosts` as Spin understands them, and the decision of
//! where an outgoing request goes: refused, to this app in-process
//! (`http://self`, `http://<component>.spin.internal`), or to the network.
//!
//! The grammar and the matching follow Spin's `outbound-networking-config`
//! rule for rule (schemes of any protocol, CIDR ranges, port ranges, the
//! schemes' default ports, service chaining), so a manifest loads here
//! exactly when it loads under Spin, even for schemes this host does not
//! serve (`mysql`, `postgres`, `mqtt`, `tcp`).

use anyhow::{Context, Result, anyhow, bail};
use std::net::IpAddr;
use url::Host;

const SERVICE_CHAINING_SUFFIX: &str = ".spin.internal";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Schemes {
    Any,
    One(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    Any,
    /// `*.example.com`: any domain ending in `.example.com` (stored with
    /// the leading dot).
    AnySubdomain(String),
    /// `self`: this app, for relative requests.
    ToSelf,
    Literal(Host),
    /// An address range, `10.0.0.0/8`; a bare address is a range of one.
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ports {
    Any,
    /// Half-open, as Spin's `a..b`; a single port is `p..p+1`.
    Range(u32, u32),
}

/// One entry of `allowed_outbound_hosts`, e.g. `https://*.example.com:8443`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Schemes,
    host: Hosts,
    ports: Ports,
}

/// The port a scheme means when none is written.
fn well_known_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mqtt" => 1883,
        "http" => 80,
        "https" => 443,
        _ => return None,
    })
}

impl AllowedHost {
    pub fn parse(original: &str) -> Result<AllowedHost> {
        let s = original.trim();
        let Some((scheme, rest)) = s.split_once("://") else {
            if matches!(s, "*" | ":" | "" | "?") {
                bail!(
                    "{s:?} is not an allowed outbound host: write <scheme>://<host>[:<port>], \
                     with `*` wildcards (`*://*:*` allows everything)"
                );
            }
            bail!("{s:?} has no scheme (e.g. `https://` or `*://`)");
        };
        // The last `:` starts the port unless the whole rest is a host
        // (an IPv6 address or range has colons of its own).
        let (host, port) = match rest.rsplit_once(':') {
            None => (rest, ""),
            Some((h, "")) => (h, ""),
            Some(_) if parse_host(rest).is_ok() => (rest, ""),
            Some((h, tail)) => match tail.split_once('/') {
                Some((_, path)) if !path.is_empty() => bail!("{s:?} has a path"),
                Some((port, _)) => (h, port),
                None => (h, tail),
            },
        };
        let ports =
            parse_ports(port, scheme).with_context(|| format!("{s:?}: invalid port {port:?}"))?;
        let scheme =
            parse_scheme(scheme).with_context(|| format!("{s:?}: invalid scheme {scheme:?}"))?;
        let host = parse_host(host).with_context(|| format!("{s:?}: invalid host {host:?}"))?;
        Ok(AllowedHost {
            scheme,
            host,
            ports,
        })
    }

    fn allows(&self, scheme: &str, host: &Host, port: Option<u16>) -> bool {
        let scheme_ok = match &self.scheme {
            Schemes::Any => true,
            Schemes::One(s) => s == scheme,
        };
        let host_ok = match (&self.host, host) {
            (Hosts::Any, _) => true,
            (Hosts::AnySubdomain(suffix), Host::Domain(d)) => d.ends_with(suffix.as_str()),
            (Hosts::Literal(l), h) => l == h,
            (Hosts::Cidr(net, len), Host::Ipv4(ip)) => in_range(*net, *len, IpAddr::V4(*ip)),
            (Hosts::Cidr(net, len), Host::Ipv6(ip)) => in_range(*net, *len, IpAddr::V6(*ip)),
            _ => false,
        };
        let port_ok = match self.ports {
            Ports::Any => true,
            Ports::Range(a, b) => port
                .or_else(|| well_known_port(scheme))
                .is_some_and(|p| (a..b).contains(&u32::from(p))),
        };
        scheme_ok && host_ok && port_ok
    }

    /// Relative (`self`) requests: `self` or `*` hosts, for the scheme.
    fn allows_self(&self, scheme: &str) -> bool {
        let scheme_ok = match &self.scheme {
            Schemes::Any => true,
            Schemes::One(s) => s == scheme,
        };
        scheme_ok && matches!(self.host, Hosts::Any | Hosts::ToSelf)
    }
}

fn parse_scheme(scheme: &str) -> Result<Schemes> {
    if scheme == "*" {
        return Ok(Schemes::Any);
    }
    if scheme.starts_with('{') {
        bail!("scheme lists are not supported");
    }
    if scheme.is_empty() || !scheme.chars().all(char::is_alphabetic) {
        bail!("only letters are allowed");
    }
    Ok(Schemes::One(scheme.to_string()))
}

fn parse_ports(port: &str, scheme: &str) -> Result<Ports> {
    let one = |p: u16| Ports::Range(u32::from(p), u32::from(p) + 1);
    if port.is_empty() {
        return well_known_port(scheme)
            .map(one)
            .ok_or_else(|| anyhow!("no port given, and scheme {scheme:?} has no well-known port"));
    }
    if port == "*" {
        return Ok(Ports::Any);
    }
    if port.starts_with('{') {
        bail!("port lists are not supported");
    }
    if let Some((a, b)) = port.split_once("..") {
        let a: u16 = a.parse().context("a port range holds numbers")?;
        let b: u16 = b.parse().context("a port range holds numbers")?;
        return Ok(Ports::Range(u32::from(a), u32::from(b)));
    }
    Ok(one(port.parse().context("a port is a number")?))
}

fn parse_host(host: &str) -> Result<Hosts> {
    let host = host.trim();
    if host == "*" {
        return Ok(Hosts::Any);
    }
    if host == "self" || host == "self.alt" {
        return Ok(Hosts::ToSelf);
    }
    if host.starts_with('{') {
        bail!("host lists are not supported");
    }
    if let Some((net, len)) = parse_cidr(host) {
        return Ok(Hosts::Cidr(net, len));
    }
    let host = host.strip_suffix('/').unwrap_or(host);
    if host.contains('/') {
        bail!("must not include a path");
    }
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.contains('*') {
            bail!("wildcards are allowed only as prefixes");
        }
        let Host::Domain(domain) = Host::parse(domain)? else {
            bail!("a wildcard's suffix must be a domain");
        };
        return Ok(Hosts::AnySubdomain(format!(".{domain}")));
    }
    if host.contains('*') {
        bail!("wildcards are allowed only as subdomains");
    }
    Ok(Hosts::Literal(Host::parse(host)?))
}

/// `addr` or `addr/len`, host bits dropped (`10.1.2.3/8` is `10.0.0.0/8`).
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then(|| (mask(addr, len), len))
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

fn in_range(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    net.is_ipv4() == ip.is_ipv4() && mask(ip, len) == net
}

/// Where an outgoing request is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Route through this app's router (`http://self/...` or a relative URL).
    SelfApp,
    /// Straight to one component (`http://<id>.spin.internal/...`).
    Component(String),
    /// Out to the network.
    Network,
}

/// Checks a manifest's entries before variables resolve (templated ones
/// are checked once they do).
pub fn validate(entries: &[String]) -> Result<()> {
    refuse_allow_all(entries.iter().map(String::as_str))?;
    for entry in entries.iter().filter(|e| !e.contains("{{")) {
        AllowedHost::parse(entry)?;
    }
    Ok(())
}

/// Spin's old spelling of "everything", refused when it stands alone.
fn refuse_allow_all<'a>(mut entries: impl ExactSizeIterator<Item = &'a str>) -> Result<()> {
    if entries.len() == 1 && entries.next() == Some("insecure:allow-all") {
        bail!("`insecure:allow-all` is not allowed: use `*://*:*` to allow everything");
    }
    Ok(())
}

/// A component's outbound policy.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

impl OutboundPolicy {
    /// `entries` as written, with templates already rendered; `templated`
    /// tells which came from a template (an empty one is skipped, as Spin
    /// does for "optional endpoint" variables). `components` are the app's
    /// ids, for `*.spin.internal`.
    pub fn new(entries: &[(String, bool)], components: &[String]) -> Result<Self> {
        refuse_allow_all(entries.iter().map(|(e, _)| e.as_str()))?;
        let mut allowed = Vec::new();
        for (entry, templated) in entries {
            if *templated && matches!(entry.as_str(), "" | "http://" | "https://") {
                continue;
            }
            let host = AllowedHost::parse(entry)?;
            // `*.spin.internal` means each component of the app, no other.
            if host.host == Hosts::AnySubdomain(SERVICE_CHAINING_SUFFIX.into()) {
                for id in components {
                    allowed.push(AllowedHost {
                        host: Hosts::Literal(Host::Domain(format!(
                            "{id}{SERVICE_CHAINING_SUFFIX}"
                        ))),
                        ..host.clone()
                    });
                }
            } else {
                allowed.push(host);
            }
        }
        Ok(OutboundPolicy { allowed })
    }

    /// Spin's `check_url` for clients of other protocols (Redis): whether an
    /// entry allows `scheme://host:port`. Only network destinations: `self`
    /// and service chaining are HTTP's.
    pub fn allows_address(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let Ok(parsed) = Host::parse(host) else {
            return false;
        };
        self.allowed.iter().any(|a| a.allows(scheme, &parsed, port))
    }

    /// Decides where a request for `scheme://host:port` goes, or refuses it.
    /// `host` is `None` for a relative URL, which Spin treats as `self`.
    pub fn decide(
        &self,
        scheme: &str,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Result<Destination, String> {
        match host {
            None | Some("self") => {
                if self.allowed.iter().any(|a| a.allows_self(scheme)) {
                    Ok(Destination::SelfApp)
                } else {
                    Err("requests to this app need `http://self` in allowed_outbound_hosts".into())
                }
            }
            Some(h) => {
                let shown = || {
                    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                    format!("destination {scheme}://{h}{port} is not in allowed_outbound_hosts")
                };
                let parsed = Host::parse(h).map_err(|_| shown())?;
                if !self.allowed.iter().any(|a| a.allows(scheme, &parsed, port)) {
                    return Err(shown());
                }
                match &parsed {
                    Host::Domain(d) => match d.strip_suffix(SERVICE_CHAINING_SUFFIX) {
                        Some(id) if !id.is_empty() => Ok(Destination::Component(id.to_string())),
                        _ => Ok(Destination::Network),
                    },
                    _ => Ok(Destination::Network),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        let entries: Vec<(String, bool)> = entries.iter().map(|s| (s.to_string(), false)).collect();
        OutboundPolicy::new(&entries, &["status".to_string(), "upload".to_string()]).unwrap()
    }

    #[test]
    fn decisions() {
        let p = policy(&[
            "https://example.com",
            "http://127.0.0.1:*",
            "https://*.cdn.net:8443",
            "http://localhost:8000..8010",
            "http://self",
            "http://*.spin.internal",
        ]);
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<u16>,
            Result<Destination, ()>,
        );
        let table: [Case; 14] = [
            ("https", Some("example.com"), None, Ok(Destination::Network)),
            (
                "https",
                Some("EXAMPLE.com"),
                Some(443),
                Ok(Destination::Network),
            ),
            ("http", Some("example.com"), None, Err(())),
            ("https", Some("example.com"), Some(8443), Err(())),
            ("https", Some("evil-example.com"), None, Err(())),
            ("http", Some("127.0.0.1"), Some(9), Ok(Destination::Network)),
            (
                "https",
                Some("a.cdn.net"),
                Some(8443),
                Ok(Destination::Network),
            ),
            ("https", Some("cdn.net"), Some(8443), Err(())),
            (
                "http",
                Some("localhost"),
                Some(8009),
                Ok(Destination::Network),
            ),
            ("http", Some("localhost"), Some(8010), Err(())),
            ("http", None, None, Ok(Destination::SelfApp)),
            ("http", Some("self"), None, Ok(Destination::SelfApp)),
            (
                "http",
                Some("status.spin.internal"),
                None,
                Ok(Destination::Component("status".into())),
            ),
            ("https", Some("10.0.0.1"), None, Err(())),
        ];
        for (scheme, host, port, expected) in table {
            let got = p.decide(scheme, host, port).map_err(|_| ());
            assert_eq!(got, expected, "{scheme}://{host:?}:{port:?}");
        }
    }

    #[test]
    fn nothing_allowed_by_default() {
        let p = policy(&[]);
        assert!(p.decide("https", Some("example.com"), None).is_err());
        assert!(p.decide("http", None, None).is_err());
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "example.com",
            "*",
            "",
            "ftp://x",
            "tcp://x",
            "*://x",
            "*://self",
            "https://a/b",
            "https://x:80/b",
            "https://*x.com",
            "https://a.*.com",
            "https://*.127.0.0.1",
            "https://x:99999",
            "https://x:a..b",
            "ht-tp://x",
            "{http,https}://x",
            "https://{a,b}",
            "https://x:{1,2}",
            "*://10.0.0.0/33:*",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
        let all_insecure = [("insecure:allow-all".to_string(), false)];
        assert!(OutboundPolicy::new(&all_insecure, &[]).is_err());
    }

    /// Every form Spin accepts, including schemes this host does not serve.
    #[test]
    fn spins_forms_load_and_match() {
        let p = policy(&[
            "*://127.0.0.0/24:8080",
            "http://[::1]:9000",
            "*://10.0.0.0/8:*",
            "*://fd00::/8:5432",
            "redis://cache.example.com",
            "mysql://db.example.com",
            "postgres://pg.example.com:5433",
            "mqtt://broker.example.com",
            "tcp://192.0.2.1:9000",
            "https://example.org/",
            "https://example.net:8443/",
            "http://192.168.1.3/16:80",
        ]);
        let ok = |scheme: &str, host: &str, port: Option<u16>| {
            p.decide(scheme, Some(host), port).is_ok()
        };
        assert!(ok("http", "127.0.0.9", Some(8080)));
        assert!(!ok("http", "127.0.1.9", Some(8080)));
        assert!(!ok("http", "127.0.0.9", Some(8081)));
        assert!(ok("http", "[::1]", Some(9000)));
        assert!(ok("https", "10.200.0.1", Some(1)));
        assert!(ok("postgres", "[fd12::1]", Some(5432)));
        assert!(ok("redis", "cache.example.com", None));
        assert!(ok("redis", "cache.example.com", Some(6379)));
        assert!(!ok("redis", "cache.example.com", Some(6380)));
        assert!(ok("mysql", "db.example.com", Some(3306)));
        assert!(ok("postgres", "pg.example.com", Some(5433)));
        assert!(ok("mqtt", "broker.example.com", Some(1883)));
        assert!(ok("tcp", "192.0.2.1", Some(9000)));
        assert!(ok("https", "example.org", None));
        assert!(ok("https", "example.net", Some(8443)));
        assert!(ok("http", "192.168.200.200", None));
        assert!(!ok("http", "192.169.0.1", Some(80)));
        assert!(!ok("http", "192.168.0.1", Some(81)));
        // An IP range never matches a name, nor a name pattern an address.
        assert!(!ok("http", "localhost", Some(8080)));
        // Everything: `*://*:*`, relative requests included.
        let all = policy(&["*://*:*"]);
        assert!(
            all.decide("gopher", Some("anything.example"), Some(70))
                .is_ok()
        );
        assert_eq!(all.decide("http", None, None), Ok(Destination::SelfApp));
        // An empty port range is accepted and matches nothing, as in Spin.
        let empty = policy(&["https://x:5..5"]);
        assert!(empty.decide("https", Some("x"), Some(5)).is_err());
    }

    #[test]
    fn service_chaining_wildcard_is_the_apps_components() {
        let p = policy(&["http://*.spin.internal"]);
        assert_eq!(
            p.decide("http", Some("upload.spin.internal"), None),
            Ok(Destination::Component("upload".into()))
        );
        assert!(
            p.decide("http", Some("nobody.spin.internal"), None)
                .is_err()
        );
        assert!(p.decide("http", Some("example.com"), None).is_err());
    }

    #[test]
    fn empty_templates_are_skipped_literals_are_not() {
        let entries = [("".to_string(), true), ("http://".to_string(), true)];
        let p = OutboundPolicy::new(&entries, &[]).unwrap();
        assert!(p.decide("http", Some("x"), None).is_err());
        assert!(OutboundPolicy::new(&[("".to_string(), false)], &[]).is_err());
    }
}
