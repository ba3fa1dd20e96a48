//! Organisations in the browser: the console's organisation page, and a colleague's view of a
//! shared organisation (the dashboard's two views, the new-ticket form for a colleague, who is on
//! a ticket), axe clean in both languages.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::accessibility::audit;
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD};
use crate::harness::{Session, Setup, axe_source, run};

#[actix_web::test]
async fn organisation_pages_pass_axe_in_both_languages() {
    let test = "organisation_pages_pass_axe_in_both_languages";
    let Some(axe) = axe_source(test) else {
        return;
    };
    run(test, Setup::Configured, async |s: &Session| {
        organisation_pages(s, &axe).await;
    })
    .await;
}

async fn organisation_pages(s: &Session, axe: &str) {
    let admin = s.app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let ani = s
        .app
        .customer_by(&admin, "ani@acme.example", "Ani Wijaya")
        .await;
    s.app
        .customer_by(&admin, "budi@acme.example", "Budi Santoso")
        .await;
    let (_, orgs) = admin.get("/api/v1/admin/organizations").await;
    let id = orgs["items"][0]["id"].as_str().expect("Acme").to_owned();
    let (status, body) = admin
        .send(
            admin
                .request(Method::PUT, &format!("/api/v1/admin/organizations/{id}"))
                .json(&json!({"name": "Acme", "domains": ["acme.example"], "sharing": "organization"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let t = ani.ticket("Shared drive is read-only").await;
    let number = t["number"].as_str().unwrap().to_owned();
    let (status, body) = ani
        .post(
            &format!("/api/v1/tickets/{number}/cc"),
            &json!({"email": "budi@acme.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let b = &s.browser;
    let mut violations = Vec::new();
    b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for lang in ["en", "id"] {
        b.goto("/admin/organizations").await;
        b.switch_language(lang).await;
        b.find("#orgs").await;
        violations.extend(audit(b, axe, &format!("console organisations {lang}")).await);
        b.screenshot(&format!("console-organisations-{lang}")).await;
    }
    // A name already taken comes back with its error.
    b.fill("#name", "acme").await;
    b.click_and_load("#org-create").await;
    b.find("#error-summary").await;
    violations.extend(audit(b, axe, "console organisations with errors").await);
    b.click_and_load("form[action='/sign-out'] button[type=submit]")
        .await;

    b.sign_in("ani@acme.example", PASSWORD).await;
    for lang in ["id", "en"] {
        b.goto("/tickets?view=organization").await;
        b.switch_language(lang).await;
        b.find("nav.views").await;
        violations.extend(audit(b, axe, &format!("organisation view {lang}")).await);
        b.screenshot(&format!("organisation-view-{lang}")).await;
        b.goto("/tickets/new").await;
        b.find("#on_behalf_of").await;
        violations.extend(audit(b, axe, &format!("new ticket for a colleague {lang}")).await);
        b.goto(&format!("/tickets/{number}")).await;
        b.find("#people").await;
        violations.extend(audit(b, axe, &format!("ticket people {lang}")).await);
        b.screenshot(&format!("ticket-people-{lang}")).await;
        // Someone outside the organisation: the form says so.
        b.fill("#cc-email", "someone@elsewhere.example").await;
        b.click_and_load("form[action$='/cc'] button[type=submit]")
            .await;
        b.find("#email-error").await;
        violations.extend(audit(b, axe, &format!("ticket people with errors {lang}")).await);
    }
    assert!(
        violations.is_empty(),
        "axe found serious or critical violations:\n{}",
        violations.join("\n")
    );
}
