//! The image pipeline, as ordered steps: probe the header (limits are
//! checked before any pixel is decoded), decode — JPEGs at the smallest
//! DCT scale (1/8, 1/4, 1/2) that still covers the output, as libvips'
//! shrink-on-load does — then EXIF orientation, crop, resize (Lanczos3 on
//! RGB), encode.
//!
//! Pixels stay 3 bytes wide unless the source has alpha and the output
//! keeps it; animated GIFs give their first frame.

use crate::args::{Format, PreviewArgs};
use fast_image_resize as fr;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageReader, RgbImage, RgbaImage};
use std::io::Cursor;

/// Source and output limits; defaults in comments (README "Configuration").
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest source, in pixels (50 MP).
    pub max_source_pixels: u64,
    /// Largest source file, in bytes (256 MiB).
    pub max_source_bytes: u64,
    /// Largest output side, in pixels (4096).
    pub max_output_side: u32,
    /// Memory a render may plan to use, in bytes (96 MiB): the source file
    /// plus the decoded pixels at the scale the output needs. A request
    /// over it is refused before decoding instead of running out of
    /// memory (edge platforms cap a request at 128 MiB).
    pub max_decode_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_pixels: 50_000_000,
            max_source_bytes: 256 << 20,
            max_output_side: 4096,
            max_decode_bytes: 96 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineError {
    /// Over a source limit (413).
    TooLarge(String),
    /// Not an image we can read, or an output we will not make (422).
    Unprocessable(String),
    /// The arguments do not fit the image, e.g. a crop outside it (400).
    BadArgs(String),
}

impl PipelineError {
    pub fn status(&self) -> u16 {
        match self {
            PipelineError::TooLarge(_) => 413,
            PipelineError::Unprocessable(_) => 422,
            PipelineError::BadArgs(_) => 400,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            PipelineError::TooLarge(m)
            | PipelineError::Unprocessable(m)
            | PipelineError::BadArgs(m) => m,
        }
    }
}

type Result<T> = std::result::Result<T, PipelineError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: SourceFormat,
    /// As stored (before orientation).
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
}

impl Probe {
    /// Width and height once the orientation is applied.
    pub fn oriented(&self) -> (u32, u32) {
        if swaps_axes(self.orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn unreadable(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Unprocessable(format!("the image cannot be read: {e}"))
}

/// A decoder's error: its own memory limit is a source too large (413,
/// as README documents), not an unreadable image.
fn decoder_failed(e: image::ImageError) -> PipelineError {
    match e {
        image::ImageError::Limits(_) => PipelineError::TooLarge(
            "decoding this source needs more memory than a render may use \
             (preview_max_decode_bytes, and the decoder's own ceiling)"
                .into(),
        ),
        other => unreadable(other),
    }
}

/// Width and height as the PNG IHDR or the GIF screen descriptor states
/// them, read from fixed offsets: the pixel limit is checked before a
/// decoder sees the header (decoders refuse huge claims with their own
/// memory errors first, which are not the documented answer).
fn declared_size(bytes: &[u8], format: SourceFormat) -> Option<(u32, u32)> {
    let be = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let le16 = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    match format {
        SourceFormat::Png if bytes.get(12..16) == Some(b"IHDR") => Some((be(16)?, be(20)?)),
        SourceFormat::Gif => Some((le16(6)? as u32, le16(8)? as u32)),
        _ => None,
    }
}

fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<()> {
    let pixels = width as u64 * height as u64;
    if pixels > limits.max_source_pixels {
        return Err(PipelineError::TooLarge(format!(
            "the source is {width}x{height} ({:.1} MP); previews are made from at most {:.1} MP (preview_max_source_pixels)",
            pixels as f64 / 1e6,
            limits.max_source_pixels as f64 / 1e6
        )));
    }
    Ok(())
}

fn sniff(bytes: &[u8]) -> Result<SourceFormat> {
    if bytes.starts_with(b"\xFF\xD8\xFF") {
        Ok(SourceFormat::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(SourceFormat::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Ok(SourceFormat::Gif)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Ok(SourceFormat::Webp)
    } else {
        Err(PipelineError::Unprocessable(
            "previews are made from JPEG, PNG, GIF and WebP images; this asset is none of them"
                .into(),
        ))
    }
}

/// Reads the header only and checks the source limits.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe> {
    if bytes.len() as u64 > limits.max_source_bytes {
        return Err(PipelineError::TooLarge(format!(
            "the source has {} bytes; previews are made from at most {} (preview_max_source_bytes)",
            bytes.len(),
            limits.max_source_bytes
        )));
    }
    let format = sniff(bytes)?;
    if let Some((w, h)) = declared_size(bytes, format) {
        check_pixels(w, h, limits)?;
    }
    let (width, height, orientation) = match format {
        SourceFormat::Jpeg => {
            let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
            d.read_info().map_err(unreadable)?;
            let info = d.info().ok_or_else(|| unreadable("no frame header"))?;
            let o = d
                .exif_data()
                .and_then(Orientation::from_exif_chunk)
                .unwrap_or(Orientation::NoTransforms);
            (info.width as u32, info.height as u32, o)
        }
        _ => {
            let mut dec = reader(bytes, format)?
                .into_decoder()
                .map_err(decoder_failed)?;
            let (w, h) = dec.dimensions();
            let o = dec.orientation().unwrap_or(Orientation::NoTransforms);
            (w, h, o)
        }
    };
    check_pixels(width, height, limits)?;
    if width == 0 || height == 0 {
        // Nothing to crop or fit (and the steps below divide by sides).
        return Err(unreadable(format!("the image is {width}x{height} pixels")));
    }
    Ok(Probe {
        format,
        width,
        height,
        orientation,
    })
}

fn reader(bytes: &[u8], format: SourceFormat) -> Result<ImageReader<Cursor<&[u8]>>> {
    let mut r = ImageReader::new(Cursor::new(bytes));
    r.set_format(match format {
        SourceFormat::Jpeg => image::ImageFormat::Jpeg,
        SourceFormat::Png => image::ImageFormat::Png,
        SourceFormat::Gif => image::ImageFormat::Gif,
        SourceFormat::Webp => image::ImageFormat::WebP,
    });
    Ok(r)
}

/// A rendered preview.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub format: Format,
}

/// Decoded pixels, 3 or 4 bytes wide.
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

/// Renders `args` from the image in `bytes`.
pub fn render(bytes: &[u8], args: &PreviewArgs, limits: &Limits) -> Result<Rendered> {
    let p = probe(bytes, limits)?;
    let (ow, oh) = p.oriented();
    let (tw, th) = args
        .output_size(ow, oh)
        .map_err(|e| PipelineError::BadArgs(e.0))?;
    if tw.max(th) > limits.max_output_side {
        return Err(PipelineError::Unprocessable(format!(
            "the output would be {tw}x{th}; the largest side allowed is {} (preview_max_output_side)",
            limits.max_output_side
        )));
    }
    let region = args
        .crop
        .map_or((0, 0, ow, oh), |c| (c.x, c.y, c.width, c.height));
    let keep_alpha = args.format != Format::Jpeg;
    let pixels = decode_region(bytes, &p, region, (tw, th), keep_alpha, limits)?;
    let pixels = resize(pixels, tw, th)?;
    let out = encode(pixels, args)?;
    Ok(Rendered {
        bytes: out,
        width: tw,
        height: th,
        format: args.format,
    })
}

/// The oriented `region` (x, y, w, h in oriented full-size pixels) of the
/// probed image, decoded at the smallest JPEG DCT scale that still covers
/// `target`, oriented and cropped but not resized. The decode budget is
/// checked first: over it is `TooLarge`, before any pixel is decoded.
pub fn decode_region(
    bytes: &[u8],
    p: &Probe,
    region: (u32, u32, u32, u32),
    target: (u32, u32),
    keep_alpha: bool,
    limits: &Limits,
) -> Result<Pixels> {
    let scale = if p.format == SourceFormat::Jpeg {
        jpeg_scale((region.2, region.3), target)
    } else {
        1
    };
    let need = decode_budget(bytes.len(), p, scale);
    if need > limits.max_decode_bytes {
        return Err(PipelineError::TooLarge(format!(
            "this output needs the {}x{} source decoded at 1/{scale} scale (about {} MiB); the limit is {} MiB (preview_max_decode_bytes): ask for a smaller box or crop",
            p.width,
            p.height,
            need >> 20,
            limits.max_decode_bytes >> 20
        )));
    }
    let (pixels, scale) = decode(bytes, p, (region.2, region.3), target, keep_alpha)?;
    let pixels = orient(pixels, p.orientation);
    Ok(crop(pixels, region, scale))
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
fn decode_budget(source_len: usize, p: &Probe, scale: u32) -> u64 {
    let pixels = p.width.div_ceil(scale) as u64 * p.height.div_ceil(scale) as u64;
    let per_pixel = if p.format == SourceFormat::Jpeg { 6 } else { 7 };
    source_len as u64 + pixels * per_pixel
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

/// Resizes to exactly `tw` x `th` (Lanczos3).
pub fn resize(p: Pixels, tw: u32, th: u32) -> Result<Pixels> {
    if p.dimensions() == (tw, th) {
        return Ok(p);
    }
    match p {
        Pixels::Rgb(i) => {
            let (w, h) = i.dimensions();
            let src = fr::images::TypedImageRef::<fr::pixels::U8x3>::from_buffer(w, h, i.as_raw())
                .map_err(|e| unreadable(format!("resize source: {e}")))?;
            let mut out = vec![0u8; tw as usize * th as usize * 3];
            let mut dst = fr::images::TypedImage::<fr::pixels::U8x3>::from_buffer(tw, th, &mut out)
                .map_err(|e| unreadable(format!("resize target: {e}")))?;
            let opts = fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
            fr::Resizer::new()
                .resize_typed(&src, &mut dst, &opts)
                .map_err(|e| unreadable(format!("resize: {e}")))?;
            drop(dst);
            Ok(Pixels::Rgb(
                RgbImage::from_raw(tw, th, out).expect("sized for the target"),
            ))
        }
        // Alpha is resized by `image` (no SIMD alpha path; see README).
        Pixels::Rgba(i) => Ok(Pixels::Rgba(image::imageops::resize(
            &i,
            tw,
            th,
            image::imageops::FilterType::Lanczos3,
        ))),
    }
}

fn encode(p: Pixels, args: &PreviewArgs) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let failed =
        |e: image::ImageError| PipelineError::Unprocessable(format!("encoding failed: {e}"));
    let (w, h) = p.dimensions();
    let (raw, color): (&[u8], image::ExtendedColorType) = match &p {
        Pixels::Rgb(i) => (i.as_raw(), image::ExtendedColorType::Rgb8),
        Pixels::Rgba(i) => (i.as_raw(), image::ExtendedColorType::Rgba8),
    };
    match args.format {
        Format::Jpeg => {
            let mut e = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, args.quality);
            if let Some(ppi) = args.ppi {
                e.set_pixel_density(image::codecs::jpeg::PixelDensity::dpi(ppi));
            }
            e.encode(raw, w, h, color).map_err(failed)?;
        }
        Format::Png => {
            image::codecs::png::PngEncoder::new(&mut out)
                .write_image(raw, w, h, color)
                .map_err(failed)?;
            if let Some(ppi) = args.ppi {
                out = png_with_density(out, ppi);
            }
        }
        Format::Webp => {
            image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                .encode(raw, w, h, color)
                .map_err(failed)?;
        }
        Format::Gif => {
            image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10)
                .encode(raw, w, h, color)
                .map_err(failed)?;
        }
    }
    Ok(out)
}

/// Inserts a `pHYs` chunk (pixels per metre) after `IHDR`.
fn png_with_density(png: Vec<u8>, ppi: u16) -> Vec<u8> {
    let ppm = (ppi as f64 / 0.0254).round() as u32;
    let mut data = Vec::with_capacity(13);
    data.extend_from_slice(b"pHYs");
    data.extend_from_slice(&ppm.to_be_bytes());
    data.extend_from_slice(&ppm.to_be_bytes());
    data.push(1); // unit: metre
    let crc = crc32(&data);
    // Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 crc).
    let at = 8 + 25;
    let mut out = Vec::with_capacity(png.len() + 21);
    out.extend_from_slice(&png[..at]);
    out.extend_from_slice(&9u32.to_be_bytes());
    out.extend_from_slice(&data);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&png[at..]);
    out
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
    //! Sources are generated here (no stored files): the expected outputs
    //! are their dimensions and pixel statistics, derived from how each
    //! source is drawn, so there is nothing to regenerate.
    use super::*;
    use crate::args::Rendition;
    use image::{Rgb, Rgba};

    fn args(s: &str) -> PreviewArgs {
        PreviewArgs::parse(Some(s), Rendition::Preview).unwrap()
    }

    /// Four flat quadrants: red, green / blue, white.
    fn quadrants(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| match (x < w / 2, y < h / 2) {
            (true, true) => Rgb([255, 0, 0]),
            (false, true) => Rgb([0, 255, 0]),
            (true, false) => Rgb([0, 0, 255]),
            (false, false) => Rgb([255, 255, 255]),
        })
    }

    fn jpeg(img: &RgbImage, q: u8) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q)
            .encode(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    /// A JPEG with an EXIF APP1 segment holding `orientation`.
    fn jpeg_with_orientation(img: &RgbImage, orientation: u16) -> Vec<u8> {
        let plain = jpeg(img, 95);
        let mut tiff = vec![
            b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
        ];
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    fn decoded(r: &Rendered) -> DynamicImage {
        image::load_from_memory(&r.bytes).unwrap()
    }

    /// Mean of each channel over a rectangle.
    fn mean(img: &RgbImage, x0: u32, y0: u32, w: u32, h: u32) -> [f64; 3] {
        let mut sum = [0f64; 3];
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                let p = img.get_pixel(x, y);
                for c in 0..3 {
                    sum[c] += p[c] as f64;
                }
            }
        }
        sum.map(|s| s / (w * h) as f64)
    }

    fn close(a: [f64; 3], b: [f64; 3], tol: f64) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn fit_keeps_the_picture_and_uses_dct_scaling() {
        let src = jpeg(&quadrants(2400, 1600), 90);
        let limits = Limits::default();
        let p = probe(&src, &limits).unwrap();
        let (pixels, scale) = decode(&src, &p, (2400, 1600), (300, 200), false).unwrap();
        assert_eq!(
            (scale, pixels.dimensions()),
            (8, (300, 200)),
            "decoded at 1/8"
        );
        let (_, scale) = decode(&src, &p, (2400, 1600), (601, 400), false).unwrap();
        assert_eq!(scale, 2, "1/4 would be 600 wide, less than 601");
        let r = render(&src, &args("maxWidth_600_maxHeight_400.jpg"), &limits).unwrap();
        assert_eq!((r.width, r.height), (600, 400));
        let out = decoded(&r).into_rgb8();
        assert_eq!(out.dimensions(), (600, 400));
        // Quadrant centres keep their colours.
        assert!(close(mean(&out, 100, 50, 100, 100), [255.0, 0.0, 0.0], 6.0));
        assert!(close(mean(&out, 400, 50, 100, 100), [0.0, 255.0, 0.0], 6.0));
        assert!(close(
            mean(&out, 100, 250, 100, 100),
            [0.0, 0.0, 255.0],
            6.0
        ));
        assert!(close(
            mean(&out, 400, 250, 100, 100),
            [255.0, 255.0, 255.0],
            6.0
        ));
    }

    #[test]
    fn the_reference_crop_removes_a_border() {
        let src = jpeg(&quadrants(600, 400), 95);
        let r = render(
            &src,
            &args("cropWidth_590_cropHeight_390_cropOffsetX_10_cropOffsetY_10.jpg"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!((r.width, r.height), (590, 390));
        let out = decoded(&r).into_rgb8();
        // The quadrant boundary moved 10 px up and left.
        assert!(close(mean(&out, 270, 170, 15, 15), [255.0, 0.0, 0.0], 8.0));
        assert!(close(
            mean(&out, 295, 195, 15, 15),
            [255.0, 255.0, 255.0],
            8.0
        ));
        let outside = render(
            &src,
            &args("cropWidth_600_cropHeight_390_cropOffsetX_10.jpg"),
            &Limits::default(),
        );
        assert_eq!(outside.unwrap_err().status(), 400);
        // Crop then fit.
        let r = render(
            &src,
            &args("cropWidth_300_cropHeight_200_maxWidth_150.png"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!((r.width, r.height), (150, 100));
        assert!(
            close(
                mean(&decoded(&r).into_rgb8(), 0, 0, 150, 100),
                [255.0, 0.0, 0.0],
                3.0
            ),
            "only the red quadrant"
        );
    }

    #[test]
    fn exif_orientation_is_applied() {
        // Orientation 6: the stored image is rotated 90° clockwise for display.
        let src = jpeg_with_orientation(&quadrants(400, 200), 6);
        let p = probe(&src, &Limits::default()).unwrap();
        assert_eq!(
            (p.orientation, p.oriented()),
            (Orientation::Rotate90, (200, 400))
        );
        let r = render(&src, &args("maxWidth_100.png"), &Limits::default()).unwrap();
        assert_eq!((r.width, r.height), (100, 200));
        let out = decoded(&r).into_rgb8();
        // Stored top-left (red) is displayed top-right; blue top-left.
        assert!(close(mean(&out, 60, 10, 30, 30), [255.0, 0.0, 0.0], 10.0));
        assert!(close(mean(&out, 10, 10, 30, 30), [0.0, 0.0, 255.0], 10.0));
    }

    #[test]
    fn alpha_is_kept_where_the_format_has_it_and_flattened_for_jpeg() {
        let img = RgbaImage::from_fn(64, 64, |x, _| {
            if x < 32 {
                Rgba([255, 0, 0, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(img.as_raw(), 64, 64, image::ExtendedColorType::Rgba8)
            .unwrap();
        let r = render(&png, &args("maxWidth_32.png"), &Limits::default()).unwrap();
        let out = decoded(&r).into_rgba8();
        assert_eq!(out.dimensions(), (32, 32));
        assert_eq!(
            out.get_pixel(28, 16)[3],
            0,
            "transparent half stays transparent"
        );
        let r = render(&png, &args("maxWidth_32.jpg"), &Limits::default()).unwrap();
        let out = decoded(&r).into_rgb8();
        assert!(
            close(mean(&out, 24, 0, 8, 32), [255.0, 255.0, 255.0], 6.0),
            "flattened on white"
        );
        assert!(close(mean(&out, 0, 0, 8, 32), [255.0, 0.0, 0.0], 8.0));
    }

    #[test]
    fn animated_gif_gives_its_first_frame() {
        let mut gif = Vec::new();
        {
            let mut e = image::codecs::gif::GifEncoder::new(&mut gif);
            for colour in [[0u8, 0, 255, 255], [255, 0, 0, 255]] {
                let frame = image::Frame::new(RgbaImage::from_pixel(40, 20, Rgba(colour)));
                e.encode_frame(frame).unwrap();
            }
        }
        let r = render(&gif, &args("maxWidth_20.png"), &Limits::default()).unwrap();
        let out = decoded(&r).into_rgb8();
        assert_eq!(out.dimensions(), (20, 10));
        assert!(
            close(mean(&out, 0, 0, 20, 10), [0.0, 0.0, 255.0], 4.0),
            "frame 0 is blue"
        );
    }

    #[test]
    fn limits_are_checked_from_the_header_before_decoding() {
        // A JPEG header claiming 10000 x 6000 (60 MP) and no image data:
        // refused from the header alone.
        let mut fake = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8];
        fake.extend_from_slice(&6000u16.to_be_bytes());
        fake.extend_from_slice(&10000u16.to_be_bytes());
        fake.extend_from_slice(&[1, 1, 0x11, 0]);
        fake.extend_from_slice(&[0xFF, 0xD9]);
        let e = render(&fake, &args("maxWidth_600.jpg"), &Limits::default()).unwrap_err();
        assert_eq!(e.status(), 413, "{e:?}");
        assert!(e.message().contains("60.0 MP"), "{e:?}");
        let src = jpeg(&quadrants(100, 100), 90);
        let tight = Limits {
            max_source_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            render(&src, &args("maxWidth_50.jpg"), &tight)
                .unwrap_err()
                .status(),
            413
        );
        let small_box = Limits {
            max_output_side: 64,
            ..Limits::default()
        };
        assert_eq!(
            render(&src, &args("maxWidth_100.jpg"), &small_box)
                .unwrap_err()
                .status(),
            422
        );
        // The decode budget: a small preview of a 1600 x 1600 source
        // decodes at 1/8 and fits; a full-resolution crop does not.
        let big = jpeg(&quadrants(1600, 1600), 80);
        let budget = Limits {
            max_decode_bytes: 2 << 20,
            ..Limits::default()
        };
        assert!(render(&big, &args("maxWidth_200.jpg"), &budget).is_ok());
        let e = render(&big, &args("cropWidth_1000_cropHeight_1000.jpg"), &budget).unwrap_err();
        assert_eq!(e.status(), 413);
        assert!(e.message().contains("1/1 scale"), "{e:?}");
    }

    /// A PNG made of its signature, an IHDR claiming `w` × `h` pixels of
    /// `color` type at `depth` bits, a few bytes of image data, an IEND.
    fn png_header(w: u32, h: u32, depth: u8, color: u8) -> Vec<u8> {
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(data);
            let crc = crc32(&c[4..]);
            c.extend_from_slice(&crc.to_be_bytes());
            c
        };
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]));
        png.extend(chunk(b"IEND", b""));
        png
    }

    #[test]
    fn oversized_png_headers_are_413_naming_the_variable() {
        let limits = Limits::default();
        // Over the pixel limit, whatever the memory the decoder would want
        // (60000 x 60000 RGBA16 would be 28 GB: the decoder's own memory
        // limit used to answer first, as 422 "Memory limit exceeded").
        for (w, h, depth, color) in [
            (60_000, 60_000, 16, 6),
            (20_000, 20_000, 8, 6),
            (10_000, 6_000, 8, 2),
            (50_001, 1_000, 1, 0),
            (u32::MAX >> 1, 1, 8, 0),
        ] {
            let e = render(
                &png_header(w, h, depth, color),
                &args("maxWidth_100.png"),
                &limits,
            )
            .unwrap_err();
            assert_eq!(e.status(), 413, "{w}x{h}: {e:?}");
            assert!(e.message().contains("preview_max_source_pixels"), "{e:?}");
        }
        // Under the pixel limit but over the decode budget: 413 too.
        let e = render(
            &png_header(7_000, 7_000, 16, 6),
            &args("maxWidth_100.png"),
            &limits,
        )
        .unwrap_err();
        assert_eq!(e.status(), 413, "{e:?}");
        assert!(e.message().contains("preview_max_decode_bytes"), "{e:?}");
        // No pixels at all, or a header with no data: unreadable (422).
        for (w, h) in [(0, 10), (10, 0), (0, 0)] {
            let e =
                render(&png_header(w, h, 8, 2), &args("maxWidth_100.png"), &limits).unwrap_err();
            assert_eq!(e.status(), 422, "{w}x{h}: {e:?}");
        }
        let e = render(
            &png_header(10, 10, 8, 2),
            &args("maxWidth_100.png"),
            &limits,
        )
        .unwrap_err();
        assert_eq!(e.status(), 422, "{e:?}");
    }

    #[test]
    fn corrupt_and_foreign_inputs_are_unprocessable() {
        let src = jpeg(&quadrants(200, 200), 90);
        let truncated = &src[..src.len() / 3];
        for bad in [
            truncated,
            b"%PDF-1.4 not an image".as_slice(),
            b"".as_slice(),
            &src[..4],
        ] {
            let e = render(bad, &args("maxWidth_50.jpg"), &Limits::default()).unwrap_err();
            assert_eq!(e.status(), 422, "{e:?}");
        }
    }

    #[test]
    fn every_format_and_density() {
        let src = jpeg(&quadrants(80, 60), 90);
        for (fmt, magic) in [
            ("jpg", &b"\xFF\xD8\xFF"[..]),
            ("png", b"\x89PNG"),
            ("webp", b"RIFF"),
            ("gif", b"GIF8"),
        ] {
            let r = render(
                &src,
                &args(&format!("maxWidth_40.{fmt}")),
                &Limits::default(),
            )
            .unwrap();
            assert!(r.bytes.starts_with(magic), "{fmt}");
            assert_eq!(decoded(&r).width(), 40, "{fmt}");
        }
        let r = render(&src, &args("maxWidth_40_ppi_300.jpg"), &Limits::default()).unwrap();
        // JFIF APP0: units 1 (inch), density 300 x 300.
        assert_eq!(&r.bytes[6..11], b"JFIF\0");
        assert_eq!(&r.bytes[13..18], &[1, 1, 44, 1, 44]);
        let r = render(&src, &args("maxWidth_40_ppi_254.png"), &Limits::default()).unwrap();
        let at = r.bytes.windows(4).position(|w| w == b"pHYs").unwrap();
        assert_eq!(
            &r.bytes[at + 4..at + 13],
            &[0, 0, 39, 16, 0, 0, 39, 16, 1],
            "10000 px/m"
        );
        assert_eq!(
            decoded(&r).width(),
            40,
            "the CRC is right: the PNG still decodes"
        );
    }
}
