//! Signing in and out, the caller's own account, and the first-admin setup, as JSON. The rules are
//! `service::accounts`'.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::resource;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::http::extract::{ValidJson, client_address};
use crate::http::session;
use crate::http::views::{Items, UserView};
use crate::service::accounts::{self, Issued, TokenView};
use crate::service::{AppState, Caller};

type State = web::Data<AppState>;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
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
    .service(resource("/me/password").route(web::post().to(change_password)))
    .service(resource("/me/tokens").route(web::get().to(list_own_tokens)))
    .service(resource("/me/tokens/{id}").route(web::delete().to(revoke_own_token)))
    .service(resource("/setup").route(web::post().to(setup)));
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credentials {
    pub email: String,
    pub password: String,
    /// A session: keep the cookie past the browser's closing, until the session ends. A token:
    /// ignored.
    #[serde(default)]
    pub remember: bool,
    /// A token: what to call it in the token list (default "API token"). A session: ignored.
    #[serde(default)]
    pub name: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", request_body = Credentials,
    responses((status = 200, body = Issued), (status = 401, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)))]
pub(crate) async fn create_token(
    state: State,
    req: HttpRequest,
    body: ValidJson<Credentials>,
) -> ApiResult<web::Json<Issued>> {
    let c = body.value;
    let issued = accounts::create_token(
        &state,
        client_address(&req),
        &c.email,
        &c.password,
        c.name.as_deref(),
    )
    .await?;
    Ok(web::Json(issued))
}

#[utoipa::path(delete, path = "/api/v1/auth/token", tag = "auth",
    responses((status = 204, description = "The token used for this call is revoked")), security(("bearer" = [])))]
pub(crate) async fn delete_token(state: State, caller: Caller) -> ApiResult<HttpResponse> {
    accounts::sign_out(&state, &caller).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/session", tag = "auth", request_body = Credentials,
    responses((status = 200, body = UserView,
        description = "Signed in; the session cookie is set, and `X-CSRF-Token` carries the token \
            that writes made with the cookie must send back in that header"),
        (status = 401, body = ErrorEnvelope)))]
pub(crate) async fn create_session(
    state: State,
    req: HttpRequest,
    body: ValidJson<Credentials>,
) -> ApiResult<HttpResponse> {
    let c = body.value;
    let old = session::current(&req);
    let (user, issued) = accounts::start_session(
        &state,
        client_address(&req),
        old.as_deref(),
        &c.email,
        &c.password,
    )
    .await?;
    let csrf = session::csrf_token(&issued.token);
    let remember = c.remember.then_some(issued.expires_at);
    Ok(HttpResponse::Ok()
        .cookie(session::cookie(&req, issued.token, remember))
        .insert_header((session::CSRF_HEADER, csrf))
        .json(UserView::from(&user)))
}

#[utoipa::path(delete, path = "/api/v1/auth/session", tag = "auth",
    description = "Ends every browser session of the account, and their live streams.",
    responses((status = 204, description = "Signed out; the cookie is cleared")), security(("bearer" = [])))]
pub(crate) async fn delete_session(
    state: State,
    req: HttpRequest,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    accounts::sign_out(&state, &caller).await?;
    Ok(HttpResponse::NoContent()
        .cookie(session::cleared(&req))
        .finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    /// Set when the integration account acts on behalf of this customer.
    pub acting_as_integration: Option<UserView>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = MeView), (status = 401, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub(crate) async fn me(caller: Caller) -> web::Json<MeView> {
    let via = (caller.principal.id != caller.user.id).then(|| UserView::from(&caller.principal));
    web::Json(MeView {
        user: UserView::from(&caller.user),
        acting_as_integration: via,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    pub current_password: String,
    /// At least 10 characters.
    pub new_password: String,
}

#[utoipa::path(post, path = "/api/v1/me/password", tag = "auth", request_body = PasswordChange,
    description = "Changes the caller's password; every browser session of the account ends.",
    responses((status = 204, description = "Changed"), (status = 401, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn change_password(
    state: State,
    caller: Caller,
    body: ValidJson<PasswordChange>,
) -> ApiResult<HttpResponse> {
    let b = body.value;
    accounts::change_password(&state, &caller, &b.current_password, &b.new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "auth",
    responses((status = 200, body = Items<TokenView>), (status = 401, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn list_own_tokens(
    state: State,
    caller: Caller,
) -> ApiResult<web::Json<Items<TokenView>>> {
    let items = accounts::tokens(&state, caller.principal.id)?;
    Ok(web::Json(Items { items }))
}

#[utoipa::path(delete, path = "/api/v1/me/tokens/{id}", tag = "auth",
    params(("id" = String, Path, description = "The token's id from the list")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn revoke_own_token(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    accounts::revoke_token(&state, &caller, caller.principal.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetupBody {
    /// The one-time token printed in the log at start.
    pub token: String,
    pub email: String,
    pub name: String,
    pub password: String,
}

#[utoipa::path(post, path = "/api/v1/setup", tag = "auth", request_body = SetupBody,
    responses((status = 201, body = UserView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub(crate) async fn setup(state: State, body: ValidJson<SetupBody>) -> ApiResult<HttpResponse> {
    let b = body.value;
    let user = accounts::create_first_admin(&state, &b.token, b.email, b.name, b.password).await?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}
