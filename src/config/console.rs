//! The settings an admin may edit in the console, as one table: each key's configuration name, its
//! form field (also its stored name and its label's message id), what kind of value it holds, and
//! how it reads and writes [`SdpConfig`]. The configuration (which keys the file fixes), the stored
//! console settings, the console's forms and the translation test all go through it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Deployment, SdpConfig, Secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConsoleKey {
    BaseUrl,
    Deployment,
    ApiKey,
    OauthClientId,
    OauthClientSecret,
    OauthRefreshToken,
    OauthAccountsUrl,
    PollIntervalSecs,
    WebhookSecret,
    RequestTypeProblemReport,
    RequestTypeInformationRequest,
    PriorityLow,
    PriorityMedium,
    PriorityHigh,
    PriorityUrgent,
    Category,
    Template,
    ReopenStatus,
    Statuses,
}

/// What a console key holds, and so how the console edits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    /// Never shown; an empty field keeps the stored value.
    Secret,
    /// A whole number of seconds, at least 1.
    Seconds,
    /// `on_prem` or `cloud`.
    Deployment,
    /// An SDP name, chosen from the SDP list of this name (`request_types`, `statuses`, …).
    SdpName(&'static str),
    /// SDP status name → portal status.
    StatusMap,
}

impl ConsoleKey {
    pub const ALL: [ConsoleKey; 19] = [
        ConsoleKey::BaseUrl,
        ConsoleKey::Deployment,
        ConsoleKey::ApiKey,
        ConsoleKey::OauthClientId,
        ConsoleKey::OauthClientSecret,
        ConsoleKey::OauthRefreshToken,
        ConsoleKey::OauthAccountsUrl,
        ConsoleKey::PollIntervalSecs,
        ConsoleKey::WebhookSecret,
        ConsoleKey::RequestTypeProblemReport,
        ConsoleKey::RequestTypeInformationRequest,
        ConsoleKey::PriorityLow,
        ConsoleKey::PriorityMedium,
        ConsoleKey::PriorityHigh,
        ConsoleKey::PriorityUrgent,
        ConsoleKey::Category,
        ConsoleKey::Template,
        ConsoleKey::ReopenStatus,
        ConsoleKey::Statuses,
    ];

    /// The table: form field (and stored name, and label id) and kind.
    fn spec(self) -> (&'static str, ValueKind) {
        use ConsoleKey as K;
        use ValueKind as V;
        match self {
            K::BaseUrl => ("base_url", V::Text),
            K::Deployment => ("deployment", V::Deployment),
            K::ApiKey => ("api_key", V::Secret),
            K::OauthClientId => ("oauth_client_id", V::Text),
            K::OauthClientSecret => ("oauth_client_secret", V::Secret),
            K::OauthRefreshToken => ("oauth_refresh_token", V::Secret),
            K::OauthAccountsUrl => ("oauth_accounts_url", V::Text),
            K::PollIntervalSecs => ("poll_interval_secs", V::Seconds),
            K::WebhookSecret => ("webhook_secret", V::Secret),
            K::RequestTypeProblemReport => {
                ("request_type_problem_report", V::SdpName("request_types"))
            }
            K::RequestTypeInformationRequest => (
                "request_type_information_request",
                V::SdpName("request_types"),
            ),
            K::PriorityLow => ("priority_low", V::SdpName("priorities")),
            K::PriorityMedium => ("priority_medium", V::SdpName("priorities")),
            K::PriorityHigh => ("priority_high", V::SdpName("priorities")),
            K::PriorityUrgent => ("priority_urgent", V::SdpName("priorities")),
            K::Category => ("category", V::SdpName("categories")),
            K::Template => ("template", V::SdpName("request_templates")),
            K::ReopenStatus => ("reopen_status", V::SdpName("statuses")),
            K::Statuses => ("statuses", V::StatusMap),
        }
    }

    /// The form field, stored name and label message id (`base_url`).
    pub fn field(self) -> &'static str {
        self.spec().0
    }

    pub fn kind(self) -> ValueKind {
        self.spec().1
    }

    /// Part of the mapping (`sdp.mapping.*`) rather than the connection (`sdp.*`).
    pub fn is_mapping(self) -> bool {
        matches!(self.kind(), ValueKind::SdpName(_) | ValueKind::StatusMap)
    }

    /// The configuration key (`sdp.base_url`, `sdp.mapping.category`).
    pub fn key(self) -> String {
        if self.is_mapping() {
            format!("sdp.mapping.{}", self.field())
        } else {
            format!("sdp.{}", self.field())
        }
    }

    /// The key whose form field or stored name is `field`, within the mapping or not.
    pub fn from_field(field: &str, mapping: bool) -> Option<ConsoleKey> {
        ConsoleKey::ALL
            .into_iter()
            .find(|k| k.field() == field && k.is_mapping() == mapping)
    }

    /// The value in force, as stored (a secret's too: callers decide what to show).
    pub fn get(self, sdp: &SdpConfig) -> Value {
        // The accessors below are the one place that names each field; reading goes through them
        // on a copy (a few small strings) so the table is not written twice.
        let mut copy = sdp.clone();
        match self.slot(&mut copy) {
            Slot::Text(s) => Value::String(s.clone()),
            Slot::Secret(s) => Value::String(s.expose().to_owned()),
            Slot::Seconds(n) => Value::from(*n),
            Slot::Deployment(d) => Value::String(deployment_name(*d).to_owned()),
            Slot::Statuses(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        }
    }

    /// Sets the key from a stored or submitted value; says why a value does not fit.
    pub fn set(self, sdp: &mut SdpConfig, value: &Value) -> Result<(), String> {
        match (self.slot(sdp), value) {
            (Slot::Text(s), Value::String(v)) => s.clone_from(v),
            (Slot::Secret(s), Value::String(v)) => *s = Secret::new(v.clone()),
            (Slot::Seconds(n), v) => {
                let parsed = match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                *n = parsed
                    .filter(|n| *n >= 1)
                    .ok_or("must be a whole number of seconds, at least 1")?;
            }
            (Slot::Deployment(d), Value::String(v)) => {
                *d = match v.as_str() {
                    "on_prem" => Deployment::OnPrem,
                    "cloud" => Deployment::Cloud,
                    _ => return Err("must be on_prem or cloud".into()),
                };
            }
            (Slot::Statuses(map), Value::Object(given)) => {
                let mut statuses = BTreeMap::new();
                for (name, to) in given {
                    let to = to.as_str().ok_or("maps SDP statuses to portal statuses")?;
                    statuses.insert(name.clone(), to.to_owned());
                }
                *map = statuses;
            }
            _ => return Err("has the wrong type".into()),
        }
        Ok(())
    }

    fn slot(self, sdp: &mut SdpConfig) -> Slot<'_> {
        use ConsoleKey as K;
        let m = &mut sdp.mapping;
        match self {
            K::BaseUrl => Slot::Text(&mut sdp.base_url),
            K::Deployment => Slot::Deployment(&mut sdp.deployment),
            K::ApiKey => Slot::Secret(&mut sdp.api_key),
            K::OauthClientId => Slot::Text(&mut sdp.oauth_client_id),
            K::OauthClientSecret => Slot::Secret(&mut sdp.oauth_client_secret),
            K::OauthRefreshToken => Slot::Secret(&mut sdp.oauth_refresh_token),
            K::OauthAccountsUrl => Slot::Text(&mut sdp.oauth_accounts_url),
            K::PollIntervalSecs => Slot::Seconds(&mut sdp.poll_interval_secs),
            K::WebhookSecret => Slot::Secret(&mut sdp.webhook_secret),
            K::RequestTypeProblemReport => Slot::Text(&mut m.request_type_problem_report),
            K::RequestTypeInformationRequest => Slot::Text(&mut m.request_type_information_request),
            K::PriorityLow => Slot::Text(&mut m.priority_low),
            K::PriorityMedium => Slot::Text(&mut m.priority_medium),
            K::PriorityHigh => Slot::Text(&mut m.priority_high),
            K::PriorityUrgent => Slot::Text(&mut m.priority_urgent),
            K::Category => Slot::Text(&mut m.category),
            K::Template => Slot::Text(&mut m.template),
            K::ReopenStatus => Slot::Text(&mut m.reopen_status),
            K::Statuses => Slot::Statuses(&mut m.statuses),
        }
    }
}

/// Where a key's value lives in [`SdpConfig`].
enum Slot<'a> {
    Text(&'a mut String),
    Secret(&'a mut Secret),
    Seconds(&'a mut u64),
    Deployment(&'a mut Deployment),
    Statuses(&'a mut BTreeMap<String, String>),
}

pub fn deployment_name(d: Deployment) -> &'static str {
    match d {
        Deployment::OnPrem => "on_prem",
        Deployment::Cloud => "cloud",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_reads_back_what_it_was_set_to() {
        for key in ConsoleKey::ALL {
            let mut sdp = SdpConfig::default();
            let value = match key.kind() {
                ValueKind::Seconds => Value::from(17u64),
                ValueKind::Deployment => Value::from("cloud"),
                ValueKind::StatusMap => serde_json::json!({"Waiting": "pending"}),
                _ => Value::from(format!("value of {}", key.field())),
            };
            key.set(&mut sdp, &value).unwrap();
            assert_eq!(key.get(&sdp), value, "{key:?}");
            // No other key moved.
            for other in ConsoleKey::ALL.into_iter().filter(|k| *k != key) {
                assert_eq!(
                    other.get(&sdp),
                    other.get(&SdpConfig::default()),
                    "{key:?} moved {other:?}"
                );
            }
        }
    }

    #[test]
    fn fields_are_unique_within_their_group_and_keys_name_the_config() {
        let mut seen = std::collections::BTreeSet::new();
        for key in ConsoleKey::ALL {
            assert!(seen.insert(key.key()), "{key:?}");
            assert_eq!(
                ConsoleKey::from_field(key.field(), key.is_mapping()),
                Some(key)
            );
        }
        assert_eq!(ConsoleKey::BaseUrl.key(), "sdp.base_url");
        assert_eq!(ConsoleKey::Category.key(), "sdp.mapping.category");
    }

    #[test]
    fn wrong_values_are_refused() {
        let mut sdp = SdpConfig::default();
        assert!(
            ConsoleKey::PollIntervalSecs
                .set(&mut sdp, &Value::from("soon"))
                .is_err()
        );
        assert!(
            ConsoleKey::PollIntervalSecs
                .set(&mut sdp, &Value::from(0u64))
                .is_err()
        );
        assert!(
            ConsoleKey::Deployment
                .set(&mut sdp, &Value::from("hybrid"))
                .is_err()
        );
        assert!(
            ConsoleKey::BaseUrl
                .set(&mut sdp, &Value::from(3u64))
                .is_err()
        );
        assert_eq!(
            sdp.poll_interval_secs,
            SdpConfig::default().poll_interval_secs
        );
    }
}
