//! Signing in and out, and the language preference.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::http::extract::client_address;
use crate::http::session;
use crate::service::{AppState, accounts, sso};
use crate::web::i18n::{LANG_COOKIE, Lang};
use crate::web::{FormErrors, Page, PageError, cookie, local_path, parse_form, see_other};

type State = web::Data<AppState>;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    page: &'a Page,
    email: &'a str,
    next: &'a str,
    error: Option<String>,
    sso: Option<SsoButton>,
    /// Customers sign in only through the provider: the password form is for admins.
    sso_only: bool,
    /// After signing out of a session begun at the provider: its own sign-out.
    provider_sign_out: Option<String>,
}

/// "Sign in with ...": where it goes and what it says.
struct SsoButton {
    href: String,
    label: String,
}

impl<'a> SignInPage<'a> {
    fn new(page: &'a Page, state: &AppState, email: &'a str, next: &'a str) -> SignInPage<'a> {
        let sso = state.oidc.as_ref().map(|_| {
            let label = &state.config.oidc.button_label;
            let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
            SsoButton {
                href: format!("/sign-in/oidc?{query}"),
                label: if label.is_empty() {
                    page.t("sign-in-sso-default")
                } else {
                    page.t1("sign-in-sso", "provider", label)
                },
            }
        });
        SignInPage {
            page,
            email,
            next,
            error: None,
            sso,
            sso_only: state.config.oidc.customers_sso_only,
            provider_sign_out: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SignInForm {
    email: String,
    password: String,
    next: String,
    /// "Keep me signed in": the cookie outlives the browser, up to the session's lifetime.
    remember: String,
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
    /// Set by signing out of a session begun at the identity provider.
    #[serde(default)]
    provider_sign_out: bool,
}

pub(super) async fn form(
    page: Page,
    req: HttpRequest,
    state: State,
    query: web::Query<NextQuery>,
) -> HttpResponse {
    let next = query.next.as_deref().and_then(local_path).unwrap_or("/");
    let mut body = SignInPage::new(&page, &state, "", next);
    if query.provider_sign_out && !page.signed_in() {
        let back = format!("{}/sign-in", super::sso::origin(&state, &req));
        body.provider_sign_out = sso::provider_sign_out(&state, &back).await;
    }
    page.render(&body)
}

pub(super) async fn sign_in(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form: SignInForm = page.submitted(&req, &body)?;
    let next = local_path(&form.next).unwrap_or("/").to_owned();
    let old = session::current(&req);
    let started = accounts::start_session(
        &state,
        client_address(&req),
        old.as_deref(),
        &form.email,
        &form.password,
    )
    .await;
    match started {
        Ok((user, issued)) => {
            tracing::info!(user = %user.email, "signed in to the portal");
            let mut response = see_other(&next, None, &req);
            response
                .add_cookie(&session::cookie(
                    &req,
                    issued.token,
                    (!form.remember.is_empty()).then_some(issued.expires_at),
                ))
                .map_err(|_| PageError::internal(page.tr))?;
            Ok(response)
        }
        Err(e) => {
            let mut page_body = SignInPage::new(&page, &state, &form.email, &next);
            page_body.error = FormErrors::from_api(page.tr, &e).summary;
            Ok(page.render_status(e.status(), &page_body))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SignOutForm {
    csrf: String,
}

pub(super) async fn sign_out(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form: SignOutForm = parse_form(page.tr, &body)?;
    let mut at_provider = false;
    if let Some(caller) = &page.caller {
        page.check_form(&req, &form.csrf)?;
        at_provider = sso::began_at_provider(&state, caller);
        accounts::sign_out(&state, caller)
            .await
            .map_err(page.api())?;
    }
    // The provider's sign-out is offered as a link on the next page: a form may not redirect
    // off-site (CSP form-action 'self').
    let to = if at_provider {
        "/sign-in?provider_sign_out=true"
    } else {
        "/sign-in"
    };
    let mut response = see_other(to, Some("signed-out"), &req);
    response
        .add_cookie(&session::cleared(&req))
        .map_err(|_| PageError::internal(page.tr))?;
    Ok(response)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LanguageForm {
    lang: String,
    next: String,
}

/// Switching language takes the CSRF token too: another site could otherwise send the visitor
/// anywhere `next` allows, and change their language behind their back.
pub(super) async fn language(
    page: Page,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form: LanguageForm = page.submitted(&req, &body)?;
    let lang = Lang::parse(&form.lang).unwrap_or(Lang::En);
    let next = local_path(&form.next).unwrap_or("/");
    let mut response = see_other(next, None, &req);
    let mut chosen = cookie(LANG_COOKIE, lang.code().to_owned(), &req);
    chosen.set_max_age(time::Duration::days(365));
    response
        .add_cookie(&chosen)
        .map_err(|_| PageError::internal(page.tr))?;
    Ok(response)
}
