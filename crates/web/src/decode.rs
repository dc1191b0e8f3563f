//! Strict decoding of request text: percent-escapes (and `+` in forms)
//! over raw bytes, to UTF-8 or a typed error. Every decoder of request
//! data — path segments, query strings, form bodies, credentials — goes
//! through [`percent_decode`], so malformed input is one error each
//! protocol answers in its own shape (400, 401 for credentials), never
//! replacement characters that silently change a name, nor a trap.

use std::fmt;

/// Why request text could not be decoded. Offsets are bytes of the input
/// as the client sent it (before decoding), so a client can find the spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A `%` not followed by two hexadecimal digits.
    BadEscape { at: usize },
    /// The bytes — decoded escapes together with the raw bytes around
    /// them — are not UTF-8 from here (e.g. `%C3` then a raw `é`, an
    /// overlong form such as `%C0%AF`, a surrogate such as `%ED%A0%80`).
    NotUtf8 { at: usize },
    /// A NUL character (`%00`, or raw): never text in these protocols,
    /// and it cuts names short in whatever stores them next.
    Nul { at: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadEscape { at } => write!(
                f,
                "the `%` at byte {at} is not followed by two hexadecimal digits \
                 (a literal `%` is written `%25`)"
            ),
            DecodeError::NotUtf8 { at } => write!(
                f,
                "the text is not valid UTF-8 from byte {at} once percent-decoded \
                 (escapes must encode UTF-8 bytes, e.g. `é` as `%C3%A9`)"
            ),
            DecodeError::Nul { at } => {
                write!(f, "the NUL character (`%00`) at byte {at} is not allowed")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `%XX` escapes, and `+` as a space when `plus` is set (form
/// bodies and query strings). The result must be UTF-8 without NUL.
pub fn percent_decode(input: &[u8], plus: bool) -> Result<String, DecodeError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some((byte, width)) = decode_at(input, i, plus)? {
        out.push(byte);
        i += width;
    }
    String::from_utf8(out).map_err(|e| DecodeError::NotUtf8 {
        at: input_offset(input, e.utf8_error().valid_up_to()),
    })
}

/// Whether `input` percent-decodes to ASCII only: no raw byte above 0x7F
/// and no escape of one. Such a value cannot fail as UTF-8, so
/// [`percent_decode_ascii_in_place`] can decode it without a copy.
pub fn decodes_to_ascii(input: &[u8]) -> bool {
    input.iter().enumerate().all(|(i, &c)| {
        c < 0x80
            && (c != b'%'
                || !matches!(
                    input.get(i + 1),
                    Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                ))
    })
}

/// [`percent_decode`] within `buf`, for a value that [`decodes_to_ascii`]:
/// the decoded text is `buf[..n]`. The same errors at the same offsets;
/// `buf` is left part-decoded on error. A base64 chunk in a form body is
/// the largest value a request carries, and decoding it into a copy held
/// both at once.
pub fn percent_decode_ascii_in_place(buf: &mut [u8], plus: bool) -> Result<usize, DecodeError> {
    debug_assert!(decodes_to_ascii(buf));
    let (mut r, mut w) = (0, 0);
    while let Some((byte, width)) = decode_at(buf, r, plus)? {
        // w <= r: a byte is written only after the input it came from.
        buf[w] = byte;
        w += 1;
        r += width;
    }
    Ok(w)
}

/// The byte that the input at `i` decodes to and how many input bytes it
/// takes; `None` at the end.
fn decode_at(input: &[u8], i: usize, plus: bool) -> Result<Option<(u8, usize)>, DecodeError> {
    let Some(&c) = input.get(i) else {
        return Ok(None);
    };
    let (byte, width) = match c {
        b'%' => match (hex(input.get(i + 1)), hex(input.get(i + 2))) {
            (Some(hi), Some(lo)) => (hi << 4 | lo, 3),
            _ => return Err(DecodeError::BadEscape { at: i }),
        },
        b'+' if plus => (b' ', 1),
        c => (c, 1),
    };
    if byte == 0 {
        return Err(DecodeError::Nul { at: i });
    }
    Ok(Some((byte, width)))
}

fn hex(c: Option<&u8>) -> Option<u8> {
    c.and_then(|&c| (c as char).to_digit(16)).map(|d| d as u8)
}

/// Where decoded byte `n` came from in `input` (which decoded cleanly up
/// to there: every `%` before it starts a valid escape).
fn input_offset(input: &[u8], n: usize) -> usize {
    let (mut i, mut produced) = (0, 0);
    while produced < n && i < input.len() {
        i += if input[i] == b'%' { 3 } else { 1 };
        produced += 1;
    }
    i.min(input.len())
}

#[cfg(test)]
mod tests {
    use super::DecodeError::*;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// In place, an ASCII-decoding value gives what the copying
        /// decoder gives, errors and offsets included; anything else is
        /// not taken for ASCII when it decodes to more.
        #[test]
        fn in_place_matches_the_copy(input in proptest::collection::vec(
            prop_oneof![Just(b'%'), Just(b'+'), Just(b'0'), Just(b'7'), Just(b'8'), Just(b'F'),
                        Just(b'a'), Just(b'z'), Just(0xC3u8), Just(0u8)], 0..24),
            plus in any::<bool>())
        {
            let copied = percent_decode(&input, plus);
            if decodes_to_ascii(&input) {
                let mut buf = input.clone();
                let in_place = percent_decode_ascii_in_place(&mut buf, plus)
                    .map(|n| String::from_utf8(buf[..n].to_vec()).unwrap());
                prop_assert_eq!(in_place, copied);
            } else if let Ok(text) = copied {
                prop_assert!(!text.is_ascii(), "{:?} decodes to ASCII {:?}", input, text);
            }
        }
    }

    #[test]
    fn accepts_well_formed_text() {
        let table: &[(&[u8], bool, &str)] = &[
            (b"", false, ""),
            (b"plain", false, "plain"),
            (b"a%20b%2Fc", false, "a b/c"),
            (b"%4a%4A", false, "JJ"),
            (b"a+b", true, "a b"),
            (b"a+b", false, "a+b"),
            (b"%2B", true, "+"),
            (b"caf%C3%A9", false, "café"),
            ("café".as_bytes(), false, "café"),
            (b"%E2%82%AC%F0%9F%98%80", false, "€😀"),
            // A raw multi-byte character next to escapes of another.
            (b"%C3%A9\xC3\xA9", false, "éé"),
            (b"%0A%09", false, "\n\t"),
        ];
        for (input, plus, expected) in table {
            assert_eq!(
                percent_decode(input, *plus).as_deref(),
                Ok(*expected),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn refuses_malformed_text_saying_where() {
        let table: &[(&[u8], DecodeError)] = &[
            (b"%", BadEscape { at: 0 }),
            (b"100%", BadEscape { at: 3 }),
            (b"%C", BadEscape { at: 0 }),
            (b"ab%C", BadEscape { at: 2 }),
            (b"%G1", BadEscape { at: 0 }),
            (b"%zz", BadEscape { at: 0 }),
            (b"%+1", BadEscape { at: 0 }),
            (b"%-1", BadEscape { at: 0 }),
            ("%é".as_bytes(), BadEscape { at: 0 }),
            ("a%éb".as_bytes(), BadEscape { at: 1 }),
            ("%aé".as_bytes(), BadEscape { at: 0 }),
            // `%C3` then a raw `é`: the trap.
            ("%C3é".as_bytes(), NotUtf8 { at: 0 }),
            ("x%C3é".as_bytes(), NotUtf8 { at: 1 }),
            ("é%C3".as_bytes(), NotUtf8 { at: 2 }),
            (b"%FF", NotUtf8 { at: 0 }),
            (b"ok%FF", NotUtf8 { at: 2 }),
            (b"%C0%AF", NotUtf8 { at: 0 }),
            (b"%ED%A0%80", NotUtf8 { at: 0 }),
            (b"%E2%82", NotUtf8 { at: 0 }),
            (b"%F0%9F%98", NotUtf8 { at: 0 }),
            (b"a%C3%28", NotUtf8 { at: 1 }),
            (b"raw\xFF", NotUtf8 { at: 3 }),
            (b"\xC3", NotUtf8 { at: 0 }),
            (b"%00", Nul { at: 0 }),
            (b"a\0", Nul { at: 1 }),
        ];
        for (input, expected) in table {
            assert_eq!(
                percent_decode(input, true),
                Err(*expected),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn messages_are_for_people() {
        for e in [BadEscape { at: 4 }, NotUtf8 { at: 0 }, Nul { at: 9 }] {
            let m = e.to_string();
            assert!(m.contains("byte"), "{m}");
            assert!(!m.contains('{') && !m.contains("at:"), "no Debug: {m}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..64), plus: bool) {
            match percent_decode(&input, plus) {
                Ok(s) => prop_assert!(!s.contains('\0')),
                Err(BadEscape { at } | NotUtf8 { at } | Nul { at }) => prop_assert!(at < input.len()),
            }
        }

        #[test]
        fn escapes_and_bytes_from_the_hostile_alphabet(
            parts in proptest::collection::vec(
                prop::sample::select(vec!["%", "%C3", "%A9", "é", "%G1", "%C0%AF", "%FF", "%00", "%ED%A0%80", "a", "+", "%2", "%25"]),
                0..12,
            ),
        ) {
            let input = parts.concat();
            let _ = percent_decode(input.as_bytes(), true);
        }

        #[test]
        fn any_text_round_trips_through_the_encoder(s in "[^\u{0}]{0,40}") {
            let encoded = crate::query::percent_encode(&s);
            prop_assert_eq!(percent_decode(encoded.as_bytes(), false), Ok(s.clone()));
            prop_assert_eq!(percent_decode(encoded.as_bytes(), true), Ok(s));
        }
    }
}
