//! Health, readiness, metrics, `OpenAPI`, unknown routes and methods.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{TestApp, error_code};

#[actix_web::test]
async fn health_ready_metrics_and_openapi_answer() {
    let mut app = TestApp::start().await;
    let anon = app.anonymous();
    assert_eq!(anon.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(anon.get("/readyz").await.0, StatusCode::OK);

    let customer = app.customer("m@example.com").await;
    customer.ticket("metrics").await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("deskbridge_tickets_created_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("deskbridge_outbox_depth 1"), "{metrics}");
    for name in [
        "deskbridge_sdp_oldest_pending_seconds",
        "deskbridge_sdp_dead_letters 0",
        "deskbridge_sdp_delivery_errors_total 0",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }

    let (status, doc) = anon.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/v1/tickets",
        "/api/v1/tickets/{number}/attachments/{id}",
        "/api/v1/auth/token",
        "/api/v1/setup",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
    assert!(doc["components"]["schemas"]["TicketView"]["properties"]["sdp"].is_object());

    // While shutting down, readiness turns false before the server stops.
    app.state()
        .ready
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(anon.get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    app.stop().await;
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = TestApp::start().await;
    let customer = app.customer("r@example.com").await;
    let (status, body) = customer.get("/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not-found");
    let (status, body) = customer.delete("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body), "method-not-allowed");
    let (status, body) = customer.post("/healthz", &json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body), "method-not-allowed");
}

#[actix_web::test]
async fn responses_carry_security_headers() {
    let app = TestApp::start().await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    let h = response.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
}

#[actix_web::test]
async fn metrics_need_the_token_when_one_is_set() {
    let app = TestApp::start_with(|c| {
        c.server.metrics_token = deskbridge::config::Secret::new("metrics-token-81".into());
    })
    .await;
    let get = |token: Option<&str>| {
        let mut req = app.http.get(app.url("/metrics"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    for wrong in [None, Some("metrics-token-8"), Some("nope")] {
        let response = get(wrong).await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "unauthenticated");
    }
    let response = get(Some("metrics-token-81")).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(response.text().await.unwrap().contains("deskbridge_"));
}
