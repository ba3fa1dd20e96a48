//! A copy of every tree as one stream of records, and the way back into an empty database.
//!
//! [`Store::snapshot`] pauses writers while it copies (reads go on), so the copy is one point in
//! time across all trees: sled's iterators alone are not. The pre-migration export uses the same
//! format.
//!
//! Format: the magic `deskbridge-store\n`, a big-endian `u32` version, then records. A record is a
//! tag byte followed by length-prefixed (`u32` big-endian) fields: `T name` opens a tree, `E key
//! value` is an entry of the last opened tree, and `Z` ends the stream.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Store, StoreError, names};
use crate::domain::Attachment;

const MAGIC: &[u8] = b"deskbridge-store\n";
const VERSION: u32 = 1;
const TREE: u8 = b'T';
const ENTRY: u8 = b'E';
const END: u8 = b'Z';
/// Entries written to the new database per batch on import.
const IMPORT_BATCH: usize = 10_000;

/// What a snapshot holds besides the records.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The content files the snapshot's attachments refer to (hex sha256).
    pub blobs: BTreeSet<String>,
    /// Records (tree entries) written.
    pub entries: u64,
    /// How long writers waited.
    pub paused: Duration,
}

impl Store {
    /// Writes every tree to `out` as one consistent copy. Writers wait until the copy is written;
    /// readers do not. Write to a local file, never to a slow peer.
    pub fn snapshot(&self, out: &mut impl Write) -> Result<Snapshot, StoreError> {
        let _paused = self
            .writes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = Instant::now();
        let mut blobs = BTreeSet::new();
        let entries = export(&self.db, out, |tree, key, value| {
            if tree == names::attachments.as_bytes() {
                let attachment: Attachment = super::decode(names::attachments, key, value)?;
                blobs.insert(attachment.sha256);
            }
            Ok(())
        })?;
        Ok(Snapshot {
            blobs,
            entries,
            paused: started.elapsed(),
        })
    }
}

/// Writes every tree of `db`, calling `visit` for each entry; returns the number of entries.
pub(crate) fn export(
    db: &sled::Db,
    out: &mut impl Write,
    mut visit: impl FnMut(&[u8], &[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut writer = Writer { out };
    writer.bytes(MAGIC)?;
    writer.bytes(&VERSION.to_be_bytes())?;
    let mut entries = 0;
    for name in db.tree_names() {
        let tree = db.open_tree(&name)?;
        writer.bytes(&[TREE])?;
        writer.field(&name)?;
        for item in &tree {
            let (key, value) = item?;
            visit(&name, &key, &value)?;
            writer.bytes(&[ENTRY])?;
            writer.field(&key)?;
            writer.field(&value)?;
            entries += 1;
        }
    }
    writer.bytes(&[END])?;
    writer.out.flush().map_err(io_error)?;
    Ok(entries)
}

struct Writer<'a, W: Write> {
    out: &'a mut W,
}

impl<W: Write> Writer<'_, W> {
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.out.write_all(bytes).map_err(io_error)
    }

    fn field(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let len = u32::try_from(bytes.len()).expect("sled keys and values are far below 4 GiB");
        self.bytes(&len.to_be_bytes())?;
        self.bytes(bytes)
    }
}

fn io_error(source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: "<store export>".into(),
        source,
    }
}

fn malformed(what: impl Into<String>) -> StoreError {
    StoreError::Malformed(what.into())
}

/// Creates the database at `db_path` (which must not exist yet) from an export; returns the number
/// of entries. sled writes its own snapshot of the log only when a database is opened, so the first
/// start on an imported database reads the whole log once.
pub fn import(db_path: &Path, input: &mut impl Read) -> Result<u64, StoreError> {
    if db_path.exists() {
        return Err(malformed(format!(
            "{} exists; an import needs an empty place",
            db_path.display()
        )));
    }
    let db = super::sled_config(db_path, 64).open()?;
    let entries = import_into(&db, input)?;
    db.flush()?;
    Ok(entries)
}

/// Writes an export's records into `db`.
fn import_into(db: &sled::Db, input: &mut impl Read) -> Result<u64, StoreError> {
    let mut reader = Reader { input };
    if reader.exact(MAGIC.len())? != MAGIC {
        return Err(malformed("not a deskbridge store export"));
    }
    let version = reader.u32()?;
    if version != VERSION {
        return Err(malformed(format!(
            "store export version {version} is not supported (expected {VERSION})"
        )));
    }
    let mut entries = 0;
    let mut tree: Option<sled::Tree> = None;
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    loop {
        let tag = reader.exact(1)?[0];
        if matches!(tag, TREE | END)
            && let Some(tree) = &tree
        {
            tree.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
        match tag {
            TREE => tree = Some(db.open_tree(reader.field()?)?),
            ENTRY => {
                let current = tree
                    .as_ref()
                    .ok_or_else(|| malformed("an entry before any tree"))?;
                batch.insert(reader.field()?, reader.field()?);
                pending += 1;
                entries += 1;
                if pending == IMPORT_BATCH {
                    current.apply_batch(std::mem::take(&mut batch))?;
                    pending = 0;
                }
            }
            END => break,
            other => return Err(malformed(format!("unknown record tag {other:#04x}"))),
        }
    }
    if reader.input.read(&mut [0u8]).map_err(io_error)? != 0 {
        return Err(malformed("data after the end of the export"));
    }
    Ok(entries)
}

struct Reader<'a, R: Read> {
    input: &'a mut R,
}

impl<R: Read> Reader<'_, R> {
    fn exact(&mut self, len: usize) -> Result<Vec<u8>, StoreError> {
        let mut buf = vec![0; len];
        self.input.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                malformed("the export ends early")
            } else {
                io_error(e)
            }
        })?;
        Ok(buf)
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        let bytes = self.exact(4)?;
        Ok(u32::from_be_bytes(
            bytes.try_into().expect("exact returns 4 bytes"),
        ))
    }

    fn field(&mut self) -> Result<Vec<u8>, StoreError> {
        let len = self.u32()? as usize;
        self.exact(len)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::domain::{Role, User, UserId};
    use crate::metrics::Metrics;

    fn user(n: usize) -> User {
        User {
            id: UserId::new(),
            email: format!("user{n}@example.com"),
            name: format!("User {n}"),
            role: Role::Customer,
            organization: String::new(),
            password_hash: String::new(),
            disabled: false,
            created_at: time::OffsetDateTime::now_utc(),
        }
    }

    /// Entries per tree in an export.
    fn tree_sizes(mut export: &[u8]) -> std::collections::HashMap<Vec<u8>, usize> {
        let mut reader = Reader { input: &mut export };
        assert_eq!(reader.exact(MAGIC.len()).unwrap(), MAGIC);
        assert_eq!(reader.u32().unwrap(), VERSION);
        let mut sizes = std::collections::HashMap::new();
        let mut tree = Vec::new();
        loop {
            match reader.exact(1).unwrap()[0] {
                TREE => tree = reader.field().unwrap(),
                ENTRY => {
                    reader.field().unwrap();
                    reader.field().unwrap();
                    *sizes.entry(tree.clone()).or_default() += 1;
                }
                _ => return sizes,
            }
        }
    }

    #[test]
    fn a_snapshot_taken_during_writes_is_one_point_in_time_and_imports_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(Store::open(&dir.path().join("data"), 8, "DB", Metrics::new()).unwrap());
        for n in 0..2_000 {
            store.create_user(&user(n)).unwrap();
        }
        // Each account is two entries in two trees, written in one transaction: a copy that is
        // not one point in time shows the trees with different lengths.
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started) = std::sync::mpsc::channel();
        let writer = {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 2_000;
                while !stop.load(Ordering::Relaxed) {
                    store.create_user(&user(n)).unwrap();
                    if n == 2_000 {
                        started_tx.send(()).unwrap();
                    }
                    n += 1;
                }
                n
            })
        };
        started.recv().unwrap();
        let mut copies = Vec::new();
        for _ in 0..10 {
            let mut out = Vec::new();
            store.snapshot(&mut out).unwrap();
            copies.push(out);
        }
        stop.store(true, Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert!(written > 2_000, "the writer ran during the snapshots");

        for (i, copy) in copies.iter().enumerate() {
            let sizes = tree_sizes(copy);
            let users = sizes[names::users.as_bytes()];
            assert!(users >= 2_000);
            assert_eq!(
                users,
                sizes[names::users_by_email.as_bytes()],
                "copy {i} is one point in time across trees"
            );
        }
        let db = sled::Config::new().temporary(true).open().unwrap();
        let entries = import_into(&db, &mut copies[9].as_slice()).unwrap();
        let sizes = tree_sizes(&copies[9]);
        assert_eq!(
            entries,
            u64::try_from(sizes.values().sum::<usize>()).unwrap()
        );
        let users = db.open_tree(names::users).unwrap();
        assert_eq!(users.len(), sizes[names::users.as_bytes()]);
        for item in &users {
            let (key, value) = item.unwrap();
            assert_eq!(store.trees.users.get(&key).unwrap(), Some(value));
        }
    }

    #[test]
    fn a_damaged_export_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .unwrap();
        db.open_tree("t").unwrap().insert(b"k", b"v").unwrap();
        let mut out = Vec::new();
        export(&db, &mut out, |_, _, _| Ok(())).unwrap();

        let cut = &out[..out.len() - 3];
        let err = import(&dir.path().join("a"), &mut &cut[..]).unwrap_err();
        assert!(err.to_string().contains("ends early"), "{err}");
        let mut extra = out.clone();
        extra.push(0);
        let err = import(&dir.path().join("b"), &mut extra.as_slice()).unwrap_err();
        assert!(err.to_string().contains("after the end"), "{err}");
        let err = import(&dir.path().join("c"), &mut &b"hello"[..]).unwrap_err();
        assert!(err.to_string().contains("ends early") || err.to_string().contains("not a"));
        import(&dir.path().join("d"), &mut out.as_slice()).unwrap();
    }
}
