//! Prometheus metrics, served as text at `/metrics`.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// `2xx`, `4xx`, `5xx`…
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabel {
    /// `outbox`, `interactive`, `hint`, `poll`, `sweep`, `backfill`.
    pub lane: String,
}

/// Cheap to clone: every field is a shared handle.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub http_responses: Family<StatusLabel, Counter>,
    pub tickets_created: Counter,
    pub messages_created: Counter,
    pub attachments_stored: Counter,
    pub commit_batches: Counter,
    pub login_failures: Counter,
    pub outbox_depth: Gauge,
    pub tickets_total: Gauge,
    pub sdp_delivered: Counter,
    pub sdp_delivery_errors: Counter,
    pub sdp_poll_errors: Counter,
    pub sdp_dead_letters: Gauge,
    /// Age of the oldest change not yet in SDP: the outbound lag.
    pub sdp_oldest_pending_seconds: Gauge,
    pub sdp_last_poll_timestamp_seconds: Gauge,
    /// SDP calls started since the process started, by lane (set from the budget when scraped).
    pub sdp_calls: Family<LaneLabel, Gauge>,
    /// SDP calls waiting for a slot of the budget, by lane.
    pub sdp_waiting: Family<LaneLabel, Gauge>,
    /// SDP calls started in the last minute, against `sdp_budget_per_minute`.
    pub sdp_budget_in_window: Gauge,
    pub sdp_budget_per_minute: Gauge,
    /// 1 while SDP answers, 0 while it is unreachable or the sync is paused.
    pub sdp_reachable: Gauge,
    /// Accounts and addresses the sign-in throttle remembers (set when scraped).
    pub login_throttle_keys: Gauge,
    /// Live-update streams open now (set when scraped).
    pub live_streams: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("deskbridge");
        let m = Metrics {
            registry: Arc::default(),
            http_responses: Family::default(),
            tickets_created: Counter::default(),
            messages_created: Counter::default(),
            attachments_stored: Counter::default(),
            commit_batches: Counter::default(),
            login_failures: Counter::default(),
            outbox_depth: Gauge::default(),
            tickets_total: Gauge::default(),
            sdp_delivered: Counter::default(),
            sdp_delivery_errors: Counter::default(),
            sdp_poll_errors: Counter::default(),
            sdp_dead_letters: Gauge::default(),
            sdp_oldest_pending_seconds: Gauge::default(),
            sdp_last_poll_timestamp_seconds: Gauge::default(),
            sdp_calls: Family::default(),
            sdp_waiting: Family::default(),
            sdp_budget_in_window: Gauge::default(),
            sdp_budget_per_minute: Gauge::default(),
            sdp_reachable: Gauge::default(),
            login_throttle_keys: Gauge::default(),
            live_streams: Gauge::default(),
        };
        registry.register(
            "http_responses",
            "HTTP responses by status class",
            m.http_responses.clone(),
        );
        registry.register(
            "tickets_created",
            "Tickets created",
            m.tickets_created.clone(),
        );
        registry.register(
            "messages_created",
            "Discussion messages created",
            m.messages_created.clone(),
        );
        registry.register(
            "attachments_stored",
            "Attachments stored",
            m.attachments_stored.clone(),
        );
        registry.register(
            "store_commit_batches",
            "Group-commit flushes to disk",
            m.commit_batches.clone(),
        );
        registry.register(
            "login_failures",
            "Failed or throttled sign-in attempts",
            m.login_failures.clone(),
        );
        registry.register(
            "outbox_depth",
            "Changes waiting to be sent to ServiceDesk Plus",
            m.outbox_depth.clone(),
        );
        registry.register("tickets", "Tickets in the store", m.tickets_total.clone());
        registry.register(
            "sdp_delivered",
            "Changes delivered to ServiceDesk Plus",
            m.sdp_delivered.clone(),
        );
        registry.register(
            "sdp_delivery_errors",
            "Failed delivery attempts to ServiceDesk Plus",
            m.sdp_delivery_errors.clone(),
        );
        registry.register(
            "sdp_poll_errors",
            "Failed polls of ServiceDesk Plus",
            m.sdp_poll_errors.clone(),
        );
        registry.register(
            "sdp_dead_letters",
            "Changes SDP refused, waiting for an admin",
            m.sdp_dead_letters.clone(),
        );
        registry.register(
            "sdp_oldest_pending_seconds",
            "Age of the oldest change not yet delivered to ServiceDesk Plus",
            m.sdp_oldest_pending_seconds.clone(),
        );
        registry.register(
            "sdp_last_poll_timestamp_seconds",
            "Unix time of the last successful poll of ServiceDesk Plus",
            m.sdp_last_poll_timestamp_seconds.clone(),
        );
        m.register_budget(&mut registry);
        m.register_access(&mut registry);
        *m.registry.lock().expect("fresh mutex") = registry;
        m
    }

    fn register_access(&self, registry: &mut Registry) {
        registry.register(
            "login_throttle_keys",
            "Accounts and client addresses the sign-in throttle remembers",
            self.login_throttle_keys.clone(),
        );
        registry.register(
            "live_streams",
            "Live-update streams open",
            self.live_streams.clone(),
        );
    }

    fn register_budget(&self, registry: &mut Registry) {
        let m = self;
        registry.register(
            "sdp_calls",
            "ServiceDesk Plus calls started since start, by lane",
            m.sdp_calls.clone(),
        );
        registry.register(
            "sdp_waiting",
            "ServiceDesk Plus calls waiting for the budget, by lane",
            m.sdp_waiting.clone(),
        );
        registry.register(
            "sdp_budget_in_window",
            "ServiceDesk Plus calls started in the last minute",
            m.sdp_budget_in_window.clone(),
        );
        registry.register(
            "sdp_budget_per_minute",
            "The ServiceDesk Plus call budget (sdp.max_requests_per_minute)",
            m.sdp_budget_per_minute.clone(),
        );
        registry.register(
            "sdp_reachable",
            "1 while ServiceDesk Plus answers, else 0",
            m.sdp_reachable.clone(),
        );
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .expect("metrics lock is never poisoned: encoding does not panic");
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}
