//! Two-way sync with `ServiceDesk` Plus, as plain async functions over the store and the SDP client;
//! the `SyncSupervisor` actor runs them as workers and restarts them when they fail.

pub mod inbound;
pub mod mapping;
pub mod outbound;
pub mod text;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::config::SdpConfig;
use crate::domain::lifecycle::ReopenWindow;
use crate::sdp::{SdpClient, SdpError};
use crate::store::{OpError, Store, StoreError};
use crate::tickets::TicketEvent;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Sdp(#[from] SdpError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Op(#[from] OpError),
}

/// Everything the sync workers share.
pub struct SyncCtx {
    pub store: Arc<Store>,
    pub sdp: Arc<SdpClient>,
    pub mapping: mapping::Mapping,
    pub config: SdpConfig,
    pub window: ReopenWindow,
    pub publish: Box<dyn Fn(TicketEvent) + Send + Sync>,
    pub stats: Mutex<SyncStats>,
}

/// Backlog import progress, persisted so a restart resumes where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportProgress {
    /// Requests looked at so far.
    pub walked: u64,
    /// Requests taken into the portal.
    pub imported: u64,
    /// SDP's total when the walk began, when it said.
    pub total: Option<u64>,
    /// The first full walk is over.
    pub done: bool,
}

/// In-memory health of the sync, for the console and `/api/v1/admin/sync`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SyncStats {
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_poll_ok: Option<OffsetDateTime>,
    pub last_poll_error: Option<String>,
    pub delivered: u64,
    pub delivery_errors: u64,
    pub poll_errors: u64,
    pub dead_lettered: u64,
    /// Mapping problems seen (names SDP refused, unknown statuses).
    pub mismatches: BTreeSet<String>,
}

/// Keys of the persisted sync state.
pub(crate) mod state {
    pub(crate) const WATERMARK: &str = "watermark";
    pub(crate) const IMPORT: &str = "import";
}

impl SyncCtx {
    pub(crate) fn stats(&self) -> std::sync::MutexGuard<'_, SyncStats> {
        self.stats
            .lock()
            .expect("stats lock is never poisoned: no panics while held")
    }

    pub(crate) fn mismatch(&self, what: String) {
        tracing::warn!(mismatch = %what, "sdp mapping mismatch");
        self.stats().mismatches.insert(what);
    }
}
