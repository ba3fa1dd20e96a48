//! The portal's brand: name, logo, primary colour, footer and support contact. A multipart form (the
//! logo is a file); the rules and the audit are `service::branding`'s.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::AdminPage;
use crate::domain::brand::{BrandText, LOGO_MAX_BYTES};
use crate::error::ApiError;
use crate::service::AppState;
use crate::service::branding::{self, LogoChange};
use crate::web::format::size as format_size;
use crate::web::portal::form::{self, FileRule, FormFailure, PageForm};
use crate::web::{FormErrors, Page, PageError, see_other};

type State = web::Data<AppState>;

#[derive(Template)]
#[template(path = "admin_branding.html")]
struct BrandingPage<'a> {
    page: &'a Page,
    text: BrandText,
    /// The saved logo's address, when there is one.
    logo: Option<String>,
    logo_max: String,
    errors: FormErrors,
}

fn branding_page<'a>(
    page: &'a Page,
    state: &AppState,
    text: Option<BrandText>,
    errors: FormErrors,
) -> Result<BrandingPage<'a>, PageError> {
    let saved = state.store.branding().map_err(page.store())?;
    Ok(BrandingPage {
        page,
        text: text.unwrap_or_else(|| saved.text()),
        logo: crate::web::brand::logo_url(&saved),
        logo_max: format_size(LOGO_MAX_BYTES),
        errors,
    })
}

pub(super) async fn form(admin: AdminPage, state: State) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    Ok(page.render(&branding_page(page, &state, None, FormErrors::default())?))
}

/// The logo: one file, within [`LOGO_MAX_BYTES`].
fn logo_rule() -> FileRule {
    FileRule {
        count: 1,
        bytes: LOGO_MAX_BYTES,
        too_large: branding::logo_too_large,
    }
}

pub(super) async fn save(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let mut form = match form::read(page, &req, &state, payload, &logo_rule()).await {
        Ok(form) => form,
        Err(FormFailure::Page(e)) => return Err(e),
        Err(FormFailure::Api(e, typed)) => {
            return refused(page, &state, typed.as_ref().map(typed_text), &e);
        }
    };
    let text = typed_text(&form);
    let logo = match form.files.pop() {
        Some((_, staged)) => LogoChange::Replace(staged),
        None if form.get("remove_logo") == "1" => LogoChange::Remove,
        None => LogoChange::Keep,
    };
    match branding::save(&state, admin.admin(), &text, logo).await {
        Ok(_) => Ok(see_other("/admin/branding", Some("branding-saved"), &req)),
        Err(e) if e.status().is_client_error() => refused(page, &state, Some(text), &e),
        Err(e) => Err(PageError::from_api(page.tr, &e)),
    }
}

fn typed_text(form: &PageForm) -> BrandText {
    BrandText {
        name: form.get("name").to_owned(),
        colour: form.get("colour").to_owned(),
        footer: form.get("footer").to_owned(),
        support: form.get("support").to_owned(),
    }
}

/// The form again, with what was typed (when it was read) and why it was refused.
fn refused(
    page: &Page,
    state: &AppState,
    text: Option<BrandText>,
    e: &ApiError,
) -> Result<HttpResponse, PageError> {
    let errors = FormErrors::from_api(page.tr, e);
    let body = branding_page(page, state, text, errors)?;
    Ok(page.render_status(form::form_status(e), &body))
}

pub(super) async fn reset(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let _: serde::de::IgnoredAny = page.submitted(&req, &body)?;
    branding::reset(&state, admin.admin())
        .await
        .map_err(page.api())?;
    Ok(see_other("/admin/branding", Some("branding-reset"), &req))
}
