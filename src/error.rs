//! The one mapping from errors to HTTP: a status and `{"error": {"code", "message", "fields"?}}`.
//! Codes are kebab-case and stable once shipped; clients branch on them, not on messages.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DomainError, TransitionError, Validation};
use crate::store::{OpError, StoreError};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.body.code,
            self.body.message
        )
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code,
                message: message.into(),
                fields: None,
            },
            retry_after: None,
        }
    }

    #[must_use]
    pub fn with_fields(mut self, fields: BTreeMap<String, String>) -> ApiError {
        self.body.fields = Some(fields);
        self
    }

    pub fn field(
        status: StatusCode,
        code: &'static str,
        field: &str,
        message: impl Into<String>,
    ) -> ApiError {
        let message = message.into();
        let fields = BTreeMap::from([(field.to_owned(), message.clone())]);
        ApiError::new(status, code, format!("{field}: {message}")).with_fields(fields)
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in or send a valid bearer token",
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn ticket_not_found() -> ApiError {
        ApiError::not_found("ticket-not-found", "no such ticket")
    }

    /// Logs the cause once, with its chain, and answers without internals.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> ApiError {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }
}

impl From<Validation> for ApiError {
    fn from(v: Validation) -> ApiError {
        let message = v.to_string();
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", message)
            .with_fields(v.fields)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        let message = e.to_string();
        match e {
            DomainError::TicketNotFound => ApiError::ticket_not_found(),
            DomainError::AttachmentNotFound => ApiError::not_found("attachment-not-found", message),
            DomainError::Transition(TransitionError::Invalid { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "invalid-transition", message)
            }
            DomainError::Transition(TransitionError::ReopenWindowExpired { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "reopen-window-expired", message)
            }
            DomainError::Invalid(v) => v.into(),
            DomainError::EmailTaken => {
                ApiError::field(StatusCode::CONFLICT, "email-taken", "email", message)
            }
            DomainError::AttachmentTooLarge { .. } => ApiError::field(
                StatusCode::PAYLOAD_TOO_LARGE,
                "attachment-too-large",
                "file",
                message,
            ),
            DomainError::IdempotencyKeyReused => ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key",
                message,
            ),
        }
    }
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
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "deskbridge is shutting down; retry shortly",
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status).json(ErrorEnvelope {
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

pub type ApiResult<T> = Result<T, ApiError>;
