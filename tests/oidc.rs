//! Single sign-on with `OpenID Connect` against the test provider (`common::oidc_provider`), driven
//! like a browser: every redirect followed by hand, cookies kept per visitor.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::oidc_provider::{OidcProvider, Tamper};
use crate::common::visitor::{Page, Visitor, hidden};
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp};

const SESSION: &str = "deskbridge_session";
const BINDING: &str = "deskbridge_oidc";

/// The provider, signing in Ayu, and deskbridge pointed at it.
async fn started(adjust: impl FnOnce(&mut deskbridge::config::Config)) -> (OidcProvider, TestApp) {
    let provider = OidcProvider::start().await;
    provider.sign_in_as(&ayu("Ayu"));
    let app = TestApp::start_with(|c| {
        provider.configure(c);
        adjust(c);
    })
    .await;
    (provider, app)
}

/// The account an admin sees for `email`.
async fn account(app: &TestApp, email: &str) -> Value {
    let (status, users) = app.admin().await.get("/api/v1/admin/users").await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let items = users["items"].as_array().expect("items");
    let found: Vec<&Value> = items.iter().filter(|u| u["email"] == email).collect();
    assert_eq!(found.len(), 1, "one account {email}: {users}");
    found[0].clone()
}

/// Starts a sign-in and follows the provider's redirect: the callback path it sends back to.
async fn to_provider_and_back(v: &mut Visitor, next: &str) -> String {
    let start = v.get(&format!("/sign-in/oidc?next={next}")).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    assert!(
        v.cookies.contains_key(BINDING),
        "the sign-in is bound to the browser"
    );
    let authorize = start.location.expect("to the provider");
    let answer = v.http.get(&authorize).send().await.expect("provider");
    assert_eq!(answer.status(), StatusCode::FOUND, "{authorize}");
    let back = answer.headers()["Location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    back.strip_prefix(&v.base)
        .unwrap_or_else(|| panic!("back to deskbridge: {back}"))
        .to_owned()
}

/// A whole sign-in: the callback's answer.
async fn sign_in(v: &mut Visitor) -> Page {
    let back = to_provider_and_back(v, "/tickets").await;
    v.get(&back).await
}

fn ayu(name: &str) -> Value {
    json!({
        "sub": "subject-ayu",
        "email": "Ayu@PT-Contoh.test",
        "email_verified": true,
        "name": name,
        "organization": "PT Contoh",
    })
}

/// A refusal is a page with its status and message, and no session.
fn refused(page: &Page, v: &Visitor, status: StatusCode, message: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(page.body.contains(message), "{message:?} in {}", page.body);
    assert!(
        !v.cookies.contains_key(SESSION),
        "no session after a refusal"
    );
}

#[actix_web::test]
async fn a_first_sign_in_makes_the_customer_and_the_next_one_finds_it() {
    let (provider, app) = started(|c| {
        c.oidc.organization_claim = "organization".into();
    })
    .await;

    let mut v = Visitor::new(&app);
    let form = v.get("/sign-in").await;
    assert!(
        form.body.contains("Sign in with Cloudeka ID"),
        "{}",
        form.body
    );

    provider.sign_in_as(&ayu("Ayu Lestari"));
    let done = sign_in(&mut v).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/tickets"));
    assert!(v.cookies.contains_key(SESSION));
    assert!(!v.cookies.contains_key(BINDING), "the binding is spent");
    let tickets = v.get("/tickets").await;
    assert_eq!(tickets.status, StatusCode::OK);
    assert!(tickets.body.contains("Ayu Lestari"), "{}", tickets.body);
    let first = account(&app, "ayu@pt-contoh.test").await;
    assert_eq!(first["role"], "customer");
    assert_eq!(first["name"], "Ayu Lestari");
    assert_eq!(first["organization"], "PT Contoh");
    // The claim names an organisation record, which the account belongs to.
    let admin = app.admin().await;
    let (_, orgs) = admin.get("/api/v1/admin/organizations").await;
    let contoh = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "PT Contoh");
    assert_eq!(
        contoh.map(|o| o["members"].clone()),
        Some(serde_json::json!(1)),
        "{orgs}"
    );

    // The same subject again, renamed at the provider: the same account, refreshed.
    provider.sign_in_as(&ayu("Ayu L. Lestari"));
    let mut again = Visitor::new(&app);
    let done = sign_in(&mut again).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let second = account(&app, "ayu@pt-contoh.test").await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["name"], "Ayu L. Lestari");

    // The provider's keys change: deskbridge reads them again instead of refusing.
    provider.rotate_key();
    let mut rotated = Visitor::new(&app);
    let done = sign_in(&mut rotated).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);

    // Signing out ends the session here and offers the provider's sign-out.
    let csrf = hidden(&again.get("/tickets").await.body, "csrf");
    let out = again.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!again.cookies.contains_key(SESSION));
    let to = out.location.expect("back to sign-in");
    let page = again.get(&to).await;
    let logout = format!("{}/logout?", provider.issuer);
    assert!(page.body.contains(&logout), "{}", page.body);
    assert!(
        page.body.contains("client_id=deskbridge-portal"),
        "{}",
        page.body
    );
    assert_eq!(again.get("/tickets").await.status, StatusCode::SEE_OTHER);
    provider.stop().await;
}

#[actix_web::test]
async fn sso_only_refuses_a_customer_password_but_not_the_admin() {
    let (provider, app) = started(|c| c.oidc.customers_sso_only = true).await;
    let (status, body) = app
        .admin()
        .await
        .post(
            "/api/v1/admin/users",
            &json!({"email": "local@example.com", "name": "Local", "password": PASSWORD, "role": "customer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let mut customer = Visitor::new(&app);
    let form = customer.get("/sign-in").await;
    assert!(
        form.body
            .contains("Administrators: sign in with a password"),
        "{}",
        form.body
    );
    let page = customer.sign_in("local@example.com", PASSWORD).await;
    refused(
        &page,
        &customer,
        StatusCode::FORBIDDEN,
        "Customers sign in with single sign-on",
    );
    let (status, body) = app
        .anonymous()
        .post(
            "/api/v1/auth/token",
            &json!({"email": "local@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "sso-only");

    let mut admin = Visitor::new(&app);
    let page = admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(admin.cookies.contains_key(SESSION));
    provider.stop().await;
}

#[actix_web::test]
async fn a_token_that_fails_a_check_is_refused_with_a_page() {
    let (provider, app) = started(|_| {}).await;
    for tamper in [
        Tamper::WrongIssuer,
        Tamper::WrongAudience,
        Tamper::Expired,
        Tamper::BadSignature,
    ] {
        provider.tamper(tamper);
        let mut v = Visitor::new(&app);
        let page = sign_in(&mut v).await;
        assert_eq!(
            page.status,
            StatusCode::UNAUTHORIZED,
            "{tamper:?}: {}",
            page.body
        );
        refused(&page, &v, StatusCode::UNAUTHORIZED, "answer was refused");
    }
    // Nothing was made on the way.
    let (_, users) = app.admin().await.get("/api/v1/admin/users").await;
    assert_eq!(users["items"].as_array().map(Vec::len), Some(1), "{users}");
    provider.stop().await;
}

#[actix_web::test]
async fn a_state_serves_once_and_only_the_browser_that_began() {
    let (provider, app) = started(|_| {}).await;

    // Replayed: the callback works once; the same answer again, cookie and all, is refused.
    let mut v = Visitor::new(&app);
    let back = to_provider_and_back(&mut v, "/tickets").await;
    let binding = v.cookies[BINDING].clone();
    assert_eq!(v.get(&back).await.status, StatusCode::SEE_OTHER);
    let mut replay = Visitor::new(&app);
    replay.cookies.insert(BINDING.into(), binding);
    let page = replay.get(&back).await;
    refused(&page, &replay, StatusCode::BAD_REQUEST, "already used");

    // Another browser cannot finish a sign-in this one began.
    let mut began = Visitor::new(&app);
    let back = to_provider_and_back(&mut began, "/tickets").await;
    let mut other = Visitor::new(&app);
    let page = other.get(&back).await;
    refused(&page, &other, StatusCode::BAD_REQUEST, "another browser");

    // Unknown and missing states.
    for path in [
        "/sign-in/oidc/callback?code=made-up&state=made-up",
        "/sign-in/oidc/callback?code=made-up",
        "/sign-in/oidc/callback",
    ] {
        let mut v = Visitor::new(&app);
        let page = v.get(path).await;
        refused(&page, &v, StatusCode::BAD_REQUEST, "Please sign in again");
    }
    provider.stop().await;
}

#[actix_web::test]
async fn the_provider_saying_no_is_a_page_in_either_language() {
    let (provider, app) = started(|_| {}).await;
    provider.deny(true);
    let mut v = Visitor::new(&app);
    let page = sign_in(&mut v).await;
    refused(
        &page,
        &v,
        StatusCode::UNAUTHORIZED,
        "did not let you sign in",
    );
    let mut id = Visitor::new(&app);
    id.lang = Some("id");
    let page = sign_in(&mut id).await;
    refused(
        &page,
        &id,
        StatusCode::UNAUTHORIZED,
        "tidak mengizinkan Anda masuk",
    );
    provider.stop().await;
}

#[actix_web::test]
async fn accounts_are_linked_only_when_it_is_safe() {
    let (provider, app) = started(|_| {}).await;
    let admin = app.admin().await;
    let (status, _) = admin
        .post(
            "/api/v1/admin/users",
            &json!({"email": "budi@example.com", "name": "Budi", "password": PASSWORD, "role": "customer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // An admin's e-mail is never taken over, verified or not.
    provider.sign_in_as(
        &json!({"sub": "s-admin", "email": ADMIN_EMAIL, "email_verified": true, "name": "Mallory"}),
    );
    let mut v = Visitor::new(&app);
    let page = sign_in(&mut v).await;
    refused(
        &page,
        &v,
        StatusCode::FORBIDDEN,
        "belongs to an administrator",
    );

    // A local customer's e-mail links only once the provider verified it.
    provider.sign_in_as(&json!({"sub": "s-budi", "email": "budi@example.com", "email_verified": false, "name": "Budi S."}));
    let mut v = Visitor::new(&app);
    let page = sign_in(&mut v).await;
    refused(
        &page,
        &v,
        StatusCode::CONFLICT,
        "has not verified the e-mail",
    );
    let before = account(&app, "budi@example.com").await;
    provider.sign_in_as(&json!({"sub": "s-budi", "email": "budi@example.com", "email_verified": true, "name": "Budi S."}));
    let mut v = Visitor::new(&app);
    assert_eq!(sign_in(&mut v).await.status, StatusCode::SEE_OTHER);
    let after = account(&app, "budi@example.com").await;
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["name"], "Budi S.");

    // A disabled account stays out.
    let id = before["id"].as_str().expect("id");
    let (status, _) = admin
        .post(
            &format!("/api/v1/admin/users/{id}/actions"),
            &json!({"action": "disable"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut v = Visitor::new(&app);
    let page = sign_in(&mut v).await;
    refused(&page, &v, StatusCode::FORBIDDEN, "disabled");
    provider.stop().await;
}

#[actix_web::test]
async fn an_unreachable_provider_is_a_page_not_a_crash() {
    let provider = OidcProvider::start().await;
    let issuer = provider.issuer.clone();
    provider.stop().await;
    let app = TestApp::start_with(|c| {
        c.oidc.issuer_url = issuer;
        c.oidc.client_id = "deskbridge".into();
    })
    .await;
    let mut v = Visitor::new(&app);
    let page = v.get("/sign-in/oidc").await;
    refused(
        &page,
        &v,
        StatusCode::SERVICE_UNAVAILABLE,
        "cannot be reached",
    );
    // The password form still works.
    assert_eq!(
        v.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[actix_web::test]
async fn one_client_cannot_fill_the_waiting_sign_ins() {
    let (provider, app) = started(|_| {}).await;
    let mut v = Visitor::new(&app);
    for _ in 0..20 {
        let start = v.get("/sign-in/oidc").await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    }
    v.cookies.remove(BINDING);
    let page = v.get("/sign-in/oidc").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert!(
        page.body.contains("Too many sign-in attempts"),
        "{}",
        page.body
    );
    assert!(!v.cookies.contains_key(BINDING));
    provider.stop().await;
}

#[actix_web::test]
async fn where_to_go_next_stays_on_this_site() {
    let (provider, app) = started(|_| {}).await;
    for (next, expected) in [
        ("//evil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("https://evil.example", "/"),
        ("/%09/evil.example", "/"),
        ("/tickets/new", "/tickets/new"),
    ] {
        let mut v = Visitor::new(&app);
        let back = to_provider_and_back(&mut v, next).await;
        let done = v.get(&back).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{next}: {}", done.body);
        assert_eq!(done.location.as_deref(), Some(expected), "{next}");
    }
    provider.stop().await;
}
