//! Every key the store writes, in one place. Nothing else builds keys.
//!
//! | key | value |
//! |---|---|
//! | `blob/{id}/meta` | blob descriptor (JSON); written last, so its presence means "complete" |
//! | `blob/{id}/pending` | upload-in-progress marker (JSON): started-at, last write, chunk size, highest chunk, hash state of the contiguous prefix |
//! | `blob/{id}/c/{n}` | chunk `n` (raw bytes) |
//! | `rec/{kind}/{id}` | versioned record (JSON envelope) |
//! | `idx/{name}/head` | index head (JSON): number of pages |
//! | `idx/{name}/p/{n}` | index page `n` (JSON array of members) |
//! | `idx/{name}/m/{member}` | which page holds `member` |
//! | `jrn/{name}/head` | journal head hint: highest position known written |
//! | `jrn/{name}/e/{pos}` | journal event at `pos` (set-if-absent, never rewritten) |
//! | `ctr/{name}` | sequence counter (ASCII decimal, by `increment`) |
//!
//! Ids and names are validated by [`check_id`] so that no id can reach
//! into another namespace (`/` is not allowed in ids).

use crate::error::{Result, StoreError};

/// Ids and names: 1–200 characters of `[A-Za-z0-9._:-]`.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(format!(
            "{what} `{id}` must be 1-200 characters of A-Z a-z 0-9 . _ : -"
        )))
    }
}

/// Counters and page numbers are stored as ASCII decimal (as Spin's
/// `increment` leaves them); `what` names the value in the error.
pub(crate) fn decimal(what: &str, raw: &[u8]) -> Result<u64> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::corrupt(format!("{what} is not a decimal number")))
}

pub fn blob_meta(id: &str) -> String {
    format!("blob/{id}/meta")
}
pub fn blob_pending(id: &str) -> String {
    format!("blob/{id}/pending")
}
pub fn blob_chunk(id: &str, n: u64) -> String {
    format!("blob/{id}/c/{n}")
}
pub fn record(kind: &str, id: &str) -> String {
    format!("rec/{kind}/{id}")
}
pub fn index_head(name: &str) -> String {
    format!("idx/{name}/head")
}
pub fn index_page(name: &str, n: u64) -> String {
    format!("idx/{name}/p/{n}")
}
pub fn index_member(name: &str, member: &str) -> String {
    format!("idx/{name}/m/{member}")
}
pub fn journal_head(name: &str) -> String {
    format!("jrn/{name}/head")
}
pub fn journal_event(name: &str, pos: u64) -> String {
    format!("jrn/{name}/e/{pos}")
}
pub fn counter(name: &str) -> String {
    format!("ctr/{name}")
}

/// The next number of sequence `name` (1, 2, 3…), never handed out twice.
pub fn next_in_sequence<K: crate::Kv + ?Sized>(kv: &K, name: &str) -> Result<u64> {
    check_id("sequence name", name)?;
    let n = kv.increment(&counter(name), 1)?;
    u64::try_from(n).map_err(|_| StoreError::corrupt(format!("sequence `{name}` is negative")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_their_namespace() {
        for bad in ["", "a/b", "../x", "a b", "é", &"x".repeat(201)] {
            assert!(check_id("id", bad).is_err(), "{bad}");
        }
        for good in ["abc", "A-1_2.3:4", &"x".repeat(200)] {
            assert!(check_id("id", good).is_ok(), "{good}");
        }
    }

    #[test]
    fn sequences_count_from_one_independently() {
        let kv = crate::MemoryKv::new();
        assert_eq!(next_in_sequence(&kv, "a").unwrap(), 1);
        assert_eq!(next_in_sequence(&kv, "a").unwrap(), 2);
        assert_eq!(next_in_sequence(&kv, "b").unwrap(), 1);
        assert!(next_in_sequence(&kv, "a/b").is_err());
    }
}
