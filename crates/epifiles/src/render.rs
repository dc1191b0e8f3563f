//! The XML elements of the reference: `<manifest>`, `<manifest_file>` and
//! the upload progress answer.

use crate::chunk_encode::ChunkStream;
use crate::model::{Manifest, ManifestFile, Process};
use crate::xml::{self, Xml};
use assetgate_web::time::rfc3339;

/// `YYYY-MM-DD HH:mm:ss` (UTC).
pub fn datetime(secs: u64) -> String {
    let s = rfc3339(secs);
    format!("{} {}", &s[..10], &s[11..19])
}

/// `YYYY-MM-DD` (UTC).
pub fn date(secs: u64) -> String {
    rfc3339(secs)[..10].to_string()
}

pub fn manifest(x: &mut Xml, m: &Manifest) {
    x.open("manifest")
        .raw_text("id", &m.id)
        .text("comment", &m.comment)
        .raw_text("creation_date", &datetime(m.created_at))
        .raw_text("manifest_status", &m.status.to_string())
        .open("manifest_files");
    for f in &m.files {
        x.raw_text("id", f);
    }
    x.close("manifest_files")
        .text("id_repository", &m.repository)
        .raw_text("archived", if m.archived { "1" } else { "0" })
        .close("manifest");
}

/// `<manifest_file>` without content (listings, a finished upload).
pub fn manifest_file(x: &mut Xml, f: &ManifestFile, total_chunks: u64) {
    manifest_file_fields(x, f);
    x.raw_text("total_chunks", &total_chunks.to_string())
        .close("file")
        .close("manifest_file");
}

/// The whole success answer of a download chunk: `<manifest_file>` whose
/// `<file>` carries chunk `index` of `total` (`pieces`, in order) in
/// base64 with its MD5, streamed part by part.
pub fn download_chunk(
    f: &ManifestFile,
    index: u64,
    total: u64,
    pieces: Vec<Vec<u8>>,
) -> ChunkStream {
    let mut head = Xml::new();
    manifest_file_fields(&mut head, f);
    head.open("content");
    let mut tail = Xml::new();
    tail.raw_text("chunk_index", &index.to_string())
        .raw_text("total_chunks", &total.to_string())
        .close("file")
        .close("manifest_file");
    let mut tail = tail.into_string();
    tail.push_str(xml::SUCCESS_TAIL);
    ChunkStream::new(head.into_head(), pieces, tail)
}

/// `<manifest_file>` and its `<file>` up to the file name.
fn manifest_file_fields(x: &mut Xml, f: &ManifestFile) {
    x.open("manifest_file")
        .raw_text("id", &f.id)
        .raw_text("id_manifest", &f.manifest)
        .raw_text("purge_date", &date(f.purge_at))
        .raw_text(
            "downloaded_by_mg",
            if f.downloaded_by_mg { "1" } else { "0" },
        )
        .open("file")
        .text("id", &f.asset)
        .text("content_type", &f.content_type)
        .raw_text("file_hash", &f.md5)
        .raw_text("size", &f.size.to_string())
        .text("filename", &f.filename);
}

/// The answer while an upload is incomplete: the same `process_id`, plus
/// where it stands (extra elements a Zend client ignores).
pub fn progress(x: &mut Xml, p: &Process, chunk_index: u64) {
    x.text("process_id", &p.id)
        .raw_text("chunk_index", &chunk_index.to_string())
        .raw_text("received_chunks", &p.received.count().to_string())
        .raw_text("next_chunk_index", &p.received.first_missing().to_string())
        .raw_text("total_chunks", &p.total_chunks.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(datetime(1_557_929_634), "2019-05-15 14:13:54");
        assert_eq!(date(1_557_929_634), "2019-05-15");
    }
}
