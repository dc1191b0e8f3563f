//! Image encoders with the options renditions ask for: JPEG quality,
//! progressive scan and density (`jpeg-encoder`); PNG, interlaced (Adam7)
//! or not, with `pHYs`; lossless WebP (the only WebP the pure-Rust `image`
//! crate writes: `quality` does not apply); GIF; TIFF with resolution tags.

use crate::request::{Dpi, Fmt};
use assetgate_preview::pipeline::{Pixels, crc32};
use image::{ExtendedColorType, ImageEncoder};
use std::io::Cursor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub quality: u8,
    pub interlace: bool,
    pub dpi: Option<Dpi>,
}

pub fn encode(p: &Pixels, fmt: Fmt, o: Options) -> Result<Vec<u8>, String> {
    let (w, h) = p.dimensions();
    let (raw, color, channels): (&[u8], ExtendedColorType, usize) = match p {
        Pixels::Rgb(i) => (i.as_raw(), ExtendedColorType::Rgb8, 3),
        Pixels::Rgba(i) => (i.as_raw(), ExtendedColorType::Rgba8, 4),
    };
    let mut out = Vec::new();
    let failed = |e: &dyn std::fmt::Display| format!("encoding {fmt:?} failed: {e}");
    match fmt {
        Fmt::Jpg => {
            if w > 65_535 || h > 65_535 {
                return Err("JPEG sides are at most 65535 pixels".into());
            }
            let mut e = jpeg_encoder::Encoder::new(&mut out, o.quality);
            e.set_progressive(o.interlace);
            if let Some(d) = o.dpi {
                e.set_density(jpeg_encoder::Density::Inch {
                    x: d.x.min(65_535) as u16,
                    y: d.y.min(65_535) as u16,
                });
            }
            let ct = if channels == 4 {
                jpeg_encoder::ColorType::Rgba
            } else {
                jpeg_encoder::ColorType::Rgb
            };
            e.encode(raw, w as u16, h as u16, ct)
                .map_err(|e| failed(&e))?;
        }
        Fmt::Png => {
            out = png(raw, w, h, channels, o.interlace, o.dpi);
        }
        Fmt::Webp => image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .write_image(raw, w, h, color)
            .map_err(|e| failed(&e))?,
        Fmt::Gif => {
            image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10)
                .encode(raw, w, h, color)
                .map_err(|e| failed(&e))?;
        }
        Fmt::Tif => {
            out = tiff(raw, w, h, channels, o.dpi).map_err(|e| failed(&e))?;
        }
        Fmt::Text | Fmt::Xmp | Fmt::Zip => return Err(format!("{fmt:?} is not an image format")),
    }
    Ok(out)
}

fn tiff(
    raw: &[u8],
    w: u32,
    h: u32,
    channels: usize,
    dpi: Option<Dpi>,
) -> tiff::TiffResult<Vec<u8>> {
    use tiff::encoder::{Rational, TiffEncoder, colortype};
    use tiff::tags::ResolutionUnit;
    let mut buf = Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut buf)?;
        let d = dpi.unwrap_or(Dpi { x: 72, y: 72 });
        macro_rules! write {
            ($ct:ty) => {{
                let mut img = enc.new_image::<$ct>(w, h)?;
                img.resolution_unit(ResolutionUnit::Inch);
                img.x_resolution(Rational { n: d.x, d: 1 });
                img.y_resolution(Rational { n: d.y, d: 1 });
                img.write_data(raw)?;
            }};
        }
        if channels == 4 {
            write!(colortype::RGBA8)
        } else {
            write!(colortype::RGB8)
        }
    }
    Ok(buf.into_inner())
}

/// Adam7 passes: (x start, y start, x step, y step).
const ADAM7: [(usize, usize, usize, usize); 7] = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
];

/// A PNG written here rather than by `image` because that encoder cannot
/// interlace. Every scanline uses the Paeth filter (good on photographs).
pub fn png(
    raw: &[u8],
    w: u32,
    h: u32,
    channels: usize,
    interlace: bool,
    dpi: Option<Dpi>,
) -> Vec<u8> {
    let (wu, hu) = (w as usize, h as usize);
    let mut filtered = Vec::with_capacity(raw.len() + hu * 2);
    let mut emit = |rows: &mut dyn Iterator<Item = Vec<u8>>| {
        let mut prev: Option<Vec<u8>> = None;
        for row in rows {
            filtered.push(4u8); // Paeth
            for i in 0..row.len() {
                let a = if i >= channels { row[i - channels] } else { 0 };
                let b = prev.as_ref().map_or(0, |p| p[i]);
                let c = if i >= channels {
                    prev.as_ref().map_or(0, |p| p[i - channels])
                } else {
                    0
                };
                filtered.push(row[i].wrapping_sub(paeth(a, b, c)));
            }
            prev = Some(row);
        }
    };
    let stride = wu * channels;
    if interlace {
        for (x0, y0, dx, dy) in ADAM7 {
            if x0 >= wu || y0 >= hu {
                continue;
            }
            let mut rows = (y0..hu).step_by(dy).map(|y| {
                let line = &raw[y * stride..(y + 1) * stride];
                (x0..wu)
                    .step_by(dx)
                    .flat_map(|x| line[x * channels..(x + 1) * channels].iter().copied())
                    .collect::<Vec<u8>>()
            });
            emit(&mut rows);
        }
    } else {
        let mut rows = raw.chunks_exact(stride).map(|r| r.to_vec());
        emit(&mut rows);
    }
    let idat = miniz_oxide::deflate::compress_to_vec_zlib(&filtered, 6);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, if channels == 4 { 6 } else { 2 }, 0, 0, interlace as u8]);
    chunk(&mut out, b"IHDR", &ihdr);
    if let Some(d) = dpi {
        let ppm = |v: u32| ((v as f64 / 0.0254).round() as u32).to_be_bytes();
        let mut phys = Vec::with_capacity(9);
        phys.extend_from_slice(&ppm(d.x));
        phys.extend_from_slice(&ppm(d.y));
        phys.push(1);
        chunk(&mut out, b"pHYs", &phys);
    }
    for part in idat.chunks(1 << 20) {
        chunk(&mut out, b"IDAT", part);
    }
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = a as i16 + b as i16 - c as i16;
    let (pa, pb, pc) = (
        (p - a as i16).abs(),
        (p - b as i16).abs(),
        (p - c as i16).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// The density a source declares (JPEG JFIF/EXIF-less APP0, PNG `pHYs`),
/// for `convertToDpi`; 72 when it says nothing.
pub fn source_dpi(bytes: &[u8]) -> Dpi {
    let default = Dpi { x: 72, y: 72 };
    if bytes.starts_with(b"\xFF\xD8") && bytes.len() > 20 && &bytes[6..11] == b"JFIF\0" {
        let unit = bytes[13];
        let x = u16::from_be_bytes([bytes[14], bytes[15]]) as f64;
        let y = u16::from_be_bytes([bytes[16], bytes[17]]) as f64;
        let f = match unit {
            1 => 1.0,
            2 => 2.54,
            _ => return default,
        };
        if x > 0.0 && y > 0.0 {
            return Dpi {
                x: (x * f).round() as u32,
                y: (y * f).round() as u32,
            };
        }
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let mut at: usize = 8;
        while bytes.len().saturating_sub(at) >= 8 {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let kind = &bytes[at + 4..at + 8];
            if kind == b"pHYs" && at + 17 <= bytes.len() && bytes[at + 16] == 1 {
                let v = |o: usize| {
                    u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap()) as f64 * 0.0254
                };
                return Dpi {
                    x: v(at + 8).round() as u32,
                    y: v(at + 12).round() as u32,
                };
            }
            if kind == b"IDAT" {
                break;
            }
            // A chunk length is the file's word: on wasm32 `12 + len` can
            // wrap and loop for ever, so a length past the end ends the walk.
            match at.checked_add(12).and_then(|a| a.checked_add(len)) {
                Some(next) => at = next,
                None => break,
            }
        }
    }
    default
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x + y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn png_chunk_lengths_past_the_end_end_the_walk() {
        // A chunk claiming u32::MAX bytes: on wasm32 `12 + len` wrapped to
        // the same offset and looped for ever.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&u32::MAX.to_be_bytes());
        png.extend_from_slice(b"tEXt");
        png.extend_from_slice(&[0; 16]);
        assert_eq!(source_dpi(&png), source_dpi(b"not an image"));
        for cut in 0..png.len() {
            let _ = source_dpi(&png[..cut]);
        }
    }

    #[test]
    fn png_interlaced_and_plain_decode_to_the_same_pixels() {
        for (w, h) in [(1, 1), (3, 5), (17, 9), (64, 33)] {
            let img = gradient(w, h);
            for interlace in [false, true] {
                let bytes = png(
                    img.as_raw(),
                    w,
                    h,
                    3,
                    interlace,
                    Some(Dpi { x: 300, y: 150 }),
                );
                assert_eq!(bytes[8 + 8 + 12], interlace as u8, "IHDR interlace flag");
                let back = image::load_from_memory(&bytes).unwrap().into_rgb8();
                assert_eq!(back, img, "{w}x{h} interlace={interlace}");
                assert_eq!(source_dpi(&bytes), Dpi { x: 300, y: 150 });
            }
        }
        let rgba = RgbaImage::from_fn(9, 7, |x, y| {
            Rgba([x as u8 * 20, y as u8 * 30, 7, (x * y) as u8])
        });
        let bytes = png(rgba.as_raw(), 9, 7, 4, true, None);
        assert_eq!(image::load_from_memory(&bytes).unwrap().into_rgba8(), rgba);
    }

    #[test]
    fn jpeg_progressive_density_and_tiff_resolution() {
        let img = Pixels::Rgb(gradient(40, 30));
        let o = Options {
            quality: 80,
            interlace: true,
            dpi: Some(Dpi { x: 300, y: 300 }),
        };
        let jpg = encode(&img, Fmt::Jpg, o).unwrap();
        // SOF2 marks a progressive JPEG.
        assert!(jpg.windows(2).any(|w| w == [0xFF, 0xC2]));
        assert_eq!(source_dpi(&jpg), Dpi { x: 300, y: 300 });
        let baseline = encode(
            &img,
            Fmt::Jpg,
            Options {
                interlace: false,
                ..o
            },
        )
        .unwrap();
        assert!(!baseline.windows(2).any(|w| w == [0xFF, 0xC2]));
        let tif = encode(&img, Fmt::Tif, o).unwrap();
        let mut d = tiff::decoder::Decoder::new(Cursor::new(&tif)).unwrap();
        assert_eq!(d.dimensions().unwrap(), (40, 30));
        let xres = d.get_tag(tiff::tags::Tag::XResolution).unwrap();
        assert_eq!(format!("{xres:?}"), "Rational(300, 1)");
        for fmt in [Fmt::Webp, Fmt::Gif, Fmt::Png] {
            let bytes = encode(&img, fmt, o).unwrap();
            assert_eq!(
                image::load_from_memory(&bytes).unwrap().width(),
                40,
                "{fmt:?}"
            );
        }
    }
}
