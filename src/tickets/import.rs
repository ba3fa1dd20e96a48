//! Requests raised in SDP for a portal customer become portal tickets, linked to their request.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{
    Actor, EventKind, Kind, Priority, Requester, SdpLink, Status, SyncState, Ticket, TicketId, User,
};
use crate::store::{OpError, Store};

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
}

/// Creates the ticket for an SDP request, unless one is linked already. Returns the ticket and
/// whether it is new.
pub(crate) fn import(
    store: &Store,
    request: &Imported,
    requester: &User,
) -> Result<(TicketId, bool), OpError> {
    let now = OffsetDateTime::now_utc();
    let sdp_id = &request.sdp_id;
    store.transact(|tx| {
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
        let ticket = Ticket {
            id,
            uid: Uuid::now_v7(),
            number,
            kind: request.kind,
            subject,
            description: request.description.clone(),
            priority: request.priority,
            service: None,
            status: Status::New,
            requester: Requester::of(requester),
            created_at: request.created_at,
            updated_at: now,
            resolved_at: None,
            closed_at: None,
            assignee: None,
            due_by: None,
            sdp: SdpLink {
                request_id: Some(sdp_id.clone()),
                sync_state: SyncState::Synced,
                last_error: None,
            },
            sdp_status: None,
            sdp_pending: 0,
            sdp_updated_ms: None,
        };
        tx.link_sdp(sdp_id, id)?;
        let (to, detail) = (
            Some(Status::New.to_string()),
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
        tx.save(None, &ticket)?;
        Ok((id, true))
    })
}
