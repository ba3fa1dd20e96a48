//! Organisations: the companies customers belong to, and how much their members share.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{OrgId, Ticket, User};

/// What members of an organisation see of each other's tickets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// Each customer sees only the tickets they requested.
    #[default]
    Off,
    /// Members see the tickets they are on: requested, or copied on (CC).
    Participants,
    /// Members see every ticket of the organisation.
    Organization,
}

impl Sharing {
    pub const ALL: [Sharing; 3] = [Sharing::Off, Sharing::Participants, Sharing::Organization];

    pub fn as_str(self) -> &'static str {
        match self {
            Sharing::Off => "off",
            Sharing::Participants => "participants",
            Sharing::Organization => "organization",
        }
    }

    pub fn parse(s: &str) -> Option<Sharing> {
        Sharing::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    /// E-mail domains (lower-case) whose new customers join this organisation.
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub sharing: Sharing,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Organization {
    pub fn new(name: &str) -> Organization {
        Organization {
            id: OrgId::new(),
            name: name.trim().to_owned(),
            domains: Vec::new(),
            sharing: Sharing::Off,
            created_at: OffsetDateTime::now_utc(),
        }
    }

    /// Whether `member` (a customer of this organisation) may read and write `ticket` through
    /// sharing. Requesters always reach their own tickets; this decides everyone else.
    pub fn shares(&self, member: &User, ticket: &Ticket) -> bool {
        self.admits(member, ticket.org(), ticket.is_on(&member.email))
    }

    /// [`Organization::shares`] from what a ticket event carries: the ticket's organisation and
    /// whether the member is on it.
    pub fn admits(&self, member: &User, ticket_org: Option<OrgId>, is_on: bool) -> bool {
        if member.org != Some(self.id) || ticket_org != Some(self.id) {
            return false;
        }
        match self.sharing {
            Sharing::Off => false,
            Sharing::Participants => is_on,
            Sharing::Organization => true,
        }
    }
}

/// The domain of an e-mail address, lower-case.
pub fn email_domain(email: &str) -> Option<&str> {
    email
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}
