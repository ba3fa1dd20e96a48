//! The use cases both edges call: the REST API (`http`) and the pages (`web`) parse their input,
//! then ask here. Each use case checks who asks, validates, and hands writes to the actors or the
//! ticket commands, so every rule exists once whichever edge a request came through.
//!
//! [`AppState`] is what every handler shares; `app` builds it.

pub mod accounts;
pub mod branding;
pub mod catalogue;
pub mod identity;
pub mod orgs;
pub mod sso;
pub mod sync;
pub mod tickets;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::actors::Actors;
use crate::auth::LoginThrottle;
use crate::config::Config;
use crate::domain::lifecycle::ReopenWindow;
use crate::metrics::Metrics;
use crate::store::Store;

pub use identity::Caller;
pub use sync::SyncHandle;

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
    /// The SDP connection and the sync that runs on it.
    pub sync: SyncHandle,
    /// Seals the secrets the console saves.
    pub(crate) secret_key: crate::settings::SecretKey,
    /// `server.trusted_proxies`, parsed: the peers whose forwarded headers are believed.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// Live streams open per session.
    pub streams: StreamSlots,
    /// Single sign-on, when `[oidc]` names a provider.
    pub(crate) oidc: Option<crate::oidc::Oidc>,
}

/// How many live streams each credential holds open, to keep each under
/// `portal.max_streams_per_session`.
#[derive(Debug, Default)]
pub struct StreamSlots(Mutex<HashMap<[u8; 32], u32>>);

impl StreamSlots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], u32>> {
        self.0
            .lock()
            .expect("stream slots lock is never poisoned: no panics while held")
    }

    /// Takes a slot for `credential`, unless it already holds `max`.
    pub fn take(&self, credential: [u8; 32], max: u32) -> bool {
        let mut slots = self.lock();
        let held = slots.entry(credential).or_insert(0);
        if *held >= max {
            return false;
        }
        *held += 1;
        true
    }

    /// Gives back a slot taken with [`StreamSlots::take`].
    pub fn release(&self, credential: &[u8; 32]) {
        let mut slots = self.lock();
        if let Some(held) = slots.get_mut(credential) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                slots.remove(credential);
            }
        }
    }

    /// Streams open now, over every session.
    pub fn open(&self) -> u64 {
        self.lock().values().map(|n| u64::from(*n)).sum()
    }
}

impl AppState {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn window(&self) -> ReopenWindow {
        ReopenWindow {
            days: self.config.portal.reopen_window_days,
        }
    }

    /// Whether the first-admin setup is still open.
    pub fn setup_open(&self) -> bool {
        self.setup_token
            .lock()
            .expect("setup lock is never poisoned: no panics while held")
            .is_some()
    }
}
