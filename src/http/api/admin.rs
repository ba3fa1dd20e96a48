//! Admin-only endpoints: accounts, the outbox and the sync. The [`Admin`] extractor refuses anyone
//! else before a handler runs; the rules are `service::accounts`' and `service::sync`'.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::resource;
use crate::domain::UserId;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::http::extract::{Admin, ValidJson};
use crate::http::views::{Items, UserView};
use crate::service::AppState;
use crate::service::accounts::{self, AccountAction, Issued, NewAccount, TokenView};
use crate::service::sync::{self, DeadLetterAction, SyncView};
use crate::store::OutboxEntry;

type State = web::Data<AppState>;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/admin/users")
            .route(web::get().to(list_users))
            .route(web::post().to(create_user)),
    )
    .service(resource("/admin/users/{id}/actions").route(web::post().to(change_user)))
    .service(resource("/admin/users/{id}/tokens").route(web::get().to(list_user_tokens)))
    .service(
        resource("/admin/users/{id}/tokens/{token}").route(web::delete().to(revoke_user_token)),
    )
    .service(resource("/admin/outbox").route(web::get().to(list_outbox)))
    .service(resource("/admin/sync").route(web::get().to(sync_health)))
    .service(resource("/admin/sync/run").route(web::post().to(sync_run)))
    .service(resource("/admin/sync/sweep").route(web::post().to(sync_sweep)))
    .service(resource("/admin/sync/pause").route(web::post().to(sync_pause)))
    .service(resource("/admin/sync/resume").route(web::post().to(sync_resume)))
    .service(
        resource("/admin/sync/dead-letters/{action}").route(web::post().to(dead_letters_action)),
    )
    .service(
        resource("/admin/sync/dead-letters/{seq}/{action}")
            .route(web::post().to(dead_letter_action)),
    );
}

#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = NewAccount,
    responses((status = 201, body = UserView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub(crate) async fn create_user(
    state: State,
    Admin(admin): Admin,
    body: ValidJson<NewAccount>,
) -> ApiResult<HttpResponse> {
    let user = accounts::create_account(&state, &admin, body.value).await?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin",
    responses((status = 200, body = Items<UserView>), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn list_users(state: State, _: Admin) -> ApiResult<web::Json<Items<UserView>>> {
    let items = state.store.users()?.iter().map(UserView::from).collect();
    Ok(web::Json(Items { items }))
}

/// The account after an action, and the token when one was issued (shown only in this answer).
#[derive(Debug, serde::Serialize, ToSchema)]
pub(crate) struct AccountChanged {
    pub user: UserView,
    pub token: Option<Issued>,
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/actions", tag = "admin", request_body = AccountAction,
    params(("id" = String, Path, description = "The account's id")),
    responses((status = 200, body = AccountChanged), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub(crate) async fn change_user(
    state: State,
    Admin(admin): Admin,
    id: web::Path<String>,
    body: ValidJson<AccountAction>,
) -> ApiResult<web::Json<AccountChanged>> {
    let id = user_id(&id)?;
    let (user, token) = accounts::change_account(&state, &admin, id, body.value).await?;
    Ok(web::Json(AccountChanged {
        user: UserView::from(&user),
        token,
    }))
}

fn user_id(raw: &str) -> ApiResult<UserId> {
    let id = raw
        .parse::<uuid::Uuid>()
        .map(UserId)
        .map_err(|_| ApiError::new(ErrorCode::UserNotFound, "no such account"))?;
    Ok(id)
}

#[utoipa::path(get, path = "/api/v1/admin/users/{id}/tokens", tag = "admin",
    params(("id" = String, Path, description = "The account's id")),
    responses((status = 200, body = Items<TokenView>), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn list_user_tokens(
    state: State,
    _: Admin,
    id: web::Path<String>,
) -> ApiResult<web::Json<Items<TokenView>>> {
    let id = user_id(&id)?;
    if state.store.user(id)?.is_none() {
        return Err(ApiError::new(ErrorCode::UserNotFound, "no such account"));
    }
    let items = accounts::tokens(&state, id)?;
    Ok(web::Json(Items { items }))
}

#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/tokens/{token}", tag = "admin",
    params(("id" = String, Path, description = "The account's id"),
        ("token" = String, Path, description = "The token's id from the list")),
    responses((status = 204, description = "Revoked"), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn revoke_user_token(
    state: State,
    Admin(admin): Admin,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (id, token) = path.into_inner();
    accounts::revoke_token(&state, &admin, user_id(&id)?, &token).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
pub(crate) struct OutboxQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/admin/outbox", tag = "admin",
    params(("after" = Option<u64>, Query, description = "Only entries with a larger seq"),
        ("limit" = Option<usize>, Query, description = "At most this many, 1 to 1000 (default 100)")),
    responses((status = 200, body = Items<OutboxEntry>), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn list_outbox(
    state: State,
    _: Admin,
    query: web::Query<OutboxQuery>,
) -> ApiResult<web::Json<Items<OutboxEntry>>> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let items = state.store.outbox_after(query.after.unwrap_or(0), limit)?;
    Ok(web::Json(Items { items }))
}

#[utoipa::path(get, path = "/api/v1/admin/sync", tag = "admin",
    responses((status = 200, body = SyncView), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn sync_health(state: State, _: Admin) -> ApiResult<web::Json<SyncView>> {
    Ok(web::Json(sync::health(&state).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/sync/run", tag = "admin",
    responses((status = 202, description = "A poll starts now"), (status = 503, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn sync_run(state: State, _: Admin) -> ApiResult<HttpResponse> {
    sync::poll_now(&state)?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status": "polling"})))
}

#[utoipa::path(post, path = "/api/v1/admin/sync/sweep", tag = "admin",
    description = "Re-reads every open linked ticket whose request changed, or that SDP no longer \
        lists (trashed, deleted, merged), instead of waiting for `sdp.reconcile_interval_secs`.",
    responses((status = 202, description = "A reconciliation starts now"), (status = 503, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn sync_sweep(state: State, _: Admin) -> ApiResult<HttpResponse> {
    sync::sweep_now(&state)?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status": "reconciling"})))
}

#[utoipa::path(post, path = "/api/v1/admin/sync/dead-letters/{seq}/{action}", tag = "admin",
    params(("seq" = u64, Path), ("action" = DeadLetterAction, Path)),
    responses((status = 200, description = "Done"), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn dead_letter_action(
    state: State,
    Admin(admin): Admin,
    path: web::Path<(u64, String)>,
) -> ApiResult<HttpResponse> {
    let (seq, action) = path.into_inner();
    let action: DeadLetterAction = serde_json::from_value(serde_json::Value::String(action))
        .map_err(|_| {
            ApiError::field(
                ErrorCode::InvalidAction,
                "action",
                "must be retry or discard",
            )
        })?;
    sync::handle_dead_letter(&state, &admin, seq, action).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"seq": seq, "action": action})))
}

#[utoipa::path(post, path = "/api/v1/admin/sync/pause", tag = "admin",
    description = "Stops every call to ServiceDesk Plus until resumed, across restarts. Changes keep \
        queueing in the outbox.",
    responses((status = 200, description = "Paused"), (status = 503, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn sync_pause(state: State, Admin(admin): Admin) -> ApiResult<HttpResponse> {
    sync::set_paused(&state, &admin, true).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "paused"})))
}

#[utoipa::path(post, path = "/api/v1/admin/sync/resume", tag = "admin",
    responses((status = 200, description = "Running again"), (status = 503, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn sync_resume(state: State, Admin(admin): Admin) -> ApiResult<HttpResponse> {
    sync::set_paused(&state, &admin, false).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "running"})))
}

/// Which dead letters a bulk action takes: one ticket's, or all.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLettersBody {
    /// A ticket number; absent: every dead letter.
    #[serde(default)]
    pub ticket: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/admin/sync/dead-letters/{action}", tag = "admin",
    request_body = DeadLettersBody,
    params(("action" = DeadLetterAction, Path)),
    responses((status = 200, description = "How many were handled"), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn dead_letters_action(
    state: State,
    Admin(admin): Admin,
    action: web::Path<String>,
    body: ValidJson<DeadLettersBody>,
) -> ApiResult<HttpResponse> {
    let action: DeadLetterAction =
        serde_json::from_value(serde_json::Value::String(action.into_inner())).map_err(|_| {
            ApiError::field(
                ErrorCode::InvalidAction,
                "action",
                "must be retry or discard",
            )
        })?;
    let done =
        sync::handle_dead_letters(&state, &admin, action, body.value.ticket.as_deref()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"action": action, "handled": done})))
}
