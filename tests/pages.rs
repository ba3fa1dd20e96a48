//! The browser pages over plain HTTP: who may see what, CSRF, session rotation, languages, form
//! errors that keep what was typed, live-update resume, and console settings that take effect and
//! persist. (tests/browser.rs drives the same pages in Chromium.)

use std::time::Duration;

use reqwest::StatusCode;

use crate::common::fake_sdp::{FakeSdp, Profile};
use crate::common::visitor::{Visitor, hidden};
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp, eventually};

fn new_ticket_form(csrf: &str, subject: &str, description: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("csrf", csrf.to_owned())
        .text("form_id", "f1")
        .text("kind", "problem_report")
        .text("subject", subject.to_owned())
        .text("description", description.to_owned())
        .text("priority", "high")
        .text("service", "")
}

async fn signed_in_customer(app: &TestApp, email: &str) -> Visitor {
    app.customer(email).await;
    let mut v = Visitor::new(app);
    let page = v.sign_in(email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    v
}

#[actix_web::test]
async fn pages_check_who_asks() {
    let app = TestApp::start().await;
    let mut anonymous = Visitor::new(&app);
    let page = anonymous.get("/tickets").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/sign-in?next=%2Ftickets"));

    let mut alice = signed_in_customer(&app, "alice@example.com").await;
    let csrf = alice.csrf("/tickets/new").await;
    let page = alice
        .post_multipart("/tickets/new", new_ticket_form(&csrf, "Alice's VM", "down"))
        .await;
    assert_eq!(page.location.as_deref(), Some("/tickets/DB-000001"));

    let mut bob = signed_in_customer(&app, "bob@example.com").await;
    let page = bob.get("/tickets/DB-000001").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("Alice's VM"));
    let page = bob.get("/events?ticket=DB-000001").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let csrf = bob.csrf("/tickets").await;
    let page = bob
        .post("/tickets/DB-000001/confirm", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(bob.get("/admin").await.status, StatusCode::FORBIDDEN);

    // An admin reads the ticket page but gets no reply form.
    let mut admin = Visitor::new(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = admin.get("/tickets/DB-000001").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Alice&#39;s VM") || page.body.contains("Alice&#x27;s VM"));
    assert!(!page.body.contains("action=\"/tickets/DB-000001/reply\""));
}

#[actix_web::test]
async fn forged_forms_are_refused_and_change_nothing() {
    let app = TestApp::start().await;
    let mut alice = signed_in_customer(&app, "alice@example.com").await;
    let page = alice
        .post_multipart("/tickets/new", new_ticket_form("forged", "x", "y"))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let csrf = alice.csrf("/tickets/new").await;
    let req = alice
        .http
        .post(format!("{}/tickets/new", alice.base))
        .header("Origin", "https://evil.example")
        .multipart(new_ticket_form(&csrf, "x", "y"));
    assert_eq!(alice.send(req).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.state().store.ticket_count().unwrap(), 0);
    // The token of one session is worthless in another.
    let mut other = signed_in_customer(&app, "other@example.com").await;
    let page = other
        .post_multipart("/tickets/new", new_ticket_form(&csrf, "x", "y"))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(app.state().store.ticket_count().unwrap(), 0);
}

#[actix_web::test]
async fn sign_in_rotates_the_session_and_sign_out_ends_every_session() {
    let app = TestApp::start().await;
    app.customer("alice@example.com").await;
    let mut first = Visitor::new(&app);
    first
        .cookies
        .insert("deskbridge_session".into(), "planted".into());
    first.sign_in("alice@example.com", PASSWORD).await;
    let session = first.cookies["deskbridge_session"].clone();
    assert_ne!(session, "planted");
    let mut second = Visitor::new(&app);
    second.sign_in("alice@example.com", PASSWORD).await;
    assert_ne!(second.cookies["deskbridge_session"], session);
    assert_eq!(first.get("/tickets").await.status, StatusCode::OK);

    let csrf = second.csrf("/tickets").await;
    let page = second.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(page.location.as_deref(), Some("/sign-in"));
    assert!(!second.cookies.contains_key("deskbridge_session"));
    assert_eq!(first.get("/tickets").await.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn language_follows_the_browser_then_the_choice() {
    let app = TestApp::start().await;
    let mut v = Visitor::new(&app);
    v.lang = Some("id-ID,id;q=0.9");
    let page = v.get("/sign-in").await;
    assert!(page.body.contains("<html lang=\"id\">"));
    assert!(page.body.contains("Kata sandi"));
    let csrf = hidden(&page.body, "csrf");
    let refused = v
        .post("/language", &[("lang", "en"), ("next", "/sign-in")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "no CSRF token");
    let page = v
        .post(
            "/language",
            &[("csrf", &csrf), ("lang", "en"), ("next", "/sign-in")],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/sign-in"));
    let page = v.get("/sign-in").await;
    assert!(page.body.contains("<html lang=\"en\">"));
    assert!(page.body.contains("Password"));
    // Only local paths are followed back.
    let page = v
        .post(
            "/language",
            &[("csrf", &csrf), ("lang", "id"), ("next", "//evil.example/")],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/"));
}

#[actix_web::test]
async fn a_refused_form_comes_back_with_what_was_typed() {
    let app = TestApp::start().await;
    let mut alice = signed_in_customer(&app, "alice@example.com").await;
    let csrf = alice.csrf("/tickets/new").await;
    let long = "s".repeat(300);
    let page = alice
        .post_multipart(
            "/tickets/new",
            new_ticket_form(&csrf, &long, "my <b>careful</b> description"),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("subject-error"));
    assert!(
        page.body
            .contains("my &#60;b&#62;careful&#60;/b&#62; description")
    );
    assert!(page.body.contains(&long));
    assert_eq!(app.state().store.ticket_count().unwrap(), 0);
}

#[actix_web::test]
async fn a_form_whose_file_is_too_large_comes_back_with_what_was_typed() {
    // A small limit, so a file over it is small to send.
    let app = TestApp::start_with(|c| c.portal.max_attachment_bytes = 4096).await;
    let mut alice = signed_in_customer(&app, "alice@example.com").await;
    let csrf = alice.csrf("/tickets/new").await;
    let page = alice.get("/tickets/new").await;
    assert!(
        page.body.contains("data-max-bytes=\"4096\""),
        "the form states its limit"
    );
    // Streamed past the limit, and declared far past it (refused before the file is read).
    for size in [5000, 200 * 1024] {
        let file = reqwest::multipart::Part::bytes(vec![b'x'; size]).file_name("big.log");
        let form = new_ticket_form(&csrf, "Typed subject", "typed description").part("file", file);
        let page = alice.post_multipart("/tickets/new", form).await;
        assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{size}");
        assert!(page.body.contains("file-error"), "{size}");
        assert!(page.body.contains("value=\"Typed subject\""), "{size}");
        assert!(page.body.contains("typed description"), "{size}");
    }
    assert_eq!(app.state().store.ticket_count().unwrap(), 0);
}

#[actix_web::test]
async fn the_live_stream_resumes_from_the_last_event_id() {
    let app = TestApp::start().await;
    let alice = signed_in_customer(&app, "alice@example.com").await;
    let api = app.login("alice@example.com", PASSWORD).await;
    api.ticket("First").await;
    let cookie = alice.cookie_header();
    let open = |last: Option<String>| {
        let mut req = alice
            .http
            .get(format!("{}/events", alice.base))
            .header("Cookie", cookie.clone());
        if let Some(last) = last {
            req = req.header("Last-Event-ID", last);
        }
        req.send()
    };
    let mut stream = open(None).await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    api.ticket("Second").await;
    let first_id = read_event(&mut stream, "DB-000002").await;
    drop(stream);
    // Missed while disconnected: a message on the second ticket and a third ticket.
    api.post(
        "/api/v1/tickets/DB-000002/messages",
        &serde_json::json!({"body": "while away"}),
    )
    .await;
    api.ticket("Third").await;
    let mut resumed = open(Some(first_id)).await.unwrap();
    read_event(&mut resumed, "\"kind\":\"message\"").await;
    read_event(&mut resumed, "DB-000003").await;
    // An id from before a restart asks the page to refresh.
    let mut stale = open(Some("00000000-5".into())).await.unwrap();
    read_event(&mut stale, "\"refresh\":true").await;
}

/// Reads the stream until an event containing `needle`; returns that event's id.
async fn read_event(stream: &mut reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no event with {needle}; saw {seen}"))
            .expect("stream")
            .expect("open stream");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(event) = seen.split("\n\n").find(|e| e.contains(needle)) {
            return event
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .unwrap_or_default()
                .to_owned();
        }
    }
}

#[actix_web::test]
async fn console_settings_take_effect_and_survive_a_restart() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let mut app = TestApp::start().await;
    let mut admin = Visitor::new(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = admin.get("/admin").await;
    assert!(page.body.contains("sync-off") || page.body.contains("Off:"));
    let csrf = admin.csrf("/admin/sdp").await;
    let key = fake.api_key();
    let base = fake.base_url();
    let page = admin
        .post(
            "/admin/sdp",
            &[
                ("csrf", &csrf),
                ("base_url", &base),
                ("deployment", "on_prem"),
                ("api_key", &key),
                ("poll_interval_secs", "3600"),
                ("webhook_secret", "hook-secret-1"),
            ],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/admin/sdp"),
        "{}",
        page.body
    );
    assert!(
        app.state().sync.is_running(),
        "the sync started without a restart"
    );
    let page = admin.post("/admin/sdp/test", &[("csrf", &csrf)]).await;
    assert!(page.body.contains("id=\"test-results\""));
    assert!(!page.body.contains("class=\"bad\""), "{}", page.body);

    // A ticket now reaches the fake SDP.
    let api = app.customer("alice@example.com").await;
    api.ticket("Reaches SDP").await;
    eventually(Duration::from_secs(20), || async {
        (fake.requests().len() == 1).then_some(())
    })
    .await;

    app.restart().await;
    assert!(
        app.state().sync.is_running(),
        "saved settings apply at start"
    );
    assert_eq!(app.state().sync.sdp().base_url, base);
    let mut admin = Visitor::new(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = admin.get("/admin/audit").await;
    assert!(page.body.contains("sdp.saved") && page.body.contains("sdp.tested"));
    // Secrets are never shown back.
    let page = admin.get("/admin/sdp").await;
    assert!(!page.body.contains(&key) && !page.body.contains("hook-secret-1"));
    fake.stop().await;
}

#[actix_web::test]
async fn keys_fixed_by_the_configuration_are_read_only() {
    let app = TestApp::start_with(|c| {
        c.sdp.poll_interval_secs = 45;
        c.fixed.insert(
            "sdp.poll_interval_secs".into(),
            "/etc/deskbridge/deskbridge.toml".into(),
        );
    })
    .await;
    let mut admin = Visitor::new(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = admin.get("/admin/sdp").await;
    assert!(page.body.contains("/etc/deskbridge/deskbridge.toml"));
    assert!(!page.body.contains("name=\"poll_interval_secs\""));
    let csrf = hidden(&page.body, "csrf");
    admin
        .post(
            "/admin/sdp",
            &[("csrf", &csrf), ("poll_interval_secs", "5")],
        )
        .await;
    assert_eq!(app.state().sync.sdp().poll_interval_secs, 45);
}

#[actix_web::test]
async fn first_run_setup_needs_the_token_and_happens_once() {
    let app = TestApp::start_with(|c| {
        c.bootstrap.admin_email = String::new();
    })
    .await;
    let token = app
        .state()
        .setup_token
        .lock()
        .unwrap()
        .clone()
        .expect("a setup token");
    let mut v = Visitor::new(&app);
    let page = v.get("/admin").await;
    assert_eq!(page.location.as_deref(), Some("/admin/setup"));
    let csrf = v.csrf("/admin/setup").await;
    let form = |token: &str| {
        [
            ("csrf", csrf.clone()),
            ("token", token.to_owned()),
            ("email", "root@example.com".to_owned()),
            ("name", "Root".to_owned()),
            ("password", "root-password-1".to_owned()),
        ]
    };
    let wrong = form("wrong");
    let page = v.post("/admin/setup", &pairs(&wrong)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let right = form(&token);
    let page = v.post("/admin/setup", &pairs(&right)).await;
    assert_eq!(page.location.as_deref(), Some("/admin/sdp"));
    assert_eq!(v.get("/admin/sdp").await.status, StatusCode::OK);
    let mut late = Visitor::new(&app);
    let page = late.get("/admin/setup").await;
    assert_eq!(page.location.as_deref(), Some("/admin"));
}

fn pairs<'a>(form: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[actix_web::test]
async fn headers_allow_framing_only_by_configured_origins_and_assets_revalidate() {
    let app = TestApp::start().await;
    let http = reqwest::Client::new();
    let r = http.get(app.url("/sign-in")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");

    let r = http.get(app.url("/static/app.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = http
        .get(app.url("/static/app.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = http
        .get(app.url("/static/../Cargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let framed = TestApp::start_with(|c| {
        c.portal.frame_ancestors = "https://portal.cloudeka.example".into();
    })
    .await;
    let r = http.get(framed.url("/sign-in")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors https://portal.cloudeka.example"));
    assert!(r.headers().get("x-frame-options").is_none());
}

#[actix_web::test]
async fn the_console_manages_accounts_and_issues_tokens_once() {
    let app = TestApp::start().await;
    let mut admin = Visitor::new(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let csrf = admin.csrf("/admin/users").await;
    let page = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("email", "portal@cloudeka.example"),
                ("name", "Cloudeka portal"),
                ("password", "portal-password-1"),
                ("role", "integration"),
            ],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/admin/users"),
        "{}",
        page.body
    );
    let (_, users) = app.admin().await.get("/api/v1/admin/users").await;
    let id = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "portal@cloudeka.example")
        .expect("created")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/users/{id}");
    // An action the console does not know is refused and changes nothing.
    let page = admin
        .post(&path, &[("csrf", &csrf), ("action", "promote")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // So is a role that does not exist: the form comes back naming the field.
    let page = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("email", "root@example.com"),
                ("name", "Root"),
                ("password", "root-password-1"),
                ("role", "root"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"role-error\""), "{}", page.body);
    let page = admin
        .post(&path, &[("csrf", &csrf), ("action", "token")])
        .await;
    let start = page.body.find("id=\"new-token\">").expect("token shown") + 15;
    let token = page.body[start..].split('<').next().unwrap().to_owned();
    let api = reqwest::Client::new();
    let me = api
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("X-Deskbridge-On-Behalf-Of", "c@example.com")
        .header("X-Deskbridge-On-Behalf-Of-Name", "C")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert!(!admin.get("/admin/users").await.body.contains(&token));

    // Disabling signs the account out everywhere, tokens included.
    admin
        .post(&path, &[("csrf", &csrf), ("action", "disable")])
        .await;
    let me = api
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let page = admin.get("/admin/audit").await;
    assert!(page.body.contains("user.created") && page.body.contains("user.token"));
    assert!(page.body.contains("user.disable"));
}

#[actix_web::test]
async fn the_console_offers_the_backup_download() {
    let app = TestApp::start().await;
    let mut admin = Visitor::new(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = admin.get("/admin").await;
    assert!(page.body.contains("href=\"/api/v1/admin/backup\""));
    // The link works with the console's session, and only an admin's.
    let download = admin.get("/api/v1/admin/backup").await;
    assert_eq!(download.status, StatusCode::OK);
    let mut alice = signed_in_customer(&app, "alice@example.com").await;
    assert_eq!(
        alice.get("/api/v1/admin/backup").await.status,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn the_ticket_sync_log_shows_what_waits_for_sdp() {
    let app = TestApp::start().await;
    let api = app.customer("alice@example.com").await;
    api.ticket("Waits for SDP").await;
    let mut admin = Visitor::new(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = admin.get("/admin/find?number=db-000001").await;
    assert_eq!(page.location.as_deref(), Some("/admin/tickets/db-000001"));
    let page = admin.get("/admin/tickets/db-000001").await;
    assert_eq!(page.status, StatusCode::OK);
    // Sync is off: the creation waits in the outbox and the log says so.
    assert!(page.body.contains("create request"), "{}", page.body);
    assert!(page.body.contains("created"));
    assert_eq!(
        admin.get("/admin/tickets/DB-000099").await.status,
        StatusCode::NOT_FOUND
    );
}
