//! Golden tests: a streamed region equals the same region cut from a
//! whole-image decode by `jpeg-decoder` (max difference ≤ 2, the IDCT's
//! rounding between its SIMD and scalar variants), across chroma
//! samplings, restart intervals, offsets that are not multiples of 8 or
//! 16, the image's edges, and shrink factors.

use super::*;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

/// Gradients, a checkerboard of sharp edges and noise: every frequency.
fn picture(w: u32, h: u32) -> Vec<u8> {
    let mut seed = 0x2545_F491u32;
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let edge = if (x / 7 + y / 5) % 2 == 0 { 60 } else { 0 };
            let noise = seed % 40;
            out.push((x * 180 / w + edge + noise).min(255) as u8);
            out.push((y * 200 / h + noise / 2) as u8);
            out.push(((x + y) * 120 / (w + h) + edge) as u8);
        }
    }
    out
}

struct Jpeg {
    sampling: SamplingFactor,
    restart: Option<u16>,
    grey: bool,
    optimized: bool,
}

fn encode(w: u32, h: u32, j: &Jpeg) -> Vec<u8> {
    let rgb = picture(w, h);
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out, 88);
    e.set_sampling_factor(j.sampling);
    if let Some(r) = j.restart {
        e.set_restart_interval(r);
    }
    e.set_optimized_huffman_tables(j.optimized);
    if j.grey {
        let grey: Vec<u8> = rgb.chunks(3).map(|p| p[1]).collect();
        e.encode(&grey, w as u16, h as u16, ColorType::Luma)
            .unwrap();
    } else {
        e.encode(&rgb, w as u16, h as u16, ColorType::Rgb).unwrap();
    }
    out
}

/// The whole decode's region, shrunk the same way: `jpeg-decoder` with
/// its scalar arithmetic (the dev-dependency's `platform_independent`),
/// as the wasm components run it.
fn whole_decode(src: &[u8]) -> (usize, Vec<u8>) {
    let mut d = jpeg_decoder::Decoder::new(src);
    let raw = d.decode().unwrap();
    let info = d.info().unwrap();
    let rgb: Vec<u8> = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => raw.iter().flat_map(|&v| [v; 3]).collect(),
        _ => raw,
    };
    (info.width as usize * 3, rgb)
}

/// The region of a whole decode (`whole_decode`), shrunk the same way.
fn whole(
    decoded: &(usize, Vec<u8>),
    region: (u32, u32, u32, u32),
    factor: u32,
) -> (u32, u32, Vec<u8>) {
    let (stride, rgb) = (decoded.0, &decoded.1);
    let (x, y, w, h) = region;
    let mut s = Shrinker::new(w, h, 3, factor);
    for row in y..y + h {
        let at = row as usize * stride + x as usize * 3;
        s.push(&rgb[at..at + w as usize * 3]);
    }
    s.finish()
}

fn streamed(src: &[u8], region: (u32, u32, u32, u32), factor: u32) -> (u32, u32, Vec<u8>) {
    match decode_shrunk(src, region, 1, factor).unwrap() {
        Pixels::Rgb(i) => (i.width(), i.height(), i.into_raw()),
        Pixels::Rgba(_) => panic!("bands give RGB"),
    }
}

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn streamed_regions_match_the_whole_decode() {
    let (w, h) = (613, 419);
    let regions = [
        (0, 0, w, h),
        (10, 10, 590, 390),
        (101, 203, 77, 201),
        (0, h - 9, w, 9),
        (w - 5, 0, 5, h),
        (333, 17, 1, 1),
        (17, 33, 250, 120),
    ];
    let (mut cases, mut worst) = (0, 0);
    for sampling in [
        SamplingFactor::F_1_1,
        SamplingFactor::F_2_1,
        SamplingFactor::F_1_2,
        SamplingFactor::F_2_2,
    ] {
        for restart in [None, Some(3)] {
            let j = Jpeg {
                sampling,
                restart,
                grey: false,
                optimized: false,
            };
            let src = encode(w, h, &j);
            assert!(streamable(&src), "{sampling:?}");
            let decoded = whole_decode(&src);
            for region in regions {
                for factor in [1, 3] {
                    let a = whole(&decoded, region, factor);
                    let b = streamed(&src, region, factor);
                    assert_eq!((a.0, a.1), (b.0, b.1), "{sampling:?} {region:?} /{factor}");
                    let d = max_diff(&a.2, &b.2);
                    worst = worst.max(d);
                    assert!(
                        d <= 2,
                        "{sampling:?} rst={restart:?} {region:?} /{factor}: {d}"
                    );
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 4 * 2 * 7 * 2);
    eprintln!("{cases} regions, largest difference {worst}");
}

/// At 1/2, 1/4 and 1/8 (the reduced transforms): the same region cut
/// from `jpeg-decoder`'s scaled whole decode, as `decode::crop` cuts it.
#[test]
fn scaled_regions_match_the_scaled_whole_decode() {
    let (w, h) = (613, 419);
    let (mut cases, mut worst) = (0, 0);
    for sampling in [
        SamplingFactor::F_1_1,
        SamplingFactor::F_2_1,
        SamplingFactor::F_1_2,
        SamplingFactor::F_2_2,
    ] {
        let j = Jpeg {
            sampling,
            restart: Some(4),
            grey: false,
            optimized: false,
        };
        let src = encode(w, h, &j);
        for scale in [2u32, 4, 8] {
            let mut d = jpeg_decoder::Decoder::new(&src[..]);
            d.scale(w.div_ceil(scale) as u16, h.div_ceil(scale) as u16)
                .unwrap();
            let rgb = d.decode().unwrap();
            let info = d.info().unwrap();
            let (sw, sh) = (info.width as u32, info.height as u32);
            assert_eq!((sw, sh), (w.div_ceil(scale), h.div_ceil(scale)));
            for region in [
                (0, 0, w, h),
                (10, 10, 590, 390),
                (101, 203, 77, 201),
                (w - 9, h - 9, 9, 9),
            ] {
                let x = (region.0 / scale).min(sw - 1);
                let y = (region.1 / scale).min(sh - 1);
                let cw = region.2.div_ceil(scale).clamp(1, sw - x);
                let ch = region.3.div_ceil(scale).clamp(1, sh - y);
                let mut want = Vec::new();
                for row in y..y + ch {
                    let at = ((row * sw + x) * 3) as usize;
                    want.extend_from_slice(&rgb[at..at + cw as usize * 3]);
                }
                let got = match decode_shrunk(&src[..], region, scale, 1).unwrap() {
                    Pixels::Rgb(i) => i,
                    Pixels::Rgba(_) => unreachable!(),
                };
                assert_eq!(
                    got.dimensions(),
                    (cw, ch),
                    "{sampling:?} 1/{scale} {region:?}"
                );
                let d = max_diff(&want, got.as_raw());
                assert!(d <= 2, "{sampling:?} 1/{scale} {region:?}: {d}");
                worst = worst.max(d);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 4 * 3 * 4);
    eprintln!("{cases} scaled regions, largest difference {worst}");
}

#[test]
fn grey_jpegs_stream_as_rgb() {
    let j = Jpeg {
        sampling: SamplingFactor::F_1_1,
        restart: Some(5),
        grey: true,
        optimized: false,
    };
    let src = encode(300, 211, &j);
    for region in [(0, 0, 300, 211), (9, 13, 101, 77)] {
        let (a, b) = (
            whole(&whole_decode(&src), region, 1),
            streamed(&src, region, 1),
        );
        assert!(max_diff(&a.2, &b.2) <= 2, "{region:?}");
    }
}

#[test]
fn progressive_and_multi_scan_files_keep_the_whole_path() {
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out, 80);
    e.set_progressive(true);
    e.encode(&picture(64, 48), 64, 48, ColorType::Rgb).unwrap();
    assert!(!streamable(&out));
    // jpeg-encoder writes optimised tables with one scan per component:
    // every coefficient would have to be held.
    let j = Jpeg {
        sampling: SamplingFactor::F_2_2,
        restart: None,
        grey: false,
        optimized: true,
    };
    assert!(!streamable(&encode(64, 48, &j)));
    assert!(!streamable(b"\xFF\xD8\xFF\xE0"), "a truncated header");
    assert!(!streamable(b"GIF89a"));
}

#[test]
fn damaged_data_is_an_error_or_pixels_never_a_panic() {
    let j = Jpeg {
        sampling: SamplingFactor::F_2_2,
        restart: Some(2),
        grey: false,
        optimized: false,
    };
    let src = encode(200, 120, &j);
    let region = (0, 0, 200, 120);
    // Cut anywhere before the end of the data: an error, never pixels
    // padded with made-up data.
    for cut in (0..src.len() - 2).step_by(97) {
        let e = decode_shrunk(&src[..cut], region, 1, 1).unwrap_err();
        assert_eq!(e.status(), 422, "cut at {cut}: {e:?}");
    }
    assert!(
        decode_shrunk(&src[..src.len() - 2], region, 1, 1).is_ok(),
        "EOI missing"
    );
    // Bytes flipped inside the entropy-coded data.
    for at in (src.len() / 2..src.len() - 2).step_by(53) {
        let mut bad = src.clone();
        bad[at] ^= 0x5A;
        let _ = decode_shrunk(&bad[..], region, 2, 1);
    }
    let e = decode_shrunk(&src[..], (150, 0, 51, 10), 1, 1).unwrap_err();
    assert_eq!(e.status(), 400, "a region past the edge");
}

/// Ratios other than 2 take the nearest sample (jpeg-decoder's generic
/// upsampler); jpeg-encoder writes such files as separate scans, so the
/// sampler is checked alone.
#[test]
fn other_ratios_take_the_nearest_sample() {
    let mut p = Plane {
        stride: 8,
        ring_rows: 24,
        ring: (0..192).map(|v| v as u8).collect(),
        width: 3,
        height: 16,
        sampling: Sampling::Nearest(4, 2),
        cols: (0, 1),
        line: vec![0; 6],
    };
    sample_row(&mut p, 5, 3, 6);
    // Output row 5 is component row 2 (stride 8); columns 3..9 are
    // component columns 0, 1, 1, 1, 1, 2.
    assert_eq!(p.line, vec![16, 17, 17, 17, 17, 18]);
}
