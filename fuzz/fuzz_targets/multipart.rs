//! The streaming `multipart/form-data` parser (crates/web/src/multipart.rs)
//! behind every upload, the boundary parameter, and the content type an
//! upload records (mime.rs).
//!
//! Input: a boundary (NUL-terminated), one byte giving how many cuts, two
//! bytes per cut, then the body. The body is fed whole, then in the pieces
//! the cuts make (as a request body arrives in arbitrary chunks).
//! Invariants: every chunking gives the same parts, the same data and the
//! same verdict as one feed; events are well nested (part, data, end of
//! part, …, one final end); no empty data events; no more data out than in;
//! a boundary read from a content type is 1–70 characters.
#![no_main]

use assetgate_fuzz::Input;
use assetgate_web::mime;
use assetgate_web::multipart::{Event, Parser, PartHeaders, boundary};
use libfuzzer_sys::fuzz_target;

/// Parts as (headers, data), whether the closing boundary was seen, and
/// whether the body was refused (with the parts seen before).
#[derive(Debug, PartialEq)]
struct Outcome {
    parts: Vec<(PartHeaders, Vec<u8>)>,
    ended: bool,
    refused: bool,
    complete: bool,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let b = input.text();
    // The parameter as a client writes it, read back as the components do.
    let ct = format!("multipart/form-data; boundary={b}");
    let bnd = boundary(&ct);
    if let Some(x) = &bnd {
        assert!(!x.is_empty() && x.len() <= 70, "boundary {x:?}");
    }
    let bnd = bnd.unwrap_or_else(|| "XyZ".to_string());
    let ncuts = (input.byte() % 16) as usize;
    let mut cuts: Vec<usize> = (0..ncuts).map(|_| input.u16() as usize).collect();
    let body = input.rest();
    for c in &mut cuts {
        *c %= body.len() + 1;
    }
    cuts.sort_unstable();

    let whole = run(&bnd, &[body]);
    let mut pieces = Vec::new();
    let mut last = 0;
    for c in cuts {
        pieces.push(&body[last..c]);
        last = c;
    }
    pieces.push(&body[last..]);
    let chunked = run(&bnd, &pieces);
    assert_eq!(whole, chunked, "chunking changed the outcome");

    let total: usize = whole.parts.iter().map(|(_, d)| d.len()).sum();
    assert!(total <= body.len());
    for (h, d) in &whole.parts {
        let t = mime::resolve(
            h.content_type.as_deref(),
            d,
            h.filename.as_deref().unwrap_or(""),
        );
        assert!(
            t.contains('/') && t == t.to_ascii_lowercase(),
            "content type {t:?}"
        );
    }
});

fn run(bnd: &str, pieces: &[&[u8]]) -> Outcome {
    let mut p = Parser::new(bnd);
    let mut out = Outcome {
        parts: Vec::new(),
        ended: false,
        refused: false,
        complete: false,
    };
    let mut in_part = false;
    for piece in pieces {
        let events = match p.feed(piece) {
            Ok(e) => e,
            Err(e) => {
                assert!(!e.0.is_empty());
                // One feed's events are lost with its error, so the parts
                // seen before depend on the chunking: only the verdict counts.
                out.refused = true;
                out.parts.clear();
                out.ended = false;
                return out;
            }
        };
        for e in events {
            assert!(!out.ended, "event {e:?} after the end");
            match e {
                Event::Part(h) => {
                    assert!(!in_part, "part inside a part");
                    in_part = true;
                    out.parts.push((h, Vec::new()));
                }
                Event::Data(d) => {
                    assert!(in_part, "data outside a part");
                    assert!(!d.is_empty(), "empty data event");
                    out.parts.last_mut().unwrap().1.extend(d);
                }
                Event::PartEnd => {
                    assert!(in_part, "end of part outside a part");
                    in_part = false;
                }
                Event::End => {
                    assert!(!in_part, "end inside a part");
                    out.ended = true;
                }
            }
        }
    }
    out.complete = p.finish().is_ok();
    assert_eq!(out.complete, out.ended, "finish disagrees with the events");
    out
}
