//! Every change to a ticket, whoever asks: a customer (create, message, file, confirm, reopen), the
//! team as observed in SDP (status, assignee, messages, files), the sync's bookkeeping of what SDP
//! has heard (in flight, delivered, dead letter, retry, discard) and imports of SDP requests.
//!
//! This is the only code that writes ticket trees. Each command is a plain function that runs one
//! store transaction ([`TicketTx`]) and returns the [`TicketEvent`]s it produced; the caller awaits
//! the group commit before it answers or publishes them. The actors call the customer commands so
//! that one ticket's changes are applied in the order they arrive; the sync calls the rest.

pub(crate) mod customer;
pub(crate) mod delivery;
mod events;
pub(crate) mod import;
pub(crate) mod team;

use time::OffsetDateTime;

pub use customer::{Created, CustomerStep, Idempotency, NewTicket, Render, expire_replies};
pub use events::{TicketEvent, TicketEventKind};

use crate::domain::lifecycle::{self, Action, ReopenWindow};
use crate::domain::{Actor, DomainError, EventKind, Status, Ticket};
use crate::store::{OutboxOp, TicketTx, TxResult, abort};

/// Applies `action` to the ticket inside a transaction: the one state machine decides, the history
/// records it, and a customer's action is queued for SDP. Returns the new status when it changed.
fn transition(
    tx: &TicketTx<'_>,
    ticket: &mut Ticket,
    action: Action,
    actor: &Actor,
    reason: Option<&str>,
    window: ReopenWindow,
    now: OffsetDateTime,
) -> TxResult<Option<Status>> {
    let from = ticket.status;
    let to = match lifecycle::apply(from, ticket.closed_at, action, window, now) {
        Ok(Some(to)) => to,
        Ok(None) => return Ok(None),
        Err(e) => return abort(DomainError::from(e)),
    };
    ticket.set_status(to, now);
    ticket.updated_at = now;
    let kind = match action {
        Action::Confirm => EventKind::Confirmed,
        Action::Reopen | Action::Reply => EventKind::Reopened,
        Action::Team(_) => EventKind::StatusChanged,
    };
    tx.event(
        ticket,
        kind,
        actor,
        Some(from.to_string()),
        Some(to.to_string()),
        reason.map(str::to_owned),
    )?;
    match action {
        Action::Confirm => {
            tx.outbox(ticket, OutboxOp::Close, now)?;
        }
        Action::Reopen | Action::Reply => {
            let reason = reason.unwrap_or("The customer replied").to_owned();
            tx.outbox(ticket, OutboxOp::Reopen { reason }, now)?;
        }
        // The team's changes come from SDP; nothing to send back.
        Action::Team(_) => {}
    }
    Ok(Some(to))
}

/// Lists every ticket of `org` under it, once its members are to see every ticket: until then its
/// tickets were not listed there (`Store::list_org`). Runs after `list_org` turned listing on,
/// each ticket in its own transaction, so one changed meanwhile is listed at its new place.
pub(crate) fn list_under_organization(
    store: &crate::store::Store,
    org: crate::domain::OrgId,
) -> Result<usize, crate::store::OpError> {
    let ids = store.tickets_of_org(org)?;
    for id in &ids {
        store.transact(|tx| tx.list_under_org(*id, org))?;
    }
    Ok(ids.len())
}
