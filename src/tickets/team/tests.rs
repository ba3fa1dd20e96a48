//! The conflict rule and stale reads, on a temporary store.
use super::*;
use crate::metrics::Metrics;

const WINDOW: ReopenWindow = ReopenWindow { days: 30 };

#[test]
fn the_conflict_rule() {
    use Status::{Assigned, Closed, InProgress, New, Resolved};
    let names = |last, now| (Some(last), Some(now));
    // SDP's status is what deskbridge last saw: the customer's change stands.
    assert_eq!(
        decide_status(Closed, names("Resolved", "Resolved"), false, Resolved, true),
        StatusDecision::Keep
    );
    // SDP moved, and the portal already shows that status.
    assert_eq!(
        decide_status(
            InProgress,
            names("Open", "In Progress"),
            false,
            InProgress,
            false
        ),
        StatusDecision::Keep
    );
    // SDP moved, nothing queued: a plain team change.
    assert_eq!(
        decide_status(
            Resolved,
            names("Resolved", "In Progress"),
            false,
            InProgress,
            false
        ),
        StatusDecision::Apply {
            to: InProgress,
            conflict: false
        }
    );
    // SDP moved while the customer's close waits: SDP wins.
    assert_eq!(
        decide_status(
            Closed,
            names("Resolved", "In Progress"),
            false,
            InProgress,
            true
        ),
        StatusDecision::Apply {
            to: InProgress,
            conflict: true
        }
    );
    // Still Open, now with a technician: assigned.
    assert_eq!(
        decide_status(New, names("Open", "Open"), true, Assigned, false),
        StatusDecision::Apply {
            to: Assigned,
            conflict: false
        }
    );
}

#[test]
fn only_an_older_read_is_stale() {
    assert!(is_stale(Some(10), Some(5)));
    assert!(!is_stale(Some(10), Some(10)));
    assert!(!is_stale(None, Some(5)));
    assert!(!is_stale(Some(10), None));
}

/// A closed ticket whose customer confirmation (Close) SDP has not seen yet.
fn setup() -> (tempfile::TempDir, Store, TicketId) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 16, "DB", Metrics::new()).unwrap();
    let id = store
        .transact(|tx| {
            let (id, _) = tx.next_ticket()?;
            let mut t = crate::domain::ticket::sample(id.0);
            t.status = Status::Closed;
            t.sdp_status = Some("Resolved".into());
            t.sdp_updated_ms = Some(10);
            tx.outbox(&mut t, OutboxOp::Close, OffsetDateTime::now_utc())?;
            tx.save(None, &t)?;
            Ok(id)
        })
        .unwrap();
    (dir, store, id)
}

fn observation(sdp: &str, status: Status, updated_ms: i64) -> Observation {
    Observation {
        updated_ms: Some(updated_ms),
        sdp_status: Some(sdp.into()),
        status: Some(status),
        number: None,
        technician: None,
        due_by: None,
        promise: Promise::default(),
        team: Actor::team("Tech One"),
        messages: Vec::new(),
        hidden: Vec::new(),
        changes: Vec::new(),
        files: Vec::new(),
        description: None,
        requester: None,
        subject: None,
        priority: None,
        cc: None,
    }
}

#[test]
fn both_sides_changed_the_status_sdp_wins_and_the_conflict_is_recorded() {
    let (_dir, store, id) = setup();
    let seen = observation("In Progress", Status::InProgress, 20);
    let (t, _) = observe(&store, id, &seen, WINDOW).unwrap();
    assert_eq!(t.status, Status::InProgress);
    assert_eq!(t.sdp_pending, 0);
    assert!(
        store.outbox_after(0, 10).unwrap().is_empty(),
        "the customer's close is withdrawn"
    );
    let conflict = store
        .events(id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == EventKind::Conflict)
        .expect("a conflict event");
    assert_eq!(
        (conflict.from.as_deref(), conflict.to.as_deref()),
        (Some("closed"), Some("in_progress"))
    );
}

#[test]
fn an_older_read_changes_nothing() {
    let (_dir, store, id) = setup();
    let seen = observation("In Progress", Status::InProgress, 5);
    let (t, events) = observe(&store, id, &seen, WINDOW).unwrap();
    assert_eq!(t.status, Status::Closed);
    assert!(events.is_empty());
    assert_eq!(store.outbox_after(0, 10).unwrap().len(), 1);
}

#[test]
fn an_unchanged_sdp_status_leaves_the_customers_change_to_go_out() {
    let (_dir, store, id) = setup();
    let seen = observation("Resolved", Status::Resolved, 20);
    let (t, _) = observe(&store, id, &seen, WINDOW).unwrap();
    assert_eq!(t.status, Status::Closed);
    assert_eq!(store.outbox_after(0, 10).unwrap().len(), 1);
    assert!(
        store
            .events(id)
            .unwrap()
            .iter()
            .all(|e| e.kind != EventKind::Conflict)
    );
}
