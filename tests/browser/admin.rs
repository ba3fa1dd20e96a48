//! The admin console's journey: first-run setup, SDP settings and the connection test, the status
//! mapping, and a dead letter retried; axe on each console page in both languages. The console's
//! page contract:
//! `/admin/setup` (`#token #email #name #password`, `#setup-submit`, then `/admin/sdp`),
//! `/admin/sdp` (`#base_url`, `#deployment`, `#api_key`, `#poll_interval_secs`, `#webhook_secret`,
//! `#sdp-save`, `#webhook-url`, `#sdp-test` → `#test-results li.ok|li.bad`), `/admin/mapping`
//! (`select[name="status:<SDP status>"]`, `#mapping-save`, `#services-fetch`, `#offer-<i>-<j>`,
//! `#services-save`), `/admin` (`#dead-letters tr[data-seq]`
//! with `button.retry` / `button.discard`), `/admin/users`, `/admin/audit`, `/admin/tickets`.

use serde_json::json;

use crate::accessibility::audit;
use crate::common::fake_sdp::Fault;
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, eventually};
use crate::harness::{Browser, HOOK_SECRET, Session, Setup, WAIT, axe_source, run};

#[actix_web::test]
async fn admin_console_journey() {
    let test = "admin_console_journey";
    let Some(axe) = axe_source(test) else {
        return;
    };
    run(test, Setup::FirstRun, async |s: &Session| {
        journey(s, &axe).await;
    })
    .await;
}

async fn journey(s: &Session, axe: &str) {
    let b = &s.browser;
    let mut violations = Vec::new();

    // First-run setup with the token from the log.
    let token = s.app.setup_token.clone().expect("a setup token in the log");
    b.goto("/admin/setup").await;
    b.fill("#token", &token).await;
    b.fill("#email", ADMIN_EMAIL).await;
    b.fill("#name", "Ops Admin").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    violations.extend(audit(b, axe, "admin setup").await);
    b.screenshot("setup").await;
    b.click_and_load("#setup-submit").await;
    b.until_at("/admin/sdp").await;

    // SDP: the fake, saved, its webhook address shown, and the connection tested.
    b.fill("#base_url", &s.fake.base_url()).await;
    b.find("#deployment")
        .await
        .select_by_value("on_prem")
        .await
        .expect("choose on-prem");
    b.fill("#api_key", &s.fake.api_key()).await;
    b.fill("#poll_interval_secs", "3600").await;
    b.fill("#webhook_secret", HOOK_SECRET).await;
    b.click_and_load("#sdp-save").await;
    let hook = b.text_of("#webhook-url").await;
    assert!(hook.contains("/api/v1/hooks/sdp"), "{hook}");
    b.click_and_load("#sdp-test").await;
    b.find("#test-results li").await;
    let bad = b
        .js(
            "return Array.from(document.querySelectorAll('#test-results li.bad'))\
               .map(l => l.innerText);",
            Vec::new(),
        )
        .await;
    assert_eq!(bad, json!([]), "the connection test failed");
    b.find("#test-results li.ok").await;
    violations.extend(audit(b, axe, "admin sdp").await);
    b.screenshot("sdp").await;

    // Status mapping: SDP's "On Hold" now reads as "in progress".
    let on_hold = "select[name='status:On Hold']";
    b.goto("/admin/mapping").await;
    b.find(on_hold)
        .await
        .select_by_value("in_progress")
        .await
        .expect("choose a portal status");
    b.click_and_load("#mapping-save").await;
    let chosen = b
        .js(
            &format!("return document.querySelector(\"{on_hold}\").value;"),
            Vec::new(),
        )
        .await;
    assert_eq!(chosen, json!("in_progress"));
    // Services: SDP's categories fetched, Hardware — Printer offered.
    b.click_and_load("#services-fetch").await;
    b.find("#services-form").await;
    b.click("#offer-1-2").await;
    b.click_and_load("#services-save").await;
    let offered = b
        .js(
            "return document.querySelector('#offer-1-2').checked;",
            Vec::new(),
        )
        .await;
    assert_eq!(offered, json!(true));
    violations.extend(audit(b, axe, "admin mapping").await);
    b.screenshot("mapping").await;

    dead_letter_is_retried(s, axe, &mut violations).await;

    for (path, name) in [
        ("/admin/users", "users"),
        ("/admin/audit", "audit"),
        ("/admin/tickets", "tickets"),
    ] {
        b.goto(path).await;
        b.find("h1").await;
        violations.extend(audit(b, axe, &format!("admin {name}")).await);
        b.screenshot(name).await;
    }
    console_in_indonesian(b, axe, &mut violations).await;
    categories_in_the_new_ticket_form(b, axe, &mut violations).await;
    assert!(
        violations.is_empty(),
        "axe found serious or critical violations:\n{}",
        violations.join("\n")
    );
}

/// A customer's ticket follows the new mapping, then SDP refuses to close it: a dead letter that
/// the admin retries from the overview once SDP would accept it.
async fn dead_letter_is_retried(s: &Session, axe: &str, violations: &mut Vec<String>) {
    let b = &s.browser;
    let admin = s.app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let budi = s.app.customer_by(&admin, "budi@example.com", "Budi").await;
    let number = budi.ticket("Dead letter please").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = s.sdp_request(&budi, &number).await;
    s.team_sets(&budi, &number, &request, ("On Hold", "in_progress"))
        .await;
    s.team_sets(&budi, &number, &request, ("Resolved", "resolved"))
        .await;
    s.fake
        .set_fault(Fault::ClosureRule(vec!["resolution".into()]));
    budi.post(&format!("/api/v1/tickets/{number}/confirm"), &json!({}))
        .await;
    let seq = eventually(WAIT, || async {
        let (_, health) = admin.get("/api/v1/admin/sync").await;
        health["dead_letters"][0]["seq"].as_u64()
    })
    .await;

    b.goto("/admin").await;
    let row = format!("#dead-letters tr[data-seq='{seq}']");
    b.find(&row).await;
    violations.extend(audit(b, axe, "admin overview").await);
    b.screenshot("overview-dead-letter").await;
    s.fake.set_resolution(&request, "Fixed");
    s.fake.clear_faults();
    b.click_and_load(&format!("{row} button.retry")).await;
    s.until_closed_in_sdp(&request).await;
    // The retry answered with the overview again, without the dead letter.
    let gone = b
        .js(
            &format!("return document.querySelector(\"{row}\") === null;"),
            Vec::new(),
        )
        .await;
    assert_eq!(gone, json!(true), "the retried dead letter is still listed");
}

async fn console_in_indonesian(b: &Browser, axe: &str, violations: &mut Vec<String>) {
    b.goto("/admin").await;
    b.switch_language("id").await;
    for path in [
        "/admin",
        "/admin/sdp",
        "/admin/mapping",
        "/admin/users",
        "/admin/audit",
        "/admin/tickets",
    ] {
        b.goto(path).await;
        b.find("h1").await;
        violations.extend(audit(b, axe, &format!("{path} id")).await);
    }
    b.screenshot("overview-id").await;
}

/// A customer's new-ticket form offers the category the admin chose, as a select.
async fn categories_in_the_new_ticket_form(b: &Browser, axe: &str, violations: &mut Vec<String>) {
    b.click_and_load("form[action='/sign-out'] button[type=submit]")
        .await;
    b.sign_in("budi@example.com", PASSWORD).await;
    for lang in ["id", "en"] {
        b.goto("/tickets/new").await;
        b.switch_language(lang).await;
        let options = b
            .js(
                "return document.querySelector('#category').textContent;",
                Vec::new(),
            )
            .await;
        let options = options.as_str().unwrap_or_default();
        assert!(options.contains("Hardware — Printer"), "{options}");
        assert!(!options.contains("Laptop"), "{options}");
        violations.extend(audit(b, axe, &format!("new-ticket with categories {lang}")).await);
        b.screenshot(&format!("new-ticket-categories-{lang}")).await;
    }
}
