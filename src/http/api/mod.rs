//! `/api/v1` and the operational endpoints.

pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod backup;
pub(crate) mod hooks;
pub(crate) mod orgs;
pub(crate) mod system;
pub(crate) mod tickets;

use actix_web::web;
use utoipa::OpenApi;

use super::method_not_allowed;
use crate::error::{ApiError, ErrorCode};

/// Adds a resource whose unlisted methods answer 405 in the common error shape.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    system::configure(cfg);
    cfg.service(
        web::scope("/api/v1")
            .app_data(extractor_errors())
            .app_data(path_errors())
            .configure(auth::configure)
            .configure(admin::configure)
            .configure(orgs::configure)
            .configure(backup::configure)
            .configure(tickets::configure)
            .configure(hooks::configure)
            .service(resource("/openapi.json").route(web::get().to(system::openapi))),
    );
}

/// A query string that does not fit answers in the common error shape, not actix's plain text.
fn extractor_errors() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e, _| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("the query string is malformed: {e}"),
        )
        .into()
    })
}

/// A path segment that cannot be what the route expects (`/dead-letters/-1/…`) names nothing.
fn path_errors() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|_, _| ApiError::new(ErrorCode::NotFound, "nothing is at this path").into())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "deskbridge", description = "Customer tickets bridged to ManageEngine ServiceDesk Plus."),
    paths(
        auth::create_token, auth::delete_token, auth::create_session, auth::delete_session, auth::me, auth::setup,
        auth::change_password, auth::list_own_tokens, auth::revoke_own_token,
        admin::create_user, admin::list_users, admin::change_user, admin::list_user_tokens, admin::revoke_user_token, admin::list_outbox, admin::sync_health, admin::sync_run, admin::sync_sweep, admin::sync_pause, admin::sync_resume, admin::dead_letters_action,
        admin::dead_letter_action, orgs::list_orgs, orgs::create_org, orgs::get_org, orgs::update_org,
        backup::download_backup, hooks::sdp_webhook,
        tickets::create_ticket, tickets::list_tickets, tickets::get_ticket, tickets::list_events,
        tickets::list_messages, tickets::create_message, tickets::list_attachments, tickets::create_attachment,
        tickets::download_attachment, tickets::confirm_ticket, tickets::reopen_ticket, tickets::add_cc, tickets::remove_cc,
        system::healthz, system::readyz, system::metrics,
    ),
    components(schemas(crate::error::ErrorEnvelope, crate::service::sync::DeadLetterAction)),
    modifiers(&BearerAuth, &ExtractorErrors),
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The answers every operation can give before its handler runs, added where an operation does not
/// name them itself: 401 and 403 (bearer token missing, dead, or of the wrong role), 404 (a path
/// naming nothing, or another customer's ticket), 400/415/422 (a body or query that is not
/// well-formed JSON, not JSON, or not the documented shape). All in the common error shape.
struct ExtractorErrors;

impl utoipa::Modify for ExtractorErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                        .build(),
                )
                .build()
        };
        for (path, item) in &mut openapi.paths.paths {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(description).into());
                };
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_query = op
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let has_body = op.request_body.is_some();
                if secured {
                    add("401", "No valid bearer token or session");
                    add("403", "The caller may not do this");
                }
                if path.contains('{') {
                    add("404", "Nothing found at this path");
                }
                if has_body || has_query {
                    add("400", "The body or query is malformed");
                    add("422", "A field is invalid");
                }
                if has_body {
                    add("415", "The body is not of the documented content type");
                }
            }
        }
    }
}
