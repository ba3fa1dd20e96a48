//! Who is on a ticket: the requester copies colleagues on it, or stops copying them, from the
//! ticket page; through the same use case as `/api/v1/tickets/{number}/cc`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::ticket::{Typed, render};
use crate::service::AppState;
use crate::service::tickets::{self, readable};
use crate::web::{FormErrors, Page, PageError, see_other};

type State = web::Data<AppState>;

#[derive(Deserialize, Default)]
#[serde(default)]
struct CcForm {
    email: String,
}

#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(super) async fn add(
    page: Page,
    req: HttpRequest,
    state: State,
    number: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    copy(page, req, state, &number, body, true).await
}

#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(super) async fn remove(
    page: Page,
    req: HttpRequest,
    state: State,
    number: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    copy(page, req, state, &number, body, false).await
}

async fn copy(
    page: Page,
    req: HttpRequest,
    state: State,
    number: &str,
    body: web::Bytes,
    add: bool,
) -> Result<HttpResponse, PageError> {
    let caller = page.require()?;
    let form: CcForm = page.submitted(&req, &body)?;
    let ticket = readable(&state, caller, number).map_err(|_| PageError::not_found(page.tr))?;
    match tickets::copy(&state, caller, &ticket, &form.email, add).await {
        Ok(ticket) => Ok(see_other(
            &format!("/tickets/{}#people", ticket.number),
            Some(if add { "cc-added" } else { "cc-removed" }),
            &req,
        )),
        Err(e) if e.status().is_client_error() => {
            let typed = Typed {
                cc: if add { &form.email } else { "" },
                errors: FormErrors::from_api(page.tr, &e),
                ..Typed::nothing()
            };
            render(&page, &state, caller, &ticket, typed, e.status())
        }
        Err(e) => Err(PageError::from_api(page.tr, &e)),
    }
}
