//! What a working service desk does beyond the happy path, driven on the fake SDP as a technician
//! would, at the default settings and in both profiles: mail not meant for the customer, quoting,
//! trash, deletion and merges, requester changes, SDP's own statuses, long note threads.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::fake_sdp::{FakeSdp, Profile};
use crate::common::visitor::signed_in;
use crate::common::{Api, Desk, error_code, eventually};

both_profiles!(
    mail_not_for_the_customer_stays_in_sdp_and_a_note_quoting_them_shows,
    trash_restore_delete_and_merge_are_explained_and_stall_nothing,
    a_new_requester_in_sdp_takes_the_ticket_with_them,
    sdp_default_and_custom_statuses_map_without_configuration,
    a_long_thread_arrives_whole_in_order_with_edits_and_deletions,
    a_form_webhook_is_taken_like_a_json_one,
    a_reply_on_hold_alerts_the_technician_and_reopens_the_request,
    a_new_customer_is_created_in_sdp_before_their_first_request,
    files_come_only_from_sdp_and_one_too_large_is_named,
    the_resolution_files_and_the_closure_comments_reach_the_customer,
    the_ticket_carries_the_number_the_service_desk_shows,
    the_console_mapping_shows_what_each_sdp_status_means_unmapped,
);

/// Text that must never reach the portal.
const VENDOR_CANARY: &str = "CANARY-vendor-51c2";
const TEAM_CANARY: &str = "CANARY-team-88e0";

async fn desk(profile: Profile) -> Desk {
    Desk::start_with(FakeSdp::start(profile).await, |_| {}).await
}

async fn new_ticket(desk: &Desk, customer: &Api, subject: &str) -> (String, String) {
    let t = customer.ticket(subject).await;
    let number = t["number"].as_str().unwrap().to_owned();
    let request = desk.synced(customer, &number).await;
    (number, request)
}

async fn messages(customer: &Api, number: &str) -> Vec<Value> {
    customer
        .get(&format!("/api/v1/tickets/{number}/messages?per_page=500"))
        .await
        .1["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn history(api: &Api, number: &str) -> Vec<Value> {
    api.get(&format!("/api/v1/tickets/{number}/events")).await.1["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Hints the request as SDP's trigger would, every few seconds, until the portal's messages
/// satisfy `check`.
async fn messages_until(
    desk: &Desk,
    customer: &Api,
    number: &str,
    request: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    // A long thread on-prem is read note by note at SDP's default budget: minutes.
    let deadline = Instant::now() + Duration::from_mins(5);
    loop {
        desk.webhook(request).await;
        let next_hint = Instant::now() + Duration::from_secs(3);
        while Instant::now() < next_hint {
            let m = messages(customer, number).await;
            if check(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "{number}: {m:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Asks for a reconciliation sweep ("Reconcile now") until `number`'s history has `kind`.
async fn swept_until(desk: &Desk, number: &str, kind: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        desk.sweep().await;
        let next = Instant::now() + Duration::from_secs(5);
        while Instant::now() < next {
            let events = history(&desk.admin, number).await;
            if events.iter().any(|e| e["kind"] == kind) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "{number} never got {kind}: {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every portal answer about the ticket, as `api` sees it, in one string.
async fn everything(desk: &Desk, api: &Api, number: &str) -> String {
    let mut all = String::new();
    for path in [
        format!("/api/v1/tickets/{number}"),
        format!("/api/v1/tickets/{number}/messages?per_page=500"),
        format!("/api/v1/tickets/{number}/events"),
        format!("/api/v1/tickets/{number}/attachments"),
        "/api/v1/tickets".to_owned(),
    ] {
        let text = api
            .request(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        all.push_str(&text);
    }
    all.push_str(&desk.health().await.to_string());
    all
}

async fn mail_not_for_the_customer_stays_in_sdp_and_a_note_quoting_them_shows(profile: Profile) {
    let desk = desk(profile).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (number, request) = new_ticket(&desk, &alice, "VPN drops").await;
    let (status, _) = alice
        .post(
            &format!("/api/v1/tickets/{number}/messages"),
            &json!({"body": "It still fails at 09:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let ours = eventually(Duration::from_secs(20), || async {
        desk.fake
            .notes(&request)
            .into_iter()
            .find(|n| n.description.contains("It still fails"))
            .map(|n| n.description)
    })
    .await;
    let marker = &ours[ours.find("[deskbridge:").expect("our note has its marker")..];

    // The technician forwards to a vendor and mails another team: neither is for Alice.
    desk.fake.forward_to_vendor(
        &request,
        "Tech One",
        "support@vendor.example.net",
        &format!("Please check {VENDOR_CANARY}"),
    );
    desk.fake.email_team(
        &request,
        "Tech One",
        "network@example.com",
        &format!("FYI {TEAM_CANARY}"),
    );
    desk.fake
        .email_requester(&request, "Tech One", "We are checking with the vendor");
    // A public note that quotes Alice's message, marker and all.
    desk.fake.add_note(
        &request,
        &format!("<p>You wrote: It still fails at 09:00 {marker}</p><p>Fixed, please retry</p>"),
        true,
    );
    let shown = messages_until(&desk, &alice, &number, &request, |m| {
        m.iter().any(|m| {
            m["body"]
                .as_str()
                .is_some_and(|b| b.contains("Fixed, please retry"))
        }) && m
            .iter()
            .any(|m| m["body"] == "We are checking with the vendor")
    })
    .await;
    let quoting = shown
        .iter()
        .find(|m| {
            m["body"]
                .as_str()
                .is_some_and(|b| b.contains("Fixed, please retry"))
        })
        .unwrap();
    assert_eq!(quoting["author"]["role"], "team", "{quoting}");
    let body = quoting["body"].as_str().unwrap();
    assert!(
        body.contains("You wrote: It still fails at 09:00"),
        "{body}"
    );
    assert!(
        !body.contains("[deskbridge:"),
        "markers are not shown: {body}"
    );
    // Alice's own message is there once: our note is not echoed back.
    let own = shown
        .iter()
        .filter(|m| m["body"] == "It still fails at 09:00")
        .count();
    assert_eq!(own, 1, "{shown:?}");

    // Nothing private reached any answer, for Alice or for the admin.
    desk.webhook(&request).await;
    for api in [&alice, &desk.admin] {
        let all = everything(&desk, api, &number).await;
        assert!(!all.contains(VENDOR_CANARY), "the vendor forward leaked");
        assert!(!all.contains(TEAM_CANARY), "the team mail leaked");
    }
    let page = signed_in(&desk.app, "alice@example.com")
        .await
        .get(&format!("/tickets/{number}"))
        .await
        .body;
    assert!(page.contains("Fixed, please retry"));
    assert!(!page.contains(VENDOR_CANARY) && !page.contains(TEAM_CANARY));
}

async fn trash_restore_delete_and_merge_are_explained_and_stall_nothing(profile: Profile) {
    let desk = desk(profile).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (trashed, trashed_id) = new_ticket(&desk, &alice, "Goes to the trash").await;
    let (deleted, deleted_id) = new_ticket(&desk, &alice, "Deleted for good").await;
    let (child, child_id) = new_ticket(&desk, &alice, "Same problem again").await;
    let (parent, parent_id) = new_ticket(&desk, &alice, "The problem").await;

    desk.fake.trash(&trashed_id);
    desk.fake.trash(&deleted_id);
    desk.fake.merge(&parent_id, &child_id);
    swept_until(&desk, &trashed, "sdp_trashed").await;
    swept_until(&desk, &deleted, "sdp_trashed").await;
    let merged = swept_until(&desk, &child, "sdp_merged").await;
    let line = merged.iter().find(|e| e["kind"] == "sdp_merged").unwrap();
    assert_eq!(line["to"], parent.as_str(), "{line}");

    // Each stays readable, refuses changes with a clear error, and explains why on its page.
    for number in [&trashed, &deleted, &child] {
        let (status, t) = alice.get(&format!("/api/v1/tickets/{number}")).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        assert!(!t["sdp"]["fate"].is_null(), "{t}");
        let (status, body) = alice
            .post(
                &format!("/api/v1/tickets/{number}/messages"),
                &json!({"body": "Hello?"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(error_code(&body), "ticket-frozen");
    }
    let page = signed_in(&desk.app, "alice@example.com")
        .await
        .get(&format!("/tickets/{child}"))
        .await
        .body;
    assert!(page.contains(&parent), "the page names where it went");

    // Nothing else waits: a new ticket reaches SDP as usual.
    let started = Instant::now();
    let (_, _) = new_ticket(&desk, &alice, "Unrelated").await;
    assert!(started.elapsed() < Duration::from_secs(20));

    // Restored: changes are taken again and reach SDP.
    desk.fake.restore(&trashed_id);
    let events = swept_until(&desk, &trashed, "sdp_restored").await;
    assert!(events.iter().any(|e| e["kind"] == "sdp_trashed"));
    let (status, body) = alice
        .post(
            &format!("/api/v1/tickets/{trashed}/messages"),
            &json!({"body": "Thanks for restoring it"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually(Duration::from_secs(20), || async {
        desk.fake
            .notes(&trashed_id)
            .iter()
            .any(|n| n.description.contains("Thanks for restoring it"))
            .then_some(())
    })
    .await;

    // Deleted for good: the ticket says so and stays readable.
    desk.fake.purge(&deleted_id);
    swept_until(&desk, &deleted, "sdp_removed").await;
    let (status, _) = alice.get(&format!("/api/v1/tickets/{deleted}")).await;
    assert_eq!(status, StatusCode::OK);
    let health = desk.health().await;
    assert_eq!(health["dead_letters"], json!([]), "{health}");
}

async fn a_new_requester_in_sdp_takes_the_ticket_with_them(profile: Profile) {
    let desk = desk(profile).await;
    let alice = desk.app.customer("alice@example.com").await;
    let bob = desk.app.customer("bob@example.com").await;
    let (number, request) = new_ticket(&desk, &alice, "Printer jam").await;
    desk.fake
        .change_requester(&request, "bob@example.com", "Bob");
    eventually(Duration::from_secs(30), || async {
        desk.webhook(&request).await;
        let (status, _) = bob.get(&format!("/api/v1/tickets/{number}")).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let line = history(&bob, &number)
        .await
        .into_iter()
        .find(|e| e["kind"] == "requester_changed")
        .expect("the history records the change");
    // Named as the portal knows Bob.
    assert!(
        line["to"].as_str().is_some_and(|n| n.contains("bob")),
        "{line}"
    );

    desk.fake
        .add_note(&request, "For Bob: NOTE-FOR-BOB-31", true);
    messages_until(&desk, &bob, &number, &request, |m| {
        m.iter().any(|m| m["body"] == "For Bob: NOTE-FOR-BOB-31")
    })
    .await;
    let (status, _) = alice.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "Alice no longer sees it");
    let all = everything(&desk, &alice, &number).await;
    assert!(!all.contains("NOTE-FOR-BOB-31"));
    let (_, list) = alice.get("/api/v1/tickets").await;
    assert_eq!(list["total"], 0, "{list}");
}

async fn sdp_default_and_custom_statuses_map_without_configuration(profile: Profile) {
    let fake = FakeSdp::start(profile).await;
    // An SDP with its shipped statuses only, two custom ones, and requests that carry their
    // status as {id, name, color}.
    fake.use_default_statuses();
    fake.add_status("Awaiting Vendor", true, true);
    fake.add_status("Investigating", true, false);
    fake.embed_status_flags(false);
    let desk = Desk::start_with(fake, |_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (one, one_id) = new_ticket(&desk, &alice, "Assigned to a person").await;
    let (two, two_id) = new_ticket(&desk, &alice, "Assigned to a group").await;

    desk.fake.assign_technician(&one_id, "Tech One");
    desk.until(&alice, &one, &one_id, |t| t["status"] == "assigned")
        .await;
    desk.fake
        .edit_request(&two_id, json!({"group": {"name": "Network"}}));
    desk.until(&alice, &two, &two_id, |t| t["status"] == "assigned")
        .await;

    desk.fake.set_status(&one_id, "Awaiting Vendor", None);
    desk.until(&alice, &one, &one_id, |t| t["status"] == "pending")
        .await;
    desk.fake.set_status(&one_id, "Investigating", None);
    desk.until(&alice, &one, &one_id, |t| t["status"] == "in_progress")
        .await;
    desk.fake.set_status(&two_id, "On Hold", None);
    desk.until(&alice, &two, &two_id, |t| t["status"] == "pending")
        .await;
    // The catalog was read once for both custom statuses.
    assert_eq!(desk.fake.call_count("GET /statuses"), 1);
}

async fn a_long_thread_arrives_whole_in_order_with_edits_and_deletions(profile: Profile) {
    const NOTES: usize = 130;
    let desk = desk(profile).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (number, request) = new_ticket(&desk, &alice, "Long thread").await;
    let mut ids = Vec::new();
    for i in 0..NOTES {
        ids.push(
            desk.fake
                .add_note(&request, &format!("Update {i:03}"), true),
        );
        if i % 10 == 0 {
            desk.fake
                .add_note(&request, &format!("Internal {i} {VENDOR_CANARY}"), false);
        }
    }
    // More than one page of notes (SDP pages by 100 at most), read in full; on-prem lists them
    // without bodies, so each is read by id.
    let shown = messages_until(&desk, &alice, &number, &request, |m| m.len() >= NOTES).await;
    let bodies: Vec<&str> = shown.iter().filter_map(|m| m["body"].as_str()).collect();
    let expected: Vec<String> = (0..NOTES).map(|i| format!("Update {i:03}")).collect();
    assert_eq!(bodies, expected, "every public note once, in order");

    // The technician edits one, deletes one, and makes one private again.
    desk.fake
        .edit_note(&request, &ids[5], "Update 005, corrected");
    desk.fake.delete_note(&request, &ids[6]);
    desk.fake.set_note_public(&request, &ids[7], false);
    let after = messages_until(&desk, &alice, &number, &request, |m| {
        m.iter().any(|m| m["body"] == "Update 005, corrected") && m.len() == NOTES - 2
    })
    .await;
    let edited = after
        .iter()
        .find(|m| m["body"] == "Update 005, corrected")
        .unwrap();
    assert!(!edited["edited_at"].is_null(), "{edited}");
    for gone in ["Update 006", "Update 007"] {
        assert!(
            after.iter().all(|m| m["body"] != gone),
            "{gone} is still shown"
        );
    }
    let events = history(&alice, &number).await;
    let withdrawn = events
        .iter()
        .filter(|e| e["kind"] == "message_withdrawn")
        .count();
    assert_eq!(withdrawn, 2, "{events:?}");
    assert!(events.iter().any(|e| e["kind"] == "message_edited"));
    let all = everything(&desk, &alice, &number).await;
    assert!(!all.contains("Update 006") && !all.contains("Update 007"));
    assert!(!all.contains(VENDOR_CANARY));

    // Public again: it comes back.
    desk.fake.set_note_public(&request, &ids[7], true);
    messages_until(&desk, &alice, &number, &request, |m| {
        m.iter().any(|m| m["body"] == "Update 007")
    })
    .await;
}

async fn a_form_webhook_is_taken_like_a_json_one(profile: Profile) {
    let desk = desk(profile).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (number, request) = new_ticket(&desk, &alice, "Hooked").await;
    for (field, status) in [("request[id]", "In Progress"), ("request_id", "On Hold")] {
        desk.fake.set_status(&request, status, None);
        let answered = desk
            .fake
            .fire_webhook_form(&desk.hook_url(), &[(field, request.as_str())])
            .await
            .expect("the webhook answers");
        assert_eq!(answered, StatusCode::ACCEPTED, "{field}");
        let portal = if status == "On Hold" {
            "pending"
        } else {
            "in_progress"
        };
        eventually(Duration::from_secs(3), || async {
            let (_, t) = alice.get(&format!("/api/v1/tickets/{number}")).await;
            (t["status"] == portal).then_some(())
        })
        .await;
    }
}

async fn a_reply_on_hold_alerts_the_technician_and_reopens_the_request(profile: Profile) {
    let fake = FakeSdp::start(profile).await;
    // SDP as shipped: Open, On Hold, Resolved, Closed.
    fake.use_default_statuses();
    let desk = Desk::start_with(fake, |_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (number, request) = new_ticket(&desk, &alice, "Waiting on me").await;
    desk.fake.assign_technician(&request, "Tech One");
    desk.fake
        .set_status(&request, "On Hold", Some("Waiting for the customer"));
    desk.until(&alice, &number, &request, |t| t["status"] == "pending")
        .await;

    let (status, _) = alice
        .post(
            &format!("/api/v1/tickets/{number}/messages"),
            &json!({"body": "Here is the log you asked for"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let note = eventually(Duration::from_secs(20), || async {
        desk.fake
            .notes(&request)
            .into_iter()
            .find(|n| n.description.contains("Here is the log"))
    })
    .await;
    assert_eq!(
        note.notify_technician,
        Some(true),
        "the technician is alerted"
    );
    eventually(Duration::from_secs(20), || async {
        let r = desk.fake.request(&request)?;
        (r["status"]["name"] == "Open").then_some(())
    })
    .await;
    let moved = desk.fake.status_changes(&request);
    assert_eq!(
        moved.last().map(|c| (c.from.as_str(), c.to.as_str())),
        Some(("On Hold", "Open")),
        "{moved:?}"
    );
    // The portal follows SDP: Open with a technician is assigned.
    desk.until(&alice, &number, &request, |t| t["status"] == "assigned")
        .await;
}

async fn a_new_customer_is_created_in_sdp_before_their_first_request(profile: Profile) {
    let fake = FakeSdp::start(profile).await;
    // This SDP refuses requests for requesters it does not know.
    fake.auto_create_requesters(false);
    // Cloud: the token may use the user directory.
    fake.grant_scope("SDPOnDemand.users.ALL");
    let desk = Desk::start_with(fake, |_| {}).await;
    let carol = desk.app.customer("carol@example.com").await;
    let (_, request) = new_ticket(&desk, &carol, "First one").await;
    let r = desk.fake.request(&request).unwrap();
    assert_eq!(r["requester"]["email_id"], "carol@example.com", "{r}");
    let directory = |calls: &[crate::common::fake_sdp::CallRecord]| {
        calls
            .iter()
            .filter(|c| c.endpoint.contains("/users") || c.endpoint.contains("/requesters"))
            .count()
    };
    let looked_up = directory(&desk.fake.calls());
    assert!(looked_up >= 2, "looked up, then created");
    // The id is remembered: the second request needs no directory call.
    new_ticket(&desk, &carol, "Second one").await;
    assert_eq!(directory(&desk.fake.calls()), looked_up);
}

async fn files_come_only_from_sdp_and_one_too_large_is_named(profile: Profile) {
    let fake = FakeSdp::start(profile).await;
    // SDP names its files by absolute URLs on another host (a CDN, a misconfigured proxy).
    fake.absolute_content_urls(true);
    // A cap of 1 MiB instead of the default 25 MiB, so "too large" needs no 25 MiB file.
    let desk = Desk::start_with(fake, |c| c.portal.max_attachment_bytes = 1 << 20).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (number, request) = new_ticket(&desk, &alice, "Files").await;
    desk.fake.attach_file(&request, "log.txt", b"the log");
    desk.fake
        .attach_file(&request, "dump.bin", &vec![7u8; (1 << 20) + 1]);
    let m = messages_until(&desk, &alice, &number, &request, |m| {
        m.iter().any(|m| {
            let body = m["body"].as_str().unwrap_or_default();
            body.contains("dump.bin") && body.contains("ask the team")
        })
    })
    .await;
    assert_eq!(m.len(), 1, "one line for the file too large: {m:?}");
    // The small file waits: its URL is on another host, which is never called.
    eventually(Duration::from_secs(20), || async {
        let health = desk.health().await;
        let failed = health["stats"]["files_failed"].to_string();
        failed.contains("another host").then_some(())
    })
    .await;
    assert!(
        desk.fake.foreign_hits().is_empty(),
        "{:?}",
        desk.fake.foreign_hits()
    );
    let attachments = || async {
        alice
            .get(&format!("/api/v1/tickets/{number}/attachments"))
            .await
            .1["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(attachments().await.is_empty());
    // Back on SDP's own origin, the file arrives, once; the large one is never downloaded.
    desk.fake.absolute_content_urls(false);
    let deadline = Instant::now() + Duration::from_mins(1);
    let files = loop {
        desk.admin
            .post("/api/v1/admin/sync/sweep", &json!({}))
            .await;
        let files = attachments().await;
        if !files.is_empty() {
            break files;
        }
        assert!(Instant::now() < deadline, "log.txt never arrived");
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["filename"], "log.txt");
    let downloads = desk
        .fake
        .calls()
        .iter()
        .filter(|c| c.endpoint.contains("download") || c.endpoint.contains("/files/"))
        .count();
    assert_eq!(downloads, 1, "only log.txt was downloaded");
}

async fn the_resolution_files_and_the_closure_comments_reach_the_customer(profile: Profile) {
    let desk = desk(profile).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (number, request) = new_ticket(&desk, &alice, "Broken VM").await;
    desk.fake.set_resolution_with_files(
        &request,
        "<p>Restarted the hypervisor</p>",
        &[("steps.txt", b"1. restart")],
    );
    desk.fake.set_status(&request, "Resolved", None);
    messages_until(&desk, &alice, &number, &request, |m| {
        m.iter().any(|m| {
            m["body"]
                .as_str()
                .is_some_and(|b| b.contains("Restarted the hypervisor"))
        })
    })
    .await;
    let files = eventually(Duration::from_secs(20), || async {
        let (_, list) = alice
            .get(&format!("/api/v1/tickets/{number}/attachments"))
            .await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["filename"], "steps.txt");
    assert_eq!(
        alice.download(&number, &files[0]["id"]).await,
        b"1. restart"
    );

    desk.fake.close(&request, "No reply for a week; closing");
    let m = messages_until(&desk, &alice, &number, &request, |m| {
        m.iter().any(|m| {
            m["body"]
                .as_str()
                .is_some_and(|b| b.contains("No reply for a week"))
        })
    })
    .await;
    let closing = m
        .iter()
        .filter(|m| {
            m["body"]
                .as_str()
                .is_some_and(|b| b.contains("No reply for a week"))
        })
        .count();
    assert_eq!(closing, 1, "{m:?}");
    desk.until(&alice, &number, &request, |t| t["status"] == "closed")
        .await;
}

async fn the_ticket_carries_the_number_the_service_desk_shows(profile: Profile) {
    let fake = FakeSdp::start(profile).await;
    // Cloud may send `display_id` as `{"value", "display_value"}`.
    fake.set_display_id_object(true);
    let desk = Desk::start_with(fake, |_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (number, request) = new_ticket(&desk, &alice, "Numbered").await;
    let shown = desk.fake.request(&request).unwrap()["display_id"].clone();
    let expected = shown["value"]
        .as_str()
        .or(shown.as_str())
        .map_or_else(|| request.clone(), str::to_owned);
    desk.fake.add_note(&request, "<p>Looking</p>", true);
    let t = desk
        .until(&alice, &number, &request, |t| !t["sdp"]["number"].is_null())
        .await;
    assert_eq!(t["sdp"]["number"], expected.as_str(), "{t}");
    if profile == Profile::Cloud {
        assert_ne!(expected, request, "Cloud's number is not its id");
    }
}

async fn the_console_mapping_shows_what_each_sdp_status_means_unmapped(profile: Profile) {
    let fake = FakeSdp::start(profile).await;
    fake.use_default_statuses();
    fake.add_status("Awaiting Vendor", true, true);
    fake.add_status("Investigating", true, false);
    let desk = Desk::start_with(fake, |_| {}).await;
    let mut admin = crate::common::visitor::Visitor::new(&desk.app);
    admin
        .sign_in(crate::common::ADMIN_EMAIL, crate::common::ADMIN_PASSWORD)
        .await;
    let page = admin.get("/admin/mapping").await;
    assert_eq!(page.status, StatusCode::OK);
    // Each SDP status, with what "automatic" makes of it: by name, else by its flags.
    for (status, automatic) in [
        ("Open", "Automatic (Received)"),
        ("On Hold", "Automatic (On hold)"),
        ("Awaiting Vendor", "Automatic (On hold)"),
        ("Investigating", "Automatic (In progress)"),
    ] {
        let row = page
            .body
            .split("<tr>")
            .find(|r| r.contains(&format!(">{status}</label>")))
            .unwrap_or_else(|| panic!("{status} is listed: {}", page.body));
        assert!(row.contains(automatic), "{status}: {row}");
    }
}

/// Cloud with the documented scopes only (requests, setup): the directory refuses the token. That
/// is no outage: tickets still reach SDP, naming the requester by e-mail, and the refusal is
/// asked again only after an hour.
#[actix_web::test]
async fn a_token_without_the_users_scope_still_delivers_every_ticket() {
    let fake = FakeSdp::start(Profile::Cloud).await;
    let desk = Desk::start_with(fake, |_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let bob = desk.app.customer("bob@example.com").await;
    let tokens_before = desk.fake.token_requests();
    let (_, one) = new_ticket(&desk, &alice, "Without the scope").await;
    let (_, two) = new_ticket(&desk, &bob, "Still without it").await;
    assert_eq!(
        desk.fake.request(&one).unwrap()["requester"]["email_id"],
        "alice@example.com"
    );
    assert_eq!(
        desk.fake.request(&two).unwrap()["requester"]["email_id"],
        "bob@example.com"
    );
    let directory: Vec<_> = desk
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.endpoint.contains("/requesters") || c.endpoint.contains("/users"))
        .collect();
    assert_eq!(
        directory.len(),
        1,
        "refused once, then not asked: {directory:?}"
    );
    assert_eq!(directory[0].status, Some(401));
    // No token refresh for a scope refusal (Zoho limits token requests).
    assert_eq!(desk.fake.token_requests(), tokens_before);
    let health = desk.health().await;
    assert_eq!(health["budget"]["sdp"]["state"], "reachable", "{health}");
}
