//! `/api/v1` and the operational endpoints.

pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod backup;
pub(crate) mod hooks;
pub(crate) mod system;
pub(crate) mod tickets;

use actix_web::web;
use utoipa::OpenApi;

use super::method_not_allowed;

/// Adds a resource whose unlisted methods answer 405 in the common error shape.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    system::configure(cfg);
    cfg.service(
        web::scope("/api/v1")
            .configure(auth::configure)
            .configure(admin::configure)
            .configure(backup::configure)
            .configure(tickets::configure)
            .configure(hooks::configure)
            .service(resource("/openapi.json").route(web::get().to(system::openapi))),
    );
}

#[derive(OpenApi)]
#[openapi(
    info(title = "deskbridge", description = "Customer tickets bridged to ManageEngine ServiceDesk Plus."),
    paths(
        auth::create_token, auth::delete_token, auth::create_session, auth::delete_session, auth::me, auth::setup,
        auth::change_password, auth::list_own_tokens, auth::revoke_own_token,
        admin::create_user, admin::list_users, admin::change_user, admin::list_user_tokens, admin::revoke_user_token, admin::list_outbox, admin::sync_health, admin::sync_run, admin::sync_sweep, admin::sync_pause, admin::sync_resume, admin::dead_letters_action,
        admin::dead_letter_action, backup::download_backup, hooks::sdp_webhook,
        tickets::create_ticket, tickets::list_tickets, tickets::get_ticket, tickets::list_events,
        tickets::list_messages, tickets::create_message, tickets::list_attachments, tickets::create_attachment,
        tickets::download_attachment, tickets::confirm_ticket, tickets::reopen_ticket,
        system::healthz, system::readyz, system::metrics,
    ),
    components(schemas(crate::error::ErrorEnvelope)),
    modifiers(&BearerAuth),
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
