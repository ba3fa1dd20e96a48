//! A customer's whole journey in the browser: sign in, submit a Problem Report with a screenshot,
//! find it on the dashboard, write to the team, see the team's public reply arrive live (the fake
//! SDP adds a note and calls the webhook), and confirm the resolution.

use std::path::Path;

use serde_json::json;

use crate::common::PASSWORD;
use crate::common::eventually;
use crate::harness::{Browser, Session, Setup, WAIT, run};

const SUBJECT: &str = "VM db-01 cannot reach the internet";
const MESSAGE: &str = "It started after the maintenance window last night.";
const TEAM_REPLY: &str = "We restarted the NAT gateway; please try again.";
/// Text of a private note: it must never reach the page.
const CANARY: &str = "CANARY-private-3c9e1";

#[actix_web::test]
async fn customer_journey() {
    run("customer_journey", Setup::Configured, journey).await;
}

async fn journey(s: &Session) {
    let alice = s.app.customer("alice@example.com", "Alice Tan").await;
    let b = &s.browser;
    b.goto("/tickets").await;
    b.until_at("/sign-in?next=%2Ftickets").await;
    b.screenshot("sign-in").await;
    b.sign_in("alice@example.com", PASSWORD).await;
    b.until_at("/tickets").await;

    let number = submit_problem_report(b).await;
    let ticket_path = format!("/tickets/{number}");

    // The dashboard lists it.
    b.click_and_load("a[href='/tickets']").await;
    let link = format!("table.tickets td:nth-child(2) a[href='{ticket_path}']");
    assert_eq!(b.text_of(&link).await, SUBJECT);
    b.screenshot("dashboard").await;
    b.click_and_load(&link).await;
    b.until_at(&ticket_path).await;

    // A message through the reply form reaches SDP as a note.
    b.fill("#body", MESSAGE).await;
    b.click_and_load("form.reply button[type=submit]").await;
    b.until_at(&ticket_path).await;
    assert_eq!(b.text_of(".chat .bubble.mine .text").await, MESSAGE);
    let request = s.sdp_request(&alice, &number).await;
    eventually(WAIT, || async {
        let (_, list) = alice
            .get(&format!("/api/v1/tickets/{number}/messages"))
            .await;
        (list["items"][0]["delivery"] == "delivered").then_some(())
    })
    .await;
    assert!(
        s.fake
            .notes(&request)
            .iter()
            .any(|n| n.description.contains(MESSAGE))
    );
    b.goto(&ticket_path).await;
    b.find(".chat .bubble.mine .delivery-delivered").await;

    team_reply_arrives_live(s, &request).await;

    // The team resolves it: the page offers the confirmation, still without a reload.
    s.fake
        .set_status(&request, "Resolved", Some("NAT gateway restarted"));
    s.webhook(&request).await;
    let confirm = format!("form[action='{ticket_path}/confirm'] button");
    b.find(&confirm).await;
    assert_same_document(b).await;
    b.find(".badge.big.status-resolved").await;
    b.screenshot("resolved").await;

    b.click_and_load(&confirm).await;
    b.until_at(&ticket_path).await;
    assert_eq!(b.text_of(".badge.big.status-closed").await, "Closed");
    assert!(b.text_of(".flash").await.contains("closed"));
    assert!(!b.text().await.contains(CANARY));
    b.screenshot("closed").await;
    s.until_closed_in_sdp(&request).await;
}

/// Fills in the new-ticket form with a PNG attachment; returns the new ticket's number.
async fn submit_problem_report(b: &Browser) -> String {
    b.click("a[href='/tickets/new']").await;
    b.until_at("/tickets/new").await;
    b.click("#kind-problem_report").await;
    b.fill("#subject", SUBJECT).await;
    b.fill("#description", "Ping to 1.1.1.1 times out.\nDNS works.")
        .await;
    let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/fixtures/error-dialog.png");
    b.find("#file")
        .await
        .send_keys(&png.display().to_string())
        .await
        .expect("choose the file");
    b.screenshot("new-ticket").await;
    b.click_and_load("form[action='/tickets/new'] button[type=submit]")
        .await;
    let number = b
        .until(
            "location.pathname.startsWith('/tickets/DB-') && location.pathname.slice(9)",
            "the new ticket's page",
        )
        .await
        .as_str()
        .expect("a ticket number")
        .to_owned();
    assert!(b.text_of("h1").await.contains(SUBJECT));
    assert!(b.text_of(".flash").await.contains("submitted"));
    // The picture shows inline, loaded from the appliance.
    b.until(
        "(() => { const i = document.querySelector('img.preview'); \
           return i && i.complete && i.naturalWidth === 96; })()",
        "the attachment's preview",
    )
    .await;
    b.screenshot("ticket-created").await;
    number
}

/// The team answers in SDP (a public note, and a private one that must stay there) and SDP's
/// trigger calls the webhook: the open page shows the reply without reloading.
async fn team_reply_arrives_live(s: &Session, request: &str) {
    let b = &s.browser;
    b.until(
        "document.body.dataset.stream === 'connected'",
        "the live stream",
    )
    .await;
    // A marker on `window` does not survive a reload.
    b.js("window.__sameDocument = 'kept';", Vec::new()).await;
    s.fake.add_note(request, CANARY, false);
    s.fake.add_note(request, TEAM_REPLY, true);
    s.webhook(request).await;
    let reply = serde_json::to_string(TEAM_REPLY).expect("a string");
    b.until(
        &format!(
            "Array.from(document.querySelectorAll('.chat .bubble.team .text'))\
               .some(e => e.innerText === {reply})"
        ),
        "the team's reply, live",
    )
    .await;
    assert_same_document(b).await;
    let updated = b
        .js(
            "return document.body.hasAttribute('data-live-updated');",
            Vec::new(),
        )
        .await;
    assert_eq!(updated, json!(true), "app.js marks a live update");
    assert!(
        !b.text().await.contains(CANARY),
        "a private note reached the page"
    );
    b.screenshot("team-reply").await;
}

async fn assert_same_document(b: &Browser) {
    let marker = b.js("return window.__sameDocument;", Vec::new()).await;
    assert_eq!(marker, json!("kept"), "the page reloaded");
}
