//! First-run setup: the first admin, with the one-time token from the log; then straight to the
//! SDP settings, signed in.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::ErrorCode;
use crate::http::extract::client_address;
use crate::http::session;
use crate::service::AppState;
use crate::service::accounts;
use crate::web::{FormErrors, Page, PageError, see_other};

type State = web::Data<AppState>;

#[derive(Template)]
#[template(path = "admin_setup.html")]
struct Setup<'a> {
    page: &'a Page,
    email: String,
    name: String,
    errors: FormErrors,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SetupForm {
    token: String,
    email: String,
    name: String,
    password: String,
}

pub(super) async fn form(page: Page, req: HttpRequest, state: State) -> HttpResponse {
    if !state.setup_open() {
        return see_other("/admin", None, &req);
    }
    page.render(&Setup {
        page: &page,
        email: String::new(),
        name: String::new(),
        errors: FormErrors::default(),
    })
}

pub(super) async fn submit(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form: SetupForm = page.submitted(&req, &body)?;
    let created = accounts::create_first_admin(
        &state,
        &form.token,
        form.email.clone(),
        form.name.clone(),
        form.password.clone(),
    )
    .await;
    match created {
        Ok(user) => {
            let (_, issued) = accounts::start_session(
                &state,
                client_address(&req),
                None,
                &user.email,
                &form.password,
            )
            .await
            .map_err(page.api())?;
            let mut response = see_other("/admin/sdp", Some("setup-done"), &req);
            response
                .add_cookie(&session::cookie(&req, issued.token, None))
                .map_err(|_| PageError::internal(page.tr))?;
            Ok(response)
        }
        Err(e) if e.code == ErrorCode::SetupDone => {
            Ok(see_other("/sign-in?next=/admin", None, &req))
        }
        Err(e) => Ok(page.render_status(
            e.status(),
            &Setup {
                page: &page,
                email: form.email,
                name: form.name,
                errors: FormErrors::from_api(page.tr, &e),
            },
        )),
    }
}
