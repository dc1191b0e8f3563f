//! The header read: format, size and EXIF orientation, with the source
//! limits checked before a decoder allocates anything.

use crate::Limits;
use crate::error::{ImagingError, Result, decoder_failed, unreadable};
use crate::source::{HEAD_BYTES, Source};
use image::metadata::Orientation;
use image::{ImageDecoder, ImageReader};
use std::io::Cursor;

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
        return Err(ImagingError::TooLarge(format!(
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
        Err(ImagingError::Unprocessable(
            "previews are made from JPEG, PNG, GIF and WebP images; this asset is none of them"
                .into(),
        ))
    }
}

/// Reads the header only and checks the source limits.
/// [`probe`] from the first [`HEAD_BYTES`] of a source, which may be a
/// stream; the whole source when the header runs past them.
pub fn probe_source<S: Source + ?Sized>(src: &S, limits: &Limits) -> Result<Probe> {
    if src.len() > limits.max_source_bytes {
        return Err(ImagingError::TooLarge(format!(
            "the source has {} bytes; previews are made from at most {} (preview_max_source_bytes)",
            src.len(),
            limits.max_source_bytes
        )));
    }
    let head = src.head(HEAD_BYTES)?;
    match probe(&head, limits) {
        Err(ImagingError::Unprocessable(_)) if (head.len() as u64) < src.len() => {
            drop(head);
            probe(&src.bytes()?, limits)
        }
        other => other,
    }
}

pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe> {
    if bytes.len() as u64 > limits.max_source_bytes {
        return Err(ImagingError::TooLarge(format!(
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

pub(crate) fn reader(bytes: &[u8], format: SourceFormat) -> Result<ImageReader<Cursor<&[u8]>>> {
    let mut r = ImageReader::new(Cursor::new(bytes));
    r.set_format(match format {
        SourceFormat::Jpeg => image::ImageFormat::Jpeg,
        SourceFormat::Png => image::ImageFormat::Png,
        SourceFormat::Gif => image::ImageFormat::Gif,
        SourceFormat::Webp => image::ImageFormat::WebP,
    });
    Ok(r)
}
