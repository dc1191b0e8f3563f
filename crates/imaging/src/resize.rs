//! Resizing to an exact size (Lanczos3), SIMD on RGB.

use crate::Pixels;
use crate::error::{Result, unreadable};
use fast_image_resize as fr;
use image::RgbImage;

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
        // Alpha is resized by `image` (no SIMD alpha path; see docs/03-preview.md).
        Pixels::Rgba(i) => Ok(Pixels::Rgba(image::imageops::resize(
            &i,
            tw,
            th,
            image::imageops::FilterType::Lanczos3,
        ))),
    }
}
