//! What hangs off a ticket: discussion messages, attachments and the history of events.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{AttachmentId, EventId, MessageId, Role, TicketId, User, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Portal,
    Sdp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    #[default]
    Pending,
    Delivered,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthorRole {
    Customer,
    Team,
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Author {
    pub name: String,
    pub role: AuthorRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub ticket: TicketId,
    pub author: Author,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub origin: Origin,
    pub delivery: Delivery,
    /// The SDP note or conversation this message came from or was delivered as.
    #[serde(default)]
    pub sdp_id: Option<String>,
    /// When the team last edited it in SDP.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub edited_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    pub ticket: TicketId,
    pub filename: String,
    pub size: u64,
    pub content_type: String,
    /// Hex sha256 of the content; also the name of the content file.
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub origin: Origin,
    pub delivery: Delivery,
    pub uploaded_by: Author,
    #[serde(default)]
    pub sdp_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Customer,
    Admin,
    Integration,
    Team,
    System,
}

/// Who did something, for the history. When the Cloudeka portal acts for a customer, `via` names the
/// integration account, so both identities are on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    #[schema(value_type = Option<String>)]
    pub id: Option<UserId>,
    pub name: String,
    pub email: Option<String>,
    #[schema(no_recursion)]
    pub via: Option<Box<Actor>>,
}

impl Actor {
    pub fn user(user: &User) -> Actor {
        Actor {
            kind: match user.role {
                Role::Customer => ActorKind::Customer,
                Role::Admin => ActorKind::Admin,
                Role::Integration => ActorKind::Integration,
            },
            id: Some(user.id),
            name: user.name.clone(),
            email: Some(user.email.clone()),
            via: None,
        }
    }

    pub fn on_behalf(customer: &User, integration: &User) -> Actor {
        Actor {
            via: Some(Box::new(Actor::user(integration))),
            ..Actor::user(customer)
        }
    }

    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            id: None,
            name: "deskbridge".into(),
            email: None,
            via: None,
        }
    }

    pub fn team(name: &str) -> Actor {
        Actor {
            kind: ActorKind::Team,
            id: None,
            name: name.into(),
            email: None,
            via: None,
        }
    }

    /// How this actor signs a message in the discussion.
    pub fn author(&self) -> Author {
        let role = match self.kind {
            ActorKind::Customer | ActorKind::Integration => AuthorRole::Customer,
            ActorKind::Admin | ActorKind::Team => AuthorRole::Team,
            ActorKind::System => AuthorRole::System,
        };
        Author {
            name: self.name.clone(),
            role,
        }
    }
}

/// What a history event records. Stored by its snake-case name, which is also what the API shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Submitted in the portal (or through the API).
    Created,
    /// Taken in from a request raised in SDP.
    Imported,
    /// SDP created the request for a portal ticket.
    SdpLinked,
    /// The team set a status in SDP.
    StatusChanged,
    /// The status changed on both sides; SDP's won.
    Conflict,
    /// The team (re)assigned the request.
    Assigned,
    /// The customer accepted the resolution.
    Confirmed,
    /// The customer reopened (explicitly or by replying).
    Reopened,
    MessageAdded,
    AttachmentAdded,
    /// An admin dropped a change SDP refused.
    SdpDiscarded,
    /// The team moved the request to SDP's trash.
    SdpTrashed,
    /// The request was deleted from SDP.
    SdpRemoved,
    /// The team merged the request into another (`to`: that one).
    SdpMerged,
    /// The request is back in SDP (out of the trash).
    SdpRestored,
    /// The team gave the request another requester in SDP (`from`, `to`: names).
    RequesterChanged,
    /// The team changed the subject in SDP.
    SubjectChanged,
    /// The team changed the priority in SDP.
    PriorityChanged,
    /// The team edited one of its messages in SDP.
    MessageEdited,
    /// The team deleted one of its messages in SDP, or made it private again: it left the
    /// discussion (the line keeps no content).
    MessageWithdrawn,
    /// SDP recorded the first response (`to`: its `responded_time`, RFC 3339).
    SdpResponded,
    /// SDP recorded the resolution (`to`: its `resolved_time`, RFC 3339).
    SdpResolved,
    /// A colleague was copied on the ticket (`to`: their e-mail), in the portal or in SDP.
    CcAdded,
    /// A colleague is no longer copied (`from`: their e-mail).
    CcRemoved,
}

impl EventKind {
    pub const ALL: [EventKind; 24] = [
        EventKind::Created,
        EventKind::Imported,
        EventKind::SdpLinked,
        EventKind::StatusChanged,
        EventKind::Conflict,
        EventKind::Assigned,
        EventKind::Confirmed,
        EventKind::Reopened,
        EventKind::MessageAdded,
        EventKind::AttachmentAdded,
        EventKind::SdpDiscarded,
        EventKind::SdpTrashed,
        EventKind::SdpRemoved,
        EventKind::SdpMerged,
        EventKind::SdpRestored,
        EventKind::RequesterChanged,
        EventKind::SubjectChanged,
        EventKind::PriorityChanged,
        EventKind::MessageEdited,
        EventKind::MessageWithdrawn,
        EventKind::SdpResponded,
        EventKind::SdpResolved,
        EventKind::CcAdded,
        EventKind::CcRemoved,
    ];

    /// The stored and API name (`status_changed`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Imported => "imported",
            EventKind::SdpLinked => "sdp_linked",
            EventKind::StatusChanged => "status_changed",
            EventKind::Conflict => "conflict",
            EventKind::Assigned => "assigned",
            EventKind::Confirmed => "confirmed",
            EventKind::Reopened => "reopened",
            EventKind::MessageAdded => "message_added",
            EventKind::AttachmentAdded => "attachment_added",
            EventKind::SdpDiscarded => "sdp_discarded",
            EventKind::SdpTrashed => "sdp_trashed",
            EventKind::SdpRemoved => "sdp_removed",
            EventKind::SdpMerged => "sdp_merged",
            EventKind::SdpRestored => "sdp_restored",
            EventKind::RequesterChanged => "requester_changed",
            EventKind::SubjectChanged => "subject_changed",
            EventKind::PriorityChanged => "priority_changed",
            EventKind::MessageEdited => "message_edited",
            EventKind::MessageWithdrawn => "message_withdrawn",
            EventKind::SdpResponded => "sdp_responded",
            EventKind::SdpResolved => "sdp_resolved",
            EventKind::CcAdded => "cc_added",
            EventKind::CcRemoved => "cc_removed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub ticket: TicketId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: EventKind,
    pub actor: Actor,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn event_kinds_are_stored_by_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            let back: EventKind = serde_json::from_value(kind.as_str().into()).unwrap();
            assert_eq!(back, kind);
        }
    }
}
