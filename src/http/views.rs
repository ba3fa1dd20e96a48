//! The JSON shapes of the REST API. Domain types stay free of wire concerns; these mirror the
//! documented fields exactly (RFC 3339 UTC times, `snake_case` enums).

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::domain::{
    Actor, Attachment, Author, Delivery, Event, EventKind, Kind, Message, Origin, Priority, Role,
    SdpLink, ServiceChoice, Status, SyncState, Ticket, User,
};

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RequesterView {
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub organization: String,
}

impl From<&crate::domain::Requester> for RequesterView {
    fn from(r: &crate::domain::Requester) -> RequesterView {
        RequesterView {
            id: r.id.0,
            email: r.email.clone(),
            name: r.name.clone(),
            organization: r.organization.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketView {
    /// Stable internal id.
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    /// Human number, e.g. `DB-000123`.
    pub number: String,
    pub kind: Kind,
    pub subject: String,
    pub description: String,
    pub priority: Priority,
    pub service: Option<String>,
    /// The SDP category (and subcategory) chosen when the ticket was raised.
    pub category: Option<ServiceChoice>,
    pub status: Status,
    pub requester: RequesterView,
    /// Who raised the ticket for the requester (a colleague), if not the requester.
    pub author: Option<RequesterView>,
    /// Colleagues copied on the ticket (SDP's `email_ids_to_notify`).
    pub cc: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<OffsetDateTime>,
    pub assignee: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    /// When the service desk aims to resolve the ticket (SDP's `due_by_time`).
    pub due_by: Option<OffsetDateTime>,
    /// When the service desk will first respond (SDP's `first_response_due_by_time`).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub respond_by: Option<OffsetDateTime>,
    /// When the service desk first responded (SDP's `responded_time`).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub responded_at: Option<OffsetDateTime>,
    /// The first response is late (SDP's `is_first_response_overdue`, or past `respond_by`).
    pub respond_overdue: bool,
    /// The resolution is late (SDP's `is_overdue`, or past `due_by`).
    pub resolve_overdue: bool,
    /// Either promise is late.
    pub overdue: bool,
    pub sdp: SdpLink,
}

/// What a customer reads instead of the sync's error: SDP's errors name internal hosts and
/// wording meant for the admin, who sees them in the console and the admin API.
fn customer_sync_note(sdp: &SdpLink) -> Option<String> {
    match (sdp.sync_state, &sdp.last_error) {
        (SyncState::Failed, _) => Some(
            "delayed: the service desk has not accepted this ticket's latest change yet; \
             our team is looking into it"
                .into(),
        ),
        (SyncState::Pending, Some(_)) => {
            Some("retrying: the service desk could not be reached yet; we keep trying".into())
        }
        (SyncState::Pending | SyncState::Synced, _) => None,
    }
}

impl TicketView {
    /// The ticket as its reader sees it: `admin` shows the sync's last error as it is.
    pub(crate) fn new(t: &Ticket, now: OffsetDateTime, admin: bool) -> TicketView {
        let mut sdp = t.sdp.clone();
        if !admin {
            sdp.last_error = customer_sync_note(&t.sdp);
        }
        TicketView {
            id: t.uid,
            number: t.number.clone(),
            kind: t.kind,
            subject: t.subject.clone(),
            description: t.description.clone(),
            priority: t.priority,
            service: t.service.clone(),
            category: t.category.clone(),
            status: t.status,
            requester: RequesterView::from(&t.requester),
            author: t.author.as_ref().map(RequesterView::from),
            cc: t.cc.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            resolved_at: t.resolved_at,
            closed_at: t.closed_at,
            assignee: t.assignee.clone(),
            due_by: t.due_by,
            respond_by: t.promise.respond_by,
            responded_at: t.promise.responded_at,
            respond_overdue: t.respond_overdue(now),
            resolve_overdue: t.resolve_overdue(now),
            overdue: t.overdue(now),
            sdp,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketList {
    pub items: Vec<TicketView>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessageView {
    pub id: u64,
    pub author: Author,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    pub origin: Origin,
    pub delivery: Delivery,
    /// When the team last edited it in SDP; null if never.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub edited_at: Option<OffsetDateTime>,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> MessageView {
        MessageView {
            id: m.id.0,
            author: m.author.clone(),
            body: m.body.clone(),
            created_at: m.created_at,
            origin: m.origin,
            delivery: m.delivery,
            edited_at: m.edited_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttachmentView {
    pub id: u64,
    pub filename: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    pub origin: Origin,
    pub delivery: Delivery,
}

impl From<&Attachment> for AttachmentView {
    fn from(a: &Attachment) -> AttachmentView {
        AttachmentView {
            id: a.id.0,
            filename: a.filename.clone(),
            size: a.size,
            content_type: a.content_type.clone(),
            sha256: a.sha256.clone(),
            created_at: a.created_at,
            origin: a.origin,
            delivery: a.delivery,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventView {
    pub id: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub kind: EventKind,
    pub actor: Actor,
    pub from: Option<String>,
    pub to: Option<String>,
    pub detail: Option<String>,
}

impl EventView {
    /// The event as its reader sees it: a dropped change's detail is SDP's error, for admins only.
    pub(crate) fn new(e: &Event, admin: bool) -> EventView {
        let internal = e.kind == EventKind::SdpDiscarded;
        EventView {
            id: e.id.0,
            at: e.at,
            kind: e.kind,
            actor: e.actor.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
            detail: if internal && !admin {
                None
            } else {
                e.detail.clone()
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub organization: String,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<&User> for UserView {
    fn from(u: &User) -> UserView {
        UserView {
            id: u.id.0,
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role,
            organization: u.organization.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// Every list answers `{items: [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Items<T> {
    pub items: Vec<T>,
}

pub(crate) fn json_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("views serialize: plain structs with string keys")
}
