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
            .map(assetgate_web::mime::essence)
            .unwrap_or_default();
        match mime.as_str() {
            _ if body.is_empty() => {}
            "application/x-www-form-urlencoded" | "" => {
                pairs = parse_form(body).map_err(|e| malformed("form body", e))?;
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

/// A form body as [`query::parse_strict`] reads it, but the first
/// `content` (the base64 chunk, most of the body) is percent-decoded where
/// it lies and becomes the body's own buffer: an 8 MiB chunk's request held
/// the body and a decoded copy, 22 MiB, where it now holds 11.
fn parse_form(mut body: Vec<u8>) -> Result<Vec<(String, String)>, query::PairError> {
    use assetgate_web::decode;
    let fail = |index, name, error| query::PairError { index, name, error };
    let mut pairs = Vec::new();
    let mut content = None;
    let (mut start, mut index) = (0, 0);
    while start < body.len() {
        let end = body[start..]
            .iter()
            .position(|&b| b == b'&')
            .map_or(body.len(), |p| start + p);
        if end > start {
            index += 1;
            let (key, value) = match body[start..end].iter().position(|&b| b == b'=') {
                Some(at) => (start..start + at, start + at + 1..end),
                None => (start..end, end..end),
            };
            let name =
                decode::percent_decode(&body[key], true).map_err(|e| fail(index, None, e))?;
            if name == "content"
                && content.is_none()
                && decode::decodes_to_ascii(&body[value.clone()])
            {
                content = Some((pairs.len(), value, index));
                pairs.push((name, String::new()));
            } else {
                let v = decode::percent_decode(&body[value], true)
                    .map_err(|e| fail(index, Some(name.clone()), e))?;
                pairs.push((name, v));
            }
        }
        start = end + 1;
    }
    if let Some((at, value, index)) = content {
        let name = || Some("content".to_string());
        let n = decode::percent_decode_ascii_in_place(&mut body[value.clone()], true)
            .map_err(|e| fail(index, name(), e))?;
        body.copy_within(value.start..value.start + n, 0);
        body.truncate(n);
        // ASCII by `decodes_to_ascii`: this cannot fail, and is not unwrapped.
        pairs[at].1 = String::from_utf8(body).map_err(|e| {
            fail(
                index,
                name(),
                decode::DecodeError::NotUtf8 {
                    at: e.utf8_error().valid_up_to(),
                },
            )
        })?;
    }
    Ok(pairs)
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

/// [`decode_base64`] in place: `text` is cleaned and decoded within its
/// own buffer. A chunk's base64 is the largest thing a request holds; a
/// cleaned copy and a decoded copy beside it were 18 MiB more linear
/// memory for an 8 MiB chunk.
pub fn decode_base64_owned(text: String) -> ApiResult<Vec<u8>> {
    let mut buf = text.into_bytes();
    buf.retain(|b| !matches!(b, b'\r' | b'\n'));
    for b in &mut buf {
        if *b == b' ' {
            *b = b'+';
        }
    }
    let n = buf.len();
    // The SIMD decoder may have written into `buf` when it fails: the
    // message is made from what is known before.
    let Ok(len) = base64_simd::STANDARD
        .decode_inplace(&mut buf)
        .map(|decoded| decoded.len())
    else {
        let why = if !n.is_multiple_of(4) {
            format!("{n} characters, not a multiple of 4; was it truncated?")
        } else {
            "a character outside the base64 alphabet, or padding in the wrong place".into()
        };
        return Err(ApiError::bad_request(
            "bad_base64",
            format!("`content` is not valid base64: {why}"),
        ));
    };
    buf.truncate(len);
    Ok(buf)
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
    use proptest::strategy::Strategy;

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
        // Non-zero bits after the last byte, padding inside, no padding.
        for bad in ["QR==", "QQ=A", "QQ", "QUI", "=QUJD", "QUJD="] {
            assert_eq!(decode_base64(bad).unwrap_err().code, "bad_base64", "{bad}");
        }
        assert_eq!(decode_base64("QQ==").unwrap(), b"A");
        assert_eq!(decode_base64("").unwrap(), b"");
    }

    proptest::proptest! {
        /// The form reader that decodes `content` in place reads what
        /// the strict query parser reads, and refuses what it refuses.
        #[test]
        fn in_place_form_matches_parse_strict(body in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(b"content=".to_vec()),
                proptest::strategy::Just(b"content".to_vec()),
                proptest::strategy::Just(b"hash=".to_vec()),
                proptest::strategy::Just(b"&".to_vec()),
                proptest::strategy::Just(b"=".to_vec()),
                proptest::strategy::Just(b"%2B".to_vec()),
                proptest::strategy::Just(b"%C3%A9".to_vec()),
                proptest::strategy::Just(b"%00".to_vec()),
                proptest::strategy::Just(b"%z".to_vec()),
                proptest::strategy::Just(b"+".to_vec()),
                proptest::strategy::Just(b"aGk=".to_vec()),
                proptest::strategy::Just(vec![0xC3]),
            ], 0..12).prop_map(|parts: Vec<Vec<u8>>| parts.concat()))
        {
            let strict = query::parse_strict(&body);
            let ours = parse_form(body.clone());
            proptest::prop_assert_eq!(ours.is_ok(), strict.is_ok(), "{:?}", String::from_utf8_lossy(&body));
            if let (Ok(a), Ok(b)) = (ours, strict) {
                proptest::prop_assert_eq!(a, b);
            }
        }
    }

    proptest::proptest! {
        /// The in-place SIMD decoder accepts and refuses exactly what the
        /// `base64` crate's strict decoder does (padding required, no
        /// stray trailing bits), and decodes to the same bytes.
        #[test]
        fn in_place_decoding_matches_the_base64_crate(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            damage in proptest::collection::vec((0usize..100, 0usize..6), 0..3),
        ) {
            use base64::Engine;
            let mut text = base64::engine::general_purpose::STANDARD.encode(&bytes).into_bytes();
            let junk = [b'=', b'*', b'-', b'A', b'/', b'_'];
            for (at, what) in damage {
                if text.is_empty() {
                    break;
                }
                let at = at % text.len();
                if what == 5 {
                    text.truncate(at);
                } else {
                    text[at] = junk[what];
                }
            }
            let expected = base64::engine::general_purpose::STANDARD.decode(&text).ok();
            let text = String::from_utf8(text).unwrap();
            proptest::prop_assert_eq!(decode_base64_owned(text).ok(), expected);
        }
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
