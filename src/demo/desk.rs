//! The demo's service desk page: what a technician sees in SDP (requests, their conversation and
//! files) with forms that change a request as a technician would, each followed by the webhook an
//! SDP trigger would call, so the customer's page changes live. It has no sign-in and listens on
//! loopback only; a form posted from another site is refused.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::dev::ServerHandle;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::DefaultHeaders;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use askama::Template;
use fake_sdp::{DeskAction, FakeSdp};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::Value;

use crate::domain::validate::safe_filename;
use crate::web::i18n::{Bundle, LANG_COOKIE, Lang};

/// The largest file the page attaches.
const MAX_FILE: usize = 10 << 20;

struct Desk {
    sdp: Arc<FakeSdp>,
    /// The appliance's webhook, with its secret.
    hook: String,
    portal: String,
}

/// Starts the page on `addr`; returns its handle and its URL.
pub(super) fn start(
    sdp: Arc<FakeSdp>,
    addr: SocketAddr,
    hook: String,
    portal: String,
) -> anyhow::Result<(ServerHandle, String)> {
    let desk = web::Data::new(Desk { sdp, hook, portal });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(desk.clone())
            .wrap(
                DefaultHeaders::new()
                    .add((
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'none'; style-src 'self'; img-src 'self'; \
                         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                    ))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::REFERRER_POLICY, "same-origin")),
            )
            .configure(crate::web::assets::configure)
            .route("/", web::get().to(list))
            .route("/language", web::post().to(language))
            .route("/requests/{id}", web::get().to(show))
            .route("/requests/{id}/files/{file}", web::get().to(download))
            .route("/requests/{id}/attach", web::post().to(attach))
            .route("/requests/{id}/{action}", web::post().to(act))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((handle, format!("http://{bound}")))
}

/// What every desk page knows: its language, where the portal is, a notice or an error.
pub(crate) struct DeskPage {
    tr: &'static Bundle,
    pub portal: String,
    pub here: String,
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl DeskPage {
    fn of(req: &HttpRequest, desk: &Desk) -> DeskPage {
        let tr = crate::web::language(req).tr();
        let notice = req
            .query_string()
            .split('&')
            .any(|pair| pair == "done=1")
            .then(|| tr.t("desk-done"));
        DeskPage {
            tr,
            portal: desk.portal.clone(),
            here: req.path().to_owned(),
            notice,
            error: None,
        }
    }

    pub(crate) fn t(&self, key: &str) -> String {
        self.tr.t(key)
    }

    pub(crate) fn lang(&self) -> &'static str {
        self.tr.lang().code()
    }
}

pub(crate) struct Row {
    pub id: String,
    pub subject: String,
    pub requester: String,
    pub status: String,
    pub technician: String,
}

impl Row {
    fn of(request: &Value, page: &DeskPage) -> Row {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let technician = request["technician"]["name"]
            .as_str()
            .map_or_else(|| page.t("desk-unassigned"), str::to_owned);
        Row {
            id: text(&request["id"]),
            subject: text(&request["subject"]),
            requester: text(&request["requester"]["name"]),
            status: text(&request["status"]["name"]),
            technician,
        }
    }
}

#[derive(Template)]
#[template(path = "desk_list.html")]
struct ListPage {
    page: DeskPage,
    rows: Vec<Row>,
}

/// One e-mail or note, oldest first.
pub(crate) struct Entry {
    pub at: String,
    pub who: String,
    /// The message key of what it is (a reply, a private note …).
    pub kind: &'static str,
    pub text: String,
    at_ms: i64,
}

pub(crate) struct FileRow {
    pub id: String,
    pub name: String,
    pub bytes: usize,
    pub by: String,
}

#[derive(Template)]
#[template(path = "desk_request.html")]
struct RequestPage {
    page: DeskPage,
    row: Row,
    description: String,
    resolution: Option<String>,
    entries: Vec<Entry>,
    files: Vec<FileRow>,
    statuses: Vec<String>,
    technicians: Vec<String>,
}

async fn list(req: HttpRequest, desk: web::Data<Desk>) -> HttpResponse {
    let page = DeskPage::of(&req, &desk);
    let mut rows: Vec<Row> = desk
        .sdp
        .requests()
        .iter()
        .filter(|r| r["is_trashed"] != true)
        .map(|r| Row::of(r, &page))
        .collect();
    rows.reverse();
    render(StatusCode::OK, &ListPage { page, rows })
}

async fn show(req: HttpRequest, desk: web::Data<Desk>, id: web::Path<String>) -> HttpResponse {
    let page = DeskPage::of(&req, &desk);
    request_page(&desk, page, &id, StatusCode::OK)
}

fn request_page(desk: &Desk, page: DeskPage, id: &str, status: StatusCode) -> HttpResponse {
    let Some(request) = desk.sdp.request(id).filter(|r| r["is_trashed"] != true) else {
        return not_found(page);
    };
    let mut entries: Vec<Entry> = desk
        .sdp
        .emails(id)
        .into_iter()
        .map(|mail| Entry {
            at: when(mail.time_ms),
            who: mail.sender.name,
            kind: match (mail.from_requester, mail.show_to_requester) {
                (true, _) => "desk-kind-from-requester",
                (false, true) => "desk-kind-reply",
                (false, false) => "desk-kind-hidden-mail",
            },
            text: crate::sync::text::from_html(&mail.description),
            at_ms: mail.time_ms,
        })
        .collect();
    entries.extend(desk.sdp.notes(id).into_iter().map(|note| Entry {
        at: when(note.created_ms),
        who: note.author.name,
        kind: if note.show_to_requester == Some(true) {
            "desk-kind-public-note"
        } else {
            "desk-kind-private-note"
        },
        text: crate::sync::text::from_html(&note.description),
        at_ms: note.created_ms,
    }));
    entries.sort_by_key(|e| e.at_ms);
    let files = desk
        .sdp
        .attachments(id)
        .into_iter()
        .map(|a| FileRow {
            id: a.id,
            name: a.name,
            bytes: a.bytes.len(),
            by: a.attached_by.name,
        })
        .collect();
    let text = |key: &str| request[key].as_str().map(crate::sync::text::from_html);
    let shown = RequestPage {
        row: Row::of(&request, &page),
        description: text("description").unwrap_or_default(),
        resolution: request["resolution"]["content"]
            .as_str()
            .map(crate::sync::text::from_html),
        entries,
        files,
        statuses: desk.sdp.status_names(),
        technicians: desk.sdp.technician_names(),
        page,
    };
    render(status, &shown)
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    public: Option<String>,
    #[serde(default)]
    technician: String,
    #[serde(default)]
    status: String,
}

async fn act(
    req: HttpRequest,
    desk: web::Data<Desk>,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let mut page = DeskPage::of(&req, &desk);
    if !same_site(&req) {
        return refused(page);
    }
    let form = form.into_inner();
    let text = form.text.trim();
    let html = crate::sync::text::to_html(text);
    let action = match action.as_str() {
        "reply" | "note" | "resolve" if text.is_empty() => {
            page.error = Some(page.t("desk-error-empty"));
            return request_page(&desk, page, &id, StatusCode::UNPROCESSABLE_ENTITY);
        }
        "reply" => DeskAction::Reply(html),
        "note" => DeskAction::Note {
            html,
            public: form.public.is_some(),
        },
        "resolve" => DeskAction::Resolve(html),
        "assign" => DeskAction::Assign(form.technician),
        "status" => DeskAction::Status(form.status),
        _ => return not_found(page),
    };
    done(&desk, page, &id, action).await
}

async fn attach(
    req: HttpRequest,
    desk: web::Data<Desk>,
    id: web::Path<String>,
    mut form: Multipart,
) -> HttpResponse {
    let mut page = DeskPage::of(&req, &desk);
    if !same_site(&req) {
        return refused(page);
    }
    let mut file = None;
    while let Some(Ok(mut field)) = form.next().await {
        if field.name() != Some("file") {
            continue;
        }
        let name = safe_filename(
            field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .unwrap_or_default(),
        );
        let mut bytes = BytesMut::new();
        let mut whole = true;
        while let Some(chunk) = field.next().await {
            match chunk {
                Ok(chunk) if bytes.len() + chunk.len() <= MAX_FILE => {
                    bytes.extend_from_slice(&chunk);
                }
                _ => {
                    whole = false;
                    break;
                }
            }
        }
        if whole && !bytes.is_empty() {
            file = Some((name, bytes.freeze()));
        }
        break;
    }
    let Some((name, bytes)) = file else {
        page.error = Some(page.t("desk-error-file"));
        return request_page(&desk, page, &id, StatusCode::UNPROCESSABLE_ENTITY);
    };
    done(&desk, page, &id, DeskAction::Attach { name, bytes }).await
}

/// Does `action` as the request's technician (Tech One when nobody is assigned), then calls the
/// appliance's webhook; back to the request with a notice, or its page with SDP's reason.
async fn done(desk: &Desk, mut page: DeskPage, id: &str, action: DeskAction) -> HttpResponse {
    let Some(request) = desk.sdp.request(id) else {
        return not_found(page);
    };
    let technician = request["technician"]["name"]
        .as_str()
        .unwrap_or("Tech One")
        .to_owned();
    if let Err(reason) = desk.sdp.act(id, &technician, action) {
        page.error = Some(page.tr.t1("desk-refused", "reason", reason));
        return request_page(desk, page, id, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // The trigger's call; when the appliance misses it, its next poll finds the change.
    match desk.sdp.fire_webhook(&desk.hook, id).await {
        Ok(status) if status.is_success() => {}
        Ok(status) => tracing::warn!(%status, "the appliance refused the desk's webhook"),
        Err(e) => tracing::warn!(error = %e, "the desk's webhook did not reach the appliance"),
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/requests/{id}?done=1")))
        .finish()
}

async fn download(desk: web::Data<Desk>, path: web::Path<(String, String)>) -> HttpResponse {
    let (id, file) = path.into_inner();
    let Some(found) = desk.sdp.attachments(&id).into_iter().find(|a| a.id == file) else {
        return HttpResponse::NotFound().finish();
    };
    let disposition = header::ContentDisposition {
        disposition: header::DispositionType::Attachment,
        parameters: vec![header::DispositionParam::Filename(found.name)],
    };
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(disposition)
        .body(Bytes::clone(&found.bytes))
}

#[derive(Deserialize)]
struct LanguageForm {
    lang: String,
    next: String,
}

/// Chooses the language; the cookie is the portal's (cookies do not depend on the port), so the
/// portal follows too.
async fn language(req: HttpRequest, form: web::Form<LanguageForm>) -> HttpResponse {
    if !same_site(&req) {
        return HttpResponse::Forbidden().finish();
    }
    let lang = Lang::parse(&form.lang).unwrap_or(Lang::En);
    let next = crate::web::local_path(&form.next).unwrap_or("/");
    let cookie = actix_web::cookie::Cookie::build(LANG_COOKIE, lang.code())
        .path("/")
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Lax)
        .finish();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next))
        .cookie(cookie)
        .finish()
}

/// A browser names where a form came from: refuse one posted from another site.
fn same_site(req: &HttpRequest) -> bool {
    let headers = req.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|site| site != "same-origin" && site != "none") {
        return false;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => host.is_some_and(|host| origin == format!("http://{host}")),
        None => true,
    }
}

fn when(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "desk_message.html")]
struct MessagePage {
    page: DeskPage,
    message: String,
}

fn not_found(page: DeskPage) -> HttpResponse {
    message(page, StatusCode::NOT_FOUND, "desk-not-found")
}

fn refused(page: DeskPage) -> HttpResponse {
    message(page, StatusCode::FORBIDDEN, "desk-cross-site")
}

fn message(page: DeskPage, status: StatusCode, key: &str) -> HttpResponse {
    let message = page.t(key);
    render(status, &MessagePage { page, message })
}

fn render(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "a desk page did not render");
            HttpResponse::InternalServerError().finish()
        }
    }
}
