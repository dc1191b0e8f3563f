//! Encoders with the options outputs ask for: JPEG quality, progressive
//! scan and density (`jpeg-encoder`); PNG, interlaced (Adam7) or not, with
//! `pHYs`; lossless WebP (the only WebP the pure-Rust `image` crate
//! writes: `quality` does not apply); GIF; TIFF with resolution tags.

use crate::{Density, Pixels};
use image::{ExtendedColorType, ImageEncoder};
use std::io::Cursor;

/// The formats an output can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    Tiff,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tif",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Gif => "image/gif",
            Format::Tiff => "image/tiff",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// JPEG quality, 1–100.
    pub quality: u8,
    /// Progressive JPEG, Adam7 PNG.
    pub interlace: bool,
    /// Written as JFIF density, `pHYs` or TIFF resolution; TIFF says 72
    /// without it.
    pub density: Option<Density>,
}

pub fn encode(p: &Pixels, fmt: Format, o: Options) -> Result<Vec<u8>, String> {
    let (w, h) = p.dimensions();
    let (raw, color, channels): (&[u8], ExtendedColorType, usize) = match p {
        Pixels::Rgb(i) => (i.as_raw(), ExtendedColorType::Rgb8, 3),
        Pixels::Rgba(i) => (i.as_raw(), ExtendedColorType::Rgba8, 4),
    };
    let mut out = Vec::new();
    let failed = |e: &dyn std::fmt::Display| format!("encoding {fmt:?} failed: {e}");
    match fmt {
        Format::Jpeg => {
            if w > 65_535 || h > 65_535 {
                return Err("JPEG sides are at most 65535 pixels".into());
            }
            let mut e = jpeg_encoder::Encoder::new(&mut out, o.quality);
            e.set_progressive(o.interlace);
            if let Some(d) = o.density {
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
        Format::Png => {
            out = png(raw, w, h, channels, o.interlace, o.density);
        }
        Format::Webp => image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .write_image(raw, w, h, color)
            .map_err(|e| failed(&e))?,
        Format::Gif => {
            image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10)
                .encode(raw, w, h, color)
                .map_err(|e| failed(&e))?;
        }
        Format::Tiff => {
            out = tiff(raw, w, h, channels, o.density).map_err(|e| failed(&e))?;
        }
    }
    Ok(out)
}

fn tiff(
    raw: &[u8],
    w: u32,
    h: u32,
    channels: usize,
    density: Option<Density>,
) -> tiff::TiffResult<Vec<u8>> {
    use tiff::encoder::{Rational, TiffEncoder, colortype};
    use tiff::tags::ResolutionUnit;
    let mut buf = Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut buf)?;
        let d = density.unwrap_or(Density { x: 72, y: 72 });
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
    density: Option<Density>,
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
    if let Some(d) = density {
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

/// CRC-32 (IEEE), as PNG chunks use.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::declared;
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
    fn png_interlaced_and_plain_decode_to_the_same_pixels() {
        for (w, h) in [(1, 1), (3, 5), (17, 9), (64, 33)] {
            let img = gradient(w, h);
            for interlace in [false, true] {
                let density = Some(Density { x: 300, y: 150 });
                let bytes = png(img.as_raw(), w, h, 3, interlace, density);
                assert_eq!(bytes[8 + 8 + 12], interlace as u8, "IHDR interlace flag");
                let back = image::load_from_memory(&bytes).unwrap().into_rgb8();
                assert_eq!(back, img, "{w}x{h} interlace={interlace}");
                assert_eq!(Some(declared(&bytes)), density);
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
            density: Some(Density { x: 300, y: 300 }),
        };
        let jpg = encode(&img, Format::Jpeg, o).unwrap();
        // SOF2 marks a progressive JPEG.
        assert!(jpg.windows(2).any(|w| w == [0xFF, 0xC2]));
        assert_eq!(declared(&jpg), Density { x: 300, y: 300 });
        let baseline = encode(
            &img,
            Format::Jpeg,
            Options {
                interlace: false,
                ..o
            },
        )
        .unwrap();
        assert!(!baseline.windows(2).any(|w| w == [0xFF, 0xC2]));
        let tif = encode(&img, Format::Tiff, o).unwrap();
        let mut d = tiff::decoder::Decoder::new(Cursor::new(&tif)).unwrap();
        assert_eq!(d.dimensions().unwrap(), (40, 30));
        let xres = d.get_tag(tiff::tags::Tag::XResolution).unwrap();
        assert_eq!(format!("{xres:?}"), "Rational(300, 1)");
        for fmt in [Format::Webp, Format::Gif, Format::Png] {
            let bytes = encode(&img, fmt, o).unwrap();
            assert_eq!(
                image::load_from_memory(&bytes).unwrap().width(),
                40,
                "{fmt:?}"
            );
        }
    }
}
