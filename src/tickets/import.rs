//! Requests raised in SDP for a portal customer become portal tickets, linked to their request: one
//! at a time when a read finds one, or a page (up to 100) at a time in the backfill's first pass,
//! which marks each ticket's details (description, messages, files) as still to be read.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{
    Actor, EventKind, Kind, Priority, Requester, SdpLink, Status, SyncState, Ticket, TicketId, User,
};
use crate::store::{OpError, Store, TicketTx, TxResult};

/// An SDP request in portal terms.
#[derive(Debug, Clone)]
pub(crate) struct Imported {
    pub sdp_id: String,
    pub kind: Kind,
    pub priority: Priority,
    /// Plain text, at most 250 characters; empty gets a generated subject.
    pub subject: String,
    pub description: String,
    pub created_at: OffsetDateTime,
    /// What SDP's status maps to, and its name; `None` leaves the ticket new until it is read.
    pub status: Option<(Status, String)>,
    pub assignee: Option<String>,
    pub due_by: Option<OffsetDateTime>,
    /// SDP's `last_updated_time` (ms) of what was imported.
    pub updated_ms: Option<i64>,
    /// The description, messages and files are still to be read.
    pub details_pending: bool,
}

/// Creates the ticket for an SDP request, unless one is linked already. Returns the ticket and
/// whether it is new.
pub(crate) fn import(
    store: &Store,
    request: &Imported,
    requester: &User,
) -> Result<(TicketId, bool), OpError> {
    store.transact(|tx| one(tx, request, requester, OffsetDateTime::now_utc()))
}

/// Creates the tickets of a page of SDP requests in one transaction; each is skipped when linked
/// already. Returns how many were created.
pub(crate) fn import_page(store: &Store, page: &[(Imported, User)]) -> Result<u64, OpError> {
    store.transact(|tx| {
        let now = OffsetDateTime::now_utc();
        let mut created = 0;
        for (request, requester) in page {
            created += u64::from(one(tx, request, requester, now)?.1);
        }
        Ok(created)
    })
}

fn one(
    tx: &TicketTx<'_>,
    request: &Imported,
    requester: &User,
    now: OffsetDateTime,
) -> TxResult<(TicketId, bool)> {
    let sdp_id = &request.sdp_id;
    // A concurrent read may have imported it already.
    if let Some(existing) = tx.ticket_by_sdp(sdp_id)? {
        return Ok((existing, false));
    }
    let (id, number) = tx.next_ticket()?;
    let subject = if request.subject.trim().is_empty() {
        format!("ServiceDesk Plus request {sdp_id}")
    } else {
        request.subject.clone()
    };
    let mut ticket = Ticket {
        id,
        uid: Uuid::now_v7(),
        number,
        kind: request.kind,
        subject,
        description: request.description.clone(),
        priority: request.priority,
        service: None,
        category: None,
        status: Status::New,
        requester: Requester::of(requester),
        cc: Vec::new(),
        author: None,
        created_at: request.created_at,
        updated_at: now,
        resolved_at: None,
        closed_at: None,
        assignee: request.assignee.clone(),
        due_by: request.due_by,
        promise: crate::domain::Promise::default(),
        sdp: SdpLink {
            request_id: Some(sdp_id.clone()),
            number: None,
            sync_state: SyncState::Synced,
            last_error: None,
            fate: None,
        },
        sdp_status: None,
        sdp_pending: 0,
        sdp_updated_ms: request.updated_ms,
    };
    if let Some((status, name)) = &request.status {
        ticket.set_status(*status, now);
        ticket.sdp_status = Some(name.clone());
    }
    tx.link_sdp(sdp_id, id)?;
    let (to, detail) = (
        Some(ticket.status.to_string()),
        Some(format!("ServiceDesk Plus request {sdp_id}")),
    );
    tx.event(
        &ticket,
        EventKind::Imported,
        &Actor::system(),
        None,
        to,
        detail,
    )?;
    if request.details_pending {
        tx.details_pending(id, sdp_id)?;
    }
    tx.save(None, &ticket)?;
    Ok((id, true))
}

/// Gives up reading a ticket's details (its request is gone from SDP): it keeps what the list
/// row gave it.
pub(crate) fn details_unavailable(store: &Store, ticket: TicketId) -> Result<(), OpError> {
    store.transact(|tx| tx.details_read(ticket).map(|_| ()))
}
