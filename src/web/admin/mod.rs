//! The admin console (`/admin`): first-run setup, the SDP connection and its test, the mapping
//! chosen from SDP's own lists, the portal's brand, users and API tokens, sync health with dead
//! letters, every ticket (list, CSV, a read-only page with its sync log), organisations and the
//! audit log. One file per page; each page
//! parses its form and calls the same use cases as the API (`service`). Settings saved here take
//! effect at once; keys fixed by the configuration file or environment show read-only with their
//! source.

mod audit;
mod branding;
mod mapping;
mod orgs;
mod overview;
mod sdp;
mod services;
mod setup;
mod tickets;
mod users;

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};

use super::{Page, PageError};
use crate::service::Caller;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(overview::show))
        .route("/admin/sync/run", web::post().to(overview::sync_run))
        .route("/admin/sync/sweep", web::post().to(overview::sync_sweep))
        .route("/admin/sync/pause", web::post().to(overview::pause))
        .route("/admin/sync/resume", web::post().to(overview::resume))
        .route(
            "/admin/dead-letters",
            web::post().to(overview::dead_letters),
        )
        .route(
            "/admin/dead-letters/{seq}",
            web::post().to(overview::dead_letter),
        )
        .route("/admin/setup", web::get().to(setup::form))
        .route("/admin/setup", web::post().to(setup::submit))
        .route("/admin/sdp", web::get().to(sdp::form))
        .route("/admin/sdp", web::post().to(sdp::save))
        .route("/admin/sdp/test", web::post().to(sdp::test))
        .route("/admin/mapping", web::get().to(mapping::form))
        .route("/admin/mapping", web::post().to(mapping::save))
        .route("/admin/organizations", web::get().to(orgs::list))
        .route("/admin/organizations", web::post().to(orgs::create))
        .route("/admin/organizations/{id}", web::post().to(orgs::change))
        .route("/admin/mapping/services", web::post().to(services::save))
        .route(
            "/admin/mapping/services/fetch",
            web::post().to(services::fetch),
        )
        .route("/admin/branding", web::get().to(branding::form))
        .route("/admin/branding", web::post().to(branding::save))
        .route("/admin/branding/reset", web::post().to(branding::reset))
        .route("/admin/users", web::get().to(users::list))
        .route("/admin/users", web::post().to(users::create))
        .route("/admin/users/{id}", web::post().to(users::change))
        .route(
            "/admin/users/{id}/tokens/{token}/revoke",
            web::post().to(users::revoke_token),
        )
        .route("/admin/audit", web::get().to(audit::log))
        .route("/admin/find", web::get().to(audit::find_ticket))
        .route("/admin/tickets", web::get().to(tickets::list))
        .route("/admin/tickets.csv", web::get().to(tickets::export_csv))
        .route("/admin/tickets/{number}", web::get().to(audit::ticket_log));
}

/// A console page whose visitor is a signed-in admin. Anyone else is sent where they belong before
/// the handler runs: to the first-run setup while no admin exists, to sign-in, or to a 403 page.
pub(super) struct AdminPage {
    pub page: Page,
}

impl AdminPage {
    pub(super) fn admin(&self) -> &Caller {
        self.page
            .caller
            .as_ref()
            .expect("an AdminPage is only built for a signed-in admin")
    }
}

impl FromRequest for AdminPage {
    type Error = PageError;
    type Future = std::future::Ready<Result<AdminPage, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let page = Page::of(req);
        let result = match &page.caller {
            Some(c) if c.is_admin() => Ok(AdminPage { page }),
            Some(_) => Err(PageError::new(
                page.tr,
                StatusCode::FORBIDDEN,
                "error-admins-only",
            )),
            None if crate::http::extract::state(req).setup_open() => {
                Err(PageError::Redirect("/admin/setup".into()))
            }
            None => Err(PageError::SignIn { next: page.here }),
        };
        std::future::ready(result)
    }
}
