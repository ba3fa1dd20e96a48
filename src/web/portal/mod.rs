//! The customer portal: sign-in, the dashboard, the new-ticket form and the ticket page (with who
//! is on it: people.rs). One file per page; each parses its form and calls the same use cases as the REST API (`service`).

mod dashboard;
pub(super) mod form;
mod new_ticket;
mod people;
mod session;
mod sso;
mod ticket;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::{Page, PageError};
use crate::domain::Role;
use crate::service::Caller;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/sign-in", web::get().to(session::form))
        .route("/sign-in", web::post().to(session::sign_in))
        .route("/sign-in/oidc", web::get().to(sso::start))
        .route("/sign-in/oidc/callback", web::get().to(sso::callback))
        .route("/sign-out", web::post().to(session::sign_out))
        .route("/language", web::post().to(session::language))
        .route("/tickets", web::get().to(dashboard::show))
        .route("/tickets.csv", web::get().to(dashboard::export_csv))
        .route("/tickets/new", web::get().to(new_ticket::form))
        .route("/tickets/new", web::post().to(new_ticket::submit))
        .route("/tickets/{number}", web::get().to(ticket::show))
        .route("/tickets/{number}/reply", web::post().to(ticket::reply))
        .route("/tickets/{number}/confirm", web::post().to(ticket::confirm))
        .route("/tickets/{number}/reopen", web::post().to(ticket::reopen))
        .route("/tickets/{number}/cc", web::post().to(people::add))
        .route(
            "/tickets/{number}/cc/remove",
            web::post().to(people::remove),
        );
}

async fn index(page: Page) -> HttpResponse {
    let to = match &page.caller {
        Some(c) if c.is_admin() => "/admin",
        Some(_) => "/tickets",
        None => "/sign-in",
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

/// The signed-in customer; an admin or the integration account gets a page saying this is for
/// customers.
fn customer(page: &Page) -> Result<&Caller, PageError> {
    let caller = page.require()?;
    if caller.user.role == Role::Customer {
        Ok(caller)
    } else {
        Err(PageError::new(
            page.tr,
            StatusCode::FORBIDDEN,
            "error-customers-only",
        ))
    }
}
