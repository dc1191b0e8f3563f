//! `assetgate compute`: an Asset Compute client. `token` issues a client's
//! access token (what `scripts/compute-token` does); `register`,
//! `unregister` and `process` call the service with the token, the API key
//! and the organisation (the last two read from the token when not
//! given); `process --watch` follows the journal's `Link: rel="next"`
//! chain from "now" and prints this request's events as they arrive.

use crate::fail::{Fail, Result};
use crate::http::{Client, Reply, refused_json};
use crate::phraseanet::random;
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A client's token and its `compute_clients` entry (the server keeps
/// only the token's SHA-256). Shaped like a JWT because Adobe's events
/// client reads `client_id` from it; the third part is 256 random bits.
pub fn token(name: &str, api_key: &str, org: &str, max_in_flight: Option<u32>) -> Value {
    let part = |v: Value| B64URL.encode(v.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let token = format!(
        "{}.{}.{}",
        part(json!({"alg": "none", "typ": "JWT", "kid": "assetgate"})),
        part(
            json!({"client_id": api_key, "org": org, "sub": name, "iat": now,
                    "jti": hex::encode(random::<8>())})
        ),
        hex::encode(random::<32>())
    );
    let mut client = json!({
        "name": name, "api_key": api_key, "org": org,
        "token_sha256": hex::encode(Sha256::digest(token.as_bytes())),
    });
    if let Some(m) = max_in_flight {
        client["max_in_flight"] = json!(m);
    }
    json!({"token": token, "client": client})
}

/// Who calls: the token, and the API key and organisation it carries
/// unless given.
pub struct Caller {
    pub token: String,
    pub api_key: String,
    pub org: String,
}

impl Caller {
    pub fn new(token: String, api_key: Option<String>, org: Option<String>) -> Result<Caller> {
        let payload: Value = token
            .split('.')
            .nth(1)
            .and_then(|p| B64URL.decode(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let from = |given: Option<String>, key: &str, flag: &str| {
            given
                .or_else(|| payload[key].as_str().map(str::to_string))
                .ok_or_else(|| {
                    Fail::Usage(format!("{flag} is required (the token does not carry it)"))
                })
        };
        Ok(Caller {
            api_key: from(api_key, "client_id", "--api-key")?,
            org: from(org, "org", "--org")?,
            token,
        })
    }

    fn call(&self, c: &Client, method: &str, path: &str, body: &[u8]) -> Result<Reply> {
        let auth = format!("Bearer {}", self.token);
        c.send(
            method,
            path,
            &[
                ("authorization", &auth),
                ("x-api-key", &self.api_key),
                ("x-gw-ims-org-id", &self.org),
                ("content-type", "application/json"),
            ],
            body,
        )
    }
}

pub fn register(c: &Client, who: &Caller) -> Result<Value> {
    let r = who.call(c, "POST", "/register", b"")?;
    if r.status != 200 {
        return Err(refused_json(&r));
    }
    r.json()
}

pub fn unregister(c: &Client, who: &Caller) -> Result<Value> {
    let r = who.call(c, "POST", "/unregister", b"")?;
    if r.status != 200 {
        return Err(refused_json(&r));
    }
    r.json()
}

/// `fmt=png,width=200,name=thumb.png` as a rendition object: numbers and
/// booleans typed, `crop=x:y:w:h` as Asset Compute's crop object.
pub fn rendition(spec: &str) -> Result<Value> {
    let mut m = Map::new();
    for pair in spec.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Fail::Usage(format!("--rendition {spec}: `{pair}` is not key=value")))?;
        let value = if k == "crop" {
            let n: Vec<u64> = v.split(':').filter_map(|x| x.parse().ok()).collect();
            let [x, y, w, h] = n[..] else {
                return Err(Fail::Usage(format!("--rendition {spec}: crop is x:y:w:h")));
            };
            m.insert("postProcess".into(), json!(true));
            json!({"x": x, "y": y, "w": w, "h": h})
        } else if let Ok(n) = v.parse::<i64>() {
            json!(n)
        } else if let Ok(f) = v.parse::<f64>() {
            json!(f)
        } else if v == "true" || v == "false" {
            json!(v == "true")
        } else {
            json!(v)
        };
        m.insert(k.to_string(), value);
    }
    if !m.contains_key("fmt") {
        return Err(Fail::Usage(format!(
            "--rendition {spec}: `fmt` is required"
        )));
    }
    Ok(Value::Object(m))
}

fn next_link(r: &Reply) -> Option<String> {
    let link = r.header("link")?;
    link.split(',')
        .find(|l| l.contains("rel=\"next\""))
        .and_then(|l| Some(l[l.find('<')? + 1..l.find('>')?].to_string()))
}

/// Submits a `/process` request; with `watch`, prints its events (one JSON
/// line each) until every rendition is reported or `timeout` passes.
pub fn process(
    c: &Client,
    who: &Caller,
    body: &Value,
    watch: bool,
    timeout: Duration,
) -> Result<Value> {
    let start = if watch {
        let journal = register(c, who)?["journal"]
            .as_str()
            .ok_or_else(|| Fail::Integrity("register answered no journal".into()))?
            .to_string();
        let r = who.call(c, "GET", &format!("{journal}?latest=true"), b"")?;
        if !matches!(r.status, 200 | 204) {
            return Err(refused_json(&r));
        }
        Some(next_link(&r).ok_or_else(|| Fail::Integrity("the journal gave no next link".into()))?)
    } else {
        None
    };
    let r = who.call(c, "POST", "/process", body.to_string().as_bytes())?;
    if r.status != 200 {
        return Err(refused_json(&r));
    }
    let answer = r.json()?;
    let Some(mut next) = start else {
        return Ok(answer);
    };
    println!("{answer}");
    let request_id = answer["requestId"].as_str().unwrap_or_default().to_string();
    let want = body["renditions"].as_array().map_or(0, Vec::len);
    let (mut created, mut failed) = (0usize, Vec::new());
    let deadline = Instant::now() + timeout;
    while created + failed.len() < want {
        if Instant::now() > deadline {
            return Err(Fail::Renditions(format!(
                "{} of {want} renditions reported within {} s",
                created + failed.len(),
                timeout.as_secs()
            )));
        }
        let r = who.call(c, "GET", &next, b"")?;
        match r.status {
            200 => {
                for e in r.json()?["events"].as_array().into_iter().flatten() {
                    let event = &e["event"];
                    if event["requestId"].as_str() != Some(request_id.as_str()) {
                        continue;
                    }
                    println!("{event}");
                    match event["type"].as_str() {
                        Some("rendition_created") => created += 1,
                        _ => failed.push(
                            event["rendition"]["name"]
                                .as_str()
                                .unwrap_or("?")
                                .to_string(),
                        ),
                    }
                }
            }
            204 => {
                let wait = r
                    .header("retry-after")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1)
                    .min(2);
                std::thread::sleep(Duration::from_millis(200.max(wait * 1000 / 4)));
            }
            _ => return Err(refused_json(&r)),
        }
        next =
            next_link(&r).ok_or_else(|| Fail::Integrity("the journal gave no next link".into()))?;
    }
    if !failed.is_empty() {
        return Err(Fail::Renditions(format!(
            "{} of {want} renditions failed: {}",
            failed.len(),
            failed.join(", ")
        )));
    }
    Ok(json!({"requestId": request_id, "created": created}))
}
