//! A stored asset as an imaging source: headers and bands are pulled from
//! the blob store chunk by chunk, so a render never holds the original
//! file whole unless it decodes the whole image anyway.

use assetgate_imaging::ImagingError;
use assetgate_imaging::source::{ReadSeek, Source};
use assetgate_store::{BlobConfig, Blobs, Kv};
use std::borrow::Cow;
use std::cell::OnceCell;
use std::io::Read;

pub struct StoredSource<'a, K: Kv + ?Sized> {
    kv: &'a K,
    blobs: BlobConfig,
    id: &'a str,
    size: u64,
    /// The head, read once: the probe and the decoder's choice of path
    /// both ask for it.
    head: OnceCell<Vec<u8>>,
}

impl<'a, K: Kv + ?Sized> StoredSource<'a, K> {
    /// The complete blob `id` of `size` bytes.
    pub fn new(kv: &'a K, blobs: BlobConfig, id: &'a str, size: u64) -> Self {
        StoredSource {
            kv,
            blobs,
            id,
            size,
            head: OnceCell::new(),
        }
    }
}

impl<K: Kv + ?Sized> Source for StoredSource<'_, K> {
    fn len(&self) -> u64 {
        self.size
    }

    fn resident(&self) -> u64 {
        self.blobs.chunk_size.min(self.size)
    }

    fn head(&self, n: usize) -> Result<Cow<'_, [u8]>, ImagingError> {
        if let Some(h) = self.head.get()
            && (h.len() >= n || h.len() as u64 == self.size)
        {
            return Ok(Cow::Borrowed(&h[..n.min(h.len())]));
        }
        let mut bytes = Vec::with_capacity(n.min(self.size as usize));
        self.open()
            .and_then(|r| r.take(n as u64).read_to_end(&mut bytes))
            .map_err(|e| ImagingError::Unavailable(format!("the source could not be read: {e}")))?;
        if self.head.get().is_some() {
            return Ok(Cow::Owned(bytes));
        }
        Ok(Cow::Borrowed(self.head.get_or_init(|| bytes).as_slice()))
    }

    fn open(&self) -> std::io::Result<Box<dyn ReadSeek + '_>> {
        Blobs::new(self.kv, self.blobs)
            .reader(self.id)
            .map(|r| Box::new(r) as Box<dyn ReadSeek + '_>)
            .map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assetgate_store::MemoryKv;

    #[test]
    fn the_head_is_read_once_and_the_rest_streams() {
        let kv = MemoryKv::new();
        let cfg = BlobConfig {
            chunk_size: 16,
            max_blob_size: 4096,
        };
        let data: Vec<u8> = (0..100u8).collect();
        Blobs::new(&kv, cfg)
            .put("a", &data, "image/jpeg", 0)
            .unwrap();
        let s = StoredSource::new(&kv, cfg, "a", 100);
        assert_eq!(&*s.head(10).unwrap(), &data[..10]);
        // Served from the first read.
        assert!(matches!(s.head(10).unwrap(), Cow::Borrowed(_)));
        assert_eq!(s.resident(), 16);
        assert_eq!(&*s.bytes().unwrap(), &data[..]);
        let whole = StoredSource::new(&kv, cfg, "a", 100);
        assert_eq!(&*whole.head(1000).unwrap(), &data[..]);
        assert_eq!(&*whole.head(5).unwrap(), &data[..5]);
    }
}
