//! Backups: a tar archive holding a consistent snapshot of the store, the attachment files it
//! refers to, and a manifest with every entry's size and sha256. The server writes it
//! ([`archive`]), `deskbridge backup` downloads and checks it ([`client`]), and `deskbridge
//! restore` checks every checksum before it creates a data dir from it ([`restore`]).
//!
//! Entries, in this order:
//!
//! ```text
//! manifest.json          format and versions, creation time, every following entry's size and sha256
//! manifest.json.sha256   the manifest's own checksum, as `sha256sum` writes it
//! store.export           every tree of the store at one point in time (`store::snapshot` format)
//! blobs/<aa>/<sha256>    attachment content, laid out as in the data dir
//! ```

pub(crate) mod archive;
pub(crate) mod client;
pub(crate) mod restore;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::store::StoreError;

/// The `format` field of every manifest.
pub(crate) const FORMAT: &str = "deskbridge-backup";
/// Bumped when the archive's layout changes; restore refuses versions it does not know.
pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const MANIFEST: &str = "manifest.json";
pub(crate) const MANIFEST_SUM: &str = "manifest.json.sha256";
pub(crate) const STORE: &str = "store.export";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The deskbridge version that wrote the backup.
    pub app_version: String,
    /// The store's schema version (see `store::migrations`); a newer deskbridge migrates it on start.
    pub schema_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Every entry after the manifest and its checksum, in archive order.
    pub entries: Vec<ManifestEntry>,
    /// How console-saved secrets are held: sealed with the appliance's secret key, which the
    /// archive does not contain. Absent in archives from before secrets were sealed.
    #[serde(default)]
    pub secrets: String,
}

/// The manifest's `secrets` note.
pub(crate) const SECRETS_NOTE: &str = "console-saved secrets are sealed (chacha20poly1305) with the key in storage.secret_key_file, which this archive does not contain; password hashes are argon2id";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestEntry {
    pub path: String,
    pub size: u64,
    /// Hex sha256 of the content.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BackupError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{} is not empty: restore only into an empty or missing directory",
        .0.display()
    )]
    NotEmpty(PathBuf),
    #[error("not a deskbridge backup: {0}")]
    NotABackup(String),
    #[error(
        "this backup needs a newer deskbridge: {what} {found}, this version supports up to {supported}"
    )]
    TooNew {
        what: &'static str,
        found: u32,
        supported: u32,
    },
    #[error(
        "checksum mismatch for {path}: the manifest says {expected}, the content is {found}; the archive is damaged"
    )]
    Checksum {
        path: String,
        expected: String,
        found: String,
    },
    #[error("the archive is damaged: {0}")]
    Damaged(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Download(String),
}

pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether `s` is a lower-case hex sha256.
pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The archive path of an attachment's content: the same layout as `Store::blob_path`.
pub(crate) fn blob_entry(sha256: &str) -> String {
    format!("blobs/{}/{sha256}", &sha256[..2])
}

/// The sha256 a well-formed blob entry path names.
pub(crate) fn blob_entry_sha(path: &str) -> Option<&str> {
    let sha = path.strip_prefix("blobs/")?.split_once('/')?.1;
    (is_sha256(sha) && path == blob_entry(sha)).then_some(sha)
}

/// The `sha256sum` line for the manifest.
pub(crate) fn manifest_sum(manifest: &[u8]) -> Vec<u8> {
    format!("{}  {MANIFEST}\n", hex::encode(Sha256::digest(manifest))).into_bytes()
}

/// Counts and hashes what passes through.
pub(crate) struct Hashing<T> {
    pub inner: T,
    pub count: u64,
    hasher: Sha256,
}

impl<T> Hashing<T> {
    pub(crate) fn new(inner: T) -> Self {
        Hashing {
            inner,
            count: 0,
            hasher: Sha256::new(),
        }
    }

    pub(crate) fn finish(self) -> (T, u64, String) {
        (self.inner, self.count, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reports bytes done on stderr, at most once a second, and once at the end.
pub(crate) struct Progress {
    label: &'static str,
    total: Option<u64>,
    last: Option<(Instant, u64)>,
}

impl Progress {
    pub(crate) fn new(label: &'static str, total: Option<u64>) -> Progress {
        Progress {
            label,
            total,
            last: None,
        }
    }

    pub(crate) fn update(&mut self, done: u64) {
        if self
            .last
            .is_some_and(|(t, _)| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.print(done);
    }

    pub(crate) fn finish(&mut self, done: u64) {
        if self.last.is_none_or(|(_, printed)| printed != done) {
            self.print(done);
        }
    }

    fn print(&mut self, done: u64) {
        self.last = Some((Instant::now(), done));
        let mib = |bytes: u64| {
            let tenths = bytes / (1024 * 1024 / 10);
            format!("{}.{} MiB", tenths / 10, tenths % 10)
        };
        match self.total {
            Some(total) if total > 0 => eprintln!(
                "{}: {} of {} ({}%)",
                self.label,
                mib(done),
                mib(total),
                done.saturating_mul(100) / total
            ),
            _ => eprintln!("{}: {}", self.label, mib(done)),
        }
    }
}
