//! Outbound: drains the outbox to SDP, in order per ticket (different tickets in parallel), with
//! exponential backoff and jitter, dead letters, and no blind repeats: after an unanswered call
//! the next attempt first looks in SDP for what the last one may have done.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tracing::Instrument;

use super::mapping::CUSTOMER_CLOSE;
use super::{SyncCtx, SyncError, fate};
use crate::domain::{Status, Ticket, TicketId};
use crate::sdp::budget::is_unavailable;
use crate::sdp::dto::Request;
use crate::sdp::error::INVALID_VALUE;
use crate::sdp::{Lane, SdpError, Upload, requester_ref};
use crate::store::{OutboxEntry, OutboxOp};
use crate::tickets::delivery::{self, Done, Failure, SdpStatus};

/// Delivers every due head-of-queue entry once. Returns how many were attempted and the earliest
/// time a waiting entry becomes due.
pub async fn drain(ctx: &SyncCtx) -> Result<(usize, Option<OffsetDateTime>), SyncError> {
    let now = OffsetDateTime::now_utc();
    let entries = ctx.store.outbox_after(0, 100_000)?;
    // A ticket with a dead letter waits until an admin retries or discards it: order is kept.
    let blocked: HashSet<TicketId> = ctx.store.dead_letters()?.iter().map(|e| e.ticket).collect();
    let mut heads = Vec::new();
    let mut seen = HashSet::new();
    let mut earliest: Option<OffsetDateTime> = None;
    for entry in entries {
        if blocked.contains(&entry.ticket) || !seen.insert(entry.ticket) {
            continue;
        }
        // A request SDP cannot take changes to (trashed, deleted, merged): its changes wait,
        // without attempts, until it is back.
        if ctx
            .store
            .ticket(entry.ticket)?
            .is_some_and(|t| t.sdp.fate.is_some())
        {
            continue;
        }
        match entry.next_attempt_at {
            Some(at) if at > now => earliest = Some(earliest.map_or(at, |e| e.min(at))),
            _ => heads.push(entry),
        }
    }
    let attempted = heads.len();
    // While SDP is away only one call (the budget's probe) can go anyway.
    let concurrency = if ctx.budget.is_down() {
        1
    } else {
        usize::try_from(ctx.config.outbound_concurrency).unwrap_or(4)
    };
    let results: Vec<Result<(), SyncError>> =
        futures_util::stream::iter(heads.into_iter().map(|entry| deliver(ctx, entry)))
            .buffer_unordered(concurrency)
            .collect()
            .await;
    for result in results {
        result?;
    }
    Ok((attempted, earliest))
}

/// Delivers one entry and records the outcome.
async fn deliver(ctx: &SyncCtx, entry: OutboxEntry) -> Result<(), SyncError> {
    let Some(ticket) = ctx.store.ticket(entry.ticket)? else {
        delivery::forget(&ctx.store, entry.seq)?;
        return Ok(());
    };
    // Mark the attempt in flight, durably, before sending: if deskbridge stops before the outcome is
    // recorded, the next attempt looks in SDP first instead of repeating the call.
    let was_unknown = entry.outcome_unknown;
    if !was_unknown {
        // Should deskbridge stop now, the call may still be running in SDP: the next start waits
        // one request timeout before it looks.
        let not_before = OffsetDateTime::now_utc() + in_flight_grace(ctx);
        delivery::begin(&ctx.store, entry.seq, not_before)?;
        ctx.store.durable().await?;
    }
    let span = tracing::info_span!("sdp_deliver", ticket = %ticket.number,
        request = ticket.sdp.request_id.as_deref().unwrap_or(""), seq = entry.seq, op = ?entry.op);
    let outcome = attempt(ctx, &ticket, &entry).instrument(span).await;
    match outcome {
        Ok(done) => {
            if let Some(event) = delivery::delivered(&ctx.store, &entry, &done)? {
                (ctx.publish)(event);
            }
            ctx.stats().delivered += 1;
            ctx.store.metrics.sdp_delivered.inc();
        }
        // SDP is away: the budget's breaker says so once; the change simply waits.
        Err(e) if is_unavailable(&e) => {
            ctx.store.metrics.sdp_delivery_errors.inc();
            record_failure(ctx, &entry, was_unknown, &e)?;
        }
        Err(e) if gone(ctx, &ticket, &e).await? => {
            tracing::info!(error = %e, "the request left SDP's ordinary path; its changes wait");
        }
        Err(e) => {
            tracing::warn!(error = %e, attempts = entry.attempts + 1, "sdp delivery failed");
            ctx.stats().delivery_errors += 1;
            ctx.store.metrics.sdp_delivery_errors.inc();
            record_failure(ctx, &entry, was_unknown, &e)?;
        }
    }
    Ok(())
}

/// Whether a refused change was refused because the request was trashed, deleted or merged; the
/// ticket then records it and its changes wait.
async fn gone(ctx: &SyncCtx, ticket: &Ticket, error: &SdpError) -> Result<bool, SyncError> {
    let Some(request_id) = &ticket.sdp.request_id else {
        return Ok(false);
    };
    let fate = match fate::after_refusal(ctx, request_id, error).await {
        Ok(fate) => fate,
        // The check itself failed: the refusal counts as one.
        Err(e) => {
            tracing::debug!(error = %e, "could not read the request after a refusal");
            None
        }
    };
    match fate {
        Some(fate) => {
            fate::settle(ctx, ticket.id, Some(&fate)).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

async fn attempt(ctx: &SyncCtx, ticket: &Ticket, entry: &OutboxEntry) -> Result<Done, SdpError> {
    let calls = ctx.sdp.on(Lane::Outbox);
    let request_id = || {
        ticket
            .sdp
            .request_id
            .clone()
            .ok_or_else(|| SdpError::Decode("the ticket has no SDP request yet".into()))
    };
    match &entry.op {
        OutboxOp::CreateRequest => create(ctx, ticket, entry).await,
        OutboxOp::AddNote { message } => {
            let id = request_id()?;
            let message = ctx
                .store
                .message(ticket.id, *message)
                .map_err(|e| SdpError::Decode(e.to_string()))?
                .ok_or_else(|| SdpError::Decode("the message is gone".into()))?;
            if entry.outcome_unknown {
                let marker = ctx.mapping.note_marker(message.id);
                let notes = calls.notes_with_bodies(&id).await?;
                if let Some(note) = notes.iter().find(|n| {
                    n.description
                        .as_deref()
                        .is_some_and(|d| d.contains(&marker))
                }) {
                    after_reply(ctx, ticket, &id).await;
                    return Ok(Done::Note(note.id.clone()));
                }
            }
            // `notify_technician` is set: the technician hears of it as of a requester's mail.
            let note = calls
                .add_note(&id, &ctx.mapping.note_html(&message), true)
                .await?;
            after_reply(ctx, ticket, &id).await;
            Ok(Done::Note(note.id))
        }
        OutboxOp::AddAttachment { attachment } => {
            let id = request_id()?;
            let a = ctx
                .store
                .attachment(ticket.id, *attachment)
                .map_err(|e| SdpError::Decode(e.to_string()))?
                .ok_or_else(|| SdpError::Decode("the attachment is gone".into()))?;
            if entry.outcome_unknown {
                let existing = calls.list_attachments(&id).await?;
                if let Some(found) = existing.iter().find(|x| {
                    x.name.as_deref() == Some(&a.filename)
                        && x.size_bytes().is_none_or(|s| s == a.size)
                }) {
                    return Ok(Done::Attachment(Some(found.id.clone())));
                }
            }
            let file = Upload {
                filename: a.filename.clone(),
                path: ctx.store.blob_path(&a.sha256),
                size: a.size,
            };
            let answer = calls.upload(&id, &file).await?;
            let sdp_id = answer
                .pointer("/attachment/id")
                .or_else(|| answer.pointer("/attachments/0/id"))
                .or_else(|| answer.pointer("/files/0/id"))
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                });
            Ok(Done::Attachment(sdp_id))
        }
        OutboxOp::Close => {
            let id = request_id()?;
            if !(entry.outcome_unknown && status_is(ctx, &id, Status::Closed).await?) {
                calls.close_request(&id, CUSTOMER_CLOSE).await?;
            }
            // The close action answers with a status only: read what SDP now shows.
            let after = calls.get_request(&id).await.ok();
            Ok(Done::StatusSet(
                after.as_ref().and_then(|r| status_of(ctx, r)),
            ))
        }
        OutboxOp::UpdateCc => {
            // The list as it is now: a later change already queued sends the same list again,
            // which SDP takes as it is (setting it is idempotent).
            let id = request_id()?;
            calls
                .update_request(&id, &json!({"email_ids_to_notify": ticket.cc}))
                .await?;
            Ok(Done::Updated)
        }
        OutboxOp::Reopen { reason } => {
            let id = request_id()?;
            let status = ctx.mapping.config.reopen_status.clone();
            let body = json!({"status": {"name": status}, "status_change_comments": format!("Reopened by the customer: {reason}")});
            let answer = calls.update_request(&id, &body).await?;
            // SDP answers an update with the request as it now is.
            let after: Option<Request> = answer
                .get("request")
                .and_then(|r| serde_json::from_value(r.clone()).ok());
            Ok(Done::StatusSet(
                after.as_ref().and_then(|r| status_of(ctx, r)),
            ))
        }
    }
}

/// A customer's reply on a request SDP holds (On Hold by default) moves it back as
/// `sdp.mapping.reply_status` says, as SDP's own rule does for a requester's e-mail. Best effort:
/// the note is in SDP already, so a failure here is reported, never retried as the note. The
/// portal takes the new status from the next read, like any status SDP sets by a rule.
async fn after_reply(ctx: &SyncCtx, ticket: &Ticket, request_id: &str) {
    let mapping = &ctx.mapping.config;
    let to = mapping.reply_status.trim();
    let held = ticket
        .sdp_status
        .as_deref()
        .is_some_and(|s| mapping.reply_from.iter().any(|f| f.eq_ignore_ascii_case(s)));
    if to.is_empty() || !held {
        return;
    }
    let body = json!({"status": {"name": to}, "status_change_comments": "The requester replied in the portal"});
    if let Err(e) = ctx
        .sdp
        .on(Lane::Outbox)
        .update_request(request_id, &body)
        .await
    {
        ctx.mismatch(format!(
            "a customer's reply could not move SDP request {request_id} to {to:?}: {e}"
        ));
    }
}

/// The requester's SDP id: looked up by e-mail in SDP's directory, created there when missing, and
/// remembered; `None` (the request names the requester by e-mail) when the directory will not say.
///
/// Each step is recorded (`requester-missing:`), so an attempt starts with the call that moves
/// things on: a throttled SDP that refuses every other call still sees the requester created.
async fn requester_id(ctx: &SyncCtx, ticket: &Ticket) -> Result<Option<String>, SdpError> {
    let email = &ticket.requester.email;
    let key = format!("requester:{email}");
    let missing_key = format!("requester-missing:{email}");
    let store = |e: crate::store::StoreError| SdpError::Decode(e.to_string());
    let remember =
        |key: &str, value: Value| ctx.store.put_sync_values(&[(key, value)]).map_err(store);
    if let Some(id) = ctx.store.sync_value::<String>(&key).map_err(store)? {
        return Ok(Some(id));
    }
    let calls = ctx.sdp.on(Lane::Outbox);
    let mut missing = ctx
        .store
        .sync_value::<bool>(&missing_key)
        .map_err(store)?
        .unwrap_or(false);
    // Find, else create, else (4008: it exists after all) find again.
    let mut found = Err(SdpError::Decode(format!("{email} exists yet is not found")));
    for _ in 0..3 {
        let step = if missing {
            calls.create_requester(&ticket.requester.name, email).await
        } else {
            calls.find_requester(email).await
        };
        match step {
            Ok(Some(id)) => {
                found = Ok(id);
                break;
            }
            Ok(None) => {
                missing = !missing;
                remember(&missing_key, json!(missing))?;
            }
            Err(e) => {
                found = Err(e);
                break;
            }
        }
    }
    match found {
        Ok(id) => {
            remember(&key, json!(id))?;
            Ok(Some(id))
        }
        Err(e) if is_unavailable(&e) => Err(e),
        Err(e) => {
            ctx.mismatch(format!(
                "SDP's requester directory did not answer ({e}); requesters are named by e-mail"
            ));
            Ok(None)
        }
    }
}

/// SDP's status name and `last_updated_time` as a request shows them, recorded after our change
/// so it never counts as the team's.
fn status_of(ctx: &SyncCtx, request: &Request) -> Option<SdpStatus> {
    let status = request.status.as_ref()?;
    Some(SdpStatus {
        name: status.name.clone()?,
        updated_ms: request.updated_ms(),
        maps_to: ctx
            .mapping
            .status(status, super::mapping::assigned(request))
            .status,
    })
}

async fn status_is(ctx: &SyncCtx, id: &str, portal_status: Status) -> Result<bool, SdpError> {
    let request = ctx.sdp.on(Lane::Outbox).get_request(id).await?;
    let assigned = super::mapping::assigned(&request);
    Ok(request
        .status
        .as_ref()
        .is_some_and(|s| ctx.mapping.status(s, assigned).status == portal_status))
}

/// Creates the request, or links the one an unanswered earlier attempt created. A mapped name SDP
/// refuses (4001) is dropped from the request, which is then created without it.
async fn create(ctx: &SyncCtx, ticket: &Ticket, entry: &OutboxEntry) -> Result<Done, SdpError> {
    if let Some(id) = &ticket.sdp.request_id {
        return Ok(Done::Request(id.clone()));
    }
    if entry.outcome_unknown {
        let list_info = json!({"row_count": 10, "start_index": 1, "search_criteria": ctx.mapping.search_for(&ticket.number)});
        let found = ctx
            .sdp
            .on(Lane::Outbox)
            .list_requests(&list_info, &[])
            .await?
            .rows;
        if let Some(request) = found.into_iter().next() {
            tracing::info!(request = %request.id, "linked the request an unanswered create made");
            return Ok(Done::Request(request.id));
        }
    }
    let requester = requester_id(ctx, ticket).await?;
    let optional = [
        "request_type",
        "priority",
        "category",
        "subcategory",
        "template",
        "udf_fields",
    ];
    let mut omit: Vec<String> = Vec::new();
    loop {
        let mut body = ctx.mapping.new_request(ticket, &omit);
        body["requester"] = requester_ref(
            requester.as_deref(),
            &ticket.requester.email,
            &ticket.requester.name,
        );
        match ctx.sdp.on(Lane::Outbox).create_request(&body).await {
            Ok(request) => return Ok(Done::Request(request.id)),
            Err(SdpError::Api {
                code: Some(INVALID_VALUE),
                fields,
                message,
                ..
            }) if omit.len() < optional.len() => {
                let named: Vec<String> = fields
                    .into_iter()
                    .filter(|f| optional.contains(&f.as_str()) && !omit.contains(f))
                    .collect();
                let drop: Vec<String> = if named.is_empty() {
                    optional
                        .iter()
                        .map(|s| (*s).to_owned())
                        .filter(|f| body.get(f).is_some() && !omit.contains(f))
                        .collect()
                } else {
                    named
                };
                if drop.is_empty() {
                    return Err(SdpError::Api {
                        status: 400,
                        code: Some(INVALID_VALUE),
                        message,
                        fields: Vec::new(),
                    });
                }
                for field in &drop {
                    ctx.mismatch(format!(
                        "SDP refused the mapped {field} for {} ({message}); created without it",
                        ticket.number
                    ));
                }
                omit.extend(drop);
            }
            Err(e) => return Err(e),
        }
    }
}

fn in_flight_grace(ctx: &SyncCtx) -> Duration {
    Duration::from_secs(ctx.config.request_timeout_secs + 1)
}

/// Exponential backoff with ±25 % jitter, capped.
pub fn backoff(attempts: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let capped = exp.min(cap);
    let mut r = [0u8; 2];
    getrandom::fill(&mut r).expect("the OS random source is available");
    let jitter = f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX) * 0.5 + 0.75;
    capped.mul_f64(jitter)
}

fn record_failure(
    ctx: &SyncCtx,
    entry: &OutboxEntry,
    was_unknown: bool,
    error: &SdpError,
) -> Result<(), SyncError> {
    let now = OffsetDateTime::now_utc();
    let config = &ctx.config;
    // While SDP is away, time and attempts do not count against a change: no outage turns queued
    // changes into dead letters. The budget holds every call until SDP answers again.
    let outage = is_unavailable(error);
    let attempts = if outage {
        entry.attempts
    } else {
        entry.attempts + 1
    };
    let too_old = !outage
        && now - entry.at
            > time::Duration::hours(i64::try_from(config.max_age_hours).unwrap_or(72));
    let bury = !outage && (!error.is_retryable() || attempts >= config.max_attempts || too_old);
    let wait = if outage {
        Duration::ZERO
    } else {
        backoff(
            attempts,
            Duration::from_millis(config.retry_base_ms),
            Duration::from_secs(config.retry_max_secs),
        )
    };
    let failure = Failure {
        message: error.to_string(),
        // A refused connection proves nothing was done; only an unanswered call leaves doubt.
        outcome_unknown: was_unknown || error.outcome_unknown(),
        bury,
        attempts,
        next_attempt_at: now + wait,
    };
    delivery::failed(&ctx.store, entry, &failure)?;
    if bury {
        ctx.stats().dead_lettered += 1;
        tracing::error!(seq = entry.seq, error = %failure.message, "sdp delivery dead-lettered");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps_with_jitter() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_mins(1);
        for attempts in 1..30 {
            let d = backoff(attempts, base, cap);
            let nominal = base.saturating_mul(1 << (attempts - 1).min(20)).min(cap);
            assert!(
                d >= nominal.mul_f64(0.74) && d <= nominal.mul_f64(1.26),
                "{attempts}: {d:?}"
            );
        }
    }
}
