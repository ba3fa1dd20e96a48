//! The portal's brand as the browser loads it: `/brand.css` sets the primary colour (the CSP
//! allows no inline style) and `/brand/logo` serves the logo with its sniffed type. Both are public,
//! since the sign-in page wears the brand, and revalidated by `ETag` (a content hash).

use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use super::assets::cached;
use crate::domain::brand::Branding;
use crate::service::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/brand.css", web::get().to(stylesheet))
        .route("/brand/logo", web::get().to(logo));
}

/// The brand for a page: none in the console, which keeps deskbridge's own look.
pub(crate) fn for_page(req: &HttpRequest) -> Option<Branding> {
    if req.path() == "/admin" || req.path().starts_with("/admin/") {
        return None;
    }
    let state = crate::http::extract::state(req);
    match state.store.branding() {
        Ok(brand) if !brand.is_default() => Some(brand),
        Ok(_) => None,
        Err(e) => {
            // A page in the default look beats no page.
            tracing::error!(error = %e, "the portal's brand could not be read");
            None
        }
    }
}

/// Where a page links the brand's stylesheet and logo; the query changes with the content, so a
/// new colour or logo is fetched at once.
pub(crate) fn stylesheet_url(brand: &Branding) -> Option<String> {
    brand
        .colour
        .map(|c| format!("/brand.css?v={}", &c.to_string()[1..]))
}

pub(crate) fn logo_url(brand: &Branding) -> Option<String> {
    brand
        .logo
        .as_ref()
        .map(|l| format!("/brand/logo?v={}", &l.sha256[..16]))
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("not found")
}

async fn stylesheet(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // The colour was checked on saving; Rgb prints only `#rrggbb`.
    let css = match state.store.branding() {
        Ok(Branding {
            colour: Some(c), ..
        }) => format!(":root {{ --brand: {c}; }}\n"),
        Ok(_) => String::new(),
        Err(e) => {
            tracing::error!(error = %e, "the portal's brand could not be read");
            String::new()
        }
    };
    let etag = hex::encode(&Sha256::digest(css.as_bytes())[..12]);
    cached(&req, &etag, "text/css; charset=utf-8", css.into_bytes())
}

async fn logo(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Ok(Branding {
        logo: Some(logo), ..
    }) = state.store.branding()
    else {
        return not_found();
    };
    match tokio::fs::read(state.store.blob_path(&logo.sha256)).await {
        Ok(bytes) => cached(&req, &logo.sha256, &logo.content_type, bytes),
        Err(e) => {
            tracing::error!(error = %e, sha256 = %logo.sha256, "the logo's content is missing");
            not_found()
        }
    }
}
