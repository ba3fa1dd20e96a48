//! Admin-only endpoints: accounts and the outbox.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{new_account, validate_account};
use super::resource;
use crate::domain::validate::{self, ORGANIZATION_MAX_CHARS};
use crate::domain::{Role, Validation};
use crate::error::{ApiResult, ErrorEnvelope};
use crate::http::AppState;
use crate::http::extract::{Caller, ValidJson};
use crate::http::views::{Items, UserView};
use crate::store::OutboxEntry;

type State = web::Data<AppState>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/admin/users")
            .route(web::get().to(list_users))
            .route(web::post().to(create_user)),
    )
    .service(resource("/admin/outbox").route(web::get().to(list_outbox)))
    .service(resource("/admin/sync").route(web::get().to(sync_health)))
    .service(resource("/admin/sync/run").route(web::post().to(sync_run)))
    .service(
        resource("/admin/sync/dead-letters/{seq}/{action}")
            .route(web::post().to(dead_letter_action)),
    );
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    pub email: String,
    pub name: String,
    /// At least 10 characters.
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub organization: String,
}

#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = CreateUserBody,
    responses((status = 201, body = UserView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create_user(
    state: State,
    caller: Caller,
    body: ValidJson<CreateUserBody>,
) -> ApiResult<HttpResponse> {
    caller.require_admin()?;
    let user = create_account(&state, &caller, body.value).await?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

/// Creates an account (the API's and the console's), recorded in the audit log.
pub(crate) async fn create_account(
    state: &AppState,
    caller: &Caller,
    b: CreateUserBody,
) -> ApiResult<crate::domain::User> {
    let mut v = Validation::default();
    validate_account(&mut v, &b.email, &b.name, &b.password);
    validate::optional_line(
        &mut v,
        "organization",
        Some(&b.organization),
        ORGANIZATION_MAX_CHARS,
    );
    v.into_result()?;
    let user =
        web::block(move || new_account(&b.email, &b.name, &b.password, b.role, &b.organization))
            .await
            .map_err(|e| crate::error::ApiError::internal(&e))?;
    state.store.create_user(&user)?;
    state.store.audit(
        &caller.user.email,
        "user.created",
        &format!("{} ({:?})", user.email, user.role),
    )?;
    state.store.durable().await?;
    tracing::info!(admin = %caller.user.email, user = %user.email, role = ?user.role, "account created");
    Ok(user)
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin",
    responses((status = 200, body = Items<UserView>), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list_users(state: State, caller: Caller) -> ApiResult<web::Json<Items<UserView>>> {
    caller.require_admin()?;
    let items = state.store.users()?.iter().map(UserView::from).collect();
    Ok(web::Json(Items { items }))
}

#[derive(Debug, Deserialize)]
pub struct OutboxQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/admin/outbox", tag = "admin",
    params(("after" = Option<u64>, Query, description = "Only entries with a larger seq"),
        ("limit" = Option<usize>, Query, description = "At most this many, 1 to 1000 (default 100)")),
    responses((status = 200, body = Items<OutboxEntry>), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list_outbox(
    state: State,
    caller: Caller,
    query: web::Query<OutboxQuery>,
) -> ApiResult<web::Json<Items<OutboxEntry>>> {
    caller.require_admin()?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let items = state.store.outbox_after(query.after.unwrap_or(0), limit)?;
    Ok(web::Json(Items { items }))
}

/// Sync health: queue, dead letters, poll state, import progress.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SyncView {
    /// Whether `sdp.base_url` is set and the sync runs.
    pub enabled: bool,
    pub queue_depth: usize,
    /// Age in seconds of the oldest undelivered change.
    pub oldest_pending_secs: Option<i64>,
    pub watermark: Option<i64>,
    pub import: Option<crate::sync::ImportProgress>,
    pub stats: Option<crate::sync::SyncStats>,
    pub dead_letters: Vec<OutboxEntry>,
}

#[utoipa::path(get, path = "/api/v1/admin/sync", tag = "admin",
    responses((status = 200, body = SyncView), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn sync_health(state: State, caller: Caller) -> ApiResult<web::Json<SyncView>> {
    caller.require_admin()?;
    Ok(web::Json(sync_view(&state).await?))
}

/// The sync's health as the API and the console show it.
pub(crate) async fn sync_view(state: &AppState) -> ApiResult<SyncView> {
    let pending = state.store.outbox_after(0, 1)?;
    let now = time::OffsetDateTime::now_utc();
    let sync = state.sync();
    let sync_stats = match &sync {
        Some(sync) => Some(sync.send(crate::actors::sync::GetStats).await?),
        None => None,
    };
    Ok(SyncView {
        enabled: sync.is_some(),
        queue_depth: state.store.outbox_len(),
        oldest_pending_secs: pending.first().map(|e| (now - e.at).whole_seconds()),
        watermark: state.store.sync_value("watermark")?,
        import: state.store.sync_value("import")?,
        stats: sync_stats,
        dead_letters: state.store.dead_letters()?,
    })
}

#[utoipa::path(post, path = "/api/v1/admin/sync/run", tag = "admin",
    responses((status = 202, description = "A poll starts now"), (status = 503, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn sync_run(state: State, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require_admin()?;
    let sync = state.sync().ok_or_else(sync_off)?;
    sync.do_send(crate::actors::sync::SyncNow);
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status": "polling"})))
}

fn sync_off() -> crate::error::ApiError {
    crate::error::ApiError::new(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        "sync-off",
        "sync with ServiceDesk Plus is not configured",
    )
}

#[utoipa::path(post, path = "/api/v1/admin/sync/dead-letters/{seq}/{action}", tag = "admin",
    params(("seq" = u64, Path), ("action" = String, Path, description = "retry | discard")),
    responses((status = 200, body = OutboxEntry), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn dead_letter_action(
    state: State,
    caller: Caller,
    path: web::Path<(u64, String)>,
) -> ApiResult<HttpResponse> {
    caller.require_admin()?;
    let (seq, action) = path.into_inner();
    let retry = match action.as_str() {
        "retry" => true,
        "discard" => false,
        _ => {
            return Err(crate::error::ApiError::not_found(
                "not-found",
                "no such endpoint",
            ));
        }
    };
    handle_dead_letter(&state, &caller, seq, retry).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"seq": seq, "action": action})))
}

/// Retries or discards a dead letter (the API's and the console's), recorded in the audit log.
pub(crate) async fn handle_dead_letter(
    state: &AppState,
    caller: &Caller,
    seq: u64,
    retry: bool,
) -> ApiResult<()> {
    let action = if retry { "retry" } else { "discard" };
    let done = state.store.transact(|tx| {
        if retry {
            crate::sync::outbound::retry_dead_letter(tx, seq)
        } else {
            crate::sync::outbound::discard_dead_letter(tx, seq)
        }
    })?;
    if !done {
        return Err(crate::error::ApiError::not_found(
            "dead-letter-not-found",
            "no such dead letter",
        ));
    }
    state.store.audit(
        &caller.user.email,
        &format!("dead_letter.{action}"),
        &seq.to_string(),
    )?;
    state.store.durable().await?;
    tracing::info!(admin = %caller.user.email, seq, action, "dead letter handled");
    if let Some(sync) = state.sync() {
        sync.do_send(crate::actors::sync::Kick);
    }
    Ok(())
}
