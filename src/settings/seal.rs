//! Console-saved secrets are sealed (ChaCha20-Poly1305) with a key kept outside the store, so the
//! store files and backup archives hold them only encrypted. The key is `storage.secret_key`
//! (usually from the environment), else the file `storage.secret_key_file`, created at first start.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::config::StorageConfig;

/// Starts every sealed value in the stored JSON; anything else is clear text an earlier version
/// wrote, which the start seals.
const PREFIX: &str = "sealed:v1:";
const NONCE_LEN: usize = 12;
/// The key file's name in the data dir when `storage.secret_key_file` is empty.
const DEFAULT_FILE: &str = "secret.key";

/// The key that seals and opens console-saved secrets.
pub(crate) struct SecretKey(ChaCha20Poly1305);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// A sealed value that does not open: another key sealed it, or it was altered.
#[derive(Debug, thiserror::Error)]
#[error("a sealed secret does not open with this key")]
pub(crate) struct OpenError;

impl SecretKey {
    /// The configured key, or the key file's, creating the file (mode 0600) when it is missing.
    pub(crate) fn load(storage: &StorageConfig) -> anyhow::Result<SecretKey> {
        let given = storage.secret_key.expose();
        if !given.is_empty() {
            return SecretKey::from_hex(given).context("storage.secret_key must be 64 hex digits");
        }
        let path = key_file(storage);
        match std::fs::read_to_string(&path) {
            Ok(text) => SecretKey::from_hex(text.trim()).with_context(|| {
                format!(
                    "{} (storage.secret_key_file) must hold 64 hex digits",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
            Err(e) => Err(e).with_context(|| {
                format!("cannot read {} (storage.secret_key_file)", path.display())
            }),
        }
    }

    fn from_hex(text: &str) -> anyhow::Result<SecretKey> {
        let bytes = hex::decode(text).context("not hex")?;
        anyhow::ensure!(bytes.len() == 32, "not 32 bytes");
        Ok(SecretKey(ChaCha20Poly1305::new(Key::from_slice(&bytes))))
    }

    #[cfg(test)]
    pub(crate) fn random() -> SecretKey {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        SecretKey(ChaCha20Poly1305::new(Key::from_slice(&bytes)))
    }

    /// `clear` sealed for the setting `name` (bound to it, so a value cannot be moved to another).
    pub(crate) fn seal(&self, name: &str, clear: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source is available");
        let payload = Payload {
            msg: clear.as_bytes(),
            aad: name.as_bytes(),
        };
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("sealing a short value cannot fail");
        format!("{PREFIX}{}{}", hex::encode(nonce), hex::encode(sealed))
    }

    /// The clear value of a sealed one.
    pub(crate) fn open(&self, name: &str, stored: &str) -> Result<String, OpenError> {
        let body = stored.strip_prefix(PREFIX).ok_or(OpenError)?;
        let bytes = hex::decode(body).map_err(|_| OpenError)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let payload = Payload {
            msg: sealed,
            aad: name.as_bytes(),
        };
        let clear = self
            .0
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| OpenError)?;
        String::from_utf8(clear).map_err(|_| OpenError)
    }
}

/// Whether a stored value is sealed (rather than clear text from an earlier version).
pub(crate) fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Where the key file is: `storage.secret_key_file`, else `secret.key` in the data dir (never
/// part of a backup archive, which holds only the store's records and attachment files).
pub(crate) fn key_file(storage: &StorageConfig) -> PathBuf {
    if storage.secret_key_file.as_os_str().is_empty() {
        storage.data_dir.join(DEFAULT_FILE)
    } else {
        storage.secret_key_file.clone()
    }
}

fn create(path: &Path) -> anyhow::Result<SecretKey> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    let failed = || {
        format!(
            "cannot create the secret key file {} (storage.secret_key_file): make its directory \
             writable, name another file, or give the key in DESKBRIDGE__STORAGE__SECRET_KEY",
            path.display()
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(failed)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(failed)?;
    writeln!(file, "{}", hex::encode(bytes)).with_context(failed)?;
    file.sync_all().with_context(failed)?;
    tracing::info!(path = %path.display(), "created the key that seals console-saved secrets; keep a copy apart from the backups");
    Ok(SecretKey(ChaCha20Poly1305::new(Key::from_slice(&bytes))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_name() {
        let key = SecretKey::random();
        let sealed = key.seal("sdp.api_key", "hunter2");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            key.seal("sdp.api_key", "hunter2"),
            "a fresh nonce each time"
        );
        assert_eq!(key.open("sdp.api_key", &sealed).unwrap(), "hunter2");
        assert!(key.open("sdp.webhook_secret", &sealed).is_err());
        assert!(SecretKey::random().open("sdp.api_key", &sealed).is_err());
        assert!(key.open("sdp.api_key", "sealed:v1:zz").is_err());
        assert!(key.open("sdp.api_key", "sealed:v1:00").is_err());
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let storage = StorageConfig {
            data_dir: dir.path().join("data"),
            ..StorageConfig::default()
        };
        let first = SecretKey::load(&storage).unwrap();
        let path = key_file(&storage);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = SecretKey::load(&storage).unwrap();
        let sealed = first.seal("n", "v");
        assert_eq!(again.open("n", &sealed).unwrap(), "v");
        std::fs::write(&path, "not hex\n").unwrap();
        let err = SecretKey::load(&storage).unwrap_err().to_string();
        assert!(err.contains("storage.secret_key_file"), "{err}");
    }
}
