//! Bounds an attacker cannot push past, and what customers never see: the sign-in throttle's memory,
//! idempotency records that expire, page forms with too many fields, sessions left idle or past
//! their lifetime, and a failed sync's internal error text.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::fake_sdp::FakeSdp;
use crate::common::visitor::Visitor;
use crate::common::{Desk, PASSWORD, TestApp, error_code, eventually};

/// A gauge's value in `/metrics`.
async fn gauge(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[actix_web::test]
async fn the_sign_in_throttle_stays_small_whatever_is_sent() {
    let app = TestApp::start().await;
    let anon = app.anonymous();
    let huge = format!("{}@example.com", "a".repeat(100 * 1024));
    for i in 0..300 {
        let email = format!("{i}{huge}");
        let (status, body) = anon
            .post(
                "/api/v1/auth/token",
                &json!({"email": email, "password": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_code(&body), "invalid-field");
        assert!(body["error"]["fields"]["email"].is_string(), "{body}");
    }
    let keys = gauge(&app, "deskbridge_login_throttle_keys").await;
    assert!(
        keys < 1.0,
        "oversized e-mails are refused before the throttle: {keys}"
    );

    // Ordinary failures from one address: the address is throttled after its allowance, and no
    // more keys are kept however many accounts are tried.
    let mut throttled = 0;
    for i in 0..60 {
        let (status, _) = anon
            .post(
                "/api/v1/auth/token",
                &json!({"email": format!("nobody{i}@example.com"), "password": "wrong"}),
            )
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
        }
    }
    assert_eq!(throttled, 30, "30 failures allowed per address and minute");
    let keys = gauge(&app, "deskbridge_login_throttle_keys").await;
    assert!(keys <= 31.0, "30 accounts and one address at most: {keys}");
}

#[actix_web::test]
async fn only_failures_count_and_a_success_starts_the_account_afresh() {
    let app = TestApp::start_with(|c| c.auth.login_attempts_per_account = 3).await;
    app.customer("c@example.com").await;
    let anon = app.anonymous();
    let attempt = |password: &'static str| {
        let anon = anon.clone();
        async move {
            let body = json!({"email": "c@example.com", "password": password});
            anon.post("/api/v1/auth/token", &body).await
        }
    };
    for _ in 0..5 {
        assert_eq!(
            attempt(PASSWORD).await.0,
            StatusCode::OK,
            "successes are not counted"
        );
    }
    for _ in 0..2 {
        assert_eq!(attempt("wrong").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(attempt(PASSWORD).await.0, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            attempt("wrong").await.0,
            StatusCode::UNAUTHORIZED,
            "counted afresh"
        );
    }
    assert_eq!(attempt(PASSWORD).await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn idempotency_records_expire() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let keyed = alice.with_header("Idempotency-Key", "create-1");
    let body = json!({"kind": "problem_report", "subject": "Once", "description": "x"});
    let (status, first) = keyed.post("/api/v1/tickets", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, replay) = keyed.post("/api/v1/tickets", &body).await;
    assert_eq!(replay, first, "within the time the first answer comes back");
    let other = json!({"kind": "problem_report", "subject": "Other", "description": "y"});
    let (status, _) = keyed.post("/api/v1/tickets", &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the key is taken");

    // The background sweep, run as it would be once `portal.idempotency_ttl_days` have passed.
    let store = &app.state().store;
    let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let forgotten = deskbridge::tickets::expire_replies(store, later).unwrap();
    assert_eq!(forgotten, 1);
    let (status, again) = keyed.post("/api/v1/tickets", &other).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_ne!(again["number"], first["number"]);
    // A record younger than the cutoff stays.
    let earlier = time::OffsetDateTime::now_utc() - time::Duration::days(7);
    assert_eq!(
        deskbridge::tickets::expire_replies(store, earlier).unwrap(),
        0
    );
}

#[actix_web::test]
async fn page_forms_cap_their_fields_and_text() {
    let app = TestApp::start().await;
    app.customer("alice@example.com").await;
    let mut alice = Visitor::new(&app);
    alice.sign_in("alice@example.com", PASSWORD).await;
    let csrf = alice.csrf("/tickets/new").await;
    let base = || {
        reqwest::multipart::Form::new()
            .text("csrf", csrf.clone())
            .text("form_id", "f1")
            .text("kind", "problem_report")
            .text("subject", "Capped")
            .text("description", "x")
    };
    let mut many = base();
    for i in 0..40 {
        many = many.text(format!("extra{i}"), "x");
    }
    let page = alice.post_multipart("/tickets/new", many).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", page.body);
    let mut long = base();
    for i in 0..8 {
        long = long.text(format!("extra{i}"), "x".repeat(64 * 1024));
    }
    let page = alice.post_multipart("/tickets/new", long).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", page.body);
    assert_eq!(app.state().store.ticket_count().unwrap(), 0);
    let page = alice.post_multipart("/tickets/new", base()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

    // URL-encoded forms too.
    let mut fields: Vec<(String, String)> = vec![("csrf".into(), csrf.clone())];
    fields.extend((0..600).map(|i| (format!("f{i}"), String::new())));
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = alice.post("/sign-out", &pairs).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        alice.get("/tickets").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

/// What would give SDP's address or its error away.
fn leaks(text: &str, fake: &FakeSdp) -> Option<String> {
    let root = fake.root_url();
    let host = root.trim_start_matches("http://").trim_end_matches('/');
    ["127.0.0.1", host, "error sending", "/api/v3"]
        .into_iter()
        .find(|needle| text.contains(needle))
        .map(str::to_owned)
}

#[actix_web::test]
async fn customers_never_see_the_sync_error_or_the_service_desk_host() {
    let desk = Desk::start(|_| {}).await;
    desk.fake.refuse_connections().await;
    let api = desk.app.customer("alice@example.com").await;
    let number = api.ticket("While SDP is away").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/tickets/{number}");
    let detail = eventually(Duration::from_secs(30), || async {
        let (_, t) = desk.admin.get(&path).await;
        t["sdp"]["last_error"].as_str().map(str::to_owned)
    })
    .await;
    assert!(
        leaks(&detail, &desk.fake).is_some(),
        "admins see the detail: {detail}"
    );

    let (_, ticket) = api.get(&path).await;
    assert_eq!(ticket["sdp"]["sync_state"], "pending");
    let note = ticket["sdp"]["last_error"].as_str().unwrap_or_default();
    assert!(note.starts_with("retrying"), "{ticket}");
    let mut seen: Vec<(String, String)> = vec![("ticket".into(), ticket.to_string())];
    for sub in ["", "/events", "/messages", "/attachments"] {
        let (_, body): (_, Value) = if sub.is_empty() {
            api.get("/api/v1/tickets").await
        } else {
            api.get(&format!("{path}{sub}")).await
        };
        seen.push((format!("api {sub}"), body.to_string()));
    }
    let mut pages = Visitor::new(&desk.app);
    pages.sign_in("alice@example.com", PASSWORD).await;
    for page in ["/tickets", &format!("/tickets/{number}")] {
        let body = pages.get(page).await.body;
        seen.push((page.to_owned(), body));
    }
    assert!(
        seen[seen.len() - 1].1.contains("sync-retrying"),
        "the page says retrying"
    );
    let mut id = Visitor::new(&desk.app);
    id.lang = Some("id");
    id.sign_in("alice@example.com", PASSWORD).await;
    let body = id.get(&format!("/tickets/{number}")).await.body;
    assert!(body.contains("mencoba lagi"), "in Bahasa Indonesia too");
    seen.push(("id page".into(), body));
    for (what, text) in &seen {
        assert_eq!(leaks(text, &desk.fake), None, "{what}: {text}");
    }
}

#[actix_web::test]
async fn a_session_ends_when_idle_or_at_its_lifetime() {
    let app = TestApp::start().await;
    app.customer("alice@example.com").await;
    let mut alice = Visitor::new(&app);
    alice.sign_in("alice@example.com", PASSWORD).await;
    assert_eq!(alice.get("/tickets").await.status, StatusCode::OK);
    let store = &app.state().store;
    let user = store.user_by_email("alice@example.com").unwrap().unwrap();
    let session = |store: &deskbridge::store::Store| {
        store
            .tokens_of(user.id)
            .unwrap()
            .into_iter()
            .find(|(_, r)| r.kind == deskbridge::store::users::TokenKind::Session)
            .expect("a session")
    };
    let now = time::OffsetDateTime::now_utc();

    // Used 29 minutes ago: still on, and the visit counts as use.
    let (hash, mut record) = session(store);
    record.last_used_at = Some(now - time::Duration::minutes(29));
    store.insert_token(&hash, &record).unwrap();
    assert_eq!(alice.get("/tickets").await.status, StatusCode::OK);
    let (_, touched) = session(store);
    assert!(touched.last_used_at.unwrap() >= now, "{touched:?}");

    // Unused for the idle timeout (30 minutes by default): signed out.
    record.last_used_at = Some(now - time::Duration::minutes(31));
    store.insert_token(&hash, &record).unwrap();
    assert_eq!(alice.get("/tickets").await.status, StatusCode::SEE_OTHER);

    // Active, but past its lifetime: signed out too.
    let mut bob = Visitor::new(&app);
    bob.sign_in("alice@example.com", PASSWORD).await;
    let (hash, mut record) = session(store);
    record.last_used_at = Some(now);
    record.expires_at = now - time::Duration::seconds(1);
    store.insert_token(&hash, &record).unwrap();
    assert_eq!(bob.get("/tickets").await.status, StatusCode::SEE_OTHER);
}
