//! Where a render reads its source from: a buffer already in memory, or a
//! stream opened on demand (a stored blob, read chunk by chunk). The
//! header is probed from the first [`HEAD_BYTES`]; the band and row
//! decoders pull the rest through a reader, so a streamed source is never
//! held whole; only the whole-image path reads it all.

use crate::error::{ImagingError, Result};
use std::borrow::Cow;
use std::io::{Read, Seek};

/// Enough for every header the probe reads: markers up to a JPEG's first
/// scan (EXIF is at most 64 KiB), a PNG's chunks before its pixel data.
pub const HEAD_BYTES: usize = 256 << 10;

pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

pub trait Source {
    /// Its length in bytes.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held in memory while it is read as a stream: all of them for
    /// a buffer, one stored chunk for a blob.
    fn resident(&self) -> u64;

    /// A reader from its first byte.
    fn open(&self) -> std::io::Result<Box<dyn ReadSeek + '_>>;

    /// The first `n` bytes, or all if shorter.
    fn head(&self, n: usize) -> Result<Cow<'_, [u8]>> {
        let mut out = Vec::with_capacity(n.min(self.len() as usize));
        self.open()
            .and_then(|r| r.take(n as u64).read_to_end(&mut out))
            .map_err(unavailable)?;
        Ok(Cow::Owned(out))
    }

    /// Every byte (the whole-image path).
    fn bytes(&self) -> Result<Cow<'_, [u8]>> {
        let mut out = Vec::with_capacity(self.len() as usize);
        self.open()
            .and_then(|mut r| r.read_to_end(&mut out))
            .map_err(unavailable)?;
        Ok(Cow::Owned(out))
    }
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn resident(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn open(&self) -> std::io::Result<Box<dyn ReadSeek + '_>> {
        Ok(Box::new(std::io::Cursor::new(self)))
    }

    fn head(&self, n: usize) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(&self[..n.min(<[u8]>::len(self))]))
    }

    fn bytes(&self) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(self))
    }
}

pub(crate) fn unavailable(e: std::io::Error) -> ImagingError {
    ImagingError::Unavailable(format!("the source could not be read: {e}"))
}

impl Source for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn resident(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn open(&self) -> std::io::Result<Box<dyn ReadSeek + '_>> {
        self.as_slice().open()
    }

    fn head(&self, n: usize) -> Result<Cow<'_, [u8]>> {
        self.as_slice().head(n)
    }

    fn bytes(&self) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(self.as_slice()))
    }
}
