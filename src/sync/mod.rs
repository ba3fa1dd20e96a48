//! Two-way sync with `ServiceDesk` Plus, as plain async functions over the store and the SDP client;
//! the `SyncSupervisor` actor runs them as workers and restarts them when they fail.

pub mod backfill;
pub mod catalogue;
pub(crate) mod fate;
pub mod inbound;
pub mod mapping;
pub mod outbound;
pub(crate) mod statuses;
pub mod sweep;
pub mod text;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::config::SdpConfig;
use crate::domain::lifecycle::ReopenWindow;
use crate::sdp::{Budget, SdpClient, SdpError};
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
    /// The budget every call of `sdp` spends from (its outage state too).
    pub budget: Arc<Budget>,
    pub mapping: mapping::Mapping,
    pub config: SdpConfig,
    pub portal: PortalRules,
    pub publish: Box<dyn Fn(TicketEvent) + Send + Sync>,
    pub stats: Mutex<SyncStats>,
}

/// The portal's rules the sync applies to what SDP sends.
#[derive(Debug, Clone, Copy)]
pub struct PortalRules {
    pub window: ReopenWindow,
    /// `portal.max_attachment_bytes`: an SDP file larger than this is not taken in.
    pub max_file_bytes: u64,
}

/// Where the poll stands: `last_updated_time` and `created_time` (ms) of the newest change taken
/// in. Persisted with each page, so a restart resumes where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PollCursor {
    pub updated_ms: i64,
    pub created_ms: i64,
}

/// The backfill of SDP's existing requests: a first pass that makes a ticket from each list row of
/// a portal customer's request (100 a call), then the details of each ticket, one read at a time
/// in the lowest lane. Persisted, so a restart resumes where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackfillProgress {
    /// Requests created before this time (ms) are the backfill's; later ones the poll's.
    pub until_ms: i64,
    /// `created_time` (ms) of the last row the first pass took in.
    pub cursor_ms: Option<i64>,
    /// List rows looked at.
    pub rows_seen: u64,
    /// Tickets the first pass created.
    pub tickets_created: u64,
    /// Tickets whose details (description, messages, files) have been read since.
    pub details_fetched: u64,
    /// SDP's total of requests when the first pass began, when it said.
    pub total: Option<u64>,
    pub first_pass_done: bool,
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
    /// Seconds between the last two polls. Longer than `sdp.poll_interval_secs` means the budget
    /// left after customers' changes cannot keep up: polls stretch to fit.
    pub poll_period_secs: Option<u64>,
    pub polls_stretched: bool,
    /// Requests the last sweep could not read (SDP id → why).
    pub unreadable: std::collections::BTreeMap<String, String>,
    /// SDP files that could not be taken in yet (`<request>/attachments/<id>` → why); each is
    /// tried again when its request is next read.
    pub files_failed: std::collections::BTreeMap<String, String>,
    /// When the last reconciliation sweep finished.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_sweep_ok: Option<OffsetDateTime>,
}

/// Keys of the persisted sync state.
pub(crate) mod state {
    /// [`super::PollCursor`].
    pub(crate) const POLL: &str = "poll";
    /// [`super::BackfillProgress`].
    pub(crate) const BACKFILL: &str = "backfill";
    /// `true` while an admin has paused the sync.
    pub(crate) const PAUSED: &str = "paused";
    /// Written by earlier versions: the poll's watermark (ms) and the import walk's progress.
    pub(crate) const LEGACY_WATERMARK: &str = "watermark";
    pub(crate) const LEGACY_IMPORT: &str = "import";
}

impl SyncCtx {
    pub(crate) fn stats(&self) -> std::sync::MutexGuard<'_, SyncStats> {
        self.stats
            .lock()
            .expect("stats lock is never poisoned: no panics while held")
    }

    /// Where the backfill stands; `None` until the first poll set it up.
    pub(crate) fn backfill_progress(&self) -> Result<Option<BackfillProgress>, SyncError> {
        Ok(self.store.sync_value(state::BACKFILL)?)
    }

    pub(crate) fn mismatch(&self, what: String) {
        tracing::warn!(mismatch = %what, "sdp mapping mismatch");
        self.stats().mismatches.insert(what);
    }
}
