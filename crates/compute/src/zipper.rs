//! `zip` renditions: members in request order under their paths (checked
//! relative by [`crate::request`]); a repeated path is an error unless the
//! rendition says `duplicate: "ignore"`, which keeps the first.

use crate::error::Failure;
use std::io::Write;

pub struct Archive {
    writer: zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
    paths: std::collections::HashSet<String>,
    ignore_duplicates: bool,
}

impl Archive {
    pub fn new(ignore_duplicates: bool) -> Archive {
        Archive {
            writer: zip::ZipWriter::new(std::io::Cursor::new(Vec::new())),
            paths: Default::default(),
            ignore_duplicates,
        }
    }

    /// Whether `path` would be taken (so the caller can skip fetching a
    /// member that will be ignored).
    pub fn has(&self, path: &str) -> bool {
        self.paths.contains(path)
    }

    pub fn add(&mut self, path: &str, bytes: &[u8]) -> Result<(), Failure> {
        if self.paths.contains(path) {
            if self.ignore_duplicates {
                return Ok(());
            }
            return Err(Failure::generic(format!(
                "two files go to `{path}` in the archive (set duplicate: \"ignore\" to keep the first)"
            )));
        }
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(bytes.len() as u64 >= u32::MAX as u64);
        self.writer
            .start_file(path, opts)
            .and_then(|_| self.writer.write_all(bytes).map_err(Into::into))
            .map_err(|e| Failure::generic(format!("zip: {e}")))?;
        self.paths.insert(path.to_string());
        Ok(())
    }

    pub fn finish(self) -> Result<Vec<u8>, Failure> {
        self.writer
            .finish()
            .map(|c| c.into_inner())
            .map_err(|e| Failure::generic(format!("zip: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn members_and_duplicates() {
        let mut a = Archive::new(false);
        a.add("a/one.txt", b"1").unwrap();
        a.add("two.bin", &[0u8; 5000]).unwrap();
        assert!(a.add("a/one.txt", b"again").is_err());
        let bytes = a.finish().unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(z.len(), 2);
        let mut s = String::new();
        z.by_name("a/one.txt")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "1");

        let mut a = Archive::new(true);
        a.add("x", b"first").unwrap();
        a.add("x", b"second").unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(a.finish().unwrap())).unwrap();
        let mut s = String::new();
        z.by_name("x").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!((z.len(), s.as_str()), (1, "first"));
    }
}
