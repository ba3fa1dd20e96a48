//! Zoho OAuth for SDP Cloud: access tokens come from the refresh token, are cached until shortly
//! before they expire, and are refreshed at most once per rejected call.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::SdpError;
use crate::config::Secret;

/// Refresh this long before the token's stated expiry, so a call never carries a dying token.
const EARLY: Duration = Duration::from_mins(1);

pub(super) struct OAuth {
    pub accounts_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    cached: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
}

impl OAuth {
    pub(super) fn new(
        accounts_url: String,
        client_id: String,
        client_secret: Secret,
        refresh_token: Secret,
    ) -> OAuth {
        OAuth {
            accounts_url,
            client_id,
            client_secret,
            refresh_token,
            cached: Mutex::new(None),
        }
    }

    /// A valid access token: the cached one, or a fresh one. `stale` is the token a call was just
    /// refused with; it is replaced only if it is still the cached one (one refresh for many callers).
    pub(super) async fn token(
        &self,
        http: &reqwest::Client,
        stale: Option<&str>,
    ) -> Result<String, SdpError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
            && stale != Some(token.as_str())
        {
            return Ok(token.clone());
        }
        let url = format!("{}/oauth/v2/token", self.accounts_url.trim_end_matches('/'));
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", self.refresh_token.expose()),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        let response = http.post(&url).form(&form).send().await.map_err(|e| {
            if e.is_connect() {
                SdpError::Connect(format!("Zoho accounts: {e}"))
            } else {
                SdpError::NoAnswer(format!("Zoho accounts: {e}"))
            }
        })?;
        let status = response.status();
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|e| SdpError::Decode(format!("Zoho token answer (HTTP {status}): {e}")))?;
        // Zoho reports errors in the body, sometimes with HTTP 200.
        if let Some(error) = answer.error {
            return Err(SdpError::Auth(format!(
                "Zoho refused the refresh token: {error}"
            )));
        }
        let token = answer
            .access_token
            .ok_or_else(|| SdpError::Decode("Zoho token answer without access_token".into()))?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600)).saturating_sub(EARLY);
        *cached = Some((token.clone(), Instant::now() + lifetime));
        tracing::debug!("sdp cloud access token refreshed");
        Ok(token)
    }
}
