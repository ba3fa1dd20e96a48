//! The browser session cookie: `HttpOnly`, `SameSite=Lax`, `Secure` when the request came over
//! https (`client::secure`). The API's session endpoints and the sign-in page set it the same way.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use time::{Duration, OffsetDateTime};

use crate::auth::SESSION_COOKIE;

/// The session cookie for a secret that expires at `expires_at`.
pub(crate) fn cookie(
    req: &HttpRequest,
    secret: String,
    expires_at: OffsetDateTime,
) -> Cookie<'static> {
    build(req, secret, expires_at - OffsetDateTime::now_utc())
}

/// A cookie that clears the session in the browser.
pub(crate) fn cleared(req: &HttpRequest) -> Cookie<'static> {
    build(req, String::new(), Duration::ZERO)
}

fn build(req: &HttpRequest, value: String, max_age: Duration) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .finish();
    cookie.set_secure(crate::http::client::secure(req));
    cookie
}

/// The session secret the browser sent, if any.
pub(crate) fn current(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned())
}
