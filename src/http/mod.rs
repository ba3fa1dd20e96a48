//! The REST API edge: routes, extractors and JSON views. Handlers parse and answer; the rules are
//! the use cases' (`service`). Reads go to the store directly (sled reads are safe from any thread).

pub(crate) mod api;
pub(crate) mod client;
pub(crate) mod extract;
pub(crate) mod session;
pub(crate) mod tls;
pub(crate) mod upload;
pub(crate) mod views;

use actix_web::{HttpResponse, web};

use crate::error::{ApiError, ErrorCode};

/// Mounts the API's routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    api::configure(cfg);
}

/// What answers a path nothing else serves.
pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
}

pub(crate) async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not accept that method",
    ))
}
