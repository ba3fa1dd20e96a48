//! Creating, reading, listing and discussing tickets, with their error paths.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, error_code};

fn is_rfc3339_utc(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
            && s.ends_with('Z')
    })
}

#[actix_web::test]
async fn a_created_ticket_has_every_documented_field() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let (status, t) = alice
        .post(
            "/api/v1/tickets",
            &json!({"kind": "information_request", "subject": "  How do I resize a VM?  ", "description": "Line 1\nLine 2", "priority": "high", "service": "Compute"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert!(uuid::Uuid::parse_str(t["id"].as_str().unwrap()).is_ok());
    assert_eq!(t["number"], "DB-000001");
    assert_eq!(t["kind"], "information_request");
    assert_eq!(t["subject"], "How do I resize a VM?");
    assert_eq!(t["description"], "Line 1\nLine 2");
    assert_eq!(t["priority"], "high");
    assert_eq!(t["service"], "Compute");
    assert_eq!(t["status"], "new");
    assert_eq!(t["requester"]["email"], "alice@example.com");
    assert_eq!(t["requester"]["organization"], "Acme");
    assert!(t["requester"]["id"].is_string() && t["requester"]["name"].is_string());
    assert!(
        is_rfc3339_utc(&t["created_at"]) && is_rfc3339_utc(&t["updated_at"]),
        "{t}"
    );
    for field in [
        "resolved_at",
        "closed_at",
        "assignee",
        "due_by",
        "respond_by",
        "responded_at",
    ] {
        assert!(t[field].is_null(), "{field}: {t}");
    }
    for flag in ["overdue", "respond_overdue", "resolve_overdue"] {
        assert_eq!(t[flag], false, "{flag}: {t}");
    }
    assert_eq!(
        t["sdp"],
        json!({"request_id": null, "number": null, "sync_state": "pending", "last_error": null, "fate": null})
    );

    let (status, again) = alice.get("/api/v1/tickets/DB-000001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, t);
    let (status, lower) = alice.get("/api/v1/tickets/db-000001").await;
    assert_eq!(status, StatusCode::OK, "numbers are case-insensitive");
    assert_eq!(lower["number"], "DB-000001");

    let (_, defaults) = alice
        .post(
            "/api/v1/tickets",
            &json!({"kind": "problem_report", "subject": "Defaults"}),
        )
        .await;
    assert_eq!(defaults["priority"], "medium");
    assert_eq!(defaults["description"], "");
    assert!(defaults["service"].is_null());
    assert_eq!(defaults["number"], "DB-000002");
}

#[actix_web::test]
async fn text_is_stored_exactly_as_given() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let subject = "<script>alert(1)</script> & \"quotes\" 'Ü'";
    let description = "<img src=x onerror=alert(1)>\n\u{1F600}";
    let (_, t) = alice
        .post(
            "/api/v1/tickets",
            &json!({"kind": "problem_report", "subject": subject, "description": description}),
        )
        .await;
    assert_eq!(t["subject"], subject);
    assert_eq!(t["description"], description);
}

#[actix_web::test]
async fn bad_ticket_input_gets_a_clear_error_naming_the_field() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let post_raw = |body: &'static str, content_type: &'static str| {
        alice.send(
            alice
                .request(reqwest::Method::POST, "/api/v1/tickets")
                .header("content-type", content_type)
                .body(body),
        )
    };
    let (status, body) = post_raw("{not json", "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "malformed-json");
    let (status, body) = post_raw(r#"{"kind":"problem_report","subject":"x"}"#, "text/plain").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&body), "unsupported-media-type");

    let cases = [
        (json!({"kind": "complaint", "subject": "x"}), "kind"),
        (json!({"subject": "x"}), "kind"),
        (json!({"kind": "problem_report"}), "subject"),
        (
            json!({"kind": "problem_report", "subject": "   "}),
            "subject",
        ),
        (
            json!({"kind": "problem_report", "subject": "x".repeat(251)}),
            "subject",
        ),
        (
            json!({"kind": "problem_report", "subject": "a\nb"}),
            "subject",
        ),
        (
            json!({"kind": "problem_report", "subject": "x", "priority": "critical"}),
            "priority",
        ),
        (
            json!({"kind": "problem_report", "subject": "x", "description": "d".repeat(64 * 1024 + 1)}),
            "description",
        ),
        (
            json!({"kind": "problem_report", "subject": "x", "service": "s".repeat(101)}),
            "service",
        ),
        (json!({"kind": "problem_report", "subject": 42}), "subject"),
        (
            json!({"kind": "problem_report", "subject": "x", "status": "closed"}),
            "status",
        ),
        (json!(["not", "an", "object"]), "body"),
    ];
    for (input, field) in cases {
        let (status, body) = alice.post("/api/v1/tickets", &input).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{input}: {body}");
        assert_eq!(error_code(&body), "invalid-field");
        assert!(
            body["error"]["fields"][field].is_string(),
            "{input} should name {field}: {body}"
        );
    }
    let (status, _) = alice
        .post(
            "/api/v1/tickets",
            &json!({"kind": "problem_report", "subject": "é".repeat(250)}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "250 characters is the limit, not 250 bytes"
    );
    let (_, list) = alice.get("/api/v1/tickets").await;
    assert_eq!(list["total"], 1, "rejected input stored nothing");
}

#[actix_web::test]
async fn listing_filters_searches_pages_and_sorts_by_activity() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let bob = app.customer("bob@example.com").await;
    for i in 1..=5 {
        let kind = if i % 2 == 0 {
            "information_request"
        } else {
            "problem_report"
        };
        alice.post("/api/v1/tickets", &json!({"kind": kind, "subject": format!("Alice {i}"), "description": if i == 3 { "The VPN gateway is down" } else { "" }})).await;
    }
    bob.ticket("Bob's only").await;
    // A message moves ticket 1 to the top.
    alice
        .post(
            "/api/v1/tickets/DB-000001/messages",
            &json!({"body": "any news?"}),
        )
        .await;

    let (status, list) = alice.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            list["total"].as_u64(),
            list["page"].as_u64(),
            list["per_page"].as_u64()
        ),
        (Some(5), Some(1), Some(20))
    );
    let numbers: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        numbers,
        [
            "DB-000001",
            "DB-000005",
            "DB-000004",
            "DB-000003",
            "DB-000002"
        ]
    );

    let (_, page2) = alice.get("/api/v1/tickets?per_page=2&page=2").await;
    let numbers: Vec<_> = page2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].clone())
        .collect();
    assert_eq!(numbers, [json!("DB-000004"), json!("DB-000003")]);
    assert_eq!(page2["total"], 5);
    let (_, beyond) = alice.get("/api/v1/tickets?per_page=2&page=9").await;
    assert_eq!(beyond["items"], json!([]));
    assert_eq!(beyond["total"], 5);

    let (_, info) = alice.get("/api/v1/tickets?kind=information_request").await;
    assert_eq!(info["total"], 2);
    let (_, vpn) = alice.get("/api/v1/tickets?q=vpn%20GATEWAY").await;
    assert_eq!(vpn["total"], 1);
    assert_eq!(vpn["items"][0]["number"], "DB-000003");
    let (_, by_number) = alice.get("/api/v1/tickets?q=db-000005").await;
    assert_eq!(by_number["items"][0]["subject"], "Alice 5");
    let (_, new) = alice
        .get("/api/v1/tickets?status=new&kind=problem_report&q=alice")
        .await;
    assert_eq!(new["total"], 3);
    let (_, none) = alice.get("/api/v1/tickets?status=closed").await;
    assert_eq!(none["total"], 0);

    let (_, all) = app.admin().await.get("/api/v1/tickets").await;
    assert_eq!(all["total"], 6, "an admin sees every ticket");
    let (_, admin_search) = app.admin().await.get("/api/v1/tickets?q=bob").await;
    assert_eq!(admin_search["total"], 1);

    for (query, field) in [
        ("status=open", "status"),
        ("kind=question", "kind"),
        ("page=0", "page"),
        ("per_page=101", "per_page"),
        ("per_page=abc", "per_page"),
    ] {
        let (status, body) = alice.get(&format!("/api/v1/tickets?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(
            body["error"]["fields"][field].is_string(),
            "{query}: {body}"
        );
    }
}

#[actix_web::test]
async fn messages_are_listed_in_order_with_their_author() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let t = alice.ticket("Chat").await;
    let number = t["number"].as_str().unwrap();
    let path = format!("/api/v1/tickets/{number}/messages");
    let (status, m1) = alice
        .post(&path, &json!({"body": "First <b>message</b>"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{m1}");
    assert_eq!(
        m1["author"],
        json!({"name": "User alice@example.com", "role": "customer"})
    );
    assert_eq!(
        (m1["origin"].as_str(), m1["delivery"].as_str()),
        (Some("portal"), Some("pending"))
    );
    assert!(is_rfc3339_utc(&m1["created_at"]));
    let (_, m2) = alice.post(&path, &json!({"body": "Second"})).await;
    let (status, list) = alice.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"], json!([m1, m2]));

    for (body, field) in [
        (json!({"body": "   "}), "body"),
        (json!({"body": "x".repeat(65 * 1024)}), "body"),
        (json!({"text": "hi"}), "text"),
    ] {
        let (status, err) = alice.post(&path, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err["error"]["fields"][field].is_string(), "{err}");
    }
    let (status, err) = alice
        .post(
            "/api/v1/tickets/DB-999999/messages",
            &json!({"body": "hello"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&err), "ticket-not-found");
    for bad in [
        "/api/v1/tickets/nonsense",
        "/api/v1/tickets/DB-000099",
        "/api/v1/tickets/DB-000099/events",
        "/api/v1/tickets/XX-000001",
    ] {
        let (status, err) = alice.get(bad).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(error_code(&err), "ticket-not-found");
    }
}

#[actix_web::test]
async fn idempotency_key_returns_the_first_answer() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let keyed = alice.with_header("Idempotency-Key", "create-1");
    let body = json!({"kind": "problem_report", "subject": "Once only"});
    let first = keyed
        .request(reqwest::Method::POST, "/api/v1/tickets")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_bytes = first.bytes().await.unwrap();
    let again = keyed
        .request(reqwest::Method::POST, "/api/v1/tickets")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.bytes().await.unwrap(),
        first_bytes,
        "a replay answers byte for byte"
    );
    let (_, list) = alice.get("/api/v1/tickets").await;
    assert_eq!(list["total"], 1);

    let (status, err) = keyed
        .post(
            "/api/v1/tickets",
            &json!({"kind": "problem_report", "subject": "Something else"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&err), "idempotency-key-reused");

    // Keys belong to their caller: another customer's identical key is another request.
    let bob = app
        .customer("bob@example.com")
        .await
        .with_header("Idempotency-Key", "create-1");
    let (status, theirs) = bob.post("/api/v1/tickets", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(theirs["number"], "DB-000002");

    // Messages too.
    let msg = alice.with_header("Idempotency-Key", "msg-1");
    let (_, m1) = msg
        .post(
            "/api/v1/tickets/DB-000001/messages",
            &json!({"body": "hello"}),
        )
        .await;
    let (status, m2) = msg
        .post(
            "/api/v1/tickets/DB-000001/messages",
            &json!({"body": "hello"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(m1, m2);
    let (_, msgs) = alice.get("/api/v1/tickets/DB-000001/messages").await;
    assert_eq!(msgs["items"].as_array().unwrap().len(), 1);

    // Concurrent retries with one key still create one ticket.
    let racing = alice.with_header("Idempotency-Key", "race");
    let body = json!({"kind": "problem_report", "subject": "Race"});
    let results =
        futures_util::future::join_all((0..8).map(|_| racing.post("/api/v1/tickets", &body))).await;
    let numbers: std::collections::HashSet<_> = results
        .iter()
        .map(|(s, t)| {
            assert_eq!(*s, StatusCode::CREATED);
            t["number"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(numbers.len(), 1, "{numbers:?}");

    for bad in ["", &"k".repeat(256), "has space"] {
        let (status, err) = alice
            .with_header("Idempotency-Key", bad)
            .post("/api/v1/tickets", &body)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert!(err["error"]["fields"]["Idempotency-Key"].is_string());
    }
}

#[actix_web::test]
async fn concurrent_creations_get_unique_consecutive_numbers() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let bodies: Vec<_> = (0..40)
        .map(|i| json!({"kind": "problem_report", "subject": format!("T{i}")}))
        .collect();
    let results =
        futures_util::future::join_all(bodies.iter().map(|b| alice.post("/api/v1/tickets", b)))
            .await;
    let mut numbers: Vec<_> = results
        .iter()
        .map(|(s, t)| {
            assert_eq!(*s, StatusCode::CREATED);
            t["number"].as_str().unwrap().to_owned()
        })
        .collect();
    numbers.sort();
    let expected: Vec<_> = (1..=40).map(|n| format!("DB-{n:06}")).collect();
    assert_eq!(numbers, expected);
}

#[actix_web::test]
async fn changes_are_published_to_subscribers_after_they_are_durable() {
    use deskbridge::actors::TicketEventKind;
    use deskbridge::actors::broadcaster::Subscribe;
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let mut events = app
        .state()
        .actors
        .broadcaster
        .send(Subscribe::default())
        .await
        .unwrap()
        .receiver;
    let t = alice.ticket("Live").await;
    alice
        .post(
            "/api/v1/tickets/DB-000001/messages",
            &json!({"body": "ping"}),
        )
        .await;
    alice.upload("DB-000001", "a.txt", b"a".to_vec()).await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap()
            .event;
        assert_eq!(event.number, t["number"].as_str().unwrap());
        assert_eq!(
            event.requester.to_string(),
            t["requester"]["id"].as_str().unwrap()
        );
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds,
        [
            TicketEventKind::Created,
            TicketEventKind::Message,
            TicketEventKind::Attachment
        ]
    );
}
