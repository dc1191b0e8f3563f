//! The image header probe and the decoders behind the limits
//! (crates/imaging), as the preview proxy (crates/preview/src/pipeline.rs)
//! and Asset Compute (crates/compute/src/render.rs) run them on stored bytes:
//! JPEG (with its EXIF block, a TIFF header), PNG, GIF and WebP in; JPEG,
//! PNG, WebP, GIF and TIFF out; the declared density; the XMP packet.
//!
//! Input: one byte choosing the output (format, box, crop, which caller),
//! then the image. Limits are small (1 MP, 16 MiB of decode, 512-pixel
//! outputs) so each run stays short; the checks are the same. Previews are
//! also rendered under a 64 KiB decode budget, which sends PNGs through
//! the row path.
//! Invariants: a probe within the limits; an output of exactly the size the
//! arguments give for the probed source, never larger than the limit, that
//! decodes back to that size; refusals with 400, 413 or 422 and a message;
//! compute failures with an error reason.
#![no_main]

use assetgate_compute::Config;
use assetgate_compute::render;
use assetgate_compute::request::{Crop as ComputeCrop, Fmt, Rendition};
use assetgate_fuzz::Input;
use assetgate_imaging::{Limits, Probe, density};
use assetgate_preview::args::{Crop, Format, PreviewArgs};
use assetgate_preview::pipeline;
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_source_pixels: 1_000_000,
    max_source_bytes: 1 << 20,
    max_output_side: 512,
    max_decode_bytes: 16 << 20,
};
/// The same, with a decode budget so small that PNGs too large for it go
/// through the row path (crates/imaging/src/png_rows.rs).
const TIGHT: Limits = Limits {
    max_decode_bytes: 64 << 10,
    ..LIMITS
};
const BOXES: [Option<u32>; 4] = [None, Some(1), Some(37), Some(300)];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let sel = input.byte();
    let bytes = input.rest();
    let _ = assetgate_web::mime::sniff(bytes);
    let dpi = density::declared(bytes);
    let _ = (dpi.x, dpi.y);

    let probe = match assetgate_imaging::probe(bytes, &LIMITS) {
        Ok(p) => {
            assert!(p.width as u64 * p.height as u64 <= LIMITS.max_source_pixels);
            Some(p)
        }
        Err(e) => {
            assert!(matches!(e.status(), 413 | 422) && !e.message().is_empty());
            None
        }
    };
    let side = BOXES[(sel >> 2 & 3) as usize];
    let crop = (sel & 0x20 != 0).then_some((1u32, 2u32, 5u32, 3u32));
    if sel & 0x10 == 0 {
        preview(bytes, probe, sel & 3, side, crop);
    } else {
        compute(bytes, probe, sel & 3 | (sel >> 4) & 4, side, crop);
    }
});

fn preview(
    bytes: &[u8],
    probe: Option<Probe>,
    fmt: u8,
    side: Option<u32>,
    crop: Option<(u32, u32, u32, u32)>,
) {
    let args = PreviewArgs {
        max_width: side,
        max_height: side.map(|s| s + 7),
        crop: crop.map(|(x, y, width, height)| Crop {
            width,
            height,
            x,
            y,
        }),
        quality: 70,
        ppi: Some(144),
        format: [Format::Jpeg, Format::Png, Format::Webp, Format::Gif][fmt as usize],
    };
    // Also under the tight budget (the row path for large PNGs): a render
    // of exactly the size the arguments give, or a refusal.
    for limits in [&TIGHT, &LIMITS] {
        match pipeline::render(bytes, &args, limits) {
            Ok(r) => {
                let p = probe.expect("rendered, so it probed");
                let (ow, oh) = p.oriented();
                assert_eq!(Ok((r.width, r.height)), args.output_size(ow, oh));
                assert!(r.width.max(r.height) <= limits.max_output_side);
                decodes_to(&r.bytes, r.width, r.height);
            }
            Err(e) => assert!(matches!(e.status(), 400 | 413 | 422) && !e.message().is_empty()),
        }
    }
}

fn compute(
    bytes: &[u8],
    probe: Option<Probe>,
    fmt: u8,
    side: Option<u32>,
    crop: Option<(u32, u32, u32, u32)>,
) {
    let cfg = Config {
        max_source_pixels: LIMITS.max_source_pixels,
        max_source_bytes: LIMITS.max_source_bytes,
        max_output_side: LIMITS.max_output_side,
        max_decode_bytes: LIMITS.max_decode_bytes,
        ..Config::default()
    };
    let fmt = [
        Fmt::Jpg,
        Fmt::Png,
        Fmt::Webp,
        Fmt::Gif,
        Fmt::Tif,
        Fmt::Png,
        Fmt::Jpg,
        Fmt::Tif,
    ][fmt as usize & 7];
    let r = Rendition {
        fmt,
        target: None,
        width: side,
        height: side.map(|s| s + 7),
        quality: Some(60),
        interlace: side == Some(37),
        jpeg_size: None,
        dpi: None,
        // The source's declared density drives the size here.
        convert_to_dpi: (side == Some(300))
            .then_some(assetgate_compute::request::Dpi { x: 96, y: 48 }),
        crop: crop.map(|(x, y, w, h)| ComputeCrop { x, y, w, h }),
        watermark: None,
        embed_binary_limit: 0,
        files: Vec::new(),
        ignore_duplicates: false,
        original: serde_json::Value::Null,
    };
    match render::image(bytes, &r, None, &cfg) {
        Ok(out) => {
            assert!(probe.is_some(), "rendered without a probe");
            assert_eq!(out.mime, fmt.mime());
            let (w, h) = (out.width.unwrap(), out.height.unwrap());
            assert!(w.max(h) <= cfg.max_output_side && w >= 1 && h >= 1);
            if fmt != Fmt::Tif {
                decodes_to(&out.bytes, w, h);
            }
        }
        Err(f) => assert!(!f.message.is_empty()),
    }
    let x = render::xmp(bytes, "image/jpeg", &cfg).expect("xmp always answers");
    assert!(std::str::from_utf8(&x.bytes).is_ok());
}

fn decodes_to(bytes: &[u8], w: u32, h: u32) {
    let img = image::load_from_memory(bytes).expect("our own output decodes");
    assert_eq!((img.width(), img.height()), (w, h));
}
