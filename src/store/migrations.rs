//! Schema versions. On open, an older store is exported to `data_dir/backups/` first, then each
//! migration step runs in order; a newer store is refused so a downgrade cannot damage data.

use std::path::Path;

use super::{SCHEMA_VERSION, StoreError, meta};

/// One step: upgrades a store at `version - 1` to `version`.
pub(crate) struct Migration {
    pub version: u32,
    pub run: fn(&sled::Db) -> Result<(), String>,
}

/// Steps from version 1 on.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 2,
    run: super::orgs::migrate_to_records,
}];

pub(crate) fn run(db: &sled::Db, data_dir: &Path) -> Result<(), StoreError> {
    run_with(db, data_dir, SCHEMA_VERSION, MIGRATIONS)
}

fn stored_version(db: &sled::Db) -> Result<Option<u32>, StoreError> {
    let meta = db.open_tree(super::names::meta)?;
    Ok(meta
        .get(meta::SCHEMA_VERSION)?
        .and_then(|v| v.as_ref().try_into().ok().map(u32::from_be_bytes)))
}

fn set_version(db: &sled::Db, version: u32) -> Result<(), StoreError> {
    db.open_tree(super::names::meta)?
        .insert(meta::SCHEMA_VERSION, &version.to_be_bytes())?;
    db.flush()?;
    Ok(())
}

pub(crate) fn run_with(
    db: &sled::Db,
    data_dir: &Path,
    current: u32,
    steps: &[Migration],
) -> Result<(), StoreError> {
    let Some(found) = stored_version(db)? else {
        // A new store starts at the current version.
        return set_version(db, current);
    };
    if found > current {
        return Err(StoreError::TooNew {
            found,
            supported: current,
        });
    }
    if found == current {
        return Ok(());
    }
    let export = export(db, data_dir, found)?;
    tracing::info!(from = found, to = current, export = %export.display(), "migrating store");
    for step in steps
        .iter()
        .filter(|s| s.version > found && s.version <= current)
    {
        (step.run)(db).map_err(|message| StoreError::Migration {
            version: step.version,
            message,
        })?;
        set_version(db, step.version)?;
    }
    set_version(db, current)
}

/// Writes every tree to `backups/` in the snapshot format (see `snapshot`).
fn export(db: &sled::Db, data_dir: &Path, version: u32) -> Result<std::path::PathBuf, StoreError> {
    let dir = data_dir.join("backups");
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let path = dir.join(format!("pre-migration-v{version}-{stamp}.export"));
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io)?);
    super::snapshot::export(db, &mut out)?;
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bump_a(db: &sled::Db) -> Result<(), String> {
        db.insert(b"a", b"migrated")
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn new_store_starts_current_older_store_migrates_after_export_newer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .temporary(true)
            .open()
            .unwrap();
        run_with(&db, dir.path(), 1, &[]).unwrap();
        assert_eq!(stored_version(&db).unwrap(), Some(1));

        db.insert(b"a", b"original").unwrap();
        let steps = [Migration {
            version: 2,
            run: bump_a,
        }];
        run_with(&db, dir.path(), 2, &steps).unwrap();
        assert_eq!(stored_version(&db).unwrap(), Some(2));
        assert_eq!(db.get(b"a").unwrap().unwrap().as_ref(), b"migrated");
        let exports: Vec<_> = std::fs::read_dir(dir.path().join("backups"))
            .unwrap()
            .collect();
        assert_eq!(
            exports.len(),
            1,
            "the old data was exported before migrating"
        );
        let export = std::fs::read(exports[0].as_ref().unwrap().path()).unwrap();
        assert!(export.windows(8).any(|w| w == b"original"));

        let err = run_with(&db, dir.path(), 1, &[]).unwrap_err();
        assert!(matches!(
            err,
            StoreError::TooNew {
                found: 2,
                supported: 1
            }
        ));
    }
}
