//! The SDP connection as the rest of the appliance sees it: one [`SyncHandle`], built by `app`, that
//! owns the settings in force, the running client (one request budget, one cached OAuth token) and
//! the sync supervisor. Console settings put in force restart the sync through it; the console's
//! connection test and SDP's lists go through the running client, so they spend from the same budget.
//! Also the admin's sync use cases: health, poll now, dead letters.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::{Actor as _, Addr};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{AppState, Caller};
use crate::actors::sync::{GetStats, Kick, ReadRequest, Stop, SweepNow, SyncNow, SyncSupervisor};
use crate::config::SdpConfig;
use crate::domain::Status;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::sdp::budget::BudgetView;
use crate::sdp::{Budget, Lane, SdpClient, SdpError};
use crate::store::{OutboxEntry, Store};
use crate::sync::PortalRules;
use crate::sync::{
    BackfillProgress, PollCursor, SyncCtx, SyncStats, mapping::Mapping, state as keys,
};
use crate::tickets::TicketEvent;

/// How long the console waits for SDP when it reads lists or tests the connection.
const CONSOLE_WAIT: Duration = Duration::from_secs(15);

type Publish = Arc<dyn Fn(TicketEvent) + Send + Sync>;

/// The SDP settings in force and what runs on them.
struct Running {
    sdp: Arc<SdpConfig>,
    client: Option<Arc<SdpClient>>,
    supervisor: Option<Addr<SyncSupervisor>>,
}

pub struct SyncHandle {
    store: Arc<Store>,
    publish: Publish,
    portal: PortalRules,
    /// One budget for the life of the process, whichever client spends it.
    budget: Arc<Budget>,
    running: RwLock<Running>,
}

impl SyncHandle {
    /// Starts the sync when `sdp.base_url` is set; without it, changes wait in the outbox.
    pub fn start(
        sdp: &SdpConfig,
        store: Arc<Store>,
        publish: impl Fn(TicketEvent) + Send + Sync + 'static,
        portal: PortalRules,
    ) -> anyhow::Result<SyncHandle> {
        let handle = SyncHandle {
            store,
            publish: Arc::new(publish),
            portal,
            budget: Arc::new(Budget::new(sdp.max_requests_per_minute)),
            running: RwLock::new(Running {
                sdp: Arc::new(sdp.clone()),
                client: None,
                supervisor: None,
            }),
        };
        if handle.store.sync_value::<bool>(keys::PAUSED)? == Some(true) {
            handle.budget.pause();
        }
        let running = handle.launch(sdp)?;
        *handle.write() = running;
        Ok(handle)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Running> {
        self.running
            .read()
            .expect("sync lock is never poisoned: no panics while held")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Running> {
        self.running
            .write()
            .expect("sync lock is never poisoned: no panics while held")
    }

    fn launch(&self, sdp: &SdpConfig) -> anyhow::Result<Running> {
        let mut running = Running {
            sdp: Arc::new(sdp.clone()),
            client: None,
            supervisor: None,
        };
        if !sdp.enabled() {
            tracing::warn!("sdp.base_url is not set: sync is off and changes wait in the outbox");
            return Ok(running);
        }
        // New settings (new credentials, maybe a new address): an earlier outage says nothing.
        self.budget.reset();
        let client = SdpClient::new(sdp, Arc::clone(&self.budget))
            .context("cannot set up the SDP client (sdp.*)")?;
        let client = Arc::new(client);
        let instance = if sdp.instance_id.is_empty() {
            self.store
                .instance_id()
                .context("cannot read the store's instance id")?
        } else {
            sdp.instance_id.clone()
        };
        let publish = Arc::clone(&self.publish);
        let ctx = SyncCtx {
            store: Arc::clone(&self.store),
            sdp: Arc::clone(&client),
            budget: Arc::clone(&self.budget),
            mapping: Mapping {
                config: sdp.mapping.clone(),
                instance,
                catalog: crate::sync::mapping::StatusCatalog::default(),
            },
            config: sdp.clone(),
            portal: self.portal,
            publish: Box::new(move |event| publish(event)),
            stats: std::sync::Mutex::default(),
        };
        running.client = Some(client);
        running.supervisor = Some(SyncSupervisor::new(ctx).start());
        Ok(running)
    }

    /// The SDP settings in force: the configuration with the console's saved values laid over it.
    pub fn sdp(&self) -> Arc<SdpConfig> {
        Arc::clone(&self.read().sdp)
    }

    /// Whether the sync runs (an SDP base URL is set).
    pub fn is_running(&self) -> bool {
        self.read().supervisor.is_some()
    }

    fn supervisor(&self) -> Option<Addr<SyncSupervisor>> {
        self.read().supervisor.clone()
    }

    pub(crate) fn client(&self) -> Option<Arc<SdpClient>> {
        self.read().client.clone()
    }

    /// Puts new SDP settings in force without a restart: the running sync stops (an attempt cut
    /// short is looked up in SDP before it is repeated) and a new one starts with them.
    pub async fn apply(&self, sdp: SdpConfig) -> anyhow::Result<()> {
        let next = self.launch(&sdp)?;
        let previous = std::mem::replace(&mut *self.write(), next);
        if let Some(previous) = previous.supervisor {
            let _ = previous.send(Stop).await;
        }
        Ok(())
    }

    /// Stops the sync (at shutdown).
    pub async fn stop(&self) {
        let supervisor = self.write().supervisor.take();
        if let Some(supervisor) = supervisor {
            let _ = supervisor.send(Stop).await;
        }
    }

    /// Polls SDP now; false when the sync is off.
    pub fn poll_now(&self) -> bool {
        self.supervisor().map(|s| s.do_send(SyncNow)).is_some()
    }

    /// Reconciles every open linked ticket now; false when the sync is off.
    pub fn sweep_now(&self) -> bool {
        self.supervisor().map(|s| s.do_send(SweepNow)).is_some()
    }

    /// Reads one request soon for `lane` (a webhook's hint, a person waiting); false when the sync
    /// is off.
    pub fn hint(&self, lane: Lane, request_id: String) -> bool {
        let Some(supervisor) = self.supervisor() else {
            return false;
        };
        supervisor.do_send(ReadRequest {
            lane,
            id: request_id,
        });
        true
    }

    /// Stops every call to SDP until [`SyncHandle::resume`], across restarts.
    pub async fn pause(&self) -> ApiResult<()> {
        self.store
            .put_sync_values(&[(keys::PAUSED, serde_json::json!(true))])?;
        self.store.durable().await?;
        self.budget.pause();
        tracing::info!("sync paused");
        Ok(())
    }

    pub async fn resume(&self) -> ApiResult<()> {
        self.store
            .put_sync_values(&[(keys::PAUSED, serde_json::json!(false))])?;
        self.store.durable().await?;
        self.budget.resume();
        tracing::info!("sync resumed");
        Ok(())
    }

    pub fn budget(&self) -> BudgetView {
        self.budget.view()
    }

    /// Wakes delivery (after an admin retried a dead letter).
    pub fn kick(&self) {
        if let Some(s) = self.supervisor() {
            s.do_send(Kick);
        }
    }

    pub async fn stats(&self) -> Option<SyncStats> {
        let supervisor = self.supervisor()?;
        supervisor.send(GetStats).await.ok()
    }

    /// Tries what the sync needs with the settings in force: signing in (reading a list), the
    /// statuses list, reading a request.
    pub async fn test_connection(&self) -> Vec<Check> {
        let Some(client) = self.client() else {
            return vec![Check::NotConfigured];
        };
        let calls = client.on(Lane::Interactive);
        let mut checks = Vec::new();
        match with_deadline(calls.lookups("statuses")).await {
            Ok(statuses) => {
                checks.push(Check::Auth(Ok(())));
                checks.push(Check::Statuses(names(&statuses)));
            }
            Err(e) => {
                checks.push(Check::Auth(Err(e)));
                return checks;
            }
        }
        let list_info =
            json!({"row_count": 1, "start_index": 1, "sort_field": "id", "sort_order": "desc"});
        let read = match with_deadline(calls.list_requests(&list_info, &[])).await {
            Ok(page) => match page.rows.first() {
                Some(first) => with_deadline(calls.get_request(&first.id))
                    .await
                    .map(|r| Some(r.display_id.unwrap_or(r.id))),
                None => Ok(None),
            },
            Err(e) => Err(e),
        };
        checks.push(Check::Read(read));
        checks
    }

    /// SDP's reference lists by name (`statuses`, `priorities`, `request_types`, `categories`,
    /// `request_templates`), or why they cannot be read.
    pub async fn lookups(&self) -> Result<BTreeMap<&'static str, Vec<Value>>, String> {
        let client = self
            .client()
            .ok_or_else(|| "no SDP base URL is set".to_owned())?;
        let calls = client.on(Lane::Interactive);
        let mut lists = BTreeMap::new();
        for path in LOOKUPS {
            let rows = with_deadline(calls.lookups(path)).await?;
            lists.insert(path, rows);
        }
        Ok(lists)
    }
}

/// The reference lists the mapping is chosen from.
pub const LOOKUPS: [&str; 5] = [
    "statuses",
    "priorities",
    "request_types",
    "categories",
    "request_templates",
];

/// The `name`s of a reference list's rows.
pub fn names(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
}

/// What an SDP status shows as without a console choice: the built-in mapping by name, else
/// its flags (`in_progress`, `stop_timer`) as the status list gives them.
pub fn status_default(row: &Value) -> Status {
    let name = row["name"].as_str().unwrap_or_default();
    crate::config::MappingConfig::default()
        .statuses
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| Status::parse(v))
        .unwrap_or_else(|| {
            crate::sync::mapping::Mapping::by_flags(
                row["in_progress"].as_bool(),
                row["stop_timer"].as_bool(),
            )
        })
}

async fn with_deadline<T>(
    call: impl std::future::Future<Output = Result<T, SdpError>>,
) -> Result<T, String> {
    match tokio::time::timeout(CONSOLE_WAIT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CONSOLE_WAIT.as_secs())),
    }
}

/// One result of the connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// No SDP base URL is set.
    NotConfigured,
    /// SDP accepted the credential (or why not).
    Auth(Result<(), String>),
    /// The statuses SDP knows.
    Statuses(Vec<String>),
    /// A request could be read: its number, or `None` when SDP has none yet.
    Read(Result<Option<String>, String>),
}

impl Check {
    pub fn ok(&self) -> bool {
        match self {
            Check::NotConfigured => false,
            Check::Auth(r) => r.is_ok(),
            Check::Statuses(names) => !names.is_empty(),
            Check::Read(r) => r.is_ok(),
        }
    }
}

/// Sync health: queue, dead letters, SDP's reachability and the budget, poll and backfill.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncView {
    /// Whether `sdp.base_url` is set and the sync runs.
    pub enabled: bool,
    pub queue_depth: usize,
    /// Age in seconds of the oldest undelivered change.
    pub oldest_pending_secs: Option<i64>,
    /// SDP's reachability (or an admin's pause) and the call budget by lane.
    pub budget: BudgetView,
    pub poll: Option<PollCursor>,
    pub backfill: Option<BackfillProgress>,
    pub stats: Option<SyncStats>,
    pub dead_letters: Vec<OutboxEntry>,
}

/// The sync's health as the API and the console show it.
pub async fn health(state: &AppState) -> ApiResult<SyncView> {
    let pending = state.store.outbox_after(0, 1)?;
    let now = time::OffsetDateTime::now_utc();
    Ok(SyncView {
        enabled: state.sync.is_running(),
        queue_depth: state.store.outbox_len(),
        oldest_pending_secs: pending.first().map(|e| (now - e.at).whole_seconds()),
        budget: state.sync.budget(),
        poll: state.store.sync_value(keys::POLL)?,
        backfill: state.store.sync_value(keys::BACKFILL)?,
        stats: state.sync.stats().await,
        dead_letters: state.store.dead_letters()?,
    })
}

pub fn sync_off() -> ApiError {
    ApiError::new(
        ErrorCode::SyncOff,
        "sync with ServiceDesk Plus is not configured",
    )
}

/// Polls SDP now.
pub fn poll_now(state: &AppState) -> ApiResult<()> {
    if state.sync.poll_now() {
        Ok(())
    } else {
        Err(sync_off())
    }
}

/// Reconciles every open linked ticket with SDP now.
pub fn sweep_now(state: &AppState) -> ApiResult<()> {
    if state.sync.sweep_now() {
        Ok(())
    } else {
        Err(sync_off())
    }
}

/// What an admin does with a change SDP refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterAction {
    /// Put it back in the queue, due now.
    Retry,
    /// Drop it for good; the ticket no longer waits for it.
    Discard,
}

impl DeadLetterAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterAction::Retry => "retry",
            DeadLetterAction::Discard => "discard",
        }
    }
}

/// Retries or discards a dead letter, recorded in the audit log.
pub async fn handle_dead_letter(
    state: &AppState,
    admin: &Caller,
    seq: u64,
    action: DeadLetterAction,
) -> ApiResult<()> {
    let done = match action {
        DeadLetterAction::Retry => crate::tickets::delivery::retry_dead_letter(&state.store, seq)?,
        DeadLetterAction::Discard => {
            crate::tickets::delivery::discard_dead_letter(&state.store, seq)?
        }
    };
    if !done {
        return Err(ApiError::new(
            ErrorCode::DeadLetterNotFound,
            "no such dead letter",
        ));
    }
    let verb = action.as_str();
    state.store.audit(
        &admin.user.email,
        &format!("dead_letter.{verb}"),
        &seq.to_string(),
    )?;
    state.store.durable().await?;
    tracing::info!(admin = %admin.user.email, seq, action = verb, "dead letter handled");
    state.sync.kick();
    Ok(())
}

/// Retries or discards every dead letter, or every one of one ticket; recorded in the audit log.
/// Returns how many were handled.
pub async fn handle_dead_letters(
    state: &AppState,
    admin: &Caller,
    action: DeadLetterAction,
    ticket: Option<&str>,
) -> ApiResult<usize> {
    let only = match ticket {
        Some(number) => Some(
            state
                .store
                .ticket_by_number(number)?
                .ok_or_else(ApiError::ticket_not_found)?
                .id,
        ),
        None => None,
    };
    let letters: Vec<u64> = state
        .store
        .dead_letters()?
        .into_iter()
        .filter(|e| only.is_none_or(|t| e.ticket == t))
        .map(|e| e.seq)
        .collect();
    let mut done = 0;
    // Oldest first, so each ticket's changes go back in their order.
    for seq in &letters {
        let handled = match action {
            DeadLetterAction::Retry => {
                crate::tickets::delivery::retry_dead_letter(&state.store, *seq)?
            }
            DeadLetterAction::Discard => {
                crate::tickets::delivery::discard_dead_letter(&state.store, *seq)?
            }
        };
        done += usize::from(handled);
    }
    let verb = action.as_str();
    let scope = ticket.unwrap_or("all");
    state.store.audit(
        &admin.user.email,
        &format!("dead_letters.{verb}"),
        &format!("{scope}: {done}"),
    )?;
    state.store.durable().await?;
    tracing::info!(admin = %admin.user.email, done, action = verb, scope, "dead letters handled");
    state.sync.kick();
    Ok(done)
}

/// An admin's pause (nothing is sent to or read from SDP) or resume.
pub async fn set_paused(state: &AppState, admin: &Caller, paused: bool) -> ApiResult<()> {
    if !state.sync.is_running() {
        return Err(sync_off());
    }
    if paused {
        state.sync.pause().await?;
    } else {
        state.sync.resume().await?;
    }
    let action = if paused {
        "sync.paused"
    } else {
        "sync.resumed"
    };
    state.store.audit(&admin.user.email, action, "")?;
    state.store.durable().await?;
    Ok(())
}
