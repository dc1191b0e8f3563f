//! Secrets clients present (API keys, commit tokens, client tokens,
//! tickets): compared in constant time, indexed by a hash so a store dump
//! does not reveal them.

use sha2::Digest;

/// Equality whose time depends only on the lengths, not on where the
/// inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hex SHA-256 of a secret, for indexing records by token.
pub fn lookup_key(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_compared_exactly_and_indexed_by_hash() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_eq!(lookup_key("t").len(), 64);
        assert!(!lookup_key("secret").contains("secret"));
        assert_ne!(lookup_key("a"), lookup_key("b"));
    }
}
