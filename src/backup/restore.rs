//! The restore side: read an archive, check every entry against the manifest, and only then put
//! a data dir in place. [`verify`] does the same checks without writing anything.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::{
    BackupError, FORMAT, FORMAT_VERSION, Hashing, MANIFEST, MANIFEST_SUM, Manifest, Progress,
    STORE, blob_entry_sha, io_at, manifest_sum,
};
use crate::store::SCHEMA_VERSION;

/// Largest manifest accepted: about a million attachments.
const MANIFEST_LIMIT: u64 = 256 * 1024 * 1024;
/// Where a restore unpacks before anything is final; inside the target so renames stay on one
/// file system.
pub(crate) const STAGING: &str = ".restore-tmp";

/// What a restore put in place.
#[derive(Debug)]
pub(crate) struct Restored {
    pub manifest: Manifest,
    /// Store records imported.
    pub records: u64,
}

/// Checks every checksum of the archive at `file`, writing nothing.
pub(crate) fn verify(file: &Path, progress: &mut Progress) -> Result<Manifest, BackupError> {
    read(file, None, progress)
}

/// Creates a data dir at `data_dir` from the archive at `file`. `data_dir` must be missing or
/// empty. Entries are unpacked into `data_dir/.restore-tmp` and checked; only when every checksum
/// matched is the store imported and moved into place. On any error nothing is left behind.
pub(crate) fn restore(
    file: &Path,
    data_dir: &Path,
    progress: &mut Progress,
) -> Result<Restored, BackupError> {
    std::fs::metadata(file).map_err(io_at(file))?;
    match std::fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(data_dir.to_owned()));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_private_dir(data_dir)?,
        Err(e) => return Err(io_at(data_dir)(e)),
    }
    let staging = data_dir.join(STAGING);
    create_private_dir(&staging)?;
    let result = unpack(file, data_dir, &staging, progress);
    let cleanup = std::fs::remove_dir_all(&staging).map_err(io_at(&staging));
    let restored = result?;
    cleanup?;
    sync_dir(data_dir)?;
    Ok(restored)
}

fn unpack(
    file: &Path,
    data_dir: &Path,
    staging: &Path,
    progress: &mut Progress,
) -> Result<Restored, BackupError> {
    let manifest = read(file, Some(staging), progress)?;
    eprintln!("restore: every checksum matches; importing the store");
    let export = staging.join(STORE);
    let mut input = BufReader::with_capacity(1 << 20, File::open(&export).map_err(io_at(&export))?);
    let db = staging.join("db");
    let records = crate::store::snapshot::import(&db, &mut input)?;
    for dir in ["blobs", "db"] {
        let from = staging.join(dir);
        if from.exists() {
            let to = data_dir.join(dir);
            std::fs::rename(&from, &to).map_err(io_at(&to))?;
        }
    }
    Ok(Restored { manifest, records })
}

fn create_private_dir(path: &Path) -> Result<(), BackupError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o750);
    builder.create(path).map_err(io_at(path))
}

fn sync_dir(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_at(path))
}

fn damaged(e: &io::Error) -> BackupError {
    BackupError::Damaged(e.to_string())
}

/// Counts the bytes read for the progress report.
struct Counting<'p, R> {
    inner: R,
    done: u64,
    progress: &'p mut Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.update(self.done);
        Ok(n)
    }
}

/// Reads the archive and checks it entry by entry; with `staging`, writes each entry there.
fn read(
    file: &Path,
    staging: Option<&Path>,
    progress: &mut Progress,
) -> Result<Manifest, BackupError> {
    let input = File::open(file).map_err(io_at(file))?;
    let counting = Counting {
        inner: BufReader::with_capacity(1 << 20, input),
        done: 0,
        progress,
    };
    let mut archive = tar::Archive::new(counting);
    let mut entries = archive.entries().map_err(|e| damaged(&e))?;
    let mut next = |name: &str| -> Result<Vec<u8>, BackupError> {
        let mut entry = entries
            .next()
            .ok_or_else(|| BackupError::NotABackup(format!("it has no {name}")))?
            .map_err(|e| BackupError::NotABackup(e.to_string()))?;
        if entry.path_bytes().as_ref() != name.as_bytes() || entry.size() > MANIFEST_LIMIT {
            return Err(BackupError::NotABackup(format!(
                "it does not start with {MANIFEST} and {MANIFEST_SUM}"
            )));
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| damaged(&e))?;
        Ok(bytes)
    };
    let manifest_bytes = next(MANIFEST)?;
    let sum = next(MANIFEST_SUM)?;
    let manifest = parse_manifest(&manifest_bytes, &sum)?;

    let mut expected: HashMap<&str, &super::ManifestEntry> = manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(&e))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let listed = expected.remove(path.as_str()).ok_or_else(|| {
            BackupError::Damaged(format!("{path} is not in the manifest, or appears twice"))
        })?;
        if entry.header().entry_type() != tar::EntryType::Regular || entry.size() != listed.size {
            return Err(BackupError::Damaged(format!(
                "{path} is not the {} byte file the manifest lists",
                listed.size
            )));
        }
        // The path was checked against the manifest's shapes, so it stays inside `staging`.
        let (count, sha256) = match staging {
            Some(staging) => copy_to(&mut entry, &staging.join(&path))?,
            None => copy(&mut entry, io::sink(), Path::new(&path))?,
        };
        if count != listed.size {
            return Err(BackupError::Damaged(format!("{path} is cut short")));
        }
        if sha256 != listed.sha256 {
            return Err(BackupError::Checksum {
                path,
                expected: listed.sha256.clone(),
                found: sha256,
            });
        }
    }
    if let Some(missing) = expected.keys().min() {
        return Err(BackupError::Damaged(format!(
            "it ends before {missing} ({} entries missing)",
            expected.len()
        )));
    }
    let counting = archive.into_inner();
    counting.progress.finish(counting.done);
    Ok(manifest)
}

/// Checks the manifest against its checksum, its format and versions, and the shape of every
/// entry it lists.
fn parse_manifest(bytes: &[u8], sum: &[u8]) -> Result<Manifest, BackupError> {
    let actual = manifest_sum(bytes);
    if sum != actual.as_slice() {
        return Err(BackupError::Checksum {
            path: MANIFEST.into(),
            expected: String::from_utf8_lossy(sum).trim().to_owned(),
            found: String::from_utf8_lossy(&actual).trim().to_owned(),
        });
    }
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| BackupError::NotABackup(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::NotABackup(format!(
            "its format is {:?}",
            manifest.format
        )));
    }
    for (what, found, supported) in [
        (
            "backup format version",
            manifest.format_version,
            FORMAT_VERSION,
        ),
        (
            "store schema version",
            manifest.schema_version,
            SCHEMA_VERSION,
        ),
    ] {
        if found > supported {
            return Err(BackupError::TooNew {
                what,
                found,
                supported,
            });
        }
    }
    let mut stores = 0;
    for entry in &manifest.entries {
        let well_formed = if entry.path == STORE {
            stores += 1;
            true
        } else {
            blob_entry_sha(&entry.path) == Some(entry.sha256.as_str())
        };
        if !well_formed {
            return Err(BackupError::NotABackup(format!(
                "the manifest lists an unexpected entry {:?}",
                entry.path
            )));
        }
    }
    if stores != 1 {
        return Err(BackupError::NotABackup(format!(
            "the manifest lists {stores} store exports"
        )));
    }
    Ok(manifest)
}

fn copy_to(input: &mut impl Read, path: &Path) -> Result<(u64, String), BackupError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    }
    let file = File::create(path).map_err(io_at(path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let result = copy(input, &mut out, path)?;
    out.into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .and_then(|f| f.sync_all())
        .map_err(io_at(path))?;
    Ok(result)
}

fn copy(input: &mut impl Read, out: impl Write, path: &Path) -> Result<(u64, String), BackupError> {
    let mut out = Hashing::new(out);
    io::copy(input, &mut out).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            damaged(&e)
        } else {
            io_at(path)(e)
        }
    })?;
    let (_, count, sha256) = out.finish();
    Ok((count, sha256))
}
