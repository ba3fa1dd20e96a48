//! The one ticket state machine. The portal's customer actions and, later, the changes read from
//! `ServiceDesk` Plus both go through [`apply`], so the rules cannot differ between the two paths.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Assigned,
    InProgress,
    Pending,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::New,
        Status::Assigned,
        Status::InProgress,
        Status::Pending,
        Status::Resolved,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Assigned => "assigned",
            Status::InProgress => "in_progress",
            Status::Pending => "pending",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Compact code used in index values so that list filters need not decode tickets.
    pub fn code(self) -> u8 {
        match self {
            Status::New => 0,
            Status::Assigned => 1,
            Status::InProgress => 2,
            Status::Pending => 3,
            Status::Resolved => 4,
            Status::Closed => 5,
        }
    }

    /// Whether the team still owes work: used for `overdue` and the "open" counts.
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What someone asks of a ticket's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The customer accepts the resolution.
    Confirm,
    /// The customer reopens with a reason.
    Reopen,
    /// The customer writes a message; on a resolved (or recently closed) ticket this reopens it.
    Reply,
    /// The operations team (`ServiceDesk` Plus) sets a status. SDP owns the operational status, so any
    /// change it makes is accepted.
    Team(Status),
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Confirm => "confirm",
            Action::Reopen => "reopen",
            Action::Reply => "reply",
            Action::Team(_) => "team update",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a ticket that is {from} cannot take the action '{action}'")]
    Invalid { from: Status, action: &'static str },
    #[error(
        "this ticket was closed more than {days} days ago and can no longer be reopened; please open a new ticket"
    )]
    ReopenWindowExpired { days: u32 },
}

/// The customer's reopen window, as configured (`portal.reopen_window_days`).
#[derive(Debug, Clone, Copy)]
pub struct ReopenWindow {
    pub days: u32,
}

impl ReopenWindow {
    fn allows(self, closed_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
        // A closed ticket without a recorded close time (imported data) is treated as just closed.
        closed_at.is_none_or(|at| now - at <= Duration::days(i64::from(self.days)))
    }
}

/// Decides the next status. `Ok(None)` means the action is legal and leaves the status as it is
/// (a reply on an open ticket, or the team repeating the current status).
pub fn apply(
    from: Status,
    closed_at: Option<OffsetDateTime>,
    action: Action,
    window: ReopenWindow,
    now: OffsetDateTime,
) -> Result<Option<Status>, TransitionError> {
    let invalid = || TransitionError::Invalid {
        from,
        action: action.name(),
    };
    let reopen = || {
        if from == Status::Closed && !window.allows(closed_at, now) {
            Err(TransitionError::ReopenWindowExpired { days: window.days })
        } else {
            Ok(Some(Status::New))
        }
    };
    match (action, from) {
        (Action::Confirm, Status::Resolved) => Ok(Some(Status::Closed)),
        (Action::Reopen | Action::Reply, Status::Resolved | Status::Closed) => reopen(),
        (Action::Confirm | Action::Reopen, _) => Err(invalid()),
        (Action::Reply, _) => Ok(None),
        (Action::Team(to), _) if to == from => Ok(None),
        (Action::Team(to), _) => Ok(Some(to)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: ReopenWindow = ReopenWindow { days: 30 };

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn confirm_only_from_resolved() {
        for from in Status::ALL {
            let got = apply(from, None, Action::Confirm, WINDOW, now());
            if from == Status::Resolved {
                assert_eq!(got, Ok(Some(Status::Closed)));
            } else {
                assert!(
                    matches!(got, Err(TransitionError::Invalid { .. })),
                    "{from}"
                );
            }
        }
    }

    #[test]
    fn reopen_from_resolved_or_closed_only() {
        for from in Status::ALL {
            let got = apply(from, Some(now()), Action::Reopen, WINDOW, now());
            match from {
                Status::Resolved | Status::Closed => assert_eq!(got, Ok(Some(Status::New))),
                _ => assert!(
                    matches!(got, Err(TransitionError::Invalid { .. })),
                    "{from}"
                ),
            }
        }
    }

    #[test]
    fn reopen_window_is_inclusive_and_then_expires() {
        let closed = now() - Duration::days(30);
        assert_eq!(
            apply(Status::Closed, Some(closed), Action::Reopen, WINDOW, now()),
            Ok(Some(Status::New))
        );
        let closed = now() - Duration::days(30) - Duration::seconds(1);
        assert_eq!(
            apply(Status::Closed, Some(closed), Action::Reopen, WINDOW, now()),
            Err(TransitionError::ReopenWindowExpired { days: 30 })
        );
        assert_eq!(
            apply(Status::Closed, Some(closed), Action::Reply, WINDOW, now()),
            Err(TransitionError::ReopenWindowExpired { days: 30 })
        );
        // The window only guards closed tickets: a resolved ticket always reopens.
        assert_eq!(
            apply(Status::Resolved, Some(closed), Action::Reply, WINDOW, now()),
            Ok(Some(Status::New))
        );
    }

    #[test]
    fn reply_reopens_only_finished_tickets() {
        for from in Status::ALL {
            let got = apply(from, Some(now()), Action::Reply, WINDOW, now());
            let want = if from.is_open() {
                None
            } else {
                Some(Status::New)
            };
            assert_eq!(got, Ok(want), "{from}");
        }
    }

    #[test]
    fn team_may_set_any_status() {
        for from in Status::ALL {
            for to in Status::ALL {
                let got = apply(from, None, Action::Team(to), WINDOW, now());
                assert_eq!(got, Ok((from != to).then_some(to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(Status::parse("open"), None);
    }
}
