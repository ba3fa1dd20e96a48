//! The HTTP edge: routes, extractors and JSON views. Handlers check who asks, validate, and hand
//! writes to the actors; reads go to the store directly (sled reads are safe from any thread).

pub mod api;
pub mod extract;
pub mod views;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::actors::Actors;
use crate::actors::sync::SyncSupervisor;
use crate::auth::LoginThrottle;
use crate::config::{Config, SdpConfig};
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
    /// The SDP settings in force: the configuration with the console's saved values laid over it.
    pub sdp: RwLock<Arc<SdpConfig>>,
    /// Running while an SDP base URL is set; replaced when the console changes the settings.
    pub sync: RwLock<Option<actix::Addr<SyncSupervisor>>>,
}

impl AppState {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn sdp(&self) -> Arc<SdpConfig> {
        Arc::clone(&self.sdp.read().expect("sdp lock is never poisoned"))
    }

    pub fn sync(&self) -> Option<actix::Addr<SyncSupervisor>> {
        self.sync
            .read()
            .expect("sync lock is never poisoned")
            .clone()
    }

    /// Puts new SDP settings in force without a restart: the running sync stops (an attempt cut
    /// short is looked up in SDP before it is repeated) and a new one starts with them.
    pub async fn apply_sdp(&self, sdp: SdpConfig) -> anyhow::Result<()> {
        let window = crate::domain::lifecycle::ReopenWindow {
            days: self.config.portal.reopen_window_days,
        };
        let next = crate::app::start_sync(&sdp, &self.store, &self.actors, window)?;
        let previous = {
            let mut slot = self.sync.write().expect("sync lock is never poisoned");
            slot.take()
        };
        if let Some(previous) = previous {
            let _ = previous.send(crate::actors::sync::Stop).await;
        }
        *self.sdp.write().expect("sdp lock is never poisoned") = Arc::new(sdp);
        *self.sync.write().expect("sync lock is never poisoned") = next;
        Ok(())
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
