//! PNGs decoded row by row into the shrinker: rows above and below the
//! region are read and dropped, columns outside it are cut as each row
//! arrives, and only one row and the shrunk output are ever held. Used
//! when the whole decode would not fit the budget; interlaced PNGs (whose
//! rows arrive pass by pass) and oriented ones keep the whole decode.

use crate::Pixels;
use crate::error::{Result, unreadable};
use crate::shrink::Shrinker;
use image::{RgbImage, RgbaImage};
use std::io::Cursor;

/// What the header says about the rows, for choosing the path.
pub(crate) fn streamable(bytes: &[u8]) -> bool {
    png::Decoder::new(Cursor::new(bytes))
        .read_header_info()
        .is_ok_and(|info| !info.interlaced)
}

/// The `region` (x, y, w, h, stored pixels) shrunk by `factor`, RGB, or
/// RGBA when `keep_alpha` and the source has alpha.
pub(crate) fn decode_shrunk(
    bytes: &[u8],
    region: (u32, u32, u32, u32),
    factor: u32,
    keep_alpha: bool,
) -> Result<Pixels> {
    let mut d = png::Decoder::new(Cursor::new(bytes));
    d.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = d.read_info().map_err(unreadable)?;
    let (color, _) = reader.output_color_type();
    let src_channels = color.samples();
    let has_alpha = matches!(color, png::ColorType::Rgba | png::ColorType::GrayscaleAlpha);
    let out_channels = if keep_alpha && has_alpha { 4 } else { 3 };
    let (x0, y0, w, h) = region;
    let mut shrinker = Shrinker::new(w, out_channels, factor);
    let mut row_out = Vec::with_capacity(w as usize * out_channels);
    let mut y = 0u32;
    while y < y0 + h {
        let Some(row) = reader.next_row().map_err(unreadable)? else {
            return Err(unreadable("the image data ends early"));
        };
        if y >= y0 {
            let data = row.data();
            let start = x0 as usize * src_channels;
            let cut = data
                .get(start..start + w as usize * src_channels)
                .ok_or_else(|| unreadable("a row is shorter than its header says"))?;
            row_out.clear();
            for px in cut.chunks_exact(src_channels) {
                convert(px, color, out_channels, &mut row_out);
            }
            shrinker.push(&row_out);
        }
        y += 1;
    }
    let (sw, sh, out) = shrinker.finish();
    Ok(if out_channels == 4 {
        Pixels::Rgba(RgbaImage::from_raw(sw, sh, out).ok_or_else(|| unreadable("short output"))?)
    } else {
        Pixels::Rgb(RgbImage::from_raw(sw, sh, out).ok_or_else(|| unreadable("short output"))?)
    })
}

/// One pixel to RGB(A); alpha composed over white when it is dropped.
fn convert(px: &[u8], color: png::ColorType, out_channels: usize, out: &mut Vec<u8>) {
    let (rgb, a) = match color {
        png::ColorType::Grayscale => ([px[0]; 3], 255),
        png::ColorType::GrayscaleAlpha => ([px[0]; 3], px[1]),
        png::ColorType::Rgba => ([px[0], px[1], px[2]], px[3]),
        // EXPAND turned palettes into RGB(A); RGB as is.
        _ => ([px[0], px[1], px[2]], 255),
    };
    if out_channels == 4 {
        out.extend_from_slice(&[rgb[0], rgb[1], rgb[2], a]);
    } else if a == 255 {
        out.extend_from_slice(&rgb);
    } else {
        let a = a as u32;
        out.extend(
            rgb.iter()
                .map(|&c| ((c as u32 * a + 255 * (255 - a)) / 255) as u8),
        );
    }
}
