//! The one mapping from errors to HTTP: a status and `{"error": {"code", "message", "fields"?}}`.
//! Every code the API answers with is an [`ErrorCode`], with its status beside it in one table.
//! Codes are kebab-case and stable once shipped; clients branch on them, not on messages.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DomainError, TransitionError, Validation};
use crate::store::{OpError, StoreError};

/// Every error the API can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // The request itself.
    BadRequest,
    InvalidQuery,
    InvalidHeader,
    InvalidField,
    InvalidAction,
    MalformedJson,
    MalformedMultipart,
    UnsupportedMediaType,
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
    // Who asks.
    Unauthenticated,
    InvalidCredentials,
    TooManyAttempts,
    Forbidden,
    CsrfTokenInvalid,
    CrossOrigin,
    TokenForAnotherAccount,
    TooManyStreams,
    AccountDisabled,
    OnBehalfOfNotAllowed,
    OnBehalfOfRequired,
    OnBehalfOfNotCustomer,
    CustomerUnknown,
    InvalidSetupToken,
    SetupDone,
    SsoOff,
    SsoUnavailable,
    SsoStateInvalid,
    SsoDenied,
    SsoTokenRefused,
    SsoEmailUnverified,
    SsoNotCustomer,
    SsoOnly,
    // Tickets.
    TicketNotFound,
    AttachmentNotFound,
    AttachmentTooLarge,
    TooManyFiles,
    InvalidTransition,
    ReopenWindowExpired,
    IdempotencyKeyReused,
    TicketFrozen,
    // Accounts.
    EmailTaken,
    UserNotFound,
    SelfDisable,
    // Organisations and sharing.
    OrganizationNotFound,
    OrganizationNameTaken,
    DomainTaken,
    SharingOff,
    NotAColleague,
    // Sync and operations.
    SyncOff,
    InvalidWebhookSecret,
    DeadLetterNotFound,
    BackupInProgress,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 56] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidHeader,
        ErrorCode::InvalidField,
        ErrorCode::InvalidAction,
        ErrorCode::MalformedJson,
        ErrorCode::MalformedMultipart,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Unauthenticated,
        ErrorCode::InvalidCredentials,
        ErrorCode::TooManyAttempts,
        ErrorCode::Forbidden,
        ErrorCode::CsrfTokenInvalid,
        ErrorCode::CrossOrigin,
        ErrorCode::TokenForAnotherAccount,
        ErrorCode::TooManyStreams,
        ErrorCode::AccountDisabled,
        ErrorCode::OnBehalfOfNotAllowed,
        ErrorCode::OnBehalfOfRequired,
        ErrorCode::OnBehalfOfNotCustomer,
        ErrorCode::CustomerUnknown,
        ErrorCode::InvalidSetupToken,
        ErrorCode::SetupDone,
        ErrorCode::SsoOff,
        ErrorCode::SsoUnavailable,
        ErrorCode::SsoStateInvalid,
        ErrorCode::SsoDenied,
        ErrorCode::SsoTokenRefused,
        ErrorCode::SsoEmailUnverified,
        ErrorCode::SsoNotCustomer,
        ErrorCode::SsoOnly,
        ErrorCode::TicketNotFound,
        ErrorCode::AttachmentNotFound,
        ErrorCode::AttachmentTooLarge,
        ErrorCode::TooManyFiles,
        ErrorCode::InvalidTransition,
        ErrorCode::ReopenWindowExpired,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::TicketFrozen,
        ErrorCode::EmailTaken,
        ErrorCode::UserNotFound,
        ErrorCode::SelfDisable,
        ErrorCode::OrganizationNotFound,
        ErrorCode::OrganizationNameTaken,
        ErrorCode::DomainTaken,
        ErrorCode::SharingOff,
        ErrorCode::NotAColleague,
        ErrorCode::SyncOff,
        ErrorCode::InvalidWebhookSecret,
        ErrorCode::DeadLetterNotFound,
        ErrorCode::BackupInProgress,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The table: each code's wire name and HTTP status.
    fn spec(self) -> (&'static str, StatusCode) {
        use ErrorCode as E;
        match self {
            E::BadRequest => ("bad-request", StatusCode::BAD_REQUEST),
            E::InvalidQuery => ("invalid-query", StatusCode::BAD_REQUEST),
            E::InvalidHeader => ("invalid-header", StatusCode::BAD_REQUEST),
            E::InvalidField => ("invalid-field", StatusCode::UNPROCESSABLE_ENTITY),
            E::InvalidAction => ("invalid-action", StatusCode::BAD_REQUEST),
            E::MalformedJson => ("malformed-json", StatusCode::BAD_REQUEST),
            E::MalformedMultipart => ("malformed-multipart", StatusCode::BAD_REQUEST),
            E::UnsupportedMediaType => {
                ("unsupported-media-type", StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            E::PayloadTooLarge => ("payload-too-large", StatusCode::PAYLOAD_TOO_LARGE),
            E::NotFound => ("not-found", StatusCode::NOT_FOUND),
            E::MethodNotAllowed => ("method-not-allowed", StatusCode::METHOD_NOT_ALLOWED),
            E::Unauthenticated => ("unauthenticated", StatusCode::UNAUTHORIZED),
            E::InvalidCredentials => ("invalid-credentials", StatusCode::UNAUTHORIZED),
            E::TooManyAttempts => ("too-many-attempts", StatusCode::TOO_MANY_REQUESTS),
            E::Forbidden => ("forbidden", StatusCode::FORBIDDEN),
            E::CsrfTokenInvalid => ("csrf-token-invalid", StatusCode::FORBIDDEN),
            E::CrossOrigin => ("cross-origin", StatusCode::FORBIDDEN),
            E::TokenForAnotherAccount => ("token-for-another-account", StatusCode::FORBIDDEN),
            E::TooManyStreams => ("too-many-streams", StatusCode::TOO_MANY_REQUESTS),
            E::AccountDisabled => ("account-disabled", StatusCode::FORBIDDEN),
            E::OnBehalfOfNotAllowed => ("on-behalf-of-not-allowed", StatusCode::FORBIDDEN),
            E::OnBehalfOfRequired => ("on-behalf-of-required", StatusCode::FORBIDDEN),
            E::OnBehalfOfNotCustomer => ("on-behalf-of-not-customer", StatusCode::FORBIDDEN),
            E::CustomerUnknown => ("customer-unknown", StatusCode::UNPROCESSABLE_ENTITY),
            E::InvalidSetupToken => ("invalid-setup-token", StatusCode::FORBIDDEN),
            E::SetupDone => ("setup-done", StatusCode::CONFLICT),
            E::SsoOff => ("sso-off", StatusCode::NOT_FOUND),
            E::SsoUnavailable => ("sso-unavailable", StatusCode::SERVICE_UNAVAILABLE),
            E::SsoStateInvalid => ("sso-state-invalid", StatusCode::BAD_REQUEST),
            E::SsoDenied => ("sso-denied", StatusCode::UNAUTHORIZED),
            E::SsoTokenRefused => ("sso-token-refused", StatusCode::UNAUTHORIZED),
            E::SsoEmailUnverified => ("sso-email-unverified", StatusCode::CONFLICT),
            E::SsoNotCustomer => ("sso-not-customer", StatusCode::FORBIDDEN),
            E::SsoOnly => ("sso-only", StatusCode::FORBIDDEN),
            E::TicketNotFound => ("ticket-not-found", StatusCode::NOT_FOUND),
            E::AttachmentNotFound => ("attachment-not-found", StatusCode::NOT_FOUND),
            E::AttachmentTooLarge => ("attachment-too-large", StatusCode::PAYLOAD_TOO_LARGE),
            E::TooManyFiles => ("too-many-files", StatusCode::UNPROCESSABLE_ENTITY),
            E::InvalidTransition => ("invalid-transition", StatusCode::CONFLICT),
            E::ReopenWindowExpired => ("reopen-window-expired", StatusCode::CONFLICT),
            E::IdempotencyKeyReused => ("idempotency-key-reused", StatusCode::UNPROCESSABLE_ENTITY),
            E::TicketFrozen => ("ticket-frozen", StatusCode::CONFLICT),
            E::EmailTaken => ("email-taken", StatusCode::CONFLICT),
            E::UserNotFound => ("user-not-found", StatusCode::NOT_FOUND),
            E::SelfDisable => ("self-disable", StatusCode::CONFLICT),
            E::OrganizationNotFound => ("organization-not-found", StatusCode::NOT_FOUND),
            E::OrganizationNameTaken => ("organization-name-taken", StatusCode::CONFLICT),
            E::DomainTaken => ("domain-taken", StatusCode::CONFLICT),
            E::SharingOff => ("sharing-off", StatusCode::CONFLICT),
            E::NotAColleague => ("not-a-colleague", StatusCode::UNPROCESSABLE_ENTITY),
            E::SyncOff => ("sync-off", StatusCode::SERVICE_UNAVAILABLE),
            E::InvalidWebhookSecret => ("invalid-webhook-secret", StatusCode::UNAUTHORIZED),
            E::DeadLetterNotFound => ("dead-letter-not-found", StatusCode::NOT_FOUND),
            E::BackupInProgress => ("backup-in-progress", StatusCode::CONFLICT),
            E::Unavailable => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            E::Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.spec().0
    }

    pub fn status(self) -> StatusCode {
        self.spec().1
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub body: ErrorBody,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status().as_u16(),
            self.body.code,
            self.body.message
        )
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            body: ErrorBody {
                code: code.as_str(),
                message: message.into(),
                fields: None,
            },
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    #[must_use]
    pub fn with_fields(mut self, fields: BTreeMap<String, String>) -> ApiError {
        self.body.fields = Some(fields);
        self
    }

    /// An error about one field, named in `fields` and in the message.
    pub fn field(code: ErrorCode, field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        let fields = BTreeMap::from([(field.to_owned(), message.clone())]);
        ApiError::new(code, format!("{field}: {message}")).with_fields(fields)
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "sign in or send a valid bearer token",
        )
    }

    pub fn ticket_not_found() -> ApiError {
        ApiError::new(ErrorCode::TicketNotFound, "no such ticket")
    }

    /// Logs the cause once, with its chain, and answers without internals.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> ApiError {
        tracing::error!(error = %chain(cause), "internal error");
        ApiError::new(
            ErrorCode::Internal,
            "an internal error occurred; it has been logged",
        )
    }
}

impl From<Validation> for ApiError {
    fn from(v: Validation) -> ApiError {
        let message = v.to_string();
        ApiError::new(ErrorCode::InvalidField, message).with_fields(v.fields)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        let message = e.to_string();
        match e {
            DomainError::TicketNotFound => ApiError::ticket_not_found(),
            DomainError::AttachmentNotFound => {
                ApiError::new(ErrorCode::AttachmentNotFound, message)
            }
            DomainError::Transition(TransitionError::Invalid { .. }) => {
                ApiError::new(ErrorCode::InvalidTransition, message)
            }
            DomainError::Transition(TransitionError::ReopenWindowExpired { .. }) => {
                ApiError::new(ErrorCode::ReopenWindowExpired, message)
            }
            DomainError::Invalid(v) => v.into(),
            DomainError::EmailTaken => ApiError::field(ErrorCode::EmailTaken, "email", message),
            DomainError::OrganizationNameTaken => {
                ApiError::field(ErrorCode::OrganizationNameTaken, "name", message)
            }
            DomainError::DomainTaken(_) => {
                ApiError::field(ErrorCode::DomainTaken, "domains", message)
            }
            DomainError::AttachmentTooLarge { .. } => {
                ApiError::field(ErrorCode::AttachmentTooLarge, "file", message)
            }
            DomainError::IdempotencyKeyReused => {
                ApiError::field(ErrorCode::IdempotencyKeyReused, "Idempotency-Key", message)
            }
            DomainError::Frozen(_) => ApiError::new(ErrorCode::TicketFrozen, message),
        }
    }
}

/// An error and its sources on one line, for the log.
pub(crate) fn chain(cause: &dyn std::error::Error) -> String {
    let mut text = cause.to_string();
    let mut source = cause.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal(&e)
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        match e {
            OpError::Rule(e) => e.into(),
            OpError::Store(e) => e.into(),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> ApiError {
        tracing::error!(error = %e, "actor mailbox error");
        ApiError::new(
            ErrorCode::Unavailable,
            "deskbridge is shutting down; retry shortly",
        )
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> ApiError {
        ApiError::internal(&e)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status()).json(ErrorEnvelope {
            error: self.body.clone(),
        });
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_are_unique_kebab_case_and_errors_are_client_or_server_errors() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.split('-')
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())),
                "{name} is not kebab-case"
            );
            assert!(
                code.status().is_client_error() || code.status().is_server_error(),
                "{name}"
            );
        }
    }
}
