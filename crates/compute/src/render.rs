//! Making one rendition from source bytes, as ordered steps: image
//! renditions probe the header (limits before any decode), crop
//! (`postProcess`), size (`convertToDpi`, then `width`/`height` fit),
//! decode at the smallest JPEG DCT scale that covers the output, resize,
//! watermark (`postProcess`), encode. `text` and `xmp` read the bytes.
//! Failures carry the reference's `errorReason`.

use crate::config::Config;
use crate::error::{Failure, Reason};
use crate::request::{Fmt, Rendition};
use assetgate_imaging::geometry::fit;
use assetgate_imaging::{ImagingError, Options, Pixels, density, encode};
use image::RgbaImage;

/// A made rendition.
#[derive(Debug, Clone)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `repo:encoding` for text.
    pub encoding: Option<&'static str>,
}

/// JPEG quality when the rendition names none.
pub const DEFAULT_QUALITY: u8 = 90;

fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\xFF\xD8\xFF")
        || bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || bytes.starts_with(b"GIF87a")
        || bytes.starts_with(b"GIF89a")
        || (bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP")
}

/// Makes an image rendition. `watermark` holds the watermark's bytes when
/// the rendition has one.
pub fn image(
    src: &[u8],
    r: &Rendition,
    watermark: Option<&[u8]>,
    cfg: &Config,
) -> Result<Output, Failure> {
    if !is_image(src) {
        return Err(Failure::new(
            Reason::SourceFormatUnsupported,
            "image renditions are made from JPEG, PNG, GIF and WebP sources; this source is none of them",
        ));
    }
    let limits = cfg.preview_limits();
    let probe = assetgate_imaging::probe(src, &limits).map_err(|e| match e {
        ImagingError::TooLarge(m) => Failure::new(Reason::SourceUnsupported, m),
        other => Failure::new(Reason::SourceCorrupt, other.message().to_string()),
    })?;
    let (ow, oh) = probe.oriented();
    let region = match r.crop {
        Some(c) => {
            let inside = c.x.checked_add(c.w).is_some_and(|v| v <= ow)
                && c.y.checked_add(c.h).is_some_and(|v| v <= oh);
            if !inside {
                return Err(Failure::generic(format!(
                    "the crop {}x{} at ({}, {}) is outside the {ow}x{oh} source",
                    c.w, c.h, c.x, c.y
                )));
            }
            (c.x, c.y, c.w, c.h)
        }
        None => (0, 0, ow, oh),
    };
    let (mut w, mut h) = (region.2, region.3);
    if let Some(to) = r.convert_to_dpi {
        let from = density::declared(src);
        w = ((w as u64 * to.x as u64).div_ceil(from.x.max(1) as u64)).max(1) as u32;
        h = ((h as u64 * to.y as u64).div_ceil(from.y.max(1) as u64)).max(1) as u32;
    }
    let (tw, th) = fit(w, h, r.width, r.height);
    if tw.max(th) > cfg.max_output_side {
        return Err(Failure::generic(format!(
            "the rendition would be {tw}x{th}; the largest side allowed is {}",
            cfg.max_output_side
        )));
    }
    let keep_alpha = r.fmt != Fmt::Jpg;
    let pixels =
        assetgate_imaging::decode_region(src, &probe, region, (tw, th), keep_alpha, &limits)
            .map_err(|e| match e {
                ImagingError::TooLarge(m) => Failure::new(Reason::ServiceOverLoad, m),
                other => Failure::new(Reason::SourceCorrupt, other.message().to_string()),
            })?;
    let mut pixels = assetgate_imaging::resize(pixels, tw, th)
        .map_err(|e| Failure::generic(e.message().to_string()))?;
    if let (Some(wm), Some(bytes)) = (&r.watermark, watermark) {
        apply_watermark(&mut pixels, bytes, wm.scale)?;
    }
    let dpi = r.dpi.or(r.convert_to_dpi);
    let opts = Options {
        quality: r.quality.unwrap_or(DEFAULT_QUALITY),
        interlace: r.interlace,
        density: dpi.map(Into::into),
    };
    let bytes = match (r.fmt, r.jpeg_size) {
        (Fmt::Jpg, Some(max)) => jpeg_within(&pixels, opts, max)?,
        _ => encode(&pixels, image_format(r.fmt)?, opts).map_err(Failure::generic)?,
    };
    Ok(Output {
        bytes,
        mime: r.fmt.mime(),
        width: Some(tw),
        height: Some(th),
        encoding: None,
    })
}

/// The encoder format of an image rendition format.
fn image_format(fmt: Fmt) -> Result<assetgate_imaging::Format, Failure> {
    use assetgate_imaging::Format;
    Ok(match fmt {
        Fmt::Jpg => Format::Jpeg,
        Fmt::Png => Format::Png,
        Fmt::Webp => Format::Webp,
        Fmt::Gif => Format::Gif,
        Fmt::Tif => Format::Tiff,
        Fmt::Text | Fmt::Xmp | Fmt::Zip => {
            return Err(Failure::generic(format!("{fmt:?} is not an image format")));
        }
    })
}

/// The highest quality (up to the asked one) whose JPEG fits `max` bytes;
/// quality 1 if none does.
fn jpeg_within(p: &Pixels, opts: Options, max: u64) -> Result<Vec<u8>, Failure> {
    let enc = |q: u8| {
        encode(
            p,
            assetgate_imaging::Format::Jpeg,
            Options { quality: q, ..opts },
        )
        .map_err(Failure::generic)
    };
    let (mut lo, mut hi) = (1u8, opts.quality.max(1));
    let top = enc(hi)?;
    if top.len() as u64 <= max {
        return Ok(top);
    }
    let mut best = None;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let out = enc(mid)?;
        if out.len() as u64 <= max {
            best = Some(out);
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    match best {
        Some(b) => Ok(b),
        None => enc(1),
    }
}

/// Centres the PNG watermark, fitted to the rendition × `scale` keeping
/// its aspect ratio, and composes it with its alpha.
fn apply_watermark(p: &mut Pixels, bytes: &[u8], scale: f64) -> Result<(), Failure> {
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(Failure::generic("the watermark image must be a PNG"));
    }
    let wm = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| Failure::generic(format!("the watermark cannot be read: {e}")))?
        .into_rgba8();
    let (w, h) = p.dimensions();
    let (bw, bh) = (((w as f64) * scale).max(1.0), ((h as f64) * scale).max(1.0));
    let s = (bw / wm.width() as f64).min(bh / wm.height() as f64);
    let (mw, mh) = (
        ((wm.width() as f64 * s).round() as u32).max(1),
        ((wm.height() as f64 * s).round() as u32).max(1),
    );
    let wm: RgbaImage = image::imageops::resize(&wm, mw, mh, image::imageops::FilterType::Triangle);
    let (x0, y0) = ((w.saturating_sub(mw)) / 2, (h.saturating_sub(mh)) / 2);
    let blend = |dst: &mut [u8], src: &image::Rgba<u8>| {
        let a = src[3] as u32;
        for c in 0..3 {
            dst[c] = ((src[c] as u32 * a + dst[c] as u32 * (255 - a) + 127) / 255) as u8;
        }
        if dst.len() == 4 {
            dst[3] = (a + dst[3] as u32 * (255 - a) / 255).min(255) as u8;
        }
    };
    for (x, y, px) in wm.enumerate_pixels() {
        let (tx, ty) = (x0 + x, y0 + y);
        if tx >= w || ty >= h {
            continue;
        }
        match p {
            Pixels::Rgb(i) => blend(&mut i.get_pixel_mut(tx, ty).0, px),
            Pixels::Rgba(i) => blend(&mut i.get_pixel_mut(tx, ty).0, px),
        }
    }
    Ok(())
}

/// Media types treated as text.
fn text_like(mime: &str) -> bool {
    let m = assetgate_web::mime::essence(mime);
    m.starts_with("text/")
        || m.ends_with("+xml")
        || m.ends_with("+json")
        || matches!(
            m.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-yaml"
                | "application/yaml"
        )
}

/// `text`: the text of text-like sources (markup removed from HTML and
/// XML), as UTF-8.
pub fn text(src: &[u8], mime: &str) -> Result<Output, Failure> {
    let undeclared = matches!(mime, "" | "application/octet-stream");
    let looks_text = std::str::from_utf8(src).is_ok() && !src.contains(&0);
    if !(text_like(mime) || undeclared && looks_text) {
        return Err(Failure::new(
            Reason::RenditionFormatUnsupported,
            format!(
                "text is extracted from text-like sources; this source is {}",
                if mime.is_empty() { "binary" } else { mime }
            ),
        ));
    }
    let s = String::from_utf8_lossy(src);
    let m = mime.to_ascii_lowercase();
    let out = if m.contains("html") || m.contains("xml") {
        strip_markup(&s)
    } else {
        s.into_owned()
    };
    Ok(Output {
        bytes: out.into_bytes(),
        mime: "text/plain",
        width: None,
        height: None,
        encoding: Some("utf-8"),
    })
}

fn strip_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len() / 2);
    let mut rest = s;
    let lower = s.to_ascii_lowercase();
    let mut skip_until: Option<&str> = None;
    let mut pos = 0;
    while let Some(i) = rest.find('<') {
        if skip_until.is_none() {
            out.push_str(&decode_entities(&rest[..i]));
        }
        let tag_end = rest[i..].find('>').map_or(rest.len(), |j| i + j + 1);
        let tag = &lower[pos + i..pos + tag_end];
        match skip_until {
            Some(end) if tag.starts_with(end) => skip_until = None,
            Some(_) => {}
            None if tag.starts_with("<script") => skip_until = Some("</script"),
            None if tag.starts_with("<style") => skip_until = Some("</style"),
            None if tag.starts_with("<br")
                || tag.starts_with("<p")
                || tag.starts_with("</p")
                || tag.starts_with("<div")
                || tag.starts_with("<li")
                || tag.starts_with("<h") =>
            {
                out.push('\n')
            }
            None => {}
        }
        pos += tag_end;
        rest = &rest[tag_end..];
    }
    if skip_until.is_none() {
        out.push_str(&decode_entities(rest));
    }
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// `xmp`: the source's embedded XMP packet, or one generated from what the
/// service knows (format, size, pixel dimensions).
pub fn xmp(src: &[u8], mime: &str, cfg: &Config) -> Result<Output, Failure> {
    let bytes = match find_packet(src) {
        Some(p) => p.to_vec(),
        None => generated_packet(src, mime, cfg).into_bytes(),
    };
    Ok(Output {
        bytes,
        mime: "application/rdf+xml",
        width: None,
        height: None,
        encoding: Some("utf-8"),
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn find_packet(src: &[u8]) -> Option<&[u8]> {
    let start = find(src, b"<x:xmpmeta", 0)?;
    let end = find(src, b"</x:xmpmeta>", start)? + b"</x:xmpmeta>".len();
    let packet = &src[start..end];
    std::str::from_utf8(packet).ok()?;
    Some(packet)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn generated_packet(src: &[u8], mime: &str, cfg: &Config) -> String {
    let mut props = format!("<dc:format>{}</dc:format>", xml_escape(mime));
    if is_image(src)
        && let Ok(p) = assetgate_imaging::probe(src, &cfg.preview_limits())
    {
        let (w, h) = p.oriented();
        props.push_str(&format!(
            "<tiff:ImageWidth>{w}</tiff:ImageWidth><tiff:ImageLength>{h}</tiff:ImageLength>"
        ));
        let assetgate_imaging::Density { x, y } = density::declared(src);
        props.push_str(&format!(
            "<tiff:XResolution>{x}/1</tiff:XResolution><tiff:YResolution>{y}/1</tiff:YResolution>"
        ));
    }
    format!(
        concat!(
            "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n",
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">",
            "<rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:tiff=\"http://ns.adobe.com/tiff/1.0/\">",
            "{}</rdf:Description></rdf:RDF></x:xmpmeta>\n<?xpacket end=\"w\"?>"
        ),
        props
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Dpi;
    use crate::request::{Crop, Watermark};
    use image::{Rgb, RgbImage, Rgba};

    fn rendition(fmt: Fmt) -> Rendition {
        Rendition {
            fmt,
            target: None,
            width: None,
            height: None,
            quality: None,
            interlace: false,
            jpeg_size: None,
            dpi: None,
            convert_to_dpi: None,
            crop: None,
            watermark: None,
            embed_binary_limit: 0,
            files: Vec::new(),
            ignore_duplicates: false,
            original: serde_json::Value::Null,
        }
    }

    fn photo(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    fn dims(bytes: &[u8]) -> (u32, u32) {
        let i = image::load_from_memory(bytes).unwrap();
        (i.width(), i.height())
    }

    #[test]
    fn fit_crop_dpi_and_formats() {
        let cfg = Config::default();
        let src = photo(400, 300);
        let mut r = rendition(Fmt::Png);
        r.width = Some(100);
        assert_eq!(dims(&image(&src, &r, None, &cfg).unwrap().bytes), (100, 75));
        r.width = Some(1000); // never upscaled
        assert_eq!(
            dims(&image(&src, &r, None, &cfg).unwrap().bytes),
            (400, 300)
        );
        r.width = None;
        r.crop = Some(Crop {
            x: 100,
            y: 50,
            w: 200,
            h: 100,
        });
        assert_eq!(
            dims(&image(&src, &r, None, &cfg).unwrap().bytes),
            (200, 100)
        );
        r.crop = Some(Crop {
            x: 300,
            y: 0,
            w: 200,
            h: 100,
        });
        assert_eq!(
            image(&src, &r, None, &cfg).unwrap_err().reason,
            Reason::GenericError
        );
        // 72 dpi (no JFIF density says otherwise... the encoder writes 1:1
        // aspect, unit 0) → 144 dpi doubles the pixels.
        let mut r = rendition(Fmt::Jpg);
        r.convert_to_dpi = Some(Dpi { x: 144, y: 144 });
        let out = image(&src, &r, None, &cfg).unwrap();
        assert_eq!((out.width, out.height), (Some(800), Some(600)));
        assert_eq!(
            Dpi::from(density::declared(&out.bytes)),
            Dpi { x: 144, y: 144 }
        );
    }

    #[test]
    fn jpeg_size_picks_a_quality_that_fits() {
        let cfg = Config::default();
        let src = photo(300, 200);
        let mut r = rendition(Fmt::Jpg);
        let full = image(&src, &r, None, &cfg).unwrap().bytes.len() as u64;
        r.jpeg_size = Some(full / 2);
        let out = image(&src, &r, None, &cfg).unwrap();
        assert!(
            (out.bytes.len() as u64) <= full / 2,
            "{} > {}",
            out.bytes.len(),
            full / 2
        );
        assert!(
            (out.bytes.len() as u64) > full / 8,
            "quality dropped further than needed"
        );
    }

    #[test]
    fn watermark_is_centred() {
        let cfg = Config::default();
        let white = RgbImage::from_pixel(100, 50, Rgb([255, 255, 255]));
        let mut src = Vec::new();
        image::codecs::png::PngEncoder::new(&mut src)
            .write_image(white.as_raw(), 100, 50, image::ExtendedColorType::Rgb8)
            .unwrap();
        let mark = RgbaImage::from_pixel(10, 10, Rgba([0, 0, 0, 255]));
        let mut wm = Vec::new();
        image::codecs::png::PngEncoder::new(&mut wm)
            .write_image(mark.as_raw(), 10, 10, image::ExtendedColorType::Rgba8)
            .unwrap();
        let mut r = rendition(Fmt::Png);
        r.watermark = Some(Watermark {
            image: "data:,".into(),
            scale: 0.5,
        });
        let out = image(&src, &r, Some(&wm), &cfg).unwrap();
        let img = image::load_from_memory(&out.bytes).unwrap().into_rgb8();
        // Box 50x25 → mark 25x25, centred at x 37..62, y 12..37.
        assert_eq!(img.get_pixel(50, 25).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(30, 25).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(50, 5).0, [255, 255, 255]);
        use image::ImageEncoder;
    }

    #[test]
    fn reasons_for_bad_sources() {
        let cfg = Config {
            max_source_pixels: 1000,
            ..Config::default()
        };
        let r = rendition(Fmt::Png);
        assert_eq!(
            image(b"%PDF-1.4", &r, None, &cfg).unwrap_err().reason,
            Reason::SourceFormatUnsupported
        );
        assert_eq!(
            image(&photo(100, 100), &r, None, &cfg).unwrap_err().reason,
            Reason::SourceUnsupported
        );
        let mut corrupt = photo(20, 20);
        corrupt.truncate(30);
        assert_eq!(
            image(&corrupt, &r, None, &Config::default())
                .unwrap_err()
                .reason,
            Reason::SourceCorrupt
        );
        let tight = Config {
            max_decode_bytes: 1 << 20,
            ..Config::default()
        };
        assert_eq!(
            image(&photo(1000, 1000), &r, None, &tight)
                .unwrap_err()
                .reason,
            Reason::ServiceOverLoad
        );
    }

    #[test]
    fn text_and_xmp() {
        let out = text(
            b"<html><body><h1>Title</h1><script>x()</script><p>a &amp; b</p></body></html>",
            "text/html",
        )
        .unwrap();
        assert_eq!(String::from_utf8(out.bytes).unwrap(), "Title\na & b");
        assert_eq!(text(b"plain", "").unwrap().bytes, b"plain");
        assert_eq!(
            text(&photo(8, 8), "image/jpeg").unwrap_err().reason,
            Reason::RenditionFormatUnsupported
        );
        let cfg = Config::default();
        let embedded = b"junk<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF/></x:xmpmeta>junk";
        assert_eq!(
            xmp(embedded, "image/jpeg", &cfg).unwrap().bytes,
            &embedded[4..embedded.len() - 4]
        );
        let generated =
            String::from_utf8(xmp(&photo(30, 20), "image/jpeg", &cfg).unwrap().bytes).unwrap();
        assert!(generated.contains(
            "<tiff:ImageWidth>30</tiff:ImageWidth><tiff:ImageLength>20</tiff:ImageLength>"
        ));
        assert!(generated.contains("<dc:format>image/jpeg</dc:format>"));
    }
}
