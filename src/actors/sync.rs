//! The sync supervisor: runs the outbound, poll, hint, sweep and backfill workers, restarts a
//! failed worker with backoff, and takes requests to poll now or to read one request (webhook
//! hints, a person waiting). Every worker's SDP calls go through the one budget, lane by lane.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, MessageResult};
use tokio::sync::{Mutex, Notify, mpsc};

use crate::sdp::Lane;
use crate::sync::{SyncCtx, SyncStats, backfill, inbound, outbound, sweep};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worker {
    Outbound,
    Poll,
    Hints,
    Sweep,
    Backfill,
}

const WORKERS: [Worker; 5] = [
    Worker::Outbound,
    Worker::Poll,
    Worker::Hints,
    Worker::Sweep,
    Worker::Backfill,
];

/// A request to read soon, and for whom.
type Hint = (Lane, String);

pub struct SyncSupervisor {
    ctx: Arc<SyncCtx>,
    poll_now: Arc<Notify>,
    sweep_now: Arc<Notify>,
    hints_tx: mpsc::UnboundedSender<Hint>,
    hints_rx: Arc<Mutex<mpsc::UnboundedReceiver<Hint>>>,
    restarts: [u32; 5],
    tasks: Vec<tokio::task::AbortHandle>,
    stopping: bool,
}

impl SyncSupervisor {
    pub fn new(ctx: SyncCtx) -> SyncSupervisor {
        let (hints_tx, hints_rx) = mpsc::unbounded_channel();
        SyncSupervisor {
            ctx: Arc::new(ctx),
            poll_now: Arc::new(Notify::new()),
            sweep_now: Arc::new(Notify::new()),
            hints_tx,
            hints_rx: Arc::new(Mutex::new(hints_rx)),
            restarts: [0; 5],
            tasks: Vec::new(),
            stopping: false,
        }
    }

    fn spawn(&mut self, worker: Worker, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        let sync = Arc::clone(&self.ctx);
        let poll_now = Arc::clone(&self.poll_now);
        let sweep_now = Arc::clone(&self.sweep_now);
        let hints = Arc::clone(&self.hints_rx);
        let me = ctx.address();
        // The worker runs as its own task so that a panic ends only the worker; the supervisor
        // hears about it and starts it again.
        let task = tokio::spawn(async move {
            match worker {
                Worker::Outbound => outbound_loop(&sync).await,
                Worker::Poll => poll_loop(&sync, &poll_now).await,
                Worker::Hints => hints_loop(&sync, &hints).await,
                Worker::Sweep => sweep_loop(&sync, &sweep_now).await,
                Worker::Backfill => backfill::run(&sync).await,
            }
        });
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push(task.abort_handle());
        actix::spawn(async move {
            let error = match task.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(format!("worker crashed: {e}")),
            };
            me.do_send(WorkerStopped { worker, error });
        });
    }
}

fn index(worker: Worker) -> usize {
    WORKERS
        .iter()
        .position(|w| *w == worker)
        .expect("every worker is in WORKERS")
}

impl Actor for SyncSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for worker in WORKERS {
            self.spawn(worker, ctx);
        }
        tracing::info!(deployment = ?self.ctx.sdp.deployment(), "sdp sync started");
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct WorkerStopped {
    worker: Worker,
    error: Option<String>,
}

impl Handler<WorkerStopped> for SyncSupervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerStopped, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        let n = &mut self.restarts[index(msg.worker)];
        *n += 1;
        let wait = outbound::backoff(*n, Duration::from_millis(500), Duration::from_mins(1));
        tracing::error!(worker = ?msg.worker, error = msg.error.as_deref().unwrap_or("ended"), restart_in = ?wait, "sync worker stopped");
        ctx.run_later(wait, move |act, ctx| act.spawn(msg.worker, ctx));
    }
}

/// Reconcile every open linked ticket now (the console's button): what the poll cannot see, such
/// as a request moved to the trash or merged, shows at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SweepNow;

impl Handler<SweepNow> for SyncSupervisor {
    type Result = ();

    fn handle(&mut self, _: SweepNow, _: &mut Context<Self>) {
        self.sweep_now.notify_one();
    }
}

/// Poll SDP now (the console's button, or a test).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncNow;

impl Handler<SyncNow> for SyncSupervisor {
    type Result = ();

    fn handle(&mut self, _: SyncNow, _: &mut Context<Self>) {
        self.poll_now.notify_one();
    }
}

/// Read one SDP request soon: a webhook's hint (the payload is never trusted as data), or a person
/// waiting for a ticket's details.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReadRequest {
    pub lane: Lane,
    pub id: String,
}

impl Handler<ReadRequest> for SyncSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ReadRequest, _: &mut Context<Self>) {
        let _ = self.hints_tx.send((msg.lane, msg.id));
    }
}

/// A snapshot of the sync's health.
#[derive(Message)]
#[rtype(result = "SyncStats")]
pub struct GetStats;

impl Handler<GetStats> for SyncSupervisor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.ctx.stats().clone())
    }
}

/// Wakes the outbound worker (after an admin retried a dead letter).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Kick;

impl Handler<Kick> for SyncSupervisor {
    type Result = ();

    fn handle(&mut self, _: Kick, _: &mut Context<Self>) {
        self.ctx.store.outbox_signal().notify_one();
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for SyncSupervisor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        // Workers stop at their next await; an attempt cut short is marked in flight, so the next
        // start looks in SDP before repeating it.
        self.stopping = true;
        for task in self.tasks.drain(..) {
            task.abort();
        }
        ctx.stop();
    }
}

async fn outbound_loop(sync: &SyncCtx) -> Result<(), crate::sync::SyncError> {
    loop {
        let (attempted, earliest) = outbound::drain(sync).await?;
        if attempted > 0 {
            continue;
        }
        let wait = earliest.map_or(Duration::from_secs(30), |at| {
            (at - time::OffsetDateTime::now_utc())
                .try_into()
                .unwrap_or(Duration::ZERO)
        });
        tokio::select! {
            () = sync.store.outbox_signal().notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn poll_loop(sync: &SyncCtx, poll_now: &Notify) -> Result<(), crate::sync::SyncError> {
    let interval = Duration::from_secs(sync.config.poll_interval_secs);
    let mut next_poll = tokio::time::Instant::now();
    let mut last_start: Option<tokio::time::Instant> = None;
    let mut failures = 0u32;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_poll) => {}
            () = poll_now.notified() => {}
        }
        let started = tokio::time::Instant::now();
        if let Some(last) = last_start {
            // A poll that had to wait for the budget stretches the period; health says so.
            let period = started - last;
            let mut stats = sync.stats();
            stats.poll_period_secs = Some(period.as_secs());
            stats.polls_stretched = period > interval + Duration::from_secs(1);
        }
        last_start = Some(started);
        // A failed poll (SDP away, a dropped connection) is retried with backoff, never later
        // than the regular interval.
        failures = if poll_once(sync).await {
            0
        } else {
            failures + 1
        };
        let wait = if failures == 0 {
            interval
        } else {
            outbound::backoff(failures, Duration::from_secs(1), interval)
        };
        next_poll = started + wait;
    }
}

/// Reads hinted requests, most urgent first, each once however often it was hinted meanwhile.
async fn hints_loop(
    sync: &SyncCtx,
    hints: &Mutex<mpsc::UnboundedReceiver<Hint>>,
) -> Result<(), crate::sync::SyncError> {
    let mut hints = hints.lock().await;
    loop {
        let Some(first) = hints.recv().await else {
            return Ok(());
        };
        let mut batch = std::collections::BTreeMap::new();
        let mut add = |(lane, id): Hint| {
            let slot = batch.entry(id).or_insert(lane);
            *slot = (*slot).min(lane);
        };
        add(first);
        while let Ok(more) = hints.try_recv() {
            add(more);
        }
        let mut ordered: Vec<(Lane, String)> = batch.into_iter().map(|(id, l)| (l, id)).collect();
        ordered.sort();
        for (lane, id) in ordered {
            if let Err(e) = inbound::read_request(sync, lane, &id).await {
                tracing::warn!(request = %id, error = %e, "reading a hinted request failed; the poll will catch it");
            }
        }
    }
}

/// One poll; whether it succeeded.
async fn poll_once(sync: &SyncCtx) -> bool {
    match inbound::poll(sync).await {
        Ok(read) => {
            sync.stats().last_poll_error = None;
            tracing::debug!(read, "sdp poll done");
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "sdp poll failed; retrying with backoff");
            let mut stats = sync.stats();
            stats.poll_errors += 1;
            stats.last_poll_error = Some(e.to_string());
            sync.store.metrics.sdp_poll_errors.inc();
            false
        }
    }
}

async fn sweep_loop(sync: &SyncCtx, now: &Notify) -> Result<(), crate::sync::SyncError> {
    let interval = Duration::from_secs(sync.config.reconcile_interval_secs);
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = now.notified() => {}
        }
        crate::sync::catalogue::refresh_if_due(sync).await;
        match sweep::sweep(sync).await {
            Ok(read) => tracing::info!(read, "sdp reconciliation sweep done"),
            Err(e) => tracing::warn!(error = %e, "sdp reconciliation sweep failed"),
        }
    }
}
