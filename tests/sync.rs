//! Two-way sync against the fake SDP, every scenario in both profiles (on-prem and Cloud).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::fake_sdp::{EmailFrom, FakeSdp, Fault, Op, Profile};
use crate::common::{Api, HOOK_SECRET, TestApp, connect, eventually};

const WAIT: Duration = Duration::from_secs(20);
/// Text of a private note; it must appear in no portal answer.
const CANARY: &str = "CANARY-private-7f3a9";

both_profiles!(
    a_portal_ticket_appears_in_sdp_once_with_mapped_fields,
    every_sdp_status_and_an_assignment_reach_the_portal,
    messages_cross_both_ways_and_private_notes_never_do,
    attachments_cross_both_ways_byte_identical,
    confirm_closes_and_reopen_reopens_in_sdp,
    a_reply_on_a_resolved_ticket_reopens_it_on_both_sides,
    changes_made_while_sdp_is_down_arrive_in_order_once,
    an_answer_lost_after_commit_creates_no_duplicate,
    a_restart_mid_queue_loses_and_doubles_nothing,
    rate_limits_are_honoured,
    the_request_budget_is_never_exceeded,
    the_webhook_needs_its_secret_and_beats_the_poll,
    requests_raised_in_sdp_for_portal_users_are_imported,
    a_refused_change_becomes_a_dead_letter_an_admin_can_retry,
    a_dead_letter_an_admin_discards_is_dropped,
    a_mapped_name_sdp_refuses_is_left_out_and_reported,
);

struct Env {
    fake: FakeSdp,
    app: TestApp,
    alice: Api,
    admin: Api,
}

impl Env {
    async fn start(profile: Profile) -> Env {
        Env::start_with(profile, |_| {}).await
    }

    async fn start_with(
        profile: Profile,
        adjust: impl FnOnce(&mut deskbridge::config::Config),
    ) -> Env {
        Env::start_with_fake(FakeSdp::start(profile).await, adjust).await
    }

    async fn start_with_fake(
        fake: FakeSdp,
        adjust: impl FnOnce(&mut deskbridge::config::Config),
    ) -> Env {
        let app = TestApp::start_with(|c| {
            connect(c, &fake);
            // Polls happen when a test asks (or a webhook hints), so each step is deterministic.
            c.sdp.poll_interval_secs = 3600;
            c.sdp.retry_base_ms = 20;
            c.sdp.retry_max_secs = 1;
            c.sdp.request_timeout_secs = 5;
            adjust(c);
        })
        .await;
        let alice = app.customer("alice@example.com").await;
        let admin = app.admin().await;
        Env {
            fake,
            app,
            alice,
            admin,
        }
    }

    /// Asks deskbridge to poll SDP now.
    async fn poll(&self) {
        let (status, body) = self.admin.post("/api/v1/admin/sync/run", &json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    async fn ticket(&self, number: &str) -> Value {
        self.alice.get(&format!("/api/v1/tickets/{number}")).await.1
    }

    /// Waits until the ticket is linked and synced; returns the SDP request id.
    async fn synced(&self, number: &str) -> String {
        eventually(WAIT, || async {
            let t = self.ticket(number).await;
            (t["sdp"]["sync_state"] == "synced")
                .then(|| t["sdp"]["request_id"].as_str().map(str::to_owned))
                .flatten()
        })
        .await
    }

    /// Polls until the portal ticket satisfies `check`.
    async fn until(&self, number: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(WAIT, || async {
            self.poll().await;
            let t = self.ticket(number).await;
            check(&t).then_some(t)
        })
        .await
    }

    async fn messages(&self, number: &str) -> Vec<Value> {
        self.alice
            .get(&format!("/api/v1/tickets/{number}/messages"))
            .await
            .1["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn new_ticket(&self, subject: &str) -> (String, String) {
        let t = self.alice.ticket(subject).await;
        let number = t["number"].as_str().unwrap().to_owned();
        let id = self.synced(&number).await;
        (number, id)
    }
}

async fn a_portal_ticket_appears_in_sdp_once_with_mapped_fields(profile: Profile) {
    let env = Env::start(profile).await;
    let (status, t) = env
        .alice
        .post(
            "/api/v1/tickets",
            &json!({"kind": "information_request", "subject": "Quota <increase>", "description": "Need 10 more\ncores", "priority": "urgent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(t["sdp"]["sync_state"], "pending");
    let id = env.synced("DB-000001").await;
    let requests = env.fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = env.fake.request(&id).expect("the request exists");
    // The number tag carries this appliance's instance id, generated once per data directory.
    let subject = r["subject"].as_str().unwrap_or_default();
    assert!(
        subject.starts_with("[DB-000001@") && subject.ends_with("] Quota <increase>"),
        "{subject}"
    );
    assert_eq!(r["description"], "Need 10 more<br>cores");
    assert_eq!(r["request_type"]["name"], "Service Request");
    assert_eq!(r["priority"]["name"], "Urgent");
    assert_eq!(r["requester"]["email_id"], "alice@example.com");
    let (_, events) = env.alice.get("/api/v1/tickets/DB-000001/events").await;
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "sdp_linked"),
        "{events}"
    );
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    assert_eq!(health["queue_depth"], 0, "{health}");
}

async fn every_sdp_status_and_an_assignment_reach_the_portal(profile: Profile) {
    let env = Env::start(profile).await;
    let (n, id) = env.new_ticket("Status walk").await;
    env.fake.assign_technician(&id, "Tech One");
    let t = env.until(&n, |t| t["assignee"] == "Tech One").await;
    // Open with a technician reads as assigned.
    assert_eq!(t["status"], "assigned");
    for (sdp, portal) in [
        ("Assigned", "assigned"),
        ("In Progress", "in_progress"),
        ("On Hold", "pending"),
        ("In Progress", "in_progress"),
        ("Resolved", "resolved"),
        ("Closed", "closed"),
        ("Open", "assigned"),
        ("Cancelled", "closed"),
    ] {
        env.fake.set_status(&id, sdp, None);
        env.until(&n, |t| t["status"] == portal).await;
    }
    let (_, events) = env.alice.get(&format!("/api/v1/tickets/{n}/events")).await;
    let changes: Vec<_> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "status_changed")
        .map(|e| e["to"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        changes,
        [
            "assigned",
            "in_progress",
            "pending",
            "in_progress",
            "resolved",
            "closed",
            "assigned",
            "closed"
        ]
    );
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "assigned" && e["to"] == "Tech One")
    );
}

async fn messages_cross_both_ways_and_private_notes_never_do(profile: Profile) {
    let env = Env::start(profile).await;
    let (n, id) = env.new_ticket("Chat").await;
    let (_, sent) = env
        .alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "Any news?\n<b>urgent</b>"}),
        )
        .await;
    let delivered = eventually(WAIT, || async {
        let m = env.messages(&n).await;
        (m[0]["delivery"] == "delivered").then_some(m)
    })
    .await;
    assert_eq!(delivered[0]["id"], sent["id"]);
    let notes = env.fake.notes(&id);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].show_to_requester, Some(true));
    assert!(
        notes[0]
            .description
            .starts_with("Any news?<br>&lt;b&gt;urgent&lt;/b&gt;"),
        "{}",
        notes[0].description
    );

    env.fake
        .add_note(&id, &format!("Internal: {CANARY}"), false);
    env.fake.add_note(&id, "We are <b>on it</b>", true);
    env.fake
        .add_email(&id, EmailFrom::Requester, "Replying by e-mail");
    env.fake.add_email(
        &id,
        EmailFrom::Technician("Tech Two".into()),
        "Answer by e-mail",
    );
    let messages = eventually(WAIT, || async {
        env.poll().await;
        let m = env.messages(&n).await;
        (m.len() >= 4).then_some(m)
    })
    .await;
    let bodies: Vec<_> = messages
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert!(bodies.contains(&"We are on it".to_owned()), "{bodies:?}");
    assert!(
        bodies.contains(&"Replying by e-mail".to_owned()),
        "{bodies:?}"
    );
    assert!(
        bodies.contains(&"Answer by e-mail".to_owned()),
        "{bodies:?}"
    );
    let from_sdp: Vec<_> = messages.iter().filter(|m| m["origin"] == "sdp").collect();
    assert_eq!(
        from_sdp.len(),
        3,
        "our own note is not echoed back: {messages:?}"
    );
    let customer_mail = messages
        .iter()
        .find(|m| m["body"] == "Replying by e-mail")
        .unwrap();
    assert_eq!(customer_mail["author"]["role"], "customer");
    let team = messages
        .iter()
        .find(|m| m["body"] == "We are on it")
        .unwrap();
    assert_eq!(team["author"]["role"], "team");

    // The canary appears in no portal answer at all, for the customer or the admin.
    env.poll().await;
    for api in [&env.alice, &env.admin] {
        for path in [
            format!("/api/v1/tickets/{n}"),
            format!("/api/v1/tickets/{n}/messages"),
            format!("/api/v1/tickets/{n}/events"),
            format!("/api/v1/tickets/{n}/attachments"),
            "/api/v1/tickets".to_owned(),
            format!("/api/v1/tickets?q={CANARY}"),
        ] {
            let response = api
                .request(reqwest::Method::GET, &path)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(!response.contains(CANARY), "{path} leaked the private note");
        }
    }
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    assert!(!health.to_string().contains(CANARY));
}

async fn attachments_cross_both_ways_byte_identical(profile: Profile) {
    let env = Env::start(profile).await;
    let (n, id) = env.new_ticket("Files").await;
    let portal_bytes: Vec<u8> = (0..200_000u32)
        .map(|i| u8::try_from(i * 7 % 256).expect("below 256"))
        .collect();
    let (status, up) = env
        .alice
        .upload(&n, "trace.bin", portal_bytes.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED);
    eventually(WAIT, || async {
        let (_, list) = env
            .alice
            .get(&format!("/api/v1/tickets/{n}/attachments"))
            .await;
        (list["items"][0]["delivery"] == "delivered").then_some(())
    })
    .await;
    let in_sdp = env.fake.attachments(&id);
    assert_eq!(in_sdp.len(), 1);
    assert_eq!(in_sdp[0].name, "trace.bin");
    assert_eq!(
        hex::encode(Sha256::digest(&in_sdp[0].bytes)),
        up["sha256"].as_str().unwrap()
    );

    let sdp_bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR screenshot from the technician".to_vec();
    env.fake.attach_file(&id, "screen.png", &sdp_bytes);
    let list = eventually(WAIT, || async {
        env.poll().await;
        let (_, list) = env
            .alice
            .get(&format!("/api/v1/tickets/{n}/attachments"))
            .await;
        (list["items"].as_array().unwrap().len() == 2).then_some(list)
    })
    .await;
    let theirs = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["origin"] == "sdp")
        .unwrap()
        .clone();
    assert_eq!(theirs["filename"], "screen.png");
    assert_eq!(theirs["content_type"], "image/png");
    assert_eq!(env.alice.download(&n, &theirs["id"]).await, sdp_bytes);
    // Our upload was not imported back as an SDP file.
    env.poll().await;
    let (_, list) = env
        .alice
        .get(&format!("/api/v1/tickets/{n}/attachments"))
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

async fn confirm_closes_and_reopen_reopens_in_sdp(profile: Profile) {
    let env = Env::start(profile).await;
    let (n, id) = env.new_ticket("Confirm me").await;
    env.fake.set_resolution(&id, "Rebooted the router");
    env.fake.set_status(&id, "Resolved", None);
    env.until(&n, |t| t["status"] == "resolved").await;
    let messages = env.messages(&n).await;
    assert!(
        messages
            .iter()
            .any(|m| m["body"].as_str().unwrap().contains("Rebooted the router")),
        "the resolution is shown: {messages:?}"
    );

    let (status, _) = env
        .alice
        .post(&format!("/api/v1/tickets/{n}/confirm"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    eventually(WAIT, || async {
        (env.fake.request(&id).unwrap()["status"]["name"] == "Closed").then_some(())
    })
    .await;
    let r = env.fake.request(&id).unwrap();
    assert_eq!(r["closure_info"]["requester_ack_resolution"], true, "{r}");
    env.synced(&n).await;
    assert_eq!(env.ticket(&n).await["status"], "closed");

    let (status, body) = env
        .alice
        .post(
            &format!("/api/v1/tickets/{n}/reopen"),
            &json!({"reason": "It broke again"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(WAIT, || async {
        (env.fake.request(&id).unwrap()["status"]["name"] == "Open").then_some(())
    })
    .await;
    let last = env.fake.status_changes(&id).last().cloned().unwrap();
    assert!(last.comments.unwrap_or_default().contains("It broke again"));
    env.synced(&n).await;
    assert_eq!(env.ticket(&n).await["status"], "new");
}

async fn a_reply_on_a_resolved_ticket_reopens_it_on_both_sides(profile: Profile) {
    let env = Env::start(profile).await;
    let (n, id) = env.new_ticket("Reply reopens").await;
    env.fake.set_status(&id, "Resolved", None);
    env.until(&n, |t| t["status"] == "resolved").await;
    env.alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "Still broken"}),
        )
        .await;
    assert_eq!(env.ticket(&n).await["status"], "new");
    eventually(WAIT, || async {
        let r = env.fake.request(&id).unwrap();
        (r["status"]["name"] == "Open" && env.fake.notes(&id).len() == 1).then_some(())
    })
    .await;
    env.synced(&n).await;
    assert_eq!(env.ticket(&n).await["status"], "new");
}

async fn changes_made_while_sdp_is_down_arrive_in_order_once(profile: Profile) {
    let env = Env::start(profile).await;
    let (n1, id1) = env.new_ticket("Before the outage").await;
    env.fake.refuse_connections().await;
    let (n2, ()) = (
        env.alice.ticket("During the outage").await["number"]
            .as_str()
            .unwrap()
            .to_owned(),
        (),
    );
    for i in 0..3 {
        let (status, _) = env
            .alice
            .post(
                &format!("/api/v1/tickets/{n1}/messages"),
                &json!({"body": format!("m{i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "the portal keeps accepting");
        let (status, _) = env
            .alice
            .post(
                &format!("/api/v1/tickets/{n2}/messages"),
                &json!({"body": format!("n{i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    // Deliveries fail while SDP is away, and the ticket says so.
    eventually(WAIT, || async {
        let t = env.ticket(&n1).await;
        t["sdp"]["last_error"].is_string().then_some(())
    })
    .await;
    assert_eq!(env.ticket(&n1).await["sdp"]["sync_state"], "pending");
    env.fake.accept_connections().await;
    let id2 = env.synced(&n2).await;
    env.synced(&n1).await;
    let texts = |id: &str| {
        env.fake
            .notes(id)
            .iter()
            .map(|n| n.description.split("<br>").next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&id1), ["m0", "m1", "m2"]);
    assert_eq!(texts(&id2), ["n0", "n1", "n2"]);
    assert_eq!(env.fake.requests().len(), 2);
}

async fn an_answer_lost_after_commit_creates_no_duplicate(profile: Profile) {
    let env = Env::start(profile).await;
    env.fake.set_fault(Fault::CommitThenDrop {
        op: Op::CreateRequest,
        times: 1,
    });
    let (n, id) = env.new_ticket("Dropped create").await;
    assert_eq!(
        env.fake.requests().len(),
        1,
        "the create was committed once and linked, not repeated"
    );

    env.fake.set_fault(Fault::CommitThenDrop {
        op: Op::AddNote,
        times: 1,
    });
    env.alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "dropped note"}),
        )
        .await;
    env.fake.set_fault(Fault::CommitThenDrop {
        op: Op::Upload,
        times: 1,
    });
    env.alice
        .upload(&n, "dropped.txt", b"dropped upload".to_vec())
        .await;
    eventually(WAIT, || async {
        let (_, list) = env
            .alice
            .get(&format!("/api/v1/tickets/{n}/attachments"))
            .await;
        let messages = env.messages(&n).await;
        (list["items"][0]["delivery"] == "delivered" && messages[0]["delivery"] == "delivered")
            .then_some(())
    })
    .await;
    assert_eq!(env.fake.notes(&id).len(), 1);
    assert_eq!(env.fake.attachments(&id).len(), 1);
    env.poll().await;
    env.synced(&n).await;
    assert_eq!(
        env.messages(&n).await.len(),
        1,
        "the dropped note is not echoed back either"
    );
}

async fn a_restart_mid_queue_loses_and_doubles_nothing(profile: Profile) {
    let mut env = Env::start(profile).await;
    // Slow answers keep calls in flight while the appliance stops.
    env.fake.set_fault(Fault::Slow(Duration::from_millis(300)));
    let mut numbers = Vec::new();
    for i in 0..4 {
        let t = env.alice.ticket(&format!("Queued {i}")).await;
        let n = t["number"].as_str().unwrap().to_owned();
        env.alice
            .post(
                &format!("/api/v1/tickets/{n}/messages"),
                &json!({"body": format!("note {i}")}),
            )
            .await;
        numbers.push(n);
    }
    env.app.restart().await;
    env.fake.clear_faults();
    env.alice = env
        .app
        .login("alice@example.com", crate::common::PASSWORD)
        .await;
    env.admin = env.app.admin().await;
    for n in &numbers {
        let id = env.synced(n).await;
        assert_eq!(env.fake.notes(&id).len(), 1, "{n}: one note");
    }
    assert_eq!(env.fake.requests().len(), 4, "one request per ticket");
}

async fn rate_limits_are_honoured(profile: Profile) {
    let env = Env::start(profile).await;
    env.fake.set_fault(Fault::RateLimit {
        every_nth: 2,
        retry_after_secs: Some(1),
    });
    let (n, id) = env.new_ticket("Throttled").await;
    for i in 0..3 {
        env.alice
            .post(
                &format!("/api/v1/tickets/{n}/messages"),
                &json!({"body": format!("m{i}")}),
            )
            .await;
    }
    eventually(WAIT, || async {
        (env.fake.notes(&id).len() == 3).then_some(())
    })
    .await;
    let calls: Vec<_> = env
        .fake
        .calls()
        .into_iter()
        .filter(|c| !c.endpoint.contains("oauth"))
        .collect();
    let limited = calls.iter().filter(|c| c.status == Some(429)).count();
    assert!(
        limited >= 2,
        "the fault answered 429 at least twice: {calls:?}"
    );
    // After a 429 with Retry-After: 1, nothing new was sent for that second (a call of another
    // lane may already have been on its way when the 429 came back).
    for (i, c) in calls.iter().enumerate() {
        if c.status == Some(429) {
            let next = calls[i + 1..]
                .iter()
                .find(|n| n.at.duration_since(c.at) > Duration::from_millis(50));
            if let Some(next) = next {
                assert!(
                    next.at.duration_since(c.at) >= Duration::from_millis(950),
                    "{c:?} then {next:?}"
                );
            }
        }
    }
    let texts: Vec<_> = env
        .fake
        .notes(&id)
        .iter()
        .map(|n| n.description.split("<br>").next().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["m0", "m1", "m2"], "in order, once");
}

async fn the_request_budget_is_never_exceeded(profile: Profile) {
    const BUDGET: usize = 6;
    let env = Env::start_with(profile, |c| c.sdp.max_requests_per_minute = 6).await;
    let t = env.alice.ticket("Budget").await;
    let n = t["number"].as_str().unwrap().to_owned();
    for i in 0..8 {
        env.alice
            .post(
                &format!("/api/v1/tickets/{n}/messages"),
                &json!({"body": format!("m{i}")}),
            )
            .await;
    }
    let api_calls = || {
        env.fake
            .calls()
            .into_iter()
            .filter(|c| !c.endpoint.contains("oauth"))
            .collect::<Vec<_>>()
    };
    eventually(WAIT, || async {
        (api_calls().len() >= BUDGET).then_some(())
    })
    .await;
    // Work is still waiting, yet no further call goes out within the minute. Checking that something
    // does not happen needs a bounded wait.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    assert!(health["queue_depth"].as_u64().unwrap() > 0, "{health}");
    let calls = api_calls();
    assert_eq!(calls.len(), BUDGET, "{calls:?}");
}

async fn the_webhook_needs_its_secret_and_beats_the_poll(profile: Profile) {
    let env = Env::start(profile).await;
    let (n, id) = env.new_ticket("Hooked").await;
    let hook = env.app.url("/api/v1/hooks/sdp");
    for bad in [hook.clone(), format!("{hook}?secret=wrong")] {
        assert_eq!(
            env.fake.fire_webhook(&bad, &id).await.unwrap(),
            StatusCode::UNAUTHORIZED
        );
    }
    env.fake.add_note(&id, "Pushed by the trigger", true);
    let ok = format!("{hook}?secret={HOOK_SECRET}");
    assert_eq!(
        env.fake.fire_webhook(&ok, &id).await.unwrap(),
        StatusCode::ACCEPTED
    );
    // No poll is asked for here (the poll interval is an hour): only the hint can bring it.
    let messages = eventually(WAIT, || async {
        let m = env.messages(&n).await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(messages[0]["body"], "Pushed by the trigger");
    let header = env
        .app
        .http
        .post(&hook)
        .header("X-Deskbridge-Secret", HOOK_SECRET)
        .json(&json!({"request": {"id": id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), StatusCode::ACCEPTED);
    let nonsense = env
        .app
        .http
        .post(&hook)
        .header("X-Deskbridge-Secret", HOOK_SECRET)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(nonsense.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn requests_raised_in_sdp_for_portal_users_are_imported(profile: Profile) {
    let env = Env::start(profile).await;
    let id = env
        .fake
        .raise_request("Raised by phone", "alice@example.com");
    env.fake
        .raise_request("Someone else's", "stranger@example.com");
    env.fake.add_note(&id, "Logged your call", true);
    let list = eventually(WAIT, || async {
        env.poll().await;
        let (_, list) = env.alice.get("/api/v1/tickets").await;
        (list["total"] == 1).then_some(list)
    })
    .await;
    let t = &list["items"][0];
    assert_eq!(t["subject"], "Raised by phone");
    assert_eq!(t["sdp"]["request_id"], id.as_str());
    let n = t["number"].as_str().unwrap();
    let messages = eventually(WAIT, || async {
        let m = env.messages(n).await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(messages[0]["body"], "Logged your call");
    eventually(WAIT, || async {
        let (_, health) = env.admin.get("/api/v1/admin/sync").await;
        (health["backfill"]["first_pass_done"] == true).then_some(())
    })
    .await;
    // The backfill may end before the requests are raised; the poll then imports them.
    // Either way the ticket's history starts with the import.
    let (_, events) = env.alice.get(&format!("/api/v1/tickets/{n}/events")).await;
    assert_eq!(events["items"][0]["kind"], "imported", "{events}");
    // Nothing went back to SDP for an imported ticket.
    assert_eq!(env.fake.requests().len(), 2);
}

/// A resolved ticket whose confirmation SDP refuses (closure rule, 4003: not retryable, so a dead
/// letter at once). Returns the ticket number, the SDP id and the dead letter.
async fn refused_confirmation(env: &Env, subject: &str) -> (String, String, Value) {
    let (n, id) = env.new_ticket(subject).await;
    env.fake.set_status(&id, "Resolved", None);
    env.until(&n, |t| t["status"] == "resolved").await;
    env.fake
        .set_fault(Fault::ClosureRule(vec!["resolution".into()]));
    env.alice
        .post(&format!("/api/v1/tickets/{n}/confirm"), &json!({}))
        .await;
    let dead = eventually(WAIT, || async {
        let (_, health) = env.admin.get("/api/v1/admin/sync").await;
        health["dead_letters"].as_array().unwrap().first().cloned()
    })
    .await;
    (n, id, dead)
}

async fn a_refused_change_becomes_a_dead_letter_an_admin_can_retry(profile: Profile) {
    let env = Env::start(profile).await;
    let (n, id, dead) = refused_confirmation(&env, "Closure rules").await;
    assert_eq!(dead["op"], "close");
    assert!(
        dead["last_error"].as_str().unwrap().contains("4003"),
        "{dead}"
    );
    let t = env.ticket(&n).await;
    assert_eq!(t["sdp"]["sync_state"], "failed");
    let note = t["sdp"]["last_error"].as_str().unwrap();
    assert!(
        note.starts_with("delayed") && !note.contains("4003"),
        "customers: {note}"
    );
    let (_, t) = env.admin.get(&format!("/api/v1/tickets/{n}")).await;
    assert!(
        t["sdp"]["last_error"].as_str().unwrap().contains("4003"),
        "admins: {t}"
    );
    // While the dead letter waits, the ticket's later changes wait behind it, in order.
    env.alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "after the close"}),
        )
        .await;
    let seq = dead["seq"].as_u64().unwrap();
    let retry = format!("/api/v1/admin/sync/dead-letters/{seq}/retry");
    assert_eq!(
        env.alice.post(&retry, &json!({})).await.0,
        StatusCode::FORBIDDEN,
        "only admins handle dead letters"
    );
    let missing = env
        .admin
        .post("/api/v1/admin/sync/dead-letters/999999/retry", &json!({}))
        .await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);
    let unknown = env
        .admin
        .post(
            &format!("/api/v1/admin/sync/dead-letters/{seq}/resend"),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.0, StatusCode::BAD_REQUEST, "{}", unknown.1);
    assert_eq!(crate::common::error_code(&unknown.1), "invalid-action");
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    assert_eq!(
        health["dead_letters"][0]["seq"], seq,
        "an unknown action changes nothing"
    );

    env.fake.set_resolution(&id, "Fixed");
    env.fake.clear_faults();
    assert_eq!(env.admin.post(&retry, &json!({})).await.0, StatusCode::OK);
    env.synced(&n).await;
    // The message on the closed ticket reopened it: close, then reopen, then the note, in order.
    let moves: Vec<_> = env
        .fake
        .status_changes(&id)
        .iter()
        .map(|c| c.to.clone())
        .collect();
    assert_eq!(
        moves[moves.len() - 2..],
        ["Closed".to_owned(), "Open".to_owned()],
        "{moves:?}"
    );
    assert_eq!(
        env.fake.notes(&id).len(),
        1,
        "the waiting message followed the retried close"
    );
}

async fn a_dead_letter_an_admin_discards_is_dropped(profile: Profile) {
    let env = Env::start(profile).await;
    let (n, _, dead) = refused_confirmation(&env, "Discarded").await;
    let seq = dead["seq"].as_u64().unwrap();
    let (status, _) = env
        .admin
        .post(
            &format!("/api/v1/admin/sync/dead-letters/{seq}/discard"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    assert_eq!(health["dead_letters"], json!([]));
    assert_eq!(env.ticket(&n).await["sdp"]["sync_state"], "synced");
    let (_, events) = env.alice.get(&format!("/api/v1/tickets/{n}/events")).await;
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "sdp_discarded")
    );
}

async fn a_mapped_name_sdp_refuses_is_left_out_and_reported(profile: Profile) {
    let env = Env::start_with(profile, |c| {
        c.sdp.mapping.priority_urgent = "Critical".into();
    })
    .await;
    let (status, _) = env
        .alice
        .post(
            "/api/v1/tickets",
            &json!({"kind": "problem_report", "subject": "Urgent thing", "priority": "urgent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = env.synced("DB-000001").await;
    let r = env.fake.request(&id).unwrap();
    assert_eq!(
        r["request_type"]["name"], "Incident",
        "the names SDP knows are kept"
    );
    assert_ne!(r["priority"]["name"], "Critical");
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    let mismatches = health["stats"]["mismatches"].as_array().unwrap();
    assert!(
        mismatches
            .iter()
            .any(|m| m.as_str().unwrap().contains("priority")),
        "{health}"
    );
}

#[actix_web::test]
async fn an_expired_cloud_token_is_refreshed_once() {
    let env = Env::start(Profile::Cloud).await;
    let (n, id) = env.new_ticket("Token").await;
    let before = env.fake.token_requests();
    env.fake.expire_access_tokens();
    env.alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "after expiry"}),
        )
        .await;
    eventually(WAIT, || async {
        (env.fake.notes(&id).len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        env.fake.token_requests(),
        before + 1,
        "one refresh, then the call went through"
    );
}

#[actix_web::test]
async fn a_wrong_api_key_stops_the_sync_visibly_without_retry_storms() {
    let env = Env::start(Profile::OnPrem).await;
    let key = env.fake.api_key();
    env.fake.set_api_key("rotated-key");
    env.alice.ticket("Bad key").await;
    let health = eventually(WAIT, || async {
        let (_, health) = env.admin.get("/api/v1/admin/sync").await;
        (health["budget"]["sdp"]["state"] == "unreachable").then_some(health)
    })
    .await;
    assert!(
        health["budget"]["sdp"]["last_error"]
            .as_str()
            .unwrap()
            .contains("credentials"),
        "{health}"
    );
    // Refused credentials are probed now and then, not hammered.
    let start = std::time::Instant::now();
    let before = env.fake.calls().len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = env.fake.calls().len() - before;
    assert!(
        during <= 3,
        "{during} calls in {:?} while the key is refused",
        start.elapsed()
    );
    // Nothing became a dead letter; once the key works again, the ticket goes out.
    assert_eq!(health["dead_letters"], json!([]), "{health}");
    env.fake.set_api_key(&key);
    env.synced("DB-000001").await;
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    assert_eq!(health["dead_letters"], json!([]), "{health}");
    assert_eq!(health["budget"]["sdp"]["state"], "reachable", "{health}");
}

#[actix_web::test]
async fn a_failed_poll_is_retried_before_the_next_interval() {
    // The poll interval is an hour; SDP refuses connections when the first poll runs.
    let fake = FakeSdp::start(Profile::OnPrem).await;
    fake.refuse_connections().await;
    let env = Env::start_with_fake(fake, |_| {}).await;
    eventually(WAIT, || async {
        let (_, health) = env.admin.get("/api/v1/admin/sync").await;
        health["stats"]["poll_errors"].as_u64().filter(|n| *n >= 1)
    })
    .await;
    env.fake
        .raise_request("Raised while we could not poll", "alice@example.com");
    env.fake.accept_connections().await;
    // No poll is asked for: the retry brings it.
    eventually(WAIT, || async {
        let (_, list) = env.alice.get("/api/v1/tickets").await;
        (list["total"] == 1).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn dead_letters_are_retried_or_discarded_in_bulk() {
    let env = Env::start(Profile::OnPrem).await;
    let (first, _, _) = refused_confirmation(&env, "Bulk one").await;
    let (second, _, _) = refused_confirmation(&env, "Bulk two").await;
    let dead = eventually(WAIT, || async {
        let (_, health) = env.admin.get("/api/v1/admin/sync").await;
        let dead = health["dead_letters"].as_array().unwrap().clone();
        (dead.len() == 2).then_some(dead)
    })
    .await;
    assert_eq!(dead.len(), 2);
    // One ticket's dead letters only.
    let (status, body) = env
        .admin
        .post(
            "/api/v1/admin/sync/dead-letters/discard",
            &json!({"ticket": first}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["handled"], 1);
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    assert_eq!(health["dead_letters"].as_array().unwrap().len(), 1);
    // Then all that are left, once SDP takes them.
    env.fake.clear_faults();
    let (status, body) = env
        .admin
        .post("/api/v1/admin/sync/dead-letters/retry", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["handled"], 1);
    env.until(&second, |t| t["sdp"]["sync_state"] == "synced")
        .await;
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    assert_eq!(health["dead_letters"], json!([]), "{health}");
    let (status, body) = env
        .admin
        .post("/api/v1/admin/sync/dead-letters/resend", &json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[actix_web::test]
async fn an_admin_pauses_the_sync_until_resumed_across_a_restart() {
    let mut env = Env::start(Profile::OnPrem).await;
    let (status, body) = env.admin.post("/api/v1/admin/sync/pause", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    assert_eq!(health["budget"]["sdp"]["state"], "paused", "{health}");
    env.alice.ticket("While paused").await;
    env.app.restart().await;
    env.admin = env.app.admin().await;
    env.alice = env
        .app
        .login("alice@example.com", crate::common::PASSWORD)
        .await;
    let (_, health) = env.admin.get("/api/v1/admin/sync").await;
    assert_eq!(
        health["budget"]["sdp"]["state"], "paused",
        "the pause survives a restart"
    );
    assert_eq!(health["queue_depth"], 1);
    // Nothing reaches SDP while paused.
    env.fake.reset_calls();
    let quiet = std::time::Instant::now() + Duration::from_secs(3);
    eventually(WAIT, || async {
        (std::time::Instant::now() >= quiet).then_some(())
    })
    .await;
    assert!(
        env.fake.calls().iter().all(|c| !c.is_api()),
        "{:?}",
        env.fake.calls()
    );
    let (status, _) = env
        .admin
        .post("/api/v1/admin/sync/resume", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    env.synced("DB-000001").await;
    assert_eq!(env.fake.requests().len(), 1);
}
