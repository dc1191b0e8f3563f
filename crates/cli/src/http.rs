//! One HTTP client for every command: a keep-alive agent, credentials from
//! the URL's userinfo or the options, and retries of what is worth
//! retrying (connection errors, 5xx, and 409 `conflict`, a store write that
//! lost a race) with a short back-off.

use crate::fail::{Fail, Result};
use std::io::Read;
use std::time::Duration;

const RETRY_DELAYS_MS: [u64; 4] = [200, 500, 1000, 2000];

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Fail::Integrity(format!(
                "{} answer is not JSON ({e}): {}",
                self.status,
                crate::http::excerpt(&self.body)
            ))
        })
    }
}

/// The first 200 characters of a body, for messages.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// Scheme, host, port and path prefix, without userinfo or a trailing
    /// slash.
    pub base: String,
    authorization: Option<String>,
}

impl Client {
    /// For `url` (`http://user:pass@host:port/prefix`): Basic credentials
    /// from its userinfo, else from `user` / `password`.
    pub fn new(url: &str, user: Option<&str>, password: Option<&str>) -> Result<Client> {
        let mut u =
            url::Url::parse(url).map_err(|e| Fail::Usage(format!("{url} is not a URL: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
            return Err(Fail::Usage(format!(
                "{url}: the URL must start with http:// or https://"
            )));
        }
        let credentials = credentials(&u, user, password);
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_query(None);
        let authorization = credentials.map(|(u, p)| {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        Ok(Client {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout_read(Duration::from_secs(300))
                .max_idle_connections_per_host(16)
                .build(),
            base: u.as_str().trim_end_matches('/').to_string(),
            authorization,
        })
    }

    /// Replaces the Authorization header every request carries.
    pub fn with_authorization(mut self, value: String) -> Client {
        self.authorization = Some(value);
        self
    }

    /// `path` (with its query) under the base URL, unless it is absolute.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Sends one request; retries connection errors, 5xx and 409
    /// `conflict`. Any status comes back as a `Reply`: the caller decides
    /// what is a refusal.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply> {
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            let outcome = self.send_once(method, &url, headers, body);
            let retry = match &outcome {
                Ok(r) => {
                    r.status >= 500
                        || (r.status == 409 && r.text().contains(">conflict<"))
                        || (r.status == 409 && r.text().contains("\"conflict\""))
                }
                Err(_) => true,
            };
            if !retry || attempt == RETRY_DELAYS_MS.len() {
                return outcome;
            }
            std::thread::sleep(Duration::from_millis(RETRY_DELAYS_MS[attempt]));
            attempt += 1;
        }
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply> {
        let mut req = self.agent.request(method, url);
        if let Some(a) = &self.authorization {
            req = req.set("authorization", a);
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let resp = match if body.is_empty() && matches!(method, "GET" | "HEAD" | "DELETE") {
            req.call()
        } else {
            req.send_bytes(body)
        } {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                // The transport error names the URL itself.
                return Err(Fail::Network(format!("{method} {t}")));
            }
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let mut body = Vec::new();
        resp.into_reader()
            .take(1 << 30)
            .read_to_end(&mut body)
            .map_err(|e| Fail::Network(format!("{method} {url}: reading the answer: {e}")))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// The user and password: the URL's userinfo (percent-decoded), else the
/// options.
pub fn credentials(
    u: &url::Url,
    user: Option<&str>,
    password: Option<&str>,
) -> Option<(String, String)> {
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    if !u.username().is_empty() {
        return Some((decode(u.username()), decode(u.password().unwrap_or(""))));
    }
    user.map(|u| (u.to_string(), password.unwrap_or_default().to_string()))
}

/// A JSON API's error answer as a refusal: its `message` (and `code`).
pub fn refused_json(r: &Reply) -> Fail {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    Fail::Refused {
        status: r.status,
        code: v["code"]
            .as_str()
            .or(v["errorCode"].as_str())
            .unwrap_or("error")
            .to_string(),
        message: v["message"]
            .as_str()
            .or(v["detail"].as_str())
            .or(v["hydra:description"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| excerpt(&r.body)),
    }
}
