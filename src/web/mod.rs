//! The browser pages: the customer portal and the admin console, rendered on the server from the
//! askama templates in `web/templates` (compiled in, autoescaped), with CSS and a little JS from
//! `web/static` (embedded). Every page works without JS; `app.js` adds live updates.
//!
//! Pages call the same use cases as the REST API (`service`); they only parse forms, render
//! HTML, and answer with redirects (post/redirect/get) instead of JSON.

mod admin;
pub(crate) mod assets;
mod brand;
mod export;
pub(crate) mod format;
pub(crate) mod i18n;
pub(crate) mod live;
mod portal;

use std::collections::BTreeMap;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::auth::{self, SESSION_COOKIE};
use crate::domain::User;
use crate::domain::brand::Branding;
use crate::error::ApiError;
use crate::http::{extract, session};
use crate::service::Caller;
use crate::store::StoreError;
use i18n::{Bundle, LANG_COOKIE, Lang};

/// Holds the anonymous CSRF secret for forms shown before sign-in (sign-in, first-run setup).
const CSRF_COOKIE: &str = "deskbridge_csrf";
/// A one-shot notice shown after a redirect; its value is a message key, never text.
const FLASH_COOKIE: &str = "deskbridge_flash";

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    assets::configure(cfg);
    brand::configure(cfg);
    live::configure(cfg);
    portal::configure(cfg);
    admin::configure(cfg);
}

/// What every page needs: the language, who is signed in, the CSRF token for its forms.
pub(crate) struct Page {
    pub tr: &'static Bundle,
    pub caller: Option<Caller>,
    pub csrf: String,
    /// Path and query of this page, for "come back here" links.
    pub here: String,
    pub flash: Option<String>,
    /// The portal's brand; `None` in the console and while nothing is branded.
    pub brand: Option<Branding>,
    cookies: Vec<Cookie<'static>>,
}

impl Page {
    pub(crate) fn t(&self, key: &str) -> String {
        self.tr.t(key)
    }

    pub(crate) fn t1(&self, key: &str, name: &str, value: impl std::fmt::Display) -> String {
        self.tr.t1(key, name, value)
    }

    pub(crate) fn lang(&self) -> &'static str {
        self.tr.lang().code()
    }

    pub(crate) fn user(&self) -> Option<&User> {
        self.caller.as_ref().map(|c| &c.user)
    }

    pub(crate) fn user_name(&self) -> &str {
        self.user().map_or("", |u| u.name.as_str())
    }

    /// Turns a use case's error into this page's error page.
    pub(crate) fn api(&self) -> impl Fn(ApiError) -> PageError + '_ {
        move |e| PageError::from_api(self.tr, &e)
    }

    /// Turns a failing store read into this page's error page (logged once, nothing internal shown).
    pub(crate) fn store(&self) -> impl Fn(StoreError) -> PageError + '_ {
        move |e| PageError::from_api(self.tr, &e.into())
    }

    /// The portal's name: the brand's, else deskbridge's.
    pub(crate) fn portal_name(&self) -> String {
        self.brand
            .as_ref()
            .and_then(|b| b.name.clone())
            .unwrap_or_else(|| self.t("app-name"))
    }

    pub(crate) fn brand_css(&self) -> Option<String> {
        self.brand.as_ref().and_then(brand::stylesheet_url)
    }

    pub(crate) fn brand_logo(&self) -> Option<String> {
        self.brand.as_ref().and_then(brand::logo_url)
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.caller.as_ref().is_some_and(Caller::is_admin)
    }

    pub(crate) fn signed_in(&self) -> bool {
        self.caller.is_some()
    }

    /// Every status as a filter's options: value and label in the page's language.
    pub(crate) fn status_options(&self) -> Vec<(&'static str, String)> {
        crate::domain::Status::ALL
            .iter()
            .map(|s| (s.as_str(), self.t(&format::status_key(*s))))
            .collect()
    }

    /// Renders a template as the answer, with the cookies this page needs.
    pub(crate) fn render(&self, template: &impl Template) -> HttpResponse {
        self.render_status(StatusCode::OK, template)
    }

    pub(crate) fn render_status(
        &self,
        status: StatusCode,
        template: &impl Template,
    ) -> HttpResponse {
        match template.render() {
            Ok(html) => {
                let mut response = HttpResponse::build(status);
                response.content_type("text/html; charset=utf-8");
                for cookie in &self.cookies {
                    response.cookie(cookie.clone());
                }
                response.body(html)
            }
            Err(e) => {
                tracing::error!(error = %e, "template failed to render");
                PageError::internal(self.tr).error_response()
            }
        }
    }

    /// The signed-in caller, or a redirect to the sign-in page that comes back here.
    pub(crate) fn require(&self) -> Result<&Caller, PageError> {
        self.caller.as_ref().ok_or_else(|| PageError::SignIn {
            next: self.here.clone(),
        })
    }

    /// Checks a submitted form's CSRF token and, when the browser sends one, its Origin (or
    /// Referer).
    pub(crate) fn check_form(&self, req: &HttpRequest, token: &str) -> Result<(), PageError> {
        let same_origin = session::provenance(req) != session::Provenance::CrossOrigin;
        if same_origin && !self.csrf.is_empty() && auth::secrets_equal(&self.csrf, token) {
            Ok(())
        } else {
            tracing::warn!(path = %req.path(), "form refused: CSRF token or origin mismatch");
            Err(PageError::new(self.tr, StatusCode::FORBIDDEN, "error-csrf"))
        }
    }
}

impl Page {
    /// A submitted `application/x-www-form-urlencoded` form, once its CSRF token (field `csrf`) and
    /// origin check out.
    pub(crate) fn submitted<T: serde::de::DeserializeOwned>(
        &self,
        req: &HttpRequest,
        body: &[u8],
    ) -> Result<T, PageError> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Token {
            csrf: String,
        }
        let token: Token = parse_form(self.tr, body)?;
        self.check_form(req, &token.csrf)?;
        parse_form(self.tr, body)
    }
}

pub(crate) fn language(req: &HttpRequest) -> Lang {
    req.cookie(LANG_COOKIE)
        .and_then(|c| Lang::parse(c.value()))
        .unwrap_or_else(|| {
            let accept = req
                .headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Lang::negotiate(accept)
        })
}

pub(crate) fn cookie(name: &'static str, value: String, req: &HttpRequest) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish();
    cookie.set_secure(crate::http::client::secure(req));
    cookie
}

fn removal(name: &'static str) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, "").path("/").finish();
    cookie.make_removal();
    cookie
}

impl FromRequest for Page {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Page, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(Page::of(req)))
    }
}

impl Page {
    /// What every page knows about its request: language, who is signed in, the CSRF token.
    pub(crate) fn of(req: &HttpRequest) -> Page {
        let tr = language(req).tr();
        let mut cookies = Vec::new();
        // Only the session cookie signs a page in; bearer tokens are for the API.
        let secret = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let caller = secret
            .as_ref()
            .and_then(|_| extract::authenticate(req).ok());
        let csrf = match (&caller, &secret) {
            (Some(_), Some(secret)) => session::csrf_token(secret),
            _ => match req.cookie(CSRF_COOKIE) {
                Some(c) if c.value().len() == 64 => c.value().to_owned(),
                _ => {
                    let secret = auth::new_secret("");
                    cookies.push(cookie(CSRF_COOKIE, secret.clone(), req));
                    secret
                }
            },
        };
        let flash = req.cookie(FLASH_COOKIE).and_then(|c| {
            cookies.push(removal(FLASH_COOKIE));
            let key = format!("flash-{}", c.value());
            tr.has(&key).then(|| tr.t(&key))
        });
        let here = match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        };
        Page {
            tr,
            caller,
            csrf,
            here,
            flash,
            brand: brand::for_page(req),
            cookies,
        }
    }
}

/// A redirect after a successful form (post/redirect/get), with an optional notice.
pub(crate) fn see_other(to: &str, flash: Option<&'static str>, req: &HttpRequest) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    response.insert_header((header::LOCATION, to));
    if let Some(key) = flash {
        response.cookie(cookie(FLASH_COOKIE, key.to_owned(), req));
    }
    response.finish()
}

/// A local path to return to: only a same-origin absolute path, never `//host` or a scheme.
/// Browsers drop tabs and newlines from a URL and read `\` as `/`, so `/<TAB>/host` and `/\host`
/// lead off-site: any control character, space or backslash refuses the path outright.
pub(crate) fn local_path(next: &str) -> Option<&str> {
    let visible = next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    (visible && next.starts_with('/') && !next.starts_with("//")).then_some(next)
}

/// Why a page could not be shown, rendered as a page in the visitor's language.
#[derive(Debug)]
pub(crate) enum PageError {
    SignIn {
        next: String,
    },
    /// Somewhere else first (the first-run setup before anyone can sign in).
    Redirect(String),
    Shown {
        status: StatusCode,
        title: String,
        detail: String,
        lang: Lang,
    },
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    tr: &'static Bundle,
    title: &'a str,
    detail: &'a str,
}

impl ErrorPage<'_> {
    fn t(&self, key: &str) -> String {
        self.tr.t(key)
    }

    fn lang(&self) -> &'static str {
        self.tr.lang().code()
    }
}

impl PageError {
    pub(crate) fn new(tr: &'static Bundle, status: StatusCode, key: &str) -> PageError {
        PageError::Shown {
            status,
            title: tr.t(key),
            detail: tr.t(&format!("{key}-detail")),
            lang: tr.lang(),
        }
    }

    pub(crate) fn not_found(tr: &'static Bundle) -> PageError {
        PageError::new(tr, StatusCode::NOT_FOUND, "error-not-found")
    }

    pub(crate) fn internal(tr: &'static Bundle) -> PageError {
        PageError::new(tr, StatusCode::INTERNAL_SERVER_ERROR, "error-internal")
    }

    /// An API error met while serving a page: its status, with the message translated by code
    /// where there is one.
    pub(crate) fn from_api(tr: &'static Bundle, e: &ApiError) -> PageError {
        let key = format!("error-{}", e.body.code);
        let detail = if tr.has(&key) {
            tr.t(&key)
        } else {
            e.body.message.clone()
        };
        PageError::Shown {
            status: e.status(),
            title: tr.t("error-title"),
            detail,
            lang: tr.lang(),
        }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::SignIn { .. } => f.write_str("sign-in required"),
            PageError::Redirect(to) => write!(f, "see {to}"),
            PageError::Shown { status, title, .. } => write!(f, "{status}: {title}"),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn { .. } | PageError::Redirect(_) => StatusCode::SEE_OTHER,
            PageError::Shown { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::SignIn { next } => {
                let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, format!("/sign-in?{query}")))
                    .finish()
            }
            PageError::Redirect(to) => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to.as_str()))
                .finish(),
            PageError::Shown {
                status,
                title,
                detail,
                lang,
            } => {
                let page = ErrorPage {
                    tr: lang.tr(),
                    title,
                    detail,
                };
                let html = page.render().unwrap_or_else(|_| title.clone());
                HttpResponse::build(*status)
                    .content_type("text/html; charset=utf-8")
                    .body(html)
            }
        }
    }
}

/// Field errors to show beside the inputs, translated where the message is known.
#[derive(Debug, Default)]
pub(crate) struct FormErrors {
    pub fields: BTreeMap<String, String>,
    pub summary: Option<String>,
}

impl FormErrors {
    pub(crate) fn from_api(tr: &'static Bundle, e: &ApiError) -> FormErrors {
        let key = format!("error-{}", e.body.code);
        let summary = if tr.has(&key) {
            tr.t(&key)
        } else {
            e.body.message.clone()
        };
        FormErrors {
            fields: e.body.fields.clone().unwrap_or_default(),
            summary: Some(summary),
        }
    }

    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

/// Fields one url-encoded form may carry: the console's mapping form has one per SDP status.
const FORM_MAX_FIELDS: usize = 500;
/// Bytes one url-encoded form may carry (the body extractor's own limit, said here on purpose).
const FORM_MAX_BYTES: usize = 256 * 1024;

/// Parses an `application/x-www-form-urlencoded` body, refusing one with too many fields or bytes.
pub(crate) fn parse_form<T: serde::de::DeserializeOwned>(
    tr: &'static Bundle,
    body: &[u8],
) -> Result<T, PageError> {
    let fields = body.split(|b| *b == b'&').count();
    if body.len() > FORM_MAX_BYTES || fields > FORM_MAX_FIELDS {
        return Err(PageError::new(
            tr,
            StatusCode::PAYLOAD_TOO_LARGE,
            "error-form-too-large",
        ));
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|_| PageError::new(tr, StatusCode::BAD_REQUEST, "error-bad-form"))
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_same_origin_paths_are_returned_to() {
        assert_eq!(local_path("/tickets?page=2"), Some("/tickets?page=2"));
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            "https://evil.example",
            "evil.example",
            "/ /x",
            "",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }
}
