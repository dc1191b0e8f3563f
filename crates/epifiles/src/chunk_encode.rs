//! A download chunk's answer, streamed: the XML up to `<content>`, then
//! the chunk's base64 block by block, each block hashed and encoded while
//! it is in cache, then `</content><hash>` with the MD5 of it all and the
//! rest of the answer. The component writes each part as it comes, so an
//! instance holds the chunk's bytes and one block of base64, not the
//! megabyte and a half of a whole answer (whose pages, fresh each request,
//! were a fifth of the host's time per download chunk). Base64 works on
//! 3-byte groups, so up to two bytes are carried from one piece to the
//! next.

use md5::{Digest, Md5};

/// Bytes encoded per part: a multiple of 3, small enough to stay in cache.
const BLOCK: usize = 48 << 10;

/// The base64 length of `len` bytes, padded.
pub fn encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

const HASH_OPEN: &str = "</content><hash>";
const HASH_CLOSE: &str = "</hash>";

/// The parts of one download answer, in order ([`Iterator`]); their total
/// is [`ChunkStream::len`], known before the first.
pub struct ChunkStream {
    len: usize,
    head: Option<Vec<u8>>,
    pieces: Vec<Vec<u8>>,
    /// The piece being encoded, and where in it.
    piece: usize,
    at: usize,
    carry: Vec<u8>,
    md5: Md5,
    tail: Option<String>,
}

impl ChunkStream {
    /// `head` ends with `<content>`; `tail` is what follows `</hash>`.
    pub fn new(head: Vec<u8>, pieces: Vec<Vec<u8>>, tail: String) -> ChunkStream {
        let bytes: usize = pieces.iter().map(Vec::len).sum();
        let len =
            head.len() + encoded_len(bytes) + HASH_OPEN.len() + 32 + HASH_CLOSE.len() + tail.len();
        ChunkStream {
            len,
            head: Some(head),
            pieces,
            piece: 0,
            at: 0,
            carry: Vec::with_capacity(3),
            md5: Md5::new(),
            tail: Some(tail),
        }
    }

    /// The whole answer's length in bytes (its `Content-Length`).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole answer in one buffer (tests, and callers without a
    /// stream).
    pub fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for part in self {
            out.extend_from_slice(&part);
        }
        out
    }

    /// The next block of base64, `None` when every byte is encoded.
    fn next_block(&mut self) -> Option<Vec<u8>> {
        let engine = &base64_simd::STANDARD;
        let mut block = Vec::with_capacity(encoded_len(BLOCK) + 4);
        while block.len() < encoded_len(BLOCK) {
            let Some(piece) = self.pieces.get(self.piece) else {
                break;
            };
            let rest = &piece[self.at..];
            if rest.is_empty() {
                self.piece += 1;
                self.at = 0;
                continue;
            }
            if !self.carry.is_empty() {
                let need = (3 - self.carry.len()).min(rest.len());
                self.md5.update(&rest[..need]);
                self.carry.extend_from_slice(&rest[..need]);
                self.at += need;
                if self.carry.len() == 3 {
                    engine.encode_append(&self.carry, &mut block);
                    self.carry.clear();
                }
                continue;
            }
            let room = (encoded_len(BLOCK) - block.len()).div_ceil(4) * 3;
            let take = rest.len().min(room) / 3 * 3;
            if take == 0 {
                self.md5.update(rest);
                self.carry.extend_from_slice(rest);
                self.at += rest.len();
                continue;
            }
            self.md5.update(&rest[..take]);
            engine.encode_append(&rest[..take], &mut block);
            self.at += take;
        }
        if self.piece >= self.pieces.len() && !self.carry.is_empty() {
            engine.encode_append(&self.carry, &mut block);
            self.carry.clear();
        }
        (!block.is_empty()).then_some(block)
    }
}

impl Iterator for ChunkStream {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if let Some(block) = self.next_block() {
            return Some(block);
        }
        let tail = self.tail.take()?;
        let md5 = hex::encode(std::mem::take(&mut self.md5).finalize());
        let mut end = String::with_capacity(HASH_OPEN.len() + 32 + HASH_CLOSE.len() + tail.len());
        end.push_str(HASH_OPEN);
        end.push_str(&md5);
        end.push_str(HASH_CLOSE);
        end.push_str(&tail);
        Some(end.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn answer(head: &str, body: &[u8], tail: &str) -> String {
        format!(
            "{head}{}</content><hash>{}</hash>{tail}",
            base64::engine::general_purpose::STANDARD.encode(body),
            assetgate_store::hash::md5_hex(body)
        )
    }

    #[test]
    fn any_split_gives_the_one_shot_digest_and_encoding() {
        let data: Vec<u8> = (0..200_003u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for cuts in [
            vec![],
            vec![1],
            vec![1, 2],
            vec![2, 3],
            vec![100_000, 100_001, 150_000],
            vec![65_537, 131_074],
            vec![49_151, 49_152, 49_153, 98_305],
        ] {
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts.iter().copied().chain([data.len()]) {
                pieces.push(data[last..c].to_vec());
                last = c;
            }
            let s = ChunkStream::new(b"<a><content>".to_vec(), pieces, "</a>".into());
            let len = s.len();
            let parts: Vec<Vec<u8>> = s.collect();
            assert!(parts.len() > 2, "streamed in parts");
            assert!(
                parts
                    .iter()
                    .all(|p| p.len() <= encoded_len(BLOCK) + 4 || p.starts_with(b"<")),
                "no part holds the whole chunk"
            );
            let whole = String::from_utf8(parts.concat()).unwrap();
            assert_eq!(whole.len(), len, "{cuts:?}");
            assert_eq!(whole, answer("<a><content>", &data, "</a>"), "{cuts:?}");
        }
    }

    #[test]
    fn small_and_empty_chunks() {
        for n in 0..8usize {
            let data: Vec<u8> = (0..n as u8).collect();
            let pieces = data.iter().map(|&b| vec![b]).collect();
            let s = ChunkStream::new(b"<content>".to_vec(), pieces, String::new());
            let len = s.len();
            let whole = String::from_utf8(s.into_bytes()).unwrap();
            assert_eq!((whole.len(), whole), (len, answer("<content>", &data, "")));
        }
    }
}
