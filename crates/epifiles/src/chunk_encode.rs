//! A download chunk's MD5 and base64 in one pass over its bytes, piece by
//! piece as the store yields them (no concatenated copy of the chunk):
//! each block is hashed and encoded while it is in cache, straight into
//! the answer's buffer. Base64 works on 3-byte groups, so up to two bytes
//! are carried to the next piece.

use md5::{Digest, Md5};

/// Bytes hashed and encoded together: a multiple of 3, small enough to
/// stay in cache.
const BLOCK: usize = 48 << 10;

pub struct ChunkEncoder<'a> {
    md5: Md5,
    base64: &'a mut String,
    carry: [u8; 2],
    carried: usize,
}

/// The base64 length of `len` bytes, padded.
pub fn encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

impl<'a> ChunkEncoder<'a> {
    /// Appends to `out` (which should have room for [`encoded_len`]).
    pub fn new(out: &'a mut String) -> ChunkEncoder<'a> {
        ChunkEncoder {
            md5: Md5::new(),
            base64: out,
            carry: [0; 2],
            carried: 0,
        }
    }

    pub fn push(&mut self, mut piece: &[u8]) {
        let engine = &base64_simd::STANDARD;
        self.md5.update(piece);
        if self.carried > 0 {
            let need = (3 - self.carried).min(piece.len());
            let mut group = [0u8; 3];
            group[..self.carried].copy_from_slice(&self.carry[..self.carried]);
            group[self.carried..self.carried + need].copy_from_slice(&piece[..need]);
            piece = &piece[need..];
            if self.carried + need < 3 {
                self.carry[..self.carried + need].copy_from_slice(&group[..self.carried + need]);
                self.carried += need;
                return;
            }
            engine.encode_append(group, self.base64);
            self.carried = 0;
        }
        let whole = piece.len() / 3 * 3;
        for block in piece[..whole].chunks(BLOCK) {
            engine.encode_append(block, self.base64);
        }
        let rest = &piece[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    /// Hex MD5 of everything pushed, its base64 (padded) appended.
    pub fn finish(self) -> String {
        if self.carried > 0 {
            base64_simd::STANDARD.encode_append(&self.carry[..self.carried], self.base64);
        }
        hex::encode(self.md5.finalize())
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
            vec![1, 2],
            vec![2, 3],
            vec![100_000, 100_001, 150_000],
            vec![65_537, 131_074],
        ] {
            let mut out = String::from("<content>");
            let mut e = ChunkEncoder::new(&mut out);
            let mut last = 0;
            for c in cuts.iter().copied().chain([data.len()]) {
                e.push(&data[last..c]);
                last = c;
            }
            let md5 = e.finish();
            assert_eq!(
                (md5, out.strip_prefix("<content>").unwrap().to_string()),
                want,
                "{cuts:?}"
            );
            assert_eq!(out.len(), "<content>".len() + encoded_len(data.len()));
        }
        let mut out = String::new();
        assert_eq!(
            ChunkEncoder::new(&mut out).finish(),
            assetgate_store::hash::md5_hex(b"")
        );
        assert_eq!(out, "");
    }
}
