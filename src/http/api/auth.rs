//! Signing in and out, the caller's own account, and the first-admin setup.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;

use super::resource;
use crate::auth::{self, API_TOKEN_PREFIX, SESSION_COOKIE};
use crate::domain::user::normalize_email;
use crate::domain::validate::{self, NAME_MAX_CHARS};
use crate::domain::{Role, User, UserId, Validation};
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::http::AppState;
use crate::http::extract::{Caller, ValidJson};
use crate::http::views::UserView;
use crate::store::TokenRecord;
use crate::store::users::TokenKind;

type State = web::Data<AppState>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/auth/token")
            .route(web::post().to(create_token))
            .route(web::delete().to(delete_token)),
    )
    .service(
        resource("/auth/session")
            .route(web::post().to(create_session))
            .route(web::delete().to(delete_session)),
    )
    .service(resource("/me").route(web::get().to(me)))
    .service(resource("/setup").route(web::post().to(setup)));
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// Checks the password, throttled per account and per address. Failures look the same whether or
/// not the account exists.
fn sign_in(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    credentials: &Credentials,
) -> ApiResult<User> {
    let email = normalize_email(&credentials.email);
    if let Err(wait) = state.throttle.attempt(&email, address) {
        state.metrics.login_failures.inc();
        tracing::warn!(account = %email, ?address, "sign-in throttled");
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-attempts",
            "too many sign-in attempts; wait and try again",
        );
        e.retry_after = Some(wait);
        return Err(e);
    }
    let user = state.store.user_by_email(&email)?;
    let hash = user
        .as_ref()
        .map_or(auth::dummy_hash(), |u| u.password_hash.as_str());
    let valid = !hash.is_empty() && auth::verify_password(&credentials.password, hash);
    match user {
        Some(user) if valid && !user.disabled => Ok(user),
        _ => {
            state.metrics.login_failures.inc();
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "wrong e-mail or password",
            ))
        }
    }
}

pub(crate) fn issue(state: &AppState, user: &User, kind: TokenKind) -> ApiResult<TokenResponse> {
    let now = OffsetDateTime::now_utc();
    let ttl = match kind {
        TokenKind::Api => {
            Duration::days(i64::try_from(state.config.auth.token_ttl_days).unwrap_or(30))
        }
        TokenKind::Session => {
            Duration::hours(i64::try_from(state.config.auth.session_ttl_hours).unwrap_or(12))
        }
    };
    let token = auth::new_secret(if kind == TokenKind::Api {
        API_TOKEN_PREFIX
    } else {
        ""
    });
    let record = TokenRecord {
        user: user.id,
        kind,
        created_at: now,
        expires_at: now + ttl,
    };
    state
        .store
        .insert_token(&auth::secret_hash(&token), &record)?;
    Ok(TokenResponse {
        token,
        expires_at: record.expires_at,
    })
}

pub(crate) async fn credentials_user(
    state: &State,
    req: &HttpRequest,
    credentials: Credentials,
) -> ApiResult<User> {
    let state = state.clone();
    let address = req.peer_addr().map(|a| a.ip());
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    web::block(move || sign_in(&state, address, &credentials))
        .await
        .map_err(|e| ApiError::internal(&e))?
}

#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", request_body = Credentials,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)))]
pub async fn create_token(
    state: State,
    req: HttpRequest,
    body: ValidJson<Credentials>,
) -> ApiResult<web::Json<TokenResponse>> {
    let user = credentials_user(&state, &req, body.value).await?;
    let issued = issue(&state, &user, TokenKind::Api)?;
    state.store.durable().await?;
    tracing::info!(user = %user.email, "api token issued");
    Ok(web::Json(issued))
}

#[utoipa::path(delete, path = "/api/v1/auth/token", tag = "auth",
    responses((status = 204, description = "The token used for this call is revoked")), security(("bearer" = [])))]
pub async fn delete_token(state: State, caller: Caller) -> ApiResult<HttpResponse> {
    state.store.delete_token(&caller.credential)?;
    state.store.durable().await?;
    Ok(HttpResponse::NoContent().finish())
}

fn session_cookie(value: String, max_age: Duration) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .finish()
}

#[utoipa::path(post, path = "/api/v1/auth/session", tag = "auth", request_body = Credentials,
    responses((status = 200, body = UserView, description = "Signed in; the session cookie is set"),
        (status = 401, body = ErrorEnvelope)))]
pub async fn create_session(
    state: State,
    req: HttpRequest,
    body: ValidJson<Credentials>,
) -> ApiResult<HttpResponse> {
    let (user, cookie) = start_session(&state, &req, body.value).await?;
    Ok(HttpResponse::Ok()
        .cookie(cookie)
        .json(UserView::from(&user)))
}

/// Checks the credentials and opens a session (the API's and the sign-in page's): a fresh session
/// id at every sign-in, so a session fixed before sign-in is worthless.
pub(crate) async fn start_session(
    state: &State,
    req: &HttpRequest,
    credentials: Credentials,
) -> ApiResult<(User, Cookie<'static>)> {
    let user = credentials_user(state, req, credentials).await?;
    if let Some(old) = req.cookie(SESSION_COOKIE) {
        state.store.delete_token(&auth::secret_hash(old.value()))?;
    }
    let issued = issue(state, &user, TokenKind::Session)?;
    state.store.durable().await?;
    let max_age = issued.expires_at - OffsetDateTime::now_utc();
    Ok((user, end_session_cookie(req, issued.token, max_age)))
}

/// The session cookie with `value`; an empty value and zero age clear it.
pub(crate) fn end_session_cookie(
    req: &HttpRequest,
    value: String,
    max_age: Duration,
) -> Cookie<'static> {
    let mut cookie = session_cookie(value, max_age);
    cookie.set_secure(req.connection_info().scheme() == "https");
    cookie
}

#[utoipa::path(delete, path = "/api/v1/auth/session", tag = "auth",
    responses((status = 204, description = "Signed out; the cookie is cleared")), security(("bearer" = [])))]
pub async fn delete_session(state: State, caller: Caller) -> ApiResult<HttpResponse> {
    state.store.delete_token(&caller.credential)?;
    state.store.durable().await?;
    Ok(HttpResponse::NoContent()
        .cookie(session_cookie(String::new(), Duration::ZERO))
        .finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    /// Set when the integration account acts on behalf of this customer.
    pub acting_as_integration: Option<UserView>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = MeView), (status = 401, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> web::Json<MeView> {
    let via = (caller.principal.id != caller.user.id).then(|| UserView::from(&caller.principal));
    web::Json(MeView {
        user: UserView::from(&caller.user),
        acting_as_integration: via,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupBody {
    /// The one-time token printed in the log at start.
    pub token: String,
    pub email: String,
    pub name: String,
    pub password: String,
}

/// Validates a new account's fields; shared by setup and admin user creation.
pub(crate) fn validate_account(v: &mut Validation, email: &str, name: &str, password: &str) {
    validate::email(v, "email", email);
    validate::required_line(v, "name", name, NAME_MAX_CHARS);
    validate::password(v, "password", password);
}

pub(crate) fn new_account(
    email: &str,
    name: &str,
    password: &str,
    role: Role,
    organization: &str,
) -> User {
    User {
        id: UserId::new(),
        email: normalize_email(email),
        name: name.trim().to_owned(),
        role,
        organization: organization.trim().to_owned(),
        password_hash: auth::hash_password(password),
        disabled: false,
        created_at: OffsetDateTime::now_utc(),
    }
}

#[utoipa::path(post, path = "/api/v1/setup", tag = "auth", request_body = SetupBody,
    responses((status = 201, body = UserView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn setup(state: State, body: ValidJson<SetupBody>) -> ApiResult<HttpResponse> {
    let user = create_first_admin(&state, body.value).await?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

/// Creates the first admin with the one-time setup token (the API's and the console's setup page).
pub(crate) async fn create_first_admin(state: &AppState, b: SetupBody) -> ApiResult<User> {
    let mut v = Validation::default();
    validate_account(&mut v, &b.email, &b.name, &b.password);
    v.into_result()?;
    let user = {
        let mut slot = state
            .setup_token
            .lock()
            .expect("setup lock is never poisoned: no panics while held");
        let Some(expected) = slot.as_deref() else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "setup-done",
                "an admin already exists; sign in instead",
            ));
        };
        if !auth::secrets_equal(expected, b.token.trim()) {
            return Err(ApiError::forbidden(
                "invalid-setup-token",
                "the setup token is wrong; see the log printed at start",
            ));
        }
        let user = new_account(&b.email, &b.name, &b.password, Role::Admin, "");
        state.store.create_user(&user)?;
        // Voided only once the admin exists, so a failed attempt can be retried.
        *slot = None;
        user
    };
    state.store.audit(&user.email, "setup.done", &user.email)?;
    state.store.durable().await?;
    tracing::info!(admin = %user.email, "first admin created through setup");
    Ok(user)
}
