//! Settings an admin edits in the console: the SDP connection and the mapping. They are stored in
//! the store and laid over the configuration, key by key, except where the configuration file or
//! the environment fixes a key (`Config::fixed`): those stay as configured and show read-only.
//! Which keys exist, and how each reads and writes the configuration, is [`ConsoleKey`]'s table.

use std::collections::BTreeMap;

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{Config, ConfigError, ConsoleKey, SdpConfig, ValueKind};
use crate::store::{Store, StoreError};

pub(crate) mod seal;

pub(crate) use seal::SecretKey;

/// The name under which the console's SDP settings are stored.
const SDP: &str = "sdp";

/// What the console saved; a key not here keeps the configured value.
///
/// Stored as `{"base_url": …, "api_key": …, "mapping": {"category": …, "statuses": {…}}}`, the
/// shape earlier versions wrote; names that are not console keys are ignored when read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ConsoleSdp {
    values: BTreeMap<ConsoleKey, Value>,
}

impl ConsoleSdp {
    #[cfg(test)]
    fn get(&self, key: ConsoleKey) -> Option<&Value> {
        self.values.get(&key)
    }

    /// Saves `value` for `key` once it fits the key, in the key's own form (`"45"` → `45`).
    pub(crate) fn set(&mut self, key: ConsoleKey, value: &Value) -> Result<(), String> {
        let mut probe = SdpConfig::default();
        key.set(&mut probe, value)?;
        self.values.insert(key, key.get(&probe));
        Ok(())
    }

    /// The keys whose values differ between two saves (never the values: some are secrets).
    pub(crate) fn changed_keys(&self, after: &ConsoleSdp) -> Vec<ConsoleKey> {
        ConsoleKey::ALL
            .into_iter()
            .filter(|k| self.values.get(k) != after.values.get(k))
            .collect()
    }
}

impl Serialize for ConsoleSdp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut top = Map::new();
        let mut mapping = Map::new();
        for (key, value) in &self.values {
            let target = if key.is_mapping() {
                &mut mapping
            } else {
                &mut top
            };
            target.insert(key.field().to_owned(), value.clone());
        }
        if !mapping.is_empty() {
            top.insert("mapping".into(), Value::Object(mapping));
        }
        Value::Object(top).serialize(s)
    }
}

impl<'de> Deserialize<'de> for ConsoleSdp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Value::Object(top) = Value::deserialize(d)? else {
            return Ok(ConsoleSdp::default());
        };
        let mut saved = ConsoleSdp::default();
        for (name, value) in top {
            if name == "mapping" {
                for (name, value) in value.as_object().into_iter().flatten() {
                    if let Some(key) = ConsoleKey::from_field(name, true) {
                        saved.keep(key, value);
                    }
                }
            } else if let Some(key) = ConsoleKey::from_field(&name, false) {
                saved.keep(key, &value);
            }
        }
        Ok(saved)
    }
}

impl ConsoleSdp {
    /// Keeps a stored value that fits its key; `null` (never saved) and misfits are dropped.
    fn keep(&mut self, key: ConsoleKey, value: &Value) {
        if !value.is_null() && self.set(key, value).is_err() {
            tracing::warn!(key = %key.key(), "a stored console setting does not fit its key; ignored");
        }
    }

    /// Forgets a saved value: the configured one applies again.
    pub(crate) fn remove(&mut self, key: ConsoleKey) {
        self.values.remove(&key);
    }

    /// Whether the console holds a value for `key`.
    pub(crate) fn has(&self, key: ConsoleKey) -> bool {
        self.values
            .get(&key)
            .is_some_and(|v| v.as_str().is_none_or(|s| !s.is_empty()))
    }
}

/// The secret keys, each stored at the top level under its field name.
fn secret_keys() -> impl Iterator<Item = ConsoleKey> {
    ConsoleKey::ALL
        .into_iter()
        .filter(|k| k.kind() == ValueKind::Secret)
}

/// What the console saved, its secrets opened. A secret that does not open (another key sealed it)
/// is left out and logged, so the admin enters it again rather than the appliance refusing to start.
pub(crate) fn load(store: &Store, key: &SecretKey) -> Result<ConsoleSdp, StoreError> {
    let Some(mut raw) = store.setting::<Value>(SDP)? else {
        return Ok(ConsoleSdp::default());
    };
    if let Value::Object(top) = &mut raw {
        for secret in secret_keys() {
            let name = secret.key();
            let Some(Value::String(stored)) = top.get_mut(secret.field()) else {
                continue;
            };
            if !seal::is_sealed(stored) {
                continue;
            }
            match key.open(&name, stored) {
                Ok(clear) => *stored = clear,
                Err(e) => {
                    tracing::error!(key = %name, error = %e, "a saved secret does not open with the secret key (storage.secret_key_file); enter it again in the console");
                    top.remove(secret.field());
                }
            }
        }
    }
    Ok(serde_json::from_value(raw).unwrap_or_default())
}

/// Saves the console's settings, every secret sealed.
pub(crate) fn save(
    store: &Store,
    key: &SecretKey,
    settings: &ConsoleSdp,
) -> Result<(), StoreError> {
    let mut raw = serde_json::to_value(settings).expect("console settings serialize to JSON");
    if let Value::Object(top) = &mut raw {
        for secret in secret_keys() {
            if let Some(Value::String(clear)) = top.get_mut(secret.field())
                && !clear.is_empty()
            {
                *clear = key.seal(&secret.key(), clear);
            }
        }
    }
    store.put_setting(SDP, &raw)
}

/// Seals the secrets an earlier version saved in clear text; true when there were any.
pub(crate) fn seal_clear_text(store: &Store, key: &SecretKey) -> Result<bool, StoreError> {
    let Some(Value::Object(top)) = store.setting::<Value>(SDP)? else {
        return Ok(false);
    };
    let clear = secret_keys().any(|k| {
        top.get(k.field())
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty() && !seal::is_sealed(s))
    });
    if clear {
        save(store, key, &load(store, key)?)?;
    }
    Ok(clear)
}

/// The SDP configuration in force: the configuration, with the console's values where allowed.
pub(crate) fn effective(config: &Config, saved: &ConsoleSdp) -> SdpConfig {
    let mut sdp = config.sdp.clone();
    for (key, value) in &saved.values {
        if !config.fixed.contains_key(&key.key()) {
            // Stored values were checked when they were kept.
            let _ = key.set(&mut sdp, value);
        }
    }
    sdp
}

/// Checks an SDP configuration with the same rules as the configuration file.
pub(crate) fn validate(config: &Config, sdp: &SdpConfig) -> Result<(), ConfigError> {
    let mut candidate = config.clone();
    candidate.sdp = sdp.clone();
    candidate.validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(pairs: &[(ConsoleKey, Value)]) -> ConsoleSdp {
        let mut s = ConsoleSdp::default();
        for (k, v) in pairs {
            s.set(*k, v).unwrap();
        }
        s
    }

    #[test]
    fn saved_values_apply_except_where_the_configuration_fixes_them() {
        let mut config = Config::default();
        config.sdp.base_url = "https://sdp.from-file.example".into();
        config.fixed.insert(
            "sdp.base_url".into(),
            "/etc/deskbridge/deskbridge.toml".into(),
        );
        let saved = saved(&[
            (
                ConsoleKey::BaseUrl,
                "https://sdp.from-console.example".into(),
            ),
            (ConsoleKey::ApiKey, "console-key".into()),
            (ConsoleKey::PollIntervalSecs, 15.into()),
            (ConsoleKey::PriorityHigh, "P1".into()),
            (
                ConsoleKey::Statuses,
                serde_json::json!({"Waiting": "pending"}),
            ),
        ]);
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
        let before = saved(&[
            (ConsoleKey::BaseUrl, "https://a.example".into()),
            (ConsoleKey::ApiKey, "old-key".into()),
        ]);
        let mut after = before.clone();
        after.set(ConsoleKey::ApiKey, &"new-key".into()).unwrap();
        after.set(ConsoleKey::PollIntervalSecs, &10.into()).unwrap();
        assert_eq!(
            before.changed_keys(&after),
            [ConsoleKey::ApiKey, ConsoleKey::PollIntervalSecs]
        );
        assert!(after.changed_keys(&after).is_empty());
    }

    #[test]
    fn the_stored_shape_is_the_one_earlier_versions_wrote() {
        // As written before the table existed: the mapping whole, with a key the console never edits.
        let stored = serde_json::json!({
            "base_url": "https://sdp.example", "deployment": "cloud", "api_key": null,
            "poll_interval_secs": 45,
            "mapping": {"category": "Cloud", "number_udf": "udf_sline_1", "statuses": {"Waiting": "pending"}},
        });
        let read: ConsoleSdp = serde_json::from_value(stored).unwrap();
        assert_eq!(
            read.get(ConsoleKey::BaseUrl),
            Some(&Value::from("https://sdp.example"))
        );
        assert_eq!(read.get(ConsoleKey::ApiKey), None);
        assert_eq!(
            read.get(ConsoleKey::PollIntervalSecs),
            Some(&Value::from(45))
        );
        assert_eq!(read.get(ConsoleKey::Category), Some(&Value::from("Cloud")));
        let written = serde_json::to_value(&read).unwrap();
        assert_eq!(written["mapping"]["statuses"]["Waiting"], "pending");
        assert_eq!(written["deployment"], "cloud");
        assert!(written["mapping"].get("number_udf").is_none());
        let again: ConsoleSdp = serde_json::from_value(written).unwrap();
        assert_eq!(again, read);
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
