//! Secrets handed out by the server (admin tokens, enrolment tokens, device credentials) and the
//! only form in which the catalogue keeps them: a SHA-256 hash.
//!
//! A secret is 32 random bytes from the operating system, written as 64 lowercase hex digits.
//! The hash is not salted: the secrets are random and long, so a table of precomputed hashes is
//! useless, and an unsalted hash lets the catalogue find a credential with one indexed lookup.

use sha2::{Digest, Sha256};

/// A fresh secret: 32 random bytes as hex.
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex(&bytes))
}

/// What the catalogue stores of `secret`: SHA-256, as hex.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_64_hex_digits_and_differ() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
