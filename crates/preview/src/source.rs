//! A stored asset as an imaging source: headers and bands are pulled from
//! the blob store chunk by chunk, so a render never holds the original
//! file whole unless it decodes the whole image anyway.

use assetgate_imaging::source::{ReadSeek, Source};
use assetgate_store::{BlobConfig, Blobs, Kv};

pub struct StoredSource<'a, K: Kv + ?Sized> {
    kv: &'a K,
    blobs: BlobConfig,
    id: &'a str,
    size: u64,
}

impl<'a, K: Kv + ?Sized> StoredSource<'a, K> {
    /// The complete blob `id` of `size` bytes.
    pub fn new(kv: &'a K, blobs: BlobConfig, id: &'a str, size: u64) -> Self {
        StoredSource {
            kv,
            blobs,
            id,
            size,
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

    fn open(&self) -> std::io::Result<Box<dyn ReadSeek + '_>> {
        Blobs::new(self.kv, self.blobs)
            .reader(self.id)
            .map(|r| Box::new(r) as Box<dyn ReadSeek + '_>)
            .map_err(std::io::Error::other)
    }
}
