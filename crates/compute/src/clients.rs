//! Who may call: clients configured in the `compute_clients` variable, each
//! an API key, an IMS organisation and the SHA-256 of its bearer token (the
//! token itself is never stored). Tokens are compared in constant time and
//! never logged.

use crate::error::{ApiError, ApiResult};
use assetgate_identity::token::{constant_time_eq, lookup_key as token_hash};
use serde::Deserialize;

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

    /// Who is calling, from the headers alone (so a refusal never waits on
    /// a body). As the reference puts it, 401 is for an invalid access
    /// token or API key: no bearer token, a token nobody was issued, no
    /// `x-api-key`, or a key that is not the token's client. 403 is for a
    /// caller so identified who is not allowed what it asks: an
    /// organisation header other than its own.
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
        let key = c
            .api_key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::new(401, "an `x-api-key` header is required"))?;
        if !constant_time_eq(key.as_bytes(), client.api_key.as_bytes()) {
            return Err(ApiError::new(
                401,
                "invalid API key: the x-api-key header is not the key of this access token's client",
            ));
        }
        if c.org.map(str::trim) != Some(client.org.as_str()) {
            return Err(ApiError::new(
                403,
                "the x-gw-ims-org-id header must name this client's IMS organisation",
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

    /// Every way a credential can be wrong, alone: the status it gets, and
    /// a message that says which header to fix.
    #[test]
    fn statuses_by_what_is_wrong() {
        let c = clients();
        let ok = Credentials {
            authorization: Some("Bearer s3cret"),
            api_key: Some("key1"),
            org: Some("ORG1@AdobeOrg"),
        };
        assert_eq!(c.authenticate(ok).unwrap().name, "aem");
        let cases: Vec<(Credentials, u16, &str)> = vec![
            (
                Credentials {
                    authorization: None,
                    ..ok
                },
                401,
                "Authorization",
            ),
            (
                Credentials {
                    authorization: Some(""),
                    ..ok
                },
                401,
                "Authorization",
            ),
            (
                Credentials {
                    authorization: Some("Bearer"),
                    ..ok
                },
                401,
                "Authorization",
            ),
            (
                Credentials {
                    authorization: Some("Bearer  "),
                    ..ok
                },
                401,
                "Authorization",
            ),
            (
                Credentials {
                    authorization: Some("Basic s3cret"),
                    ..ok
                },
                401,
                "Authorization",
            ),
            (
                Credentials {
                    authorization: Some("Bearer nope"),
                    ..ok
                },
                401,
                "access token",
            ),
            (
                Credentials {
                    authorization: Some("Bearer s3cret2"),
                    ..ok
                },
                401,
                "access token",
            ),
            (
                Credentials {
                    api_key: None,
                    ..ok
                },
                401,
                "x-api-key",
            ),
            (
                Credentials {
                    api_key: Some(" "),
                    ..ok
                },
                401,
                "x-api-key",
            ),
            (
                Credentials {
                    api_key: Some("key2"),
                    ..ok
                },
                401,
                "x-api-key",
            ),
            (
                Credentials {
                    api_key: Some("key"),
                    ..ok
                },
                401,
                "x-api-key",
            ),
            (
                Credentials {
                    api_key: Some("KEY1"),
                    ..ok
                },
                401,
                "x-api-key",
            ),
            (Credentials { org: None, ..ok }, 403, "x-gw-ims-org-id"),
            (
                Credentials {
                    org: Some("ORG2@AdobeOrg"),
                    ..ok
                },
                403,
                "x-gw-ims-org-id",
            ),
        ];
        for (cr, status, names) in cases {
            let e = c.authenticate(cr).unwrap_err();
            assert_eq!(e.status, status, "{cr:?}");
            assert!(e.message.contains(names), "{cr:?}: {}", e.message);
            assert!(!e.message.contains("s3cret"), "{}", e.message);
        }
        // Surrounding blanks and the scheme's case do not matter.
        let loose = Credentials {
            authorization: Some("  bearer   s3cret "),
            api_key: Some(" key1 "),
            org: Some(" ORG1@AdobeOrg "),
        };
        assert_eq!(c.authenticate(loose).unwrap().name, "aem");
    }

    /// With two clients, each token goes only with its own key: a valid
    /// token with the other client's key is an invalid API key (401), not
    /// a forbidden caller.
    #[test]
    fn a_token_with_another_clients_key_is_401() {
        let c = Clients::from_json(&format!(
            r#"[{{"name":"a","api_key":"ka","org":"O@AdobeOrg","token_sha256":"{}"}},
                {{"name":"b","api_key":"kb","org":"O@AdobeOrg","token_sha256":"{}"}}]"#,
            token_hash("ta"),
            token_hash("tb")
        ))
        .unwrap();
        for (token, key, want) in [
            ("ta", "ka", Ok("a")),
            ("tb", "kb", Ok("b")),
            ("ta", "kb", Err(401)),
            ("tb", "ka", Err(401)),
        ] {
            let auth = format!("Bearer {token}");
            let got = c
                .authenticate(Credentials {
                    authorization: Some(&auth),
                    api_key: Some(key),
                    org: Some("O@AdobeOrg"),
                })
                .map(|c| c.name.as_str())
                .map_err(|e| e.status);
            assert_eq!(got, want, "{token} {key}");
        }
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
