//! Query strings and form bodies: [`parse_strict`] for request data
//! (through [`crate::decode`], the one strict decoder), the encoders, and
//! the lenient readers older callers still use.

use crate::decode::{self, DecodeError};
use std::fmt;

/// Lenient decoding: invalid escapes are kept as they are and bytes that
/// are not UTF-8 become U+FFFD. Not for request data, whose meaning it
/// may change silently: use [`decode::percent_decode`], which refuses
/// them.
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            // Bytes, not a `str` slice: the two characters after `%` may
            // be one multi-byte character, and a sign is not a hex digit.
            b'%' if i + 2 < b.len() => match (hex_digit(b[i + 1]), hex_digit(b[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Percent-encodes everything but RFC 3986's unreserved characters (safe
/// in a path segment, a query value or a form field).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Pairs → an `application/x-www-form-urlencoded` body.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A `name=value` pair that does not decode: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairError {
    /// 1-based position of the pair.
    pub index: usize,
    /// The name, when it decoded (the value is then the culprit).
    pub name: Option<String>,
    /// Offsets count from the start of the name or the value.
    pub error: DecodeError,
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "the value of parameter `{name}`: {}", self.error),
            None => write!(f, "the name of parameter {}: {}", self.index, self.error),
        }
    }
}

impl std::error::Error for PairError {}

/// `a=1&b=x%20y` (a query string or an `application/x-www-form-urlencoded`
/// body, as bytes) → pairs, decoded strictly: a malformed escape or text
/// that is not UTF-8 anywhere is an error naming the parameter.
pub fn parse_strict(input: &[u8]) -> Result<Vec<(String, String)>, PairError> {
    input
        .split(|&b| b == b'&')
        .filter(|kv| !kv.is_empty())
        .enumerate()
        .map(|(i, kv)| {
            let (k, v) = match kv.iter().position(|&b| b == b'=') {
                Some(at) => (&kv[..at], &kv[at + 1..]),
                None => (kv, &kv[kv.len()..]),
            };
            let fail = |name: Option<String>, error| PairError {
                index: i + 1,
                name,
                error,
            };
            let name = decode::percent_decode(k, true).map_err(|e| fail(None, e))?;
            match decode::percent_decode(v, true) {
                Ok(value) => Ok((name, value)),
                Err(e) => Err(fail(Some(name), e)),
            }
        })
        .collect()
}

/// The first value of `name`, decoded strictly (every pair must decode).
pub fn get_strict(query: &str, name: &str) -> Result<Option<String>, PairError> {
    Ok(parse_strict(query.as_bytes())?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v))
}

/// `a=1&b=x%20y` → pairs, decoded leniently (see [`percent_decode`]);
/// request data goes through [`parse_strict`].
pub fn parse(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(kv, true), String::new()),
        })
        .collect()
}

/// The first value of `name`, decoded leniently; request data goes
/// through [`get_strict`].
pub fn get(query: &str, name: &str) -> Option<String> {
    parse(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b%2Fc", false), "a b/c");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz", false), "%zz");
        // A multi-byte character right after `%` (a panic once: the escape
        // was read as a `str` slice) and signs are not escapes.
        assert_eq!(percent_decode("a%éb", false), "a%éb");
        assert_eq!(percent_decode("%é", false), "%é");
        assert_eq!(percent_decode("%aé", false), "%aé");
        assert_eq!(percent_decode("%+1%-1", false), "%+1%-1");
        assert_eq!(percent_decode("%4a%4A", false), "JJ");
        assert_eq!(get("x=1&page=2&x=3", "x").as_deref(), Some("1"));
        assert_eq!(get("flag&y=", "flag").as_deref(), Some(""));
        assert_eq!(get("a=1", "b"), None);
        let odd = "p@ss:w/rd?#= +é";
        assert_eq!(percent_encode(odd), "p%40ss%3Aw%2Frd%3F%23%3D%20%2B%C3%A9");
        assert_eq!(percent_decode(&percent_encode(odd), true), odd);
        assert_eq!(
            parse(&form_encode(&[("a b", odd), ("c", "")])),
            [
                ("a b".to_string(), odd.to_string()),
                ("c".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn strict_parsing_names_the_culprit() {
        assert_eq!(
            parse_strict(b"a=1&&b=x%20y&flag&c=&=v").unwrap(),
            [
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("flag".into(), String::new()),
                ("c".into(), String::new()),
                (String::new(), "v".into())
            ]
        );
        assert_eq!(parse_strict(b"").unwrap(), []);
        assert_eq!(
            parse_strict(b"k=a=b").unwrap(),
            [("k".into(), "a=b".into())]
        );
        let table: &[(&[u8], usize, Option<&str>, DecodeError)] = &[
            (
                "name=%C3é".as_bytes(),
                1,
                Some("name"),
                DecodeError::NotUtf8 { at: 0 },
            ),
            (
                b"a=1&b=100%",
                2,
                Some("b"),
                DecodeError::BadEscape { at: 3 },
            ),
            (b"a=1&%FF=1", 2, None, DecodeError::NotUtf8 { at: 0 }),
            (b"x=\xFF", 1, Some("x"), DecodeError::NotUtf8 { at: 0 }),
            (b"x=a%00", 1, Some("x"), DecodeError::Nul { at: 1 }),
            (b"%G1", 1, None, DecodeError::BadEscape { at: 0 }),
        ];
        for (input, index, name, error) in table {
            let e = parse_strict(input).unwrap_err();
            assert_eq!(
                (e.index, e.name.as_deref(), e.error),
                (*index, *name, *error),
                "{}",
                String::from_utf8_lossy(input)
            );
            assert!(e.to_string().contains("parameter"), "{e}");
        }
        assert_eq!(
            get_strict("x=1&y=%C3%A9", "y").unwrap().as_deref(),
            Some("é")
        );
        assert_eq!(get_strict("x=1", "y").unwrap(), None);
        // Another pair's garbage fails the whole string: it is one request.
        assert!(get_strict("x=1&y=%", "x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn strict_parsing_never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = parse_strict(&input);
        }

        #[test]
        fn form_encoding_round_trips(pairs in proptest::collection::vec(("[^\u{0}]{0,12}", "[^\u{0}]{0,12}"), 0..5)) {
            let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let parsed = parse_strict(form_encode(&refs).as_bytes()).unwrap();
            proptest::prop_assert_eq!(parsed, pairs);
        }
    }
}
