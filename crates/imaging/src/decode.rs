//! Decoding the region an output needs: JPEGs at the smallest DCT scale
//! (1/8, 1/4, 1/2) that still covers the output, as libvips'
//! shrink-on-load does; then EXIF orientation and the crop. The decode
//! budget is checked before any pixel is decoded.
//!
//! Pixels stay 3 bytes wide unless the source has alpha and the caller
//! keeps it; animated GIFs give their first frame.

use crate::Limits;
use crate::error::{ImagingError, Result, decoder_failed, unreadable};
use crate::probe::{Probe, SourceFormat, reader};
use crate::shrink::Shrinker;
use crate::source::{HEAD_BYTES, Source, unavailable};
use image::metadata::Orientation;
use image::{DynamicImage, RgbImage, RgbaImage};
use std::io::Cursor;

/// Decoded pixels, 3 or 4 bytes wide.
#[derive(Debug)]
pub enum Pixels {
    Rgb(RgbImage),
    Rgba(RgbaImage),
}

impl Pixels {
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Pixels::Rgb(i) => i.dimensions(),
            Pixels::Rgba(i) => i.dimensions(),
        }
    }
}

/// The oriented `region` (x, y, w, h in oriented full-size pixels) of the
/// probed image, decoded at the smallest JPEG DCT scale that still covers
/// `target`, oriented and cropped but not resized. The decode budget is
/// checked first: over it, baseline JPEGs are read in bands and plain PNGs
/// by rows, streamed from the source; over even that is `TooLarge`, before
/// any pixel is decoded.
pub fn decode_region<S: Source + ?Sized>(
    src: &S,
    p: &Probe,
    region: (u32, u32, u32, u32),
    target: (u32, u32),
    keep_alpha: bool,
    limits: &Limits,
) -> Result<Pixels> {
    let want = Wanted {
        region,
        target,
        keep_alpha,
    };
    if p.format == SourceFormat::Jpeg && crate::jpeg_bands::streamable(&src.head(HEAD_BYTES)?) {
        return jpeg_by_bands(src, p, &want, limits);
    }
    // Progressive and other JPEGs the bands cannot read keep DCT scaling.
    let scale = if p.format == SourceFormat::Jpeg {
        jpeg_scale((region.2, region.3), target)
    } else {
        1
    };
    let need = decode_budget(src.len(), p, scale);
    if need > limits.max_decode_bytes {
        if let Some(pixels) = png_by_rows(src, p, &want, limits)? {
            return Ok(pixels);
        }
        return Err(too_large(p, scale, need, limits));
    }
    let bytes = src.bytes()?;
    let (pixels, scale) = decode(&bytes, p, (region.2, region.3), target, keep_alpha)?;
    drop(bytes);
    let pixels = orient(pixels, p.orientation);
    Ok(crop(pixels, region, scale))
}

fn too_large(p: &Probe, scale: u32, need: u64, limits: &Limits) -> ImagingError {
    ImagingError::TooLarge(format!(
        "this output needs the {}x{} source decoded at 1/{scale} scale (about {} MiB); the limit is {} MiB (preview_max_decode_bytes): ask for a smaller box or crop",
        p.width,
        p.height,
        need.div_ceil(1 << 20),
        limits.max_decode_bytes >> 20
    ))
}

/// What a caller of [`decode_region`] asked for.
#[derive(Clone, Copy)]
struct Wanted {
    region: (u32, u32, u32, u32),
    target: (u32, u32),
    keep_alpha: bool,
}

/// A PNG too large to decode whole, read row by row and shrunk on load
/// (see [`crate::png_rows`]) when that path fits the budget; `None` when
/// it does not apply or does not fit either.
fn png_by_rows<S: Source + ?Sized>(
    src: &S,
    p: &Probe,
    want: &Wanted,
    limits: &Limits,
) -> Result<Option<Pixels>> {
    let Wanted {
        region,
        target,
        keep_alpha,
    } = *want;
    if p.format != SourceFormat::Png
        || p.orientation != Orientation::NoTransforms
        || !crate::png_rows::streamable(&src.head(HEAD_BYTES)?)
    {
        return Ok(None);
    }
    let factor = shrink_factor(region, target);
    // The shrunk output (RGBA at most) and its accumulator, two rows of
    // the source, what the source holds while streamed.
    let need = src.resident()
        + Shrinker::peak_bytes(region.2, region.3, 4, factor)
        + 2 * p.width as u64 * 4;
    if need > limits.max_decode_bytes {
        return Ok(None);
    }
    let reader = src.open().map_err(unavailable)?;
    crate::png_rows::decode_shrunk(reader, region, factor, keep_alpha).map(Some)
}

/// A baseline JPEG, read in bands of MCU rows (see [`crate::jpeg_bands`])
/// at the smallest DCT scale that covers the output, the source streamed.
/// The scaled region is kept whole when it fits the budget (the result is
/// then the whole-image path's exactly), else box-shrunk on load by the
/// whole factor the output allows. The region is cut in stored pixels; the
/// small result is then oriented. Over the budget even so is `TooLarge`,
/// before any pixel is decoded.
fn jpeg_by_bands<S: Source + ?Sized>(
    src: &S,
    p: &Probe,
    want: &Wanted,
    limits: &Limits,
) -> Result<Pixels> {
    let Wanted { region, target, .. } = *want;
    let scale = jpeg_scale((region.2, region.3), target);
    let stored = stored_region(p, region);
    let (sw, sh) = (stored.2.div_ceil(scale), stored.3.div_ceil(scale));
    let need = |factor| {
        src.resident()
            + Shrinker::peak_bytes(sw, sh, 3, factor)
            + crate::jpeg_bands::working_bytes(p.width.div_ceil(scale), sw)
    };
    let factor = if need(1) <= limits.max_decode_bytes {
        1
    } else {
        shrink_factor(
            (0, 0, region.2.div_ceil(scale), region.3.div_ceil(scale)),
            target,
        )
    };
    let need = need(factor);
    if need > limits.max_decode_bytes {
        return Err(too_large(p, scale, need, limits));
    }
    let reader = src.open().map_err(unavailable)?;
    let pixels = crate::jpeg_bands::decode_shrunk(reader, stored, scale, factor)?;
    Ok(orient(pixels, p.orientation))
}

/// The whole factor a region can be box-shrunk by and still cover the
/// output.
fn shrink_factor(region: (u32, u32, u32, u32), target: (u32, u32)) -> u32 {
    (region.2 / target.0.max(1))
        .min(region.3 / target.1.max(1))
        .max(1)
}

/// The rectangle of stored pixels that `region` (oriented pixels) shows.
fn stored_region(p: &Probe, region: (u32, u32, u32, u32)) -> (u32, u32, u32, u32) {
    let (x, y, w, h) = region;
    let (sw, sh) = (p.width, p.height);
    match p.orientation {
        Orientation::NoTransforms => region,
        Orientation::FlipHorizontal => (sw.saturating_sub(x + w), y, w, h),
        Orientation::FlipVertical => (x, sh.saturating_sub(y + h), w, h),
        Orientation::Rotate180 => (sw.saturating_sub(x + w), sh.saturating_sub(y + h), w, h),
        // Oriented (ox, oy) shows stored (oy, sh - 1 - ox).
        Orientation::Rotate90 => (y, sh.saturating_sub(x + w), h, w),
        // Oriented (ox, oy) shows stored (sw - 1 - oy, ox).
        Orientation::Rotate270 => (sw.saturating_sub(y + h), x, h, w),
        // Transpose.
        Orientation::Rotate90FlipH => (y, x, h, w),
        // Oriented (ox, oy) shows stored (sw - 1 - oy, sh - 1 - ox).
        Orientation::Rotate270FlipH => (sw.saturating_sub(y + h), sh.saturating_sub(x + w), h, w),
    }
}

/// Decodes, at a reduced DCT scale for JPEGs when the output allows it.
/// Returns the pixels and the scale they were decoded at (1, 2, 4 or 8).
fn decode(
    bytes: &[u8],
    p: &Probe,
    region: (u32, u32),
    target: (u32, u32),
    keep_alpha: bool,
) -> Result<(Pixels, u32)> {
    if p.format != SourceFormat::Jpeg {
        let mut r = reader(bytes, p.format)?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(p.width);
        limits.max_image_height = Some(p.height);
        r.limits(limits);
        // For GIFs this is the first frame.
        let img = r.decode().map_err(decoder_failed)?;
        let pixels = if keep_alpha && img.color().has_alpha() {
            Pixels::Rgba(img.into_rgba8())
        } else if img.color().has_alpha() {
            Pixels::Rgb(flatten_on_white(img.into_rgba8()))
        } else {
            Pixels::Rgb(img.into_rgb8())
        };
        return Ok((pixels, 1));
    }
    let scale = jpeg_scale(region, target);
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    if scale > 1 {
        let (w, h) = (p.width.div_ceil(scale), p.height.div_ceil(scale));
        d.scale(w as u16, h as u16).map_err(unreadable)?;
    }
    let raw = d.decode().map_err(unreadable)?;
    let info = d.info().ok_or_else(|| unreadable("no frame header"))?;
    let (w, h) = (info.width as u32, info.height as u32);
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => raw,
        jpeg_decoder::PixelFormat::L8 => raw.iter().flat_map(|&v| [v, v, v]).collect(),
        jpeg_decoder::PixelFormat::L16 => raw
            .chunks_exact(2)
            .flat_map(|v| [v[0], v[0], v[0]])
            .collect(),
        jpeg_decoder::PixelFormat::CMYK32 => raw
            .chunks_exact(4)
            .flat_map(|c| {
                let k = 255 - c[3] as u32;
                let ch = |v: u8| ((255 - v as u32) * k / 255) as u8;
                [ch(c[0]), ch(c[1]), ch(c[2])]
            })
            .collect(),
    };
    let img = RgbImage::from_raw(w, h, rgb).ok_or_else(|| unreadable("short pixel buffer"))?;
    // The decoder rounds sizes up; name the scale by what it produced.
    let actual = [8, 4, 2, 1]
        .into_iter()
        .find(|s| p.width.div_ceil(*s) == w && p.height.div_ceil(*s) == h)
        .unwrap_or(1);
    Ok((Pixels::Rgb(img), actual))
}

/// The largest DCT shrink (8, 4, 2, else 1) that keeps the region at
/// least as large as the output; both in oriented pixels.
fn jpeg_scale(region: (u32, u32), target: (u32, u32)) -> u32 {
    [8u32, 4, 2]
        .into_iter()
        .find(|s| region.0 / s >= target.0 && region.1 / s >= target.1)
        .unwrap_or(1)
}

/// What decoding will hold at its peak: the source, the decoder's planes
/// and the pixels it returns (JPEG: 3 + 3 bytes per decoded pixel; other
/// formats: RGBA plus an RGB copy).
fn decode_budget(source_len: u64, p: &Probe, scale: u32) -> u64 {
    let pixels = p.width.div_ceil(scale) as u64 * p.height.div_ceil(scale) as u64;
    let per_pixel = if p.format == SourceFormat::Jpeg { 6 } else { 7 };
    source_len + pixels * per_pixel
}

/// Composes RGBA over white (for outputs without alpha).
fn flatten_on_white(img: RgbaImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut out = RgbImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(img.pixels()) {
        let a = p[3] as u32;
        for c in 0..3 {
            o[c] = ((p[c] as u32 * a + 255 * (255 - a)) / 255) as u8;
        }
    }
    out
}

fn orient(p: Pixels, o: Orientation) -> Pixels {
    if o == Orientation::NoTransforms {
        return p;
    }
    let mut img = match p {
        Pixels::Rgb(i) => DynamicImage::ImageRgb8(i),
        Pixels::Rgba(i) => DynamicImage::ImageRgba8(i),
    };
    img.apply_orientation(o);
    match img {
        DynamicImage::ImageRgba8(i) => Pixels::Rgba(i),
        other => Pixels::Rgb(other.into_rgb8()),
    }
}

/// Crops `region` (in full-size oriented pixels) out of pixels decoded at
/// 1/`scale`.
fn crop(p: Pixels, region: (u32, u32, u32, u32), scale: u32) -> Pixels {
    let (w, h) = p.dimensions();
    let x = (region.0 / scale).min(w.saturating_sub(1));
    let y = (region.1 / scale).min(h.saturating_sub(1));
    let cw = region.2.div_ceil(scale).clamp(1, w - x);
    let ch = region.3.div_ceil(scale).clamp(1, h - y);
    if (x, y, cw, ch) == (0, 0, w, h) {
        return p;
    }
    match p {
        Pixels::Rgb(i) => Pixels::Rgb(image::imageops::crop_imm(&i, x, y, cw, ch).to_image()),
        Pixels::Rgba(i) => Pixels::Rgba(image::imageops::crop_imm(&i, x, y, cw, ch).to_image()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        });
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(
                img.as_raw(),
                w as u16,
                h as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .unwrap();
        out
    }

    #[test]
    fn jpegs_decode_at_the_smallest_dct_scale_that_covers_the_output() {
        let src = jpeg(2400, 1600);
        let p = probe(&src, &Limits::default()).unwrap();
        let (pixels, scale) = decode(&src, &p, (2400, 1600), (300, 200), false).unwrap();
        assert_eq!(
            (scale, pixels.dimensions()),
            (8, (300, 200)),
            "decoded at 1/8"
        );
        let (_, scale) = decode(&src, &p, (2400, 1600), (601, 400), false).unwrap();
        assert_eq!(scale, 2, "1/4 would be 600 wide, less than 601");
        // A region is cropped in full-size coordinates at the scale its
        // own size allows: 1200x800 for 600x400 is 1/2, for 601x400 is 1/1.
        let region = (100, 50, 1200, 800);
        for (target, size) in [((600, 400), (600, 400)), ((601, 400), (1200, 800))] {
            let out = decode_region(&src, &p, region, target, false, &Limits::default()).unwrap();
            assert_eq!(out.dimensions(), size, "{target:?}");
        }
    }

    #[test]
    fn the_decode_budget_is_checked_before_decoding() {
        let src = jpeg(2400, 1600);
        let p = probe(&src, &Limits::default()).unwrap();
        let tight = Limits {
            max_decode_bytes: 1 << 20,
            ..Limits::default()
        };
        let full = (0, 0, 2400, 1600);
        let e = decode_region(&src, &p, full, (2400, 1600), false, &tight).unwrap_err();
        assert_eq!(e.status(), 413, "{e:?}");
        assert!(e.message().contains("1/1 scale"), "{e:?}");
        // At 1/8 it fits: 300x200 pixels.
        assert!(decode_region(&src, &p, full, (300, 200), false, &tight).is_ok());
    }

    /// The whole-image path (jpeg-decoder at the DCT scale, oriented,
    /// cropped), which the band path must match.
    fn whole_path(
        src: &[u8],
        p: &Probe,
        region: (u32, u32, u32, u32),
        target: (u32, u32),
    ) -> Pixels {
        let (pixels, scale) = decode(src, p, (region.2, region.3), target, false).unwrap();
        crop(orient(pixels, p.orientation), region, scale)
    }

    /// A photo-like JPEG with an EXIF orientation (1 to 8).
    fn oriented_jpeg(w: u32, h: u32, exif_orientation: u16) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            let edge = if (x / 9 + y / 7) % 2 == 0 { 50 } else { 0 };
            image::Rgb([
                (x * 200 / w + edge) as u8,
                (y * 200 / h) as u8,
                edge as u8 * 2,
            ])
        });
        let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
        exif.extend_from_slice(&exif_orientation.to_be_bytes());
        exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut out = Vec::new();
        let mut e = jpeg_encoder::Encoder::new(&mut out, 90);
        e.add_app_segment(1, &exif).unwrap();
        e.encode(
            img.as_raw(),
            w as u16,
            h as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
        out
    }

    /// Over the whole-decode budget, a baseline JPEG is read in bands and
    /// shrunk on load; the result matches the whole decode's in every
    /// orientation, for crops at odd offsets and for shrunk outputs.
    #[test]
    fn large_jpegs_are_read_in_bands_and_match_the_whole_decode() {
        let roomy = Limits::default();
        // 1200x800 whole: about 5.8 MB planned; the bands about 3.6 MB
        // at full size.
        let tight = Limits {
            max_decode_bytes: 4608 << 10,
            ..Limits::default()
        };
        for o in 1..=8 {
            let src = oriented_jpeg(1200, 800, o);
            let p = probe(&src, &roomy).unwrap();
            let (ow, oh) = p.oriented();
            for (region, target) in [
                ((0, 0, ow, oh), (ow, oh)),
                ((10, 10, 590, 390), (590, 390)),
                ((13, 7, 501, 333), (167, 111)),
                ((ow - 77, oh - 41, 77, 41), (77, 41)),
                ((0, 0, ow, oh), (ow / 4, oh / 4)),
                ((13, 7, 501, 333), (31, 20)),
            ] {
                let whole = whole_path(&src, &p, region, target);
                let whole = crate::resize(whole, target.0, target.1).unwrap();
                let bands = decode_region(&src, &p, region, target, false, &tight)
                    .unwrap_or_else(|e| panic!("{o} {region:?}: {e:?}"));
                let bands = crate::resize(bands, target.0, target.1).unwrap();
                let d = max_diff(&whole, &bands);
                assert!(d <= 3, "orientation {o} {region:?} -> {target:?}: {d}");
            }
        }
    }

    /// A source read only as a stream, which records whether anything
    /// read it whole.
    struct Streamed<'a> {
        bytes: &'a [u8],
        read_whole: std::cell::Cell<bool>,
    }

    impl Source for Streamed<'_> {
        fn len(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn resident(&self) -> u64 {
            16 << 10
        }
        fn open(&self) -> std::io::Result<Box<dyn crate::source::ReadSeek + '_>> {
            Ok(Box::new(std::io::Cursor::new(self.bytes)))
        }
        fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>> {
            self.read_whole.set(true);
            Ok(std::borrow::Cow::Borrowed(self.bytes))
        }
    }

    /// Streamed, the band and row paths never hold the source whole; the
    /// probe reads only its head (here the EXIF orientation of a JPEG
    /// larger than the head).
    #[test]
    fn streamed_sources_are_not_read_whole_by_the_band_and_row_paths() {
        let tight = Limits {
            max_decode_bytes: 4608 << 10,
            ..Limits::default()
        };
        let big = oriented_jpeg(3000, 2000, 6);
        assert!(big.len() > crate::source::HEAD_BYTES, "{}", big.len());
        for src in [big, png(1200, 800, false)] {
            let s = Streamed {
                bytes: &src,
                read_whole: Default::default(),
            };
            let p = crate::probe_source(&s, &tight).unwrap();
            assert_eq!(p, probe(&src, &tight).unwrap());
            let region = (3, 5, 700, 600);
            let streamed = decode_region(&s, &p, region, (700, 600), false, &tight).unwrap();
            assert!(!s.read_whole.get(), "{:?} was read whole", p.format);
            let whole = if p.format == SourceFormat::Jpeg {
                whole_path(&src, &p, region, (700, 600))
            } else {
                decode_region(&src[..], &p, region, (700, 600), false, &Limits::default()).unwrap()
            };
            assert_eq!(max_diff(&streamed, &whole), 0);
        }
    }

    /// Smooth drawings: box and Lanczos prefilters agree on them (they
    /// differ, by design, on detail finer than the output's pixels).
    fn png(w: u32, h: u32, alpha: bool) -> Vec<u8> {
        let (channels, raw) = if alpha {
            let img = RgbaImage::from_fn(w, h, |x, y| {
                image::Rgba([
                    (x * 255 / w) as u8,
                    (y * 255 / h) as u8,
                    90,
                    ((x + y) * 255 / (w + h)) as u8,
                ])
            });
            (4, img.into_raw())
        } else {
            let img = RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([
                    (x * 255 / w) as u8,
                    (y * 255 / h) as u8,
                    (x as u64 * y as u64 * 255 / (w as u64 * h as u64)) as u8,
                ])
            });
            (3, img.into_raw())
        };
        crate::encode::png(&raw, w, h, channels, false, None)
    }

    fn max_diff(a: &Pixels, b: &Pixels) -> u8 {
        let raw = |p: &Pixels| match p {
            Pixels::Rgb(i) => i.as_raw().clone(),
            Pixels::Rgba(i) => i.as_raw().clone(),
        };
        raw(a)
            .iter()
            .zip(raw(b))
            .map(|(x, y)| x.abs_diff(y))
            .max()
            .unwrap()
    }

    /// Over the whole-decode budget, a PNG is read row by row and shrunk
    /// on load; the result matches the whole decode's (crops at offsets
    /// that are not multiples of the factor, alpha kept or flattened).
    #[test]
    fn large_pngs_are_read_by_rows_and_match_the_whole_decode() {
        let roomy = Limits::default();
        // 1200x800 whole: about 6.4 MiB planned; the rows path under 1 MiB.
        let tight = Limits {
            max_decode_bytes: 3 << 20,
            ..Limits::default()
        };
        for alpha in [false, true] {
            let src = png(1200, 800, alpha);
            let p = probe(&src, &roomy).unwrap();
            for (region, target) in [
                ((0, 0, 1200, 800), (300, 200)),
                ((0, 0, 1200, 800), (397, 265)),
                ((13, 7, 590, 390), (590, 390)),
                ((501, 333, 677, 455), (200, 143)),
            ] {
                for keep_alpha in [false, true] {
                    let whole =
                        decode_region(&src, &p, region, target, keep_alpha, &roomy).unwrap();
                    let whole = crate::resize(whole, target.0, target.1).unwrap();
                    let rows = decode_region(&src, &p, region, target, keep_alpha, &tight)
                        .unwrap_or_else(|e| panic!("{region:?} {target:?}: {e:?}"));
                    let rows = crate::resize(rows, target.0, target.1).unwrap();
                    let d = max_diff(&whole, &rows);
                    assert!(
                        d <= 3,
                        "{region:?} -> {target:?} alpha={alpha}/{keep_alpha}: {d}"
                    );
                }
            }
        }
        // Beyond even the rows path: still 413 before decoding.
        let src = png(1200, 800, false);
        let p = probe(&src, &roomy).unwrap();
        let tiny = Limits {
            max_decode_bytes: 64 << 10,
            ..Limits::default()
        };
        let e = decode_region(&src, &p, (0, 0, 1200, 800), (300, 200), false, &tiny).unwrap_err();
        assert_eq!(e.status(), 413);
    }
}
