//! What a customer does to a ticket: submit it, write, attach a file, confirm the resolution or
//! reopen. Creations run once per idempotency key: the first answer is stored with the change and a
//! retry gets it back byte for byte.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{TicketEvent, TicketEventKind, transition};
use crate::domain::lifecycle::{Action, ReopenWindow};
use crate::domain::{
    Actor, Attachment, AttachmentId, Delivery, DomainError, EventKind, Kind, Message, MessageId,
    Origin, Priority, Requester, SdpLink, Status, Ticket, TicketId, User,
};
use crate::store::{
    IdempotentReply, OpError, OutboxOp, Store, StoredBlob, TicketTx, TxResult, abort,
};

/// A submission whose fields are checked (`domain::validate`) and normalized.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub kind: Kind,
    pub subject: String,
    pub description: String,
    pub priority: Priority,
    pub service: Option<String>,
    /// Set when a customer raises the ticket for a colleague (the requester); copied on it.
    pub author: Option<Requester>,
    pub category: Option<crate::domain::ServiceChoice>,
}

/// A client's `Idempotency-Key`, scoped to the caller and the endpoint, with the body's fingerprint.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: Vec<u8>,
    pub fingerprint: String,
}

/// Renders the created item as the body the client receives (and a replay repeats).
pub type Render<T> = Box<dyn Fn(&T) -> String + Send>;

/// A creation's answer.
#[derive(Debug, Clone)]
pub struct Created {
    pub body: String,
    /// Whether this repeats the answer to an earlier identical request.
    pub replayed: bool,
    /// The ticket created or added to; `None` only for a replay stored before it was recorded.
    pub ticket: Option<TicketId>,
}

/// A customer's explicit step on their ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerStep {
    /// Accept the resolution (resolved → closed).
    Confirm,
    /// Not solved after all, and why.
    Reopen { reason: String },
}

/// Runs a creation once per key: a stored reply is returned as is; otherwise `work` writes the item
/// and the changed ticket, and the rendered item is remembered under the key in the same
/// transaction. The ticket comes back only when something was written.
fn once<T>(
    tx: &TicketTx<'_>,
    idem: Option<&Idempotency>,
    render: &Render<T>,
    work: impl FnOnce() -> TxResult<(T, Ticket)>,
) -> TxResult<(Created, Option<Ticket>)> {
    if let Some(idem) = idem
        && let Some(reply) = tx.idempotent(&idem.key, &idem.fingerprint)?
    {
        let created = Created {
            body: reply.body,
            replayed: true,
            ticket: reply.ticket,
        };
        return Ok((created, None));
    }
    let (value, ticket) = work()?;
    let body = render(&value);
    if let Some(idem) = idem {
        let reply = IdempotentReply {
            status: 201,
            body: body.clone(),
            fingerprint: idem.fingerprint.clone(),
            at: OffsetDateTime::now_utc(),
            ticket: Some(ticket.id),
        };
        tx.remember(&idem.key, &reply)?;
    }
    let created = Created {
        body,
        replayed: false,
        ticket: Some(ticket.id),
    };
    Ok((created, Some(ticket)))
}

fn events(ticket: Option<Ticket>, kind: TicketEventKind) -> Vec<TicketEvent> {
    ticket
        .map(|t| TicketEvent::of(&t, kind))
        .into_iter()
        .collect()
}

/// Submits a ticket for `requester`; `actor` is who did it (the requester, or the portal for them).
pub(crate) fn create(
    store: &Store,
    requester: &User,
    actor: &Actor,
    input: &NewTicket,
    idem: Option<&Idempotency>,
    render: &Render<Ticket>,
) -> Result<(Created, Vec<TicketEvent>), OpError> {
    let (created, ticket) = store.transact(|tx| {
        once(tx, idem, render, || {
            let now = OffsetDateTime::now_utc();
            let (id, number) = tx.next_ticket()?;
            let mut ticket = Ticket {
                id,
                uid: Uuid::now_v7(),
                number,
                kind: input.kind,
                subject: input.subject.clone(),
                description: input.description.clone(),
                priority: input.priority,
                service: input.service.clone(),
                category: input.category.clone(),
                status: Status::New,
                requester: Requester::of(requester),
                cc: input.author.iter().map(|a| a.email.clone()).collect(),
                author: input.author.clone(),
                created_at: now,
                updated_at: now,
                resolved_at: None,
                closed_at: None,
                assignee: None,
                due_by: None,
                promise: crate::domain::Promise::default(),
                sdp: SdpLink::default(),
                sdp_status: None,
                sdp_pending: 0,
                sdp_updated_ms: None,
            };
            let new = Some(Status::New.to_string());
            tx.event(&ticket, EventKind::Created, actor, None, new, None)?;
            tx.outbox(&mut ticket, OutboxOp::CreateRequest, now)?;
            tx.save(None, &ticket)?;
            Ok((ticket.clone(), ticket))
        })
    })?;
    Ok((created, events(ticket, TicketEventKind::Created)))
}

/// What a customer adds to a ticket (a message, a file).
struct Contribution<T> {
    item: T,
    event: EventKind,
    detail: Option<String>,
    outbox: OutboxOp,
}

/// A customer adds something to a ticket, in one transaction and once per idempotency key: a reply
/// on a finished ticket reopens it through the state machine, `add` writes the item, and the
/// history event and outbox entry follow.
fn contribute<T>(
    store: &Store,
    ticket: TicketId,
    actor: &Actor,
    window: ReopenWindow,
    idem: Option<&Idempotency>,
    render: &Render<T>,
    add: impl Fn(&TicketTx<'_>, &Ticket, OffsetDateTime) -> TxResult<Contribution<T>>,
) -> Result<(Created, Option<Ticket>), OpError> {
    store.transact(|tx| {
        let before = tx.require(ticket)?;
        open_in_sdp(&before)?;
        once(tx, idem, render, || {
            let now = OffsetDateTime::now_utc();
            let mut ticket = before.clone();
            transition(tx, &mut ticket, Action::Reply, actor, None, window, now)?;
            let added = add(tx, &ticket, now)?;
            ticket.updated_at = now;
            tx.event(&ticket, added.event, actor, None, None, added.detail)?;
            tx.outbox(&mut ticket, added.outbox, now)?;
            tx.save(Some(&before), &ticket)?;
            Ok((added.item, ticket))
        })
    })
}

/// Refuses a customer's change while SDP cannot take it (the request is trashed, deleted or
/// merged): the ticket stays readable.
fn open_in_sdp(ticket: &Ticket) -> TxResult<()> {
    match &ticket.sdp.fate {
        Some(fate) => abort(DomainError::Frozen(fate.refusal())),
        None => Ok(()),
    }
}

/// A customer's message; on a resolved (or recently closed) ticket it reopens it.
pub(crate) fn post_message(
    store: &Store,
    ticket: TicketId,
    actor: &Actor,
    body: &str,
    window: ReopenWindow,
    idem: Option<&Idempotency>,
    render: &Render<Message>,
) -> Result<(Created, Vec<TicketEvent>), OpError> {
    let (created, ticket) =
        contribute(store, ticket, actor, window, idem, render, |tx, t, now| {
            let message = Message {
                id: MessageId(tx.next_item()?),
                ticket: t.id,
                author: actor.author(),
                body: body.to_owned(),
                created_at: now,
                origin: Origin::Portal,
                delivery: Delivery::Pending,
                sdp_id: None,
                edited_at: None,
            };
            tx.message(&message)?;
            let outbox = OutboxOp::AddNote {
                message: message.id,
            };
            Ok(Contribution {
                item: message,
                event: EventKind::MessageAdded,
                detail: None,
                outbox,
            })
        })?;
    Ok((created, events(ticket, TicketEventKind::Message)))
}

/// A customer's file, whose content is already in the blob store.
#[expect(
    clippy::too_many_arguments,
    reason = "one command's inputs; grouping them would only rename them"
)]
pub(crate) fn attach(
    store: &Store,
    ticket: TicketId,
    actor: &Actor,
    content: &StoredBlob,
    filename: &str,
    window: ReopenWindow,
    idem: Option<&Idempotency>,
    render: &Render<Attachment>,
) -> Result<(Created, Vec<TicketEvent>), OpError> {
    let (created, ticket) =
        contribute(store, ticket, actor, window, idem, render, |tx, t, now| {
            let attachment = Attachment {
                id: AttachmentId(tx.next_item()?),
                ticket: t.id,
                filename: filename.to_owned(),
                size: content.size,
                content_type: content.content_type.clone(),
                sha256: content.sha256.clone(),
                created_at: now,
                origin: Origin::Portal,
                delivery: Delivery::Pending,
                uploaded_by: actor.author(),
                sdp_id: None,
            };
            tx.attachment(&attachment)?;
            let outbox = OutboxOp::AddAttachment {
                attachment: attachment.id,
            };
            Ok(Contribution {
                detail: Some(attachment.filename.clone()),
                item: attachment,
                event: EventKind::AttachmentAdded,
                outbox,
            })
        })?;
    Ok((created, events(ticket, TicketEventKind::Attachment)))
}

/// Confirms the resolution or reopens, through the state machine; queued for SDP.
pub(crate) fn step(
    store: &Store,
    ticket: TicketId,
    actor: &Actor,
    step: &CustomerStep,
    window: ReopenWindow,
) -> Result<(Ticket, Vec<TicketEvent>), OpError> {
    let (action, reason) = match step {
        CustomerStep::Confirm => (Action::Confirm, None),
        CustomerStep::Reopen { reason } => (Action::Reopen, Some(reason.as_str())),
    };
    let ticket = store.transact(|tx| {
        let now = OffsetDateTime::now_utc();
        let before = tx.require(ticket)?;
        open_in_sdp(&before)?;
        let mut ticket = before.clone();
        transition(tx, &mut ticket, action, actor, reason, window, now)?;
        tx.save(Some(&before), &ticket)?;
        Ok(ticket)
    })?;
    let event = TicketEvent::of(&ticket, TicketEventKind::StatusChanged);
    Ok((ticket, vec![event]))
}

/// Copies a colleague on the ticket (`add`) or stops copying them, with its history line and an
/// outbox entry that sends SDP the new list. Nothing changes (and nothing is sent) when the list
/// already is as asked.
pub(crate) fn copy(
    store: &Store,
    ticket: TicketId,
    actor: &Actor,
    email: &str,
    add: bool,
) -> Result<(Ticket, Vec<TicketEvent>), OpError> {
    let (ticket, changed) = store.transact(|tx| {
        let now = OffsetDateTime::now_utc();
        let before = tx.require(ticket)?;
        let mut ticket = before.clone();
        let on = ticket.cc.iter().any(|c| c == email);
        if on == add {
            return Ok((ticket, false));
        }
        open_in_sdp(&before)?;
        let (kind, from, to) = if add {
            ticket.cc.push(email.to_owned());
            // Kept sorted, as a read of SDP's list is, so the two compare.
            ticket.cc.sort();
            (EventKind::CcAdded, None, Some(email.to_owned()))
        } else {
            ticket.cc.retain(|c| c != email);
            (EventKind::CcRemoved, Some(email.to_owned()), None)
        };
        ticket.updated_at = now;
        tx.event(&ticket, kind, actor, from, to, None)?;
        tx.outbox(&mut ticket, OutboxOp::UpdateCc, now)?;
        tx.save(Some(&before), &ticket)?;
        Ok((ticket, true))
    })?;
    let events = if changed {
        vec![TicketEvent::of(&ticket, TicketEventKind::Updated)]
    } else {
        Vec::new()
    };
    Ok((ticket, events))
}

/// Forgets the idempotency replies stored before `cutoff` (`portal.idempotency_ttl_days` ago), a
/// batch per transaction so writers never wait long. Returns how many went.
pub fn expire_replies(store: &Store, cutoff: OffsetDateTime) -> Result<usize, OpError> {
    const BATCH: usize = 256;
    let mut forgotten = 0;
    loop {
        let keys = store.replies_before(cutoff, BATCH)?;
        if keys.is_empty() {
            return Ok(forgotten);
        }
        store.transact(|tx| {
            for key in &keys {
                tx.forget_reply(key)?;
            }
            Ok(())
        })?;
        forgotten += keys.len();
        if keys.len() < BATCH {
            return Ok(forgotten);
        }
    }
}
