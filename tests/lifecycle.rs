//! Every status, every customer action: what is allowed, what is refused, and what history records.
//! The team moves tickets where it works, in the fake SDP; the changes reach the portal the way
//! production's do (an SDP trigger's webhook, then a read of the request).

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Api, Desk, error_code};

const STATUSES: [&str; 6] = [
    "new",
    "assigned",
    "in_progress",
    "pending",
    "resolved",
    "closed",
];

async fn ticket_in(desk: &Desk, alice: &Api, status: &str) -> String {
    let t = alice.ticket(&format!("In {status}")).await;
    let n = t["number"].as_str().unwrap().to_owned();
    if status != "new" {
        desk.team_sets(alice, &n, status).await;
    }
    let (_, t) = alice.get(&format!("/api/v1/tickets/{n}")).await;
    assert_eq!(t["status"], status);
    n
}

#[actix_web::test]
async fn confirm_is_legal_only_on_a_resolved_ticket() {
    let desk = Desk::start(|_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    for from in STATUSES {
        let n = ticket_in(&desk, &alice, from).await;
        let (status, body) = alice
            .post(&format!("/api/v1/tickets/{n}/confirm"), &json!({}))
            .await;
        if from == "resolved" {
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["status"], "closed");
            assert!(
                body["closed_at"].is_string() && body["resolved_at"].is_string(),
                "{body}"
            );
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "confirm from {from}");
            assert_eq!(error_code(&body), "invalid-transition");
            let (_, t) = alice.get(&format!("/api/v1/tickets/{n}")).await;
            assert_eq!(t["status"], from, "a refused action changes nothing");
        }
    }
}

#[actix_web::test]
async fn reopen_is_legal_on_resolved_and_recently_closed_tickets() {
    let desk = Desk::start(|_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    for from in STATUSES {
        let n = ticket_in(&desk, &alice, from).await;
        let (status, body) = alice
            .post(
                &format!("/api/v1/tickets/{n}/reopen"),
                &json!({"reason": "Still broken"}),
            )
            .await;
        if from == "resolved" || from == "closed" {
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["status"], "new");
            assert!(
                body["closed_at"].is_null() && body["resolved_at"].is_null(),
                "{body}"
            );
            let (_, events) = alice.get(&format!("/api/v1/tickets/{n}/events")).await;
            let last = events["items"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(
                (
                    last["kind"].as_str(),
                    last["from"].as_str(),
                    last["to"].as_str()
                ),
                (Some("reopened"), Some(from), Some("new"))
            );
            assert_eq!(last["detail"], "Still broken");
            assert_eq!(last["actor"]["email"], "alice@example.com");
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "reopen from {from}");
            assert_eq!(error_code(&body), "invalid-transition");
        }
    }
    let n = ticket_in(&desk, &alice, "resolved").await;
    for body in [
        json!({}),
        json!({"reason": ""}),
        json!({"reason": "r".repeat(64 * 1024 + 1)}),
    ] {
        let (status, err) = alice
            .post(&format!("/api/v1/tickets/{n}/reopen"), &body)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err["error"]["fields"]["reason"].is_string(), "{err}");
    }
}

#[actix_web::test]
async fn a_reply_reopens_a_resolved_or_recently_closed_ticket() {
    let desk = Desk::start(|_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    for from in STATUSES {
        let n = ticket_in(&desk, &alice, from).await;
        let (status, body) = alice
            .post(
                &format!("/api/v1/tickets/{n}/messages"),
                &json!({"body": "Any update?"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, t) = alice.get(&format!("/api/v1/tickets/{n}")).await;
        let want = if from == "resolved" || from == "closed" {
            "new"
        } else {
            from
        };
        assert_eq!(t["status"], want, "reply on {from}");
    }
}

#[actix_web::test]
async fn a_ticket_closed_longer_than_the_window_cannot_be_reopened() {
    // A zero-day window has passed as soon as the ticket is closed.
    let desk = Desk::start(|c| c.portal.reopen_window_days = 0).await;
    let alice = desk.app.customer("alice@example.com").await;
    let n = ticket_in(&desk, &alice, "closed").await;
    let (status, err) = alice
        .post(
            &format!("/api/v1/tickets/{n}/reopen"),
            &json!({"reason": "again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&err), "reopen-window-expired");
    let (status, err) = alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "hello?"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&err), "reopen-window-expired");
    let (_, messages) = alice.get(&format!("/api/v1/tickets/{n}/messages")).await;
    assert_eq!(
        messages["items"],
        json!([]),
        "the refused message was not stored"
    );
    // A resolved ticket is not closed yet: it reopens whatever the window.
    let n = ticket_in(&desk, &alice, "resolved").await;
    assert_eq!(
        alice
            .post(
                &format!("/api/v1/tickets/{n}/reopen"),
                &json!({"reason": "no"})
            )
            .await
            .0,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn every_transition_is_in_the_history_with_actor_and_time() {
    let desk = Desk::start(|_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let t = alice.ticket("Journey").await;
    let n = t["number"].as_str().unwrap().to_owned();
    for status in [
        "assigned",
        "in_progress",
        "pending",
        "in_progress",
        "resolved",
    ] {
        desk.team_sets(&alice, &n, status).await;
    }
    alice
        .post(
            &format!("/api/v1/tickets/{n}/reopen"),
            &json!({"reason": "not fixed"}),
        )
        .await;
    desk.team_sets(&alice, &n, "resolved").await;
    alice
        .post(&format!("/api/v1/tickets/{n}/confirm"), &json!({}))
        .await;

    let (status, events) = alice.get(&format!("/api/v1/tickets/{n}/events")).await;
    assert_eq!(status, StatusCode::OK);
    let items = events["items"].as_array().unwrap();
    let trail: Vec<_> = items
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["from"].as_str(),
                // SDP's time of the first resolution: not known in advance.
                e["to"].as_str().filter(|_| e["kind"] != "sdp_resolved"),
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            ("created", None, Some("new")),
            ("sdp_linked", None, None),
            ("status_changed", Some("new"), Some("assigned")),
            ("status_changed", Some("assigned"), Some("in_progress")),
            ("status_changed", Some("in_progress"), Some("pending")),
            ("status_changed", Some("pending"), Some("in_progress")),
            ("sdp_resolved", None, None),
            ("status_changed", Some("in_progress"), Some("resolved")),
            ("reopened", Some("resolved"), Some("new")),
            ("status_changed", Some("new"), Some("resolved")),
            ("confirmed", Some("resolved"), Some("closed")),
        ]
    );
    for e in items {
        assert!(e["id"].is_u64() && e["at"].is_string(), "{e}");
        let kind = e["actor"]["kind"].as_str().unwrap();
        let expected = match e["kind"].as_str().unwrap() {
            "status_changed" | "sdp_resolved" => "team",
            "sdp_linked" => "system",
            _ => "customer",
        };
        assert_eq!(kind, expected, "{e}");
    }
    let ids: Vec<_> = items.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "events are in order");
}

#[actix_web::test]
async fn assignment_by_the_team_shows_on_the_ticket() {
    let desk = Desk::start(|_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let t = alice.ticket("Assign me").await;
    let request = desk.synced(&alice, "DB-000001").await;
    desk.fake.assign_technician(&request, "Tech One");
    let after = desk
        .until(&alice, "DB-000001", &request, |t| {
            t["assignee"] == "Tech One"
        })
        .await;
    // SDP's "Open" with a technician is what the portal calls assigned.
    assert_eq!(after["status"], "assigned");
    assert_ne!(after["updated_at"], t["updated_at"]);
    let (_, events) = alice.get("/api/v1/tickets/DB-000001/events").await;
    let kinds: Vec<_> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["created", "sdp_linked", "assigned", "status_changed"]
    );
}
