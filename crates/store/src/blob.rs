//! Blobs of any size as fixed-size chunks under one id.
//!
//! Writing: `begin`, then `put_chunk` in any order (the same chunk twice is
//! a no-op; a different chunk at the same index is a conflict), then
//! `finish`, which checks that the chunks are contiguous, hashes them in one
//! pass and writes the descriptor **last**: a blob without a descriptor is
//! invisible, so a crash never exposes half a blob. Unfinished uploads are
//! listed in the `blobs-pending` index so `reclaim_stale` can remove them
//! without scanning the store.

use crate::backend::Kv;
use crate::error::{ErrorCode, Result, StoreError};
use crate::hash::{Digests, MultiHasher};
use crate::index::Index;
use crate::keys;
use serde::{Deserialize, Serialize};

const PENDING_INDEX: &str = "blobs-pending";

/// Limits of the blob store.
#[derive(Debug, Clone, Copy)]
pub struct BlobConfig {
    /// Bytes per chunk (default 1 MiB). Lower it for backends with small
    /// value limits (e.g. 400 KiB on DynamoDB).
    pub chunk_size: u64,
    /// Largest blob accepted (default 8 GiB).
    pub max_blob_size: u64,
}

impl Default for BlobConfig {
    fn default() -> Self {
        BlobConfig {
            chunk_size: 1 << 20,
            max_blob_size: 8 << 30,
        }
    }
}

/// What a finished blob is: written last, read first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub id: String,
    pub size: u64,
    pub chunk_size: u64,
    pub chunks: u64,
    pub digests: Digests,
    pub content_type: String,
    /// Unix seconds.
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    started_at: u64,
    chunk_size: u64,
    /// Highest chunk index written so far.
    max_chunk: Option<u64>,
    /// Last chunk write (unix seconds): idle uploads are reclaimed.
    #[serde(default)]
    touched_at: u64,
    /// Chunks `0..hashed` are folded into `hash_state` (hex of
    /// [`MultiHasher::save`]), so `finish` only reads what came out of order.
    #[serde(default)]
    hashed: u64,
    #[serde(default)]
    hashed_bytes: u64,
    #[serde(default)]
    hash_state: Option<String>,
    /// Who folds chunks into `hash_state` now, when that is not simply the
    /// writer of the frontier chunk (see `update_marker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease: Option<Lease>,
    /// Hash MD5 only on the way in ([`Hashes::Md5`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    md5_only: bool,
}

/// The whole-blob digests an upload computes as its chunks arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashes {
    /// MD5 and SHA-256 (the catalog's `sha256`, Phraseanet's `hash`).
    Md5AndSha256,
    /// MD5 only; the descriptor's `sha256` is empty and is computed when a
    /// protocol first asks (`assetgate_catalog::Catalog::sha256`).
    Md5,
}

/// The hashing lease: taken by the writer of chunk `by`, void after `until`
/// (unix seconds) if its request died holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    by: u64,
    until: u64,
}

impl Pending {
    fn hasher(&self, id: &str) -> Result<MultiHasher> {
        match &self.hash_state {
            None if self.md5_only => Ok(MultiHasher::md5_only()),
            None => Ok(MultiHasher::new()),
            Some(h) => hex::decode(h)
                .ok()
                .and_then(|raw| MultiHasher::restore(&raw))
                .ok_or_else(|| StoreError::corrupt(format!("blob `{id}`: bad hash state"))),
        }
    }

    /// A short chunk may only be the last one: once one is hashed, the
    /// frontier stops and `finish` decides.
    fn frontier_open(&self) -> bool {
        self.hashed_bytes == self.hashed * self.chunk_size
    }
}

/// Chunks one write may fold into the frontier (its own and those stored
/// ahead of it); `finish` hashes what is left.
const HASH_BUDGET: u64 = 64;
/// A lease holder saves its progress this often (chunks).
const HASH_SAVE_EVERY: u64 = 8;
/// A hashing lease outlives any request that holds it (30 s at the edge).
const HASH_LEASE_SECS: u64 = 60;

/// Whether `put_chunk` wrote anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkWrite {
    Stored,
    AlreadyPresent,
}

pub struct Blobs<'a, K: Kv + ?Sized> {
    kv: &'a K,
    config: BlobConfig,
}

impl<'a, K: Kv + ?Sized> Blobs<'a, K> {
    pub fn new(kv: &'a K, config: BlobConfig) -> Self {
        Blobs { kv, config }
    }

    pub(crate) fn kv(&self) -> &'a K {
        self.kv
    }

    pub fn config(&self) -> BlobConfig {
        self.config
    }

    fn pending(&self, id: &str) -> Result<Option<(Pending, Vec<u8>)>> {
        match self.kv.get(&keys::blob_pending(id))? {
            None => Ok(None),
            Some(raw) => {
                let p = serde_json::from_slice(&raw)
                    .map_err(|e| StoreError::corrupt(format!("blob `{id}` marker: {e}")))?;
                Ok(Some((p, raw)))
            }
        }
    }

    /// Starts (or resumes) an upload that computes both digests. `Conflict`
    /// if the blob is complete.
    pub fn begin(&self, id: &str, now: u64) -> Result<()> {
        self.begin_with(id, Hashes::Md5AndSha256, now)
    }

    /// Starts (or resumes) an upload computing `hashes` on the way in.
    pub fn begin_with(&self, id: &str, hashes: Hashes, now: u64) -> Result<()> {
        keys::check_id("blob id", id)?;
        if self.kv.exists(&keys::blob_meta(id))? {
            return Err(StoreError::conflict(format!("blob `{id}` already exists")));
        }
        if let Some((p, _)) = self.pending(id)? {
            if p.chunk_size != self.config.chunk_size {
                return Err(StoreError::conflict(format!(
                    "blob `{id}` was started with {}-byte chunks",
                    p.chunk_size
                )));
            }
            return Ok(());
        }
        let marker = Pending {
            started_at: now,
            chunk_size: self.config.chunk_size,
            max_chunk: None,
            touched_at: now,
            hashed: 0,
            hashed_bytes: 0,
            hash_state: None,
            lease: None,
            md5_only: hashes == Hashes::Md5,
        };
        let raw = serde_json::to_vec(&marker).expect("marker serialises");
        // Lost race with a concurrent begin of the same id: that is a resume.
        self.kv
            .compare_and_swap(&keys::blob_pending(id), None, &raw)?;
        Index::new(self.kv, PENDING_INDEX)?.add(id)?;
        Ok(())
    }

    /// Stores chunk `index` at time `now`. Every chunk but the last must be
    /// exactly `chunk_size` bytes (checked by `finish`, which knows which is
    /// last). Chunks that extend the contiguous prefix are hashed on the way
    /// in.
    pub fn put_chunk(&self, id: &str, index: u64, bytes: &[u8], now: u64) -> Result<ChunkWrite> {
        keys::check_id("blob id", id)?;
        let Some((pending, raw)) = self.pending(id)? else {
            if !self.kv.exists(&keys::blob_meta(id))? {
                return Err(StoreError::not_found(format!(
                    "no upload `{id}` in progress"
                )));
            }
            // A resend racing with (or after) completion changes nothing.
            return match self.kv.get(&keys::blob_chunk(id, index))? {
                Some(existing) if existing == bytes => Ok(ChunkWrite::AlreadyPresent),
                _ => Err(StoreError::conflict(format!(
                    "blob `{id}` is already complete"
                ))),
            };
        };
        if bytes.is_empty() || bytes.len() as u64 > pending.chunk_size {
            return Err(StoreError::invalid(format!(
                "chunk {index} of `{id}` has {} bytes; chunks hold 1 to {} bytes",
                bytes.len(),
                pending.chunk_size
            )));
        }
        let max_chunks = self.config.max_blob_size.div_ceil(pending.chunk_size);
        if index >= max_chunks {
            return Err(StoreError::too_large(format!(
                "chunk {index} of `{id}` is beyond the {}-byte blob limit",
                self.config.max_blob_size
            )));
        }
        let key = keys::blob_chunk(id, index);
        let outcome = if self.kv.compare_and_swap(&key, None, bytes)? {
            ChunkWrite::Stored
        } else {
            match self.kv.get(&key)? {
                Some(existing) if existing == bytes => ChunkWrite::AlreadyPresent,
                _ => {
                    return Err(StoreError::conflict(format!(
                        "chunk {index} of `{id}` was already stored with other content"
                    )));
                }
            }
        };
        self.update_marker(id, index, bytes, now, pending, raw)?;
        Ok(outcome)
    }

    /// Records the write in the marker (highest chunk, activity time) and
    /// moves the hash frontier when this writer may. Concurrent writers of
    /// one blob must not all hash the same chunks (with four chunks in
    /// flight, each redid the others' work and lost the race to store it):
    /// the writer of the frontier chunk folds it in from its hands; a writer
    /// that finds the frontier chunk already stored takes the marker's
    /// hashing lease and folds what is present, reading it back; everyone
    /// else only records the write. A holder re-checks the frontier after
    /// releasing, and every writer checks it after recording, so a chunk
    /// stored while a holder hashed is never left behind.
    fn update_marker(
        &self,
        id: &str,
        index: u64,
        bytes: &[u8],
        now: u64,
        mut pending: Pending,
        mut raw: Vec<u8>,
    ) -> Result<()> {
        let key = keys::blob_pending(id);
        let mut budget = HASH_BUDGET;
        let mut recorded = false;
        let mut folded: Option<(u64, String)> = None;
        loop {
            let mut next = pending.clone();
            next.touched_at = next.touched_at.max(now);
            next.max_chunk = Some(next.max_chunk.map_or(index, |m| m.max(index)));
            let may_hash = budget > 0
                && pending.frontier_open()
                && pending.lease.is_none_or(|l| l.until < now);
            if may_hash && index == pending.hashed {
                // In hand: fold it and move the frontier in one write; a
                // retry after another writer's update reuses the fold.
                let state = match folded.take() {
                    Some((from, state)) if from == pending.hashed => state,
                    _ => {
                        let mut h = pending.hasher(id)?;
                        h.update(bytes);
                        hex::encode(h.save())
                    }
                };
                next.hashed += 1;
                next.hashed_bytes += bytes.len() as u64;
                next.hash_state = Some(state.clone());
                next.lease = None;
                folded = Some((pending.hashed, state));
            } else if may_hash && self.kv.exists(&keys::blob_chunk(id, pending.hashed))? {
                next.lease = Some(Lease {
                    by: index,
                    until: now + HASH_LEASE_SECS,
                });
                let encoded = serde_json::to_vec(&next).expect("marker serialises");
                if self.kv.compare_and_swap(&key, Some(&raw), &encoded)? {
                    recorded = true;
                    let lease = next.lease.expect("just set");
                    budget = self.hash_held(id, (index, bytes), next, encoded, lease, budget)?;
                }
                match self.pending(id)? {
                    Some((p, r)) => (pending, raw) = (p, r),
                    None => return Ok(()),
                }
                continue;
            } else if recorded || next == pending {
                return Ok(());
            }
            let advanced = next.hashed != pending.hashed;
            let encoded = serde_json::to_vec(&next).expect("marker serialises");
            if self.kv.compare_and_swap(&key, Some(&raw), &encoded)? {
                recorded = true;
                if !advanced {
                    return Ok(());
                }
                // Moved it: the next chunk may have landed meanwhile.
                budget -= 1;
                (pending, raw) = (next, encoded);
                continue;
            }
            match self.pending(id)? {
                Some((p, r)) => (pending, raw) = (p, r),
                // Finished or deleted meanwhile: nothing to track.
                None => return Ok(()),
            }
        }
    }

    /// Under `lease`: folds the chunks present from the frontier on (at
    /// most `budget`; `in_hand` is read from memory), saving the state
    /// every [`HASH_SAVE_EVERY`] chunks, then releases the lease. Returns
    /// the budget left. Another request's writes only touch the marker's
    /// other fields; a lost lease (expired and taken) drops the work.
    fn hash_held(
        &self,
        id: &str,
        in_hand: (u64, &[u8]),
        mut marker: Pending,
        mut raw: Vec<u8>,
        lease: Lease,
        mut budget: u64,
    ) -> Result<u64> {
        let key = keys::blob_pending(id);
        let mut h = marker.hasher(id)?;
        let (mut hashed, mut hashed_bytes) = (marker.hashed, marker.hashed_bytes);
        let mut release = false;
        while !release {
            let mut unsaved = 0;
            while budget > 0
                && unsaved < HASH_SAVE_EVERY
                && hashed_bytes == hashed * marker.chunk_size
            {
                let owned;
                let chunk = if hashed == in_hand.0 {
                    in_hand.1
                } else {
                    match self.kv.get(&keys::blob_chunk(id, hashed))? {
                        Some(c) => {
                            owned = c;
                            &owned[..]
                        }
                        None => break,
                    }
                };
                h.update(chunk);
                hashed += 1;
                hashed_bytes += chunk.len() as u64;
                budget -= 1;
                unsaved += 1;
            }
            release = unsaved < HASH_SAVE_EVERY || budget == 0;
            let state = hex::encode(h.save());
            loop {
                let mut next = marker.clone();
                if next.lease != Some(lease) {
                    return Ok(budget);
                }
                (next.hashed, next.hashed_bytes) = (hashed, hashed_bytes);
                next.hash_state = Some(state.clone());
                if release {
                    next.lease = None;
                }
                let encoded = serde_json::to_vec(&next).expect("marker serialises");
                if self.kv.compare_and_swap(&key, Some(&raw), &encoded)? {
                    (marker, raw) = (next, encoded);
                    break;
                }
                match self.pending(id)? {
                    Some((p, r)) => (marker, raw) = (p, r),
                    None => return Ok(budget),
                }
            }
        }
        Ok(budget)
    }

    /// Completes the upload: chunks `0..n` must all be present and full but
    /// the last. Hashes the content in order and makes the blob visible.
    pub fn finish(&self, id: &str, content_type: &str, now: u64) -> Result<Descriptor> {
        keys::check_id("blob id", id)?;
        let Some((pending, _)) = self.pending(id)? else {
            return match self.stat(id) {
                Ok(d) => Ok(d), // finishing twice answers the same
                Err(e) if e.code == ErrorCode::NotFound => Err(StoreError::not_found(format!(
                    "no upload `{id}` in progress"
                ))),
                Err(e) => Err(e),
            };
        };
        let Some(last) = pending.max_chunk else {
            return Err(StoreError::invalid(format!("blob `{id}` has no chunks")));
        };
        if !pending.frontier_open() && pending.hashed <= last {
            return Err(StoreError::invalid(format!(
                "blob `{id}`: chunk {} is short, only the last may be",
                pending.hashed - 1
            )));
        }
        let mut hasher = pending.hasher(id)?;
        let mut size = pending.hashed_bytes;
        for n in pending.hashed..=last {
            let chunk = self
                .kv
                .get(&keys::blob_chunk(id, n))?
                .ok_or_else(|| StoreError::invalid(format!("blob `{id}`: chunk {n} is missing")))?;
            if n < last && chunk.len() as u64 != pending.chunk_size {
                return Err(StoreError::invalid(format!(
                    "blob `{id}`: chunk {n} has {} bytes, only the last may be short",
                    chunk.len()
                )));
            }
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        let desc = Descriptor {
            id: id.to_string(),
            size,
            chunk_size: pending.chunk_size,
            chunks: last + 1,
            digests: hasher.finish(),
            content_type: content_type.to_string(),
            created_at: now,
        };
        let raw = serde_json::to_vec(&desc).expect("descriptor serialises");
        if !self.kv.compare_and_swap(&keys::blob_meta(id), None, &raw)? {
            // A concurrent finish won; its descriptor describes the same chunks.
            return self.stat(id);
        }
        self.kv.delete(&keys::blob_pending(id))?;
        Index::new(self.kv, PENDING_INDEX)?.remove(id)?;
        Ok(desc)
    }

    /// Stores a whole buffer as a blob (small blobs, tests).
    pub fn put(&self, id: &str, bytes: &[u8], content_type: &str, now: u64) -> Result<Descriptor> {
        self.begin(id, now)?;
        for (n, chunk) in bytes.chunks(self.config.chunk_size as usize).enumerate() {
            self.put_chunk(id, n as u64, chunk, now)?;
        }
        self.finish(id, content_type, now)
    }

    /// The descriptor of a complete blob, or `NotFound`.
    pub fn stat(&self, id: &str) -> Result<Descriptor> {
        keys::check_id("blob id", id)?;
        let raw = self
            .kv
            .get(&keys::blob_meta(id))?
            .ok_or_else(|| StoreError::not_found(format!("blob `{id}` not found")))?;
        serde_json::from_slice(&raw).map_err(|e| StoreError::corrupt(format!("blob `{id}`: {e}")))
    }

    /// Bytes `start..end` of a complete blob as a stream of chunk slices;
    /// at most one chunk is in memory at a time.
    pub fn read_range(&self, id: &str, start: u64, end: u64) -> Result<RangeReader<'a, K>> {
        let desc = self.stat(id)?;
        if start > end || end > desc.size {
            return Err(StoreError::invalid(format!(
                "range {start}..{end} is outside blob `{id}` of {} bytes",
                desc.size
            )));
        }
        Ok(RangeReader {
            kv: self.kv,
            desc,
            pos: start,
            end,
        })
    }

    /// Reads a whole blob into memory (small blobs only).
    pub fn read_all(&self, id: &str) -> Result<Vec<u8>> {
        let size = self.stat(id)?.size;
        let mut out = Vec::with_capacity(size as usize);
        for chunk in self.read_range(id, 0, size)? {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// Deletes a blob, complete or not. The descriptor goes first, so readers
    /// stop seeing it before any chunk disappears.
    pub fn delete(&self, id: &str) -> Result<()> {
        keys::check_id("blob id", id)?;
        let chunks = match self.stat(id) {
            Ok(d) => Some(d.chunks),
            Err(e) if e.code == ErrorCode::NotFound => None,
            Err(e) => return Err(e),
        };
        self.kv.delete(&keys::blob_meta(id))?;
        let pending_max = self
            .pending(id)?
            .and_then(|(p, _)| p.max_chunk.map(|m| m + 1));
        let count = chunks.unwrap_or(0).max(pending_max.unwrap_or(0));
        for n in 0..count {
            self.kv.delete(&keys::blob_chunk(id, n))?;
        }
        self.kv.delete(&keys::blob_pending(id))?;
        Index::new(self.kv, PENDING_INDEX)?.remove(id)?;
        Ok(())
    }

    /// Deletes unfinished uploads idle for more than `max_age_secs` (no
    /// chunk written since); returns their ids. Examines at most `budget` pending uploads
    /// per call so it fits in one request.
    pub fn reclaim_stale(&self, now: u64, max_age_secs: u64, budget: usize) -> Result<Vec<String>> {
        let index = Index::new(self.kv, PENDING_INDEX)?;
        let mut reclaimed = Vec::new();
        let mut cursor = None;
        let mut examined = 0;
        loop {
            let page = index.page(cursor, 100)?;
            for id in &page.members {
                examined += 1;
                let stale = match self.pending(id)? {
                    Some((p, _)) => {
                        now.saturating_sub(p.started_at.max(p.touched_at)) > max_age_secs
                    }
                    None => !self.kv.exists(&keys::blob_meta(id))?,
                };
                if stale {
                    self.delete(id)?;
                    reclaimed.push(id.clone());
                }
                if examined >= budget {
                    return Ok(reclaimed);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(reclaimed),
            }
        }
    }
}

/// Writes a stream of arbitrary-sized pieces as a blob, re-chunking to the
/// store's chunk size; holds at most one chunk in memory.
pub struct BlobWriter<'b, 'a, K: Kv + ?Sized> {
    blobs: &'b Blobs<'a, K>,
    id: String,
    buf: Vec<u8>,
    next: u64,
    written: u64,
    limit: u64,
    now: u64,
}

impl<'b, 'a, K: Kv + ?Sized> BlobWriter<'b, 'a, K> {
    /// Begins blob `id`; refuses more than `limit` bytes (`TooLarge`).
    pub fn begin(blobs: &'b Blobs<'a, K>, id: &str, limit: u64, now: u64) -> Result<Self> {
        blobs.begin(id, now)?;
        Ok(BlobWriter {
            blobs,
            id: id.to_string(),
            buf: Vec::with_capacity(blobs.config.chunk_size as usize),
            next: 0,
            written: 0,
            limit: limit.min(blobs.config.max_blob_size),
            now,
        })
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        if self.written + bytes.len() as u64 > self.limit {
            return Err(StoreError::too_large(format!(
                "more than {} bytes",
                self.limit
            )));
        }
        self.written += bytes.len() as u64;
        let chunk = self.blobs.config.chunk_size as usize;
        while !bytes.is_empty() {
            let take = (chunk - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == chunk {
                self.blobs
                    .put_chunk(&self.id, self.next, &self.buf, self.now)?;
                self.next += 1;
                self.buf.clear();
            }
        }
        Ok(())
    }

    /// Completes the blob; `Invalid` when nothing was written.
    pub fn finish(mut self, content_type: &str, now: u64) -> Result<Descriptor> {
        if !self.buf.is_empty() {
            self.blobs
                .put_chunk(&self.id, self.next, &self.buf, self.now)?;
            self.buf.clear();
        }
        if self.written == 0 {
            return Err(StoreError::invalid("empty content"));
        }
        self.blobs.finish(&self.id, content_type, now)
    }

    /// Gives up: removes what was written.
    pub fn abort(self) -> Result<()> {
        self.blobs.delete(&self.id)
    }
}

/// Iterator over the chunk slices of a byte range.
pub struct RangeReader<'a, K: Kv + ?Sized> {
    kv: &'a K,
    desc: Descriptor,
    pos: u64,
    end: u64,
}

impl<K: Kv + ?Sized> RangeReader<'_, K> {
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }
}

impl<K: Kv + ?Sized> Iterator for RangeReader<'_, K> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let n = self.pos / self.desc.chunk_size;
        let offset = (self.pos % self.desc.chunk_size) as usize;
        let chunk = match self.kv.get(&keys::blob_chunk(&self.desc.id, n)) {
            Ok(Some(c)) => c,
            Ok(None) => {
                self.pos = self.end;
                return Some(Err(StoreError::corrupt(format!(
                    "blob `{}`: chunk {n} is missing",
                    self.desc.id
                ))));
            }
            Err(e) => {
                self.pos = self.end;
                return Some(Err(e));
            }
        };
        let take = ((self.end - self.pos) as usize).min(chunk.len().saturating_sub(offset));
        if take == 0 {
            self.pos = self.end;
            return Some(Err(StoreError::corrupt(format!(
                "blob `{}`: chunk {n} is shorter than its descriptor says",
                self.desc.id
            ))));
        }
        self.pos += take as u64;
        let slice = if offset == 0 && take == chunk.len() {
            chunk
        } else {
            chunk[offset..offset + take].to_vec()
        };
        Some(Ok(slice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryKv;
    use proptest::prelude::*;

    fn small() -> BlobConfig {
        BlobConfig {
            chunk_size: 16,
            max_blob_size: 4096,
        }
    }

    #[test]
    fn invisible_until_finished_and_errors_are_specific() {
        let kv = MemoryKv::new();
        let b = Blobs::new(&kv, small());
        assert_eq!(
            b.put_chunk("x", 0, b"a", 0).unwrap_err().code,
            ErrorCode::NotFound
        );
        b.begin("x", 10).unwrap();
        b.begin("x", 11).unwrap(); // resume
        assert_eq!(
            b.put_chunk("x", 1, b"0123456789abcdef", 0).unwrap(),
            ChunkWrite::Stored
        );
        assert_eq!(
            b.stat("x").unwrap_err().code,
            ErrorCode::NotFound,
            "not visible yet"
        );
        assert_eq!(
            b.finish("x", "text/plain", 12).unwrap_err().code,
            ErrorCode::Invalid,
            "chunk 0 missing"
        );
        assert_eq!(
            b.put_chunk("x", 0, b"", 0).unwrap_err().code,
            ErrorCode::Invalid
        );
        assert_eq!(
            b.put_chunk("x", 0, &[0u8; 17], 0).unwrap_err().code,
            ErrorCode::Invalid
        );
        assert_eq!(
            b.put_chunk("x", 256, b"a", 0).unwrap_err().code,
            ErrorCode::TooLarge
        );
        assert_eq!(
            b.put_chunk("x", 0, b"short", 0).unwrap(),
            ChunkWrite::Stored
        );
        assert_eq!(
            b.put_chunk("x", 0, b"short", 0).unwrap(),
            ChunkWrite::AlreadyPresent
        );
        assert_eq!(
            b.put_chunk("x", 0, b"other", 0).unwrap_err().code,
            ErrorCode::Conflict
        );
        // Chunk 0 is short but not last: refused, upload stays resumable.
        assert_eq!(
            b.finish("x", "text/plain", 12).unwrap_err().code,
            ErrorCode::Invalid
        );
        assert!(b.stat("x").is_err());
        let kv2 = MemoryKv::new();
        let b2 = Blobs::new(&kv2, small());
        let d = b2
            .put("y", b"hello world, this is a blob!", "text/plain", 5)
            .unwrap();
        assert_eq!((d.size, d.chunks), (28, 2));
        assert_eq!(
            b2.finish("y", "text/plain", 6).unwrap(),
            d,
            "finishing twice answers the same"
        );
        assert_eq!(
            b2.put_chunk("y", 0, b"x", 0).unwrap_err().code,
            ErrorCode::Conflict
        );
        assert_eq!(
            b2.put_chunk("y", 1, b"blob!", 0).unwrap_err().code,
            ErrorCode::Conflict
        );
        assert_eq!(
            b2.put_chunk("y", 1, b"s is a blob!", 0).unwrap(),
            ChunkWrite::AlreadyPresent,
            "the same chunk after completion is a harmless resend"
        );
        assert_eq!(b2.begin("y", 7).unwrap_err().code, ErrorCode::Conflict);
        let mid: Vec<u8> = b2
            .read_range("y", 5, 20)
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap()
            .concat();
        assert_eq!(mid, b" world, this is");
        assert_eq!(
            b2.read_range("y", 0, 29).err().unwrap().code,
            ErrorCode::Invalid
        );
        assert_eq!(b2.read_range("y", 0, 0).unwrap().count(), 0);
        b2.delete("y").unwrap();
        assert!(
            kv2.keys().iter().all(|k| k.starts_with("idx/")),
            "{:?}",
            kv2.keys()
        );
        assert_eq!(b2.stat("y").unwrap_err().code, ErrorCode::NotFound);
    }

    #[test]
    fn writer_rechunks_any_piece_sizes_and_enforces_its_limit() {
        let kv = MemoryKv::new();
        let b = Blobs::new(&kv, small());
        let data: Vec<u8> = (0..100u8).collect();
        let mut w = BlobWriter::begin(&b, "w", 1000, 0).unwrap();
        for piece in [&data[..7], &data[7..40], &data[40..41], &data[41..]] {
            w.write(piece).unwrap();
        }
        let d = w.finish("x/y", 1).unwrap();
        assert_eq!((d.size, d.chunks), (100, 7));
        assert_eq!(b.read_all("w").unwrap(), data);
        let mut w = BlobWriter::begin(&b, "big", 50, 0).unwrap();
        assert_eq!(w.write(&data).unwrap_err().code, ErrorCode::TooLarge);
        w.abort().unwrap();
        assert_eq!(
            BlobWriter::begin(&b, "e", 5, 0)
                .unwrap()
                .finish("a/b", 0)
                .unwrap_err()
                .code,
            ErrorCode::Invalid
        );
    }

    #[test]
    fn stale_uploads_are_reclaimed_finished_ones_kept() {
        let kv = MemoryKv::new();
        let b = Blobs::new(&kv, small());
        b.begin("old", 100).unwrap();
        b.put_chunk("old", 3, b"abc", 100).unwrap();
        b.begin("fresh", 950).unwrap();
        b.put_chunk("fresh", 0, b"0123456789abcdef", 950).unwrap();
        // Begun long ago but written to recently: idle time is what counts.
        b.begin("slow", 10).unwrap();
        b.put_chunk("slow", 0, b"0123456789abcdef", 900).unwrap();
        b.put("done", b"keep me", "text/plain", 100).unwrap();
        assert_eq!(
            b.reclaim_stale(1000, 600, 100).unwrap(),
            vec!["old".to_string()]
        );
        assert!(
            !kv.keys().iter().any(|k| k.contains("/old/")),
            "{:?}",
            kv.keys()
        );
        assert_eq!(b.read_all("done").unwrap(), b"keep me");
        b.put_chunk("fresh", 1, b"d", 1000).unwrap();
        assert_eq!(b.finish("slow", "x", 1001).unwrap().size, 16);
        assert_eq!(b.finish("fresh", "x", 1001).unwrap().size, 17);
    }

    #[test]
    fn in_order_chunks_are_hashed_on_arrival() {
        let kv = MemoryKv::new();
        let b = Blobs::new(&kv, small());
        let data: Vec<u8> = (0..60u8).collect();
        b.begin("h", 0).unwrap();
        for (n, c) in data.chunks(16).enumerate() {
            b.put_chunk("h", n as u64, c, 1).unwrap();
        }
        // finish must not need the chunks already folded into the state:
        // hide the first one and the digests still come out right.
        let c0 = kv.get(&keys::blob_chunk("h", 0)).unwrap().unwrap();
        kv.delete(&keys::blob_chunk("h", 0)).unwrap();
        let d = b.finish("h", "application/octet-stream", 2).unwrap();
        assert_eq!(d.digests, MultiHasher::digest(&data));
        assert_eq!(d.size, 60);
        kv.set(&keys::blob_chunk("h", 0), &c0).unwrap();
        assert_eq!(b.read_all("h").unwrap(), data);
    }

    #[test]
    fn an_md5_only_upload_resumes_md5_only() {
        let kv = MemoryKv::new();
        let b = Blobs::new(&kv, small());
        let data: Vec<u8> = (0..70u8).collect();
        b.begin_with("m", Hashes::Md5, 0).unwrap();
        b.begin("m", 0).unwrap(); // a resume keeps what the upload began with
        for n in [1usize, 0, 4, 2, 3] {
            b.put_chunk("m", n as u64, &data[n * 16..(n * 16 + 16).min(70)], 1)
                .unwrap();
        }
        let d = b.finish("m", "application/octet-stream", 2).unwrap();
        let full = MultiHasher::digest(&data);
        assert_eq!((d.digests.md5, d.digests.sha256), (full.md5, String::new()));
    }

    #[test]
    fn a_gap_closed_late_is_hashed_ahead_up_to_the_budget() {
        let kv = MemoryKv::new();
        let b = Blobs::new(
            &kv,
            BlobConfig {
                chunk_size: 2,
                max_blob_size: 1024,
            },
        );
        let data: Vec<u8> = (0..=255u8).chain(0..144).collect();
        b.begin("g", 0).unwrap();
        for n in 1..200u64 {
            b.put_chunk("g", n, &data[n as usize * 2..n as usize * 2 + 2], 1)
                .unwrap();
        }
        let (p, _) = b.pending("g").unwrap().unwrap();
        assert_eq!(p.hashed, 0, "nothing to fold before chunk 0");
        b.put_chunk("g", 0, &data[..2], 1).unwrap();
        let (p, _) = b.pending("g").unwrap().unwrap();
        assert_eq!(p.hashed, HASH_BUDGET, "bounded work per write");
        assert_eq!(p.lease, None, "released");
        // The next write, wherever it lands, takes the frontier on.
        b.put_chunk("g", 150, &data[300..302], 2).unwrap();
        let (p, _) = b.pending("g").unwrap().unwrap();
        assert_eq!(p.hashed, 2 * HASH_BUDGET);
        let d = b.finish("g", "application/octet-stream", 2).unwrap();
        assert_eq!(d.digests, MultiHasher::digest(&data));
    }

    /// Counts chunk reads: concurrent writers must not hash the same
    /// chunks over and over.
    struct Counting {
        kv: MemoryKv,
        chunk_gets: std::sync::atomic::AtomicU64,
    }

    impl Kv for Counting {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
            if key.contains("/c/") {
                self.chunk_gets
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            self.kv.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<()> {
            self.kv.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<()> {
            self.kv.delete(key)
        }
        fn exists(&self, key: &str) -> Result<bool> {
            self.kv.exists(key)
        }
        fn compare_and_swap(&self, key: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<bool> {
            self.kv.compare_and_swap(key, expected, new)
        }
        fn increment(&self, key: &str, delta: i64) -> Result<i64> {
            self.kv.increment(key, delta)
        }
    }

    #[test]
    fn concurrent_writers_fold_every_chunk_once_in_order() {
        let kv = Counting {
            kv: MemoryKv::new(),
            chunk_gets: Default::default(),
        };
        let b = Blobs::new(
            &kv,
            BlobConfig {
                chunk_size: 4096,
                max_blob_size: 1 << 20,
            },
        );
        let data: Vec<u8> = (0..48 * 4096 + 100u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let chunks: Vec<&[u8]> = data.chunks(4096).collect();
        b.begin("up", 0).unwrap();
        // Four writers, each with every fourth chunk, the last one first,
        // like a client with four requests in flight.
        std::thread::scope(|s| {
            for w in 0..4usize {
                let (b, chunks) = (&b, &chunks);
                s.spawn(move || {
                    let mine: Vec<usize> = (w..chunks.len()).step_by(4).collect();
                    for &n in mine.iter().rev().take(1).chain(mine.iter()) {
                        b.put_chunk("up", n as u64, chunks[n], 1).unwrap();
                    }
                });
            }
        });
        let (p, _) = b.pending("up").unwrap().unwrap();
        assert_eq!(
            p.hashed,
            chunks.len() as u64,
            "every chunk folded before finish"
        );
        assert_eq!(p.lease, None);
        let reads = kv.chunk_gets.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            reads <= chunks.len() as u64 + 8,
            "{reads} chunk reads for {} chunks (lost races are reread)",
            chunks.len()
        );
        let d = b.finish("up", "application/octet-stream", 2).unwrap();
        assert_eq!(d.digests, MultiHasher::digest(&data));
        assert_eq!(b.read_all("up").unwrap(), data);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_order_with_duplicates_reassembles_exactly(
            data in proptest::collection::vec(any::<u8>(), 1..2000),
            chunk_size in 1u64..64,
            order_seed in proptest::collection::vec(any::<u32>(), 0..400),
            dups in proptest::collection::vec(any::<u16>(), 0..20),
            start in any::<u16>(),
            len in any::<u16>(),
        ) {
            let kv = MemoryKv::new();
            let b = Blobs::new(&kv, BlobConfig { chunk_size, max_blob_size: 1 << 20 });
            b.begin("p", 0).unwrap();
            let chunks: Vec<&[u8]> = data.chunks(chunk_size as usize).collect();
            let mut order: Vec<usize> = (0..chunks.len()).collect();
            // Shuffle deterministically from the generated seed.
            for (i, s) in order_seed.iter().enumerate() {
                let (a, c) = (i % order.len(), *s as usize % order.len());
                order.swap(a, c);
            }
            for &d in &dups {
                order.push(d as usize % chunks.len());
            }
            for n in order {
                b.put_chunk("p", n as u64, chunks[n], 0).unwrap();
            }
            let d = b.finish("p", "application/octet-stream", 1).unwrap();
            prop_assert_eq!(d.size, data.len() as u64);
            prop_assert_eq!(&d.digests, &MultiHasher::digest(&data));
            prop_assert_eq!(b.read_all("p").unwrap(), data.clone());
            let s = (start as u64) % (data.len() as u64 + 1);
            let e = (s + len as u64).min(data.len() as u64);
            let got: Vec<u8> = b.read_range("p", s, e).unwrap().collect::<Result<Vec<_>>>().unwrap().concat();
            prop_assert_eq!(&got[..], &data[s as usize..e as usize]);
        }
    }
}
