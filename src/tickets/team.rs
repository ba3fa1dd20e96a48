//! What the operations team did in SDP, as the sync observed it: status, assignee, due date, public
//! messages and files. SDP owns the status, so a change made there always applies through the state
//! machine; when the customer changed it too since the last read, SDP wins and the customer's queued
//! change is withdrawn ([`decide_status`]). Reads can finish out of order, so a read older than the
//! newest one applied changes no field ([`is_stale`]).

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{TicketEvent, TicketEventKind, transition};
use crate::domain::lifecycle::{Action, ReopenWindow};
use crate::domain::{
    Actor, Attachment, AttachmentId, Author, AuthorRole, Delivery, EventKind, Message, MessageId,
    Origin, Priority, Promise, Requester, SdpFate, Status, Ticket, TicketId,
};
use crate::store::{OpError, OutboxOp, Store, StoredBlob, TicketTx, TxResult};

/// A message from SDP (public note, e-mail for the requester, resolution) not yet in the portal.
#[derive(Debug, Clone)]
pub(crate) struct TeamMessage {
    /// Marks the SDP item as taken in, so it is never taken twice.
    pub seen_key: String,
    pub author: Author,
    pub body: String,
    pub at: Option<OffsetDateTime>,
    pub sdp_id: String,
    /// The SDP item's `last_updated_time` (ms), recorded so a later edit shows.
    pub version: Option<i64>,
}

/// A team message the team changed in SDP since it was taken in.
#[derive(Debug, Clone)]
pub(crate) enum TeamChange {
    /// Edited: the new text (`None`: the text is the same, only the version moves).
    Edited {
        message: MessageId,
        seen_key: String,
        body: Option<String>,
        version: i64,
        at: Option<OffsetDateTime>,
    },
    /// Deleted in SDP, or made private again: it leaves the discussion, and is taken in again
    /// should it become public once more.
    Withdrawn {
        message: MessageId,
        seen_key: String,
    },
}

/// A file from SDP whose content is already in the blob store.
#[derive(Debug, Clone)]
pub(crate) struct TeamFile {
    pub seen_key: String,
    pub sdp_id: String,
    pub filename: String,
    pub content: StoredBlob,
}

/// One read of an SDP request, mapped to portal terms.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    /// SDP's `last_updated_time` (ms) of this read.
    pub updated_ms: Option<i64>,
    /// SDP's status name, and what it maps to.
    pub sdp_status: Option<String>,
    pub status: Option<Status>,
    /// The number the service desk shows for the request.
    pub number: Option<String>,
    pub technician: Option<String>,
    pub due_by: Option<OffsetDateTime>,
    pub promise: Promise,
    /// Who the changes are attributed to.
    pub team: Actor,
    pub messages: Vec<TeamMessage>,
    /// SDP items looked at and kept out of the portal (e-mails not for the requester): marked
    /// seen so they are not fetched again.
    pub hidden: Vec<String>,
    /// Team messages edited, deleted or made private in SDP.
    pub changes: Vec<TeamChange>,
    pub files: Vec<TeamFile>,
    /// The request's description, as plain text: taken when the ticket was imported from a list
    /// row and its details are still to be read.
    pub description: Option<String>,
    /// A new requester set in SDP (a portal customer, or nobody in the portal).
    pub requester: Option<Requester>,
    /// A subject or priority the team changed in SDP.
    pub subject: Option<String>,
    pub priority: Option<Priority>,
    /// Who SDP copies on the request (normalised, sorted), when the read says.
    pub cc: Option<Vec<String>>,
}

/// The customer's changes still on their way to SDP when a read is applied: a status change (its
/// outbox entries), a new CC list, and how many in all (so one queued meanwhile is noticed).
struct Queued {
    status: Vec<u64>,
    cc: bool,
    pending: u32,
}

/// Whether a read is older than the newest one applied.
pub(crate) fn is_stale(applied_ms: Option<i64>, read_ms: Option<i64>) -> bool {
    matches!((applied_ms, read_ms), (Some(applied), Some(read)) if read < applied)
}

/// What SDP's status means for the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusDecision {
    /// Nothing to do: SDP's status did not change since the last read, or already matches.
    Keep,
    /// The team moved the ticket to `to`; `conflict` when the customer's own status change is still
    /// on its way to SDP (it is withdrawn, and both values are recorded).
    Apply { to: Status, conflict: bool },
}

/// The conflict rule. `last_sdp` is SDP's status name at the previous read (or as deskbridge set it),
/// `observed` the name now, `mapped` its portal status. A request (re)assigned in SDP under the
/// same status name is the team's change too: Open with a technician is `assigned`.
pub(crate) fn decide_status(
    current: Status,
    (last_sdp, observed): (Option<&str>, Option<&str>),
    reassigned: bool,
    mapped: Status,
    customer_change_queued: bool,
) -> StatusDecision {
    if (observed == last_sdp && !reassigned) || mapped == current {
        return StatusDecision::Keep;
    }
    StatusDecision::Apply {
        to: mapped,
        conflict: customer_change_queued,
    }
}

/// Applies one observation to the ticket in one transaction.
pub(crate) fn observe(
    store: &Store,
    ticket: TicketId,
    seen: &Observation,
    window: ReopenWindow,
) -> Result<(Ticket, Vec<TicketEvent>), OpError> {
    // Only a ticket with undelivered changes can have a queued change: skip the scan otherwise.
    let mut queued = Queued {
        status: Vec::new(),
        cc: false,
        pending: 0,
    };
    if let Some(t) = store.ticket(ticket)?.filter(|t| t.sdp_pending > 0) {
        queued.pending = t.sdp_pending;
        for e in store.outbox_of(ticket)? {
            match e.op {
                OutboxOp::Close | OutboxOp::Reopen { .. } => queued.status.push(e.seq),
                OutboxOp::UpdateCc => queued.cc = true,
                _ => {}
            }
        }
    }
    let (ticket, kinds) = store.transact(|tx| {
        let now = OffsetDateTime::now_utc();
        let before = tx.require(ticket)?;
        let mut ticket = before.clone();
        let mut kinds = Vec::new();
        if let Some(description) = &seen.description
            && tx.details_read(ticket.id)?
        {
            ticket.description.clone_from(description);
            kinds.push(TicketEventKind::Updated);
        }
        apply_fields(tx, &mut ticket, seen, &queued, window, now, &mut kinds)?;
        apply_messages(tx, &mut ticket, &seen.messages, now, &mut kinds)?;
        for key in &seen.hidden {
            tx.mark_seen(ticket.id, key)?;
        }
        apply_changes(tx, &mut ticket, &seen.changes, now, &mut kinds)?;
        apply_files(tx, &mut ticket, &seen.files, &seen.team, now, &mut kinds)?;
        if ticket != before {
            tx.save(Some(&before), &ticket)?;
        }
        Ok((ticket, kinds))
    })?;
    let events = kinds
        .into_iter()
        .map(|kind| TicketEvent::of(&ticket, kind))
        .collect();
    Ok((ticket, events))
}

/// SDP's request left the ordinary path (trashed, deleted, merged) or came back (`None`): the
/// history says so in a customer's words and, while a fate is set, customers' changes are refused.
pub(crate) fn settle_fate(
    store: &Store,
    ticket: TicketId,
    fate: Option<&SdpFate>,
    team: &Actor,
) -> Result<Vec<TicketEvent>, OpError> {
    let changed = store.transact(|tx| {
        let before = tx.require(ticket)?;
        if before.sdp.fate.as_ref() == fate {
            return Ok(None);
        }
        let mut ticket = before.clone();
        ticket.sdp.fate = fate.cloned();
        ticket.updated_at = OffsetDateTime::now_utc();
        let (kind, to) = match fate {
            Some(SdpFate::Merged { into, ticket }) => (
                EventKind::SdpMerged,
                Some(ticket.clone().unwrap_or_else(|| format!("#{into}"))),
            ),
            Some(other) => (other.event(), None),
            None => (EventKind::SdpRestored, None),
        };
        tx.event(&ticket, kind, team, None, to, None)?;
        tx.save(Some(&before), &ticket)?;
        Ok(Some(ticket))
    })?;
    Ok(changed
        .map(|t| vec![TicketEvent::of(&t, TicketEventKind::Updated)])
        .unwrap_or_default())
}

/// Assignee, due date and status.
fn apply_fields(
    tx: &TicketTx<'_>,
    ticket: &mut Ticket,
    seen: &Observation,
    queued: &Queued,
    window: ReopenWindow,
    now: OffsetDateTime,
    kinds: &mut Vec<TicketEventKind>,
) -> TxResult<()> {
    if is_stale(ticket.sdp_updated_ms, seen.updated_ms) {
        return Ok(());
    }
    ticket.sdp_updated_ms = seen.updated_ms.or(ticket.sdp_updated_ms);
    if seen.number.is_some() {
        ticket.sdp.number.clone_from(&seen.number);
    }
    // A CC list the customer changed and SDP has not heard of yet stands; so does one changed
    // since the queue was looked at.
    let cc_queued = queued.cc || ticket.sdp_pending != queued.pending;
    apply_details(tx, ticket, seen, cc_queued, now, kinds)?;
    let reassigned = seen.technician != ticket.assignee;
    if reassigned {
        let from = std::mem::replace(&mut ticket.assignee, seen.technician.clone());
        ticket.updated_at = now;
        let to = seen.technician.clone();
        tx.event(ticket, EventKind::Assigned, &seen.team, from, to, None)?;
        kinds.push(TicketEventKind::Updated);
    }
    let (moved, kept) = ticket.keep_promise(seen.due_by, &seen.promise);
    for (kind, at) in kept {
        let at = at.format(&Rfc3339).ok();
        tx.event(ticket, kind, &seen.team, None, at, None)?;
    }
    if moved {
        kinds.push(TicketEventKind::Updated); // live pages show the promise
    }
    let Some(mapped) = seen.status else {
        return Ok(());
    };
    let mut still_queued = Vec::new();
    for seq in &queued.status {
        if tx.outbox_entry(*seq)?.is_some() {
            still_queued.push(*seq);
        }
    }
    let decision = decide_status(
        ticket.status,
        (ticket.sdp_status.as_deref(), seen.sdp_status.as_deref()),
        reassigned,
        mapped,
        !still_queued.is_empty(),
    );
    if let StatusDecision::Apply { to, conflict } = decision {
        if conflict {
            ticket.updated_at = now;
            let detail = format!(
                "status changed on both sides; ServiceDesk Plus ({}) wins",
                seen.sdp_status.clone().unwrap_or_default()
            );
            let (from, to) = (Some(ticket.status.to_string()), Some(to.to_string()));
            tx.event(
                ticket,
                EventKind::Conflict,
                &Actor::system(),
                from,
                to,
                Some(detail),
            )?;
            for seq in &still_queued {
                tx.remove_outbox(*seq)?;
                ticket.sdp_pending = ticket.sdp_pending.saturating_sub(1);
            }
        }
        transition(tx, ticket, Action::Team(to), &seen.team, None, window, now)?;
        kinds.push(TicketEventKind::StatusChanged);
    }
    ticket.sdp_status.clone_from(&seen.sdp_status);
    Ok(())
}

/// Requester, subject and priority changed in SDP, each with its history line. The former
/// requester no longer sees the ticket.
fn apply_details(
    tx: &TicketTx<'_>,
    ticket: &mut Ticket,
    seen: &Observation,
    cc_queued: bool,
    now: OffsetDateTime,
    kinds: &mut Vec<TicketEventKind>,
) -> TxResult<()> {
    let mut changed = Vec::new();
    if let Some(cc) = seen
        .cc
        .as_ref()
        .filter(|cc| !cc_queued && **cc != ticket.cc)
    {
        let gone = ticket.cc.iter().filter(|c| !cc.contains(c)).cloned();
        let new = cc.iter().filter(|c| !ticket.cc.contains(c)).cloned();
        let lines: Vec<_> = gone
            .map(|e| (EventKind::CcRemoved, Some(e), None))
            .chain(new.map(|e| (EventKind::CcAdded, None, Some(e))))
            .collect();
        ticket.cc.clone_from(cc);
        ticket.updated_at = now;
        for (kind, from, to) in lines {
            tx.event(ticket, kind, &seen.team, from, to, None)?;
        }
        kinds.push(TicketEventKind::Updated);
    }
    if let Some(requester) = seen.requester.clone().filter(|r| *r != ticket.requester) {
        let from = std::mem::replace(&mut ticket.requester, requester);
        changed.push((
            EventKind::RequesterChanged,
            from.name,
            ticket.requester.name.clone(),
        ));
    }
    if let Some(subject) = seen.subject.clone().filter(|s| *s != ticket.subject) {
        let from = std::mem::replace(&mut ticket.subject, subject);
        changed.push((EventKind::SubjectChanged, from, ticket.subject.clone()));
    }
    if let Some(priority) = seen.priority.filter(|p| *p != ticket.priority) {
        let from = std::mem::replace(&mut ticket.priority, priority);
        changed.push((
            EventKind::PriorityChanged,
            from.as_str().to_owned(),
            priority.as_str().to_owned(),
        ));
    }
    for (kind, from, to) in changed {
        ticket.updated_at = now;
        tx.event(ticket, kind, &seen.team, Some(from), Some(to), None)?;
        kinds.push(TicketEventKind::Updated);
    }
    Ok(())
}

fn apply_messages(
    tx: &TicketTx<'_>,
    ticket: &mut Ticket,
    incoming: &[TeamMessage],
    now: OffsetDateTime,
    kinds: &mut Vec<TicketEventKind>,
) -> TxResult<()> {
    for m in incoming {
        if tx.seen(ticket.id, &m.seen_key)? {
            continue;
        }
        match m.version {
            Some(version) => tx.mark_seen_at(ticket.id, &m.seen_key, version)?,
            None => tx.mark_seen(ticket.id, &m.seen_key)?,
        }
        let message = Message {
            id: MessageId(tx.next_item()?),
            ticket: ticket.id,
            author: m.author.clone(),
            body: m.body.clone(),
            created_at: m.at.unwrap_or(now),
            origin: Origin::Sdp,
            delivery: Delivery::Delivered,
            sdp_id: Some(m.sdp_id.clone()),
            edited_at: None,
        };
        tx.message(&message)?;
        ticket.updated_at = now;
        let author = Actor::team(&m.author.name);
        tx.event(ticket, EventKind::MessageAdded, &author, None, None, None)?;
        kinds.push(TicketEventKind::Message);
    }
    Ok(())
}

/// Edits and withdrawals of team messages, each with a history line (a withdrawal's keeps no
/// content).
fn apply_changes(
    tx: &TicketTx<'_>,
    ticket: &mut Ticket,
    changes: &[TeamChange],
    now: OffsetDateTime,
    kinds: &mut Vec<TicketEventKind>,
) -> TxResult<()> {
    let team = Actor::team("ServiceDesk Plus");
    for change in changes {
        match change {
            TeamChange::Edited {
                message,
                seen_key,
                body,
                version,
                at,
            } => {
                tx.mark_seen_at(ticket.id, seen_key, *version)?;
                let (Some(body), Some(mut m)) = (body, tx.get_message(ticket.id, *message)?) else {
                    continue;
                };
                m.body.clone_from(body);
                m.edited_at = Some(at.unwrap_or(now));
                tx.message(&m)?;
                ticket.updated_at = now;
                tx.event(ticket, EventKind::MessageEdited, &team, None, None, None)?;
                kinds.push(TicketEventKind::Message);
            }
            TeamChange::Withdrawn { message, seen_key } => {
                tx.unmark_seen(ticket.id, seen_key)?;
                if tx.get_message(ticket.id, *message)?.is_none() {
                    continue;
                }
                tx.remove_message(ticket.id, *message)?;
                ticket.updated_at = now;
                tx.event(ticket, EventKind::MessageWithdrawn, &team, None, None, None)?;
                kinds.push(TicketEventKind::Message);
            }
        }
    }
    Ok(())
}

fn apply_files(
    tx: &TicketTx<'_>,
    ticket: &mut Ticket,
    files: &[TeamFile],
    team: &Actor,
    now: OffsetDateTime,
    kinds: &mut Vec<TicketEventKind>,
) -> TxResult<()> {
    for f in files {
        if tx.seen(ticket.id, &f.seen_key)? {
            continue;
        }
        tx.mark_seen(ticket.id, &f.seen_key)?;
        let attachment = Attachment {
            id: AttachmentId(tx.next_item()?),
            ticket: ticket.id,
            filename: f.filename.clone(),
            size: f.content.size,
            content_type: f.content.content_type.clone(),
            sha256: f.content.sha256.clone(),
            created_at: now,
            origin: Origin::Sdp,
            delivery: Delivery::Delivered,
            uploaded_by: Author {
                name: team.name.clone(),
                role: AuthorRole::Team,
            },
            sdp_id: Some(f.sdp_id.clone()),
        };
        tx.attachment(&attachment)?;
        ticket.updated_at = now;
        let name = Some(f.filename.clone());
        tx.event(ticket, EventKind::AttachmentAdded, team, None, None, name)?;
        kinds.push(TicketEventKind::Attachment);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
