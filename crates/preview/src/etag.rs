//! Strong ETags and `If-None-Match` (RFC 9110 §8.8.3, §13.1.2). A
//! preview's tag is derived from the source's content hash, the normalised
//! arguments and the renderer version, so it is known from metadata alone:
//! a revalidation never decodes or reads the blob.

use sha2::{Digest, Sha256};

/// Bump when the pipeline's output for the same input changes.
pub const RENDERER_VERSION: &str = "1";

/// The ETag of the stored bytes (`Asset::content_tag`: the SHA-256, or
/// the MD5 until the SHA-256 of an EpiFiles upload is first computed).
pub fn native(content_tag: &str) -> String {
    format!("\"{content_tag}\"")
}

/// The ETag of a rendition of the source.
pub fn preview(content_tag: &str, rendition: &str, normalized_args: &str) -> String {
    let mut h = Sha256::new();
    for part in [content_tag, rendition, normalized_args, RENDERER_VERSION] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("\"{}\"", &hex::encode(h.finalize())[..40])
}

/// Whether `If-None-Match` matches `etag` (weak comparison, as the RFC
/// says for this header): answer 304. Malformed members are ignored.
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    let Some(header) = header else { return false };
    let ours = opaque(etag);
    header
        .split(',')
        .map(str::trim)
        .any(|member| member == "*" || (ours.is_some() && opaque(member) == ours))
}

/// The quoted part of `W/"x"` or `"x"`.
fn opaque(tag: &str) -> Option<&str> {
    let t = tag.strip_prefix("W/").unwrap_or(tag);
    let inner = t.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_table() {
        let tag = "\"abc\"";
        let cases: &[(Option<&str>, bool)] = &[
            (None, false),
            (Some(""), false),
            (Some("\"abc\""), true),
            (Some("W/\"abc\""), true),
            (Some("\"xyz\", \"abc\""), true),
            (Some("\"xyz\",W/\"abc\""), true),
            (Some("*"), true),
            (Some("\"ab\""), false),
            (Some("abc"), false),
            (Some("\"abc"), false),
            (Some("\"xyz\""), false),
            (Some("\"a\"bc\""), false),
        ];
        for (header, expect) in cases {
            assert_eq!(none_match(*header, tag), *expect, "{header:?}");
        }
    }

    #[test]
    fn preview_tags_change_with_every_input_and_are_strong() {
        let base = preview("h1", "preview", "maxWidth_600.jpg");
        assert!(base.starts_with('"') && base.ends_with('"') && !base.starts_with("W/"));
        assert_eq!(
            base,
            preview("h1", "preview", "maxWidth_600.jpg"),
            "deterministic"
        );
        for other in [
            preview("h2", "preview", "maxWidth_600.jpg"),
            preview("h1", "thumb", "maxWidth_600.jpg"),
            preview("h1", "preview", "maxWidth_601.jpg"),
            native("h1"),
        ] {
            assert_ne!(base, other);
        }
        // Field boundaries are unambiguous.
        assert_ne!(preview("ab", "c", "d"), preview("a", "bc", "d"));
    }
}
