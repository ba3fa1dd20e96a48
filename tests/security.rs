//! Tried as an attacker would, over HTTP: redirects off-site, writes through the API with only the
//! session cookie, credentials that outlive a reset or a disable, live streams that outlive their
//! session, and API tokens that cannot be listed or revoked.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::visitor::{Visitor, hidden};
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, PASSWORD, TestApp, error_code};

const EVIL: &str = "http://evil.example";

/// A customer signed in to the pages; also returns their bearer API client.
async fn customer_with_pages(app: &TestApp, email: &str) -> (Visitor, Api) {
    let api = app.customer(email).await;
    let mut v = Visitor::new(app);
    let page = v.sign_in(email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    (v, api)
}

/// The page's CSRF token, as `app.js` reads it from `<meta name="csrf-token">`.
async fn meta_csrf(v: &mut Visitor) -> String {
    let page = v.get("/tickets").await;
    let marker = "<meta name=\"csrf-token\" content=\"";
    let start = page.body.find(marker).expect("a csrf meta tag") + marker.len();
    page.body[start..].split('"').next().unwrap().to_owned()
}

#[actix_web::test]
async fn redirects_after_sign_in_stay_on_this_site() {
    let app = TestApp::start().await;
    app.customer("alice@example.com").await;
    for payload in [
        "/%09/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/%0d%0a/evil.example",
    ] {
        let mut v = Visitor::new(&app);
        // The query as an attacker's link carries it (its percent escapes decoded by the server).
        let page = v.get(&format!("/sign-in?next={payload}")).await;
        let form = page.body.split("action=\"/sign-in\"").nth(1).unwrap();
        assert_eq!(hidden(form, "next"), "/", "{payload}: form's next");
        let csrf = hidden(&page.body, "csrf");
        let decoded: String = url_decode(payload);
        let page = v
            .post(
                "/sign-in",
                &[
                    ("csrf", &csrf),
                    ("email", "alice@example.com"),
                    ("password", PASSWORD),
                    ("next", &decoded),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{payload}");
        assert_eq!(page.location.as_deref(), Some("/"), "{payload}");
    }
    // A local path is still honoured.
    let mut v = Visitor::new(&app);
    let page = v.sign_in("alice@example.com", PASSWORD).await;
    assert_eq!(page.location.as_deref(), Some("/tickets"));
}

fn url_decode(s: &str) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}")).unwrap();
    pairs[0].1.clone()
}

#[actix_web::test]
async fn the_language_switch_needs_the_csrf_token() {
    let app = TestApp::start().await;
    let mut v = Visitor::new(&app);
    let page = v.get("/sign-in").await;
    let csrf = hidden(&page.body, "csrf");
    let forged = v.post("/language", &[("lang", "id"), ("next", "/")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    for next in ["/\t/evil.example", "//evil.example", "/\\evil.example"] {
        let page = v
            .post(
                "/language",
                &[("csrf", &csrf), ("lang", "id"), ("next", next)],
            )
            .await;
        assert_eq!(page.location.as_deref(), Some("/"), "{next:?}");
    }
}

#[actix_web::test]
async fn the_api_refuses_cookie_writes_without_the_csrf_token_or_from_another_site() {
    let app = TestApp::start().await;
    let (mut alice, api) = customer_with_pages(&app, "alice@example.com").await;
    let number = api.ticket("Mine").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let csrf = meta_csrf(&mut alice).await;
    let cookie = alice.cookie_header();
    let http = reqwest::Client::new();
    let ticket = json!({"kind": "problem_report", "subject": "Forged", "description": "x"});
    let message = json!({"body": "forged"});
    let file = || {
        reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"forged".to_vec()).file_name("a.txt"),
        )
    };
    let tickets = app.url("/api/v1/tickets");
    let messages = app.url(&format!("/api/v1/tickets/{number}/messages"));
    let files = app.url(&format!("/api/v1/tickets/{number}/attachments"));
    let send = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let cookie_call = |url: &str, origin: Option<&str>, token: Option<&str>| {
        let mut req = http.post(url).header("Cookie", &cookie);
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        if let Some(token) = token {
            req = req.header("X-CSRF-Token", token);
        }
        req
    };
    let here = app.base.clone();

    // Another site, even with the right token (which it cannot know anyway).
    for (req, what) in [
        (
            cookie_call(&tickets, Some(EVIL), Some(&csrf)).json(&ticket),
            "ticket",
        ),
        (
            cookie_call(&messages, Some(EVIL), Some(&csrf)).json(&message),
            "message",
        ),
        (
            cookie_call(&files, Some(EVIL), Some(&csrf)).multipart(file()),
            "upload",
        ),
        (
            cookie_call(&tickets, None, Some(&csrf)).json(&ticket),
            "no origin",
        ),
    ] {
        let (status, body) = send(req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_eq!(error_code(&body), "cross-origin", "{what}");
    }
    // Referer stands in for a missing Origin.
    let referred = cookie_call(&tickets, None, None).header("Referer", format!("{EVIL}/page"));
    assert_eq!(send(referred.json(&ticket)).await.0, StatusCode::FORBIDDEN);
    // This site, without the token or with a wrong one.
    for (req, what) in [
        (
            cookie_call(&tickets, Some(&here), None).json(&ticket),
            "ticket",
        ),
        (
            cookie_call(&messages, Some(&here), None).json(&message),
            "message",
        ),
        (
            cookie_call(&files, Some(&here), None).multipart(file()),
            "upload",
        ),
        (
            cookie_call(&tickets, Some(&here), Some("0badc0de")).json(&ticket),
            "wrong",
        ),
    ] {
        let (status, body) = send(req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_eq!(error_code(&body), "csrf-token-invalid", "{what}");
        assert!(
            body["error"]["fields"]["X-CSRF-Token"].is_string(),
            "{body}"
        );
    }
    assert_eq!(
        app.state().store.ticket_count().unwrap(),
        1,
        "nothing forged"
    );
    let (_, listed) = api.get(&format!("/api/v1/tickets/{number}/messages")).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0, "{listed}");

    // The pages' own calls: same origin and the token.
    let (status, body) = send(cookie_call(&tickets, Some(&here), Some(&csrf)).json(&ticket)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let referred = cookie_call(&messages, None, Some(&csrf)).header("Referer", format!("{here}/x"));
    assert_eq!(send(referred.json(&message)).await.0, StatusCode::CREATED);
    let (status, body) =
        send(cookie_call(&files, Some(&here), Some(&csrf)).multipart(file())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Reads need neither.
    let read = http
        .get(&tickets)
        .header("Cookie", &cookie)
        .header("Origin", EVIL);
    assert_eq!(send(read).await.0, StatusCode::OK);

    // Bearer calls are unchanged, whatever Origin says.
    let bearer = api.with_header("Origin", EVIL);
    bearer.ticket("By token").await;
    let (status, body) = bearer
        .post(&format!("/api/v1/tickets/{number}/messages"), &message)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = bearer.upload(&number, "b.txt", b"by token".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[actix_web::test]
async fn an_api_session_gets_its_csrf_token_and_a_cookie_that_ends_with_the_browser() {
    let app = TestApp::start().await;
    let http = reqwest::Client::new();
    let signed_in = |remember: bool| {
        http.post(app.url("/api/v1/auth/session"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "remember": remember}))
            .send()
    };
    // Signing in and out with the header is `auth::browser_sessions_use_an_httponly_lax_cookie`.
    let response = signed_in(false).await.unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        !cookie.contains("Max-Age"),
        "a session cookie by default: {cookie}"
    );
    assert!(response.headers().contains_key("x-csrf-token"));

    let remembered = signed_in(true).await.unwrap();
    let cookie = remembered.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Max-Age=43"), "12 h: {cookie}");

    // The sign-in page's "keep me signed in" does the same.
    let mut v = Visitor::new(&app);
    let csrf = v.csrf("/sign-in").await;
    let page = v
        .http
        .post(app.url("/sign-in"))
        .header("Cookie", v.cookie_header())
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("remember", "1"),
        ])
        .send()
        .await
        .unwrap();
    let cookies: Vec<_> = page.headers().get_all("set-cookie").iter().collect();
    assert!(
        cookies.iter().any(|c| {
            let c = c.to_str().unwrap();
            c.starts_with("deskbridge_session=") && c.contains("Max-Age")
        }),
        "{cookies:?}"
    );
}

#[actix_web::test]
async fn a_reset_or_disable_ends_every_token_and_session_of_the_account() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let (mut pages, token) = customer_with_pages(&app, "c@example.com").await;
    let second = app.login("c@example.com", PASSWORD).await;
    let actions = format!(
        "/api/v1/admin/users/{}/actions",
        admin.user_id("c@example.com").await
    );

    let (status, _) = admin
        .post(
            &actions,
            &json!({"action": "reset_password", "password": "a-new-long-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for api in [&token, &second] {
        let (status, body) = api.get("/api/v1/me").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a token after a reset: {body}"
        );
    }
    assert_eq!(pages.get("/tickets").await.status, StatusCode::SEE_OTHER);

    let fresh = app.login("c@example.com", "a-new-long-password").await;
    assert_eq!(fresh.get("/api/v1/me").await.0, StatusCode::OK);
    let (status, _) = admin.post(&actions, &json!({"action": "disable"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fresh.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    admin.post(&actions, &json!({"action": "enable"})).await;
    assert_eq!(
        fresh.get("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED,
        "enabling again brings no token back"
    );
}

#[actix_web::test]
async fn changing_ones_password_ends_every_session_but_keeps_tokens() {
    let app = TestApp::start().await;
    let (mut pages, api) = customer_with_pages(&app, "c@example.com").await;
    let change = |current: &str| json!({"current_password": current, "new_password": "another-long-password"});
    let (status, body) = api
        .post("/api/v1/me/password", &change("wrong-password"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = api.post("/api/v1/me/password", &change(PASSWORD)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(pages.get("/tickets").await.status, StatusCode::SEE_OTHER);
    assert_eq!(api.get("/api/v1/me").await.0, StatusCode::OK);
    app.login("c@example.com", "another-long-password").await;
}

#[actix_web::test]
async fn tokens_are_listed_and_revoked_one_by_one_by_their_owner_and_admins() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let first = app.customer("c@example.com").await;
    let (status, body) = app
        .anonymous()
        .post(
            "/api/v1/auth/token",
            &json!({"email": "c@example.com", "password": PASSWORD, "name": "laptop script"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let named = Api {
        token: Some(body["token"].as_str().unwrap().to_owned()),
        ..app.anonymous()
    };
    let (status, list) = named.get("/api/v1/me/tokens").await;
    assert_eq!(status, StatusCode::OK);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(items[1]["name"], "laptop script");
    for item in items {
        for field in ["id", "name", "created_at", "expires_at"] {
            assert!(item[field].is_string(), "{field}: {item}");
        }
        assert!(item.get("last_used_at").is_some(), "{item}");
    }
    assert!(
        items[1]["last_used_at"].is_string(),
        "this call used it: {list}"
    );
    assert!(!list.to_string().contains(named.token.as_deref().unwrap()));

    // The owner revokes the first one; another customer cannot.
    let first_id = items[0]["id"].as_str().unwrap().to_owned();
    let other = app.customer("d@example.com").await;
    let (status, _) = other.delete(&format!("/api/v1/me/tokens/{first_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = named.delete(&format!("/api/v1/me/tokens/{first_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(first.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(named.get("/api/v1/me").await.0, StatusCode::OK);

    // An admin lists and revokes another account's tokens.
    let id = admin.user_id("c@example.com").await;
    let (status, list) = admin.get(&format!("/api/v1/admin/users/{id}/tokens")).await;
    assert_eq!(status, StatusCode::OK);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let (status, body) = other.get(&format!("/api/v1/admin/users/{id}/tokens")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let path = format!(
        "/api/v1/admin/users/{id}/tokens/{}",
        items[0]["id"].as_str().unwrap()
    );
    assert_eq!(admin.delete(&path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(named.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(admin.delete(&path).await.0, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn an_admin_cannot_mint_a_token_for_another_persons_account() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    app.customer("c@example.com").await;
    app.user("other-admin@example.com", "admin").await;
    app.user("portal@example.com", "integration").await;
    for email in ["c@example.com", "other-admin@example.com"] {
        let path = format!("/api/v1/admin/users/{}/actions", admin.user_id(email).await);
        let (status, body) = admin.post(&path, &json!({"action": "issue_token"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{email}: {body}");
        assert_eq!(error_code(&body), "token-for-another-account");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("another"),
            "{body}"
        );
    }
    // Its own, and the integration account it runs, are fine.
    for email in [ADMIN_EMAIL, "portal@example.com"] {
        let path = format!("/api/v1/admin/users/{}/actions", admin.user_id(email).await);
        let (status, body) = admin.post(&path, &json!({"action": "issue_token"})).await;
        assert_eq!(status, StatusCode::OK, "{email}: {body}");
        assert!(body["token"]["token"].is_string());
    }
}

/// Asks for `/events` with the visitor's cookie.
async fn events(v: &Visitor) -> reqwest::Response {
    let request = v.http.get(format!("{}/events", v.base));
    let response = request.header("Cookie", v.cookie_header()).send().await;
    response.expect("the app answers")
}

/// Opens `/events` and returns the response once it streams.
async fn open_stream(v: &Visitor) -> reqwest::Response {
    let response = events(v).await;
    assert_eq!(response.status(), StatusCode::OK);
    response
}

/// Reads the stream until it ends; fails if it is still open at `deadline`.
async fn ends_by(mut stream: reqwest::Response, deadline: Instant, what: &str) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("the live stream outlived {what} by more than a second"));
        if !matches!(read, Ok(Some(_))) {
            return;
        }
    }
}

#[actix_web::test]
async fn a_live_stream_ends_within_a_second_of_sign_out() {
    let app = TestApp::start().await;
    let (mut alice, _) = customer_with_pages(&app, "alice@example.com").await;
    let mut other_tab = Visitor::new(&app);
    other_tab.cookies = alice.cookies.clone();
    let stream = open_stream(&other_tab).await;
    let csrf = alice.csrf("/tickets").await;
    let page = alice.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    ends_by(stream, Instant::now() + Duration::from_secs(1), "sign-out").await;
    assert_eq!(events(&other_tab).await.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_live_stream_ends_within_a_second_of_disable() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let (alice, _) = customer_with_pages(&app, "alice@example.com").await;
    let stream = open_stream(&alice).await;
    let path = format!(
        "/api/v1/admin/users/{}/actions",
        admin.user_id("alice@example.com").await
    );
    let (status, _) = admin.post(&path, &json!({"action": "disable"})).await;
    assert_eq!(status, StatusCode::OK);
    ends_by(stream, Instant::now() + Duration::from_secs(1), "disable").await;
}

#[actix_web::test]
async fn a_session_holds_at_most_the_configured_live_streams() {
    let app = TestApp::start_with(|c| c.portal.max_streams_per_session = 2).await;
    let (alice, _) = customer_with_pages(&app, "alice@example.com").await;
    let first = open_stream(&alice).await;
    let _second = open_stream(&alice).await;
    let third = events(&alice).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = third.json().await.unwrap();
    assert_eq!(error_code(&body), "too-many-streams");
    // Another session has its own allowance.
    let mut bob = Visitor::new(&app);
    bob.sign_in("alice@example.com", PASSWORD).await;
    let _other = open_stream(&bob).await;
    // A closed stream gives its place back, at the latest when its next heartbeat finds it gone.
    drop(first);
    crate::common::eventually(Duration::from_secs(10), || async {
        (events(&alice).await.status() == StatusCode::OK).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn the_console_lists_an_accounts_tokens_and_revokes_one() {
    let app = TestApp::start().await;
    let customer = app.customer("c@example.com").await;
    let mut admin = Visitor::new(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = admin.get("/admin/users").await;
    let row = page
        .body
        .split("data-email=\"c@example.com\"")
        .nth(1)
        .unwrap();
    let row = row.split("</tr>").next().unwrap();
    assert!(row.contains("API token"), "{row}");
    let marker = "/tokens/";
    let start = row.find(marker).expect("a revoke form") + marker.len();
    let token = &row[start..start + 16];
    let id = app.admin().await.user_id("c@example.com").await;
    let csrf = hidden(&page.body, "csrf");
    let action = format!("/admin/users/{id}/tokens/{token}/revoke");
    let forged = admin.post(&action, &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(customer.get("/api/v1/me").await.0, StatusCode::OK);
    let done = admin.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(done.location.as_deref(), Some("/admin/users"));
    assert_eq!(customer.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    let page = admin.get("/admin/users").await;
    assert!(page.body.contains("API token revoked"), "the notice");
}
