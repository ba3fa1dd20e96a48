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
    .service(resource("/admin/outbox").route(web::get().to(list_outbox)));
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
    let b = body.value;
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
    state.store.durable().await?;
    tracing::info!(admin = %caller.user.email, user = %user.email, role = ?user.role, "account created");
    Ok(HttpResponse::Created().json(UserView::from(&user)))
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
