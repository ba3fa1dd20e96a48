//! The browser session cookie: `HttpOnly`, `SameSite=Lax`, `Secure` when the request came over
//! https (`client::secure`). The API's session endpoints and the sign-in page set it the same way.
//! Also what proves a cookie-carrying request came from our own pages: the session's CSRF token
//! and the origin.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::auth::SESSION_COOKIE;

/// The session cookie for a secret. Without `remember_until` it has no Max-Age and ends with the
/// browser; with it ("keep me signed in") it lasts until then, the session's end.
pub(crate) fn cookie(
    req: &HttpRequest,
    secret: String,
    remember_until: Option<OffsetDateTime>,
) -> Cookie<'static> {
    build(
        req,
        secret,
        remember_until.map(|at| at - OffsetDateTime::now_utc()),
    )
}

/// A cookie that clears the session in the browser.
pub(crate) fn cleared(req: &HttpRequest) -> Cookie<'static> {
    build(req, String::new(), Some(Duration::ZERO))
}

fn build(req: &HttpRequest, value: String, max_age: Option<Duration>) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish();
    if let Some(max_age) = max_age {
        cookie.set_max_age(max_age);
    }
    cookie.set_secure(crate::http::client::secure(req));
    cookie
}

/// The session secret the browser sent, if any.
pub(crate) fn current(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned())
}

/// The CSRF token of a session: derived from the session secret, which only the browser holds
/// (in an `HttpOnly` cookie), so another site cannot know it. Pages put it in their forms and in
/// `<meta name="csrf-token">`; API calls made with the cookie send it in [`CSRF_HEADER`].
pub(crate) fn csrf_token(secret: &str) -> String {
    let digest = Sha256::digest(format!("deskbridge-csrf\0{secret}"));
    hex::encode(&digest[..16])
}

/// Where a cookie-authenticated API write carries the page's CSRF token.
pub(crate) const CSRF_HEADER: &str = "X-CSRF-Token";

/// What the request says about the page that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provenance {
    SameOrigin,
    CrossOrigin,
    /// Neither `Origin` nor `Referer` was sent.
    Unknown,
}

/// Compares `Origin`, or `Referer` when there is no `Origin`, with the host the request reached.
pub(crate) fn provenance(req: &HttpRequest) -> Provenance {
    let headers = req.headers();
    let Some(value) = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
    else {
        return Provenance::Unknown;
    };
    // The host as the client named it; a forwarded one only from a trusted proxy.
    let host = crate::http::client::Client::of(req).host;
    let same = value.to_str().ok().is_some_and(|v| {
        v.split_once("://").is_some_and(|(_, rest)| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            authority.eq_ignore_ascii_case(&host)
        })
    });
    if same {
        Provenance::SameOrigin
    } else {
        Provenance::CrossOrigin
    }
}
