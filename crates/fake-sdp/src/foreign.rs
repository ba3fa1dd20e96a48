//! The other origin: a second listener on 127.0.0.1 (another port, so another origin) that serves
//! the attachments' bytes when their `content_url`s are absolute
//! ([`super::FakeSdp::absolute_content_urls`]). It needs no credential and records every call it
//! gets, so a test can check that the SDP credential never left the SDP origin.

use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse, web};

use super::routes;
use super::state::{Shared, StoredAttachment};

/// One call the other origin received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignHit {
    pub path: String,
    /// It carried an `authtoken`, `TECHNICIAN_KEY` or `Authorization` header.
    pub had_credential: bool,
}

/// The absolute URL of `a` on the other origin.
pub(crate) fn url(origin: &str, a: &StoredAttachment) -> String {
    format!("{origin}/files/{}/{}", a.request_id, a.id)
}

fn carries_credential(headers: &HeaderMap) -> bool {
    ["authtoken", "technician_key", "authorization"]
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// The one handler of the other origin: `GET /files/{request id}/{attachment id}`.
pub(crate) async fn handle(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let mut s = shared.lock();
    s.foreign_hits.push(ForeignHit {
        path: req.path().to_owned(),
        had_credential: carries_credential(req.headers()),
    });
    let segs: Vec<&str> = req.path().split('/').filter(|s| !s.is_empty()).collect();
    let found = match (req.method().as_str(), segs.as_slice()) {
        ("GET", ["files", rid, aid]) => s
            .attachments
            .iter()
            .find(|a| a.request_id == *rid && a.id == *aid),
        _ => None,
    };
    match found {
        Some(a) => routes::file_response(&a.name, &a.content_type, a.bytes.clone()),
        None => HttpResponse::NotFound()
            .content_type("text/plain")
            .body("not found"),
    }
}
