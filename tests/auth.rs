//! Sign-in, tokens, sessions, setup, roles and acting on behalf of a customer.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{ADMIN_EMAIL, PASSWORD, TestApp, error_code};

#[actix_web::test]
async fn tokens_are_issued_used_and_revoked() {
    let app = TestApp::start().await;
    let admin = app.admin().await;
    let (status, me) = admin.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert_eq!(me["role"], "admin");

    let (status, body) = app
        .anonymous()
        .post(
            "/api/v1/auth/token",
            &json!({"email": ADMIN_EMAIL, "password": "wrong-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid-credentials");
    let (status, body) = app
        .anonymous()
        .post(
            "/api/v1/auth/token",
            &json!({"email": "nobody@example.com", "password": "whatever-long"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid-credentials");

    assert_eq!(
        admin.delete("/api/v1/auth/token").await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = admin.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthenticated");
    assert_eq!(
        app.anonymous().get("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    let garbage = crate::common::Api {
        token: Some("dbt_nonsense".into()),
        ..app.anonymous()
    };
    assert_eq!(garbage.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn browser_sessions_use_an_httponly_lax_cookie() {
    let app = TestApp::start().await;
    let response = app
        .http
        .post(app.url("/api/v1/auth/session"))
        .json(&json!({"email": ADMIN_EMAIL, "password": crate::common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let csrf = response.headers()["x-csrf-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let me = app
        .http
        .get(app.url("/api/v1/me"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let out = app
        .http
        .delete(app.url("/api/v1/auth/session"))
        .header("cookie", &pair)
        .header("origin", &app.base)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let me = app
        .http
        .get(app.url("/api/v1/me"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn sign_in_is_throttled_per_account() {
    let app = TestApp::start_with(|c| c.auth.login_attempts_per_account = 3).await;
    let anon = app.anonymous();
    let wrong = json!({"email": ADMIN_EMAIL, "password": "not-the-password"});
    for _ in 0..3 {
        assert_eq!(
            anon.post("/api/v1/auth/token", &wrong).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let response = anon
        .request(reqwest::Method::POST, "/api/v1/auth/token")
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "too-many-attempts");
}

#[actix_web::test]
async fn first_admin_is_created_with_the_setup_token_once() {
    let app = TestApp::start_with(|c| {
        c.bootstrap.admin_email.clear();
        c.bootstrap.admin_password = deskbridge::config::Secret::default();
    })
    .await;
    let token = app
        .state()
        .setup_token
        .lock()
        .unwrap()
        .clone()
        .expect("a setup token when no admin exists");
    let anon = app.anonymous();
    let body = |token: &str| json!({"token": token, "email": "Root@Example.com", "name": "Root", "password": "a-long-password"});
    let (status, err) = anon.post("/api/v1/setup", &body("wrong")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&err), "invalid-setup-token");
    let (status, err) = anon
        .post(
            "/api/v1/setup",
            &json!({"token": token, "email": "x", "name": "", "password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = err["error"]["fields"].as_object().unwrap();
    assert!(
        fields.contains_key("email")
            && fields.contains_key("name")
            && fields.contains_key("password"),
        "{err}"
    );

    let (status, admin) = anon.post("/api/v1/setup", &body(&token)).await;
    assert_eq!(status, StatusCode::CREATED, "{admin}");
    assert_eq!(admin["email"], "root@example.com");
    assert_eq!(admin["role"], "admin");
    let (status, err) = anon.post("/api/v1/setup", &body(&token)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&err), "setup-done");
    app.login("root@example.com", "a-long-password").await;
}

#[actix_web::test]
async fn admin_endpoints_need_an_admin() {
    let app = TestApp::start().await;
    let customer = app.customer("c@example.com").await;
    let (status, body) = customer.get("/api/v1/admin/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "forbidden");
    let new_user =
        json!({"email": "x@example.com", "name": "X", "password": PASSWORD, "role": "admin"});
    assert_eq!(
        customer.post("/api/v1/admin/users", &new_user).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        customer.get("/api/v1/admin/outbox").await.0,
        StatusCode::FORBIDDEN
    );

    let admin = app.admin().await;
    let (status, users) = admin.get("/api/v1/admin/users").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["items"].as_array().unwrap().len(), 2);
    assert!(users["items"][0].get("password_hash").is_none());

    let (status, body) = admin.post("/api/v1/admin/users", &json!({"email": "C@example.com", "name": "Dup", "password": PASSWORD, "role": "customer"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "email-taken");
    let (status, body) = admin.post("/api/v1/admin/users", &json!({"email": "y@example.com", "name": "Y", "password": PASSWORD, "role": "superuser"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["fields"]["role"].is_string(), "{body}");
}

#[actix_web::test]
async fn admins_disable_enable_reset_and_issue_tokens_through_the_api() {
    let app = TestApp::start().await;
    let customer = app.customer("c@example.com").await;
    let admin = app.admin().await;
    let customer_id = admin.user_id("c@example.com").await;
    let path = format!("/api/v1/admin/users/{customer_id}/actions");
    let own = format!(
        "/api/v1/admin/users/{}/actions",
        admin.user_id(ADMIN_EMAIL).await
    );

    assert_eq!(
        customer.post(&path, &json!({"action": "disable"})).await.0,
        StatusCode::FORBIDDEN,
        "only admins change accounts"
    );
    let (status, body) = admin.post(&path, &json!({"action": "promote"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = admin.post(&own, &json!({"action": "disable"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "self-disable");
    let missing = "/api/v1/admin/users/00000000-0000-0000-0000-000000000000/actions";
    let (status, body) = admin.post(missing, &json!({"action": "enable"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "user-not-found");

    let (status, body) = admin.post(&path, &json!({"action": "disable"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["disabled"], true);
    assert_eq!(
        customer.get("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED,
        "disabling ends the account's tokens"
    );
    admin.post(&path, &json!({"action": "enable"})).await;

    let (status, body) = admin
        .post(
            &path,
            &json!({"action": "reset_password", "password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["fields"]["password"].is_string(), "{body}");
    let (status, _) = admin
        .post(
            &path,
            &json!({"action": "reset_password", "password": "a-new-long-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let again = app.login("c@example.com", "a-new-long-password").await;
    assert_eq!(again.get("/api/v1/me").await.0, StatusCode::OK);

    let (status, body) = admin.post(&path, &json!({"action": "issue_token"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not for a customer: {body}");
    assert_eq!(error_code(&body), "token-for-another-account");
    let (status, body) = admin.post(&own, &json!({"action": "issue_token"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"]["token"].as_str().expect("the token, once");
    let me = reqwest::Client::new()
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let (_, users) = admin.get("/api/v1/admin/users").await;
    assert!(!users.to_string().contains(token), "never shown again");

    let (_, audit) = admin.get("/api/v1/admin/users").await;
    assert!(audit["items"].is_array());
}

#[actix_web::test]
async fn integration_acts_only_on_behalf_of_a_customer() {
    let app = TestApp::start().await;
    let portal = app.user("portal@cloudeka.test", "integration").await;

    let (status, body) = portal.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "on-behalf-of-required");

    let unknown = portal.with_header("X-Deskbridge-On-Behalf-Of", "new@customer.test");
    let (status, body) = unknown.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), "customer-unknown");

    let alice = unknown.with_header("X-Deskbridge-On-Behalf-Of-Name", "Alice Customer");
    let ticket = alice.ticket("Created through the portal").await;
    assert_eq!(ticket["requester"]["email"], "new@customer.test");
    assert_eq!(ticket["requester"]["name"], "Alice Customer");
    let number = ticket["number"].as_str().unwrap();

    let (_, events) = unknown
        .get(&format!("/api/v1/tickets/{number}/events"))
        .await;
    let actor = &events["items"][0]["actor"];
    assert_eq!(actor["email"], "new@customer.test");
    assert_eq!(
        actor["via"]["email"], "portal@cloudeka.test",
        "history records both identities: {events}"
    );

    let (_, me) = unknown.get("/api/v1/me").await;
    assert_eq!(me["role"], "customer");
    assert_eq!(me["acting_as_integration"]["email"], "portal@cloudeka.test");

    let bob = portal
        .with_header("X-Deskbridge-On-Behalf-Of", "bob@customer.test")
        .with_header("X-Deskbridge-On-Behalf-Of-Name", "Bob");
    let (status, _) = bob.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another customer's ticket stays hidden through the portal too"
    );

    let as_admin = portal.with_header("X-Deskbridge-On-Behalf-Of", ADMIN_EMAIL);
    let (status, body) = as_admin.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "on-behalf-of-not-customer");

    let customer = app.customer("plain@example.com").await;
    let (status, body) = customer
        .with_header("X-Deskbridge-On-Behalf-Of", "new@customer.test")
        .get("/api/v1/tickets")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "on-behalf-of-not-allowed");
}
