//! The EpiFiles chunked transfer protocol, client side: the XML envelope,
//! the resume state kept beside a file, and the two transfers
//! ([`upload`], [`download`]), each with several chunks in flight.

mod download;
mod upload;
pub mod xml;

pub use download::download;
pub use upload::{UploadOptions, upload};

use crate::fail::{Fail, Result};
use crate::http::Reply;
use md5::{Digest, Md5};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const SERVICE: &str = "/epifiles/ws/manifestfile";

/// The inner `<response>` of a successful answer; a refusal otherwise.
pub fn response(r: &Reply) -> Result<&str> {
    let not_envelope = || {
        Fail::Integrity(format!(
            "{} answer is not an EpiFiles envelope: {}",
            r.status,
            crate::http::excerpt(&r.body)
        ))
    };
    let body = std::str::from_utf8(&r.body).map_err(|_| not_envelope())?;
    let inner = xml::section(body, "response").ok_or_else(not_envelope)?;
    // The status follows the response: look after it, not through it.
    let after = &body[inner.as_ptr() as usize - body.as_ptr() as usize + inner.len()..];
    if xml::tag(after, "status").as_deref() == Some("success") && (200..300).contains(&r.status) {
        return Ok(inner);
    }
    Err(Fail::Refused {
        status: r.status,
        code: xml::tag(inner, "code").unwrap_or_else(|| "unknown".into()),
        message: xml::tag(inner, "message").unwrap_or_else(|| "(no message)".into()),
    })
}

pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// MD5 and size of a whole file, read in 1 MiB blocks.
pub fn file_md5(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path).map_err(|e| Fail::io(path.display(), e))?;
    let (mut h, mut size, mut buf) = (Md5::new(), 0u64, vec![0u8; 1 << 20]);
    loop {
        let n = f.read(&mut buf).map_err(|e| Fail::io(path.display(), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(h.finalize()), size))
}

/// `path` with `suffix` appended to its file name.
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `value` to `path` atomically (a temporary file, then a rename),
/// so an interruption leaves the previous state, never half of one.
pub fn save_state(path: &Path, value: &serde_json::Value) -> Result<()> {
    let tmp = beside(path, ".tmp");
    std::fs::write(&tmp, value.to_string()).map_err(|e| Fail::io(tmp.display(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Fail::io(path.display(), e))
}

pub fn load_state(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
