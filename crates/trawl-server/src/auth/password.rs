//! Passwords: Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, 1 lane — OWASP's
//! recommendation) stored as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`), with a
//! 16-byte random salt per password.
//!
//! Hashing takes tens of milliseconds and 19 MiB by design: callers in the server run it on a
//! blocking thread, and at most [`CONCURRENT`] at a time, so that a burst of logins can neither
//! stall the async runtime nor take the machine's memory.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Hashes computed at once by the server; further logins wait their turn.
pub(crate) const CONCURRENT: usize = 2;
/// Shortest password accepted, in characters.
pub const MIN_LEN: usize = 8;
/// Longest password accepted, in bytes (hashing cost grows with the length only a little, but
/// a megabyte of "password" is not one).
pub const MAX_LEN: usize = 1024;

/// What is wrong with `password` as a new password, if anything.
pub fn check(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LEN {
        return Err(format!(
            "password: at least {MIN_LEN} characters are needed"
        ));
    }
    if password.len() > MAX_LEN {
        return Err(format!("password: at most {MAX_LEN} bytes"));
    }
    Ok(())
}

/// The PHC string of `password` with a fresh salt.
pub fn hash(password: &str) -> std::io::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Whether `password` is the one `phc` was made from. The comparison of the hashes is in
/// constant time (the `password-hash` crate's `Output` equality); a malformed `phc` matches
/// nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash of no one's password, verified against when the user does not exist so that the
/// answer takes as long as for a wrong password (and does not tell which it was).
pub(crate) fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("no one's password, only for timing").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_phc_strings_that_verify_only_their_password() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(!a.contains("correct horse"));
        assert!(verify("correct horse", &a));
        assert!(verify("correct horse", &b));
        assert!(!verify("correct horsE", &a));
        assert!(!verify("correct horse", "not a phc string"));
        assert!(!verify("", decoy()));
    }

    #[test]
    fn short_and_huge_passwords_are_refused_naming_the_field() {
        assert!(check("1234567").unwrap_err().starts_with("password:"));
        assert!(check("12345678").is_ok());
        assert!(check("éééééééé").is_ok(), "characters, not bytes");
        assert!(check(&"x".repeat(MAX_LEN + 1)).is_err());
    }
}
