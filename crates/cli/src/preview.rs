//! `assetgate preview`: logs on to the preview proxy (`POST /proxy/logon`,
//! a ticket for the user), then fetches one rendition of an object with
//! its preview-args and writes it to a file.

use crate::fail::{Fail, Result};
use crate::http::{Client, refused_json};
use serde_json::{Value, json};
use std::path::Path;

pub fn fetch(
    c: &Client,
    user: &str,
    password: &str,
    object: &str,
    rendition: &str,
    args: Option<&str>,
    out: &Path,
) -> Result<Value> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("user", user)
        .append_pair("password", password)
        .finish();
    let r = c.send(
        "POST",
        "/proxy/logon",
        &[("content-type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )?;
    if r.status != 200 {
        return Err(refused_json(&r));
    }
    let ticket = r.json()?["ticket"]
        .as_str()
        .ok_or_else(|| Fail::Integrity("the log-on answer has no ticket".into()))?
        .to_string();
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("ticket", &ticket)
        .append_pair("objectid", object)
        .append_pair("rendition", rendition);
    if let Some(a) = args {
        q.append_pair("preview-args", a);
    }
    let r = c.send("GET", &format!("/proxy?{}", q.finish()), &[], b"")?;
    if r.status != 200 {
        return Err(refused_json(&r));
    }
    std::fs::write(out, &r.body).map_err(|e| Fail::io(out.display(), e))?;
    Ok(json!({
        "path": out.display().to_string(),
        "bytes": r.body.len(),
        "content_type": r.header("content-type"),
        "etag": r.header("etag"),
    }))
}
