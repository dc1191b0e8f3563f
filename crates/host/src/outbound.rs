//! `allowed_outbound_hosts` as Spin understands them, and the decision of
//! where an outgoing request goes: refused, to this app in-process
//! (`http://self`, `http://<component>.spin.internal`), or to the network.

use anyhow::{Result, bail, ensure};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
    /// `*.example.com`: any host ending in `.example.com`.
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ports {
    Any,
    Range(u16, u16),
    /// No port written: the scheme's default.
    Default,
}

/// One entry of `allowed_outbound_hosts`, e.g. `https://*.example.com:8443`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: Pattern,
    ports: Ports,
}

impl AllowedHost {
    pub fn parse(s: &str) -> Result<AllowedHost> {
        let Some((scheme, rest)) = s.split_once("://") else {
            bail!("`{s}`: an allowed host needs a scheme, e.g. `https://{s}`");
        };
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_string()),
            other => bail!("`{s}`: scheme `{other}` is not supported (http, https or *)"),
        };
        let rest = rest.trim_end_matches('/');
        ensure!(
            !rest.contains('/') && !rest.contains('?') && !rest.contains('@'),
            "`{s}`: an allowed host must not have a path, query or credentials"
        );
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || !p.is_empty() => (h, Some(p)),
            _ => (rest, None),
        };
        ensure!(!host.is_empty(), "`{s}`: empty host");
        let host_pattern = if host == "*" {
            Pattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            ensure!(
                !suffix.contains('*'),
                "`{s}`: only one leading `*.` is allowed"
            );
            Pattern::Suffix(format!(".{}", suffix.to_ascii_lowercase()))
        } else {
            ensure!(
                !host.contains('*'),
                "`{s}`: `*` is only allowed as `*` or `*.domain`"
            );
            Pattern::Exact(host.to_ascii_lowercase())
        };
        let ports = match port {
            None => Ports::Default,
            Some("*") => Ports::Any,
            Some(p) => match p.split_once("..") {
                Some((a, b)) => {
                    let (a, b): (u16, u16) = (a.parse()?, b.parse()?);
                    ensure!(a < b, "`{s}`: empty port range");
                    Ports::Range(a, b - 1)
                }
                None => {
                    let p: u16 = p
                        .parse()
                        .map_err(|_| anyhow::anyhow!("`{s}`: bad port `{p}`"))?;
                    Ports::Range(p, p)
                }
            },
        };
        if ports == Ports::Default
            && scheme.is_none()
            && host_pattern != Pattern::Exact("self".into())
        {
            bail!("`{s}`: a `*` scheme needs an explicit port, e.g. `*://host:*`");
        }
        Ok(AllowedHost {
            scheme,
            host: host_pattern,
            ports,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if let Some(s) = &self.scheme
            && s != scheme
        {
            return false;
        }
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            Pattern::Any => true,
            Pattern::Exact(h) => *h == host,
            Pattern::Suffix(sfx) => host.ends_with(sfx.as_str()) && host.len() > sfx.len(),
        };
        let port_ok = match self.ports {
            Ports::Any => true,
            Ports::Range(a, b) => (a..=b).contains(&port),
            Ports::Default => port == default_port(scheme),
        };
        host_ok && port_ok
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
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

/// A component's outbound policy.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

impl OutboundPolicy {
    pub fn new(entries: &[String]) -> Result<Self> {
        Ok(OutboundPolicy {
            allowed: entries
                .iter()
                .map(|e| AllowedHost::parse(e))
                .collect::<Result<_>>()?,
        })
    }

    /// Decides where a request for `scheme://host:port` goes, or refuses it.
    /// `host` is `None` for a relative URL, which Spin treats as `self`.
    pub fn decide(
        &self,
        scheme: &str,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Result<Destination, String> {
        let port = port.unwrap_or_else(|| default_port(scheme));
        match host {
            None | Some("self") => {
                if self
                    .allowed
                    .iter()
                    .any(|a| a.host == Pattern::Exact("self".into()))
                {
                    Ok(Destination::SelfApp)
                } else {
                    Err("requests to this app need `http://self` in allowed_outbound_hosts".into())
                }
            }
            Some(h) => {
                let lower = h.to_ascii_lowercase();
                if !self.allowed.iter().any(|a| a.allows(scheme, &lower, port)) {
                    return Err(format!(
                        "destination {scheme}://{h}:{port} is not in allowed_outbound_hosts"
                    ));
                }
                match lower.strip_suffix(".spin.internal") {
                    Some(id) if !id.is_empty() => Ok(Destination::Component(id.to_string())),
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
        OutboundPolicy::new(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
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
            "ftp://x",
            "https://a/b",
            "https://*x.com",
            "*://x",
            "https://x:99999",
            "https://x:5..5",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }
}
