//! Request parameters, wherever the client put them: an
//! `application/x-www-form-urlencoded` body (what `Zend_Rest_Client`
//! sends), `multipart/form-data`, or the query string. A raw
//! `application/octet-stream` body is the chunk itself, its parameters in
//! the query string (assetgate's extension: no base64 overhead).

use crate::error::{ApiError, ApiResult};
use assetgate_web::multipart::{self, Event};
use assetgate_web::query;
use base64::Engine;

pub struct Params {
    /// Body parameters first, then the query string's: the first wins.
    pairs: Vec<(String, String)>,
    raw: Option<Vec<u8>>,
}

impl Params {
    pub fn parse(
        query_string: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> ApiResult<Params> {
        let mut pairs = Vec::new();
        let mut raw = None;
        let mime = content_type
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match mime.as_str() {
            _ if body.is_empty() => {}
            "application/x-www-form-urlencoded" | "" => {
                pairs = query::parse_strict(&body).map_err(|e| malformed("form body", e))?;
            }
            "multipart/form-data" => pairs = multipart_fields(content_type.unwrap_or(""), &body)?,
            "application/octet-stream" => raw = Some(body),
            other => {
                return Err(ApiError::new(
                    415,
                    "unsupported_media_type",
                    format!(
                        "body type `{other}` is not accepted: send application/x-www-form-urlencoded, multipart/form-data or application/octet-stream"
                    ),
                ));
            }
        }
        pairs.extend(
            query::parse_strict(query_string.as_bytes())
                .map_err(|e| malformed("query string", e))?,
        );
        Ok(Params { pairs, raw })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    pub fn require(&self, name: &str) -> ApiResult<&str> {
        self.get(name).ok_or_else(|| {
            ApiError::bad_request(
                "missing_parameter",
                format!("parameter `{name}` is required"),
            )
        })
    }

    pub fn number(&self, name: &str) -> ApiResult<Option<u64>> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_parameter",
                        format!("parameter `{name}` must be a whole number, got `{v}`"),
                    )
                })
            })
            .transpose()
    }

    /// A flag: `1`/`true`/`yes` or `0`/`false`/`no`; absent → `None`.
    pub fn flag(&self, name: &str) -> ApiResult<Option<bool>> {
        self.get(name)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => Ok(true),
                "0" | "false" | "no" => Ok(false),
                _ => Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("parameter `{name}` must be 1 or 0, got `{v}`"),
                )),
            })
            .transpose()
    }

    /// An MD5 in hex (any case), lower-cased.
    pub fn md5(&self, name: &str) -> ApiResult<Option<String>> {
        self.get(name)
            .map(|v| {
                let v = v.trim();
                if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(v.to_ascii_lowercase())
                } else {
                    Err(ApiError::bad_request(
                        "invalid_parameter",
                        format!("parameter `{name}` must be an MD5 in hex (32 characters)"),
                    ))
                }
            })
            .transpose()
    }

    /// The chunk: the raw body, or the base64 `content` parameter decoded.
    pub fn take_content(&mut self) -> ApiResult<Vec<u8>> {
        if let Some(raw) = self.raw.take() {
            return Ok(raw);
        }
        let i = self
            .pairs
            .iter()
            .position(|(k, _)| k == "content")
            .ok_or_else(|| {
                ApiError::bad_request("missing_parameter", "parameter `content` is required")
            })?;
        let text = std::mem::take(&mut self.pairs[i].1);
        decode_base64_owned(text)
    }
}

fn malformed(what: &str, e: query::PairError) -> ApiError {
    ApiError::bad_request("invalid_encoding", format!("malformed {what}: {e}"))
}

/// Standard base64 with padding. Line breaks (MIME-wrapped output) are
/// ignored and spaces read as `+`: a form encoder that left `+` unescaped
/// turned it into a space, and base64 has no spaces of its own.
pub fn decode_base64(text: &str) -> ApiResult<Vec<u8>> {
    decode_base64_owned(text.to_owned())
}

/// [`decode_base64`], cleaning `text` in place: a chunk's base64 is the
/// largest thing a request holds, and a cleaned copy beside it was 10.7 MiB
/// more linear memory for an 8 MiB chunk.
pub fn decode_base64_owned(text: String) -> ApiResult<Vec<u8>> {
    let mut cleaned = text.into_bytes();
    cleaned.retain(|b| !matches!(b, b'\r' | b'\n'));
    for b in &mut cleaned {
        if *b == b' ' {
            *b = b'+';
        }
    }
    base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .map_err(|e| {
            ApiError::bad_request(
                "bad_base64",
                format!("`content` is not valid base64 ({e}); was it truncated?"),
            )
        })
}

pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn multipart_fields(content_type: &str, body: &[u8]) -> ApiResult<Vec<(String, String)>> {
    let bad = |m: String| ApiError::bad_request("invalid_parameter", m);
    let boundary = multipart::boundary(content_type)
        .ok_or_else(|| bad("multipart body without a boundary".into()))?;
    let mut parser = multipart::Parser::new(&boundary);
    let mut fields = Vec::new();
    let mut current: Option<(String, Vec<u8>)> = None;
    for event in parser.feed(body).map_err(|e| bad(e.to_string()))? {
        match event {
            Event::Part(h) => current = Some((h.name.unwrap_or_default(), Vec::new())),
            Event::Data(d) => {
                if let Some((_, buf)) = &mut current {
                    buf.extend_from_slice(&d);
                }
            }
            Event::PartEnd => {
                if let Some((name, buf)) = current.take() {
                    let value = String::from_utf8(buf)
                        .map_err(|_| bad(format!("multipart field `{name}` is not UTF-8")))?;
                    fields.push((name, value));
                }
            }
            Event::End => {}
        }
    }
    parser.finish().map_err(|e| bad(e.to_string()))?;
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_then_query_first_wins() {
        let p = Params::parse(
            "hash=fromquery&chunk_index=3",
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            b"hash=abc&content=aGk%3D&empty=".to_vec(),
        )
        .unwrap();
        assert_eq!(p.get("hash"), Some("abc"));
        assert_eq!(p.number("chunk_index").unwrap(), Some(3));
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.require("nope").unwrap_err().code, "missing_parameter");
    }

    #[test]
    fn base64_tolerates_unescaped_plus_and_wrapping_but_not_truncation() {
        // "+/8=" is [0xfb, 0xff]; a careless encoder sends "+" raw → space.
        let p = Params::parse("", None, b"content=+/8=".to_vec()).unwrap();
        let mut p = p;
        assert_eq!(p.take_content().unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_base64("aGVs\r\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap_err().code, "bad_base64");
        assert_eq!(decode_base64("aGVs*G8=").unwrap_err().code, "bad_base64");
    }

    #[test]
    fn raw_body_and_multipart() {
        let mut p =
            Params::parse("hash=x", Some("application/octet-stream"), vec![1, 2, 3]).unwrap();
        assert_eq!(p.take_content().unwrap(), vec![1, 2, 3]);
        assert_eq!(p.get("hash"), Some("x"));
        let body = b"--B\r\nContent-Disposition: form-data; name=\"filename\"\r\n\r\na b.txt\r\n--B\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\naGk=\r\n--B--\r\n";
        let mut p =
            Params::parse("", Some("multipart/form-data; boundary=B"), body.to_vec()).unwrap();
        assert_eq!(p.get("filename"), Some("a b.txt"));
        assert_eq!(p.take_content().unwrap(), b"hi");
        assert_eq!(
            Params::parse("", Some("application/json"), b"{}".to_vec())
                .err()
                .unwrap()
                .status,
            415
        );
    }

    #[test]
    fn malformed_encoding_anywhere_is_invalid_encoding() {
        let form = Some("application/x-www-form-urlencoded");
        let bodies: [&[u8]; 8] = [
            "filename=%C3é".as_bytes(),
            b"filename=%",
            b"filename=%G1",
            b"filename=a%C",
            b"filename=%C0%AF",
            b"filename=%FF",
            b"filename=%00",
            b"%ED%A0%80=1",
        ];
        for body in bodies {
            let e = Params::parse("", form, body.to_vec()).err().unwrap();
            assert_eq!((e.status, e.code), (400, "invalid_encoding"), "{e:?}");
            assert!(e.message.starts_with("malformed form body: "), "{e:?}");
            let query = String::from_utf8(body.to_vec()).unwrap_or_else(|_| "x=%FF".into());
            let e = Params::parse(&query, None, Vec::new()).err().unwrap();
            assert_eq!((e.status, e.code), (400, "invalid_encoding"), "{e:?}");
            assert!(e.message.starts_with("malformed query string: "), "{e:?}");
        }
        // Raw bytes that are not UTF-8 in a form body.
        let e = Params::parse("", form, b"comment=\xff".to_vec())
            .err()
            .unwrap();
        assert_eq!(e.code, "invalid_encoding");
    }

    #[test]
    fn typed_values() {
        let p = Params::parse(
            "n=x&f=2&h=ABCDEF0123456789abcdef0123456789&g=z",
            None,
            vec![],
        )
        .unwrap();
        assert_eq!(p.number("n").unwrap_err().code, "invalid_parameter");
        assert!(p.flag("f").is_err());
        assert_eq!(
            p.md5("h").unwrap().unwrap(),
            "abcdef0123456789abcdef0123456789"
        );
        assert!(p.md5("g").is_err());
    }
}
