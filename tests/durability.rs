//! What survives a restart, and the outbox: one entry per change, in order, written with it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Desk, TestApp};

async fn outbox(app: &TestApp) -> Vec<Value> {
    let (status, body) = app
        .admin()
        .await
        .get("/api/v1/admin/outbox?limit=1000")
        .await;
    assert_eq!(status, StatusCode::OK);
    body["items"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn everything_survives_a_restart_and_numbering_continues() {
    let mut app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let t1 = alice.ticket("Before restart 1").await;
    alice.ticket("Before restart 2").await;
    alice
        .post(
            "/api/v1/tickets/DB-000001/messages",
            &json!({"body": "kept"}),
        )
        .await;
    let (_, file) = alice
        .upload("DB-000001", "kept.bin", vec![42u8; 100_000])
        .await;
    let keyed = alice.with_header("Idempotency-Key", "k1");
    let (_, keyed_first) = keyed
        .post(
            "/api/v1/tickets",
            &json!({"kind": "problem_report", "subject": "Keyed"}),
        )
        .await;
    let before = (
        alice.get("/api/v1/tickets/DB-000001").await.1,
        alice.get("/api/v1/tickets/DB-000001/events").await.1,
        alice.get("/api/v1/tickets/DB-000001/messages").await.1,
        alice.get("/api/v1/tickets/DB-000001/attachments").await.1,
    );
    let outbox_before = outbox(&app).await;

    app.restart().await;
    let alice = app
        .login("alice@example.com", crate::common::PASSWORD)
        .await;
    let after = (
        alice.get("/api/v1/tickets/DB-000001").await.1,
        alice.get("/api/v1/tickets/DB-000001/events").await.1,
        alice.get("/api/v1/tickets/DB-000001/messages").await.1,
        alice.get("/api/v1/tickets/DB-000001/attachments").await.1,
    );
    assert_eq!(before, after);
    assert_eq!(after.0["id"], t1["id"]);
    assert_eq!(
        alice.download("DB-000001", &file["id"]).await,
        vec![42u8; 100_000]
    );
    assert_eq!(outbox(&app).await, outbox_before);

    let t4 = alice.ticket("After restart").await;
    assert_eq!(t4["number"], "DB-000004", "numbering continues");
    let keyed = alice.with_header("Idempotency-Key", "k1");
    let (_, replay) = keyed
        .post(
            "/api/v1/tickets",
            &json!({"kind": "problem_report", "subject": "Keyed"}),
        )
        .await;
    assert_eq!(replay, keyed_first, "idempotency keys survive a restart");
    let (_, list) = alice.get("/api/v1/tickets").await;
    assert_eq!(list["total"], 4);
    app.stop().await;
}

#[actix_web::test]
async fn the_outbox_holds_one_entry_per_change_in_order() {
    // Sync is off here: every change waits in the outbox, where the test can read it.
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let n = alice.ticket("Outbox").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, m) = alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "note"}),
        )
        .await;
    let (_, a) = alice.upload(&n, "f.txt", b"file".to_vec()).await;
    // Refused actions write nothing.
    for (path, body) in [
        ("messages", json!({"body": ""})),
        ("confirm", json!({})),
        ("reopen", json!({"reason": "no"})),
    ] {
        let (status, _) = alice
            .post(&format!("/api/v1/tickets/{n}/{path}"), &body)
            .await;
        assert!(status.is_client_error(), "{path}: {status}");
    }
    // Replays are not changes.
    let keyed = alice.with_header("Idempotency-Key", "again");
    for _ in 0..2 {
        keyed
            .post(
                &format!("/api/v1/tickets/{n}/messages"),
                &json!({"body": "keyed"}),
            )
            .await;
    }

    let entries = outbox(&app).await;
    let ops: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let obj = e.as_object_mut().unwrap();
            assert!(obj.remove("seq").unwrap().is_u64() && obj.remove("at").unwrap().is_string());
            assert_eq!(obj.remove("ticket").unwrap(), 1);
            assert_eq!(obj.remove("attempts").unwrap(), 0);
            assert_eq!(obj.remove("outcome_unknown").unwrap(), false);
            assert!(
                obj.remove("next_attempt_at").unwrap().is_null()
                    && obj.remove("last_error").unwrap().is_null()
            );
            e
        })
        .collect();
    let messages = alice.get(&format!("/api/v1/tickets/{n}/messages")).await.1["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        ops,
        [
            json!({"op": "create_request"}),
            json!({"op": "add_note", "message": m["id"]}),
            json!({"op": "add_attachment", "attachment": a["id"]}),
            json!({"op": "add_note", "message": messages[1]["id"]}),
        ]
    );
    let (_, health) = app.admin().await.get("/api/v1/admin/sync").await;
    assert_eq!(
        health["queue_depth"],
        entries.len(),
        "the kept count matches the queue: {health}"
    );
    assert_eq!(health["enabled"], false);
    let seqs: Vec<_> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "entries are numbered in commit order: {seqs:?}"
    );

    // Every customer-side history event has its outbox entry and vice versa.
    let (_, events) = alice.get(&format!("/api/v1/tickets/{n}/events")).await;
    let customer_events = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["kind"] == "customer")
        .count();
    assert_eq!(customer_events, entries.len());

    let (_, page) = app
        .admin()
        .await
        .get(&format!("/api/v1/admin/outbox?after={}&limit=2", seqs[1]))
        .await;
    let page_seqs: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(page_seqs, seqs[2..4]);
}

#[actix_web::test]
async fn each_change_reaches_sdp_once_in_order() {
    let desk = Desk::start(|_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let n = alice.ticket("Outbox").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "note"}),
        )
        .await;
    alice.upload(&n, "f.txt", b"file".to_vec()).await;
    desk.team_sets(&alice, &n, "resolved").await;
    // Refused actions send nothing.
    alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": ""}),
        )
        .await;
    alice
        .post(
            &format!("/api/v1/tickets/{n}/reopen"),
            &json!({"reason": "no"}),
        )
        .await;
    desk.team_sets(&alice, &n, "resolved").await;
    alice
        .post(&format!("/api/v1/tickets/{n}/confirm"), &json!({}))
        .await;
    alice
        .post(&format!("/api/v1/tickets/{n}/confirm"), &json!({}))
        .await;
    // A reply on the closed ticket reopens it.
    alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "one more thing"}),
        )
        .await;
    // Replays are not changes.
    let keyed = alice.with_header("Idempotency-Key", "again");
    for _ in 0..2 {
        keyed
            .post(
                &format!("/api/v1/tickets/{n}/messages"),
                &json!({"body": "keyed"}),
            )
            .await;
    }
    let request = desk.synced(&alice, &n).await;

    // What SDP was asked to do, in the order it was asked.
    let changes: Vec<String> = desk
        .fake
        .calls()
        .iter()
        .filter(|c| c.method != "GET")
        .map(|c| c.endpoint.clone())
        .collect();
    assert_eq!(
        changes,
        [
            // The customer is added to SDP's requester directory before their first request.
            "POST /users",
            "POST /requests",
            "POST /requests/{id}/notes",
            "PUT /requests/{id}/upload",
            "PUT /requests/{id}",
            "PUT /requests/{id}/close",
            "PUT /requests/{id}",
            "POST /requests/{id}/notes",
            "POST /requests/{id}/notes",
        ],
        "one call per change, in order"
    );
    let notes: Vec<String> = desk
        .fake
        .notes(&request)
        .iter()
        .map(|n| n.description.clone())
        .collect();
    assert!(
        notes[0].starts_with("note")
            && notes[1].starts_with("one more thing")
            && notes[2].starts_with("keyed"),
        "{notes:?}"
    );
    let statuses: Vec<String> = desk
        .fake
        .status_changes(&request)
        .iter()
        .map(|c| c.to.clone())
        .collect();
    assert_eq!(statuses, ["Resolved", "Open", "Resolved", "Closed", "Open"]);
    let (_, health) = desk.app.admin().await.get("/api/v1/admin/sync").await;
    assert_eq!(health["queue_depth"], 0, "{health}");
    assert_eq!(health["dead_letters"], json!([]), "{health}");
}
