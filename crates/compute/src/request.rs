//! `/process` bodies: validated in full before anything is stored, so a
//! malformed request is refused with one clear 400 and nothing is kept.
//! A well-formed rendition this service cannot make (an unknown `fmt`, a
//! custom `worker`) does not refuse the request: as the reference has it,
//! it gets its own `rendition_failed` event and the others are still made.
//! The validated form is what the job queue keeps.

use crate::config::{Config, MAX_EMBED_BYTES};
use crate::error::{ApiError, ApiResult};
use crate::urls::{self, Location, Use};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub url: String,
    pub name: Option<String>,
    pub size: Option<u64>,
    pub mimetype: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fmt {
    Png,
    Jpg,
    Webp,
    Gif,
    Tif,
    Text,
    Xmp,
    Zip,
}

impl Fmt {
    pub fn parse(s: &str) -> Option<Fmt> {
        Some(match s.to_ascii_lowercase().as_str() {
            "png" => Fmt::Png,
            "jpg" | "jpeg" => Fmt::Jpg,
            "webp" => Fmt::Webp,
            "gif" => Fmt::Gif,
            "tif" | "tiff" => Fmt::Tif,
            "text" | "txt" => Fmt::Text,
            "xmp" => Fmt::Xmp,
            "zip" => Fmt::Zip,
            _ => return None,
        })
    }

    pub fn is_image(self) -> bool {
        matches!(self, Fmt::Png | Fmt::Jpg | Fmt::Webp | Fmt::Gif | Fmt::Tif)
    }

    pub fn mime(self) -> &'static str {
        match self {
            Fmt::Png => "image/png",
            Fmt::Jpg => "image/jpeg",
            Fmt::Webp => "image/webp",
            Fmt::Gif => "image/gif",
            Fmt::Tif => "image/tiff",
            Fmt::Text => "text/plain",
            Fmt::Xmp => "application/rdf+xml",
            Fmt::Zip => "application/zip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Target {
    Put(String),
    Multipart {
        urls: Vec<String>,
        min_part_size: u64,
        max_part_size: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dpi {
    pub x: u32,
    pub y: u32,
}

impl From<Dpi> for assetgate_imaging::Density {
    fn from(d: Dpi) -> Self {
        assetgate_imaging::Density { x: d.x, y: d.y }
    }
}

impl From<assetgate_imaging::Density> for Dpi {
    fn from(d: assetgate_imaging::Density) -> Self {
        Dpi { x: d.x, y: d.y }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watermark {
    pub image: String,
    pub scale: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZipFile {
    pub url: String,
    pub path: String,
}

/// One validated rendition. `original` is the object as the client sent
/// it: events echo it back (target redacted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    pub fmt: Fmt,
    pub target: Option<Target>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub quality: Option<u8>,
    pub interlace: bool,
    pub jpeg_size: Option<u64>,
    pub dpi: Option<Dpi>,
    pub convert_to_dpi: Option<Dpi>,
    /// Applied only with `postProcess: true`, as the reference says.
    pub crop: Option<Crop>,
    pub watermark: Option<Watermark>,
    pub embed_binary_limit: u64,
    pub files: Vec<ZipFile>,
    pub ignore_duplicates: bool,
    pub original: Value,
}

/// One entry of `renditions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Untagged: jobs queued before `Unsupported` existed hold bare renditions.
#[serde(untagged)]
pub enum Requested {
    Make(Rendition),
    /// Well-formed, but not something this service makes: reported as
    /// `rendition_failed` `RenditionFormatUnsupported` with `message`.
    Unsupported {
        original: Value,
        message: String,
    },
}

impl Requested {
    /// The rendition object as the client sent it.
    pub fn original(&self) -> &Value {
        match self {
            Requested::Make(r) => &r.original,
            Requested::Unsupported { original, .. } => original,
        }
    }

    pub fn to_make(&self) -> Option<&Rendition> {
        match self {
            Requested::Make(r) => Some(r),
            Requested::Unsupported { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRequest {
    /// Absent only when every rendition is a `zip` (which names its files).
    pub source: Option<Source>,
    /// `source` as the client sent it (events echo it, URL redacted).
    pub source_original: Value,
    pub renditions: Vec<Requested>,
    pub user_data: Option<Value>,
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::bad_request(m)
}

/// Validates a `/process` body.
pub fn parse(body: &Value, cfg: &Config) -> ApiResult<ProcessRequest> {
    let obj = body
        .as_object()
        .ok_or_else(|| bad("the body must be a JSON object with `source` and `renditions`"))?;
    let source_original = obj.get("source").cloned().unwrap_or(Value::Null);
    let list = match obj.get("renditions") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("`renditions` must be an array")),
        None => return Err(bad("`renditions` is required")),
    };
    if list.is_empty() {
        return Err(bad("`renditions` is empty"));
    }
    if list.len() > cfg.max_renditions {
        return Err(bad(format!(
            "{} renditions requested; at most {} per request",
            list.len(),
            cfg.max_renditions
        )));
    }
    let renditions = list
        .iter()
        .enumerate()
        .map(|(i, r)| {
            parse_rendition(r, cfg).map_err(|e| bad(format!("renditions[{i}]: {}", e.message)))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let zip_only = renditions
        .iter()
        .all(|r| r.to_make().is_some_and(|r| r.fmt == Fmt::Zip));
    let source = if source_original.is_null() && zip_only {
        None
    } else {
        Some(parse_source(&source_original, cfg)?)
    };
    let user_data = match obj.get("userData") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(bad("`userData` must be an object")),
    };
    Ok(ProcessRequest {
        source,
        source_original,
        renditions,
        user_data,
    })
}

fn parse_source(v: &Value, cfg: &Config) -> ApiResult<Source> {
    let source = match v {
        Value::String(url) => Source {
            url: url.clone(),
            name: None,
            size: None,
            mimetype: None,
        },
        Value::Object(o) => Source {
            url: str_field(o, "url")?.ok_or_else(|| bad("`source.url` is required"))?,
            name: str_field(o, "name")?,
            size: uint_field(o, "size")?,
            mimetype: match str_field(o, "mimetype")? {
                Some(m) => Some(m),
                None => str_field(o, "mimeType")?,
            },
        },
        Value::Null => return Err(bad("`source` is required")),
        _ => return Err(bad("`source` must be a URL string or an object with `url`")),
    };
    urls::check(&source.url, &cfg.allowed_http_hosts, Use::Read)
        .map_err(|e| bad(format!("`source` {e}")))?;
    // A declared `size` over the limit is not malformed: the renditions
    // that need the source fail with `SourceUnsupported` when worked.
    Ok(source)
}

fn str_field(o: &Map<String, Value>, k: &str) -> ApiResult<Option<String>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("`{k}` must be a string"))),
    }
}

fn uint_field(o: &Map<String, Value>, k: &str) -> ApiResult<Option<u64>> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| bad(format!("`{k}` must be a whole number ≥ 0"))),
    }
}

fn ranged(o: &Map<String, Value>, k: &str, min: u64, max: u64) -> ApiResult<Option<u64>> {
    match uint_field(o, k)? {
        Some(n) if !(min..=max).contains(&n) => {
            Err(bad(format!("`{k}` must be in {min}..={max}, not {n}")))
        }
        other => Ok(other),
    }
}

fn bool_field(o: &Map<String, Value>, k: &str) -> ApiResult<bool> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("`{k}` must be true or false"))),
    }
}

fn dpi_field(o: &Map<String, Value>, k: &str) -> ApiResult<Option<Dpi>> {
    let one = |v: &Value, what: &str| {
        v.as_f64()
            .filter(|f| *f >= 1.0 && *f <= 10_000.0)
            .map(|f| f.round() as u32)
            .ok_or_else(|| bad(format!("`{what}` must be a number in 1..=10000")))
    };
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(d)) => {
            let x = d
                .get("xdpi")
                .ok_or_else(|| bad(format!("`{k}.xdpi` is required")))?;
            let y = d
                .get("ydpi")
                .ok_or_else(|| bad(format!("`{k}.ydpi` is required")))?;
            Ok(Some(Dpi {
                x: one(x, &format!("{k}.xdpi"))?,
                y: one(y, &format!("{k}.ydpi"))?,
            }))
        }
        Some(v) => {
            let n = one(v, k)?;
            Ok(Some(Dpi { x: n, y: n }))
        }
    }
}

/// The formats, as an unsupported one's message lists them.
const SUPPORTED: &str = "png, jpg, jpeg, webp, gif, tif, tiff, text, xmp, zip";

fn parse_rendition(v: &Value, cfg: &Config) -> ApiResult<Requested> {
    let o = v.as_object().ok_or_else(|| bad("must be an object"))?;
    let unsupported = |message: String| Requested::Unsupported {
        original: v.clone(),
        message,
    };
    // With a `worker`, the other fields are that application's to read
    // (the reference), so they are not checked here.
    if let Some(w) = o.get("worker") {
        let w = w.as_str().ok_or_else(|| bad("`worker` must be a URL"))?;
        return Ok(unsupported(format!(
            "custom workers are not supported here (`worker` {}); use the built-in formats: {SUPPORTED}",
            urls::redact(w)
        )));
    }
    let fmt_s = str_field(o, "fmt")?
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| bad("`fmt` is required"))?;
    let Some(fmt) = Fmt::parse(&fmt_s) else {
        let shown: String = fmt_s.chars().take(40).collect();
        return Ok(unsupported(format!(
            "fmt `{shown}` is not supported; supported: {SUPPORTED}"
        )));
    };
    let side = cfg.max_output_side as u64;
    let target = match o.get("target") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => {
            check_target(u, cfg)?;
            Some(Target::Put(u.clone()))
        }
        Some(Value::Object(t)) => {
            let urls = match t.get("urls") {
                Some(Value::Array(a)) if !a.is_empty() => a
                    .iter()
                    .map(|u| {
                        let u = u
                            .as_str()
                            .ok_or_else(|| bad("`target.urls` must hold strings"))?;
                        check_target(u, cfg)?;
                        Ok(u.to_string())
                    })
                    .collect::<ApiResult<Vec<_>>>()?,
                _ => return Err(bad("`target.urls` must be a non-empty array of URLs")),
            };
            let min_part_size = uint_field(t, "minPartSize")?.unwrap_or(0);
            let max_part_size = uint_field(t, "maxPartSize")?.unwrap_or(u64::MAX);
            if max_part_size == 0 || min_part_size > max_part_size {
                return Err(bad(
                    "`target.minPartSize` must not exceed `target.maxPartSize` (> 0)",
                ));
            }
            Some(Target::Multipart {
                urls,
                min_part_size,
                max_part_size,
            })
        }
        Some(_) => {
            return Err(bad(
                "`target` must be a URL or {urls, minPartSize, maxPartSize}",
            ));
        }
    };
    let crop = match o.get("crop") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => {
            let get = |k: &str, min: u64| {
                ranged(c, k, min, u32::MAX as u64)
                    .map_err(|e| bad(format!("`crop.{}", e.message.trim_start_matches('`'))))?
                    .map(|n| n as u32)
                    .ok_or_else(|| bad(format!("`crop.{k}` is required")))
            };
            Some(Crop {
                x: get("x", 0)?,
                y: get("y", 0)?,
                w: get("w", 1)?,
                h: get("h", 1)?,
            })
        }
        Some(_) => return Err(bad("`crop` must be {x, y, w, h}")),
    };
    let watermark = match o.get("watermark") {
        None | Some(Value::Null) => None,
        Some(Value::Object(w)) => {
            let image =
                str_field(w, "image")?.ok_or_else(|| bad("`watermark.image` is required"))?;
            urls::check(&image, &cfg.allowed_http_hosts, Use::Read)
                .map_err(|e| bad(format!("`watermark.image` {e}")))?;
            let scale = match w.get("scale") {
                None | Some(Value::Null) => 1.0,
                Some(s) => s
                    .as_f64()
                    .filter(|f| *f > 0.0 && *f <= 1.0)
                    .ok_or_else(|| bad("`watermark.scale` must be a number in (0, 1]"))?,
            };
            Some(Watermark { image, scale })
        }
        Some(_) => return Err(bad("`watermark` must be {image, scale}")),
    };
    let files = match o.get("files") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|f| zip_entry(f, cfg))
            .collect::<ApiResult<Vec<_>>>()?,
        Some(_) => return Err(bad("`files` must be an array")),
    };
    if fmt == Fmt::Zip && files.is_empty() {
        return Err(bad("fmt zip needs `files`"));
    }
    let ignore_duplicates = match str_field(o, "duplicate")?.as_deref() {
        None | Some("error") => false,
        Some("ignore") => true,
        Some(other) => {
            return Err(bad(format!(
                "`duplicate` must be `ignore` or `error`, not `{other}`"
            )));
        }
    };
    match o.get("userData") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err(bad("`userData` must be an object")),
    }
    str_field(o, "name")?;
    Ok(Requested::Make(Rendition {
        fmt,
        target,
        width: ranged(o, "width", 1, side)?.map(|n| n as u32),
        height: ranged(o, "height", 1, side)?.map(|n| n as u32),
        quality: ranged(o, "quality", 1, 100)?.map(|n| n as u8),
        interlace: bool_field(o, "interlace")?,
        jpeg_size: ranged(o, "jpegSize", 1, u64::MAX)?,
        dpi: dpi_field(o, "dpi")?,
        convert_to_dpi: dpi_field(o, "convertToDpi")?,
        crop: if bool_field(o, "postProcess")? {
            crop
        } else {
            None
        },
        watermark: if bool_field(o, "postProcess")? {
            watermark
        } else {
            None
        },
        embed_binary_limit: uint_field(o, "embedBinaryLimit")?
            .unwrap_or(0)
            .min(MAX_EMBED_BYTES),
        files,
        ignore_duplicates,
        original: v.clone(),
    }))
}

fn check_target(url: &str, cfg: &Config) -> ApiResult<()> {
    match urls::check(url, &cfg.allowed_http_hosts, Use::Write) {
        Ok(Location::Remote(_)) => Ok(()),
        Ok(_) => Err(bad("`target` must be an http(s) URL")),
        Err(e) => Err(bad(format!("`target` {e}"))),
    }
}

fn zip_entry(v: &Value, cfg: &Config) -> ApiResult<ZipFile> {
    let (url, path) = match v {
        Value::String(u) => (u.clone(), None),
        Value::Object(o) => (
            str_field(o, "url")?.ok_or_else(|| bad("`files[].url` is required"))?,
            str_field(o, "path")?,
        ),
        _ => return Err(bad("`files` entries must be URLs or {url, path}")),
    };
    urls::check(&url, &cfg.allowed_http_hosts, Use::Read)
        .map_err(|e| bad(format!("`files[].url` {e}")))?;
    let path = match path {
        Some(p) => p,
        None => {
            // The last path segment of the URL, without its query.
            let base = url.split(['?', '#']).next().unwrap_or_default();
            let name = base.rsplit('/').next().unwrap_or_default();
            let name = assetgate_web::query::percent_decode(name, false);
            if name.is_empty() || name.contains(':') {
                "file".to_string()
            } else {
                name
            }
        }
    };
    check_zip_path(&path)?;
    Ok(ZipFile { url, path })
}

/// Relative, no `..`, no drive letters or backslashes: an archive that
/// cannot write outside the folder it is unpacked in.
fn check_zip_path(p: &str) -> ApiResult<()> {
    let refuse = |why: &str| Err(bad(format!("zip path `{p}` {why}")));
    if p.is_empty() || p.len() > 1024 {
        return refuse("must have 1 to 1024 characters");
    }
    if p.starts_with('/') || p.contains('\\') || p.contains(':') || p.contains('\0') {
        return refuse("must be a relative path with `/` separators");
    }
    if p.split('/').any(|s| s == ".." || s == "." || s.is_empty()) {
        return refuse("must not contain `..`, `.` or empty segments");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> Config {
        Config {
            max_renditions: 3,
            ..Config::default()
        }
    }

    fn process(renditions: Value) -> Value {
        json!({"source": "https://example.com/a.jpg", "renditions": renditions})
    }

    #[test]
    fn accepts_the_reference_example() {
        let body = json!({
            "source": "https://www.adobe.com/content/dam/acom/en/lobby/lobby-bg-bts2017-logged-out-1440x860.jpg",
            "renditions": [
                {"name": "image.48x48.png", "target": "https://x.example/1", "fmt": "png", "width": 48, "height": 48},
                {"name": "image.200x200.jpg", "target": "https://x.example/2", "fmt": "jpg", "width": 200, "height": 200},
                {"name": "cqdam.xmp.xml", "target": "https://x.example/3", "fmt": "xmp"}
            ]
        });
        let r = parse(&body, &cfg()).unwrap();
        let made: Vec<&Rendition> = r.renditions.iter().filter_map(|r| r.to_make()).collect();
        assert_eq!(made.len(), 3);
        assert_eq!(made[1].fmt, Fmt::Jpg);
        assert_eq!(made[0].width, Some(48));
        assert_eq!(made[0].original["name"], "image.48x48.png");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "JSON object"),
            (
                json!({"renditions": [{"fmt": "png"}]}),
                "`source` is required",
            ),
            (
                json!({"source": 3, "renditions": [{"fmt": "png"}]}),
                "`source` must be",
            ),
            (
                json!({"source": {"name": "x"}, "renditions": [{"fmt": "png"}]}),
                "`source.url`",
            ),
            (
                json!({"source": "https://e.x/a"}),
                "`renditions` is required",
            ),
            (
                json!({"renditions": [{"fmt": "zip", "files": ["https://a.example/1"]}, {"fmt": "png"}]}),
                "`source` is required",
            ),
            (process(json!([])), "empty"),
            (
                process(json!([{"fmt":"png"},{"fmt":"png"},{"fmt":"png"},{"fmt":"png"}])),
                "at most 3",
            ),
            (process(json!([{"width": 10}])), "`fmt` is required"),
            (process(json!([{"fmt": 3}])), "`fmt` must be a string"),
            (process(json!([{"fmt": null}])), "`fmt` is required"),
            (process(json!([{"fmt": " "}])), "`fmt` is required"),
            (
                process(json!([{"fmt": "png"}, "png"])),
                "renditions[1]: must be an object",
            ),
            (process(json!([{"worker": 7}])), "`worker` must be a URL"),
            (
                json!({"renditions": [{"fmt": "bmp"}]}),
                "`source` is required",
            ),
            (process(json!([{"fmt": "png", "width": "10"}])), "`width`"),
            (
                process(json!([{"fmt": "png", "width": 0}])),
                "`width` must be in",
            ),
            (
                process(json!([{"fmt": "png", "width": 100000}])),
                "`width` must be in",
            ),
            (
                process(json!([{"fmt": "jpg", "quality": 101}])),
                "`quality`",
            ),
            (
                process(json!([{"fmt": "jpg", "interlace": "yes"}])),
                "`interlace`",
            ),
            (
                process(json!([{"fmt": "jpg", "dpi": {"xdpi": 72}}])),
                "`dpi.ydpi`",
            ),
            (process(json!([{"fmt": "jpg", "dpi": -1}])), "`dpi`"),
            (
                process(json!([{"fmt": "png", "target": "http://example.com/x"}])),
                "plain http",
            ),
            (
                process(json!([{"fmt": "png", "target": "https://169.254.169.254/x"}])),
                "link-local",
            ),
            (
                process(json!([{"fmt": "png", "target": {"urls": []}}])),
                "`target.urls`",
            ),
            (
                process(
                    json!([{"fmt": "png", "target": {"urls": ["https://a.example/1"], "minPartSize": 10, "maxPartSize": 5}}]),
                ),
                "minPartSize",
            ),
            (
                process(
                    json!([{"fmt": "png", "postProcess": true, "crop": {"x": 0, "y": 0, "w": 0, "h": 5}}]),
                ),
                "`crop.w`",
            ),
            (
                process(
                    json!([{"fmt": "png", "postProcess": true, "watermark": {"image": "https://a.example/w.png", "scale": 2}}]),
                ),
                "`watermark.scale`",
            ),
            (process(json!([{"fmt": "zip"}])), "needs `files`"),
            (
                process(
                    json!([{"fmt": "zip", "files": [{"url": "https://a.example/1", "path": "/etc/x"}]}]),
                ),
                "relative path",
            ),
            (
                process(
                    json!([{"fmt": "zip", "files": [{"url": "https://a.example/1", "path": "a/../../x"}]}]),
                ),
                "`..`",
            ),
            (
                process(
                    json!([{"fmt": "zip", "files": ["https://a.example/1"], "duplicate": "keep"}]),
                ),
                "`duplicate`",
            ),
            (
                json!({"source": "file:///etc/passwd", "renditions": [{"fmt": "png"}]}),
                "`file:` scheme",
            ),
        ];
        for (body, want) in cases {
            let e = parse(&body, &cfg()).expect_err(&body.to_string());
            assert_eq!(e.status, 400);
            assert!(
                e.message.contains(want),
                "{body}: `{}` lacks `{want}`",
                e.message
            );
        }
    }

    #[test]
    fn post_process_gates_crop_and_watermark_and_embed_is_capped() {
        let crop = json!({"x": 1, "y": 2, "w": 3, "h": 4});
        let first = |body: Value| {
            parse(&body, &cfg()).unwrap().renditions[0]
                .to_make()
                .unwrap()
                .clone()
        };
        let r = first(process(
            json!([{"fmt": "png", "crop": crop, "embedBinaryLimit": 1_000_000}]),
        ));
        assert_eq!(r.crop, None);
        assert_eq!(r.embed_binary_limit, 32 * 1024);
        let r = first(process(
            json!([{"fmt": "png", "crop": crop, "postProcess": true}]),
        ));
        assert_eq!(
            r.crop,
            Some(Crop {
                x: 1,
                y: 2,
                w: 3,
                h: 4
            })
        );
    }

    #[test]
    fn zip_paths_default_to_the_url_name() {
        let r = parse(
            &json!({"renditions": [{"fmt": "zip", "files": ["https://a.example/dir/photo%201.jpg?sig=x", {"url": "data:,x", "path": "notes/a.txt"}]}]}),
            &cfg(),
        )
        .unwrap();
        assert_eq!(r.source, None);
        let paths: Vec<_> = r.renditions[0]
            .to_make()
            .unwrap()
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(paths, ["photo 1.jpg", "notes/a.txt"]);
    }

    /// Renditions this service cannot make, among ones it can: the request
    /// is accepted, in order, with one `Unsupported` per such rendition;
    /// whatever else such a rendition holds is not checked (a worker's
    /// fields are the worker's; an unknown format's fields mean nothing).
    #[test]
    fn unsupported_renditions_do_not_refuse_the_request() {
        let odd: Vec<(Value, &str)> = vec![
            (json!({"fmt": "bmp"}), "fmt `bmp` is not supported"),
            (json!({"fmt": "PSD", "width": "huge"}), "fmt `PSD`"),
            (
                json!({"fmt": "svg", "target": "http://10.0.0.1/x"}),
                "fmt `svg`",
            ),
            (json!({"fmt": "jpg2000", "quality": 500}), "fmt `jpg2000`"),
            (json!({"fmt": "png ", "name": "x"}), "fmt `png `"),
            (json!({"fmt": "x".repeat(500)}), "is not supported"),
            (
                json!({"worker": "https://w.example/run?sig=SECRET", "fmt": "anything"}),
                "custom workers",
            ),
            (json!({"worker": "https://w.example/run"}), "custom workers"),
        ];
        for (rendition, want) in odd {
            // Alone, first, between and last among valid ones.
            let valid = json!({"fmt": "png", "width": 10});
            for (list, at) in [
                (vec![rendition.clone()], 0),
                (vec![rendition.clone(), valid.clone()], 0),
                (vec![valid.clone(), rendition.clone(), valid.clone()], 1),
                (vec![valid.clone(), rendition.clone()], 1),
            ] {
                let n = list.len();
                let r = parse(&process(Value::Array(list)), &cfg())
                    .unwrap_or_else(|e| panic!("{rendition}: {}", e.message));
                assert_eq!(r.renditions.len(), n);
                for (i, item) in r.renditions.iter().enumerate() {
                    match item {
                        Requested::Unsupported { original, message } => {
                            assert_eq!(i, at, "{rendition}");
                            assert_eq!(original, &rendition);
                            assert!(message.contains(want), "{message}");
                            assert!(!message.contains("SECRET"), "{message}");
                            assert!(message.len() < 300, "{message}");
                        }
                        Requested::Make(m) => {
                            assert_ne!(i, at, "{rendition}");
                            assert_eq!((m.fmt, m.width), (Fmt::Png, Some(10)));
                        }
                    }
                }
            }
        }
        // A malformed rendition still refuses the whole request, even
        // beside an unsupported one.
        let e = parse(
            &process(json!([{"fmt": "bmp"}, {"fmt": "png", "width": 0}])),
            &cfg(),
        )
        .unwrap_err();
        assert!(e.message.contains("renditions[1]"), "{}", e.message);
    }

    /// Jobs queued by an earlier version hold bare renditions: they still
    /// read back, and the new form round-trips.
    #[test]
    fn queued_form_round_trips_and_reads_old_jobs() {
        let r = parse(
            &process(json!([{"fmt": "png"}, {"fmt": "bmp"}, {"worker": "https://w.example"}])),
            &cfg(),
        )
        .unwrap();
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<ProcessRequest>(&text).unwrap(), r);
        let mut old: Value = serde_json::from_str(&text).unwrap();
        old["renditions"] = json!([old["renditions"][0].clone()]);
        let back: ProcessRequest = serde_json::from_value(old).unwrap();
        assert_eq!(back.renditions[0].to_make().unwrap().fmt, Fmt::Png);
    }

    /// A declared size over the limit is for the job to report, not a 400.
    #[test]
    fn declared_source_size_is_kept_not_refused() {
        let body = json!({"source": {"url": "https://e.x/a", "size": 1e12}, "renditions": [{"fmt": "png"}]});
        let r = parse(&body, &cfg()).unwrap();
        assert_eq!(r.source.unwrap().size, Some(1_000_000_000_000));
    }
}
