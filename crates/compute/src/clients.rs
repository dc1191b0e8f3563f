//! Who may call: clients configured in the `compute_clients` variable, each
//! an API key, an IMS organisation and the SHA-256 of its bearer token (the
//! token itself is never stored). Tokens are compared in constant time and
//! never logged.

use crate::error::{ApiError, ApiResult};
use assetgate_web::secret::constant_time_eq;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// Stable name: keys the registration and the journal.
    pub name: String,
    pub api_key: String,
    pub org: String,
    /// Hex SHA-256 of the bearer token.
    pub token_sha256: String,
    /// Overrides `compute_max_in_flight` for this client.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Clients(Vec<Client>);

/// The headers that identify a caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    pub authorization: Option<&'a str>,
    pub api_key: Option<&'a str>,
    /// `x-gw-ims-org-id`, else `x-ims-org-id`.
    pub org: Option<&'a str>,
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Clients {
    pub fn from_json(json: &str) -> Result<Clients, String> {
        let list: Vec<Client> = serde_json::from_str(json)
            .map_err(|e| format!("variable `compute_clients` is not a valid client list: {e}"))?;
        for (i, c) in list.iter().enumerate() {
            let name_ok = !c.name.is_empty()
                && c.name.len() <= 64
                && c.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !name_ok {
                return Err(format!(
                    "compute_clients: `{}` is not a valid client name (letters, digits, - _ .)",
                    c.name
                ));
            }
            if c.token_sha256.len() != 64 || hex::decode(&c.token_sha256).is_err() {
                return Err(format!(
                    "compute_clients: `{}` needs token_sha256 as 64 hex digits",
                    c.name
                ));
            }
            if c.api_key.is_empty() || c.org.is_empty() {
                return Err(format!(
                    "compute_clients: `{}` needs api_key and org",
                    c.name
                ));
            }
            if list[..i].iter().any(|o| o.name == c.name) {
                return Err(format!("compute_clients: `{}` is listed twice", c.name));
            }
        }
        Ok(Clients(list))
    }

    pub fn list(&self) -> &[Client] {
        &self.0
    }

    /// 401 without a known bearer token; 403 when the token is known but the
    /// API key or organisation is not that client's.
    pub fn authenticate(&self, c: Credentials<'_>) -> ApiResult<&Client> {
        let token = c
            .authorization
            .map(str::trim)
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(401, "an `Authorization: Bearer <token>` header is required")
            })?;
        let hash = token_hash(token);
        // Every entry is compared, so timing does not tell which matched.
        let mut found = None;
        for client in &self.0 {
            if constant_time_eq(
                hash.as_bytes(),
                client.token_sha256.to_ascii_lowercase().as_bytes(),
            ) {
                found = Some(client);
            }
        }
        let client = found.ok_or_else(|| ApiError::new(401, "invalid access token"))?;
        let key_ok = c
            .api_key
            .is_some_and(|k| constant_time_eq(k.trim().as_bytes(), client.api_key.as_bytes()));
        if !key_ok {
            return Err(ApiError::new(
                403,
                "the x-api-key header does not match this token's client",
            ));
        }
        if c.org.map(str::trim) != Some(client.org.as_str()) {
            return Err(ApiError::new(
                403,
                "the x-gw-ims-org-id header does not match this token's organisation",
            ));
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients() -> Clients {
        Clients::from_json(&format!(
            r#"[{{"name":"aem","api_key":"key1","org":"ORG1@AdobeOrg","token_sha256":"{}"}}]"#,
            token_hash("s3cret")
        ))
        .unwrap()
    }

    #[test]
    fn statuses_by_what_is_wrong() {
        let c = clients();
        let ok = Credentials {
            authorization: Some("Bearer s3cret"),
            api_key: Some("key1"),
            org: Some("ORG1@AdobeOrg"),
        };
        assert_eq!(c.authenticate(ok).unwrap().name, "aem");
        let status = |cr: Credentials| c.authenticate(cr).unwrap_err().status;
        assert_eq!(
            status(Credentials {
                authorization: None,
                ..ok
            }),
            401
        );
        assert_eq!(
            status(Credentials {
                authorization: Some("Bearer nope"),
                ..ok
            }),
            401
        );
        assert_eq!(
            status(Credentials {
                authorization: Some("Basic s3cret"),
                ..ok
            }),
            401
        );
        assert_eq!(
            status(Credentials {
                api_key: Some("key2"),
                ..ok
            }),
            403
        );
        assert_eq!(
            status(Credentials {
                api_key: None,
                ..ok
            }),
            403
        );
        assert_eq!(
            status(Credentials {
                org: Some("ORG2@AdobeOrg"),
                ..ok
            }),
            403
        );
    }

    #[test]
    fn configuration_is_checked() {
        assert!(Clients::from_json("{}").is_err());
        assert!(
            Clients::from_json(r#"[{"name":"a b","api_key":"k","org":"o","token_sha256":"00"}]"#)
                .is_err()
        );
        let h = token_hash("t");
        let twice = format!(
            r#"[{{"name":"a","api_key":"k","org":"o","token_sha256":"{h}"}},{{"name":"a","api_key":"k","org":"o","token_sha256":"{h}"}}]"#
        );
        assert!(Clients::from_json(&twice).is_err());
    }
}
