//! Configuration: built-in defaults → TOML file → `DESKBRIDGE__SECTION__KEY` environment variables.
//!
//! Every key is documented in `config/deskbridge.toml`; a test keeps that file and [`Config`] in step.

mod secret;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};

pub use secret::Secret;

/// The environment prefix; `DESKBRIDGE__SDP__API_KEY` sets `sdp.api_key`.
pub const ENV_PREFIX: &str = "DESKBRIDGE__";
/// Names a config file when `--config` is not given.
pub const ENV_CONFIG_FILE: &str = "DESKBRIDGE_CONFIG";
/// Read when neither `--config` nor `DESKBRIDGE_CONFIG` names a file, if it exists.
pub const SYSTEM_CONFIG_FILE: &str = "/etc/deskbridge/deskbridge.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration file {} does not exist", .0.display())]
    MissingFile(PathBuf),
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("{key}_file: cannot read {}: {source}", path.display())]
    SecretFile {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which console keys the file or environment fixed, and where.
fn fixed_keys(figment: &Figment, config: &Config) -> std::collections::BTreeMap<String, String> {
    let defaults = Figment::from(Serialized::defaults(Config::default()));
    let mut fixed = std::collections::BTreeMap::new();
    for key in CONSOLE_KEYS {
        let Ok(value) = figment.find_value(key) else {
            continue;
        };
        // Compared as JSON: TOML reads integers as i64 where the defaults hold u64.
        let as_json = |v: &figment::value::Value| v.deserialize::<serde_json::Value>().ok();
        if defaults
            .find_value(key)
            .is_ok_and(|d| as_json(&d) == as_json(&value))
        {
            continue;
        }
        let source = match figment.find_metadata(key).and_then(|m| m.source.as_ref()) {
            Some(figment::Source::File(path)) => format!("{}", path.display()),
            _ => format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase()),
        };
        fixed.insert((*key).to_owned(), source);
    }
    let files = [
        ("sdp.api_key", &config.sdp.api_key_file),
        ("sdp.webhook_secret", &config.sdp.webhook_secret_file),
        (
            "sdp.oauth_client_secret",
            &config.sdp.oauth_client_secret_file,
        ),
        (
            "sdp.oauth_refresh_token",
            &config.sdp.oauth_refresh_token_file,
        ),
    ];
    for (key, path) in files {
        if !path.as_os_str().is_empty() {
            fixed.insert(key.to_owned(), path.display().to_string());
        }
    }
    fixed
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub sdp: SdpConfig,
    pub bootstrap: BootstrapConfig,
    pub portal: PortalConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    /// Console-editable keys ([`CONSOLE_KEYS`]) that the file or environment set to something other
    /// than the default, with where from: the console shows them read-only.
    #[serde(skip)]
    pub fixed: std::collections::BTreeMap<String, String>,
}

/// Keys an admin may edit in the console, unless the config file or environment fixes them. A key
/// the file merely restates at its default (as the packaged file does) stays editable.
pub const CONSOLE_KEYS: &[&str] = &[
    "sdp.base_url",
    "sdp.deployment",
    "sdp.api_key",
    "sdp.oauth_client_id",
    "sdp.oauth_client_secret",
    "sdp.oauth_refresh_token",
    "sdp.oauth_accounts_url",
    "sdp.poll_interval_secs",
    "sdp.webhook_secret",
    "sdp.mapping.request_type_problem_report",
    "sdp.mapping.request_type_information_request",
    "sdp.mapping.priority_low",
    "sdp.mapping.priority_medium",
    "sdp.mapping.priority_high",
    "sdp.mapping.priority_urgent",
    "sdp.mapping.category",
    "sdp.mapping.template",
    "sdp.mapping.reopen_status",
    "sdp.mapping.statuses",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(deserialize_with = "lossy_string")]
    pub bind: String,
    #[serde(deserialize_with = "lossy_string")]
    pub public_url: String,
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            public_url: String::new(),
            shutdown_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub cache_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./data"),
            cache_mb: 64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deployment {
    #[default]
    OnPrem,
    Cloud,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SdpConfig {
    #[serde(deserialize_with = "lossy_string")]
    pub base_url: String,
    pub deployment: Deployment,
    pub api_key: Secret,
    pub api_key_file: PathBuf,
    pub poll_interval_secs: u64,
    pub webhook_secret: Secret,
    pub webhook_secret_file: PathBuf,
    pub max_requests_per_minute: u32,
    pub request_timeout_secs: u64,
    #[serde(deserialize_with = "lossy_string")]
    pub oauth_client_id: String,
    pub oauth_client_secret: Secret,
    pub oauth_client_secret_file: PathBuf,
    pub oauth_refresh_token: Secret,
    pub oauth_refresh_token_file: PathBuf,
    #[serde(deserialize_with = "lossy_string")]
    pub oauth_accounts_url: String,
    pub import_requester_requests: bool,
    pub max_attempts: u32,
    pub max_age_hours: u64,
    pub reconcile_interval_secs: u64,
    pub poll_overlap_secs: u64,
    pub outbound_concurrency: u32,
    pub retry_base_ms: u64,
    pub retry_max_secs: u64,
    pub mapping: MappingConfig,
}

/// How portal values become SDP names and back. SDP instances name things differently, so every
/// name is configurable; an SDP status not listed is classified by its `in_progress`/`stop_timer` flags.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    #[serde(deserialize_with = "lossy_string")]
    pub request_type_problem_report: String,
    #[serde(deserialize_with = "lossy_string")]
    pub request_type_information_request: String,
    #[serde(deserialize_with = "lossy_string")]
    pub priority_low: String,
    #[serde(deserialize_with = "lossy_string")]
    pub priority_medium: String,
    #[serde(deserialize_with = "lossy_string")]
    pub priority_high: String,
    #[serde(deserialize_with = "lossy_string")]
    pub priority_urgent: String,
    #[serde(deserialize_with = "lossy_string")]
    pub category: String,
    /// SDP request template for new requests; empty: SDP's default template.
    #[serde(deserialize_with = "lossy_string")]
    pub template: String,
    #[serde(deserialize_with = "lossy_string")]
    pub number_udf: String,
    #[serde(deserialize_with = "lossy_string")]
    pub reopen_status: String,
    pub statuses: std::collections::BTreeMap<String, String>,
}

impl Default for MappingConfig {
    fn default() -> Self {
        let statuses = [
            ("Open", "new"),
            ("Assigned", "assigned"),
            ("In Progress", "in_progress"),
            ("On Hold", "pending"),
            ("Resolved", "resolved"),
            ("Closed", "closed"),
            ("Cancelled", "closed"),
            ("Canceled", "closed"),
        ];
        MappingConfig {
            request_type_problem_report: "Incident".into(),
            request_type_information_request: "Service Request".into(),
            priority_low: "Low".into(),
            priority_medium: "Medium".into(),
            priority_high: "High".into(),
            priority_urgent: "Urgent".into(),
            category: String::new(),
            template: String::new(),
            number_udf: String::new(),
            reopen_status: "Open".into(),
            statuses: statuses
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }
}

impl Default for SdpConfig {
    fn default() -> Self {
        SdpConfig {
            base_url: String::new(),
            deployment: Deployment::OnPrem,
            api_key: Secret::default(),
            api_key_file: PathBuf::new(),
            poll_interval_secs: 30,
            webhook_secret: Secret::default(),
            webhook_secret_file: PathBuf::new(),
            max_requests_per_minute: 60,
            request_timeout_secs: 30,
            oauth_client_id: String::new(),
            oauth_client_secret: Secret::default(),
            oauth_client_secret_file: PathBuf::new(),
            oauth_refresh_token: Secret::default(),
            oauth_refresh_token_file: PathBuf::new(),
            oauth_accounts_url: "https://accounts.zoho.com".into(),
            import_requester_requests: true,
            max_attempts: 100,
            max_age_hours: 72,
            reconcile_interval_secs: 3600,
            poll_overlap_secs: 60,
            outbound_concurrency: 4,
            retry_base_ms: 1000,
            retry_max_secs: 300,
            mapping: MappingConfig::default(),
        }
    }
}

impl SdpConfig {
    /// Sync is on only when SDP's address is known; until then changes wait in the outbox.
    pub fn enabled(&self) -> bool {
        !self.base_url.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    #[serde(deserialize_with = "lossy_string")]
    pub admin_email: String,
    #[serde(deserialize_with = "lossy_string")]
    pub admin_name: String,
    pub admin_password: Secret,
    pub admin_password_file: PathBuf,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            admin_email: String::new(),
            admin_name: "Administrator".into(),
            admin_password: Secret::default(),
            admin_password_file: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    #[serde(deserialize_with = "lossy_string")]
    pub ticket_prefix: String,
    pub max_attachment_bytes: u64,
    pub reopen_window_days: u32,
    /// Origins allowed to embed the pages in a frame (space-separated); empty: none.
    #[serde(deserialize_with = "lossy_string")]
    pub frame_ancestors: String,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            ticket_prefix: "DB".into(),
            max_attachment_bytes: 25 * 1024 * 1024,
            reopen_window_days: 30,
            frame_ancestors: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub session_ttl_hours: u64,
    pub token_ttl_days: u64,
    pub login_attempts_per_account: u32,
    pub login_attempts_per_address: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl_hours: 12,
            token_ttl_days: 30,
            login_attempts_per_account: 10,
            login_attempts_per_address: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    #[serde(deserialize_with = "lossy_string")]
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Environment values arrive typed (`123` is a number); text keys accept any scalar as text.
pub(crate) fn lossy_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i128),
        F(f64),
        B(bool),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::S(s) => s,
        Scalar::I(i) => i.to_string(),
        Scalar::F(f) => f.to_string(),
        Scalar::B(b) => b.to_string(),
    })
}

impl Config {
    /// Picks the file: `--config`, else `DESKBRIDGE_CONFIG`, else the system file when it exists.
    pub fn file_to_load(explicit: Option<&Path>) -> Option<PathBuf> {
        if let Some(path) = explicit {
            return Some(path.to_owned());
        }
        if let Some(path) = std::env::var_os(ENV_CONFIG_FILE).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        Path::new(SYSTEM_CONFIG_FILE)
            .exists()
            .then(|| PathBuf::from(SYSTEM_CONFIG_FILE))
    }

    /// Loads, resolves `…_file` secrets and validates.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = Config::file_to_load(explicit) {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        Config::from_figment(&figment)
    }

    pub fn from_figment(figment: &Figment) -> Result<Config, ConfigError> {
        let mut config: Config = figment.extract().map_err(Box::new)?;
        config.resolve_secret_files()?;
        config.validate()?;
        config.fixed = fixed_keys(figment, &config);
        Ok(config)
    }

    fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        resolve(&mut self.sdp.api_key, &self.sdp.api_key_file, "sdp.api_key")?;
        resolve(
            &mut self.sdp.webhook_secret,
            &self.sdp.webhook_secret_file,
            "sdp.webhook_secret",
        )?;
        resolve(
            &mut self.bootstrap.admin_password,
            &self.bootstrap.admin_password_file,
            "bootstrap.admin_password",
        )
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server_and_storage()?;
        self.validate_sdp()?;
        self.validate_bootstrap()?;
        self.validate_portal_and_auth()?;
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
        Ok(())
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

    /// The merged configuration as TOML, secrets redacted: what `check-config` prints.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .expect("the config serializes to TOML: it has only tables and scalars")
    }

    pub fn bind_addr(&self) -> SocketAddr {
        self.server
            .bind
            .parse()
            .expect("validated in Config::validate")
    }
}

fn http_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(url)
}

fn resolve(secret: &mut Secret, file: &Path, key: &'static str) -> Result<(), ConfigError> {
    if file.as_os_str().is_empty() {
        return Ok(());
    }
    if !secret.is_empty() {
        return Err(invalid(
            key,
            format!("set either {key} or {key}_file, not both"),
        ));
    }
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::SecretFile {
        key,
        path: file.to_owned(),
        source,
    })?;
    // Files written by `echo` or editors end with a newline that is not part of the secret.
    *secret = Secret::new(text.trim_end_matches(['\r', '\n']).to_owned());
    if secret.is_empty() {
        return Err(invalid(key, format!("{} is empty", file.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
