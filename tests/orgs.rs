//! Organisations: records managed by admins, customers placed in them (by name or e-mail domain),
//! and each sharing mode over HTTP, with the 404 matrix across two organisations.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::visitor::{Visitor, signed_in};
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, PASSWORD, TestApp, error_code, unreachable};

fn number(ticket: &Value) -> String {
    ticket["number"].as_str().expect("number").to_owned()
}

/// The organisation of this name as the admin API lists it.
async fn org(admin: &Api, name: &str) -> Value {
    let (status, list) = admin.get("/api/v1/admin/organizations").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no organisation {name}: {list}"))
}

async fn set_sharing(admin: &Api, name: &str, sharing: &str) {
    let o = org(admin, name).await;
    let (status, body) = admin
        .send(
            admin
                .request(
                    Method::PUT,
                    &format!("/api/v1/admin/organizations/{}", o["id"].as_str().unwrap()),
                )
                .json(&json!({"name": name, "domains": o["domains"], "sharing": sharing})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sharing"], sharing);
}

/// Numbers of the tickets a list answers with.
async fn listed(api: &Api, query: &str) -> Vec<String> {
    let (status, body) = api.get(&format!("/api/v1/tickets{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(number)
        .collect()
}

#[actix_web::test]
async fn accounts_join_organisations_by_name_or_domain_and_names_stay_unique() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let (status, created) = admin
        .post(
            "/api/v1/admin/organizations",
            &json!({"name": "Globex", "domains": ["Globex.example", "@globex.co.id"], "sharing": "participants"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["domains"],
        json!(["globex.co.id", "globex.example"])
    );
    // Another organisation cannot take its name (in any case) or its domains.
    for (body, code, field) in [
        (json!({"name": "GLOBEX"}), "organization-name-taken", "name"),
        (
            json!({"name": "Initech", "domains": ["globex.example"]}),
            "domain-taken",
            "domains",
        ),
        (
            json!({"name": "Initech", "domains": ["not a domain"]}),
            "invalid-field",
            "domains",
        ),
        (json!({"name": "  "}), "invalid-field", "name"),
        (
            json!({"name": "Initech", "sharing": "everyone"}),
            "invalid-field",
            "sharing",
        ),
    ] {
        let (status, answer) = admin.post("/api/v1/admin/organizations", &body).await;
        assert!(status.is_client_error(), "{body}: {status} {answer}");
        assert_eq!(error_code(&answer), code, "{body}: {answer}");
        assert!(answer["error"]["fields"][field].is_string(), "{answer}");
    }
    // Named in any case: the same record. By domain: the portal's customer with no organisation.
    app.member("a@acme.example", "Acme").await;
    app.member("b@acme.example", "ACME ").await;
    let portal = app.user("portal@example.com", "integration").await;
    let (status, _) = portal
        .with_header("X-Deskbridge-On-Behalf-Of", "gina@globex.co.id")
        .with_header("X-Deskbridge-On-Behalf-Of-Name", "Gina")
        .get("/api/v1/tickets")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, users) = admin.get("/api/v1/admin/users").await;
    let org_of = |email: &str| {
        users["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap()["organization"]
            .clone()
    };
    assert_eq!(org_of("a@acme.example"), "Acme");
    assert_eq!(org_of("b@acme.example"), "Acme");
    assert_eq!(org_of("gina@globex.co.id"), "Globex");
    assert_eq!(org(&admin, "Acme").await["members"], 2);
    // A rename shows on every member.
    let acme = org(&admin, "Acme").await;
    let (status, _) = admin
        .send(
            admin
                .request(
                    Method::PUT,
                    &format!(
                        "/api/v1/admin/organizations/{}",
                        acme["id"].as_str().unwrap()
                    ),
                )
                .json(&json!({"name": "Acme Corp"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, users) = admin.get("/api/v1/admin/users").await;
    let renamed = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["organization"] == "Acme Corp")
        .count();
    assert_eq!(renamed, 2);
    // Customers cannot manage organisations.
    let customer = app.login("a@acme.example", PASSWORD).await;
    let (status, _) = customer.get("/api/v1/admin/organizations").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn with_sharing_off_colleagues_see_nothing_of_each_other() {
    let app = TestApp::start().await;
    let alice = app.member("alice@acme.example", "Acme").await;
    let bob = app.member("bob@acme.example", "Acme").await;
    let t = alice.ticket("Alice's own").await;
    let n = number(&t);
    let (_, file) = alice.upload(&n, "a.txt", b"alice".to_vec()).await;
    unreachable(&bob, &n, &n, file["id"].as_u64().unwrap()).await;
    assert!(listed(&bob, "").await.is_empty());
    let (status, body) = bob.get("/api/v1/tickets?view=organization").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["fields"]["view"].is_string(), "{body}");
    // Raising a ticket for a colleague needs sharing.
    let (status, body) = alice
        .post("/api/v1/tickets", &json!({"kind": "problem_report", "subject": "For Bob", "on_behalf_of": "bob@acme.example"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "sharing-off");
}

/// Only organisations whose members see every ticket keep the list of all their tickets: turning
/// that sharing on lists the tickets raised before, once each, at their place in the activity
/// order, and a restart keeps listing new ones.
#[actix_web::test]
async fn turning_organisation_sharing_on_lists_the_tickets_raised_before() {
    let mut app = TestApp::start().await;
    let admin = app.admin().await;
    let alice = app.member("alice@acme.example", "Acme").await;
    let bob = app.member("bob@acme.example", "Acme").await;
    let carol = app.member("carol@globex.example", "Globex").await;
    let first = number(&alice.ticket("Raised while nothing was shared").await);
    let second = number(&bob.ticket("Bob's own").await);
    carol.ticket("Another organisation's").await;
    set_sharing(&admin, "Acme", "organization").await;
    assert_eq!(
        listed(&bob, "?view=organization").await,
        vec![second.clone(), first.clone()]
    );

    // Shared with participants only, then everything again: a ticket raised meanwhile and one
    // that moved (a reply) are listed once each, newest activity first.
    set_sharing(&admin, "Acme", "participants").await;
    let third = number(&alice.ticket("Raised while shared with participants").await);
    let (status, body) = alice
        .post(
            &format!("/api/v1/tickets/{first}/messages"),
            &json!({"body": "Still broken."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    set_sharing(&admin, "Acme", "organization").await;
    assert_eq!(
        listed(&bob, "?view=organization").await,
        vec![first.clone(), third.clone(), second.clone()]
    );

    app.restart().await;
    let bob = app.login("bob@acme.example", PASSWORD).await;
    let alice = app.login("alice@acme.example", PASSWORD).await;
    let fourth = number(&alice.ticket("After a restart").await);
    assert_eq!(
        listed(&bob, "?view=organization").await,
        vec![fourth, first, third, second]
    );
}

#[actix_web::test]
async fn organisation_sharing_lets_members_work_on_every_ticket_and_no_one_else_reach_them() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let alice = app.member("alice@acme.example", "Acme").await;
    let bob = app.member("bob@acme.example", "Acme").await;
    let carol = app.member("carol@globex.example", "Globex").await;
    set_sharing(&admin, "Acme", "organization").await;
    set_sharing(&admin, "Globex", "organization").await;
    let t = alice.ticket("Shared VPN outage").await;
    let n = number(&t);
    let (_, file) = alice.upload(&n, "trace.txt", b"trace".to_vec()).await;
    let att = file["id"].as_u64().unwrap();
    let globex = carol.ticket("Globex printer").await;

    // Bob: the organisation's view lists it, "mine" does not; he reads, replies and uploads.
    assert_eq!(listed(&bob, "?view=organization").await, vec![n.clone()]);
    assert!(listed(&bob, "").await.is_empty());
    let (status, _) = bob.get(&format!("/api/v1/tickets/{n}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bob.download(&n, &json!(att)).await, b"trace");
    let (status, reply) = bob
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "Same here, floor 3."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["author"]["name"], "User bob@acme.example");
    let (status, _) = bob.upload(&n, "floor3.txt", b"floor 3".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    // Only the requester decides for the ticket.
    let (status, body) = bob
        .post(&format!("/api/v1/tickets/{n}/confirm"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The history says who did what.
    let (_, events) = alice.get(&format!("/api/v1/tickets/{n}/events")).await;
    let by_bob = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["email"] == "bob@acme.example")
        .count();
    assert_eq!(by_bob, 2, "{events}");

    // The 404 matrix across organisations, both ways.
    unreachable(&carol, &n, &n, att).await;
    let gn = number(&globex);
    unreachable(&alice, &gn, &gn, 0).await;
    unreachable(&bob, &gn, &gn, 0).await;
    assert_eq!(listed(&carol, "?view=organization").await, vec![gn.clone()]);
    assert!(!listed(&alice, "?view=organization").await.contains(&gn));
    // Pages: the dashboard offers both views; the organisation's shows Alice's ticket to Bob.
    let mut page = signed_in(&app, "bob@acme.example").await;
    let dash = page.get("/tickets").await;
    assert!(
        dash.body.contains("href=\"/tickets?view=organization\""),
        "{}",
        dash.body
    );
    assert!(!dash.body.contains(&n));
    let org_view = page.get("/tickets?view=organization").await;
    assert!(org_view.body.contains(&n) && org_view.body.contains("User alice@acme.example"));
    let ticket_page = page.get(&format!("/tickets/{n}")).await;
    assert_eq!(ticket_page.status, StatusCode::OK);
    // The export follows the same view: the organisation's tickets, none of another's.
    let csv = page.get("/tickets.csv?view=organization").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.body.contains(&n) && !csv.body.contains(&gn),
        "{}",
        csv.body
    );
    let mine = page.get("/tickets.csv").await;
    assert!(!mine.body.contains(&n), "{}", mine.body);
}

#[actix_web::test]
async fn participants_sharing_shows_colleagues_only_the_tickets_they_are_on() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let alice = app.member("alice@acme.example", "Acme").await;
    let bob = app.member("bob@acme.example", "Acme").await;
    let dave = app.member("dave@acme.example", "Acme").await;
    app.member("carol@globex.example", "Globex").await;
    set_sharing(&admin, "Acme", "participants").await;
    set_sharing(&admin, "Globex", "participants").await;

    // Alice raises a ticket for Bob: he is the requester, she its author, copied on it.
    let (status, t) = alice
        .post("/api/v1/tickets", &json!({"kind": "information_request", "subject": "Quota for Bob", "on_behalf_of": "BOB@acme.example"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let n = number(&t);
    assert_eq!(t["requester"]["email"], "bob@acme.example");
    assert_eq!(t["author"]["email"], "alice@acme.example");
    assert_eq!(t["cc"], json!(["alice@acme.example"]));
    assert_eq!(listed(&bob, "").await, vec![n.clone()]);
    assert_eq!(listed(&alice, "").await, vec![n.clone()]);
    let (status, _) = alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "Added the cost centre."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Dave is in the organisation but not on the ticket; there is no organisation-wide view.
    unreachable(&dave, &n, &n, 0).await;
    let (status, _) = dave.get("/api/v1/tickets?view=organization").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Not for someone outside the organisation, nor for an unknown address: the same answer.
    for email in ["carol@globex.example", "nobody@acme.example"] {
        let (status, body) = alice
            .post(
                "/api/v1/tickets",
                &json!({"kind": "problem_report", "subject": "x", "on_behalf_of": email}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_code(&body), "not-a-colleague");
        assert!(body["error"]["fields"]["on_behalf_of"].is_string());
    }
}

#[actix_web::test]
async fn the_console_creates_organisations_and_moves_customers() {
    let app = TestApp::start().await;
    app.member("alice@acme.example", "Acme").await;
    let mut console = Visitor::new(&app);
    console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = console.get("/admin/organizations").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-org=\"Acme\""), "{}", page.body);
    let csrf = console.csrf("/admin/organizations").await;
    let created = console
        .post(
            "/admin/organizations",
            &[
                ("csrf", &csrf),
                ("name", "Globex"),
                ("domains", "globex.example, globex.co.id"),
                ("sharing", "organization"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let bad = console
        .post(
            "/admin/organizations",
            &[
                ("csrf", &csrf),
                ("name", "Initech"),
                ("domains", "globex.example"),
                ("sharing", "off"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::CONFLICT);
    assert!(
        bad.body.contains("value=\"Initech\""),
        "what was typed comes back"
    );
    // Moving Alice to Globex from the users page.
    let admin = app.admin().await;
    let id = admin.user_id("alice@acme.example").await;
    let moved = console
        .post(
            &format!("/admin/users/{id}"),
            &[
                ("csrf", &csrf),
                ("action", "organization"),
                ("organization", "Globex"),
            ],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    assert_eq!(org(&admin, "Globex").await["members"], 1);
    assert_eq!(org(&admin, "Acme").await["members"], 0);
    // Her new organisation shares every ticket: her dashboard offers its view.
    let mut alice = signed_in(&app, "alice@acme.example").await;
    assert!(
        alice
            .get("/tickets")
            .await
            .body
            .contains("view=organization")
    );
}
