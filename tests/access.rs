//! Who may read and change what: a customer never reaches another customer's ticket, message,
//! attachment or history, and cannot even learn that it exists.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, error_code, unreachable};

#[actix_web::test]
async fn a_customer_cannot_read_or_change_another_customers_ticket() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let mallory = app.customer("mallory@example.com").await;
    let t = alice.ticket("Alice's secret").await;
    let n = t["number"].as_str().unwrap().to_owned();
    alice
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "private detail"}),
        )
        .await;
    let (_, file) = alice.upload(&n, "secret.txt", b"top secret".to_vec()).await;
    let att = file["id"].as_u64().unwrap();
    // Mallory's own ticket, to try reaching Alice's attachment through it.
    let own = mallory.ticket("Mallory's").await;
    let own_n = own["number"].as_str().unwrap().to_owned();

    unreachable(&mallory, &n, &own_n, att).await;
    let (_, list) = mallory.get("/api/v1/tickets").await;
    assert_eq!(list["total"], 1, "only their own ticket is listed");
    let (_, list) = mallory.get("/api/v1/tickets?q=secret").await;
    assert_eq!(list["total"], 0);

    // Nothing Mallory tried left a trace on Alice's ticket.
    let (_, events) = alice.get(&format!("/api/v1/tickets/{n}/events")).await;
    assert_eq!(events["items"].as_array().unwrap().len(), 3, "{events}");
    let (_, messages) = alice.get(&format!("/api/v1/tickets/{n}/messages")).await;
    assert_eq!(messages["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn an_admin_reads_everything_but_does_not_act_for_the_customer() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    let admin = app.admin().await;
    let t = alice.ticket("Visible to admins").await;
    let n = t["number"].as_str().unwrap().to_owned();
    let (_, file) = alice.upload(&n, "a.txt", b"alpha".to_vec()).await;
    for path in [
        format!("/api/v1/tickets/{n}"),
        format!("/api/v1/tickets/{n}/events"),
        format!("/api/v1/tickets/{n}/messages"),
        format!("/api/v1/tickets/{n}/attachments"),
    ] {
        assert_eq!(admin.get(&path).await.0, StatusCode::OK, "{path}");
    }
    let download = admin
        .request(
            Method::GET,
            &format!("/api/v1/tickets/{n}/attachments/{}", file["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    let (status, err) = admin
        .post(
            &format!("/api/v1/tickets/{n}/messages"),
            &json!({"body": "as admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&err), "forbidden");
}

#[actix_web::test]
async fn every_ticket_endpoint_needs_credentials() {
    let app = TestApp::start().await;
    let alice = app.customer("alice@example.com").await;
    alice.ticket("x").await;
    let anon = app.anonymous();
    for (method, path) in [
        (Method::GET, "/api/v1/tickets"),
        (Method::POST, "/api/v1/tickets"),
        (Method::GET, "/api/v1/tickets/DB-000001"),
        (Method::GET, "/api/v1/tickets/DB-000001/events"),
        (Method::GET, "/api/v1/tickets/DB-000001/messages"),
        (Method::POST, "/api/v1/tickets/DB-000001/messages"),
        (Method::GET, "/api/v1/tickets/DB-000001/attachments"),
        (Method::POST, "/api/v1/tickets/DB-000001/attachments"),
        (Method::GET, "/api/v1/tickets/DB-000001/attachments/1"),
        (Method::POST, "/api/v1/tickets/DB-000001/confirm"),
        (Method::POST, "/api/v1/tickets/DB-000001/reopen"),
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/api/v1/admin/users"),
        (Method::GET, "/api/v1/admin/outbox"),
    ] {
        let (status, err) = anon
            .send(anon.request(method.clone(), path).json(&json!({})))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(error_code(&err), "unauthenticated");
    }
}
