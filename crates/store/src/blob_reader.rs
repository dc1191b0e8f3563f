//! A complete blob as `std::io::Read + Seek`: decoders that pull bytes
//! (image headers, JPEG bands, PNG rows) read a stored file chunk by chunk
//! instead of loading it whole. One chunk is held at a time; a seek only
//! moves the position, and the chunk under it is fetched on the next read.

use crate::backend::Kv;
use crate::blob::{Blobs, Descriptor};
use crate::error::Result;
use crate::keys;
use std::io::{self, Read, Seek, SeekFrom};

pub struct BlobReader<'a, K: Kv + ?Sized> {
    kv: &'a K,
    desc: Descriptor,
    pos: u64,
    /// The chunk last fetched and its number.
    chunk: Option<(u64, Vec<u8>)>,
}

impl<'a, K: Kv + ?Sized> Blobs<'a, K> {
    /// A reader over a complete blob, positioned at its start.
    pub fn reader(&self, id: &str) -> Result<BlobReader<'a, K>> {
        Ok(BlobReader {
            kv: self.kv(),
            desc: self.stat(id)?,
            pos: 0,
            chunk: None,
        })
    }
}

impl<K: Kv + ?Sized> BlobReader<'_, K> {
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }

    fn fetch(&mut self, n: u64) -> io::Result<&[u8]> {
        if self.chunk.as_ref().is_none_or(|(have, _)| *have != n) {
            let bytes = self
                .kv
                .get(&keys::blob_chunk(&self.desc.id, n))
                .map_err(io::Error::other)?
                .ok_or_else(|| {
                    io::Error::other(format!("blob `{}`: chunk {n} is missing", self.desc.id))
                })?;
            self.chunk = Some((n, bytes));
        }
        Ok(self
            .chunk
            .as_ref()
            .map(|(_, b)| b.as_slice())
            .unwrap_or(&[]))
    }
}

impl<K: Kv + ?Sized> Read for BlobReader<'_, K> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.desc.size || buf.is_empty() {
            return Ok(0);
        }
        let size = self.desc.chunk_size.max(1);
        let (n, offset) = (self.pos / size, (self.pos % size) as usize);
        let left = (self.desc.size - self.pos) as usize;
        let chunk = self.fetch(n)?;
        let avail = chunk.len().saturating_sub(offset).min(left);
        if avail == 0 {
            return Err(io::Error::other(
                "a blob chunk is shorter than its descriptor says",
            ));
        }
        let take = avail.min(buf.len());
        buf[..take].copy_from_slice(&chunk[offset..offset + take]);
        self.pos += take as u64;
        Ok(take)
    }
}

impl<K: Kv + ?Sized> Seek for BlobReader<'_, K> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.desc.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use crate::{BlobConfig, Blobs, MemoryKv};
    use std::io::{Read, Seek, SeekFrom};

    const SMALL: BlobConfig = BlobConfig {
        chunk_size: 16,
        max_blob_size: 4096,
    };

    #[test]
    fn reads_and_seeks_across_chunks() {
        let kv = MemoryKv::new();
        let b = Blobs::new(&kv, SMALL);
        let data: Vec<u8> = (0..100u8).collect();
        b.put("x", &data, "application/octet-stream", 0).unwrap();
        let mut r = b.reader("x").unwrap();
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        r.seek(SeekFrom::Start(30)).unwrap();
        let mut five = [0u8; 5];
        r.read_exact(&mut five).unwrap();
        assert_eq!(five, [30, 31, 32, 33, 34]);
        r.seek(SeekFrom::Current(-20)).unwrap();
        r.read_exact(&mut five).unwrap();
        assert_eq!(five, [15, 16, 17, 18, 19]);
        assert_eq!(r.seek(SeekFrom::End(-1)).unwrap(), 99);
        assert_eq!(r.read(&mut five).unwrap(), 1);
        assert_eq!(r.read(&mut five).unwrap(), 0, "end of the blob");
        assert!(r.seek(SeekFrom::Current(-1000)).is_err());
        assert!(b.reader("missing").is_err());
    }

    #[test]
    fn a_missing_chunk_is_an_error_not_short_data() {
        let kv = MemoryKv::new();
        let b = Blobs::new(&kv, SMALL);
        b.put("x", &[7u8; 40], "application/octet-stream", 0)
            .unwrap();
        use crate::Kv;
        kv.delete(&crate::keys::blob_chunk("x", 1)).unwrap();
        let mut r = b.reader("x").unwrap();
        let mut all = Vec::new();
        assert!(r.read_to_end(&mut all).is_err());
    }
}
