//! The server side: take the snapshot, then write the archive.
//!
//! The snapshot goes to a file under `data_dir/tmp` first, so it never waits for the network while
//! it holds writers at its end. The content files need no snapshot: they are written before the
//! record that names them and never change or go away.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;

use super::{
    BackupError, FORMAT, FORMAT_VERSION, Hashing, MANIFEST, MANIFEST_SUM, Manifest, ManifestEntry,
    STORE, blob_entry, io_at, is_sha256, manifest_sum,
};
use crate::store::{SCHEMA_VERSION, Store};

const BLOCK: u64 = 512;

/// A snapshot ready to be sent. Dropping it removes the staged copy and frees the snapshot permit.
pub(crate) struct Prepared {
    manifest: Vec<u8>,
    created_at: OffsetDateTime,
    /// Where each entry's content is read from, in manifest order.
    sources: Vec<(ManifestEntry, PathBuf)>,
    staged: Staged,
    _permit: OwnedSemaphorePermit,
}

struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Takes the snapshot (see `Store::snapshot`) and lists the content files it refers to.
/// Blocking: run it off the async threads.
pub(crate) fn prepare(
    store: &Store,
    permit: OwnedSemaphorePermit,
) -> Result<Prepared, BackupError> {
    let path = store
        .data_dir()
        .join("tmp")
        .join(format!("backup-{}.export", uuid::Uuid::new_v4().simple()));
    let staged = Staged(path.clone());
    let file = File::create(&path).map_err(io_at(&path))?;
    let mut out = Hashing::new(BufWriter::with_capacity(1 << 20, file));
    let snapshot = store.snapshot(&mut out)?;
    let (writer, size, sha256) = out.finish();
    writer
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .and_then(|f| f.sync_all())
        .map_err(io_at(&path))?;
    tracing::info!(
        records = snapshot.records,
        bytes = size,
        files = snapshot.blobs.len(),
        took_ms = snapshot.took.as_millis(),
        changed_meanwhile = snapshot.changed,
        writers_paused_ms = snapshot.paused.as_millis(),
        "store snapshot taken"
    );
    let mut sources = vec![(
        ManifestEntry {
            path: STORE.into(),
            size,
            sha256,
        },
        path,
    )];
    for sha256 in snapshot.blobs {
        if !is_sha256(&sha256) {
            return Err(BackupError::Damaged(format!(
                "an attachment names the content {sha256:?}, which is not a sha256"
            )));
        }
        let file = store.blob_path(&sha256);
        let size = std::fs::metadata(&file).map_err(io_at(&file))?.len();
        let entry = ManifestEntry {
            path: blob_entry(&sha256),
            size,
            sha256,
        };
        sources.push((entry, file));
    }
    let created_at = OffsetDateTime::now_utc();
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        app_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: SCHEMA_VERSION,
        created_at,
        entries: sources.iter().map(|(e, _)| e.clone()).collect(),
        secrets: super::SECRETS_NOTE.into(),
    };
    let manifest =
        serde_json::to_vec_pretty(&manifest).expect("the manifest serializes: plain fields");
    Ok(Prepared {
        manifest,
        created_at,
        sources,
        staged,
        _permit: permit,
    })
}

/// The size of a tar entry: a header block, then the content padded to whole blocks.
fn entry_len(size: u64) -> u64 {
    BLOCK + size.div_ceil(BLOCK) * BLOCK
}

impl Prepared {
    /// The exact size of the archive [`Prepared::write_to`] writes.
    pub(crate) fn size(&self) -> u64 {
        let manifest = entry_len(self.manifest.len() as u64)
            + entry_len(manifest_sum(&self.manifest).len() as u64);
        let entries: u64 = self.sources.iter().map(|(e, _)| entry_len(e.size)).sum();
        // The archive ends with two zero blocks.
        manifest + entries + 2 * BLOCK
    }

    /// A file name for the download, e.g. `deskbridge-backup-20260102T030405Z.tar`.
    pub(crate) fn file_name(&self) -> String {
        let t = self.created_at;
        format!(
            "deskbridge-backup-{:04}{:02}{:02}T{:02}{:02}{:02}Z.tar",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// Writes the archive. Every content file is hashed as it is sent: one that no longer matches
    /// its manifest entry stops the archive with an error, so a damaged file is never passed on
    /// as a good backup. Blocking.
    pub(crate) fn write_to(self, out: impl Write) -> Result<(), BackupError> {
        let mut tar = tar::Builder::new(out);
        let mtime = u64::try_from(self.created_at.unix_timestamp()).unwrap_or(0);
        let sent = |e: std::io::Error| BackupError::Io {
            path: "<backup stream>".into(),
            source: e,
        };
        let sum = manifest_sum(&self.manifest);
        for (name, bytes) in [(MANIFEST, &self.manifest), (MANIFEST_SUM, &sum)] {
            let mut header = header(bytes.len() as u64, mtime);
            tar.append_data(&mut header, name, bytes.as_slice())
                .map_err(sent)?;
        }
        for (entry, path) in &self.sources {
            let file = File::open(path).map_err(io_at(path))?;
            let mut reader = Hashing::new(BufReader::with_capacity(1 << 20, file).take(entry.size));
            let mut header = header(entry.size, mtime);
            tar.append_data(&mut header, &entry.path, &mut reader)
                .map_err(sent)?;
            let (_, count, sha256) = reader.finish();
            if count != entry.size {
                return Err(BackupError::Damaged(format!(
                    "{} shrank from {} to {count} bytes while it was sent",
                    path.display(),
                    entry.size
                )));
            }
            if sha256 != entry.sha256 {
                return Err(BackupError::Checksum {
                    path: path.display().to_string(),
                    expected: entry.sha256.clone(),
                    found: sha256,
                });
            }
        }
        tar.into_inner()
            .and_then(|mut out| out.flush())
            .map_err(sent)?;
        drop(self.staged);
        Ok(())
    }
}

fn header(size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o640);
    header.set_mtime(mtime);
    header
}
