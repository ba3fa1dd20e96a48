//! `server.trusted_proxies`: forwarded headers count only from a listed peer — for the client's
//! address (the sign-in throttle), the cookies' `Secure` flag, HSTS and the same-origin check.

use reqwest::header::{SET_COOKIE, STRICT_TRANSPORT_SECURITY};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::visitor::Visitor;
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

/// Signs in through the API with `headers`; the session cookie's attributes and the HSTS header.
async fn sign_in(app: &TestApp, headers: &[(&str, &str)]) -> (String, Option<String>) {
    let mut req = app
        .anonymous()
        .request(Method::POST, "/api/v1/auth/session")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let response = req.send().await.expect("the app answers");
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    let hsts = response
        .headers()
        .get(STRICT_TRANSPORT_SECURITY)
        .map(|v| v.to_str().expect("ascii").to_owned());
    (cookie, hsts)
}

fn is_secure(cookie: &str) -> bool {
    cookie
        .split(';')
        .any(|a| a.trim().eq_ignore_ascii_case("secure"))
}

const FORGED: [(&str, &str); 3] = [
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-For", "203.0.113.9"),
    ("X-Forwarded-Host", "evil.example"),
];

#[actix_web::test]
async fn forwarded_https_from_an_untrusted_peer_sets_no_secure_cookie() {
    let app = TestApp::start().await;
    let (cookie, hsts) = sign_in(&app, &FORGED).await;
    assert!(!is_secure(&cookie), "{cookie}");
    assert_eq!(hsts, None);
}

#[actix_web::test]
async fn a_trusted_proxy_on_https_gets_secure_cookies_and_hsts() {
    let app = TestApp::start_with(|c| c.server.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    let (cookie, hsts) = sign_in(&app, &[("X-Forwarded-Proto", "https")]).await;
    assert!(is_secure(&cookie), "{cookie}");
    assert!(hsts.is_some_and(|h| h.starts_with("max-age=")));
    // The same proxy forwarding plain http: no Secure, no HSTS.
    let (cookie, hsts) = sign_in(&app, &[("X-Forwarded-Proto", "http")]).await;
    assert!(!is_secure(&cookie), "{cookie}");
    assert_eq!(hsts, None);
}

#[actix_web::test]
async fn an_https_public_url_makes_cookies_secure() {
    let app = TestApp::start_with(|c| c.server.public_url = "https://portal.example".into()).await;
    let (cookie, hsts) = sign_in(&app, &[]).await;
    assert!(is_secure(&cookie), "{cookie}");
    assert!(hsts.is_some());
}

/// Failed sign-ins for different accounts, each claiming a different forwarded address; the
/// statuses answered.
async fn failures(app: &TestApp, forwarded: impl Fn(usize) -> String, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        let (status, _) = app
            .anonymous()
            .with_header("X-Forwarded-For", &forwarded(i))
            .post(
                "/api/v1/auth/token",
                &json!({"email": format!("nobody{i}@example.com"), "password": "wrong"}),
            )
            .await;
        statuses.push(status.as_u16());
    }
    statuses
}

#[actix_web::test]
async fn a_forged_forwarded_for_does_not_change_the_throttle_key() {
    let per_address = |c: &mut deskbridge::config::Config| {
        c.auth.login_attempts_per_address = 3;
        c.auth.login_attempts_per_account = 100;
    };
    let app = TestApp::start_with(per_address).await;
    let statuses = failures(&app, |i| format!("198.51.100.{i}"), 5).await;
    assert_eq!(statuses, [401, 401, 401, 429, 429], "one key: the peer");

    // Behind a trusted proxy each forwarded client has its own count.
    let app = TestApp::start_with(|c| {
        per_address(c);
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let statuses = failures(&app, |i| format!("198.51.100.{i}"), 5).await;
    assert_eq!(statuses, [401; 5], "a key per forwarded client");
    // A client cannot escape by prepending addresses: the right-most untrusted hop counts.
    let statuses = failures(&app, |i| format!("10.9.9.{i}, 198.51.100.77"), 5).await;
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
}

#[actix_web::test]
async fn only_a_trusted_proxy_names_the_host_for_the_origin_check() {
    for trusted in [false, true] {
        let app = TestApp::start_with(|c| {
            if trusted {
                c.server.trusted_proxies = vec!["127.0.0.1".into()];
            }
        })
        .await;
        let mut visitor = Visitor::new(&app);
        let csrf = visitor.csrf("/sign-in").await;
        let req = visitor
            .http
            .post(app.url("/sign-in"))
            .header("Origin", "https://portal.example")
            .header("X-Forwarded-Host", "portal.example")
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ]);
        let page = visitor.send(req).await;
        if trusted {
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        } else {
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
        }
    }
}
