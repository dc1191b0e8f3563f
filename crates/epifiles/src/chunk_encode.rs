//! A download chunk's MD5 and base64 in one pass over its bytes, piece by
//! piece as the store yields them (no concatenated copy of the chunk):
//! each block is hashed and encoded while it is in cache. Base64 works on
//! 3-byte groups, so up to two bytes are carried to the next piece.

use md5::{Digest, Md5};

/// Bytes hashed and encoded together: a multiple of 3, small enough to
/// stay in cache.
const BLOCK: usize = 48 << 10;

pub struct ChunkEncoder {
    md5: Md5,
    base64: String,
    carry: Vec<u8>,
}

impl ChunkEncoder {
    /// For a chunk of about `len` bytes.
    pub fn new(len: usize) -> ChunkEncoder {
        ChunkEncoder {
            md5: Md5::new(),
            base64: String::with_capacity(len.div_ceil(3) * 4),
            carry: Vec::with_capacity(2),
        }
    }

    pub fn push(&mut self, mut piece: &[u8]) {
        let engine = &base64_simd::STANDARD;
        self.md5.update(piece);
        if !self.carry.is_empty() {
            let need = (3 - self.carry.len()).min(piece.len());
            self.carry.extend_from_slice(&piece[..need]);
            piece = &piece[need..];
            if self.carry.len() < 3 {
                return;
            }
            engine.encode_append(&self.carry, &mut self.base64);
            self.carry.clear();
        }
        let whole = piece.len() / 3 * 3;
        for block in piece[..whole].chunks(BLOCK) {
            engine.encode_append(block, &mut self.base64);
        }
        self.carry.extend_from_slice(&piece[whole..]);
    }

    /// Hex MD5 and base64 (padded) of everything pushed.
    pub fn finish(mut self) -> (String, String) {
        if !self.carry.is_empty() {
            base64_simd::STANDARD.encode_append(&self.carry, &mut self.base64);
        }
        (hex::encode(self.md5.finalize()), self.base64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn any_split_gives_the_one_shot_digest_and_encoding() {
        let data: Vec<u8> = (0..200_003u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let want = (
            assetgate_store::hash::md5_hex(&data),
            base64::engine::general_purpose::STANDARD.encode(&data),
        );
        for cuts in [
            vec![],
            vec![1],
            vec![2, 3],
            vec![100_000, 100_001, 150_000],
            vec![65_537, 131_074],
        ] {
            let mut e = ChunkEncoder::new(data.len());
            let mut last = 0;
            for c in cuts.iter().copied().chain([data.len()]) {
                e.push(&data[last..c]);
                last = c;
            }
            assert_eq!(e.finish(), want, "{cuts:?}");
        }
        assert_eq!(ChunkEncoder::new(0).finish().1, "");
    }
}
