//! Colleagues on a ticket (CC): copied in the portal they reach SDP as `email_ids_to_notify` and
//! work on the ticket; removed, they lose it; copied in SDP, a portal colleague sees the ticket.
//! A ticket raised for a colleague reaches SDP with the colleague as requester.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::fake_sdp::{FakeSdp, Profile};
use crate::common::visitor::signed_in;
use crate::common::{Api, Desk, error_code, eventually, unreachable};

both_profiles!(
    a_colleague_copied_in_the_portal_reaches_sdp_works_on_the_ticket_and_leaves_it,
    a_colleague_copied_in_sdp_sees_the_ticket,
    a_ticket_raised_for_a_colleague_reaches_sdp_with_them_as_requester,
);

/// Acme shares the tickets its members are on; Alice and Bob belong to it, Carol to Globex.
async fn acme(desk: &Desk) -> (Api, Api, Api) {
    let app = &desk.app;
    let alice = app.member("alice@acme.example", "Acme").await;
    let bob = app.member("bob@acme.example", "Acme").await;
    let carol = app.member("carol@globex.example", "Globex").await;
    let (_, list) = desk.admin.get("/api/v1/admin/organizations").await;
    let id = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["name"] == "Acme"))
        .and_then(|o| o["id"].as_str())
        .expect("Acme")
        .to_owned();
    let (status, body) = desk
        .admin
        .send(
            desk.admin
                .request(Method::PUT, &format!("/api/v1/admin/organizations/{id}"))
                .json(&json!({"name": "Acme", "domains": ["acme.example"], "sharing": "participants"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (alice, bob, carol)
}

/// SDP's CC list of the request, once it is `want`.
async fn sdp_cc(desk: &Desk, request: &str, want: Value) {
    eventually(Duration::from_secs(20), || async {
        let r = desk.fake.request(request)?;
        let cc = r.get("email_ids_to_notify").cloned().unwrap_or(json!([]));
        (cc == want).then_some(())
    })
    .await;
}

async fn a_colleague_copied_in_the_portal_reaches_sdp_works_on_the_ticket_and_leaves_it(
    profile: Profile,
) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    let (alice, bob, carol) = acme(&desk).await;
    let t = alice.ticket("Firewall rule for the new office").await;
    let n = t["number"].as_str().unwrap().to_owned();
    let request = desk.synced(&alice, &n).await;

    // Only the requester copies people, and only colleagues.
    let path = format!("/api/v1/tickets/{n}/cc");
    let (status, body) = alice
        .post(&path, &json!({"email": "carol@globex.example"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "not-a-colleague");
    let (status, t) = alice
        .post(&path, &json!({"email": "Bob@Acme.example"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["cc"], json!(["bob@acme.example"]));
    sdp_cc(&desk, &request, json!(["bob@acme.example"])).await;

    // Bob lists, reads, replies; the history says who did.
    let (_, list) = bob.get("/api/v1/tickets").await;
    assert_eq!(list["items"][0]["number"], n.as_str(), "{list}");
    let (status, reply) = bob
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "Port 8443 too, please."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, _) = bob.upload(&n, "rules.txt", b"8443/tcp".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut page = signed_in(&desk.app, "bob@acme.example").await;
    let html = page.get(&format!("/tickets/{n}")).await;
    assert!(
        html.body.contains("Port 8443 too, please."),
        "{}",
        html.body
    );
    // Bob may not change who is copied, nor decide for the ticket; Carol reaches nothing.
    let (status, _) = bob
        .post(&path, &json!({"email": "alice@acme.example"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    unreachable(&carol, &n, &n, 0).await;
    let (_, events) = alice.get(&format!("/api/v1/tickets/{n}/events")).await;
    let kinds: Vec<_> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["actor"]["email"] == "alice@acme.example" || e["actor"]["email"] == "bob@acme.example"
        })
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["actor"]["email"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("cc_added".into(), "alice@acme.example".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("message_added".into(), "bob@acme.example".into())),
        "{kinds:?}"
    );

    // Removed (from the page), Bob loses the ticket, and SDP hears of it.
    let mut alice_page = signed_in(&desk.app, "alice@acme.example").await;
    let csrf = alice_page.csrf(&format!("/tickets/{n}")).await;
    let removed = alice_page
        .post(
            &format!("/tickets/{n}/cc/remove"),
            &[("csrf", &csrf), ("email", "bob@acme.example")],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    unreachable(&bob, &n, &n, 0).await;
    sdp_cc(&desk, &request, json!([])).await;
}

async fn a_colleague_copied_in_sdp_sees_the_ticket(profile: Profile) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    let (alice, bob, _) = acme(&desk).await;
    let t = alice.ticket("Licences for the new hires").await;
    let n = t["number"].as_str().unwrap().to_owned();
    let request = desk.synced(&alice, &n).await;
    desk.fake.edit_request(
        &request,
        json!({"email_ids_to_notify": ["BOB@acme.example", "auditor@elsewhere.example"]}),
    );
    let t = desk
        .until(&alice, &n, &request, |t| {
            t["cc"].as_array().is_some_and(|c| c.len() == 2)
        })
        .await;
    assert_eq!(
        t["cc"],
        json!(["auditor@elsewhere.example", "bob@acme.example"])
    );
    let (status, seen) = bob.get(&format!("/api/v1/tickets/{n}")).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let (_, list) = bob.get("/api/v1/tickets").await;
    assert_eq!(list["total"], 1, "{list}");
    // The history names the team; taken off in SDP, Bob loses the ticket again.
    let (_, events) = alice.get(&format!("/api/v1/tickets/{n}/events")).await;
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "cc_added" && e["to"] == "bob@acme.example"),
        "{events}"
    );
    desk.fake
        .edit_request(&request, json!({"email_ids_to_notify": []}));
    desk.until(&alice, &n, &request, |t| t["cc"] == json!([]))
        .await;
    let (status, _) = bob.get(&format!("/api/v1/tickets/{n}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn a_ticket_raised_for_a_colleague_reaches_sdp_with_them_as_requester(profile: Profile) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    let (alice, bob, _) = acme(&desk).await;
    // From the new-ticket page: the field is offered because Acme shares.
    let mut page = signed_in(&desk.app, "alice@acme.example").await;
    let form = page.get("/tickets/new").await;
    assert!(form.body.contains("name=\"on_behalf_of\""), "{}", form.body);
    let csrf = crate::common::visitor::hidden(&form.body, "csrf");
    let sent = page
        .post_multipart(
            "/tickets/new",
            reqwest::multipart::Form::new()
                .text("csrf", csrf)
                .text("form_id", "f1")
                .text("kind", "information_request")
                .text("subject", "VPN account for Bob")
                .text("description", "He starts Monday.")
                .text("priority", "medium")
                .text("on_behalf_of", "bob@acme.example"),
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let (_, list) = bob.get("/api/v1/tickets").await;
    let n = list["items"][0]["number"]
        .as_str()
        .expect("Bob's ticket")
        .to_owned();
    let request = desk.synced(&bob, &n).await;
    let r = desk.fake.request(&request).expect("request");
    assert_eq!(r["requester"]["email_id"], "bob@acme.example", "{r}");
    assert_eq!(
        r["email_ids_to_notify"],
        json!(["alice@acme.example"]),
        "{r}"
    );
    let (_, t) = alice.get(&format!("/api/v1/tickets/{n}")).await;
    assert_eq!(t["author"]["email"], "alice@acme.example", "{t}");
}
