//! Credentials: argon2id password hashes, random bearer secrets stored only as their sha256, and
//! sign-in throttling per account and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, SaltString};
use sha2::{Digest, Sha256};

/// Prefix of API tokens, so they are recognisable in secret scanners and logs.
pub const API_TOKEN_PREFIX: &str = "dbt_";
pub const SESSION_COOKIE: &str = "deskbridge_session";

/// At most this many hashes run at once, each on a memory buffer that is kept and reused. argon2
/// needs 19 MiB per hash; allocating it per sign-in leaves the freed blocks in the allocator's
/// per-thread arenas, and the process grows by that much for every worker thread that ever hashed.
const HASH_SLOTS: usize = 2;

struct BlockPool {
    free: std::sync::Mutex<(Vec<Vec<argon2::Block>>, usize)>,
    returned: std::sync::Condvar,
}

static POOL: BlockPool = BlockPool {
    free: std::sync::Mutex::new((Vec::new(), 0)),
    returned: std::sync::Condvar::new(),
};

/// Runs `f` with a buffer of at least `blocks` blocks, waiting while every slot is busy.
fn with_blocks<T>(blocks: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    let mut buffer = {
        let mut guard = POOL
            .free
            .lock()
            .expect("pool lock is never poisoned: no panics while held");
        loop {
            if let Some(buffer) = guard.0.pop() {
                break buffer;
            }
            if guard.1 < HASH_SLOTS {
                guard.1 += 1;
                break Vec::new();
            }
            guard = POOL
                .returned
                .wait(guard)
                .expect("pool lock is never poisoned: no panics while held");
        }
    };
    if buffer.len() < blocks {
        buffer.resize(blocks, argon2::Block::default());
    }
    let result = f(&mut buffer[..blocks]);
    POOL.free
        .lock()
        .expect("pool lock is never poisoned: no panics while held")
        .0
        .push(buffer);
    POOL.returned.notify_one();
    result
}

/// Frees the pooled buffers not in use (after start-up, which may hash once for the bootstrap
/// admin): an idle appliance keeps no hashing memory until the next sign-in needs it.
pub fn release_hash_buffers() {
    let mut guard = POOL
        .free
        .lock()
        .expect("pool lock is never poisoned: no panics while held");
    let idle = guard.0.len();
    guard.0.clear();
    guard.1 -= idle;
}

/// Computes the raw hash of `password` with the parameters, salt and output length of `like`.
fn compute(
    argon: &Argon2<'_>,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = argon.params().block_count();
    with_blocks(blocks, |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, out, memory)
    })
}

pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random source is available");
    let argon = Argon2::default();
    let mut out = [0u8; 32];
    compute(&argon, password, &salt, &mut out)
        .expect("argon2 accepts any password up to the validated length");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(argon.params())
            .expect("default params encode"),
        salt: Some(salt.as_salt()),
        hash: Some(
            argon2::password_hash::Output::new(&out).expect("32 bytes is a valid output length"),
        ),
    };
    hash.to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = hash
        .version
        .map_or(Ok(argon2::Version::default()), argon2::Version::try_from);
    let (Ok(version), Ok(params)) = (version, argon2::Params::try_from(&hash)) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    if compute(&argon, password, salt, &mut out).is_err() {
        return false;
    }
    // Output's equality is constant-time.
    argon2::password_hash::Output::new(&out).is_ok_and(|actual| actual == expected)
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

/// How long a run of failed sign-ins is remembered.
const THROTTLE_WINDOW: Duration = Duration::from_mins(1);
/// At most this many accounts and addresses are tracked at once (about 100 bytes each); past it, a
/// new key goes untracked until windows end, rather than letting a flood grow the process.
const THROTTLE_MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ThrottleKey {
    /// The sha256 of the normalized e-mail: a key costs 32 bytes however long the e-mail sent.
    Account([u8; 32]),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Default)]
struct Windows {
    by_key: HashMap<ThrottleKey, Window>,
    purged: Option<Instant>,
}

/// Failed sign-ins allowed per minute, per account and per client address. Only failures count;
/// a success clears the account's count. Ended windows are dropped, so memory follows the attempts
/// of the last minute only.
pub struct LoginThrottle {
    per_account: u32,
    per_address: u32,
    windows: Mutex<Windows>,
}

impl LoginThrottle {
    pub fn new(per_account: u32, per_address: u32) -> LoginThrottle {
        LoginThrottle {
            per_account: per_account.max(1),
            per_address: per_address.max(1),
            windows: Mutex::default(),
        }
    }

    fn keys(account: &str, address: Option<IpAddr>) -> impl Iterator<Item = ThrottleKey> {
        let account = ThrottleKey::Account(Sha256::digest(account.as_bytes()).into());
        std::iter::once(account).chain(address.map(ThrottleKey::Address))
    }

    fn limit(&self, key: ThrottleKey) -> u32 {
        match key {
            ThrottleKey::Account(_) => self.per_account,
            ThrottleKey::Address(_) => self.per_address,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows
            .lock()
            .expect("throttle lock is never poisoned: no panics while held")
    }

    /// Counts an attempt against the account and the address before its password is checked, so
    /// parallel attempts cannot all slip under the limit; a success takes its count back
    /// ([`LoginThrottle::succeeded`]), so only failures stay counted. `Err(seconds)` says how long
    /// to wait when the account or the address has failed too often.
    pub fn attempt(&self, account: &str, address: Option<IpAddr>) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = self.lock();
        for key in LoginThrottle::keys(account, address) {
            if let Some(w) = windows.by_key.get(&key) {
                let elapsed = now.duration_since(w.started);
                if elapsed < THROTTLE_WINDOW && w.failures >= self.limit(key) {
                    return Err(THROTTLE_WINDOW.saturating_sub(elapsed).as_secs().max(1));
                }
            }
        }
        // Dropping ended windows walks the map: at most once a second, and only once it is big.
        if windows.by_key.len() >= 1024
            && windows
                .purged
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            windows
                .by_key
                .retain(|_, w| now.duration_since(w.started) < THROTTLE_WINDOW);
            windows.purged = Some(now);
        }
        let fresh = Window {
            started: now,
            failures: 1,
        };
        for key in LoginThrottle::keys(account, address) {
            let full = windows.by_key.len() >= THROTTLE_MAX_KEYS;
            match windows.by_key.get_mut(&key) {
                Some(w) if now.duration_since(w.started) < THROTTLE_WINDOW => w.failures += 1,
                Some(w) => *w = fresh,
                None if full => {}
                None => {
                    windows.by_key.insert(key, fresh);
                }
            }
        }
        Ok(())
    }

    /// A correct password: the account starts afresh, and the address gets this attempt back.
    pub fn succeeded(&self, account: &str, address: Option<IpAddr>) {
        let mut windows = self.lock();
        let mut keys = LoginThrottle::keys(account, address);
        if let Some(account) = keys.next() {
            windows.by_key.remove(&account);
        }
        for key in keys {
            if let Some(w) = windows.by_key.get_mut(&key) {
                w.failures = w.failures.saturating_sub(1);
            }
        }
    }

    /// How many accounts and addresses are tracked now (shown in `/metrics`).
    pub fn tracked(&self) -> usize {
        self.lock().by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_hashes_are_argon2id() {
        let hash = hash_password("correct horse battery");
        assert!(PasswordHash::new(&hash).is_ok(), "{hash}");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
        // Hashes made by the argon2 crate's own API (other parameters too) still verify.
        let params = argon2::Params::new(8 * 1024, 2, 1, None).unwrap();
        let old = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let other =
            argon2::password_hash::PasswordHasher::hash_password(&old, b"old password", &salt)
                .unwrap()
                .to_string();
        assert!(verify_password("old password", &other));
        assert!(!verify_password("old passwore", &other));
        // Many concurrent hashes share the bounded pool.
        let handles: Vec<_> = (0..6)
            .map(|i| {
                std::thread::spawn(move || {
                    verify_password(&format!("p{i}"), &hash_password(&format!("p{i}")))
                })
            })
            .collect();
        assert!(handles.into_iter().all(|h| h.join().unwrap()));
    }

    #[test]
    fn throttle_counts_failures_per_account_and_address() {
        let t = LoginThrottle::new(2, 3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..5 {
            assert!(t.attempt("a", Some(ip)).is_ok());
            t.succeeded("a", Some(ip));
        }
        assert!(
            t.attempt("a", Some(ip)).is_ok(),
            "successes are not counted"
        );
        assert!(t.attempt("a", Some(ip)).is_ok());
        assert!(t.attempt("a", None).is_err(), "two failures on one account");
        t.succeeded("a", None);
        assert!(t.attempt("a", None).is_ok(), "a success reset the account");
        assert!(t.attempt("b", Some(ip)).is_ok());
        assert!(
            t.attempt("c", Some(ip)).is_err(),
            "three failures from one address"
        );
        assert!(t.attempt("c", None).is_ok());
        assert_eq!(t.tracked(), 4, "three accounts and one address");
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
