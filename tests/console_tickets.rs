//! The console's ticket list (filters, paging, the read-only ticket page) and the CSV exports:
//! the admin's of a filtered list, a customer's of their own tickets, formula cells neutralised.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::visitor::Visitor;
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, Desk, PASSWORD, TestApp};

async fn signed_in(app: &TestApp, email: &str, password: &str) -> Visitor {
    let mut v = Visitor::new(app);
    let page = v.sign_in(email, password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    v
}

fn number(ticket: &serde_json::Value) -> String {
    ticket["number"].as_str().expect("number").to_owned()
}

/// The records of a CSV body, header first.
fn records(body: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes())
        .records()
        .map(|r| {
            r.expect("well-formed CSV")
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// Whether the console list shows a ticket with this subject.
fn listed(body: &str, subject: &str) -> bool {
    body.contains(&format!(">{subject}</a>"))
}

#[actix_web::test]
async fn console_lists_every_ticket_by_status_organisation_requester_sync_state_and_page() {
    let desk = Desk::start(|_| {}).await;
    let app = &desk.app;
    let admin = &desk.admin;
    let alice = app.member("alice@acme.example", "Acme").await;
    let bob = app.member("bob@globex.example", "Globex").await;

    let printer = number(&alice.ticket("Alice printer").await);
    let mail = number(&alice.ticket("Alice mail").await);
    desk.synced(&alice, &printer).await;
    desk.synced(&alice, &mail).await;
    desk.team_sets(&alice, &mail, "in_progress").await;
    // With sync paused, Bob's ticket waits: the one not yet in SDP.
    let (status, body) = admin.post("/api/v1/admin/sync/pause", &json!({})).await;
    assert!(status.is_success(), "{body}");
    let vpn = number(&bob.ticket("Bob VPN").await);

    let mut console = signed_in(app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = console.get("/admin").await;
    assert!(
        page.body.contains("href=\"/admin/tickets\""),
        "nav links the list"
    );

    let page = console.get("/admin/tickets").await;
    assert_eq!(page.status, StatusCode::OK);
    for subject in ["Alice printer", "Alice mail", "Bob VPN"] {
        assert!(listed(&page.body, subject), "{subject} listed");
    }

    let only = |body: &str, subjects: &[&str]| {
        for subject in ["Alice printer", "Alice mail", "Bob VPN"] {
            assert_eq!(
                listed(body, subject),
                subjects.contains(&subject),
                "{subject} in {body}"
            );
        }
    };
    only(
        &console.get("/admin/tickets?status=in_progress").await.body,
        &["Alice mail"],
    );
    only(
        &console.get("/admin/tickets?organization=globex").await.body,
        &["Bob VPN"],
    );
    only(
        &console
            .get("/admin/tickets?requester=Alice%40acme.example")
            .await
            .body,
        &["Alice printer", "Alice mail"],
    );
    only(
        &console.get("/admin/tickets?sync=pending").await.body,
        &["Bob VPN"],
    );
    only(
        &console.get("/admin/tickets?sync=synced").await.body,
        &["Alice printer", "Alice mail"],
    );
    only(
        &console.get("/admin/tickets?q=printer").await.body,
        &["Alice printer"],
    );
    only(
        &console
            .get("/admin/tickets?organization=acme&status=new")
            .await
            .body,
        &["Alice printer"],
    );

    // Newest activity first, two a page.
    let first = console.get("/admin/tickets?per_page=2").await;
    assert_eq!(first.body.matches("<td class=\"number\">").count(), 2);
    assert!(first.body.contains("page=2"), "a next link");
    let second = console.get("/admin/tickets?per_page=2&page=2").await;
    assert_eq!(second.body.matches("<td class=\"number\">").count(), 1);

    // A bad filter says so and lists everything.
    let page = console.get("/admin/tickets?sync=lost").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("error-summary"));

    // The read-only ticket page: requester, discussion, files (downloadable), history, sync log.
    let (status, _) = alice
        .upload(&printer, "notes.txt", b"paper jam".to_vec())
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let page = console.get(&format!("/admin/tickets/{vpn}")).await;
    assert!(page.body.contains("Globex") && page.body.contains("bob@globex.example"));
    let page = console.get(&format!("/admin/tickets/{printer}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("It broke."), "the discussion");
    let start = page.body.find("/api/v1/tickets/").expect("a file link");
    let href = &page.body[start..start + page.body[start..].find('"').expect("end")];
    let file = console.get(href).await;
    assert_eq!(file.status, StatusCode::OK, "{href}");
    assert_eq!(file.body, "paper jam");
}

#[actix_web::test]
async fn admin_csv_has_the_filtered_rows_and_customers_reach_only_their_own() {
    let app = TestApp::start().await;
    let alice = app.member("alice@acme.example", "Acme").await;
    let bob = app.member("bob@globex.example", "Globex").await;
    alice.ticket("=HYPERLINK(\"http://x\")").await;
    alice.ticket("Alice mail").await;
    bob.ticket("Bob VPN").await;
    bob.ticket("@Bob printer").await;

    let mut console = signed_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = console.get("/admin/tickets.csv?organization=Globex").await;
    assert_eq!(page.status, StatusCode::OK);
    let rows = records(&page.body);
    assert_eq!(rows[0][0], "number");
    let subjects: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(subjects, ["'@Bob printer", "Bob VPN"]);
    assert!(rows[1..].iter().all(|r| r[7] == "Globex"));
    let all = records(&console.get("/admin/tickets.csv").await.body);
    assert_eq!(all.len(), 5, "a header and every ticket");
    // The list offers the export of what it shows.
    let page = console.get("/admin/tickets?organization=Globex").await;
    assert!(page.body.contains("/admin/tickets.csv?organization=Globex"));

    let mut customer = signed_in(&app, "alice@acme.example", PASSWORD).await;
    assert_eq!(
        customer.get("/admin/tickets").await.status,
        StatusCode::FORBIDDEN
    );
    let refused = customer.get("/admin/tickets.csv").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains("Bob VPN"));
    let anonymous = Visitor::new(&app).get("/admin/tickets.csv").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);

    assert!(customer.get("/tickets").await.body.contains("/tickets.csv"));
    let page = customer.get("/tickets.csv").await;
    assert_eq!(page.status, StatusCode::OK);
    let rows = records(&page.body);
    let subjects: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(subjects, ["Alice mail", "'=HYPERLINK(\"http://x\")"]);
    assert!(rows[1..].iter().all(|r| r[6] == "alice@acme.example"));
    let page = customer.get("/tickets.csv?q=mail").await;
    assert_eq!(records(&page.body).len(), 2);
}
