//! Extractors: who is asking ([`Caller`], [`Admin`]), strictly parsed JSON ([`ValidJson`]) and the
//! `Idempotency-Key` header. Every failure answers in the one error shape.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::auth::{self, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::session;
use crate::service::Caller;
use crate::service::identity::{
    self, ON_BEHALF_OF, ON_BEHALF_OF_NAME, ON_BEHALF_OF_ORGANIZATION, OnBehalf,
};
use crate::tickets::Idempotency;

pub(crate) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Largest JSON body accepted: a 64 KiB text can grow when escaped.
const JSON_LIMIT: usize = 1024 * 1024;

pub(crate) use crate::http::client::state;

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
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| ApiError::field(ErrorCode::InvalidHeader, name, "must be visible ASCII")),
    }
}

/// Who is asking, from the request's credential and `X-Deskbridge-On-Behalf-Of` headers.
pub(crate) fn authenticate(req: &HttpRequest) -> ApiResult<Caller> {
    let secret = credential(req).ok_or_else(ApiError::unauthenticated)?;
    let on_behalf = match header_text(req, ON_BEHALF_OF)? {
        None => None,
        Some(email) => Some(OnBehalf {
            email,
            name: header_text(req, ON_BEHALF_OF_NAME)?,
            organization: header_text(req, ON_BEHALF_OF_ORGANIZATION)?,
        }),
    };
    identity::authenticate(state(req), &secret, on_behalf)
}

/// The caller of an API endpoint. A browser sends the session cookie along with any request,
/// whichever site started it, so a write made with the cookie must also show it came from our own
/// pages: the session's CSRF token in `X-CSRF-Token` and a same-origin `Origin` (or `Referer`).
/// A bearer token is sent only by code that holds it, so bearer calls need neither.
fn api_caller(req: &HttpRequest) -> ApiResult<Caller> {
    let caller = authenticate(req)?;
    let by_cookie = !req.headers().contains_key(header::AUTHORIZATION);
    if by_cookie && !req.method().is_safe() {
        if session::provenance(req) != session::Provenance::SameOrigin {
            tracing::warn!(path = %req.path(), "cookie call refused: not from this site");
            return Err(ApiError::new(
                ErrorCode::CrossOrigin,
                "a call signed in with the session cookie must come from this site's pages \
                 (same-origin Origin or Referer header)",
            ));
        }
        let expected = credential(req).map(|secret| session::csrf_token(&secret));
        let sent = header_text(req, session::CSRF_HEADER).ok().flatten();
        let valid = expected
            .zip(sent)
            .is_some_and(|(expected, sent)| auth::secrets_equal(&expected, sent));
        if !valid {
            tracing::warn!(path = %req.path(), "cookie call refused: no valid CSRF token");
            return Err(ApiError::field(
                ErrorCode::CsrfTokenInvalid,
                session::CSRF_HEADER,
                "a call signed in with the session cookie must send the page's CSRF token \
                 (<meta name=\"csrf-token\">) in the X-CSRF-Token header",
            ));
        }
    }
    Ok(caller)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(api_caller(req))
    }
}

/// An admin caller; anyone else is refused with 403 before the handler runs.
pub(crate) struct Admin(pub Caller);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(api_caller(req).and_then(|caller| {
            if caller.is_admin() {
                Ok(Admin(caller))
            } else {
                Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "this needs an admin account",
                ))
            }
        }))
    }
}

/// The client's address, for throttling and the log (a trusted proxy's client, see `client`).
pub(crate) fn client_address(req: &HttpRequest) -> Option<std::net::IpAddr> {
    super::client::Client::of(req).addr
}

/// A JSON body parsed strictly: 415 without a JSON content type, 400 when it is not JSON, 422
/// naming the field when it does not fit `T`. Also carries the body's sha256 for idempotency.
pub(crate) struct ValidJson<T> {
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
                    ErrorCode::UnsupportedMediaType,
                    "send the body as application/json",
                ));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| {
                    ApiError::new(ErrorCode::BadRequest, "the request body could not be read")
                })?;
                if body.len() + chunk.len() > JSON_LIMIT {
                    return Err(ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        format!("the body exceeds {JSON_LIMIT} bytes"),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            let raw: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                ApiError::new(
                    ErrorCode::MalformedJson,
                    format!("the body is not valid JSON: {e}"),
                )
            })?;
            // Serde would read an array positionally into a struct; every body here is an object.
            if !raw.is_object() {
                return Err(ApiError::field(
                    ErrorCode::InvalidField,
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
                ApiError::new(ErrorCode::InvalidField, format!("{field}: {message}"))
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
pub(crate) struct IdempotencyKey(pub Option<String>);

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
                    ErrorCode::InvalidField,
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
    pub(crate) fn scoped(
        &self,
        caller: &Caller,
        scope: &str,
        fingerprint: &str,
    ) -> Option<Idempotency> {
        self.0.as_ref().map(|key| Idempotency {
            key: crate::store::keys::idempotency(caller.user.id, scope, key),
            fingerprint: fingerprint.to_owned(),
        })
    }
}
