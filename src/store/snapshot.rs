//! A copy of every tree as one stream of records, and the way back into an empty database.
//!
//! [`Store::snapshot`] copies the trees while writers go on, recording which keys they change
//! (the store's journal). Then it pauses writers for a moment and appends those keys as they are
//! now. Importing the copy, later records replacing earlier ones, gives the store exactly as it was
//! in that moment, across all trees: sled's iterators alone would not. The pre-migration export
//! uses the same format.
//!
//! Format: the magic `deskbridge-store\n`, a big-endian `u32` version, then records. A record is a
//! tag byte followed by length-prefixed (`u32` big-endian) fields: `T name` selects a tree, `E key
//! value` sets an entry of the selected tree, `D key` deletes one, and `Z` ends the stream.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Store, StoreError, names};
use crate::domain::Attachment;
use crate::domain::brand::Branding;

const MAGIC: &[u8] = b"deskbridge-store\n";
const VERSION: u32 = 1;
const TREE: u8 = b'T';
const ENTRY: u8 = b'E';
const DELETE: u8 = b'D';
const END: u8 = b'Z';
/// Entries written to the new database per batch on import.
const IMPORT_BATCH: usize = 10_000;

/// What a snapshot holds besides the records.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The content files the snapshot's attachments and the portal's logo refer to (hex sha256).
    pub blobs: BTreeSet<String>,
    /// Records written.
    pub records: u64,
    /// Keys changed during the copy, copied again at its end.
    pub changed: usize,
    /// How long the copy took.
    pub took: Duration,
    /// How long writers waited at its end.
    pub paused: Duration,
}

impl Store {
    /// Writes every tree to `out` as one consistent copy. Writers wait only while the keys they
    /// changed during the copy are written again; readers never wait.
    pub fn snapshot(&self, out: &mut impl Write) -> Result<Snapshot, StoreError> {
        let gate = || {
            self.writes
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        {
            // Writes in flight finish first; every later one records its keys.
            let _start = gate();
            self.journal.start();
        }
        let started = Instant::now();
        let mut blobs = BTreeSet::new();
        let mut visit = |tree: &[u8], key: &[u8], value: &[u8]| {
            if tree == names::attachments.as_bytes() {
                let attachment: Attachment = super::decode(names::attachments, key, value)?;
                blobs.insert(attachment.sha256);
            } else if tree == names::settings.as_bytes() && key == super::admin::BRANDING.as_bytes()
            {
                let brand: Branding = super::decode(names::settings, key, value)?;
                blobs.extend(brand.logo.map(|l| l.sha256));
            }
            Ok(())
        };
        let mut writer = Writer { out };
        let copied = writer
            .header()
            .and_then(|()| write_trees(&self.db, &mut writer, &mut visit));
        let _paused = gate();
        let paused = Instant::now();
        let changed = self.journal.stop();
        let mut records = copied?;
        let mut selected: Option<&str> = None;
        for (name, key) in &changed {
            if selected != Some(*name) {
                writer.bytes(&[TREE])?;
                writer.field(name.as_bytes())?;
                selected = Some(name);
            }
            if let Some(value) = self.db.open_tree(name)?.get(key)? {
                visit(name.as_bytes(), key, &value)?;
                writer.entry(key, &value)?;
            } else {
                writer.bytes(&[DELETE])?;
                writer.field(key)?;
            }
            records += 1;
        }
        writer.end()?;
        Ok(Snapshot {
            blobs,
            records,
            changed: changed.len(),
            took: started.elapsed(),
            paused: paused.elapsed(),
        })
    }
}

/// Writes every tree of `db` while nothing else writes to it; returns the number of entries.
pub(crate) fn export(db: &sled::Db, out: &mut impl Write) -> Result<u64, StoreError> {
    let mut writer = Writer { out };
    writer.header()?;
    let entries = write_trees(db, &mut writer, &mut |_, _, _| Ok(()))?;
    writer.end()?;
    Ok(entries)
}

/// Every entry of every tree, calling `visit` for each; returns the number of entries.
fn write_trees<W: Write>(
    db: &sled::Db,
    writer: &mut Writer<'_, W>,
    visit: &mut impl FnMut(&[u8], &[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut entries = 0;
    for name in db.tree_names() {
        let tree = db.open_tree(&name)?;
        writer.bytes(&[TREE])?;
        writer.field(&name)?;
        // Only up to the last key present now: keys appended meanwhile are in the journal, and a
        // copy chasing a tree's growing end might never finish.
        let Some((last, _)) = tree.last()? else {
            continue;
        };
        for item in tree.range(..=last) {
            let (key, value) = item?;
            visit(&name, &key, &value)?;
            writer.entry(&key, &value)?;
            entries += 1;
        }
    }
    Ok(entries)
}

struct Writer<'a, W: Write> {
    out: &'a mut W,
}

impl<W: Write> Writer<'_, W> {
    fn header(&mut self) -> Result<(), StoreError> {
        self.bytes(MAGIC)?;
        self.bytes(&VERSION.to_be_bytes())
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.bytes(&[ENTRY])?;
        self.field(key)?;
        self.field(value)
    }

    fn end(&mut self) -> Result<(), StoreError> {
        self.bytes(&[END])?;
        self.out.flush().map_err(io_error)
    }

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
            ENTRY | DELETE => {
                let current = tree
                    .as_ref()
                    .ok_or_else(|| malformed("an entry before any tree"))?;
                let key = reader.field()?;
                if tag == ENTRY {
                    batch.insert(key, reader.field()?);
                } else {
                    batch.remove(key);
                }
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
            org: None,
            password_hash: String::new(),
            disabled: false,
            created_at: time::OffsetDateTime::now_utc(),
        }
    }

    fn restored(copy: &[u8]) -> sled::Db {
        let db = sled::Config::new().temporary(true).open().unwrap();
        import_into(&db, &mut &copy[..]).unwrap();
        db
    }

    fn len(db: &sled::Db, tree: &str) -> usize {
        db.open_tree(tree).unwrap().len()
    }

    /// Snapshots taken while `write` runs in a loop on another thread.
    fn snapshots_during(
        store: &Arc<Store>,
        write: impl Fn(&Store, usize) + Send + 'static,
    ) -> Vec<Vec<u8>> {
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started) = std::sync::mpsc::channel();
        let writer = {
            let (store, stop) = (Arc::clone(store), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    write(&store, n);
                    if n == 0 {
                        started_tx.send(()).unwrap();
                    }
                    n += 1;
                    // A steady load, not a spinning one that starves the other tests.
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
                n
            })
        };
        started.recv().unwrap();
        let mut copies = Vec::new();
        let mut changed = 0;
        for _ in 0..5 {
            let mut out = Vec::new();
            changed += store.snapshot(&mut out).unwrap().changed;
            copies.push(out);
        }
        stop.store(true, Ordering::Relaxed);
        assert!(
            writer.join().unwrap() > 1,
            "the writer ran during the snapshots"
        );
        assert!(changed > 0, "keys changed during the copies");
        copies
    }

    #[test]
    fn a_snapshot_taken_during_writes_is_one_point_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(Store::open(&dir.path().join("data"), 8, "DB", Metrics::new()).unwrap());
        for n in 0..2_000 {
            store.create_user(&user(1_000_000 + n)).unwrap();
        }
        // An account is two entries in two trees, written in one transaction: a copy that is not
        // one point in time shows the trees with different lengths.
        let copies = snapshots_during(&store, |store, n| store.create_user(&user(n)).unwrap());
        for (i, copy) in copies.iter().enumerate() {
            let db = restored(copy);
            assert!(len(&db, names::users) >= 2_000);
            assert_eq!(
                len(&db, names::users),
                len(&db, names::users_by_email),
                "copy {i} is one point in time across trees"
            );
        }
        let db = restored(copies.last().unwrap());
        let users = db.open_tree(names::users).unwrap();
        for item in &users {
            let (key, value) = item.unwrap();
            assert_eq!(store.trees.users.get(&key).unwrap(), Some(value));
        }
    }

    #[test]
    fn a_snapshot_sees_ticket_transactions_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(Store::open(&dir.path().join("data"), 8, "DB", Metrics::new()).unwrap());
        // Each transaction takes the next item number and writes a sync entry under it: in a
        // consistent copy the counter equals the number of entries.
        let step = |store: &Store, _| {
            store
                .transact(|tx| {
                    let n = tx.next_item()?;
                    tx.put_sync(&format!("item-{n}"), &n)
                })
                .unwrap();
        };
        for n in 0..2_000 {
            step(&store, n);
        }
        for (i, copy) in snapshots_during(&store, step).iter().enumerate() {
            let db = restored(copy);
            let counter = db
                .open_tree(names::meta)
                .unwrap()
                .get(super::super::meta::ITEM_SEQ)
                .unwrap()
                .and_then(|v| super::super::keys::read_u64(&v))
                .unwrap();
            assert_eq!(
                usize::try_from(counter).unwrap(),
                len(&db, names::sync),
                "copy {i} is one point in time across trees"
            );
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
        export(&db, &mut out).unwrap();

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
