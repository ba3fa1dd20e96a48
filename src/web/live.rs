//! Live updates: `GET /events` is a Server-Sent Events stream of the changes the signed-in user may
//! see (one ticket with `?ticket=DB-000123`, else all of theirs), fed by the broadcaster. A
//! reconnecting browser sends `Last-Event-ID` and gets what it missed, or one `refresh` when that
//! is no longer known. The page reloads its live parts from the server on each event, so the HTML
//! is rendered in one place only.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{Page, PageError};
use crate::actors::broadcaster::{Published, Subscribe, Subscription};
use crate::domain::{Organization, Role, TicketId, User};
use crate::error::{ApiError, ErrorCode};
use crate::service::tickets::readable;
use crate::service::{AppState, identity};

/// A comment line this often keeps proxies from closing an idle stream, and finds a stream whose
/// browser left (writing is how a closed connection shows), so its place is given back soon.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// How often a stream checks whether the appliance is shutting down and its session still holds.
const TICK: Duration = Duration::from_millis(500);

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(events));
}

#[derive(Deserialize)]
struct LiveQuery {
    ticket: Option<String>,
}

/// Which events a stream carries.
enum Scope {
    Ticket(TicketId),
    /// A customer's: the tickets they requested, and those their organisation shares with them.
    Customer(Box<(User, Option<Organization>)>),
    Everything,
}

impl Scope {
    fn admits(&self, p: &Published) -> bool {
        match self {
            Scope::Ticket(id) => p.event.ticket == *id,
            Scope::Customer(who) => {
                let (user, org) = who.as_ref();
                p.event.requester == user.id
                    || org.as_ref().is_some_and(|o| {
                        o.admits(user, p.event.org, p.event.on.contains(&user.email))
                    })
            }
            Scope::Everything => true,
        }
    }
}

async fn events(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    query: web::Query<LiveQuery>,
) -> Result<HttpResponse, PageError> {
    let Some(caller) = page.caller.as_ref() else {
        return Ok(HttpResponse::Unauthorized()
            .content_type("text/plain; charset=utf-8")
            .body("sign in first"));
    };
    let max = state.config.portal.max_streams_per_session;
    if !state.streams.take(caller.credential, max) {
        tracing::warn!(user = %caller.user.email, max, "live stream refused: too many open");
        return Ok(ApiError::new(
            ErrorCode::TooManyStreams,
            format!("this session already has {max} live streams open; close a tab first"),
        )
        .error_response());
    }
    let slot = Slot {
        state: state.clone().into_inner(),
        credential: caller.credential,
    };
    let scope = match query.ticket.as_deref() {
        Some(number) => {
            let ticket =
                readable(&state, caller, number).map_err(|_| PageError::not_found(page.tr))?;
            Scope::Ticket(ticket.id)
        }
        None if caller.user.role == Role::Admin => Scope::Everything,
        None => Scope::Customer(Box::new((caller.user.clone(), caller.org.clone()))),
    };
    let last_event_id = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let subscription = state
        .actors
        .broadcaster
        .send(Subscribe { last_event_id })
        .await
        .map_err(|_| {
            PageError::new(
                page.tr,
                StatusCode::SERVICE_UNAVAILABLE,
                "error-unavailable",
            )
        })?;
    let stream = Stream::new(subscription, scope, slot);
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        let chunk = s.next().await?;
        Some((Ok::<_, actix_web::Error>(chunk), s))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Tells nginx-style proxies not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// A stream's place among its session's; given back when the stream ends, however it ends.
struct Slot {
    state: Arc<AppState>,
    credential: [u8; 32],
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.streams.release(&self.credential);
    }
}

struct Stream {
    sub: Subscription,
    scope: Scope,
    slot: Slot,
    queued: VecDeque<Bytes>,
    since_beat: Duration,
    /// When the session was last found still valid.
    checked: Instant,
    done: bool,
}

impl Stream {
    fn new(mut sub: Subscription, scope: Scope, slot: Slot) -> Stream {
        let mut queued = VecDeque::new();
        // Reconnect after 2 s; the default of some browsers is longer.
        queued.push_back(Bytes::from_static(b"retry: 2000\n\n"));
        if sub.gap {
            queued.push_back(refresh());
        }
        let missed = std::mem::take(&mut sub.missed);
        let mut stream = Stream {
            sub,
            scope,
            slot,
            queued,
            since_beat: Duration::ZERO,
            checked: Instant::now(),
            done: false,
        };
        for p in &missed {
            stream.offer(p);
        }
        stream
    }

    fn offer(&mut self, p: &Published) {
        if self.scope.admits(p) {
            let data = serde_json::json!({
                "number": p.event.number,
                "kind": p.event.kind.as_str(),
                "status": p.event.status.as_str(),
            });
            let id = self.sub.id_of(p);
            self.queued.push_back(Bytes::from(format!(
                "id: {id}\nevent: change\ndata: {data}\n\n"
            )));
        }
    }

    /// The next chunk to send; `None` ends the stream (shutdown or the broadcaster gone).
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.queued.pop_front() {
                return Some(chunk);
            }
            let state = &self.slot.state;
            if self.done || !state.is_ready() {
                return None;
            }
            // Sign-out, a password change or reset, and disabling end the session: the stream
            // ends with it, within a tick.
            if self.checked.elapsed() >= TICK {
                if !identity::still_valid(state, &self.slot.credential) {
                    return None;
                }
                self.checked = Instant::now();
            }
            match tokio::time::timeout(TICK, self.sub.receiver.recv()).await {
                Ok(Ok(p)) => self.offer(&p),
                // Events were dropped for this slow reader: the page reloads everything.
                Ok(Err(RecvError::Lagged(_))) => self.queued.push_back(refresh()),
                Ok(Err(RecvError::Closed)) => self.done = true,
                Err(_) => {
                    self.since_beat += TICK;
                    if self.since_beat >= HEARTBEAT {
                        self.since_beat = Duration::ZERO;
                        return Some(Bytes::from_static(b": keep-alive\n\n"));
                    }
                }
            }
        }
    }
}

fn refresh() -> Bytes {
    Bytes::from_static(b"event: change\ndata: {\"refresh\":true}\n\n")
}
