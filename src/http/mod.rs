//! The HTTP edge: routes, extractors and JSON views. Handlers check who asks, validate, and hand
//! writes to the actors; reads go to the store directly (sled reads are safe from any thread).

pub mod api;
pub mod extract;
pub mod views;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::actors::Actors;
use crate::auth::LoginThrottle;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::Store;

/// Shared by every handler.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub actors: Actors,
    pub throttle: LoginThrottle,
    /// The one-time first-admin token; `None` once an admin exists.
    pub setup_token: std::sync::Mutex<Option<String>>,
    /// False until the store is open and the actors run, and again while shutting down.
    pub ready: Arc<AtomicBool>,
    pub metrics: Metrics,
    /// Running when `sdp.base_url` is set.
    pub sync: Option<actix::Addr<crate::actors::sync::SyncSupervisor>>,
}

impl AppState {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    api::configure(cfg);
    crate::web::configure(cfg);
    cfg.default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("not-found", "no such endpoint"))
}

pub(crate) async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this endpoint does not accept that method",
    ))
}
