//! The ticket as the store keeps it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{EventKind, Status, TicketId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    InformationRequest,
    ProblemReport,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::InformationRequest, Kind::ProblemReport];

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::InformationRequest => "information_request",
            Kind::ProblemReport => "problem_report",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Kind::InformationRequest => 0,
            Kind::ProblemReport => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    #[default]
    Pending,
    Synced,
    Failed,
}

impl SyncState {
    pub const ALL: [SyncState; 3] = [SyncState::Pending, SyncState::Synced, SyncState::Failed];

    pub fn parse(s: &str) -> Option<SyncState> {
        SyncState::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Pending => "pending",
            SyncState::Synced => "synced",
            SyncState::Failed => "failed",
        }
    }
}

/// Where the ticket stands in `ServiceDesk` Plus, as far as deskbridge knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SdpLink {
    pub request_id: Option<String>,
    /// The number the service desk knows the request by: Cloud's `display_id`, on-prem its id.
    #[serde(default)]
    pub number: Option<String>,
    pub sync_state: SyncState,
    pub last_error: Option<String>,
    /// Set while SDP cannot take changes to the request: the ticket stays readable, and customers'
    /// changes are refused until SDP has the request back.
    #[serde(default)]
    pub fate: Option<SdpFate>,
}

/// What became of a ticket's request in SDP when it left the ordinary path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SdpFate {
    /// Moved to SDP's trash; the team can restore it.
    Trashed,
    /// Deleted from SDP, or no longer there to read.
    Removed,
    /// Merged into another request, where the conversation goes on.
    Merged {
        /// SDP's id of the request it was merged into.
        into: String,
        /// The portal ticket of that request, when the portal has it.
        #[serde(default)]
        ticket: Option<String>,
    },
}

impl SdpFate {
    /// The history event that records this fate.
    pub fn event(&self) -> super::EventKind {
        match self {
            SdpFate::Trashed => super::EventKind::SdpTrashed,
            SdpFate::Removed => super::EventKind::SdpRemoved,
            SdpFate::Merged { .. } => super::EventKind::SdpMerged,
        }
    }

    /// Why a customer's change is refused, in words a customer understands.
    pub fn refusal(&self) -> String {
        match self {
            SdpFate::Trashed | SdpFate::Removed => {
                "the service desk removed this ticket; it can be read but no longer changed".into()
            }
            SdpFate::Merged { into, ticket } => format!(
                "the service desk merged this ticket into {}; please continue there",
                ticket.clone().unwrap_or_else(|| format!("request #{into}"))
            ),
        }
    }
}

/// A snapshot of the requester taken when the ticket was opened, so listing needs no user lookups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub organization: String,
    /// Their organisation when they became the requester: whose members may share the ticket.
    #[serde(default)]
    pub org: Option<super::OrgId>,
}

impl Requester {
    pub fn of(user: &super::User) -> Requester {
        Requester {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            organization: user.organization.clone(),
            org: user.org,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    /// Stable external id for systems that should not depend on the human number.
    pub uid: Uuid,
    pub number: String,
    pub kind: Kind,
    pub subject: String,
    pub description: String,
    pub priority: Priority,
    #[serde(default)]
    pub service: Option<String>,
    /// The SDP category (and subcategory) chosen instead of a free-text service.
    #[serde(default)]
    pub category: Option<super::ServiceChoice>,
    pub status: Status,
    pub requester: Requester,
    /// Colleagues copied on the ticket (lower-case e-mails): SDP's `email_ids_to_notify`.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Who raised the ticket when it was not the requester (on behalf of a colleague).
    #[serde(default)]
    pub author: Option<Requester>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub assignee: Option<String>,
    /// SDP's `due_by_time`: when the service desk aims to resolve the ticket.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub due_by: Option<OffsetDateTime>,
    /// The rest of the service desk's promise (first response) and when it kept it.
    #[serde(default)]
    pub promise: Promise,
    #[serde(default)]
    pub sdp: SdpLink,
    /// The SDP status name at the last read, to tell which side changed the status since.
    #[serde(default)]
    pub sdp_status: Option<String>,
    /// Changes of this ticket not yet delivered to SDP (queued or dead-lettered).
    #[serde(default)]
    pub sdp_pending: u32,
    /// SDP's `last_updated_time` (ms) of the newest read applied; older reads change no field.
    #[serde(default)]
    pub sdp_updated_ms: Option<i64>,
}

impl Ticket {
    /// An open ticket past a time the service desk promised.
    pub fn overdue(&self, now: OffsetDateTime) -> bool {
        self.respond_overdue(now) || self.resolve_overdue(now)
    }

    /// The first response is late: as SDP flags it, or as the clock says while nobody responded
    /// (SDP sets its flags on its own schedule, not at once).
    pub fn respond_overdue(&self, now: OffsetDateTime) -> bool {
        self.status.is_open()
            && (self.promise.respond_overdue
                || (self.promise.responded_at.is_none()
                    && self.promise.respond_by.is_some_and(|by| by < now)))
    }

    /// The resolution is late: as SDP flags it, or as the clock says.
    pub fn resolve_overdue(&self, now: OffsetDateTime) -> bool {
        self.status.is_open()
            && (self.promise.resolve_overdue || self.due_by.is_some_and(|due| due < now))
    }

    /// Takes SDP's `due_by_time` and the rest of its promise. Returns whether anything moved, and
    /// the times newly kept (see [`Promise::update`]).
    pub fn keep_promise(
        &mut self,
        due_by: Option<OffsetDateTime>,
        seen: &Promise,
    ) -> (bool, Vec<(EventKind, OffsetDateTime)>) {
        let before = (self.due_by, self.promise.clone());
        self.due_by = due_by;
        let kept = self.promise.update(seen);
        (before != (self.due_by, self.promise.clone()), kept)
    }

    /// Moves the ticket to `to`, keeping the resolution and closure times consistent with it.
    pub fn set_status(&mut self, to: Status, now: OffsetDateTime) {
        match to {
            Status::Resolved => {
                self.resolved_at = Some(now);
                self.closed_at = None;
            }
            Status::Closed => {
                self.closed_at = Some(now);
            }
            _ => {
                self.resolved_at = None;
                self.closed_at = None;
            }
        }
        self.status = to;
    }

    /// The organisation whose members may share the ticket.
    pub fn org(&self) -> Option<super::OrgId> {
        self.requester.org
    }

    /// Whether the person with this (normalised) e-mail is on the ticket: its requester, its
    /// author, or copied on it.
    pub fn is_on(&self, email: &str) -> bool {
        self.requester.email == email
            || self.author.as_ref().is_some_and(|a| a.email == email)
            || self.cc.iter().any(|c| c == email)
    }

    /// Case-insensitive match of `needle` (already lower-cased) against subject, description and number.
    pub fn matches(&self, needle: &str) -> bool {
        [&self.subject, &self.description, &self.number]
            .iter()
            .any(|field| field.to_lowercase().contains(needle))
    }
}

/// What SDP promises beyond `due_by` (its SLA's first response), its overdue flags, and the
/// times it kept the promise (mirrored into the history once each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    /// SDP's `first_response_due_by_time`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub respond_by: Option<OffsetDateTime>,
    /// SDP's `is_first_response_overdue`.
    #[serde(default)]
    pub respond_overdue: bool,
    /// SDP's `is_overdue` (resolution).
    #[serde(default)]
    pub resolve_overdue: bool,
    /// SDP's `responded_time`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub responded_at: Option<OffsetDateTime>,
    /// SDP's `resolved_time` (the portal's `resolved_at` is when the portal saw it).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
}

impl Promise {
    /// Takes what SDP shows now and returns the times newly kept, for the history: the first
    /// response and the first resolution, once each (a request resolved again after a reopen
    /// shows in the status history already).
    pub fn update(&mut self, seen: &Promise) -> Vec<(EventKind, OffsetDateTime)> {
        let mut kept = Vec::new();
        self.respond_by = seen.respond_by;
        self.respond_overdue = seen.respond_overdue;
        self.resolve_overdue = seen.resolve_overdue;
        for (which, mine, theirs) in [
            (
                EventKind::SdpResponded,
                &mut self.responded_at,
                seen.responded_at,
            ),
            (
                EventKind::SdpResolved,
                &mut self.resolved_at,
                seen.resolved_at,
            ),
        ] {
            if let Some(at) = theirs.filter(|_| mine.is_none()) {
                *mine = Some(at);
                kept.push((which, at));
            }
        }
        kept
    }
}

/// A ticket for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn sample(id: u64) -> Ticket {
    let now = OffsetDateTime::now_utc();
    Ticket {
        id: TicketId(id),
        uid: Uuid::nil(),
        number: TicketId(id).number("DB"),
        kind: Kind::ProblemReport,
        subject: "VPN <down>".into(),
        description: "Since 09:00\nbranch 12 & 13".into(),
        priority: Priority::Urgent,
        service: None,
        category: None,
        status: Status::New,
        requester: Requester {
            id: UserId::new(),
            email: "a@example.com".into(),
            name: "Alice".into(),
            organization: String::new(),
            org: None,
        },
        cc: Vec::new(),
        author: None,
        created_at: now,
        updated_at: now,
        resolved_at: None,
        closed_at: None,
        assignee: None,
        due_by: None,
        promise: Promise::default(),
        sdp: SdpLink::default(),
        sdp_status: None,
        sdp_pending: 0,
        sdp_updated_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::Promise;
    use crate::domain::EventKind;

    #[test]
    fn promise_times_are_kept_once_each() {
        let at = datetime!(2026-12-01 10:00 UTC);
        let seen = Promise {
            respond_by: Some(at),
            respond_overdue: true,
            responded_at: Some(at),
            ..Promise::default()
        };
        let mut mine = Promise::default();
        assert_eq!(mine.update(&seen), vec![(EventKind::SdpResponded, at)]);
        assert!(mine.respond_overdue);
        assert_eq!(mine.update(&seen), vec![]);
        // Reopened in SDP: the time goes, the history keeps it, and it is not added again.
        assert_eq!(mine.update(&Promise::default()), vec![]);
        assert_eq!(mine.responded_at, Some(at));
        assert_eq!(mine.update(&seen), vec![]);
        let resolved = Promise {
            resolved_at: Some(at),
            ..seen.clone()
        };
        assert_eq!(mine.update(&resolved), vec![(EventKind::SdpResolved, at)]);
        // Resolved again later: once is enough.
        let again = Promise {
            resolved_at: Some(datetime!(2026-12-02 10:00 UTC)),
            ..seen
        };
        assert_eq!(mine.update(&again), vec![]);
    }
}
