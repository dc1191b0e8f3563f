//! Append-only event journals with strictly increasing, gap-free positions.
//!
//! An append claims the slot after the last one with a set-if-absent
//! (compare-and-swap against "absent"), so two writers can never take the
//! same position, and a slot is only ever claimed once the one before it is
//! filled: positions are contiguous by construction. The head key is a hint
//! that saves writers and readers a walk from 0; it may lag, never lead.

use crate::backend::Kv;
use crate::error::{Result, StoreError};
use crate::keys;

/// How many times an append retries after losing a race before giving up.
const MAX_APPEND_ATTEMPTS: usize = 1000;

/// A position in a journal. Opaque to callers: compare and pass back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(u64);

impl Position {
    /// Before the first event.
    pub const START: Position = Position(0);

    pub fn token(self) -> String {
        self.0.to_string()
    }

    /// Parses a token made by [`Position::token`].
    pub fn parse(token: &str) -> Result<Position> {
        token
            .parse::<u64>()
            .map(Position)
            .map_err(|_| StoreError::invalid(format!("`{token}` is not a journal position")))
    }
}

/// One event read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub position: Position,
    pub payload: Vec<u8>,
}

pub struct Journal<'a, K: Kv + ?Sized> {
    kv: &'a K,
    name: String,
}

impl<'a, K: Kv + ?Sized> Journal<'a, K> {
    /// `name` identifies the journal (e.g. one per consumer).
    pub fn new(kv: &'a K, name: &str) -> Result<Self> {
        keys::check_id("journal name", name)?;
        Ok(Journal {
            kv,
            name: name.to_string(),
        })
    }

    fn head_hint(&self) -> Result<u64> {
        match self.kv.get(&keys::journal_head(&self.name))? {
            None => Ok(0),
            Some(v) => keys::decimal(&format!("journal `{}` head", self.name), &v),
        }
    }

    /// Moves the head hint forward to `pos` unless it is already there.
    fn advance_head(&self, pos: u64) -> Result<()> {
        let key = keys::journal_head(&self.name);
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let current = self.kv.get(&key)?;
            let n = match &current {
                None => 0,
                Some(v) => keys::decimal(&format!("journal `{}` head", self.name), v)?,
            };
            if n >= pos {
                return Ok(());
            }
            if self
                .kv
                .compare_and_swap(&key, current.as_deref(), pos.to_string().as_bytes())?
            {
                return Ok(());
            }
        }
        Ok(()) // only a hint: others will move it on
    }

    /// Appends `payload`; returns its position, greater than every
    /// position appended before it returned.
    pub fn append(&self, payload: &[u8]) -> Result<Position> {
        let mut pos = self.head_hint()? + 1;
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let key = keys::journal_event(&self.name, pos);
            if self.kv.compare_and_swap(&key, None, payload)? {
                self.advance_head(pos)?;
                return Ok(Position(pos));
            }
            // Lost the slot: skip ahead to what others have written since.
            pos = (pos + 1).max(self.head_hint()? + 1);
        }
        Err(StoreError::conflict(format!(
            "journal `{}`: too much contention to append",
            self.name
        )))
    }

    /// Up to `limit` events strictly after `after`, in order. An empty
    /// result means the reader is caught up.
    pub fn read_after(&self, after: Position, limit: usize) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut pos = after.0 + 1;
        // Batch the reads: up to `limit` keys at a time, stopping at the first
        // absent slot (slots are contiguous).
        while out.len() < limit {
            let want = (limit - out.len()).min(100);
            let batch: Vec<String> = (0..want as u64)
                .map(|i| keys::journal_event(&self.name, pos + i))
                .collect();
            let values = self.kv.get_many(&batch)?;
            for value in values {
                match value {
                    Some(payload) => {
                        out.push(Entry {
                            position: Position(pos),
                            payload,
                        });
                        pos += 1;
                    }
                    None => return Ok(out),
                }
            }
        }
        Ok(out)
    }

    /// The position of the last event (START when empty).
    pub fn last(&self) -> Result<Position> {
        let mut pos = self.head_hint()?;
        while self.kv.exists(&keys::journal_event(&self.name, pos + 1))? {
            pos += 1;
        }
        Ok(Position(pos))
    }

    /// Deletes every event and the head (for a journal whose consumer is
    /// gone). Nothing may append to it meanwhile.
    pub fn remove(&self) -> Result<()> {
        let last = self.last()?;
        for pos in 1..=last.0 {
            self.kv.delete(&keys::journal_event(&self.name, pos))?;
        }
        self.kv.delete(&keys::journal_head(&self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryKv;
    use proptest::prelude::*;
    use std::sync::Arc;

    #[test]
    fn append_and_read_in_pages() {
        let kv = MemoryKv::new();
        let j = Journal::new(&kv, "events").unwrap();
        assert!(j.read_after(Position::START, 10).unwrap().is_empty());
        let positions: Vec<Position> = (0..25)
            .map(|i| j.append(format!("e{i}").as_bytes()).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        let page1 = j.read_after(Position::START, 10).unwrap();
        assert_eq!(page1.len(), 10);
        assert_eq!(page1[0].payload, b"e0");
        let page3 = j
            .read_after(Position::parse(&page1[9].position.token()).unwrap(), 100)
            .unwrap();
        assert_eq!(page3.len(), 15);
        assert_eq!(page3.last().unwrap().payload, b"e24");
        assert_eq!(j.last().unwrap(), positions[24]);
        assert!(j.read_after(positions[24], 10).unwrap().is_empty());
        assert!(Position::parse("x").is_err());
        j.remove().unwrap();
        assert!(j.read_after(Position::START, 10).unwrap().is_empty());
        assert_eq!(j.last().unwrap(), Position::START);
    }

    #[test]
    fn a_lagging_head_hint_never_loses_events() {
        let kv = MemoryKv::new();
        let j = Journal::new(&kv, "j").unwrap();
        j.append(b"1").unwrap();
        j.append(b"2").unwrap();
        // Simulate a writer that crashed before moving the hint.
        kv.set(&keys::journal_head("j"), b"0").unwrap();
        let p = j.append(b"3").unwrap();
        assert_eq!(p.token(), "3");
        let all: Vec<Vec<u8>> = j
            .read_after(Position::START, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.payload)
            .collect();
        assert_eq!(all, vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn concurrent_appends_are_gap_free_and_ordered(writers in 2usize..6, per_writer in 1usize..40) {
            let kv = Arc::new(MemoryKv::new());
            let handles: Vec<_> = (0..writers).map(|w| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    let j = Journal::new(&*kv, "race").unwrap();
                    (0..per_writer).map(|i| {
                        let p = j.append(format!("{w}:{i}").as_bytes()).unwrap();
                        (p, w, i)
                    }).collect::<Vec<_>>()
                })
            }).collect();
            let mut appended: Vec<(Position, usize, usize)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
            appended.sort();
            let j = Journal::new(&*kv, "race").unwrap();
            let read = j.read_after(Position::START, usize::MAX).unwrap();
            prop_assert_eq!(read.len(), writers * per_writer);
            for (k, e) in read.iter().enumerate() {
                prop_assert_eq!(e.position.token(), (k + 1).to_string());
                prop_assert_eq!(e.position, appended[k].0);
                let expected = format!("{}:{}", appended[k].1, appended[k].2);
                prop_assert_eq!(&e.payload, expected.as_bytes());
            }
            // Each writer's own events keep their order.
            for w in 0..writers {
                let mine: Vec<usize> = appended.iter().filter(|a| a.1 == w).map(|a| a.2).collect();
                prop_assert_eq!(mine, (0..per_writer).collect::<Vec<_>>());
            }
        }
    }
}
