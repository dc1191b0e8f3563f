//! Content types: from magic bytes first, the file name second.

/// A media type without its parameters, trimmed and lower-cased
/// (`Image/PNG; q=1` → `image/png`): what every comparison of a declared
/// type works on.
pub fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Sniffs common asset formats from their first bytes.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let table: [(&[u8], &str); 12] = [
        (b"\xFF\xD8\xFF", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"II*\0", "image/tiff"),
        (b"MM\0*", "image/tiff"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1A\x45\xDF\xA3", "video/webm"),
        (b"ID3", "audio/mpeg"),
        (b"8BPS", "image/vnd.adobe.photoshop"),
        (b"BM", "image/bmp"),
    ];
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Some(match &head[8..12] {
            b"heic" | b"heix" | b"mif1" => "image/heic",
            b"qt  " => "video/quicktime",
            _ => "video/mp4",
        });
    }
    table
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, t)| *t)
}

/// Guesses from a file name's extension.
pub fn from_name(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "json" => "application/json",
        "xml" => "application/xml",
        "csv" => "text/csv",
        "zip" => "application/zip",
        "psd" => "image/vnd.adobe.photoshop",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

/// The content type to record: a specific declared type wins; a generic or
/// missing one is replaced by what the bytes or the name say.
pub fn resolve(declared: Option<&str>, head: &[u8], name: &str) -> String {
    let declared = declared
        .map(essence)
        .filter(|d| !d.is_empty() && d != "application/octet-stream" && d.contains('/'));
    declared
        .or_else(|| sniff(head).map(String::from))
        .or_else(|| from_name(name).map(String::from))
        .unwrap_or_else(|| "application/octet-stream".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essences() {
        for (declared, want) in [
            ("image/png", "image/png"),
            (" Image/PNG ; q=1", "image/png"),
            ("application/json;charset=utf-8", "application/json"),
            ("", ""),
            (";x", ""),
        ] {
            assert_eq!(essence(declared), want, "{declared:?}");
        }
    }

    #[test]
    fn resolution_order() {
        assert_eq!(
            resolve(None, b"\x89PNG\r\n\x1a\n....", "x.bin"),
            "image/png"
        );
        assert_eq!(
            resolve(Some("application/octet-stream"), b"\xFF\xD8\xFF\xE0", "x"),
            "image/jpeg"
        );
        assert_eq!(resolve(Some("image/png; q=1"), b"", "x"), "image/png");
        assert_eq!(resolve(None, b"????", "Report.PDF"), "application/pdf");
        assert_eq!(resolve(None, b"????", "noext"), "application/octet-stream");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
    }
}
