//! `Range: bytes=…` for a single range (RFC 9110 §14). Multiple ranges are
//! answered with the whole representation, which the RFC allows.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable Range header: send everything (200).
    Full,
    /// `start..end` (end exclusive): send 206 with `Content-Range`.
    Partial { start: u64, end: u64 },
    /// Syntactically valid but outside the representation: 416.
    Unsatisfiable,
}

impl ByteRange {
    /// `Content-Range` value for a partial response.
    pub fn content_range(self, size: u64) -> Option<String> {
        match self {
            ByteRange::Partial { start, end } => Some(format!("bytes {start}-{}/{size}", end - 1)),
            ByteRange::Unsatisfiable => Some(format!("bytes */{size}")),
            ByteRange::Full => None,
        }
    }
}

/// Interprets a `Range` header against a representation of `size` bytes.
/// Malformed headers are ignored (→ `Full`), as RFC 9110 requires.
pub fn parse(header: Option<&str>, size: u64) -> ByteRange {
    let Some(h) = header else {
        return ByteRange::Full;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) if digits(b) => match b.parse::<u64>() {
            Ok(0) | Err(_) => ByteRange::Unsatisfiable,
            Ok(n) if size == 0 => {
                let _ = n;
                ByteRange::Unsatisfiable
            }
            Ok(n) => ByteRange::Partial {
                start: size.saturating_sub(n),
                end: size,
            },
        },
        // bytes=N-: from N to the end.
        (false, true) if digits(a) => match a.parse::<u64>() {
            Ok(start) if start < size => ByteRange::Partial { start, end: size },
            Ok(_) => ByteRange::Unsatisfiable,
            Err(_) => ByteRange::Full,
        },
        (false, false) if digits(a) && digits(b) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(start), Ok(last)) if start <= last => {
                if start >= size {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Partial {
                        start,
                        end: last.saturating_add(1).min(size),
                    }
                }
            }
            _ => ByteRange::Full,
        },
        _ => ByteRange::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ByteRange::*;

    #[test]
    fn table() {
        let cases: [(Option<&str>, u64, ByteRange); 14] = [
            (None, 10, Full),
            (Some("bytes=0-4"), 10, Partial { start: 0, end: 5 }),
            (Some("bytes=5-"), 10, Partial { start: 5, end: 10 }),
            (Some("bytes=-3"), 10, Partial { start: 7, end: 10 }),
            (Some("bytes=-30"), 10, Partial { start: 0, end: 10 }),
            (Some("bytes=8-100"), 10, Partial { start: 8, end: 10 }),
            (Some("bytes=10-"), 10, Unsatisfiable),
            (Some("bytes=10-20"), 10, Unsatisfiable),
            (Some("bytes=-0"), 10, Unsatisfiable),
            (Some("bytes=5-2"), 10, Full),
            (Some("bytes=0-1,4-5"), 10, Full),
            (Some("items=0-1"), 10, Full),
            (Some("bytes=a-b"), 10, Full),
            (Some("bytes=0-0"), 0, Unsatisfiable),
        ];
        for (h, size, expected) in cases {
            assert_eq!(parse(h, size), expected, "{h:?} of {size}");
        }
        assert_eq!(
            Partial { start: 0, end: 5 }.content_range(10).unwrap(),
            "bytes 0-4/10"
        );
        assert_eq!(Unsatisfiable.content_range(10).unwrap(), "bytes */10");
    }
}
