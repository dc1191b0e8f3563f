//! Randomness and digests: random tokens and ids from the platform's
//! CSPRNG, and digests of request parts. Comparing and indexing secrets is
//! `assetgate-identity`'s (`token`).

use sha2::Digest;

/// `bytes` random bytes from the platform's CSPRNG (WASI `random` inside a
/// component), hex-encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the platform provides randomness");
    hex::encode(buf)
}

/// True once in `n` calls on average (housekeeping that need not run on
/// every request).
pub fn one_in(n: u32) -> bool {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("the platform provides randomness");
    u32::from_le_bytes(b) % n.max(1) == 0
}

/// A random UUID (version 4), as the reference's ids are.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the platform provides randomness");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Hex SHA-256 of arbitrary parts, separated unambiguously (ids derived
/// from request contents, e.g. for idempotent enqueueing).
pub fn digest_parts(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_n_is_about_one_in_n() {
        assert!((0..100).all(|_| one_in(1)));
        let hits = (0..32_000).filter(|_| one_in(16)).count();
        // Expected 2000; the bounds are > 8 standard deviations wide.
        assert!((1650..2350).contains(&hits), "{hits}");
    }

    #[test]
    fn tokens_are_long_and_random() {
        let a = random_hex(24);
        assert_eq!(a.len(), 48);
        assert_ne!(a, random_hex(24));
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(digest_parts(&["ab", "c"]), digest_parts(&["a", "bc"]));
    }
}
