//! What EpiFiles keeps: manifests (a deposit), manifest files (one stored
//! asset each) and upload processes (a chunked upload under way). All are
//! versioned records of the shared store; numeric ids come from store
//! sequences, as the reference's `id_data` are numbers.

use assetgate_store::{Index, Kv, Records, Result};
use serde::{Deserialize, Serialize};

pub const MANIFEST: &str = "epifiles-manifest";
pub const MANIFEST_FILE: &str = "epifiles-file";
pub const PROCESS: &str = "epifiles-process";
/// Every process, for the expiry sweep.
pub const PROCESSES_INDEX: &str = "epifiles-processes";

/// The non-archived manifests of a repository.
pub fn open_manifests<'a, K: Kv + ?Sized>(kv: &'a K, repository: &str) -> Result<Index<'a, K>> {
    Index::new(kv, &format!("epifiles-open.{repository}"))
}

pub fn manifests<K: Kv + ?Sized>(kv: &K) -> Records<'_, K> {
    Records::new(kv, MANIFEST)
}
pub fn manifest_files<K: Kv + ?Sized>(kv: &K) -> Records<'_, K> {
    Records::new(kv, MANIFEST_FILE)
}
pub fn processes<K: Kv + ?Sized>(kv: &K) -> Records<'_, K> {
    Records::new(kv, PROCESS)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub repository: String,
    /// The uploader who deposited it.
    pub owner: String,
    pub comment: String,
    pub created_at: u64,
    pub files: Vec<String>,
    /// 1 = partially downloaded by managers, 2 = every file downloaded.
    pub status: u8,
    pub archived: bool,
    pub archived_at: Option<u64>,
    pub archived_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub id: String,
    pub manifest: String,
    pub repository: String,
    pub uploader: String,
    /// The asset (and blob) id in the shared store.
    pub asset: String,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub md5: String,
    pub created_at: u64,
    /// Unix seconds; `purge_date` is its day.
    pub purge_at: u64,
    pub downloaded_by_mg: bool,
}

impl ManifestFile {
    /// Its chunks as downloads serve them (`total_chunks` in every answer
    /// that shows the file, whatever chunks it was uploaded in).
    pub fn download_chunks(&self, chunk_size: u64) -> u64 {
        self.size.div_ceil(chunk_size.max(1)).max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ProcessState {
    Open,
    /// The request that received the last chunk is creating the records;
    /// after a while, another request may take over.
    Completing {
        since: u64,
    },
    Done,
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub id: String,
    pub user: String,
    pub repository: String,
    pub filename: String,
    pub comment: String,
    pub content_type: String,
    pub total_chunks: u64,
    pub chunk_size: u64,
    /// Bytes per stored blob chunk (absent: `chunk_size`, as uploads begun
    /// before pieces existed were stored).
    #[serde(default)]
    pub piece_size: Option<u64>,
    /// Whole-file MD5 the client announced, checked at completion.
    pub file_hash: Option<String>,
    /// Ids reserved when the upload began, so completion is idempotent.
    pub manifest: String,
    pub new_manifest: bool,
    pub manifest_file: String,
    pub asset: String,
    pub started_at: u64,
    pub touched_at: u64,
    pub received: Ranges,
    /// The latest chunk stored and its MD5, to recognise a resend when the
    /// client gives no `chunk_index`.
    pub last: Option<(u64, String)>,
    #[serde(flatten)]
    pub state: ProcessState,
}

impl Process {
    /// Bytes per stored blob chunk.
    pub fn piece_size(&self) -> u64 {
        self.piece_size.unwrap_or(self.chunk_size)
    }

    /// Stored pieces per upload chunk.
    pub fn pieces_per_chunk(&self) -> u64 {
        (self.chunk_size / self.piece_size()).max(1)
    }
}

/// How upload chunks of `chunk` bytes are stored: in pieces of the store's
/// chunk size when they are a multiple of it, else whole. Spin's key-value
/// `get` has no range, so a 1 MiB download chunk read from an 8 MiB stored
/// value costs 8 MiB (docs/benchmarks.md, P3).
pub fn piece_size_for(chunk: u64, store_chunk: u64) -> u64 {
    if store_chunk > 0 && chunk > store_chunk && chunk.is_multiple_of(store_chunk) {
        store_chunk
    } else {
        chunk
    }
}

/// A set of chunk indexes as sorted, disjoint half-open ranges: one range
/// for an in-order upload, one per gap otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    pub fn contains(&self, n: u64) -> bool {
        self.0.iter().any(|&(a, b)| a <= n && n < b)
    }

    /// Adds `n`; `false` if it was there.
    pub fn insert(&mut self, n: u64) -> bool {
        if self.contains(n) {
            return false;
        }
        let i = self.0.partition_point(|&(_, b)| b < n);
        let joins_left = i < self.0.len() && self.0[i].1 == n;
        let right = if joins_left { i + 1 } else { i };
        let joins_right = right < self.0.len() && self.0[right].0 == n + 1;
        match (joins_left, joins_right) {
            (true, true) => {
                self.0[i].1 = self.0[right].1;
                self.0.remove(right);
            }
            (true, false) => self.0[i].1 = n + 1,
            (false, true) => self.0[right].0 = n,
            (false, false) => self.0.insert(i, (n, n + 1)),
        }
        true
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|(a, b)| b - a).sum()
    }

    /// The lowest index not in the set.
    pub fn first_missing(&self) -> u64 {
        match self.0.first() {
            Some(&(0, b)) => b,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn ranges_behave_like_a_set(ops in proptest::collection::vec(0u64..40, 0..80)) {
            let mut r = Ranges::default();
            let mut s = BTreeSet::new();
            for n in ops {
                prop_assert_eq!(r.insert(n), s.insert(n));
                prop_assert_eq!(r.count(), s.len() as u64);
                prop_assert_eq!(r.first_missing(), (0..).find(|k| !s.contains(k)).unwrap());
                for w in r.0.windows(2) {
                    prop_assert!(w[0].1 < w[1].0, "disjoint, non-adjacent, sorted: {:?}", r.0);
                }
            }
            for n in 0..40 {
                prop_assert_eq!(r.contains(n), s.contains(&n));
            }
        }
    }
}
