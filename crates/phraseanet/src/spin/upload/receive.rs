//! `POST /assets`: a multipart form (`file`, optional `formData` JSON) or a
//! raw body, streamed into the blob store piece by piece — the component
//! never holds the file. Anything refused midway is deleted.
//!
//! The submitted file name (`filename`/`filename*=` of the part, or the
//! raw body's `X-Filename` or `Content-Disposition`) is decoded strictly
//! (malformed → 400) and recorded as its safe form
//! (`filename::safe_filename`), the verbatim name kept beside it.

use super::Ctx;
use assetgate_catalog::{Asset, Catalog, Origin};
use assetgate_component::Req;
use assetgate_store::{BlobWriter, Blobs, StoreError, spin::SpinKv};
use assetgate_web::multipart::{self, Event, Parser};
use assetgate_web::{filename, mime, secret, time};
use futures::StreamExt;

/// Largest `formData` JSON.
const MAX_FORM_DATA: usize = 64 * 1024;
/// Bytes looked at to sniff the content type.
const SNIFF: usize = 32;
/// Multipart framing allowed on top of the file in `Content-Length`.
const MULTIPART_SLACK: u64 = MAX_FORM_DATA as u64 + 16 * 1024;
/// Parts in one form: `file` and `formData` are all the protocol has; a
/// few more are ignored, thousands are refused.
const MAX_PARTS: usize = 32;
/// The name of a file sent without one.
const UNNAMED: &str = "upload";

/// The file being received.
struct Incoming<'b, 'a> {
    writer: BlobWriter<'b, 'a, SpinKv>,
    /// The name as submitted, and its safe form.
    submitted: String,
    name: String,
    declared: Option<String>,
    head: Vec<u8>,
    checked: bool,
}

impl<'b, 'a> Incoming<'b, 'a> {
    fn begin(
        blobs: &'b Blobs<'a, SpinKv>,
        id: &str,
        ctx: &Ctx,
        submitted: Option<String>,
        declared: Option<String>,
    ) -> Result<Self, StoreError> {
        let submitted = submitted
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| UNNAMED.into());
        Ok(Incoming {
            writer: BlobWriter::begin(blobs, id, ctx.limits.max_upload_size, time::now())?,
            name: filename::safe_filename(&submitted),
            submitted,
            declared,
            head: Vec::new(),
            checked: false,
        })
    }

    fn write(&mut self, data: &[u8], ctx: &Ctx) -> Result<(), StoreError> {
        if self.head.len() < SNIFF {
            let take = (SNIFF - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        if !self.checked && self.head.len() >= SNIFF {
            self.check_type(ctx)?;
        }
        self.writer.write(data).map_err(|e| {
            if e.code == assetgate_store::ErrorCode::TooLarge {
                StoreError::too_large(format!(
                    "the file is larger than upload_max_size ({} bytes)",
                    ctx.limits.max_upload_size
                ))
            } else {
                e
            }
        })
    }

    fn mime(&self) -> String {
        mime::resolve(self.declared.as_deref(), &self.head, &self.name)
    }

    fn check_type(&mut self, ctx: &Ctx) -> Result<(), StoreError> {
        self.checked = true;
        let m = self.mime();
        if ctx.limits.mime_allowed(&m) {
            Ok(())
        } else {
            Err(StoreError::unsupported(format!(
                "content type `{m}` is not in upload_allowed_mime_types"
            )))
        }
    }
}

pub async fn receive(req: &mut Req, ctx: &Ctx) -> Result<Asset, StoreError> {
    let max = ctx.limits.max_upload_size;
    let content_type = req.header("content-type").unwrap_or("").to_string();
    // `multipart/form-data` without a usable boundary is a broken form,
    // not a raw file of that type.
    let boundary =
        multipart::form_boundary(&content_type).map_err(|e| StoreError::invalid(e.to_string()))?;
    if let Some(len) = req
        .header("content-length")
        .and_then(|l| l.trim().parse::<u64>().ok())
    {
        if len == 0 {
            return Err(StoreError::invalid("empty files are refused"));
        }
        let slack = if boundary.is_some() {
            MULTIPART_SLACK
        } else {
            0
        };
        if len > max + slack {
            return Err(StoreError::too_large(format!(
                "the body is {len} bytes; upload_max_size is {max}"
            )));
        }
        if let Some(platform) = assetgate_component::max_body().filter(|&m| len > m) {
            return Err(StoreError::too_large(format!(
                "the body is {len} bytes; this deployment accepts at most {platform} per \
                 request (http_max_body_bytes, the edge platforms' 10 MiB). Send larger \
                 assets to a Spin or SpinKube deployment, or in chunks with the EpiFiles \
                 protocol (ManifestFile)"
            )));
        }
    }
    let id = secret::uuid_v4();
    let blobs = ctx.blobs();
    let mut form_data = serde_json::json!({});
    let result = match boundary {
        Some(b) => receive_multipart(req, ctx, &blobs, &id, &b, &mut form_data).await,
        None => receive_raw(req, ctx, &blobs, &id, &content_type, &mut form_data).await,
    };
    let incoming = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = blobs.delete(&id);
            return Err(e);
        }
    };
    let finished = (|| {
        let mut incoming = incoming;
        if !incoming.checked {
            incoming.check_type(ctx)?;
        }
        let mime = incoming.mime();
        if incoming.writer.written() == 0 {
            return Err(StoreError::invalid("empty files are refused"));
        }
        let now = time::now();
        let d = incoming.writer.finish(&mime, now)?;
        let mut asset =
            Asset::from_blob(&d, &incoming.name, form_data.clone(), Origin::Upload, now);
        asset.submitted_name = (incoming.submitted != incoming.name).then_some(incoming.submitted);
        asset.expires_at = Some(now + ctx.limits.retention_secs);
        Catalog::new(&ctx.kv, ctx.blobs()).add(&asset)?;
        Ok(asset)
    })();
    if finished.is_err() {
        let _ = blobs.delete(&id);
    }
    finished
}

async fn receive_multipart<'b, 'a>(
    req: &mut Req,
    ctx: &Ctx,
    blobs: &'b assetgate_store::Blobs<'a, SpinKv>,
    id: &str,
    boundary: &str,
    form_data: &mut serde_json::Value,
) -> Result<Incoming<'b, 'a>, StoreError> {
    #[derive(PartialEq)]
    enum Part {
        File,
        Form,
        Other,
    }
    let body = req
        .body
        .take()
        .ok_or_else(|| StoreError::invalid("no body"))?;
    let mut stream = body.into_body_stream();
    let mut parser = Parser::new(boundary);
    let mut file: Option<Incoming<'b, 'a>> = None;
    let mut part = Part::Other;
    let mut parts = 0;
    let mut form = Vec::new();
    let mut received = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| req.unreadable_body(received, &e.to_debug_string()))?;
        received += chunk.len();
        let events = parser
            .feed(&chunk)
            .map_err(|e| StoreError::invalid(e.to_string()))?;
        for event in events {
            match event {
                Event::Part(h) => {
                    parts += 1;
                    if parts > MAX_PARTS {
                        return Err(StoreError::invalid(format!(
                            "the form has more than {MAX_PARTS} parts; send `file` and \
                             optionally `formData`"
                        )));
                    }
                    part = match h.name.as_deref() {
                        Some("file") => {
                            if file.is_some() {
                                return Err(StoreError::invalid("one `file` part per upload"));
                            }
                            file =
                                Some(Incoming::begin(blobs, id, ctx, h.filename, h.content_type)?);
                            Part::File
                        }
                        Some("formData") => Part::Form,
                        _ => Part::Other,
                    }
                }
                Event::Data(d) => match part {
                    Part::File => file.as_mut().expect("file part open").write(&d, ctx)?,
                    Part::Form => {
                        if form.len() + d.len() > MAX_FORM_DATA {
                            return Err(StoreError::too_large(format!(
                                "`formData` over {MAX_FORM_DATA} bytes"
                            )));
                        }
                        form.extend_from_slice(&d);
                    }
                    Part::Other => {}
                },
                Event::PartEnd => {
                    if part == Part::Form {
                        *form_data = parse_form_data(&form)?;
                    }
                    part = Part::Other;
                }
                Event::End => {}
            }
        }
    }
    parser
        .finish()
        .map_err(|e| StoreError::invalid(e.to_string()))?;
    let file = file.ok_or_else(|| StoreError::invalid("the form has no `file` part"))?;
    Ok(file)
}

async fn receive_raw<'b, 'a>(
    req: &mut Req,
    ctx: &Ctx,
    blobs: &'b assetgate_store::Blobs<'a, SpinKv>,
    id: &str,
    content_type: &str,
    form_data: &mut serde_json::Value,
) -> Result<Incoming<'b, 'a>, StoreError> {
    let name = match (req.header("x-filename"), req.header("content-disposition")) {
        (Some(x), _) => Some(
            filename::decode_header_name(x)
                .map_err(|e| StoreError::invalid(format!("X-Filename header: {e}")))?,
        ),
        (None, Some(d)) => {
            filename::parse_disposition(d)
                .map_err(|e| StoreError::invalid(format!("Content-Disposition header: {e}")))?
                .filename
        }
        (None, None) => None,
    };
    if let Some(fd) = req.header("x-form-data") {
        *form_data = parse_form_data(fd.as_bytes())?;
    }
    let declared = (!content_type.is_empty()).then(|| content_type.to_string());
    let body = req
        .body
        .take()
        .ok_or_else(|| StoreError::invalid("no body"))?;
    let mut incoming = Incoming::begin(blobs, id, ctx, name, declared)?;
    let mut stream = body.into_body_stream();
    let mut received = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| req.unreadable_body(received, &e.to_debug_string()))?;
        received += chunk.len();
        incoming.write(&chunk, ctx)?;
    }
    Ok(incoming)
}

fn parse_form_data(bytes: &[u8]) -> Result<serde_json::Value, StoreError> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| StoreError::invalid(format!("`formData` is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(StoreError::invalid("`formData` must be a JSON object"));
    }
    Ok(v)
}
