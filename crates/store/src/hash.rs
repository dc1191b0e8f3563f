//! MD5 and SHA-256 computed in one streaming pass, with a state that can be
//! saved between requests: chunked protocols hash each chunk as it arrives
//! instead of re-reading the whole blob at the end. MD5 is what EpiFiles
//! and the chunk checks speak, SHA-256 what the catalog and the Phraseanet
//! `hash` carry; SHA-1, which no protocol stores, is computed only when
//! asked ([`sha1_hex`]). An upload that only needs MD5 on the way in (a
//! chunked EpiFiles upload, whose chunks arrive in parallel and whose
//! frontier is sequential) hashes MD5 only ([`MultiHasher::md5_only`]):
//! SHA-256 in wasm costs about 5 ms per MiB, more than the rest of a chunk's
//! work. Its SHA-256 is computed on first use ([`sha256_hex`]).

use md5::Digest;
use md5::digest::common::hazmat::{SerializableState, SerializedState};
use serde::{Deserialize, Serialize};

/// Hex digests of a whole blob. `sha256` is empty when the upload hashed
/// MD5 only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    pub md5: String,
    pub sha256: String,
}

#[derive(Clone)]
pub struct MultiHasher {
    md5: md5::Md5,
    sha256: Option<sha2::Sha256>,
}

impl Default for MultiHasher {
    fn default() -> Self {
        MultiHasher {
            md5: md5::Md5::default(),
            sha256: Some(sha2::Sha256::default()),
        }
    }
}

impl MultiHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn md5_only() -> Self {
        MultiHasher {
            md5: md5::Md5::default(),
            sha256: None,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        if let Some(h) = &mut self.sha256 {
            h.update(bytes);
        }
    }

    pub fn finish(self) -> Digests {
        Digests {
            md5: hex::encode(self.md5.finalize()),
            sha256: self
                .sha256
                .map(|h| hex::encode(h.finalize()))
                .unwrap_or_default(),
        }
    }

    /// The state so far, to resume with [`MultiHasher::restore`].
    pub fn save(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(self.md5.serialize().as_slice());
        if let Some(h) = &self.sha256 {
            out.extend_from_slice(h.serialize().as_slice());
        }
        out
    }

    /// A hasher resumed from [`MultiHasher::save`]; `None` if `state` is
    /// not one (wrong length or impossible buffer position). A state saved
    /// before SHA-1 was dropped (MD5, SHA-1, SHA-256) still resumes, so an
    /// upload under way across an upgrade goes on.
    pub fn restore(state: &[u8]) -> Option<MultiHasher> {
        fn take<T: SerializableState>(rest: &mut &[u8]) -> Option<T> {
            let n = SerializedState::<T>::default().len();
            if rest.len() < n {
                return None;
            }
            let (head, tail) = rest.split_at(n);
            *rest = tail;
            T::deserialize(&SerializedState::<T>::try_from(head).ok()?).ok()
        }
        let legacy_sha1 = SerializedState::<sha1::Sha1>::default().len();
        let md5_len = SerializedState::<md5::Md5>::default().len();
        let current = md5_len + SerializedState::<sha2::Sha256>::default().len();
        let mut rest = state;
        let md5 = take(&mut rest)?;
        if state.len() == current + legacy_sha1 {
            take::<sha1::Sha1>(&mut rest)?;
        }
        let sha256 = if state.len() == md5_len {
            None
        } else {
            Some(take(&mut rest)?)
        };
        let h = MultiHasher { md5, sha256 };
        rest.is_empty().then_some(h)
    }

    pub fn digest(bytes: &[u8]) -> Digests {
        let mut h = Self::new();
        h.update(bytes);
        h.finish()
    }
}

/// Hex SHA-1 of a stream, for the rare caller that is given one to check
/// (a Phraseanet `hash` of 40 digits).
pub fn sha1_hex(r: impl std::io::Read) -> std::io::Result<String> {
    stream_hex::<sha1::Sha1>(r)
}

/// Hex SHA-256 of a stream: the digest of a blob uploaded with
/// [`MultiHasher::md5_only`], when a protocol first asks for it.
pub fn sha256_hex(r: impl std::io::Read) -> std::io::Result<String> {
    stream_hex::<sha2::Sha256>(r)
}

fn stream_hex<D: Digest>(mut r: impl std::io::Read) -> std::io::Result<String> {
    let mut h = D::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// Hex MD5 of one buffer (per-chunk checks of the chunked protocols).
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(md5::Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors() {
        let d = MultiHasher::digest(b"abc");
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            sha1_hex(&b"abc"[..]).unwrap(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    proptest! {
        #[test]
        fn streaming_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..4096), cuts in proptest::collection::vec(0usize..4096, 0..8)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            let mut h = MultiHasher::new();
            let mut last = 0;
            for c in cuts {
                h.update(&data[last..c]);
                last = c;
            }
            h.update(&data[last..]);
            prop_assert_eq!(h.finish(), MultiHasher::digest(&data));
        }

        #[test]
        fn saved_state_resumes(data in proptest::collection::vec(any::<u8>(), 0..1024), cut in 0usize..1024) {
            let cut = cut.min(data.len());
            let mut h = MultiHasher::new();
            h.update(&data[..cut]);
            let mut resumed = MultiHasher::restore(&h.save()).expect("state round-trips");
            resumed.update(&data[cut..]);
            prop_assert_eq!(resumed.finish(), MultiHasher::digest(&data));
        }
    }

    /// A state saved with SHA-1 between MD5 and SHA-256 (before SHA-1 was
    /// dropped) resumes to the same digests.
    #[test]
    fn a_legacy_state_with_sha1_resumes() {
        let (head, tail) = (b"the first part, ", b"and the rest");
        let mut md5 = md5::Md5::new();
        let mut sha1 = sha1::Sha1::new();
        let mut sha256 = sha2::Sha256::new();
        md5.update(head);
        sha1.update(head);
        sha256.update(head);
        let legacy = [
            md5.serialize().as_slice(),
            sha1.serialize().as_slice(),
            sha256.serialize().as_slice(),
        ]
        .concat();
        let mut h = MultiHasher::restore(&legacy).expect("a legacy state resumes");
        h.update(tail);
        assert_eq!(h.finish(), MultiHasher::digest(&[&head[..], tail].concat()));
    }

    #[test]
    fn md5_only_resumes_as_md5_only_and_sha256_comes_later() {
        let data = b"a file uploaded in parallel chunks";
        let mut h = MultiHasher::md5_only();
        h.update(&data[..9]);
        let mut h = MultiHasher::restore(&h.save()).expect("an MD5-only state resumes");
        h.update(&data[9..]);
        let d = h.finish();
        let full = MultiHasher::digest(data);
        assert_eq!((d.md5.as_str(), d.sha256.as_str()), (full.md5.as_str(), ""));
        assert_eq!(sha256_hex(&data[..]).unwrap(), full.sha256);
    }

    #[test]
    fn garbage_state_is_refused() {
        let state = MultiHasher::new().save();
        assert!(MultiHasher::restore(&state[..state.len() - 1]).is_none());
        assert!(MultiHasher::restore(&[state.clone(), vec![0]].concat()).is_none());
        assert!(MultiHasher::restore(b"").is_none());
    }
}
