//! File names that clients send: the safe name every response uses, and
//! `Content-Disposition` both ways (RFC 6266 with RFC 8187 `filename*=`).
//!
//! A submitted name is data, never a path: it may carry path components,
//! CR/LF, NUL or bidi overrides. [`safe_filename`] is the one rule that
//! turns it into a name a client can use as a path or put in a header;
//! decoding of `filename*=` and `X-Filename` is strict, so that garbage is
//! refused with a message instead of being stored.

use std::fmt;

/// Longest safe name, in bytes (the usual file-system limit).
pub const MAX_NAME_BYTES: usize = 255;
/// What is left when nothing of the submitted name survives.
pub const FALLBACK_NAME: &str = "file";
/// An extension this long or shorter survives truncation of a long name.
const MAX_KEPT_EXTENSION: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilenameError(pub String);

impl fmt::Display for FilenameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FilenameError {}

fn err<T>(message: impl Into<String>) -> Result<T, FilenameError> {
    Err(FilenameError(message.into()))
}

/// The safe form of a submitted file name: its base name only (after the
/// last `/` or `\`), without control characters (C0, DEL, C1) or invisible
/// bidi/format characters, with `< > : " | ? *` and slash look-alikes
/// replaced by `_`, leading dots and surrounding white space removed,
/// Windows device names (`CON`, `NUL.txt`, …) prefixed with `_`, at most
/// [`MAX_NAME_BYTES`] bytes (cut on a character boundary, the extension
/// kept), and [`FALLBACK_NAME`] when nothing is left. Idempotent.
pub fn safe_filename(original: &str) -> String {
    let cleaned: String = original
        .chars()
        .filter(|&c| !c.is_control() && !invisible(c))
        .map(|c| if reserved(c) { '_' } else { c })
        .collect();
    // Separators are looked for after the clean-up, so that no control
    // character can hide one.
    let base = cleaned.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name = trim_name(base).to_string();
    if device_name(&name) {
        name.insert(0, '_');
    }
    let name = truncate_keeping_extension(&name);
    if name.is_empty() {
        FALLBACK_NAME.to_string()
    } else {
        name
    }
}

/// Invisible characters that reorder or hide text (the `gpj.exe` trick),
/// and line separators. Joiners (U+200C/D) stay: scripts need them.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}' | '\u{200E}' | '\u{200F}'
        | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// Characters Windows refuses in names, and slashes that some systems map
/// to a real separator ("best fit" code pages).
fn reserved(c: char) -> bool {
    matches!(
        c,
        '<' | '>'
            | ':'
            | '"'
            | '|'
            | '?'
            | '*'
            | '\u{2044}'
            | '\u{2215}'
            | '\u{2216}'
            | '\u{29F8}'
            | '\u{29F9}'
            | '\u{FF0F}'
            | '\u{FF3C}'
    )
}

/// No leading dots (no hidden files, no `.`/`..`), no trailing dots or
/// white space (Windows drops them, so `a.exe.` would open as `a.exe`).
fn trim_name(s: &str) -> &str {
    s.trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
}

fn device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end();
    let upper = stem.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" => true,
        _ => {
            let b = upper.as_bytes();
            b.len() == 4
                && (upper.starts_with("COM") || upper.starts_with("LPT"))
                && b[3].is_ascii_digit()
        }
    }
}

fn truncate_keeping_extension(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_string();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= MAX_KEPT_EXTENSION => name.split_at(i),
        _ => (name, ""),
    };
    let mut cut = MAX_NAME_BYTES - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = trim_name(&stem[..cut]);
    if stem.is_empty() {
        return trim_name(ext).to_string();
    }
    format!("{stem}{ext}")
}

/// The `Content-Disposition` of a download: `attachment;
/// filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>` for the
/// safe form of `name`. Always printable ASCII, never a quote inside the
/// quoted value.
pub fn attachment(name: &str) -> String {
    let safe = safe_filename(name);
    format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_fallback(&safe),
        encode_ext_value(&safe)
    )
}

/// `name` for clients that ignore `filename*=`: printable ASCII, with `_`
/// for anything else and for `"`, `\` and `%` (some clients decode `%XX`
/// in `filename=`; RFC 6266 appendix D).
pub fn ascii_fallback(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '"' | '\\' | '%' => '_',
            ' '..='~' => c,
            _ => '_',
        })
        .collect()
}

/// RFC 8187 `attr-char`: sent as is in an `ext-value`.
fn attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

/// The percent-encoded part of `UTF-8''…` (RFC 8187).
pub fn encode_ext_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if attr_char(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes an RFC 8187 `ext-value` (`charset'[language]'value-chars`, the
/// form of `filename*=`): charset UTF-8 or ISO-8859-1, every byte either an
/// `attr-char` or a `%XX` escape, no NUL, and (for UTF-8) escapes that
/// decode to valid UTF-8. Anything else is an error naming the problem.
pub fn decode_ext_value(value: &str) -> Result<String, FilenameError> {
    let mut fields = value.splitn(3, '\'');
    let (Some(charset), Some(language), Some(encoded)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return err(format!(
            "`{}` is not an RFC 8187 value: expected charset'language'percent-encoded, \
             e.g. UTF-8''na%C3%AFve.jpg",
            shown(value)
        ));
    };
    if !language
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        || language.len() > 35
    {
        return err(format!(
            "`{}` is not a language tag (RFC 8187 value `{}`)",
            shown(language),
            shown(value)
        ));
    }
    let latin1 = if charset.eq_ignore_ascii_case("UTF-8") {
        false
    } else if charset.eq_ignore_ascii_case("ISO-8859-1") {
        true
    } else {
        return err(format!(
            "charset `{}` is not supported in an RFC 8187 value: use UTF-8 (or ISO-8859-1)",
            shown(charset)
        ));
    };
    let bytes = percent_decode_strict(encoded)?;
    // As `decode::percent_decode` does for every other decoded text.
    if bytes.contains(&0) {
        return err(format!(
            "`{}`: NUL (`%00`) is not allowed in a file name",
            shown(value)
        ));
    }
    if latin1 {
        return Ok(bytes.iter().map(|&b| b as char).collect());
    }
    utf8(bytes, encoded)
}

/// Decodes a file name sent in a header of its own (`X-Filename`) with the
/// strict [`crate::decode::percent_decode`]: `%XX` escapes decoded, other
/// characters kept, `+` kept; a `%` that does not start an escape, escapes
/// that do not decode to UTF-8, or a NUL are errors.
pub fn decode_header_name(value: &str) -> Result<String, FilenameError> {
    crate::decode::percent_decode(value.as_bytes(), false)
        .map_err(|e| FilenameError(format!("`{}`: {e}", shown(value))))
}

fn utf8(bytes: Vec<u8>, value: &str) -> Result<String, FilenameError> {
    String::from_utf8(bytes).map_err(|e| {
        FilenameError(format!(
            "`{}` does not decode to UTF-8 (invalid byte sequence at decoded byte {}); \
             percent-encode the UTF-8 bytes of the name",
            shown(value),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// RFC 8187 `value-chars` → bytes: `%XX` escapes and `attr-char`s only; a
/// lone `%`, a non-hex digit or any other character is an error. (Not
/// `decode::percent_decode`: this grammar is narrower, and ISO-8859-1
/// values decode to bytes that are not UTF-8.)
fn percent_decode_strict(s: &str) -> Result<Vec<u8>, FilenameError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |j: usize| b.get(j).and_then(|&c| (c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return err(format!(
                        "`{}`: the `%` at character {} does not start a %XX escape \
                         (send a literal `%` as `%25`)",
                        shown(s),
                        s[..i].chars().count() + 1
                    ));
                };
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            c if attr_char(c) => {
                out.push(c);
                i += 1;
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return err(format!(
                    "`{}`: {} must be percent-encoded in an RFC 8187 value",
                    shown(s),
                    describe(ch)
                ));
            }
        }
    }
    Ok(out)
}

fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("the character U+{:04X}", c as u32)
    } else {
        format!("`{c}`")
    }
}

/// A value quoted back in an error message: escaped, and cut short.
fn shown(s: &str) -> String {
    let escaped: String = s
        .chars()
        .map(|c| {
            if c.is_control() || invisible(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    match escaped.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &escaped[..i]),
        None => escaped,
    }
}

/// A parsed `Content-Disposition` (of a multipart part or a request).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disposition {
    /// `form-data`, `attachment`, … (lower-cased).
    pub kind: String,
    pub name: Option<String>,
    /// `filename*=` decoded when present (RFC 6266 §4.3), else `filename=`.
    pub filename: Option<String>,
}

/// Parses `form-data; name="file"; filename="a b.png"` (RFC 6266, RFC
/// 7578). Quoted values take `\"` and `\\` escapes; any other backslash is
/// kept, as old browsers sent Windows paths unescaped. A repeated
/// parameter, an unterminated quote or a malformed `filename*=` is an
/// error.
pub fn parse_disposition(value: &str) -> Result<Disposition, FilenameError> {
    let (kind, rest) = value.split_once(';').unwrap_or((value, ""));
    let kind = kind.trim();
    if kind.is_empty() || !kind.bytes().all(token_char) {
        return err(format!(
            "`{}` is not a disposition type (expected e.g. form-data or attachment)",
            shown(kind)
        ));
    }
    let params = parameters(rest)?;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let filename = match get("filename*") {
        Some(ext) => Some(
            decode_ext_value(&ext)
                .map_err(|e| FilenameError(format!("`filename*` parameter: {}", e.0)))?,
        ),
        None => get("filename"),
    };
    Ok(Disposition {
        kind: kind.to_ascii_lowercase(),
        name: get("name"),
        filename,
    })
}

/// RFC 9110 `tchar`.
fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `; a=1; b="x y"` → lower-cased names with their (unquoted) values.
/// Unquoted values run to the next `;` (some clients leave spaces in them).
pub fn parameters(mut rest: &str) -> Result<Vec<(String, String)>, FilenameError> {
    let mut out: Vec<(String, String)> = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        let semi = rest.find(';');
        let eq = match rest.find('=') {
            Some(e) if semi.is_none_or(|s| e < s) => e,
            // A stray `;` or a bare word: nothing to take, nothing unsafe.
            _ => match semi {
                Some(s) => {
                    rest = &rest[s + 1..];
                    continue;
                }
                None => return Ok(out),
            },
        };
        let (key, after) = (&rest[..eq], &rest[eq + 1..]);
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(token_char) {
            return err(format!("`{}` is not a parameter name", shown(key)));
        }
        let after = after.trim_start();
        let (val, tail) = match after.strip_prefix('"') {
            Some(quoted) => {
                let (val, tail) = unquote(quoted).ok_or_else(|| {
                    FilenameError(format!("the quoted value of `{key}` is not terminated"))
                })?;
                let tail = tail.trim_start();
                if !(tail.is_empty() || tail.starts_with(';')) {
                    return err(format!(
                        "unexpected `{}` after the quoted value of `{key}`",
                        shown(tail)
                    ));
                }
                (val, tail)
            }
            None => {
                let end = after.find(';').unwrap_or(after.len());
                (after[..end].trim_end().to_string(), &after[end..])
            }
        };
        let key = key.to_ascii_lowercase();
        if out.iter().any(|(k, _)| *k == key) {
            return err(format!("parameter `{key}` is given twice"));
        }
        out.push((key, val));
        rest = tail.strip_prefix(';').unwrap_or(tail);
    }
}

/// The text of a quoted string (after its opening quote) and what follows
/// its closing quote; `None` when it never closes.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.peek() {
                Some(&(_, n @ ('"' | '\\'))) => {
                    out.push(n);
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn safe_names() {
        let long_stem = "é".repeat(200);
        let cases: &[(&str, &str)] = &[
            ("photo.jpg", "photo.jpg"),
            ("../../etc/passwd", "passwd"),
            ("..\\..\\x", "x"),
            ("C:\\Users\\me\\Desktop\\a b.png", "a b.png"),
            ("/abs/path/", FALLBACK_NAME),
            ("dir/..", FALLBACK_NAME),
            ("..", FALLBACK_NAME),
            ("...", FALLBACK_NAME),
            ("", FALLBACK_NAME),
            ("   ", FALLBACK_NAME),
            (".htaccess", "htaccess"),
            ("evil\r\nSet-Cookie: x=1.txt", "evilSet-Cookie_ x=1.txt"),
            ("a\0b.txt", "ab.txt"),
            ("a\u{7f}\u{85}\u{9b}b", "ab"),
            ("inv\u{202E}gpj.exe", "invgpj.exe"),
            ("..\u{0}/..\u{0}/x", "x"),
            ("a\u{FF0F}b", "a_b"),
            ("what?<*>|\".jpg", "what______.jpg"),
            ("name.pdf.", "name.pdf"),
            ("  spaced.txt  ", "spaced.txt"),
            ("été 日本.jpg", "été 日本.jpg"),
            ("CON", "_CON"),
            ("nul.txt", "_nul.txt"),
            ("com1.log", "_com1.log"),
            ("console.txt", "console.txt"),
            ("percent%2F..%2Fx", "percent%2F..%2Fx"),
        ];
        for (input, want) in cases {
            assert_eq!(safe_filename(input), *want, "safe_filename({input:?})");
        }
        let long = format!("{long_stem}.jpeg");
        let s = safe_filename(&long);
        assert!(s.len() <= MAX_NAME_BYTES && s.ends_with(".jpeg"), "{s}");
        assert_eq!(safe_filename(&"x".repeat(1000)).len(), MAX_NAME_BYTES);
        let odd_ext = format!("a.{}", "é".repeat(300));
        assert!(safe_filename(&odd_ext).len() <= MAX_NAME_BYTES);
    }

    #[test]
    fn disposition_headers() {
        assert_eq!(
            attachment("photo.jpg"),
            "attachment; filename=\"photo.jpg\"; filename*=UTF-8''photo.jpg"
        );
        assert_eq!(
            attachment("../été \"q\".jpg"),
            "attachment; filename=\"_t_ _q_.jpg\"; filename*=UTF-8''%C3%A9t%C3%A9%20_q_.jpg"
        );
        assert_eq!(
            attachment("a\r\nb%41.txt"),
            "attachment; filename=\"ab_41.txt\"; filename*=UTF-8''ab%2541.txt"
        );
    }

    #[test]
    fn strict_decoding() {
        let ok: &[(&str, &str)] = &[
            ("UTF-8''%C3%A9t%C3%A9.jpg", "été.jpg"),
            ("utf-8'fr'a%20b", "a b"),
            ("ISO-8859-1'en'%E9t%E9", "été"),
            ("UTF-8''", ""),
        ];
        for (v, want) in ok {
            assert_eq!(decode_ext_value(v).unwrap(), *want, "{v}");
        }
        let bad = [
            "UTF-8''%C3é",
            "UTF-8''%",
            "UTF-8''100%",
            "UTF-8''%FF",
            "UTF-8''%G1",
            "UTF-8''%C3",
            "UTF-8''a%00b",
            "ISO-8859-1''%00",
            "UTF-8''a b",
            "UTF-8''été",
            "UTF-8''a\"b",
            "UTF-8''a'b",
            "latin2''x",
            "UTF-8'f r'x",
            "no-quotes",
            "UTF-8'x",
        ];
        for v in bad {
            let e = decode_ext_value(v).unwrap_err();
            assert!(!e.0.is_empty(), "{v}");
        }
        assert_eq!(decode_header_name("a%20b%C3%A9").unwrap(), "a bé");
        assert_eq!(decode_header_name("raw é.jpg").unwrap(), "raw é.jpg");
        assert_eq!(decode_header_name("a+b").unwrap(), "a+b");
        for v in ["%C3é", "%", "100%", "%FF", "%zz", "a%2", "%C3", "a%00b"] {
            assert!(decode_header_name(v).is_err(), "{v}");
        }
    }

    #[test]
    fn parsing_dispositions() {
        let d = parse_disposition("form-data; name=\"file\"; filename=\"te\\\"st.png\"").unwrap();
        assert_eq!(d.kind, "form-data");
        assert_eq!(d.name.as_deref(), Some("file"));
        assert_eq!(d.filename.as_deref(), Some("te\"st.png"));
        let d = parse_disposition(
            "form-data; name=f; filename=\"x.jpg\"; filename*=UTF-8''%C3%A9t%C3%A9.jpg",
        )
        .unwrap();
        assert_eq!(d.filename.as_deref(), Some("été.jpg"));
        let d = parse_disposition("Attachment; FileName=\"C:\\dir\\a.jpg\";").unwrap();
        assert_eq!(d.kind, "attachment");
        assert_eq!(d.filename.as_deref(), Some("C:\\dir\\a.jpg"));
        let d = parse_disposition("attachment; filename=my file.jpg").unwrap();
        assert_eq!(d.filename.as_deref(), Some("my file.jpg"));
        let d = parse_disposition("form-data; stray; ; name=a").unwrap();
        assert_eq!(d.name.as_deref(), Some("a"));
        let d = parse_disposition("form-data; name=\"a;b\"; filename=\"c;d\"").unwrap();
        assert_eq!(d.name.as_deref(), Some("a;b"));
        assert_eq!(d.filename.as_deref(), Some("c;d"));
        for bad in [
            "form-data; filename=\"unterminated",
            "form-data; name=a; name=b",
            "form-data; filename*=UTF-8''%C3é",
            "form-data; filename=\"a\"junk",
            "form data; name=a",
            "; name=a",
            "form-data; na me=a",
        ] {
            assert!(parse_disposition(bad).is_err(), "{bad}");
        }
    }

    fn hostile_name() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("../".to_string()),
            Just("..\\".to_string()),
            Just(".".to_string()),
            Just("\r\n".to_string()),
            Just("\0".to_string()),
            Just("\"".to_string()),
            Just("%".to_string()),
            Just("\u{202E}".to_string()),
            Just("CON".to_string()),
            Just(" ".to_string()),
            "[a-z]{1,8}",
            any::<char>().prop_map(String::from),
            "\\PC{0,300}",
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn safe_names_are_safe(name in hostile_name()) {
            let s = safe_filename(&name);
            prop_assert!(!s.is_empty());
            prop_assert!(s.len() <= MAX_NAME_BYTES);
            prop_assert!(!s.contains(['/', '\\']), "{:?}", s);
            prop_assert!(!s.chars().any(|c| c.is_control() || invisible(c) || reserved(c)), "{:?}", s);
            prop_assert!(!s.starts_with('.') && !s.ends_with('.'), "{:?}", s);
            prop_assert_eq!(s.trim(), s.as_str());
            prop_assert!(!device_name(&s), "{:?}", s);
            prop_assert_eq!(safe_filename(&s), s.clone(), "idempotent");
        }

        #[test]
        fn dispositions_are_ascii_and_round_trip(name in hostile_name()) {
            let header = attachment(&name);
            prop_assert!(header.bytes().all(|b| (b' '..=b'~').contains(&b)), "{:?}", header);
            let d = parse_disposition(&header).unwrap();
            prop_assert_eq!(d.kind, "attachment");
            prop_assert_eq!(d.filename.unwrap(), safe_filename(&name));
            let fallback = header.split('"').nth(1).unwrap();
            prop_assert_eq!(fallback, ascii_fallback(&safe_filename(&name)));
        }

        #[test]
        fn ext_values_round_trip(s in "\\PC{0,200}") {
            prop_assert_eq!(decode_ext_value(&format!("UTF-8''{}", encode_ext_value(&s))).unwrap(), s);
        }

        #[test]
        fn decoding_never_panics(s in "\\PC{0,40}|[%A-Fa-f0-9'é]{0,20}") {
            let _ = decode_ext_value(&s);
            let _ = decode_header_name(&s);
            let _ = parse_disposition(&format!("form-data; filename*={s}"));
            let _ = parse_disposition(&s);
        }
    }
}
