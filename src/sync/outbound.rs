//! Outbound: drains the outbox to SDP, in order per ticket (different tickets in parallel), with
//! exponential backoff and jitter, dead letters, and no blind repeats: after an unanswered call
//! the next attempt first looks in SDP for what the last one may have done.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument;

use super::mapping::{Mapping, note_marker};
use super::{SyncCtx, SyncError};
use crate::domain::{Delivery, SyncState, Ticket, TicketId};
use crate::sdp::SdpError;
use crate::sdp::error::INVALID_VALUE;
use crate::store::{OutboxEntry, OutboxOp, TicketTx, TxResult};

/// What a delivered entry created in SDP, to record on the ticket.
#[derive(Debug, Clone)]
enum Done {
    Request(String),
    Note(String),
    Attachment(Option<String>),
    /// SDP's status name and `last_updated_time` right after our change, when it could be read:
    /// recorded as already seen, so our own change never looks like the team's.
    StatusSet(Option<(String, Option<i64>)>),
}

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
        match entry.next_attempt_at {
            Some(at) if at > now => earliest = Some(earliest.map_or(at, |e| e.min(at))),
            _ => heads.push(entry),
        }
    }
    let attempted = heads.len();
    let concurrency = usize::try_from(ctx.config.outbound_concurrency).unwrap_or(4);
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
        ctx.store.transact(|tx| tx.remove_outbox(entry.seq))?;
        return Ok(());
    };
    // Mark the attempt in flight, durably, before sending: if deskbridge stops before the outcome is
    // recorded, the next attempt looks in SDP first instead of repeating the call.
    let was_unknown = entry.outcome_unknown;
    if !was_unknown {
        ctx.store.transact(|tx| match tx.outbox_entry(entry.seq)? {
            Some(mut e) => {
                e.outcome_unknown = true;
                // Should deskbridge stop now, the call may still be running in SDP: the next
                // start waits one request timeout before it looks.
                e.next_attempt_at = Some(OffsetDateTime::now_utc() + in_flight_grace(ctx));
                tx.put_outbox(&e)
            }
            None => Ok(()),
        })?;
        ctx.store.durable().await?;
    }
    let span = tracing::info_span!("sdp_deliver", ticket = %ticket.number, seq = entry.seq, op = ?entry.op);
    let outcome = attempt(ctx, &ticket, &entry).instrument(span).await;
    match outcome {
        Ok(done) => {
            record_success(ctx, &entry, &done)?;
            ctx.stats().delivered += 1;
            ctx.store.metrics.sdp_delivered.inc();
            if matches!(entry.op, OutboxOp::Close | OutboxOp::Reopen { .. })
                && let Some(id) = ctx
                    .store
                    .ticket(entry.ticket)?
                    .and_then(|t| t.sdp.request_id)
            {
                // Customer actions are applied in SDP and the result read back.
                if let Err(e) = super::inbound::read_request(ctx, &id).await {
                    tracing::warn!(error = %e, "reading back after a status change failed; the next poll will");
                }
            }
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

async fn attempt(ctx: &SyncCtx, ticket: &Ticket, entry: &OutboxEntry) -> Result<Done, SdpError> {
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
                let marker = note_marker(message.id);
                let notes = ctx.sdp.list_notes(&id).await?;
                if let Some(note) = notes.iter().find(|n| {
                    n.description
                        .as_deref()
                        .is_some_and(|d| d.contains(&marker))
                }) {
                    return Ok(Done::Note(note.id.clone()));
                }
            }
            let note = ctx
                .sdp
                .add_note(&id, &Mapping::note_html(&message), true)
                .await?;
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
                let existing = ctx.sdp.list_attachments(&id).await?;
                if let Some(found) = existing.iter().find(|x| {
                    x.name.as_deref() == Some(&a.filename)
                        && x.size_bytes().is_none_or(|s| s == a.size)
                }) {
                    return Ok(Done::Attachment(Some(found.id.clone())));
                }
            }
            let bytes = tokio::fs::read(ctx.store.blob_path(&a.sha256))
                .await
                .map_err(|e| SdpError::Decode(format!("reading the file: {e}")))?;
            let answer = ctx.sdp.upload(&id, &a.filename, Bytes::from(bytes)).await?;
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
            if !(entry.outcome_unknown && status_is(ctx, &id, "closed").await?) {
                ctx.sdp
                    .close_request(&id, "Confirmed by the customer in the portal")
                    .await?;
            }
            Ok(Done::StatusSet(status_after(ctx, &id).await))
        }
        OutboxOp::Reopen { reason } => {
            let id = request_id()?;
            let status = ctx.mapping.config.reopen_status.clone();
            let body = json!({"status": {"name": status}, "status_change_comments": format!("Reopened by the customer: {reason}")});
            ctx.sdp.update_request(&id, &body).await?;
            Ok(Done::StatusSet(status_after(ctx, &id).await))
        }
    }
}

/// SDP's status after our change; `None` when it cannot be read now (the next read catches up).
async fn status_after(ctx: &SyncCtx, id: &str) -> Option<(String, Option<i64>)> {
    let request = ctx.sdp.get_request(id).await.ok()?;
    let name = request.status.and_then(|s| s.name)?;
    Some((
        name,
        request
            .last_updated_time
            .as_ref()
            .and_then(super::dto_millis),
    ))
}

async fn status_is(ctx: &SyncCtx, id: &str, portal_status: &str) -> Result<bool, SdpError> {
    let request = ctx.sdp.get_request(id).await?;
    let technician = request.technician.is_some();
    Ok(request
        .status
        .as_ref()
        .is_some_and(|s| ctx.mapping.status(s, technician).status.as_str() == portal_status))
}

/// Creates the request, or links the one an unanswered earlier attempt created. A mapped name SDP
/// refuses (4001) is dropped from the request, which is then created without it.
async fn create(ctx: &SyncCtx, ticket: &Ticket, entry: &OutboxEntry) -> Result<Done, SdpError> {
    if let Some(id) = &ticket.sdp.request_id {
        return Ok(Done::Request(id.clone()));
    }
    if entry.outcome_unknown {
        let list_info = json!({"row_count": 10, "start_index": 1, "search_criteria": ctx.mapping.search_for(&ticket.number)});
        let found = ctx.sdp.list_requests(&list_info).await?.rows;
        if let Some(request) = found.into_iter().next() {
            tracing::info!(request = %request.id, "linked the request an unanswered create made");
            return Ok(Done::Request(request.id));
        }
    }
    let optional = [
        "request_type",
        "priority",
        "category",
        "template",
        "udf_fields",
    ];
    let mut omit: Vec<String> = Vec::new();
    loop {
        let body = ctx.mapping.new_request(ticket, &omit);
        match ctx.sdp.create_request(&body).await {
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

fn record_success(ctx: &SyncCtx, entry: &OutboxEntry, done: &Done) -> Result<(), SyncError> {
    ctx.store.transact(|tx| {
        let Some(before) = tx.ticket(entry.ticket)? else {
            return tx.remove_outbox(entry.seq);
        };
        if tx.outbox_entry(entry.seq)?.is_none() {
            // Discarded or superseded meanwhile.
            return Ok(());
        }
        let mut ticket = before.clone();
        tx.remove_outbox(entry.seq)?;
        match (done, &entry.op) {
            (Done::Request(id), _) => {
                ticket.sdp.request_id = Some(id.clone());
                tx.link_sdp(id, ticket.id)?;
                tx.event(
                    &ticket,
                    "sdp_linked",
                    &crate::domain::Actor::system(),
                    None,
                    None,
                    Some(format!("ServiceDesk Plus request {id}")),
                )?;
            }
            (Done::Note(note), OutboxOp::AddNote { message }) => {
                tx.mark_seen(ticket.id, &format!("note:{note}"))?;
                if let Some(mut m) = tx.get_message(ticket.id, *message)? {
                    m.delivery = Delivery::Delivered;
                    m.sdp_id = Some(note.clone());
                    tx.message(&m)?;
                }
            }
            (Done::Attachment(sdp_id), OutboxOp::AddAttachment { attachment }) => {
                if let Some(id) = sdp_id {
                    tx.mark_seen(ticket.id, &format!("att:{id}"))?;
                }
                if let Some(mut a) = tx.get_attachment(ticket.id, *attachment)? {
                    a.delivery = Delivery::Delivered;
                    a.sdp_id.clone_from(sdp_id);
                    tx.attachment(&a)?;
                }
            }
            (Done::StatusSet(Some((name, updated))), _) => {
                ticket.sdp_status = Some(name.clone());
                ticket.sdp_updated_ms = ticket.sdp_updated_ms.max(*updated);
            }
            _ => {}
        }
        settle(&mut ticket, None);
        tx.save(Some(&before), &ticket)
    })?;
    (ctx.publish)(crate::actors::TicketEvent::of(
        &ctx.store
            .ticket(entry.ticket)?
            .ok_or(crate::domain::DomainError::TicketNotFound)
            .map_err(crate::store::OpError::from)?,
        crate::actors::TicketEventKind::Updated,
    ));
    Ok(())
}

/// One entry of the ticket is off the queue: the ticket is synced once none is left.
fn settle(ticket: &mut Ticket, error: Option<String>) {
    ticket.sdp_pending = ticket.sdp_pending.saturating_sub(1);
    if ticket.sdp_pending == 0 {
        ticket.sdp.sync_state = SyncState::Synced;
        ticket.sdp.last_error = error;
    } else if ticket.sdp.sync_state != SyncState::Failed {
        ticket.sdp.sync_state = SyncState::Pending;
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
    let attempts = entry.attempts + 1;
    let too_old =
        now - entry.at > time::Duration::hours(i64::try_from(config.max_age_hours).unwrap_or(72));
    let bury = !error.is_retryable() || attempts >= config.max_attempts || too_old;
    let wait = backoff(
        attempts,
        Duration::from_millis(config.retry_base_ms),
        Duration::from_secs(config.retry_max_secs),
    );
    let message = error.to_string();
    ctx.store.transact(|tx| {
        let Some(mut current) = tx.outbox_entry(entry.seq)? else {
            return Ok(());
        };
        current.attempts = attempts;
        current.last_error = Some(message.clone());
        // A refused connection proves nothing was done; only an unanswered call leaves doubt.
        current.outcome_unknown = was_unknown || error.outcome_unknown();
        current.next_attempt_at = Some(now + wait);
        let Some(before) = tx.ticket(entry.ticket)? else {
            return tx.remove_outbox(entry.seq);
        };
        let mut ticket = before.clone();
        ticket.sdp.last_error = Some(message.clone());
        if bury {
            tx.bury(&current)?;
            ticket.sdp.sync_state = SyncState::Failed;
        } else {
            tx.put_outbox(&current)?;
        }
        tx.save(Some(&before), &ticket)
    })?;
    if bury {
        ctx.stats().dead_lettered += 1;
        tracing::error!(seq = entry.seq, error = %message, "sdp delivery dead-lettered");
    }
    Ok(())
}

/// Puts a dead letter back at its place in the queue, due now.
pub fn retry_dead_letter(tx: &TicketTx<'_>, seq: u64) -> TxResult<bool> {
    let Some(mut entry) = tx.dead_letter(seq)? else {
        return Ok(false);
    };
    tx.unbury(seq)?;
    entry.attempts = 0;
    entry.next_attempt_at = None;
    tx.put_outbox(&entry)?;
    if let Some(before) = tx.ticket(entry.ticket)? {
        let mut ticket = before.clone();
        ticket.sdp.sync_state = SyncState::Pending;
        tx.save(Some(&before), &ticket)?;
    }
    Ok(true)
}

/// Drops a dead letter for good; the ticket no longer waits for it.
pub fn discard_dead_letter(tx: &TicketTx<'_>, seq: u64) -> TxResult<bool> {
    let Some(entry) = tx.dead_letter(seq)? else {
        return Ok(false);
    };
    tx.unbury(seq)?;
    if let Some(before) = tx.ticket(entry.ticket)? {
        let mut ticket = before.clone();
        ticket.sdp.sync_state = SyncState::Pending;
        settle(&mut ticket, before.sdp.last_error.clone());
        tx.event(
            &ticket,
            "sdp_discarded",
            &crate::domain::Actor::system(),
            None,
            None,
            entry.last_error.clone(),
        )?;
        tx.save(Some(&before), &ticket)?;
    }
    Ok(true)
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
