//! axe-core (pinned in `tests/browser/package-lock.json`) injected into each portal page, in English
//! and in Bahasa Indonesia: no serious or critical violation.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD};
use crate::harness::{Browser, Session, Setup, axe_source, run};

/// Runs axe on the current page; returns its serious and critical violations, one line each.
/// Moderate and minor ones are printed, not counted.
pub async fn audit(b: &Browser, axe: &str, page: &str) -> Vec<String> {
    let loaded = b
        .js("return typeof window.axe === 'object';", Vec::new())
        .await;
    if loaded != json!(true) {
        b.js(axe, Vec::new()).await;
    }
    let result = b
        .js(
            "return axe.run(document, {resultTypes: ['violations']}).then(r => ({\
               passes: r.passes.length,\
               violations: r.violations.map(v => ({impact: v.impact, line: v.impact + ' ' + v.id +\
                 ' (' + v.help + '): ' + v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' — ' +\
                 n.failureSummary.replace(/\\s+/g, ' ')).join(' | ')}))}));",
            Vec::new(),
        )
        .await;
    // A page where nothing passed means axe did not really look at it.
    assert!(
        result["passes"].as_u64().is_some_and(|n| n > 0),
        "{page}: axe checked nothing ({result})"
    );
    let mut counted = Vec::new();
    for v in result["violations"].as_array().expect("axe answers a list") {
        let line = format!("{page}: {}", v["line"].as_str().unwrap_or_default());
        if matches!(v["impact"].as_str(), Some("serious" | "critical")) {
            counted.push(line);
        } else {
            eprintln!("axe (not counted) {line}");
        }
    }
    counted
}

#[actix_web::test]
async fn portal_pages_pass_axe_in_both_languages() {
    let test = "portal_pages_pass_axe_in_both_languages";
    let Some(axe) = axe_source(test) else {
        return;
    };
    run(test, Setup::Configured, async |s: &Session| {
        portal_pages(s, &axe).await;
    })
    .await;
}

async fn portal_pages(s: &Session, axe: &str) {
    let alice = s.app.customer("ani@example.com", "Ani Wijaya").await;
    let b = &s.browser;

    // A ticket with a message, a picture and a team reply, resolved by the team, so the
    // dashboard has a "waiting on you" list and the ticket page its confirm and reopen forms.
    let t = alice.ticket("Backup job fails every night").await;
    let number = t["number"].as_str().unwrap().to_owned();
    let png = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/fixtures/error-dialog.png"),
    )
    .unwrap();
    assert_eq!(
        alice.upload(&number, "error.png", png).await.0,
        StatusCode::CREATED
    );
    let (status, _) = alice
        .post(
            &format!("/api/v1/tickets/{number}/messages"),
            &json!({"body": "The log says: disk quota exceeded."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    alice.ticket("How do I add a user to the VPN?").await;
    let request = s.sdp_request(&alice, &number).await;
    s.fake
        .add_note(&request, "The quota is raised to 2 TB.", true);
    s.team_sets(&alice, &number, &request, ("Resolved", "resolved"))
        .await;

    let mut violations = Vec::new();
    b.goto("/sign-in").await;
    b.find("#email").await;
    violations.extend(audit(b, axe, "sign-in en").await);
    b.screenshot("sign-in-en").await;
    b.switch_language("id").await;
    violations.extend(audit(b, axe, "sign-in id").await);
    b.screenshot("sign-in-id").await;
    // A failed sign-in shows its error.
    b.fill("#email", "ani@example.com").await;
    b.fill("#password", "not-the-password").await;
    b.click_and_load("form[action='/sign-in'] button[type=submit]")
        .await;
    b.find("#sign-in-error").await;
    violations.extend(audit(b, axe, "sign-in failed id").await);
    b.sign_in("ani@example.com", PASSWORD).await;

    for lang in ["id", "en"] {
        b.goto("/tickets").await;
        b.switch_language(lang).await;
        violations.extend(signed_in_pages(b, axe, lang, &number).await);
    }
    assert!(
        violations.is_empty(),
        "axe found serious or critical violations:\n{}",
        violations.join("\n")
    );
}

#[actix_web::test]
async fn single_sign_on_pages_pass_axe_in_both_languages() {
    let test = "single_sign_on_pages_pass_axe_in_both_languages";
    let Some(axe) = axe_source(test) else {
        return;
    };
    run(test, Setup::SingleSignOn, async |s: &Session| {
        let oidc = s.oidc.as_ref().expect("the provider runs");
        oidc.sign_in_as(&json!({
            "sub": "subject-sari", "email": "sari@example.com", "email_verified": true,
            "name": "Sari Dewi",
        }));
        let b = &s.browser;
        let mut violations = Vec::new();
        b.goto("/sign-in").await;
        b.find("summary").await;
        violations.extend(audit(b, &axe, "sign-in sso en").await);
        b.switch_language("id").await;
        violations.extend(audit(b, &axe, "sign-in sso id").await);
        b.screenshot("sign-in-sso-id").await;
        // The button goes to the provider, which sends the browser back signed in.
        b.click_and_load("a[href^='/sign-in/oidc']").await;
        b.until_at("/tickets").await;
        assert!(b.text().await.contains("Sari Dewi"));
        b.click_and_load("form[action='/sign-out'] button").await;
        b.find("a[href*='/logout?']").await;
        violations.extend(audit(b, &axe, "signed out of sso id").await);
        b.switch_language("en").await;
        violations.extend(audit(b, &axe, "signed out of sso en").await);
        // A refused answer is a page like any other.
        b.goto("/sign-in/oidc/callback?state=made-up").await;
        violations.extend(audit(b, &axe, "sso refused en").await);
        assert!(
            violations.is_empty(),
            "axe found serious or critical violations:\n{}",
            violations.join("\n")
        );
    })
    .await;
}

/// Dashboard, new ticket (empty and with errors), ticket page and a missing page.
async fn signed_in_pages(b: &Browser, axe: &str, lang: &str, number: &str) -> Vec<String> {
    let mut found = Vec::new();
    b.goto("/tickets").await;
    b.find("table.tickets").await;
    found.extend(audit(b, axe, &format!("dashboard {lang}")).await);
    b.screenshot(&format!("dashboard-{lang}")).await;

    b.goto("/tickets/new").await;
    b.find("#subject").await;
    found.extend(audit(b, axe, &format!("new-ticket {lang}")).await);
    b.screenshot(&format!("new-ticket-{lang}")).await;
    // Nothing typed: the subject is missing.
    b.click_and_load("form[action='/tickets/new'] button[type=submit]")
        .await;
    b.find("#error-summary").await;
    // Field messages come in the page's language too.
    let expected = if lang == "id" {
        "Isi subjek"
    } else {
        "Enter a subject"
    };
    let message = b.find("#subject-error").await.text().await.unwrap();
    assert!(message.starts_with(expected), "{lang}: {message}");
    found.extend(audit(b, axe, &format!("new-ticket with errors {lang}")).await);
    b.screenshot(&format!("new-ticket-errors-{lang}")).await;

    b.goto(&format!("/tickets/{number}")).await;
    b.find(".chat .bubble.team").await;
    b.until(
        "(() => { const i = document.querySelector('img.preview'); return i && i.complete; })()",
        "the preview loaded",
    )
    .await;
    found.extend(audit(b, axe, &format!("ticket {lang}")).await);
    b.screenshot(&format!("ticket-{lang}")).await;

    b.goto("/tickets/DB-999999").await;
    b.find("h1").await;
    found.extend(audit(b, axe, &format!("not-found {lang}")).await);
    b.screenshot(&format!("not-found-{lang}")).await;
    let title: Value = b.js("return document.title;", Vec::new()).await;
    assert!(title.as_str().is_some_and(|t| !t.is_empty()));
    found
}

#[actix_web::test]
async fn branded_portal_pages_pass_axe_in_both_languages() {
    let test = "branded_portal_pages_pass_axe_in_both_languages";
    let Some(axe) = axe_source(test) else {
        return;
    };
    run(test, Setup::Configured, async |s: &Session| {
        branded_pages(s, &axe).await;
    })
    .await;
}

/// An admin brands the portal in the console (its page audited too); then the sign-in page and a
/// customer's dashboard wear the brand, in both languages.
async fn branded_pages(s: &Session, axe: &str) {
    s.app.customer("ani@example.com", "Ani Wijaya").await;
    let b = &s.browser;
    b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    b.goto("/admin/branding").await;
    b.fill("#name", "Cloudeka Care").await;
    b.fill("#colour", "#1e6b34").await;
    b.fill("#footer", "Cloudeka · Jakarta").await;
    b.fill("#support", "help@cloudeka.example").await;
    let logo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logo.png");
    b.find("#logo")
        .await
        .send_keys(logo.to_str().expect("a UTF-8 path"))
        .await
        .expect("choose the logo");
    let mut violations = audit(b, axe, "console branding en").await;
    b.click_and_load("#branding-save").await;
    b.find(".flash").await;
    violations.extend(audit(b, axe, "console branding saved en").await);
    b.click_and_load("form[action='/sign-out'] button[type=submit]")
        .await;

    let logo_loaded = "(() => { const i = document.querySelector('img.brand-logo'); return i && i.complete && i.naturalWidth > 0; })()";
    for lang in ["en", "id"] {
        b.goto("/sign-in").await;
        b.switch_language(lang).await;
        b.until(logo_loaded, "the logo loaded").await;
        let title: Value = b.js("return document.title;", Vec::new()).await;
        assert!(
            title.as_str().is_some_and(|t| t.ends_with("Cloudeka Care")),
            "{title}"
        );
        violations.extend(audit(b, axe, &format!("branded sign-in {lang}")).await);
        b.screenshot(&format!("branded-sign-in-{lang}")).await;
    }
    b.sign_in("ani@example.com", PASSWORD).await;
    for lang in ["id", "en"] {
        b.goto("/tickets").await;
        b.switch_language(lang).await;
        b.until(logo_loaded, "the logo loaded").await;
        violations.extend(audit(b, axe, &format!("branded dashboard {lang}")).await);
        b.goto("/tickets/new").await;
        b.find("#file-drop:not([hidden])").await;
        violations.extend(audit(b, axe, &format!("branded new-ticket {lang}")).await);
    }
    b.screenshot("branded-new-ticket-en").await;
    assert!(
        violations.is_empty(),
        "axe found serious or critical violations:\n{}",
        violations.join("\n")
    );
}
