//! CSS, JS and images from `web/static`, compiled into the binary. Cached by the browser and
//! revalidated by `ETag` (the content's sha256), so an upgrade is picked up without a stale page.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/static"]
struct Static;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{path:.*}", web::get().to(serve));
}

async fn serve(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(file) = Static::get(&path) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found");
    };
    let etag = hex::encode(&file.metadata.sha256_hash()[..12]);
    cached(
        &req,
        &etag,
        file.metadata.mimetype(),
        file.data.into_owned(),
    )
}

/// A cacheable answer, revalidated by `etag` (a content hash): `304` when the browser holds it.
pub(crate) fn cached(
    req: &HttpRequest,
    etag: &str,
    content_type: &str,
    body: Vec<u8>,
) -> HttpResponse {
    let etag = format!("\"{etag}\"");
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((
            header::CACHE_CONTROL,
            "public, max-age=300, must-revalidate",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if fresh {
        response.finish()
    } else {
        response.content_type(content_type).body(body)
    }
}
