//! `Range` headers (crates/web/src/range.rs), as every download reads them.
//!
//! Input: one mode byte, the representation size (8 bytes, little-endian),
//! then either the header text (mode even) or two numbers and a form that
//! build a well-formed single range (mode odd), whose answer is known from
//! RFC 9110 §14.1.2 and checked exactly.
//! Invariants: a partial range is non-empty and lies within the size; its
//! `Content-Range` names it; a header without `bytes=` is ignored.
#![no_main]

use assetgate_fuzz::Input;
use assetgate_web::range::{ByteRange, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.byte();
    // Small sizes half of the time, where the edges are.
    let size = match mode & 2 {
        0 => input.u64(),
        _ => input.byte() as u64,
    };
    let (header, expected) = if mode & 1 == 0 {
        (String::from_utf8_lossy(input.rest()).into_owned(), None)
    } else {
        // Near the size unless mode bit 4 asks for any 64-bit value.
        let mut number = || match mode & 4 {
            0 => input.u64() % size.saturating_add(3),
            _ => input.u64(),
        };
        let (a, b) = (number(), number());
        let form = input.byte() % 3;
        let (h, e) = well_formed(a, b, form, size);
        (h, Some(e))
    };
    let got = parse(Some(&header), size);
    if let Some(e) = expected {
        assert_eq!(got, e, "{header:?} of {size}");
    }
    if !header.trim().starts_with("bytes=") {
        assert_eq!(got, ByteRange::Full, "{header:?} is not a byte range");
    }
    match got {
        ByteRange::Partial { start, end } => {
            assert!(
                start < end && end <= size,
                "{header:?} of {size}: {start}..{end}"
            );
            assert_eq!(
                got.content_range(size).unwrap(),
                format!("bytes {start}-{}/{size}", end - 1)
            );
        }
        ByteRange::Unsatisfiable => {
            assert_eq!(got.content_range(size).unwrap(), format!("bytes */{size}"));
        }
        ByteRange::Full => assert_eq!(got.content_range(size), None),
    }
    assert_eq!(parse(None, size), ByteRange::Full);
});

/// `bytes=a-b`, `bytes=a-` or `bytes=-b`, and what RFC 9110 says of it.
fn well_formed(a: u64, b: u64, form: u8, size: u64) -> (String, ByteRange) {
    use ByteRange::*;
    match form {
        0 => (
            format!("bytes={a}-{b}"),
            if a > b {
                Full // invalid: ignored
            } else if a >= size {
                Unsatisfiable
            } else {
                Partial {
                    start: a,
                    end: b.saturating_add(1).min(size),
                }
            },
        ),
        1 => (
            format!("bytes={a}-"),
            if a >= size {
                Unsatisfiable
            } else {
                Partial {
                    start: a,
                    end: size,
                }
            },
        ),
        _ => (
            format!("bytes=-{b}"),
            if b == 0 || size == 0 {
                Unsatisfiable
            } else {
                Partial {
                    start: size - b.min(size),
                    end: size,
                }
            },
        ),
    }
}
