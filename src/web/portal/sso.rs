//! Signing in with the identity provider: `/sign-in/oidc` sends the browser there with a cookie
//! that binds the sign-in to it, and `/sign-in/oidc/callback` takes the answer and, once every
//! check passed, starts a session exactly as the password form does.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::http::client::Client;
use crate::http::extract::client_address;
use crate::http::session;
use crate::oidc::Callback;
use crate::service::{AppState, sso};
use crate::web::{Page, PageError, cookie, local_path, see_other};

type State = web::Data<AppState>;

/// Holds the value that binds a sign-in in progress to this browser.
const BINDING_COOKIE: &str = "deskbridge_oidc";
const CALLBACK_PATH: &str = "/sign-in/oidc/callback";
/// The binding cookie is sent only to the callback's path.
const BINDING_PATH: &str = "/sign-in/oidc";

/// This appliance's address as browsers reach it: `server.public_url`, else the request's own.
pub(super) fn origin(state: &AppState, req: &HttpRequest) -> String {
    let public = state.config.server.public_url.trim_end_matches('/');
    if public.is_empty() {
        let client = Client::of(req);
        format!("{}://{}", client.scheme(), client.host)
    } else {
        public.to_owned()
    }
}

#[derive(Deserialize)]
pub(super) struct StartQuery {
    next: Option<String>,
}

pub(super) async fn start(
    page: Page,
    req: HttpRequest,
    state: State,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, PageError> {
    let next = query.next.as_deref().and_then(local_path).unwrap_or("/");
    let redirect = format!("{}{CALLBACK_PATH}", origin(&state, &req));
    let started = sso::begin(&state, client_address(&req), &redirect, next)
        .await
        .map_err(page.api())?;
    let mut binding = cookie(BINDING_COOKIE, started.binding, &req);
    binding.set_path(BINDING_PATH);
    binding.set_max_age(
        time::Duration::try_from(sso::PENDING_TTL).unwrap_or(time::Duration::minutes(10)),
    );
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", started.url))
        .cookie(binding)
        .finish())
}

pub(super) async fn callback(
    page: Page,
    req: HttpRequest,
    state: State,
) -> Result<HttpResponse, PageError> {
    let back: Callback = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| PageError::from_api(page.tr, &bad_callback()))?;
    let binding = req.cookie(BINDING_COOKIE).map(|c| c.value().to_owned());
    let old = session::current(&req);
    let (user, issued, next) = sso::finish(
        &state,
        client_address(&req),
        old.as_deref(),
        &back,
        binding.as_deref(),
    )
    .await
    .map_err(page.api())?;
    tracing::info!(user = %user.email, "signed in to the portal with single sign-on");
    let mut response = see_other(local_path(&next).unwrap_or("/"), None, &req);
    let mut spent = cookie(BINDING_COOKIE, String::new(), &req);
    spent.set_path(BINDING_PATH);
    spent.make_removal();
    for c in [session::cookie(&req, issued.token, None), spent] {
        response
            .add_cookie(&c)
            .map_err(|_| PageError::internal(page.tr))?;
    }
    Ok(response)
}

fn bad_callback() -> crate::error::ApiError {
    crate::error::ApiError::new(
        crate::error::ErrorCode::SsoStateInvalid,
        "the identity provider's answer could not be read",
    )
}
