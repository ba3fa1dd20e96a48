//! Extractors: who is asking ([`Caller`]), strictly parsed JSON ([`ValidJson`]) and the
//! `Idempotency-Key` header. Every failure answers in the one error shape.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::AppState;
use crate::auth::{self, SESSION_COOKIE};
use crate::domain::user::normalize_email;
use crate::domain::validate::{self, NAME_MAX_CHARS, ORGANIZATION_MAX_CHARS};
use crate::domain::{Actor, DomainError, Role, Ticket, User, UserId, Validation};
use crate::error::{ApiError, ApiResult};
use crate::store::OpError;

pub const ON_BEHALF_OF: &str = "X-Deskbridge-On-Behalf-Of";
pub const ON_BEHALF_OF_NAME: &str = "X-Deskbridge-On-Behalf-Of-Name";
pub const ON_BEHALF_OF_ORGANIZATION: &str = "X-Deskbridge-On-Behalf-Of-Organization";
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Largest JSON body accepted: a 64 KiB text can grow when escaped.
const JSON_LIMIT: usize = 1024 * 1024;

pub(crate) fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered by app::build")
        .get_ref()
}

/// The authenticated caller. For the integration account acting with `X-Deskbridge-On-Behalf-Of`,
/// `user` is the customer and `principal` the integration account; otherwise both are the same.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub principal: User,
    pub actor: Actor,
    /// The hash of the credential used, so sign-out can revoke exactly it.
    pub credential: [u8; 32],
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "forbidden",
                "this needs an admin account",
            ))
        }
    }

    /// Whether the caller may read this ticket: its requester, or an admin.
    pub fn can_read(&self, ticket: &Ticket) -> bool {
        self.is_admin() || ticket.requester.id == self.user.id
    }

    /// Whether the caller may act on this ticket: only its requester (or the portal on their behalf).
    pub fn can_write(&self, ticket: &Ticket) -> bool {
        ticket.requester.id == self.user.id
    }
}

/// The credential in `Authorization: Bearer …`, else in the session cookie.
pub(crate) fn credential(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned())
}

fn header_text<'a>(req: &'a HttpRequest, name: &str) -> ApiResult<Option<&'a str>> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim())).map_err(|_| {
            ApiError::field(
                StatusCode::BAD_REQUEST,
                "invalid-header",
                name,
                "must be visible ASCII",
            )
        }),
    }
}

pub(crate) fn authenticate(req: &HttpRequest) -> ApiResult<Caller> {
    let state = state(req);
    let secret = credential(req).ok_or_else(ApiError::unauthenticated)?;
    let hash = auth::secret_hash(&secret);
    let record = state
        .store
        .token(&hash)?
        .ok_or_else(ApiError::unauthenticated)?;
    if record.expires_at <= OffsetDateTime::now_utc() {
        state.store.delete_token(&hash)?;
        return Err(ApiError::unauthenticated());
    }
    let principal = state
        .store
        .user(record.user)?
        .ok_or_else(ApiError::unauthenticated)?;
    if principal.disabled {
        return Err(ApiError::forbidden(
            "account-disabled",
            "this account is disabled",
        ));
    }
    let on_behalf = header_text(req, ON_BEHALF_OF)?;
    if principal.role != Role::Integration {
        if on_behalf.is_some() {
            return Err(ApiError::forbidden(
                "on-behalf-of-not-allowed",
                "only the integration account may act on behalf of a customer",
            ));
        }
        let actor = Actor::user(&principal);
        return Ok(Caller {
            user: principal.clone(),
            principal,
            actor,
            credential: hash,
        });
    }
    let email = on_behalf.ok_or_else(|| {
        ApiError::forbidden(
            "on-behalf-of-required",
            format!("the integration account must name the customer in {ON_BEHALF_OF}"),
        )
    })?;
    let customer = customer_for(req, email)?;
    let actor = Actor::on_behalf(&customer, &principal);
    Ok(Caller {
        user: customer,
        principal,
        actor,
        credential: hash,
    })
}

/// Finds the customer the integration acts for, creating them on first use when a name is given.
fn customer_for(req: &HttpRequest, email: &str) -> ApiResult<User> {
    let state = state(req);
    let mut v = Validation::default();
    validate::email(&mut v, ON_BEHALF_OF, email);
    v.into_result()?;
    let email = normalize_email(email);
    if let Some(user) = state.store.user_by_email(&email)? {
        return match (user.role, user.disabled) {
            (Role::Customer, false) => Ok(user),
            (Role::Customer, true) => Err(ApiError::forbidden(
                "account-disabled",
                "this customer's account is disabled",
            )),
            _ => Err(ApiError::forbidden(
                "on-behalf-of-not-customer",
                "the integration may only act for customer accounts",
            )),
        };
    }
    let Some(name) = header_text(req, ON_BEHALF_OF_NAME)?.filter(|n| !n.is_empty()) else {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "customer-unknown",
            ON_BEHALF_OF_NAME,
            "the customer is new: send their name to create the account",
        ));
    };
    let organization = header_text(req, ON_BEHALF_OF_ORGANIZATION)?.unwrap_or_default();
    let mut v = Validation::default();
    validate::required_line(&mut v, ON_BEHALF_OF_NAME, name, NAME_MAX_CHARS);
    validate::optional_line(
        &mut v,
        ON_BEHALF_OF_ORGANIZATION,
        Some(organization),
        ORGANIZATION_MAX_CHARS,
    );
    v.into_result()?;
    let user = User {
        id: UserId::new(),
        email: email.clone(),
        name: name.to_owned(),
        role: Role::Customer,
        organization: organization.to_owned(),
        password_hash: String::new(),
        disabled: false,
        created_at: OffsetDateTime::now_utc(),
    };
    match state.store.create_user(&user) {
        Ok(()) => {
            tracing::info!(customer = %user.email, "customer created on behalf of the integration");
            Ok(user)
        }
        // Two first requests raced: the other one created the account.
        Err(OpError::Rule(DomainError::EmailTaken)) => state
            .store
            .user_by_email(&email)?
            .ok_or_else(ApiError::unauthenticated),
        Err(e) => Err(e.into()),
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(authenticate(req))
    }
}

/// A JSON body parsed strictly: 415 without a JSON content type, 400 when it is not JSON, 422
/// naming the field when it does not fit `T`. Also carries the body's sha256 for idempotency.
pub struct ValidJson<T> {
    pub value: T,
    pub fingerprint: String,
}

/// The field a serde error is about: the path (which already ends in an unknown field's name), or for
/// a missing field the name serde puts in its message.
fn field_of(path: &str, message: &str) -> String {
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(name) = rest.split('`').next()
    {
        return if path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
    }
    if path == "." {
        "body".into()
    } else {
        path.to_owned()
    }
}

pub(crate) fn is_json(req: &HttpRequest) -> bool {
    req.mime_type().ok().flatten().is_some_and(|m| {
        m.type_() == mime::APPLICATION
            && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<ValidJson<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "send the body as application/json",
                ));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad-request",
                        "the request body could not be read",
                    )
                })?;
                if body.len() + chunk.len() > JSON_LIMIT {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload-too-large",
                        format!("the body exceeds {JSON_LIMIT} bytes"),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            let raw: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed-json",
                    format!("the body is not valid JSON: {e}"),
                )
            })?;
            // Serde would read an array positionally into a struct; every body here is an object.
            if !raw.is_object() {
                return Err(ApiError::field(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-field",
                    "body",
                    "must be a JSON object",
                ));
            }
            let value = serde_path_to_error::deserialize(raw).map_err(|e| {
                let message = e.inner().to_string();
                let field = field_of(&e.path().to_string(), &message);
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-field",
                    format!("{field}: {message}"),
                )
                .with_fields(BTreeMap::from([(field, message)]))
            })?;
            Ok(ValidJson {
                value,
                fingerprint: hex::encode(Sha256::digest(&body)),
            })
        })
    }
}

/// The optional `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub struct IdempotencyKey(pub Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<IdempotencyKey, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.headers().get(IDEMPOTENCY_KEY) {
            None => Ok(IdempotencyKey(None)),
            Some(v) => match v.to_str() {
                Ok(key)
                    if (1..=255).contains(&key.len())
                        && key.bytes().all(|b| b.is_ascii_graphic()) =>
                {
                    Ok(IdempotencyKey(Some(key.to_owned())))
                }
                _ => Err(ApiError::field(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-field",
                    IDEMPOTENCY_KEY,
                    "must be 1 to 255 visible ASCII characters",
                )),
            },
        };
        std::future::ready(result)
    }
}

impl IdempotencyKey {
    /// Scopes the key to the caller and the endpoint.
    pub fn scoped(
        &self,
        caller: &Caller,
        scope: &str,
        fingerprint: &str,
    ) -> Option<crate::actors::Idempotency> {
        self.0.as_ref().map(|key| crate::actors::Idempotency {
            key: crate::store::keys::idempotency(caller.user.id, scope, key),
            fingerprint: fingerprint.to_owned(),
        })
    }
}
