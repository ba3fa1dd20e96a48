//! Health, readiness, metrics and the `OpenAPI` document.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::OpenApi;

use super::resource;
use crate::auth;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::metrics::LaneLabel;
use crate::sdp::budget::Reachability;
use crate::service::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(healthz)))
        .service(resource("/readyz").route(web::get().to(readyz)))
        .service(resource("/metrics").route(web::get().to(metrics)));
}

#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "The process answers")))]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, description = "Store open, actors running"), (status = 503, description = "Starting or shutting down")))]
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_ready() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "not ready"}))
    }
}

#[utoipa::path(get, path = "/metrics", tag = "system",
    description = "Needs `Authorization: Bearer <server.metrics_token>` when that is set.",
    responses((status = 200, description = "Prometheus text format"), (status = 401, body = ErrorEnvelope)))]
pub(crate) async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let token = state.config.server.metrics_token.expose();
    if !token.is_empty() {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !auth::secrets_equal(given.trim(), token) {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "/metrics needs the bearer token set in server.metrics_token",
            ));
        }
    }
    let m = &state.metrics;
    m.outbox_depth
        .set(i64::try_from(state.store.outbox_len()).unwrap_or(i64::MAX));
    m.tickets_total
        .set(i64::try_from(state.store.ticket_count().unwrap_or(0)).unwrap_or(i64::MAX));
    m.login_throttle_keys
        .set(i64::try_from(state.throttle.tracked()).unwrap_or(i64::MAX));
    m.live_streams
        .set(i64::try_from(state.streams.open()).unwrap_or(i64::MAX));
    let oldest = state
        .store
        .outbox_after(0, 1)
        .ok()
        .and_then(|e| e.first().map(|e| e.at));
    m.sdp_oldest_pending_seconds.set(oldest.map_or(0, |at| {
        (time::OffsetDateTime::now_utc() - at).whole_seconds()
    }));
    m.sdp_dead_letters.set(
        state
            .store
            .dead_letters()
            .map_or(0, |d| i64::try_from(d.len()).unwrap_or(i64::MAX)),
    );
    let budget = state.sync.budget();
    for lane in &budget.calls {
        let label = LaneLabel {
            lane: lane.lane.as_str().to_owned(),
        };
        m.sdp_calls
            .get_or_create(&label)
            .set(i64::try_from(lane.calls).unwrap_or(i64::MAX));
    }
    for lane in &budget.waiting {
        let label = LaneLabel {
            lane: lane.lane.as_str().to_owned(),
        };
        m.sdp_waiting
            .get_or_create(&label)
            .set(i64::try_from(lane.calls).unwrap_or(i64::MAX));
    }
    m.sdp_budget_in_window.set(i64::from(budget.in_window));
    m.sdp_budget_per_minute.set(i64::from(budget.per_minute));
    m.sdp_reachable
        .set(i64::from(matches!(budget.sdp, Reachability::Reachable)));
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(m.render()))
}

pub(crate) async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(super::ApiDoc::openapi())
}
