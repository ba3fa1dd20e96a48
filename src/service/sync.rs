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
use crate::actors::sync::{GetStats, Kick, ReadRequest, Stop, SyncNow, SyncSupervisor};
use crate::config::SdpConfig;
use crate::domain::lifecycle::ReopenWindow;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::sdp::{Pacer, SdpClient, SdpError};
use crate::store::{OutboxEntry, Store};
use crate::sync::{ImportProgress, SyncCtx, SyncStats, mapping::Mapping, state as keys};
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
    window: ReopenWindow,
    /// One budget for the life of the process, whichever client spends it.
    pacer: Arc<Pacer>,
    running: RwLock<Running>,
}

impl SyncHandle {
    /// Starts the sync when `sdp.base_url` is set; without it, changes wait in the outbox.
    pub fn start(
        sdp: &SdpConfig,
        store: Arc<Store>,
        publish: impl Fn(TicketEvent) + Send + Sync + 'static,
        window: ReopenWindow,
    ) -> anyhow::Result<SyncHandle> {
        let handle = SyncHandle {
            store,
            publish: Arc::new(publish),
            window,
            pacer: Arc::new(Pacer::new(sdp.max_requests_per_minute)),
            running: RwLock::new(Running {
                sdp: Arc::new(sdp.clone()),
                client: None,
                supervisor: None,
            }),
        };
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
        let client = SdpClient::new(sdp, Arc::clone(&self.pacer))
            .context("cannot set up the SDP client (sdp.*)")?;
        let client = Arc::new(client);
        let publish = Arc::clone(&self.publish);
        let ctx = SyncCtx {
            store: Arc::clone(&self.store),
            sdp: Arc::clone(&client),
            mapping: Mapping {
                config: sdp.mapping.clone(),
            },
            config: sdp.clone(),
            window: self.window,
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

    fn client(&self) -> Option<Arc<SdpClient>> {
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

    /// Reads one request soon (a webhook's hint); false when the sync is off.
    pub fn hint(&self, request_id: String) -> bool {
        self.supervisor()
            .map(|s| s.do_send(ReadRequest(request_id)))
            .is_some()
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
        let mut checks = Vec::new();
        match with_deadline(client.lookups("statuses")).await {
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
        let read = match with_deadline(client.list_requests(&list_info)).await {
            Ok(page) => match page.rows.first() {
                Some(first) => with_deadline(client.get_request(&first.id))
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
    pub async fn lookups(&self) -> Result<BTreeMap<&'static str, Vec<String>>, String> {
        let client = self
            .client()
            .ok_or_else(|| "no SDP base URL is set".to_owned())?;
        let mut lists = BTreeMap::new();
        for path in LOOKUPS {
            let rows = with_deadline(client.lookups(path)).await?;
            lists.insert(path, names(&rows));
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

fn names(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
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

/// Sync health: queue, dead letters, poll state, import progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncView {
    /// Whether `sdp.base_url` is set and the sync runs.
    pub enabled: bool,
    pub queue_depth: usize,
    /// Age in seconds of the oldest undelivered change.
    pub oldest_pending_secs: Option<i64>,
    pub watermark: Option<i64>,
    pub import: Option<ImportProgress>,
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
        watermark: state.store.sync_value(keys::WATERMARK)?,
        import: state.store.sync_value(keys::IMPORT)?,
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
