//! Credentials: argon2id password hashes, random bearer secrets stored only as their sha256, and
//! sign-in throttling per account and per client address.

use std::net::IpAddr;
use std::num::NonZeroU32;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

/// Prefix of API tokens, so they are recognisable in secret scanners and logs.
pub const API_TOKEN_PREFIX: &str = "dbt_";
pub const SESSION_COOKIE: &str = "deskbridge_session";

pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random source is available");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 accepts any password up to the validated length")
        .to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A fixed hash to verify against when the account does not exist, so timing does not tell
/// whether an e-mail is registered.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("deskbridge-no-such-account"))
}

/// A new random secret: 32 bytes, hex.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    format!("{prefix}{}", hex::encode(bytes))
}

pub fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time comparison for shared secrets (setup token, webhook secret).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Sign-in attempts allowed per minute, per account and per client address.
pub struct LoginThrottle {
    by_account: DefaultKeyedRateLimiter<String>,
    by_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginThrottle {
    pub fn new(per_account: u32, per_address: u32) -> LoginThrottle {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        LoginThrottle {
            by_account: RateLimiter::keyed(quota(per_account)),
            by_address: RateLimiter::keyed(quota(per_address)),
        }
    }

    /// Counts an attempt; `Err(seconds)` says how long to wait when either limit is reached.
    pub fn attempt(&self, account: &str, address: Option<IpAddr>) -> Result<(), u64> {
        let clock = governor::clock::DefaultClock::default();
        let wait = |not_until: governor::NotUntil<_>| {
            use governor::clock::Clock;
            not_until.wait_time_from(clock.now()).as_secs().max(1)
        };
        if let Some(address) = address {
            self.by_address.check_key(&address).map_err(wait)?;
        }
        self.by_account
            .check_key(&account.to_owned())
            .map_err(wait)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_hashes_are_argon2id() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn throttle_limits_each_account_and_address() {
        let t = LoginThrottle::new(2, 3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(t.attempt("a", Some(ip)).is_ok());
        assert!(t.attempt("a", Some(ip)).is_ok());
        assert!(
            t.attempt("a", Some(ip)).is_err(),
            "third try on one account"
        );
        assert!(
            t.attempt("b", Some(ip)).is_err(),
            "fourth try from one address"
        );
        assert!(t.attempt("b", None).is_ok());
    }

    #[test]
    fn secrets_compare_in_constant_time_and_hash_stably() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "ab"));
        assert_eq!(secret_hash("x"), secret_hash("x"));
        assert!(new_secret("dbt_").starts_with("dbt_"));
        assert_ne!(new_secret(""), new_secret(""));
    }
}
