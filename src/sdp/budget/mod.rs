//! SDP's patience as one shared budget. Every call to SDP takes a slot here first; the budget:
//!
//! - never lets more than `per_minute` calls start in any sliding window (a minute plus a second, so
//!   SDP's own count, taken when the calls arrive, never sees more either);
//! - serves waiting calls by [`Lane`], most urgent first: a customer's change never waits behind a
//!   poll or an import. Background lanes (polls, sweeps, backfill) are spaced evenly and leave a
//!   reserve of the window to the urgent ones, so an urgent call finds a slot within about a second
//!   even while background work has the budget saturated;
//! - is a circuit breaker: when SDP is unreachable, refuses the credentials or throttles, every lane
//!   stops and one probe goes out every few seconds; the first answer closes it again;
//! - can be paused by an admin.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;
use utoipa::ToSchema;

use super::SdpError;

/// The sliding window, with a second of margin for the time a call takes to reach SDP.
const WINDOW: Duration = Duration::from_secs(61);
/// First probe after SDP was found unreachable, and the longest wait between probes of an outage.
const PROBE_FIRST: Duration = Duration::from_secs(2);
const PROBE_MAX: Duration = Duration::from_secs(4);
/// Refused credentials are not fixed by waiting; probe them less often.
const PROBE_MAX_AUTH: Duration = Duration::from_secs(15);

/// Who waits for a call, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// A customer's change on its way to SDP.
    Outbox,
    /// A person waits for the answer: the console, or a customer opening a ticket whose details
    /// are still to be read.
    Interactive,
    /// SDP's trigger said a request changed.
    Hint,
    /// The regular poll for changes.
    Poll,
    /// The reconciliation sweep over open tickets.
    Sweep,
    /// Importing SDP's existing requests, then their details.
    Backfill,
}

impl Lane {
    pub const ALL: [Lane; 6] = [
        Lane::Outbox,
        Lane::Interactive,
        Lane::Hint,
        Lane::Poll,
        Lane::Sweep,
        Lane::Backfill,
    ];

    fn background(self) -> bool {
        matches!(self, Lane::Poll | Lane::Sweep | Lane::Backfill)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Outbox => "outbox",
            Lane::Interactive => "interactive",
            Lane::Hint => "hint",
            Lane::Poll => "poll",
            Lane::Sweep => "sweep",
            Lane::Backfill => "backfill",
        }
    }

    fn index(self) -> usize {
        Lane::ALL
            .iter()
            .position(|l| *l == self)
            .expect("every lane is in ALL")
    }
}

/// Whether SDP answers, as far as the budget knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Reachability {
    Reachable,
    /// Since the first failed call; `last_error` is for the admin, never for a customer.
    Unreachable {
        #[serde(with = "time::serde::rfc3339")]
        #[schema(value_type = String, format = DateTime)]
        since: OffsetDateTime,
        last_error: String,
    },
    /// An admin paused the sync.
    Paused,
}

/// The budget as sync health shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BudgetView {
    pub per_minute: u32,
    /// Calls started in the last window, and per lane since start.
    pub in_window: u32,
    pub calls: Vec<LaneCalls>,
    /// Calls waiting for a slot, per lane.
    pub waiting: Vec<LaneCalls>,
    pub sdp: Reachability,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LaneCalls {
    pub lane: Lane,
    pub calls: u64,
}

enum Breaker {
    Closed,
    Open {
        since: OffsetDateTime,
        last_error: String,
        failures: u32,
        next_probe: Instant,
        /// A probe is out; the others wait for its answer.
        probing: bool,
        auth: bool,
    },
}

struct State {
    started: VecDeque<Instant>,
    /// Waiting calls, most urgent (then oldest) first.
    queue: BTreeSet<(Lane, u64)>,
    next_ticket: u64,
    last_background: Option<Instant>,
    /// Silence SDP asked for (a throttle's `Retry-After`).
    quiet_until: Option<Instant>,
    breaker: Breaker,
    paused: bool,
    calls: [u64; 6],
}

pub struct Budget {
    per_minute: usize,
    /// Window slots background lanes leave to the urgent ones.
    reserve: usize,
    /// Least time between two background calls: the budget spread over the window.
    spacing: Duration,
    state: Mutex<State>,
    changed: Notify,
}

/// What the holder of a slot reports when its call is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// SDP answered (with data or with a refusal of the input): it is there.
    Answered,
    /// SDP did not answer, refused the credentials or throttled.
    Unavailable,
}

impl Budget {
    pub fn new(per_minute: u32) -> Budget {
        let per_minute = usize::try_from(per_minute.max(1)).unwrap_or(usize::MAX);
        let reserve = (per_minute / 10).clamp(1, 10).min(per_minute - 1);
        let spacing = WINDOW / u32::try_from(per_minute).unwrap_or(u32::MAX);
        Budget {
            per_minute,
            reserve,
            spacing,
            state: Mutex::new(State {
                started: VecDeque::new(),
                queue: BTreeSet::new(),
                next_ticket: 0,
                last_background: None,
                quiet_until: None,
                breaker: Breaker::Closed,
                paused: false,
                calls: [0; 6],
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a slot in `lane`. The returned permit must be given the call's outcome.
    pub async fn acquire(&self, lane: Lane) -> Permit<'_> {
        let me = {
            let mut s = self.lock();
            s.next_ticket += 1;
            let me = (lane, s.next_ticket);
            s.queue.insert(me);
            me
        };
        // Leaves the queue even when the waiting future is dropped (a stop, a timeout).
        let mut guard = QueueGuard {
            budget: self,
            me: Some(me),
        };
        loop {
            let notified = self.changed.notified();
            let wait = {
                let mut s = self.lock();
                match self.try_take(&mut s, me) {
                    Ok(probe) => {
                        guard.me = None;
                        s.queue.remove(&me);
                        s.calls[lane.index()] += 1;
                        drop(s);
                        // The next in line may go now.
                        self.changed.notify_waiters();
                        return Permit {
                            budget: self,
                            probe,
                            done: false,
                        };
                    }
                    Err(wait) => wait,
                }
            };
            match wait {
                Some(until) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(until) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Takes a slot for `me` when it may go now (`Ok(probe?)`); otherwise says until when to wait
    /// at most (`None`: until something changes).
    fn try_take(&self, s: &mut State, me: (Lane, u64)) -> Result<bool, Option<Instant>> {
        let now = Instant::now();
        if s.paused || s.queue.first() != Some(&me) {
            return Err(None);
        }
        if let Some(until) = s.quiet_until {
            if until > now {
                return Err(Some(until));
            }
            s.quiet_until = None;
        }
        let mut probe = false;
        if let Breaker::Open {
            next_probe,
            probing,
            ..
        } = &mut s.breaker
        {
            if *probing {
                return Err(None);
            }
            if *next_probe > now {
                return Err(Some(*next_probe));
            }
            *probing = true;
            probe = true;
        }
        while s
            .started
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            s.started.pop_front();
        }
        let lane = me.0;
        let room = if lane.background() {
            self.per_minute - self.reserve
        } else {
            self.per_minute
        };
        let undo_probe = |s: &mut State| {
            if let Breaker::Open { probing, .. } = &mut s.breaker {
                *probing = false;
            }
        };
        if s.started.len() >= room {
            if probe {
                undo_probe(s);
            }
            let oldest = s.started[s.started.len() - room];
            return Err(Some(oldest + WINDOW));
        }
        if lane.background()
            && let Some(last) = s.last_background
            && last + self.spacing > now
        {
            if probe {
                undo_probe(s);
            }
            return Err(Some(last + self.spacing));
        }
        if lane.background() {
            s.last_background = Some(now);
        }
        s.started.push_back(now);
        Ok(probe)
    }

    fn report(&self, outcome: Outcome, error: Option<&SdpError>, probe: bool) {
        let mut s = self.lock();
        match outcome {
            Outcome::Answered => {
                if let Breaker::Open { since, .. } = &s.breaker {
                    let down = OffsetDateTime::now_utc() - *since;
                    tracing::info!(
                        down_secs = down.whole_seconds(),
                        "ServiceDesk Plus answers again"
                    );
                }
                s.breaker = Breaker::Closed;
            }
            Outcome::Unavailable => {
                let message = error.map_or_else(|| "no answer".to_owned(), ToString::to_string);
                let auth = matches!(error, Some(SdpError::Auth(_)));
                if let Some(SdpError::RateLimited {
                    retry_after: Some(wait),
                    ..
                }) = error
                {
                    let until = Instant::now() + *wait;
                    s.quiet_until = Some(s.quiet_until.map_or(until, |q| q.max(until)));
                }
                let now = Instant::now();
                match &mut s.breaker {
                    Breaker::Closed => {
                        tracing::warn!(error = %message, "ServiceDesk Plus is unavailable: sync waits and probes");
                        s.breaker = Breaker::Open {
                            since: OffsetDateTime::now_utc(),
                            last_error: message,
                            failures: 1,
                            next_probe: now + PROBE_FIRST,
                            probing: false,
                            auth,
                        };
                    }
                    Breaker::Open {
                        last_error,
                        failures,
                        next_probe,
                        probing,
                        auth: was_auth,
                        ..
                    } => {
                        // Only the probe's failure moves the next probe; calls that were already
                        // out when SDP went away just confirm it.
                        if probe {
                            *failures += 1;
                            let cap = if auth { PROBE_MAX_AUTH } else { PROBE_MAX };
                            let wait = PROBE_FIRST
                                .saturating_mul(1 << (*failures - 1).min(8))
                                .min(cap);
                            *next_probe = now + wait;
                            *probing = false;
                        }
                        *last_error = message;
                        *was_auth = auth;
                    }
                }
            }
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// Stops every lane until [`Budget::resume`] (an admin's pause).
    pub fn pause(&self) {
        self.lock().paused = true;
        self.changed.notify_waiters();
    }

    pub fn resume(&self) {
        self.lock().paused = false;
        self.changed.notify_waiters();
    }

    /// Forgets an outage (new settings: new credentials, maybe a new address).
    pub fn reset(&self) {
        let mut s = self.lock();
        s.breaker = Breaker::Closed;
        s.quiet_until = None;
        drop(s);
        self.changed.notify_waiters();
    }

    pub fn is_paused(&self) -> bool {
        self.lock().paused
    }

    /// Whether SDP is known to be unavailable now.
    pub fn is_down(&self) -> bool {
        matches!(self.lock().breaker, Breaker::Open { .. })
    }

    pub fn view(&self) -> BudgetView {
        let mut s = self.lock();
        let now = Instant::now();
        while s
            .started
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            s.started.pop_front();
        }
        let sdp = match (&s.breaker, s.paused) {
            (_, true) => Reachability::Paused,
            (Breaker::Closed, false) => Reachability::Reachable,
            (
                Breaker::Open {
                    since, last_error, ..
                },
                false,
            ) => Reachability::Unreachable {
                since: *since,
                last_error: last_error.clone(),
            },
        };
        BudgetView {
            per_minute: u32::try_from(self.per_minute).unwrap_or(u32::MAX),
            in_window: u32::try_from(s.started.len()).unwrap_or(u32::MAX),
            calls: Lane::ALL
                .iter()
                .map(|l| LaneCalls {
                    lane: *l,
                    calls: s.calls[l.index()],
                })
                .collect(),
            waiting: Lane::ALL
                .iter()
                .map(|l| LaneCalls {
                    lane: *l,
                    calls: s.queue.iter().filter(|(q, _)| q == l).count() as u64,
                })
                .collect(),
            sdp,
        }
    }
}

struct QueueGuard<'a> {
    budget: &'a Budget,
    me: Option<(Lane, u64)>,
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        if let Some(me) = self.me.take() {
            self.budget.lock().queue.remove(&me);
            self.budget.changed.notify_waiters();
        }
    }
}

/// A slot for one call. Tell it how the call went; a permit dropped unreported (the call was cut
/// short) counts as answered unless it was a probe, which is then simply retried.
pub struct Permit<'a> {
    budget: &'a Budget,
    probe: bool,
    done: bool,
}

impl Permit<'_> {
    pub fn answered(mut self) {
        self.done = true;
        self.budget.report(Outcome::Answered, None, self.probe);
    }

    pub fn unavailable(mut self, error: &SdpError) {
        self.done = true;
        self.budget
            .report(Outcome::Unavailable, Some(error), self.probe);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            let mut s = self.budget.lock();
            if let Breaker::Open { probing, .. } = &mut s.breaker {
                *probing = false;
            }
            drop(s);
            self.budget.changed.notify_waiters();
        }
    }
}

/// Whether an error means SDP cannot take calls now (the breaker's business) rather than that it
/// refused this call's input.
pub(crate) fn is_unavailable(error: &SdpError) -> bool {
    match error {
        SdpError::Connect(_)
        | SdpError::NoAnswer(_)
        | SdpError::RateLimited { .. }
        | SdpError::Auth(_) => true,
        SdpError::Api { status, .. } => *status >= 500,
        SdpError::Decode(_) | SdpError::Merged { .. } => false,
    }
}

#[cfg(test)]
mod tests;
