//! `assetgate upload`: files to a Phraseanet upload service (`POST
//! /assets`, multipart with the reference's `file` and `formData` parts),
//! then optionally one commit of them all (`POST /commits`), whose id and
//! token the DAM uses to pull the assets.

use crate::fail::{Fail, Result};
use crate::http::{Client, refused_json};
use serde_json::{Value, json};
use std::path::Path;

pub struct Options<'a> {
    pub form_data: Option<&'a Value>,
    pub commit: bool,
    pub publisher: &'a str,
}

pub fn upload(client: &Client, files: &[&Path], o: &Options) -> Result<Value> {
    let mut assets = Vec::new();
    for path in files {
        let bytes = std::fs::read(path).map_err(|e| Fail::io(path.display(), e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".into());
        let boundary = format!("assetgate-{}", hex::encode(random::<12>()));
        let mut body = Vec::with_capacity(bytes.len() + 1024);
        if let Some(fd) = o.form_data {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\ncontent-disposition: form-data; name=\"formData\"\r\ncontent-type: application/json\r\n\r\n{fd}\r\n"
                )
                .as_bytes(),
            );
        }
        let escaped: String = url::form_urlencoded::byte_serialize(name.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let ascii: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{ascii}\"; filename*=UTF-8''{escaped}\r\ncontent-type: {}\r\n\r\n",
                mime_of(&name)
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let r = client.send("POST", "/assets", &[("content-type", &content_type)], &body)?;
        if r.status != 201 {
            return Err(refused_json(&r));
        }
        let v = r.json()?;
        let id = v["id"]
            .as_str()
            .ok_or_else(|| Fail::Integrity("the upload answer has no id".into()))?
            .to_string();
        if v["size"].as_u64() != Some(bytes.len() as u64) {
            return Err(Fail::Integrity(format!(
                "{}: the server stored {} bytes of {}",
                path.display(),
                v["size"],
                bytes.len()
            )));
        }
        assets.push(json!({"id": id, "file": path.display().to_string(), "size": bytes.len()}));
    }
    let mut out = json!({ "assets": assets });
    if o.commit {
        let ids: Vec<&Value> = out["assets"]
            .as_array()
            .map(|a| a.iter().map(|x| &x["id"]).collect())
            .unwrap_or_default();
        let body = json!({"assets": ids, "publisher": o.publisher}).to_string();
        let r = client.send(
            "POST",
            "/commits",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )?;
        if r.status != 201 {
            return Err(refused_json(&r));
        }
        let v = r.json()?;
        out["commit"] = json!({"id": v["id"], "token": v["token"]});
    }
    Ok(out)
}

/// The media type of a file name's extension (the server sniffs images
/// anyway; this is what it records for the rest).
fn mime_of(name: &str) -> &'static str {
    let ext = name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "txt" => "text/plain",
        "json" => "application/json",
        "xml" => "application/xml",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the system's random source is available");
    b
}
