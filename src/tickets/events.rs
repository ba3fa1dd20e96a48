//! What a ticket command tells the rest of the appliance once it is durable: which ticket changed
//! and how. The broadcaster publishes these to live pages; nothing here is stored.

use crate::domain::{OrgId, Status, Ticket, TicketId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketEventKind {
    Created,
    StatusChanged,
    Message,
    Attachment,
    Updated,
}

impl TicketEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketEventKind::Created => "created",
            TicketEventKind::StatusChanged => "status",
            TicketEventKind::Message => "message",
            TicketEventKind::Attachment => "attachment",
            TicketEventKind::Updated => "updated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEvent {
    pub ticket: TicketId,
    pub number: String,
    pub requester: UserId,
    /// The ticket's organisation and who else is on it (author, copied), for sharing.
    pub org: Option<OrgId>,
    pub on: Vec<String>,
    pub kind: TicketEventKind,
    pub status: Status,
}

impl TicketEvent {
    pub(crate) fn of(ticket: &Ticket, kind: TicketEventKind) -> TicketEvent {
        TicketEvent {
            ticket: ticket.id,
            number: ticket.number.clone(),
            requester: ticket.requester.id,
            org: ticket.org(),
            on: ticket
                .author
                .iter()
                .map(|a| a.email.clone())
                .chain(ticket.cc.iter().cloned())
                .collect(),
            kind,
            status: ticket.status,
        }
    }
}
