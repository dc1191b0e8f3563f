//! A preview render from preview-args, as the imaging steps in order
//! (`assetgate-imaging`): probe the header (limits before any pixel is
//! decoded), decode the region at the DCT scale the output needs, orient,
//! crop, resize (Lanczos3), encode with the asked density.

use crate::args::{Format, PreviewArgs};
use assetgate_imaging::{
    Density, ImagingError, Limits, Options, Source, decode_region, encode, probe_source, resize,
};

type Result<T> = std::result::Result<T, ImagingError>;

/// A rendered preview.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub format: Format,
}

/// Renders `args` from the image in `src` (a buffer, or a stored blob
/// read as a stream).
pub fn render<S: Source + ?Sized>(
    src: &S,
    args: &PreviewArgs,
    limits: &Limits,
) -> Result<Rendered> {
    let p = probe_source(src, limits)?;
    let (ow, oh) = p.oriented();
    let (tw, th) = args
        .output_size(ow, oh)
        .map_err(|e| ImagingError::BadArgs(e.0))?;
    if tw.max(th) > limits.max_output_side {
        return Err(ImagingError::Unprocessable(format!(
            "the output would be {tw}x{th}; the largest side allowed is {} (preview_max_output_side)",
            limits.max_output_side
        )));
    }
    let region = args
        .crop
        .map_or((0, 0, ow, oh), |c| (c.x, c.y, c.width, c.height));
    let keep_alpha = args.format != Format::Jpeg;
    let pixels = decode_region(src, &p, region, (tw, th), keep_alpha, limits)?;
    let pixels = resize(pixels, tw, th)?;
    let options = Options {
        quality: args.quality,
        interlace: false,
        density: args.ppi.map(|ppi| Density {
            x: ppi.into(),
            y: ppi.into(),
        }),
    };
    let bytes = encode(&pixels, args.format, options)
        .map_err(|e| ImagingError::Unprocessable(format!("encoding failed: {e}")))?;
    Ok(Rendered {
        bytes,
        width: tw,
        height: th,
        format: args.format,
    })
}

#[cfg(test)]
mod tests {
    //! Sources are generated here (no stored files): the expected outputs
    //! are their dimensions and pixel statistics, derived from how each
    //! source is drawn, so there is nothing to regenerate.
    use super::*;
    use crate::args::Rendition;
    use assetgate_imaging::encode::crc32;
    use image::metadata::Orientation;
    use image::{DynamicImage, ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};

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
    fn fit_keeps_the_picture() {
        let src = jpeg(&quadrants(2400, 1600), 90);
        let limits = Limits::default();
        // The DCT scale itself: assetgate-imaging's decode tests.
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
        let p = assetgate_imaging::probe(&src, &Limits::default()).unwrap();
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
        png_header_interlaced(w, h, depth, color, false)
    }

    fn png_header_interlaced(w: u32, h: u32, depth: u8, color: u8, adam7: bool) -> Vec<u8> {
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
        ihdr.extend_from_slice(&[depth, color, 0, 0, adam7 as u8]);
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
        // Under the pixel limit but over the whole-decode budget: an
        // interlaced PNG (decoded whole) is 413 too; a plain one is read by
        // rows, and this header-only one is then the truncated image it is.
        let e = render(
            &png_header_interlaced(7_000, 7_000, 16, 6, true),
            &args("maxWidth_100.png"),
            &limits,
        )
        .unwrap_err();
        assert_eq!(e.status(), 413, "{e:?}");
        assert!(e.message().contains("preview_max_decode_bytes"), "{e:?}");
        let e = render(
            &png_header(7_000, 7_000, 16, 6),
            &args("maxWidth_100.png"),
            &limits,
        )
        .unwrap_err();
        assert_eq!(e.status(), 422, "{e:?}");
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
