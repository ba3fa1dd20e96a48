//! `[oidc]`: single sign-on with an `OpenID Connect` provider (off while `issuer_url` is empty).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Secret, invalid, lossy_string, validate::http_url};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer; discovery reads `<issuer_url>/.well-known/openid-configuration`.
    #[serde(deserialize_with = "lossy_string")]
    pub issuer_url: String,
    #[serde(deserialize_with = "lossy_string")]
    pub client_id: String,
    pub client_secret: Secret,
    pub client_secret_file: PathBuf,
    /// Space-separated; must include `openid`.
    #[serde(deserialize_with = "lossy_string")]
    pub scopes: String,
    /// A claim whose text value becomes the customer's organisation; empty: none.
    #[serde(deserialize_with = "lossy_string")]
    pub organization_claim: String,
    /// Names the provider on the sign-in button; empty: a generic label.
    #[serde(deserialize_with = "lossy_string")]
    pub button_label: String,
    /// Customers sign in only through the provider; admins keep their local password.
    pub customers_sso_only: bool,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer_url: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_file: PathBuf::new(),
            scopes: "openid email profile".into(),
            organization_claim: String::new(),
            button_label: String::new(),
            customers_sso_only: false,
        }
    }
}

/// Longest button label, in characters: it has to fit on one line of the sign-in page.
const LABEL_MAX_CHARS: usize = 60;

impl OidcConfig {
    pub fn enabled(&self) -> bool {
        !self.issuer_url.is_empty()
    }

    /// The scopes to ask for, `openid` first.
    pub fn scope_list(&self) -> impl Iterator<Item = &str> {
        self.scopes.split_whitespace()
    }
}

impl Config {
    pub(super) fn validate_oidc(&self) -> Result<(), ConfigError> {
        let oidc = &self.oidc;
        if !oidc.enabled() {
            if oidc.customers_sso_only {
                return Err(invalid(
                    "oidc.customers_sso_only",
                    "needs oidc.issuer_url: without a provider customers could not sign in",
                ));
            }
            return Ok(());
        }
        let url = http_url(&oidc.issuer_url).map_err(|m| invalid("oidc.issuer_url", m))?;
        let host = url.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if url.scheme() != "https" && !loopback {
            return Err(invalid(
                "oidc.issuer_url",
                "must be an https:// URL (plain http only for a provider on this machine)",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "oidc.issuer_url",
                "must have no query or fragment, e.g. https://id.example.com/realms/cloudeka",
            ));
        }
        if oidc.client_id.trim().is_empty() {
            return Err(invalid(
                "oidc.client_id",
                "must be set when oidc.issuer_url is (the client registered at the provider)",
            ));
        }
        if !oidc.scope_list().any(|s| s == "openid") {
            return Err(invalid(
                "oidc.scopes",
                "must include openid, e.g. \"openid email profile\"",
            ));
        }
        if oidc.organization_claim.chars().any(char::is_whitespace) {
            return Err(invalid(
                "oidc.organization_claim",
                "must be one claim name, without spaces",
            ));
        }
        if oidc.button_label.chars().count() > LABEL_MAX_CHARS {
            return Err(invalid(
                "oidc.button_label",
                format!("must be at most {LABEL_MAX_CHARS} characters"),
            ));
        }
        Ok(())
    }
}
