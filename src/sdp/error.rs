//! What can go wrong talking to SDP, and what the sync workers should do about it.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SdpError {
    /// The call never reached SDP (refused, DNS, TLS): nothing happened there.
    #[error("cannot connect to ServiceDesk Plus: {0}")]
    Connect(String),
    /// The call was sent but no complete answer came back (timeout, dropped connection): SDP may
    /// or may not have applied it, so it must not be blindly repeated.
    #[error("no answer from ServiceDesk Plus: {0}")]
    NoAnswer(String),
    /// HTTP 429 or code 4015.
    #[error("ServiceDesk Plus is rate limiting (HTTP {status})")]
    RateLimited {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// HTTP 401 or code 4022, after one token refresh where that applies.
    #[error("ServiceDesk Plus refused the credentials: {0}")]
    Auth(String),
    #[error("ServiceDesk Plus answered HTTP {status}{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Api {
        status: u16,
        code: Option<u32>,
        message: String,
        fields: Vec<String>,
    },
    #[error("unexpected answer from ServiceDesk Plus: {0}")]
    Decode(String),
    /// The request was merged into another (SDP answers 404 / 4007 naming the parent request).
    #[error("the request was merged into SDP request {into}")]
    Merged { into: String },
}

/// SDP's codes that deskbridge acts on.
pub(crate) const INVALID_VALUE: u32 = 4001;
pub(crate) const RATE_LIMIT: u32 = 4015;
pub(crate) const INVALID_KEY: u32 = 4022;
pub(crate) const NOT_FOUND: u32 = 4007;

impl SdpError {
    /// Whether waiting and trying again may succeed: transport failures, rate limits, 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            SdpError::Connect(_) | SdpError::NoAnswer(_) | SdpError::RateLimited { .. } => true,
            SdpError::Api { status, code, .. } => *status >= 500 || *code == Some(4004),
            SdpError::Auth(_) | SdpError::Decode(_) | SdpError::Merged { .. } => false,
        }
    }

    /// Whether SDP may have applied the call although no answer arrived.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, SdpError::NoAnswer(_))
            || matches!(self, SdpError::Api { status, .. } if *status == 502 || *status == 504)
    }

    /// Whether SDP says the request is not there (404 / 4007): deleted, trashed on builds that
    /// hide trashed requests, or an address SDP does not serve (callers confirm with a list).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            SdpError::Api {
                status: 404,
                code: Some(NOT_FOUND),
                ..
            }
        )
    }

    pub fn code(&self) -> Option<u32> {
        match self {
            SdpError::Api { code, .. } => *code,
            SdpError::RateLimited { .. } => Some(RATE_LIMIT),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: u32) -> SdpError {
        SdpError::Api {
            status,
            code: Some(code),
            message: String::new(),
            fields: Vec::new(),
        }
    }

    #[test]
    fn retryable_versus_final() {
        assert!(SdpError::Connect("refused".into()).is_retryable());
        assert!(SdpError::NoAnswer("timeout".into()).is_retryable());
        assert!(
            SdpError::RateLimited {
                status: 429,
                retry_after: None
            }
            .is_retryable()
        );
        assert!(api(503, 4000).is_retryable());
        // Invalid value, forbidden, closure rule, mandatory field, not found.
        for code in [INVALID_VALUE, 4002, 4003, 4012, 4007] {
            assert!(!api(400, code).is_retryable(), "{code}");
        }
        assert!(!SdpError::Auth("bad key".into()).is_retryable());
        assert!(SdpError::NoAnswer("dropped".into()).outcome_unknown());
        assert!(!SdpError::Connect("refused".into()).outcome_unknown());
    }
}
