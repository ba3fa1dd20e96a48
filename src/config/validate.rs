//! The rules a configuration must meet; each failure names its key and what would be valid.

use std::net::SocketAddr;

use super::{Config, ConfigError, Deployment, invalid};

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server_and_storage()?;
        self.validate_sdp()?;
        self.validate_bootstrap()?;
        self.validate_portal_and_auth()?;
        self.validate_oidc()?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", format!("is not a valid filter: {e}")))?;
        Ok(())
    }

    fn validate_server_and_storage(&self) -> Result<(), ConfigError> {
        self.server.bind.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "server.bind",
                "must be an address and port, e.g. 127.0.0.1:8080",
            )
        })?;
        if !self.server.public_url.is_empty() {
            http_url(&self.server.public_url).map_err(|m| invalid("server.public_url", m))?;
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(invalid("storage.data_dir", "must not be empty"));
        }
        if !(8..=65_536).contains(&self.storage.cache_mb) {
            return Err(invalid("storage.cache_mb", "must be between 8 and 65536"));
        }
        let key = self.storage.secret_key.expose();
        if !key.is_empty() && (key.len() != 64 || hex::decode(key).is_err()) {
            return Err(invalid(
                "storage.secret_key",
                "must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`",
            ));
        }
        self.trusted_proxies()?;
        let (cert, key) = (&self.server.tls_cert_file, &self.server.tls_key_file);
        if cert.as_os_str().is_empty() != key.as_os_str().is_empty() {
            return Err(invalid(
                "server.tls_cert_file",
                "set both server.tls_cert_file and server.tls_key_file, or neither",
            ));
        }
        Ok(())
    }

    /// `server.trusted_proxies` as networks; a bare address is a network of one.
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.server
            .trusted_proxies
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        invalid(
                            "server.trusted_proxies",
                            format!(
                                "{entry:?} is not an address or CIDR (e.g. 10.0.0.5, 10.0.0.0/8)"
                            ),
                        )
                    })
            })
            .collect()
    }

    fn validate_sdp(&self) -> Result<(), ConfigError> {
        if !self.sdp.base_url.is_empty() {
            let url = http_url(&self.sdp.base_url).map_err(|m| invalid("sdp.base_url", m))?;
            if url.path().trim_end_matches('/').ends_with("/api/v3") {
                return Err(invalid(
                    "sdp.base_url",
                    "give the server root without /api/v3; deskbridge appends it",
                ));
            }
        }
        if self.sdp.poll_interval_secs < 1 {
            return Err(invalid("sdp.poll_interval_secs", "must be at least 1"));
        }
        if self.sdp.max_requests_per_minute < 1 {
            return Err(invalid("sdp.max_requests_per_minute", "must be at least 1"));
        }
        if !(1..=600).contains(&self.sdp.request_timeout_secs) {
            return Err(invalid(
                "sdp.request_timeout_secs",
                "must be between 1 and 600",
            ));
        }
        http_url(&self.sdp.oauth_accounts_url).map_err(|m| invalid("sdp.oauth_accounts_url", m))?;
        if self.sdp.max_attempts < 1 {
            return Err(invalid("sdp.max_attempts", "must be at least 1"));
        }
        if self.sdp.max_age_hours < 1 {
            return Err(invalid("sdp.max_age_hours", "must be at least 1"));
        }
        if self.sdp.reconcile_interval_secs < 60 {
            return Err(invalid(
                "sdp.reconcile_interval_secs",
                "must be at least 60",
            ));
        }
        if !(10..=600_000).contains(&self.sdp.retry_base_ms) {
            return Err(invalid(
                "sdp.retry_base_ms",
                "must be between 10 and 600000",
            ));
        }
        if !(1..=86_400).contains(&self.sdp.retry_max_secs) {
            return Err(invalid("sdp.retry_max_secs", "must be between 1 and 86400"));
        }
        let id = &self.sdp.instance_id;
        if id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid(
                "sdp.instance_id",
                "use 1 to 32 letters, digits or '-', or leave it empty",
            ));
        }
        if !(1..=64).contains(&self.sdp.outbound_concurrency) {
            return Err(invalid(
                "sdp.outbound_concurrency",
                "must be between 1 and 64",
            ));
        }
        for (name, status) in &self.sdp.mapping.statuses {
            if crate::domain::Status::parse(status).is_none() {
                return Err(invalid(
                    "sdp.mapping.statuses",
                    format!(
                        "{name:?} maps to {status:?}; use new, assigned, in_progress, pending, resolved or closed"
                    ),
                ));
            }
        }
        if self.sdp.mapping.reopen_status.trim().is_empty() {
            return Err(invalid("sdp.mapping.reopen_status", "must not be empty"));
        }
        self.validate_sdp_credentials()
    }

    /// What the deployment needs to reach SDP, once its address is set.
    fn validate_sdp_credentials(&self) -> Result<(), ConfigError> {
        if self.sdp.enabled() {
            match self.sdp.deployment {
                Deployment::OnPrem if self.sdp.api_key.is_empty() => {
                    return Err(invalid(
                        "sdp.api_key",
                        "is required when sdp.base_url is set and sdp.deployment is on_prem",
                    ));
                }
                Deployment::Cloud => {
                    for (key, missing) in [
                        ("sdp.oauth_client_id", self.sdp.oauth_client_id.is_empty()),
                        (
                            "sdp.oauth_client_secret",
                            self.sdp.oauth_client_secret.is_empty(),
                        ),
                        (
                            "sdp.oauth_refresh_token",
                            self.sdp.oauth_refresh_token.is_empty(),
                        ),
                    ] {
                        if missing {
                            return Err(invalid(
                                key,
                                "is required when sdp.base_url is set and sdp.deployment is cloud",
                            ));
                        }
                    }
                }
                Deployment::OnPrem => {}
            }
        }
        Ok(())
    }

    fn validate_bootstrap(&self) -> Result<(), ConfigError> {
        let b = &self.bootstrap;
        match (b.admin_email.is_empty(), b.admin_password.is_empty()) {
            (true, true) => Ok(()),
            (false, true) => Err(invalid(
                "bootstrap.admin_password",
                "is required with bootstrap.admin_email",
            )),
            (true, false) => Err(invalid(
                "bootstrap.admin_email",
                "is required with bootstrap.admin_password",
            )),
            (false, false) => {
                use crate::domain::validate;
                let mut v = crate::domain::Validation::default();
                validate::email(&mut v, "bootstrap.admin_email", &b.admin_email);
                validate::password(
                    &mut v,
                    "bootstrap.admin_password",
                    b.admin_password.expose(),
                );
                validate::required_line(
                    &mut v,
                    "bootstrap.admin_name",
                    &b.admin_name,
                    validate::NAME_MAX_CHARS,
                );
                match v.fields.into_iter().next() {
                    None => Ok(()),
                    Some((key, message)) => {
                        let key = [
                            "bootstrap.admin_email",
                            "bootstrap.admin_password",
                            "bootstrap.admin_name",
                        ]
                        .into_iter()
                        .find(|k| *k == key)
                        .expect("the keys checked above");
                        Err(invalid(key, message))
                    }
                }
            }
        }
    }

    fn validate_portal_and_auth(&self) -> Result<(), ConfigError> {
        let prefix = &self.portal.ticket_prefix;
        let prefix_ok = (1..=10).contains(&prefix.len())
            && prefix.starts_with(|c: char| c.is_ascii_uppercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !prefix_ok {
            return Err(invalid(
                "portal.ticket_prefix",
                "must be 1 to 10 upper-case letters or digits, starting with a letter",
            ));
        }
        if !(1..=(4 << 30)).contains(&self.portal.max_attachment_bytes) {
            return Err(invalid(
                "portal.max_attachment_bytes",
                "must be between 1 byte and 4 GiB",
            ));
        }
        if self.portal.reopen_window_days > 3650 {
            return Err(invalid("portal.reopen_window_days", "must be at most 3650"));
        }
        if !(1..=3650).contains(&self.portal.idempotency_ttl_days) {
            return Err(invalid(
                "portal.idempotency_ttl_days",
                "must be between 1 and 3650",
            ));
        }
        if !(1..=1000).contains(&self.portal.max_streams_per_session) {
            return Err(invalid(
                "portal.max_streams_per_session",
                "must be between 1 and 1000",
            ));
        }
        for origin in self.portal.frame_ancestors.split_whitespace() {
            let ok = origin == "'self'"
                || http_url(origin).is_ok_and(|u| {
                    u.path() == "/"
                        && u.query().is_none()
                        && origin.trim_end_matches('/') == u.origin().ascii_serialization()
                });
            if !ok {
                return Err(invalid(
                    "portal.frame_ancestors",
                    format!(
                        "{origin:?} is not an origin such as https://portal.example.com or 'self'"
                    ),
                ));
            }
        }
        let auth = &self.auth;
        if !(1..=24 * 365).contains(&auth.session_ttl_hours) {
            return Err(invalid(
                "auth.session_ttl_hours",
                "must be between 1 and 8760",
            ));
        }
        if !(1..=auth.session_ttl_hours.saturating_mul(60)).contains(&auth.session_idle_minutes) {
            return Err(invalid(
                "auth.session_idle_minutes",
                "must be at least 1 and at most the session lifetime (auth.session_ttl_hours)",
            ));
        }
        if !(1..=3650).contains(&auth.token_ttl_days) {
            return Err(invalid("auth.token_ttl_days", "must be between 1 and 3650"));
        }
        if auth.login_attempts_per_account == 0 {
            return Err(invalid(
                "auth.login_attempts_per_account",
                "must be at least 1",
            ));
        }
        if auth.login_attempts_per_address == 0 {
            return Err(invalid(
                "auth.login_attempts_per_address",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

pub(super) fn http_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(url)
}
