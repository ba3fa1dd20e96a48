//! Configuration: built-in defaults → TOML file → `DESKBRIDGE__SECTION__KEY` environment variables.
//!
//! Every key is documented in `config/deskbridge.toml`; a test keeps that file and [`Config`] in step.

mod console;
mod oidc;
mod secret;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};

pub use console::{ConsoleKey, ValueKind, deployment_name};
pub use oidc::OidcConfig;
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
    // A key the file merely restates at its default (as the packaged file does) stays editable.
    for key in ConsoleKey::ALL.map(ConsoleKey::key) {
        let key = key.as_str();
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
        fixed.insert(key.to_owned(), source);
    }
    // A secret read from a file is fixed by that file.
    let mut config = config.clone();
    for (key, _, path) in config.secret_files() {
        if key.starts_with("sdp.") && !path.as_os_str().is_empty() {
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
    pub oidc: OidcConfig,
    pub log: LogConfig,
    /// Console-editable keys ([`ConsoleKey`]) that the file or environment set to something other
    /// than the default, with where from: the console shows them read-only.
    #[serde(skip)]
    pub fixed: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(deserialize_with = "lossy_string")]
    pub bind: String,
    #[serde(deserialize_with = "lossy_string")]
    pub public_url: String,
    pub shutdown_timeout_secs: u64,
    /// Peers (addresses or CIDRs) whose `X-Forwarded-For/Proto/Host` are believed; empty: none.
    pub trusted_proxies: Vec<String>,
    /// Bearer token `/metrics` requires; empty: `/metrics` is open.
    pub metrics_token: Secret,
    pub metrics_token_file: PathBuf,
    /// PEM certificate chain and private key for built-in TLS; both empty: plain HTTP.
    pub tls_cert_file: PathBuf,
    pub tls_key_file: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            public_url: String::new(),
            shutdown_timeout_secs: 30,
            trusted_proxies: Vec::new(),
            metrics_token: Secret::default(),
            metrics_token_file: PathBuf::new(),
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub cache_mb: u64,
    /// The key (64 hex digits) that seals console-saved secrets; empty: read `secret_key_file`.
    pub secret_key: Secret,
    /// Where the key is kept, created (mode 0600) when missing; empty: `<data_dir>/secret.key`.
    pub secret_key_file: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./data"),
            cache_mb: 64,
            secret_key: Secret::default(),
            secret_key_file: PathBuf::new(),
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
    /// Written into note markers and number tags; empty: the store's own id.
    #[serde(deserialize_with = "lossy_string")]
    pub instance_id: String,
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
    /// SDP status a customer's reply moves the request to when it is in one of `reply_from`
    /// (as SDP's own "reopen when the requester replies" rule does for e-mail); empty: never.
    #[serde(deserialize_with = "lossy_string")]
    pub reply_status: String,
    pub reply_from: Vec<String>,
    pub statuses: std::collections::BTreeMap<String, String>,
}

impl Default for MappingConfig {
    fn default() -> Self {
        let statuses = [
            ("Open", "new"),
            ("Assigned", "assigned"),
            ("In Progress", "in_progress"),
            ("On Hold", "pending"),
            ("Onhold", "pending"),
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
            reply_status: "Open".into(),
            reply_from: vec!["On Hold".into(), "Onhold".into()],
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
            poll_overlap_secs: 10,
            instance_id: String::new(),
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
    /// How long an `Idempotency-Key`'s first answer is kept.
    pub idempotency_ttl_days: u32,
    /// Live-update streams one session may hold open at once.
    pub max_streams_per_session: u32,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            ticket_prefix: "DB".into(),
            max_attachment_bytes: 25 * 1024 * 1024,
            reopen_window_days: 30,
            frame_ancestors: String::new(),
            idempotency_ttl_days: 7,
            max_streams_per_session: 8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The absolute lifetime of a browser session.
    pub session_ttl_hours: u64,
    /// A session unused this long has ended.
    pub session_idle_minutes: u64,
    pub token_ttl_days: u64,
    pub login_attempts_per_account: u32,
    pub login_attempts_per_address: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl_hours: 12,
            session_idle_minutes: 30,
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

    /// Every secret that may come from a file, by key: `<key>_file` names the file.
    fn secret_files(&mut self) -> [(&'static str, &mut Secret, &PathBuf); 7] {
        let (sdp, bootstrap, server) = (&mut self.sdp, &mut self.bootstrap, &mut self.server);
        let oidc = &mut self.oidc;
        [
            (
                "server.metrics_token",
                &mut server.metrics_token,
                &server.metrics_token_file,
            ),
            ("sdp.api_key", &mut sdp.api_key, &sdp.api_key_file),
            (
                "sdp.webhook_secret",
                &mut sdp.webhook_secret,
                &sdp.webhook_secret_file,
            ),
            (
                "sdp.oauth_client_secret",
                &mut sdp.oauth_client_secret,
                &sdp.oauth_client_secret_file,
            ),
            (
                "sdp.oauth_refresh_token",
                &mut sdp.oauth_refresh_token,
                &sdp.oauth_refresh_token_file,
            ),
            (
                "bootstrap.admin_password",
                &mut bootstrap.admin_password,
                &bootstrap.admin_password_file,
            ),
            (
                "oidc.client_secret",
                &mut oidc.client_secret,
                &oidc.client_secret_file,
            ),
        ]
    }

    /// Reads every `…_file` secret into its key. [`Config::load`] does this; a caller that builds a
    /// `Config` in code with `…_file` paths calls it before starting.
    pub fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        for (key, secret, file) in self.secret_files() {
            resolve(secret, file, key)?;
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
