//! `/api/v1/admin/organizations`: organisations as the console manages them (admins only).

use actix_web::{HttpResponse, web};

use super::resource;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::http::extract::{Admin, ValidJson};
use crate::http::views::Items;
use crate::service::AppState;
use crate::service::orgs::{self, OrgInput, OrgView};

type State = web::Data<AppState>;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/admin/organizations")
            .route(web::get().to(list_orgs))
            .route(web::post().to(create_org)),
    )
    .service(
        resource("/admin/organizations/{id}")
            .route(web::get().to(get_org))
            .route(web::put().to(update_org)),
    );
}

#[utoipa::path(get, path = "/api/v1/admin/organizations", tag = "admin",
    responses((status = 200, body = Items<OrgView>), (status = 403, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn list_orgs(state: State, _: Admin) -> ApiResult<web::Json<Items<OrgView>>> {
    Ok(web::Json(Items {
        items: orgs::views(&state)?,
    }))
}

#[utoipa::path(post, path = "/api/v1/admin/organizations", tag = "admin", request_body = OrgInput,
    responses((status = 201, body = OrgView), (status = 403, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub(crate) async fn create_org(
    state: State,
    Admin(admin): Admin,
    body: ValidJson<OrgInput>,
) -> ApiResult<HttpResponse> {
    let org = orgs::save(&state, &admin, None, body.value).await?;
    Ok(HttpResponse::Created().json(orgs::view(&state, org.id)?))
}

#[utoipa::path(get, path = "/api/v1/admin/organizations/{id}", tag = "admin",
    params(("id" = String, Path, description = "The organisation's id")),
    responses((status = 200, body = OrgView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub(crate) async fn get_org(
    state: State,
    _: Admin,
    id: web::Path<String>,
) -> ApiResult<web::Json<OrgView>> {
    let id = orgs::parse_id(&id)?;
    Ok(web::Json(orgs::view(&state, id)?))
}

#[utoipa::path(put, path = "/api/v1/admin/organizations/{id}", tag = "admin", request_body = OrgInput,
    params(("id" = String, Path, description = "The organisation's id")),
    responses((status = 200, body = OrgView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub(crate) async fn update_org(
    state: State,
    Admin(admin): Admin,
    id: web::Path<String>,
    body: ValidJson<OrgInput>,
) -> ApiResult<web::Json<OrgView>> {
    let id = orgs::parse_id(&id)?;
    let org = orgs::save(&state, &admin, Some(id), body.value).await?;
    Ok(web::Json(orgs::view(&state, org.id)?))
}
