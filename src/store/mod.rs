//! The embedded store: sled trees with explicit key encoding and JSON values.
//!
//! Every change to a ticket (the ticket, its indexes, its history event, its outbox entry, its
//! idempotency record) commits in one sled transaction through [`Store::transact`]; a caller that
//! answers 2xx first awaits [`Store::durable`].

mod admin;
mod blobs;
mod catalogue;
mod commit;
pub mod keys;
mod migrations;
mod orgs;
pub mod outbox;
mod queries;
pub mod snapshot;
mod tickets;
pub mod users;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

pub use admin::AuditEntry;
pub use blobs::{BlobWriter, StagedBlob, StoredBlob};
pub use outbox::{OutboxEntry, OutboxOp};
pub use queries::{ListFilter, MoreFilter, Scope, TicketPage};
pub use snapshot::Snapshot;
pub use tickets::{IdempotentReply, TicketTx};
pub use users::TokenRecord;

use crate::domain::DomainError;
use crate::metrics::Metrics;

/// Bumped when a stored shape changes in a way `#[serde(default)]` cannot absorb; see `migrations`.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record {tree}/{key} cannot be decoded: {source}")]
    Decode {
        tree: &'static str,
        key: String,
        source: serde_json::Error,
    },
    #[error("file error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("flush to disk failed: {0}")]
    Durability(String),
    #[error(
        "schema version {found} is newer than this deskbridge understands ({supported}); install a newer version"
    )]
    TooNew { found: u32, supported: u32 },
    #[error("migration to schema version {version} failed: {message}")]
    Migration { version: u32, message: String },
    #[error("store export is damaged: {0}")]
    Malformed(String),
}

/// The outcome of an operation: a broken rule, or a failing store.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Rule(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for OpError {
    fn from(e: sled::Error) -> Self {
        OpError::Store(e.into())
    }
}

/// Aborts a transaction with an [`OpError`]; sled retries conflicts by itself.
pub type TxResult<T> = Result<T, ConflictableTransactionError<OpError>>;

pub(crate) fn abort<T>(e: impl Into<OpError>) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e.into()))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records serialize: plain structs with string keys")
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Decode {
        tree,
        key: hex::encode(key),
        source,
    })
}

macro_rules! tree_names {
    ($($field:ident => $name:literal),+ $(,)?) => {
        /// The typed trees. Names carry a version suffix so a reshaped tree can live beside the old one
        /// during a migration.
        #[derive(Clone)]
        pub(crate) struct Trees { $(pub(crate) $field: sled::Tree),+ }

        impl Trees {
            fn open(db: &sled::Db) -> sled::Result<Trees> {
                Ok(Trees { $($field: db.open_tree($name)?),+ })
            }
        }

        /// Tree names as constants named after their `Trees` field, for error messages.
        #[allow(non_upper_case_globals, dead_code, reason = "one constant per Trees field, named alike")]
        pub(crate) mod names { $(pub(crate) const $field: &str = $name;)+ }
    };
}

tree_names! {
    meta => "meta",
    users => "users.v1",
    users_by_email => "users_by_email.v1",
    users_by_identity => "users_by_identity.v1",
    tokens => "tokens.v1",
    tokens_by_user => "tokens_by_user.v1",
    tickets => "tickets.v1",
    tickets_by_activity => "tickets_by_activity.v1",
    tickets_by_requester => "tickets_by_requester.v1",
    messages => "messages.v1",
    attachments => "attachments.v1",
    events => "events.v1",
    outbox => "outbox.v1",
    idempotency => "idempotency.v1",
    dead_letters => "dead_letters.v1",
    tickets_by_sdp => "tickets_by_sdp.v1",
    sdp_seen => "sdp_seen.v1",
    sync => "sync.v1",
    details_pending => "details_pending.v1",
    settings => "settings.v1",
    audit => "audit.v1",
    orgs => "orgs.v1",
    orgs_by_name => "orgs_by_name.v1",
    orgs_by_domain => "orgs_by_domain.v1",
    tickets_by_party => "tickets_by_party.v1",
}

/// Keys of the `meta` tree.
pub(crate) mod meta {
    pub(crate) const SCHEMA_VERSION: &[u8] = b"schema_version";
    /// Last ticket number handed out.
    pub(crate) const TICKET_SEQ: &[u8] = b"seq.ticket";
    /// Last audit log entry number.
    pub(crate) const AUDIT_SEQ: &[u8] = b"seq.audit";
    /// Last id handed out to a message, attachment, event or outbox entry (one sequence for all, so
    /// their ids also order them across kinds).
    pub(crate) const ITEM_SEQ: &[u8] = b"seq.item";
    /// Entries in the outbox, kept with every change to it.
    pub(crate) const OUTBOX_LEN: &[u8] = b"count.outbox";
    /// This store's instance id (see [`super::Store::instance_id`]).
    pub(crate) const INSTANCE_ID: &[u8] = b"instance_id";
}

pub struct Store {
    db: sled::Db,
    pub(crate) trees: Trees,
    commit: commit::GroupCommit,
    data_dir: PathBuf,
    prefix: std::sync::RwLock<String>,
    pub(crate) metrics: Metrics,
    /// Woken when a change was queued for SDP, so delivery starts at once.
    outbox_signal: tokio::sync::Notify,
    /// Every write holds it shared; a snapshot holds it exclusively for its start and its end.
    writes: std::sync::RwLock<()>,
    /// Keys written while a snapshot copies the trees.
    journal: Journal,
    /// One snapshot at a time: each needs room for a full copy of the store.
    snapshots: std::sync::Arc<tokio::sync::Semaphore>,
    /// Organisations whose members see every ticket: only their tickets are listed under the
    /// organisation (the one list that reads it), so other tickets skip that index write. Ticket
    /// transactions hold it shared; [`Store::list_org`] changes it exclusively, so after a change
    /// every later transaction follows the new rule.
    org_listed: std::sync::RwLock<std::collections::HashSet<crate::domain::OrgId>>,
}

/// While a snapshot copies the trees, every write records which key it changes (tree name, key), so
/// the snapshot can copy those keys again at its end. Writers record under the write gate, and a
/// snapshot starts and stops the journal holding the gate exclusively, so no write slips between.
#[derive(Default)]
pub(crate) struct Journal {
    active: std::sync::atomic::AtomicBool,
    touched: std::sync::Mutex<std::collections::BTreeSet<(&'static str, Vec<u8>)>>,
}

impl Journal {
    pub(crate) fn record(&self, tree: &'static str, key: &[u8]) {
        if self.active.load(std::sync::atomic::Ordering::Acquire) {
            self.keys().insert((tree, key.to_vec()));
        }
    }

    fn keys(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<(&'static str, Vec<u8>)>> {
        self.touched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn start(&self) {
        self.keys().clear();
        self.active
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Stops recording and returns what was recorded.
    fn stop(&self) -> std::collections::BTreeSet<(&'static str, Vec<u8>)> {
        self.active
            .store(false, std::sync::atomic::Ordering::Release);
        std::mem::take(&mut *self.keys())
    }
}

/// The sled settings of every store, so an imported database is laid out like a live one.
pub(crate) fn sled_config(path: &Path, cache_mb: u64) -> sled::Config {
    sled::Config::new()
        .path(path)
        .cache_capacity(cache_mb * 1024 * 1024)
        .mode(sled::Mode::LowSpace)
}

impl Store {
    /// Opens (or creates) the store under `data_dir`, running migrations when the schema is older.
    pub fn open(
        data_dir: &Path,
        cache_mb: u64,
        ticket_prefix: &str,
        metrics: Metrics,
    ) -> Result<Store, StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
        let db_path = data_dir.join("db");
        let db = sled_config(&db_path, cache_mb).open()?;
        migrations::run(&db, data_dir)?;
        let trees = Trees::open(&db)?;
        if trees.meta.get(meta::OUTBOX_LEN)?.is_none() {
            // Stores written before the count existed: count once.
            let len = trees.outbox.len() as u64;
            trees.meta.insert(meta::OUTBOX_LEN, &keys::u64_be(len))?;
        }
        blobs::prepare(data_dir)?;
        let commit = commit::GroupCommit::start(db.clone(), metrics.commit_batches.clone())
            .map_err(io(data_dir))?;
        let prefix = std::sync::RwLock::new(ticket_prefix.to_owned());
        let orgs: Vec<crate::domain::Organization> = Store::scan(&trees.orgs, names::orgs, &[])?;
        let org_listed = orgs
            .iter()
            .filter(|o| o.sharing == crate::domain::Sharing::Organization)
            .map(|o| o.id)
            .collect();
        Ok(Store {
            db,
            trees,
            commit,
            data_dir: data_dir.to_owned(),
            prefix,
            metrics,
            outbox_signal: tokio::sync::Notify::new(),
            writes: std::sync::RwLock::new(()),
            journal: Journal::default(),
            snapshots: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
            org_listed: std::sync::RwLock::new(org_listed),
        })
    }

    /// Held by every write for its duration; see [`Store::snapshot`].
    pub(crate) fn write_gate(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.writes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The right to take a snapshot, unless one is being taken or sent already.
    pub fn try_snapshot_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        std::sync::Arc::clone(&self.snapshots)
            .try_acquire_owned()
            .ok()
    }

    /// An id generated once for this store, so two appliances on one SDP tell their notes and
    /// requests apart. Kept in backups: a restored appliance goes on recognising its own.
    pub fn instance_id(&self) -> Result<String, StoreError> {
        let read = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        if let Some(id) = self.trees.meta.get(meta::INSTANCE_ID)? {
            return Ok(read(&id));
        }
        let fresh = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let _gate = self.write_gate();
        self.journal.record(names::meta, meta::INSTANCE_ID);
        let swapped = self.trees.meta.compare_and_swap(
            meta::INSTANCE_ID,
            None::<&[u8]>,
            Some(fresh.as_bytes()),
        )?;
        self.trees.meta.flush()?;
        // Another caller may have generated it first: theirs stands.
        Ok(match swapped {
            Ok(()) => fresh,
            Err(e) => e.current.map_or(fresh, |v| read(&v)),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Waits until every change made before the call is flushed to disk (shared with other writers).
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.commit.wait().await.map_err(StoreError::Durability)
    }

    pub fn outbox_signal(&self) -> &tokio::sync::Notify {
        &self.outbox_signal
    }

    /// Flushes synchronously; used at shutdown.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    pub(crate) fn get<T: DeserializeOwned>(
        tree: &sled::Tree,
        name: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        tree.get(key)?
            .map(|bytes| decode(name, key, &bytes))
            .transpose()
    }

    /// Decodes every value under `prefix`, in key order.
    pub(crate) fn scan<T: DeserializeOwned>(
        tree: &sled::Tree,
        name: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        tree.scan_prefix(prefix)
            .map(|item| {
                let (k, v) = item?;
                decode(name, &k, &v)
            })
            .collect()
    }

    fn counter(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .trees
            .meta
            .get(key)?
            .and_then(|v| keys::read_u64(&v))
            .unwrap_or(0))
    }

    /// Number of tickets ever created (tickets are never deleted).
    pub fn ticket_count(&self) -> Result<u64, StoreError> {
        self.counter(meta::TICKET_SEQ)
    }
}

/// Reads and bumps a counter inside a transaction.
pub(crate) fn next_in(meta: &TransactionalTree, key: &[u8]) -> TxResult<u64> {
    let next = meta.get(key)?.and_then(|v| keys::read_u64(&v)).unwrap_or(0) + 1;
    meta.insert(key, &keys::u64_be(next))?;
    Ok(next)
}

pub(crate) fn map_tx<T>(result: Result<T, TransactionError<OpError>>) -> Result<T, OpError> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => OpError::Store(e.into()),
    })
}
