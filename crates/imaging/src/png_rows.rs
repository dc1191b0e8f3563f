//! PNGs decoded row by row into the shrinker: rows above and below the
//! region are read and dropped, columns outside it are cut as each row
//! arrives, and only one row and the shrunk output are ever held. Used
//! when the whole decode would not fit the budget; interlaced PNGs (whose
//! rows arrive pass by pass) and oriented ones keep the whole decode.

use crate::Pixels;
use crate::error::{Result, unreadable};
use crate::shrink::Shrinker;
use image::{RgbImage, RgbaImage};
use std::io::{BufReader, Cursor, Read, Seek};

/// What the header says about the rows, for choosing the path.
pub(crate) fn streamable(bytes: &[u8]) -> bool {
    png::Decoder::new(Cursor::new(bytes))
        .read_header_info()
        .is_ok_and(|info| !info.interlaced)
}

/// The `region` (x, y, w, h, stored pixels) shrunk by `factor`, RGB, or
/// RGBA when `keep_alpha` and the source has alpha.
pub(crate) fn decode_shrunk(
    source: impl Read + Seek,
    region: (u32, u32, u32, u32),
    factor: u32,
    keep_alpha: bool,
) -> Result<Pixels> {
    let mut d = png::Decoder::new(BufReader::new(source));
    d.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = d.read_info().map_err(unreadable)?;
    let (color, _) = reader.output_color_type();
    // After EXPAND: grey, grey + alpha, RGB or RGBA, never indexed.
    let src_channels = color.samples();
    if !(1..=4).contains(&src_channels) || color == png::ColorType::Indexed {
        return Err(unreadable(format!("unexpected PNG colour type {color:?}")));
    }
    let has_alpha = matches!(color, png::ColorType::Rgba | png::ColorType::GrayscaleAlpha);
    let out_channels = if keep_alpha && has_alpha { 4 } else { 3 };
    let (x0, y0, w, h) = region;
    let mut shrinker = Shrinker::new(w, h, out_channels, factor);
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
                convert(px, out_channels, &mut row_out);
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

/// One pixel of 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA) samples to
/// RGB(A); alpha composed over white when it is dropped.
fn convert(px: &[u8], out_channels: usize, out: &mut Vec<u8>) {
    let (rgb, a) = match *px {
        [g] => ([g; 3], 255),
        [g, a] => ([g; 3], a),
        [r, g, b] => ([r, g, b], 255),
        [r, g, b, a, ..] => ([r, g, b], a),
        [] => ([255; 3], 255),
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
