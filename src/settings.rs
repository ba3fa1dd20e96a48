//! Settings an admin edits in the console: the SDP connection and the mapping. They are stored in
//! the store and laid over the configuration, key by key, except where the configuration file or
//! the environment fixes a key (`Config::fixed`): those stay as configured and show read-only.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError, Deployment, MappingConfig, SdpConfig, Secret};
use crate::store::{Store, StoreError};

/// The name under which the console's SDP settings are stored.
const SDP: &str = "sdp";

/// What the console saved; `None` leaves the configured value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsoleSdp {
    pub base_url: Option<String>,
    pub deployment: Option<Deployment>,
    pub api_key: Option<String>,
    pub oauth_client_id: Option<String>,
    pub oauth_client_secret: Option<String>,
    pub oauth_refresh_token: Option<String>,
    pub oauth_accounts_url: Option<String>,
    pub poll_interval_secs: Option<u64>,
    pub webhook_secret: Option<String>,
    pub mapping: Option<MappingConfig>,
}

pub fn load(store: &Store) -> Result<ConsoleSdp, StoreError> {
    Ok(store.setting(SDP)?.unwrap_or_default())
}

pub fn save(store: &Store, settings: &ConsoleSdp) -> Result<(), StoreError> {
    store.put_setting(SDP, settings)
}

/// The SDP configuration in force: the configuration, with the console's values where allowed.
pub fn effective(config: &Config, saved: &ConsoleSdp) -> SdpConfig {
    let free = |key: &str| !config.fixed.contains_key(key);
    let mut sdp = config.sdp.clone();
    let text = |key: &str, target: &mut String, value: &Option<String>| {
        if let Some(v) = value.as_ref().filter(|_| free(key)) {
            target.clone_from(v);
        }
    };
    text("sdp.base_url", &mut sdp.base_url, &saved.base_url);
    text(
        "sdp.oauth_client_id",
        &mut sdp.oauth_client_id,
        &saved.oauth_client_id,
    );
    text(
        "sdp.oauth_accounts_url",
        &mut sdp.oauth_accounts_url,
        &saved.oauth_accounts_url,
    );
    let secret = |key: &str, target: &mut Secret, value: &Option<String>| {
        if let Some(v) = value.as_ref().filter(|_| free(key)) {
            *target = Secret::new(v.clone());
        }
    };
    secret("sdp.api_key", &mut sdp.api_key, &saved.api_key);
    secret(
        "sdp.oauth_client_secret",
        &mut sdp.oauth_client_secret,
        &saved.oauth_client_secret,
    );
    secret(
        "sdp.oauth_refresh_token",
        &mut sdp.oauth_refresh_token,
        &saved.oauth_refresh_token,
    );
    secret(
        "sdp.webhook_secret",
        &mut sdp.webhook_secret,
        &saved.webhook_secret,
    );
    if let Some(d) = saved.deployment.filter(|_| free("sdp.deployment")) {
        sdp.deployment = d;
    }
    if let Some(n) = saved
        .poll_interval_secs
        .filter(|_| free("sdp.poll_interval_secs"))
    {
        sdp.poll_interval_secs = n;
    }
    if let Some(m) = &saved.mapping {
        overlay_mapping(&mut sdp.mapping, m, &free);
    }
    sdp
}

fn overlay_mapping(target: &mut MappingConfig, saved: &MappingConfig, free: &dyn Fn(&str) -> bool) {
    let pairs: [(&str, &mut String, &String); 9] = [
        (
            "sdp.mapping.request_type_problem_report",
            &mut target.request_type_problem_report,
            &saved.request_type_problem_report,
        ),
        (
            "sdp.mapping.request_type_information_request",
            &mut target.request_type_information_request,
            &saved.request_type_information_request,
        ),
        (
            "sdp.mapping.priority_low",
            &mut target.priority_low,
            &saved.priority_low,
        ),
        (
            "sdp.mapping.priority_medium",
            &mut target.priority_medium,
            &saved.priority_medium,
        ),
        (
            "sdp.mapping.priority_high",
            &mut target.priority_high,
            &saved.priority_high,
        ),
        (
            "sdp.mapping.priority_urgent",
            &mut target.priority_urgent,
            &saved.priority_urgent,
        ),
        (
            "sdp.mapping.category",
            &mut target.category,
            &saved.category,
        ),
        (
            "sdp.mapping.template",
            &mut target.template,
            &saved.template,
        ),
        (
            "sdp.mapping.reopen_status",
            &mut target.reopen_status,
            &saved.reopen_status,
        ),
    ];
    for (key, to, from) in pairs {
        if free(key) {
            to.clone_from(from);
        }
    }
    if free("sdp.mapping.statuses") {
        target.statuses.clone_from(&saved.statuses);
    }
}

/// The names of the settings that differ between two saves (never their values: some are secrets).
pub fn changed_keys(before: &ConsoleSdp, after: &ConsoleSdp) -> Vec<String> {
    let (Ok(serde_json::Value::Object(before)), Ok(serde_json::Value::Object(after))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(*value))
        .map(|(key, _)| key.clone())
        .collect()
}

/// Checks an SDP configuration with the same rules as the configuration file.
pub fn validate(config: &Config, sdp: &SdpConfig) -> Result<(), ConfigError> {
    let mut candidate = config.clone();
    candidate.sdp = sdp.clone();
    candidate.validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_values_apply_except_where_the_configuration_fixes_them() {
        let mut config = Config::default();
        config.sdp.base_url = "https://sdp.from-file.example".into();
        config.fixed.insert(
            "sdp.base_url".into(),
            "/etc/deskbridge/deskbridge.toml".into(),
        );
        let mut mapping = MappingConfig::default();
        mapping.statuses.insert("Waiting".into(), "pending".into());
        mapping.priority_high = "P1".into();
        let saved = ConsoleSdp {
            base_url: Some("https://sdp.from-console.example".into()),
            api_key: Some("console-key".into()),
            poll_interval_secs: Some(15),
            mapping: Some(mapping),
            ..ConsoleSdp::default()
        };
        let sdp = effective(&config, &saved);
        assert_eq!(sdp.base_url, "https://sdp.from-file.example");
        assert_eq!(sdp.api_key.expose(), "console-key");
        assert_eq!(sdp.poll_interval_secs, 15);
        assert_eq!(sdp.mapping.priority_high, "P1");
        assert_eq!(
            sdp.mapping.statuses.get("Waiting").map(String::as_str),
            Some("pending")
        );
        assert_eq!(
            effective(&config, &ConsoleSdp::default()).api_key.expose(),
            ""
        );
    }

    #[test]
    fn changed_keys_name_what_differs_and_nothing_else() {
        let before = ConsoleSdp {
            base_url: Some("https://a.example".into()),
            api_key: Some("old-key".into()),
            ..ConsoleSdp::default()
        };
        let after = ConsoleSdp {
            api_key: Some("new-key".into()),
            poll_interval_secs: Some(10),
            ..before.clone()
        };
        assert_eq!(
            changed_keys(&before, &after),
            ["api_key", "poll_interval_secs"]
        );
        assert!(changed_keys(&after, &after).is_empty());
    }

    #[test]
    fn the_file_fixes_only_what_it_changes_from_the_default() {
        use figment::Figment;
        use figment::providers::{Format, Serialized, Toml};
        let figment = Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(
            "[sdp]\nbase_url = \"https://sdp.example\"\napi_key = \"k\"\npoll_interval_secs = 30\n",
        ));
        let config = Config::from_figment(&figment).unwrap();
        assert!(config.fixed.contains_key("sdp.base_url"));
        // 30 is the default: restating it leaves the key to the console.
        assert!(!config.fixed.contains_key("sdp.poll_interval_secs"));
    }
}
