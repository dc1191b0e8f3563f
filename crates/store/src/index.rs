//! Explicit index records: named sets of member ids, listed in pages.
//!
//! Spin's key-value interface has no prefix scan, and listing every key is
//! O(store); so every listing a protocol needs (unacknowledged commits, a
//! user's manifests, jobs waiting, uploads in progress) is an index kept
//! here. An index is a sequence of pages of at most [`PAGE_CAPACITY`]
//! members, each page updated by compare-and-swap; a head record counts the
//! pages (a hint that may lag by one, never lead), and a membership record
//! says which page holds a member so removal reads one page.

use crate::backend::Kv;
use crate::error::{Result, StoreError};
use crate::keys;
use crate::record::Records;

pub const PAGE_CAPACITY: usize = 256;
const MAX_ATTEMPTS: usize = 256;

/// One page of a listing, and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub members: Vec<String>,
    /// Pass back to `page` for the next members; `None` at the end.
    pub next: Option<String>,
}

pub struct Index<'a, K: Kv + ?Sized> {
    kv: &'a K,
    name: String,
}

impl<'a, K: Kv + ?Sized> Index<'a, K> {
    pub fn new(kv: &'a K, name: &str) -> Result<Self> {
        keys::check_id("index name", name)?;
        Ok(Index {
            kv,
            name: name.to_string(),
        })
    }

    fn read_page(&self, n: u64) -> Result<Option<(Vec<String>, Vec<u8>)>> {
        match self.kv.get(&keys::index_page(&self.name, n))? {
            None => Ok(None),
            Some(raw) => {
                let members = serde_json::from_slice(&raw).map_err(|e| {
                    StoreError::corrupt(format!("index `{}` page {n}: {e}", self.name))
                })?;
                Ok(Some((members, raw)))
            }
        }
    }

    /// Number of pages, counting one the head has not caught up with.
    fn pages(&self) -> Result<(u64, Option<Vec<u8>>)> {
        let raw = self.kv.get(&keys::index_head(&self.name))?;
        let n = match &raw {
            None => 0,
            Some(v) => keys::decimal(&format!("index `{}` head", self.name), v)?,
        };
        Ok((n, raw))
    }

    fn bump_head(&self, from: u64, raw: Option<&[u8]>) -> Result<()> {
        let next = (from + 1).to_string();
        self.kv
            .compare_and_swap(&keys::index_head(&self.name), raw, next.as_bytes())?;
        Ok(())
    }

    /// Adds `member`; adding a member already present changes nothing.
    pub fn add(&self, member: &str) -> Result<()> {
        keys::check_id("index member", member)?;
        let membership = keys::index_member(&self.name, member);
        if self.kv.exists(&membership)? {
            return Ok(());
        }
        for _ in 0..MAX_ATTEMPTS {
            let (pages, head_raw) = self.pages()?;
            // A page past the head means a writer stopped before bumping it.
            if self.kv.exists(&keys::index_page(&self.name, pages))? {
                self.bump_head(pages, head_raw.as_deref())?;
                continue;
            }
            if pages > 0 {
                let last = pages - 1;
                let Some((mut members, raw)) = self.read_page(last)? else {
                    return Err(StoreError::corrupt(format!(
                        "index `{}`: page {last} is missing",
                        self.name
                    )));
                };
                if members.len() < PAGE_CAPACITY {
                    members.push(member.to_string());
                    let next = serde_json::to_vec(&members).expect("page serialises");
                    if self.kv.compare_and_swap(
                        &keys::index_page(&self.name, last),
                        Some(&raw),
                        &next,
                    )? {
                        return self.kv.set(&membership, last.to_string().as_bytes());
                    }
                    continue;
                }
            }
            let page = serde_json::to_vec(&[member]).expect("page serialises");
            if self
                .kv
                .compare_and_swap(&keys::index_page(&self.name, pages), None, &page)?
            {
                self.bump_head(pages, head_raw.as_deref())?;
                return self.kv.set(&membership, pages.to_string().as_bytes());
            }
        }
        Err(StoreError::conflict(format!(
            "index `{}`: too much contention",
            self.name
        )))
    }

    /// Removes `member`; removing an absent member changes nothing.
    pub fn remove(&self, member: &str) -> Result<()> {
        keys::check_id("index member", member)?;
        let membership = keys::index_member(&self.name, member);
        let Some(raw_page) = self.kv.get(&membership)? else {
            return Ok(());
        };
        let n = keys::decimal(&format!("index `{}` membership", self.name), &raw_page)?;
        for _ in 0..MAX_ATTEMPTS {
            let Some((mut members, raw)) = self.read_page(n)? else {
                break;
            };
            let before = members.len();
            members.retain(|m| m != member);
            if members.len() == before {
                break;
            }
            let next = serde_json::to_vec(&members).expect("page serialises");
            if self
                .kv
                .compare_and_swap(&keys::index_page(&self.name, n), Some(&raw), &next)?
            {
                break;
            }
        }
        self.kv.delete(&membership)
    }

    pub fn contains(&self, member: &str) -> Result<bool> {
        keys::check_id("index member", member)?;
        self.kv.exists(&keys::index_member(&self.name, member))
    }

    /// Up to `limit` members from `cursor` (`None`: the beginning), in the
    /// order they were added. A listing that runs while members are removed
    /// may skip one of those still present; run it again to be sure.
    pub fn page(&self, cursor: Option<String>, limit: usize) -> Result<Page> {
        let (mut page, mut offset) = match &cursor {
            None => (0u64, 0usize),
            Some(c) => parse_cursor(c)?,
        };
        let (pages, _) = self.pages()?;
        let mut members = Vec::new();
        // `pages + 1`: include a page the head has not caught up with.
        while page <= pages && members.len() < limit.max(1) {
            let Some((list, _)) = self.read_page(page)? else {
                break;
            };
            let take = (limit.max(1) - members.len()).min(list.len().saturating_sub(offset));
            members.extend(list.iter().skip(offset).take(take).cloned());
            offset += take;
            if offset >= list.len() {
                page += 1;
                offset = 0;
            }
        }
        let more = self.kv.exists(&keys::index_page(&self.name, page))?;
        Ok(Page {
            members,
            next: more.then(|| format!("{page}.{offset}")),
        })
    }

    /// The next `budget` members after where the previous call with the same
    /// `cursor` name stopped, starting over after the end: sweeps examine a
    /// little per request and still reach every member in turn. The cursor
    /// is a record; losing a race on it only means a page is seen twice.
    pub fn rotate(&self, cursor: &str, budget: usize) -> Result<Vec<String>> {
        let cursors = Records::new(self.kv, "cursor");
        let saved = cursors.try_get::<Option<String>>(cursor)?;
        let start = saved.as_ref().and_then(|v| v.value.clone());
        let page = match self.page(start, budget) {
            Ok(p) => p,
            // The index changed under an old cursor: start over.
            Err(e) if e.code == crate::ErrorCode::Invalid => self.page(None, budget)?,
            Err(e) => return Err(e),
        };
        let _ = match &saved {
            Some(v) => cursors.update(cursor, v, &page.next).map(|_| ()),
            None => cursors.create(cursor, &page.next).map(|_| ()),
        };
        Ok(page.members)
    }

    /// Every member (tests and small indexes only).
    pub fn all(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let p = self.page(cursor, 1000)?;
            out.extend(p.members);
            match p.next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}

fn parse_cursor(c: &str) -> Result<(u64, usize)> {
    c.split_once('.')
        .and_then(|(p, o)| Some((p.parse().ok()?, o.parse().ok()?)))
        .ok_or_else(|| StoreError::invalid(format!("`{c}` is not an index cursor")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryKv;
    use std::sync::Arc;

    #[test]
    fn add_remove_and_page_through() {
        let kv = MemoryKv::new();
        let idx = Index::new(&kv, "things").unwrap();
        assert_eq!(
            idx.page(None, 10).unwrap(),
            Page {
                members: vec![],
                next: None
            }
        );
        for i in 0..600 {
            idx.add(&format!("m{i}")).unwrap();
        }
        idx.add("m5").unwrap(); // idempotent
        assert_eq!(idx.all().unwrap().len(), 600);
        let p = idx.page(None, 300).unwrap();
        assert_eq!(p.members.len(), 300);
        assert_eq!(p.members[0], "m0");
        let p2 = idx.page(p.next.clone(), 300).unwrap();
        assert_eq!(p2.members[0], "m300");
        assert_eq!(p2.members.len(), 300);
        assert_eq!(p2.next, None);
        idx.remove("m0").unwrap();
        idx.remove("m0").unwrap();
        idx.remove("m599").unwrap();
        assert!(!idx.contains("m0").unwrap());
        let all = idx.all().unwrap();
        assert_eq!(all.len(), 598);
        assert_eq!(all[0], "m1");
        assert!(idx.page(Some("zz".into()), 1).is_err());
    }

    #[test]
    fn concurrent_adds_lose_nothing() {
        let kv = Arc::new(MemoryKv::new());
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    let idx = Index::new(&*kv, "race").unwrap();
                    for i in 0..150 {
                        idx.add(&format!("t{t}-{i}")).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut all = Index::new(&*kv, "race").unwrap().all().unwrap();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 900);
    }
}
