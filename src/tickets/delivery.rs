//! The bookkeeping of what SDP has heard: an outbox entry is marked in flight before each attempt,
//! leaves the queue only in the transaction that records what SDP created, and after a refusal
//! either waits for its next attempt or becomes a dead letter an admin retries or discards.

use time::OffsetDateTime;

use super::{TicketEvent, TicketEventKind};
use crate::domain::{Actor, Delivery, EventKind, Status, SyncState, Ticket};
use crate::store::{OpError, OutboxEntry, OutboxOp, Store};

/// What a delivered entry did in SDP, to record on the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Done {
    /// The request SDP created (or an earlier unanswered attempt had created).
    Request(String),
    /// The note SDP created for a message.
    Note(String),
    /// The attachment SDP stored, when its answer named it.
    Attachment(Option<String>),
    /// What SDP shows right after our change, when it could be read. Recorded as already seen
    /// when it maps to the ticket's status, so our own change never looks like the team's; when
    /// SDP's rules made it something else (Open with a technician is `assigned`), left for the
    /// next read to apply as the team's.
    StatusSet(Option<SdpStatus>),
    /// SDP took a change of a field; nothing to record beyond its delivery.
    Updated,
}

/// SDP's status after a change of ours: its name, `last_updated_time`, and the portal status it
/// maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SdpStatus {
    pub name: String,
    pub updated_ms: Option<i64>,
    pub maps_to: Status,
}

/// Marks an attempt in flight: should deskbridge stop before its outcome is recorded, the next
/// attempt (not before `not_before`) looks in SDP first instead of repeating the call.
pub(crate) fn begin(store: &Store, seq: u64, not_before: OffsetDateTime) -> Result<(), OpError> {
    store.transact(|tx| match tx.outbox_entry(seq)? {
        Some(mut e) => {
            e.outcome_unknown = true;
            e.next_attempt_at = Some(not_before);
            tx.put_outbox(&e)
        }
        None => Ok(()),
    })
}

/// Drops an entry whose ticket no longer exists.
pub(crate) fn forget(store: &Store, seq: u64) -> Result<(), OpError> {
    store.transact(|tx| tx.remove_outbox(seq))
}

/// Records a delivery: the entry leaves the queue together with what SDP created.
pub(crate) fn delivered(
    store: &Store,
    entry: &OutboxEntry,
    done: &Done,
) -> Result<Option<TicketEvent>, OpError> {
    let ticket = store.transact(|tx| {
        let Some(before) = tx.ticket(entry.ticket)? else {
            tx.remove_outbox(entry.seq)?;
            return Ok(None);
        };
        if tx.outbox_entry(entry.seq)?.is_none() {
            // Discarded or superseded meanwhile.
            return Ok(None);
        }
        let mut ticket = before.clone();
        tx.remove_outbox(entry.seq)?;
        match (done, &entry.op) {
            (Done::Request(id), _) => {
                ticket.sdp.request_id = Some(id.clone());
                tx.link_sdp(id, ticket.id)?;
                let detail = Some(format!("ServiceDesk Plus request {id}"));
                tx.event(
                    &ticket,
                    EventKind::SdpLinked,
                    &Actor::system(),
                    None,
                    None,
                    detail,
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
            (Done::StatusSet(Some(shown)), _) if shown.maps_to == ticket.status => {
                ticket.sdp_status = Some(shown.name.clone());
                ticket.sdp_updated_ms = ticket.sdp_updated_ms.max(shown.updated_ms);
            }
            _ => {}
        }
        settle(&mut ticket, None);
        tx.save(Some(&before), &ticket)?;
        Ok(Some(ticket))
    })?;
    Ok(ticket.map(|t| TicketEvent::of(&t, TicketEventKind::Updated)))
}

/// A failed attempt, as the sync judged it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// For the admin (console, API); never shown to a customer as is.
    pub message: String,
    /// SDP may have applied the call: look before repeating it.
    pub outcome_unknown: bool,
    /// Give up: the entry becomes a dead letter.
    pub bury: bool,
    /// Attempts that count (an outage's do not).
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
}

/// Records a failed attempt: the entry waits for its next one, or becomes a dead letter.
pub(crate) fn failed(store: &Store, entry: &OutboxEntry, failure: &Failure) -> Result<(), OpError> {
    store.transact(|tx| {
        let Some(mut current) = tx.outbox_entry(entry.seq)? else {
            return Ok(());
        };
        current.attempts = failure.attempts;
        current.last_error = Some(failure.message.clone());
        current.outcome_unknown = failure.outcome_unknown;
        current.next_attempt_at = Some(failure.next_attempt_at);
        let Some(before) = tx.ticket(entry.ticket)? else {
            return tx.remove_outbox(entry.seq);
        };
        let mut ticket = before.clone();
        ticket.sdp.last_error = Some(failure.message.clone());
        if failure.bury {
            tx.bury(&current)?;
            ticket.sdp.sync_state = SyncState::Failed;
        } else {
            tx.put_outbox(&current)?;
        }
        tx.save(Some(&before), &ticket)
    })
}

/// Puts a dead letter back at its place in the queue, due now. False when there is no such letter.
pub(crate) fn retry_dead_letter(store: &Store, seq: u64) -> Result<bool, OpError> {
    store.transact(|tx| {
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
    })
}

/// Drops a dead letter for good; the ticket no longer waits for it.
pub(crate) fn discard_dead_letter(store: &Store, seq: u64) -> Result<bool, OpError> {
    store.transact(|tx| {
        let Some(entry) = tx.dead_letter(seq)? else {
            return Ok(false);
        };
        tx.unbury(seq)?;
        if let Some(before) = tx.ticket(entry.ticket)? {
            let mut ticket = before.clone();
            ticket.sdp.sync_state = SyncState::Pending;
            settle(&mut ticket, before.sdp.last_error.clone());
            let detail = entry.last_error.clone();
            tx.event(
                &ticket,
                EventKind::SdpDiscarded,
                &Actor::system(),
                None,
                None,
                detail,
            )?;
            tx.save(Some(&before), &ticket)?;
        }
        Ok(true)
    })
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
