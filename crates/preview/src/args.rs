//! `preview-args`: `key_value` pairs joined by `_`, then the output format
//! as an extension — `maxWidth_600_maxHeight_400.jpg`,
//! `cropWidth_590_cropHeight_390_cropOffsetX_10_cropOffsetY_10.jpg`.
//!
//! One table maps each key to a small parser that checks the value's range;
//! an unknown key, a key given twice, a missing or out-of-range value is an
//! error naming it. The steps apply in a fixed order, whatever the order in
//! the string: EXIF orientation, then the crop (in oriented pixels), then
//! the fit inside `maxWidth` × `maxHeight` (aspect ratio kept, never
//! upscaled), then encoding.

pub use assetgate_imaging::Format;
use assetgate_imaging::geometry::fit;
use std::fmt;

/// What the client asks for (`rendition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    /// The stored bytes, as they are.
    Native,
    /// A preview: by default, fit in 1600 × 1600 as JPEG.
    Preview,
    /// A thumbnail: by default, fit in 256 × 256 as JPEG.
    Thumb,
}

impl Rendition {
    pub fn parse(s: &str) -> Result<Rendition, ArgsError> {
        match s {
            "native" => Ok(Rendition::Native),
            "preview" => Ok(Rendition::Preview),
            "thumb" => Ok(Rendition::Thumb),
            other => Err(ArgsError(format!(
                "rendition `{other}` is not one of native, preview, thumb"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rendition::Native => "native",
            Rendition::Preview => "preview",
            Rendition::Thumb => "thumb",
        }
    }

    /// The box used when no `maxWidth`/`maxHeight`/crop is given.
    pub fn default_box(self) -> Option<(u32, u32)> {
        match self {
            Rendition::Native => None,
            Rendition::Preview => Some((1600, 1600)),
            Rendition::Thumb => Some((256, 256)),
        }
    }
}

/// The output formats `preview-args` may name (by extension): the
/// encoders' formats but TIFF.
fn format_from_extension(ext: &str) -> Option<Format> {
    Some(match ext.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => Format::Jpeg,
        "png" => Format::Png,
        "webp" => Format::Webp,
        "gif" => Format::Gif,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub width: u32,
    pub height: u32,
    pub x: u32,
    pub y: u32,
}

/// Parsed, validated arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewArgs {
    pub max_width: Option<u32>,
    pub max_height: Option<u32>,
    pub crop: Option<Crop>,
    /// JPEG quality 1–100 (`quality_N`, default 85). WebP output is
    /// lossless, so it ignores it.
    pub quality: u8,
    /// Pixels per inch written in the output's density (`ppi_N`, 1–2400);
    /// no resampling.
    pub ppi: Option<u16>,
    pub format: Format,
}

pub const DEFAULT_QUALITY: u8 = 85;
/// Largest value a size key accepts (the output box limit is separate).
pub const MAX_DIMENSION: u32 = 65_535;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError(pub String);

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Accumulates keys as they are parsed.
#[derive(Default)]
struct Fields {
    max_width: Option<u32>,
    max_height: Option<u32>,
    crop_width: Option<u32>,
    crop_height: Option<u32>,
    crop_x: Option<u32>,
    crop_y: Option<u32>,
    quality: Option<u32>,
    ppi: Option<u32>,
}

type Slot = fn(&mut Fields) -> &mut Option<u32>;

/// The grammar: key, accepted range, where the value goes.
const KEYS: &[(&str, u32, u32, Slot)] = &[
    ("maxWidth", 1, MAX_DIMENSION, |f| &mut f.max_width),
    ("maxHeight", 1, MAX_DIMENSION, |f| &mut f.max_height),
    ("cropWidth", 1, MAX_DIMENSION, |f| &mut f.crop_width),
    ("cropHeight", 1, MAX_DIMENSION, |f| &mut f.crop_height),
    ("cropOffsetX", 0, MAX_DIMENSION, |f| &mut f.crop_x),
    ("cropOffsetY", 0, MAX_DIMENSION, |f| &mut f.crop_y),
    ("quality", 1, 100, |f| &mut f.quality),
    ("ppi", 1, 2400, |f| &mut f.ppi),
];

impl PreviewArgs {
    /// Parses `preview-args`; `None` (absent) gives the rendition's default
    /// box as JPEG.
    pub fn parse(raw: Option<&str>, rendition: Rendition) -> Result<PreviewArgs, ArgsError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            let (w, h) = rendition.default_box().unwrap_or((1600, 1600));
            return Ok(PreviewArgs {
                max_width: Some(w),
                max_height: Some(h),
                crop: None,
                quality: DEFAULT_QUALITY,
                ppi: None,
                format: Format::Jpeg,
            });
        };
        let (body, ext) = raw.rsplit_once('.').ok_or_else(|| {
            ArgsError(format!(
                "preview-args `{raw}` needs an output format extension (.jpg, .png, .webp, .gif)"
            ))
        })?;
        let format = format_from_extension(ext).ok_or_else(|| {
            ArgsError(format!(
                "output format `.{ext}` is not one of .jpg, .png, .webp, .gif"
            ))
        })?;
        let mut f = Fields::default();
        let tokens: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('_').collect()
        };
        for pair in tokens.chunks(2) {
            let key = pair[0];
            let Some(&(_, min, max, slot)) = KEYS.iter().find(|(k, ..)| *k == key) else {
                let known: Vec<&str> = KEYS.iter().map(|(k, ..)| *k).collect();
                return Err(ArgsError(format!(
                    "unknown preview-args key `{key}` (known: {})",
                    known.join(", ")
                )));
            };
            let value = pair
                .get(1)
                .ok_or_else(|| ArgsError(format!("`{key}` needs a value (`{key}_N`)")))?;
            let n = value
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n) && !value.starts_with('+'))
                .ok_or_else(|| {
                    ArgsError(format!(
                        "`{key}` must be a whole number in {min}..={max}, got `{value}`"
                    ))
                })?;
            let slot = slot(&mut f);
            if slot.replace(n).is_some() {
                return Err(ArgsError(format!("`{key}` is given twice")));
            }
        }
        let crop = match (f.crop_width, f.crop_height) {
            (Some(width), Some(height)) => Some(Crop {
                width,
                height,
                x: f.crop_x.unwrap_or(0),
                y: f.crop_y.unwrap_or(0),
            }),
            (None, None) if f.crop_x.is_none() && f.crop_y.is_none() => None,
            _ => {
                return Err(ArgsError(
                    "a crop needs cropWidth and cropHeight (cropOffsetX/Y default to 0)".into(),
                ));
            }
        };
        Ok(PreviewArgs {
            max_width: f.max_width,
            max_height: f.max_height,
            crop,
            // Only JPEG output has a quality; elsewhere it is ignored, so
            // it does not split the cache either.
            quality: match format {
                Format::Jpeg => f.quality.map_or(DEFAULT_QUALITY, |q| q as u8),
                _ => DEFAULT_QUALITY,
            },
            ppi: f.ppi.map(|p| p as u16),
            format,
        })
    }

    /// One spelling per meaning (fixed key order, defaults written out):
    /// what the ETag and the cache key are made of.
    pub fn normalized(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = self.crop {
            parts.push(format!(
                "cropWidth_{}_cropHeight_{}_cropOffsetX_{}_cropOffsetY_{}",
                c.width, c.height, c.x, c.y
            ));
        }
        if let Some(w) = self.max_width {
            parts.push(format!("maxWidth_{w}"));
        }
        if let Some(h) = self.max_height {
            parts.push(format!("maxHeight_{h}"));
        }
        if self.format == Format::Jpeg {
            parts.push(format!("quality_{}", self.quality));
        }
        if let Some(p) = self.ppi {
            parts.push(format!("ppi_{p}"));
        }
        format!("{}.{}", parts.join("_"), self.format.extension())
    }

    /// The output size for an (oriented) source of `w` × `h`: crop, then
    /// fit inside the box without upscaling. `Err` when the crop leaves the
    /// image.
    pub fn output_size(&self, w: u32, h: u32) -> Result<(u32, u32), ArgsError> {
        let (w, h) = match self.crop {
            Some(c) => {
                let inside = c.x.checked_add(c.width).is_some_and(|r| r <= w)
                    && c.y.checked_add(c.height).is_some_and(|b| b <= h);
                if !inside {
                    return Err(ArgsError(format!(
                        "the crop {}x{} at ({}, {}) is outside the {w}x{h} image",
                        c.width, c.height, c.x, c.y
                    )));
                }
                (c.width, c.height)
            }
            None => (w, h),
        };
        Ok(fit(w, h, self.max_width, self.max_height))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input; maxWidth, maxHeight, crop, quality, ppi, format; normalised.
    type Valid<'a> = (
        &'a str,
        Option<u32>,
        Option<u32>,
        Option<Crop>,
        u8,
        Option<u16>,
        Format,
        &'a str,
    );

    #[test]
    fn valid_arguments() {
        let cases: &[Valid] = &[
            (
                "maxWidth_600_maxHeight_400.jpg",
                Some(600),
                Some(400),
                None,
                85,
                None,
                Format::Jpeg,
                "maxWidth_600_maxHeight_400_quality_85.jpg",
            ),
            (
                "maxHeight_400_maxWidth_600.JPEG",
                Some(600),
                Some(400),
                None,
                85,
                None,
                Format::Jpeg,
                "maxWidth_600_maxHeight_400_quality_85.jpg",
            ),
            (
                "cropWidth_590_cropHeight_390_cropOffsetX_10_cropOffsetY_10.jpg",
                None,
                None,
                Some(Crop {
                    width: 590,
                    height: 390,
                    x: 10,
                    y: 10,
                }),
                85,
                None,
                Format::Jpeg,
                "cropWidth_590_cropHeight_390_cropOffsetX_10_cropOffsetY_10_quality_85.jpg",
            ),
            (
                "cropWidth_100_cropHeight_50_maxWidth_20.png",
                Some(20),
                None,
                Some(Crop {
                    width: 100,
                    height: 50,
                    x: 0,
                    y: 0,
                }),
                85,
                None,
                Format::Png,
                "cropWidth_100_cropHeight_50_cropOffsetX_0_cropOffsetY_0_maxWidth_20.png",
            ),
            (
                "maxWidth_64_quality_40_ppi_300.jpg",
                Some(64),
                None,
                None,
                40,
                Some(300),
                Format::Jpeg,
                "maxWidth_64_quality_40_ppi_300.jpg",
            ),
            (
                "maxWidth_64_quality_40.webp",
                Some(64),
                None,
                None,
                85,
                None,
                Format::Webp,
                "maxWidth_64.webp",
            ),
            (".gif", None, None, None, 85, None, Format::Gif, ".gif"),
        ];
        for (raw, w, h, crop, q, ppi, format, norm) in cases {
            let a = PreviewArgs::parse(Some(raw), Rendition::Preview)
                .unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(
                (
                    a.max_width,
                    a.max_height,
                    a.crop,
                    a.quality,
                    a.ppi,
                    a.format
                ),
                (*w, *h, *crop, *q, *ppi, *format),
                "{raw}"
            );
            assert_eq!(a.normalized(), *norm, "{raw}");
            assert_eq!(
                PreviewArgs::parse(Some(&a.normalized()), Rendition::Preview).unwrap(),
                a,
                "normalised form parses back: {raw}"
            );
        }
    }

    #[test]
    fn invalid_arguments_are_named() {
        let cases: &[(&str, &str)] = &[
            ("maxWidth_600", "extension"),
            ("maxWidth_600.bmp", "`.bmp`"),
            ("maxWidth_600_foo_1.jpg", "unknown preview-args key `foo`"),
            ("maxwidth_600.jpg", "unknown preview-args key `maxwidth`"),
            ("maxWidth.jpg", "needs a value"),
            ("maxWidth_0.jpg", "1..=65535"),
            ("maxWidth_65536.jpg", "1..=65535"),
            ("maxWidth_99999999999999999999.jpg", "1..=65535"),
            ("maxWidth_-5.jpg", "1..=65535"),
            ("maxWidth_+5.jpg", "1..=65535"),
            ("maxWidth_1e3.jpg", "1..=65535"),
            ("maxWidth_600_maxWidth_700.jpg", "given twice"),
            ("quality_101.jpg", "1..=100"),
            ("cropWidth_10.jpg", "cropWidth and cropHeight"),
            ("cropOffsetX_10.jpg", "cropWidth and cropHeight"),
            ("maxWidth__600.jpg", "got ``"),
        ];
        for (raw, needle) in cases {
            let e = PreviewArgs::parse(Some(raw), Rendition::Preview).expect_err(raw);
            assert!(e.0.contains(needle), "{raw}: {e}");
        }
    }

    #[test]
    fn defaults_per_rendition() {
        let t = PreviewArgs::parse(None, Rendition::Thumb).unwrap();
        assert_eq!(
            (t.max_width, t.max_height, t.format),
            (Some(256), Some(256), Format::Jpeg)
        );
        let p = PreviewArgs::parse(Some(""), Rendition::Preview).unwrap();
        assert_eq!((p.max_width, p.max_height), (Some(1600), Some(1600)));
        assert!(Rendition::parse("original").is_err());
    }

    #[test]
    fn output_sizes_crop_then_fit_never_upscale() {
        let p = |s: &str| PreviewArgs::parse(Some(s), Rendition::Preview).unwrap();
        assert_eq!(
            p("maxWidth_600_maxHeight_400.jpg")
                .output_size(6000, 4000)
                .unwrap(),
            (600, 400)
        );
        assert_eq!(
            p("maxWidth_600_maxHeight_400.jpg")
                .output_size(4000, 6000)
                .unwrap(),
            (267, 400)
        );
        assert_eq!(
            p("maxWidth_600_maxHeight_400.jpg")
                .output_size(300, 200)
                .unwrap(),
            (300, 200),
            "never upscaled"
        );
        assert_eq!(
            p("maxWidth_600.jpg").output_size(1200, 10).unwrap(),
            (600, 5)
        );
        assert_eq!(
            p("maxWidth_1.jpg").output_size(1000, 1).unwrap(),
            (1, 1),
            "at least one pixel"
        );
        let crop = p("cropWidth_590_cropHeight_390_cropOffsetX_10_cropOffsetY_10.jpg");
        assert_eq!(crop.output_size(600, 400).unwrap(), (590, 390));
        assert!(crop.output_size(599, 400).is_err());
        let edge = p("cropWidth_65535_cropHeight_1_cropOffsetX_65535.jpg");
        assert!(
            edge.output_size(65535, 1).is_err(),
            "offset + width past the edge"
        );
        assert_eq!(
            p("cropWidth_1000_cropHeight_500_maxWidth_100.png")
                .output_size(2000, 2000)
                .unwrap(),
            (100, 50)
        );
    }
}
