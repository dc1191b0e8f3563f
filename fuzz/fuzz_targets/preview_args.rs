//! `preview-args` and `rendition` (crates/preview/src/args.rs) and the
//! `If-None-Match` header (etag.rs), as the preview proxy reads them.
//!
//! Input: one byte picking the rendition, then the argument string.
//! Invariants: an accepted string's normalised form parses back to the same
//! arguments and is a fixed point; every value lies in its documented range;
//! output sizes are at least 1 × 1, inside the box, never upscaled, and a
//! crop is only accepted inside the image.
#![no_main]

use assetgate_fuzz::Input;
use assetgate_preview::args::{MAX_DIMENSION, PreviewArgs, Rendition};
use assetgate_preview::etag;
use libfuzzer_sys::fuzz_target;

const SOURCES: [(u32, u32); 7] = [
    (1, 1),
    (7, 3),
    (640, 480),
    (4000, 6000),
    (65_535, 1),
    (1, 65_535),
    (100_000, 70_000),
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let rendition =
        [Rendition::Preview, Rendition::Thumb, Rendition::Native][input.byte() as usize % 3];
    let raw = String::from_utf8_lossy(input.rest()).into_owned();

    if let Ok(r) = Rendition::parse(&raw) {
        assert_eq!(r.as_str(), raw, "a rendition is accepted only as spelt");
    }
    match PreviewArgs::parse(Some(&raw), rendition) {
        Ok(a) => check(&a, rendition),
        Err(e) => assert!(!e.0.is_empty(), "an error names what is wrong"),
    }

    // The same text as an If-None-Match header against a preview's tag.
    let tag = etag::preview(&"ab".repeat(32), rendition.as_str(), "x.jpg");
    if etag::none_match(Some(&raw), &tag) {
        assert!(
            raw.contains('*') || raw.contains(&tag[1..tag.len() - 1]),
            "{raw:?} matched {tag} without naming it"
        );
    }
});

fn check(a: &PreviewArgs, rendition: Rendition) {
    let n = a.normalized();
    let back = PreviewArgs::parse(Some(&n), rendition)
        .unwrap_or_else(|e| panic!("normalised `{n}` refused: {e}"));
    assert_eq!(&back, a, "`{n}` parses back to other arguments");
    assert_eq!(back.normalized(), n, "normalising is not idempotent");
    assert!((1..=100).contains(&a.quality));
    assert!(a.ppi.is_none_or(|p| (1..=2400).contains(&p)));
    for side in [a.max_width, a.max_height].into_iter().flatten() {
        assert!((1..=MAX_DIMENSION).contains(&side));
    }
    if let Some(c) = a.crop {
        assert!(c.width >= 1 && c.height >= 1);
        assert!(c.width.max(c.height).max(c.x).max(c.y) <= MAX_DIMENSION);
    }
    for (w, h) in SOURCES {
        let (sw, sh) = match a.crop {
            Some(c) => {
                let inside = c.x as u64 + c.width as u64 <= w as u64
                    && c.y as u64 + c.height as u64 <= h as u64;
                match a.output_size(w, h) {
                    Ok(_) => assert!(inside, "crop {c:?} accepted outside {w}x{h}"),
                    Err(_) => {
                        assert!(!inside, "crop {c:?} refused inside {w}x{h}");
                        continue;
                    }
                }
                (c.width, c.height)
            }
            None => (w, h),
        };
        let (ow, oh) = a.output_size(w, h).expect("checked above");
        assert!(ow >= 1 && oh >= 1, "empty output {ow}x{oh}");
        assert!(ow <= sw && oh <= sh, "{sw}x{sh} upscaled to {ow}x{oh}");
        if let Some(m) = a.max_width {
            assert!(ow <= m, "{ow} wider than maxWidth {m}");
        }
        if let Some(m) = a.max_height {
            assert!(oh <= m, "{oh} taller than maxHeight {m}");
        }
    }
}
