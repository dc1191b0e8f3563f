//! Query strings and percent-decoding.

/// Decodes `%XX` escapes (and `+` as space when `plus` is set, for form
/// bodies). Invalid escapes are kept as they are.
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

/// `a=1&b=x%20y` → pairs, decoded.
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

/// The first value of `name`.
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
}
