//! The customer portal: sign-in, the dashboard, the new-ticket form and the ticket page. Every write
//! goes through the same functions as the REST API (`http::api::tickets`), so the rules live once.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::format::{self, When, kind_key, priority_key, status_key};
use super::i18n::{LANG_COOKIE, Lang};
use super::{FormErrors, Page, PageError, cookie, local_path, parse_form, see_other};
use crate::actors::Idempotency;
use crate::domain::lifecycle::{self, Action, ReopenWindow};
use crate::domain::validate::TEXT_MAX_BYTES;
use crate::domain::{
    Attachment, AuthorRole, Delivery, Event, Kind, Message, Origin, Priority, Role, Status,
    SyncState, Ticket,
};
use crate::error::ApiError;
use crate::http::AppState;
use crate::http::api::auth::{Credentials, end_session_cookie, start_session};
use crate::http::api::tickets::{
    CreateTicketBody, ListQuery, attach, customer_action, drain, list_filter, malformed_multipart,
    new_ticket, post_message, readable, refuse_declared_oversize, stage_file, writable,
};
use crate::http::extract::Caller;
use crate::store::{StagedBlob, keys};

type State = web::Data<AppState>;

/// Files one form may carry.
const MAX_FILES: usize = 10;
/// Tickets per dashboard page.
const PER_PAGE: u64 = 20;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/sign-in", web::get().to(sign_in_form))
        .route("/sign-in", web::post().to(sign_in))
        .route("/sign-out", web::post().to(sign_out))
        .route("/language", web::post().to(language))
        .route("/tickets", web::get().to(dashboard))
        .route("/tickets/new", web::get().to(new_ticket_form))
        .route("/tickets/new", web::post().to(create_ticket))
        .route("/tickets/{number}", web::get().to(ticket_page))
        .route("/tickets/{number}/reply", web::post().to(reply))
        .route("/tickets/{number}/confirm", web::post().to(confirm))
        .route("/tickets/{number}/reopen", web::post().to(reopen));
}

async fn index(page: Page) -> HttpResponse {
    let to = match &page.caller {
        Some(c) if c.is_admin() => "/admin",
        Some(_) => "/tickets",
        None => "/sign-in",
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

// ---- signing in and out ----

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    page: &'a Page,
    email: &'a str,
    next: &'a str,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SignInForm {
    csrf: String,
    email: String,
    password: String,
    next: String,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn sign_in_form(page: Page, query: web::Query<NextQuery>) -> HttpResponse {
    let next = query.next.as_deref().and_then(local_path).unwrap_or("/");
    page.render(&SignInPage {
        page: &page,
        email: "",
        next,
        error: None,
    })
}

async fn sign_in(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form: SignInForm = parse_form(page.tr, &body)?;
    page.check_form(&req, &form.csrf)?;
    let next = local_path(&form.next).unwrap_or("/").to_owned();
    let credentials = Credentials {
        email: form.email.clone(),
        password: form.password,
    };
    match start_session(&state, &req, credentials).await {
        Ok((user, session)) => {
            tracing::info!(user = %user.email, "signed in to the portal");
            let mut response = see_other(&next, None, &req);
            response
                .add_cookie(&session)
                .map_err(|_| PageError::internal(page.tr))?;
            Ok(response)
        }
        Err(e) => {
            let status = e.status;
            let page_body = SignInPage {
                page: &page,
                email: &form.email,
                next: &next,
                error: Some(
                    FormErrors::from_api(page.tr, &e)
                        .summary
                        .unwrap_or_default(),
                ),
            };
            Ok(page.render_status(status, &page_body))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SignOutForm {
    csrf: String,
    everywhere: String,
}

async fn sign_out(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form: SignOutForm = parse_form(page.tr, &body)?;
    if let Some(caller) = &page.caller {
        page.check_form(&req, &form.csrf)?;
        let result = if form.everywhere.is_empty() {
            state.store.delete_token(&caller.credential)
        } else {
            state.store.delete_sessions_of(caller.user.id).map(|_| ())
        };
        result.map_err(|e| PageError::from_api(page.tr, &e.into()))?;
        state
            .store
            .durable()
            .await
            .map_err(|e| PageError::from_api(page.tr, &e.into()))?;
    }
    let mut response = see_other("/sign-in", Some("signed-out"), &req);
    let cleared = end_session_cookie(&req, String::new(), time::Duration::ZERO);
    response
        .add_cookie(&cleared)
        .map_err(|_| PageError::internal(page.tr))?;
    Ok(response)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LanguageForm {
    lang: String,
    next: String,
}

/// Switching language needs no CSRF token: it only sets a preference cookie.
async fn language(
    page: Page,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form: LanguageForm = parse_form(page.tr, &body)?;
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

// ---- the dashboard ----

pub struct Row {
    pub number: String,
    pub subject: String,
    pub status: &'static str,
    pub status_label: String,
    pub kind_label: String,
    pub updated: When,
    pub overdue: bool,
}

impl Row {
    fn new(page: &Page, t: &Ticket, now: OffsetDateTime) -> Row {
        Row {
            number: t.number.clone(),
            subject: t.subject.clone(),
            status: t.status.as_str(),
            status_label: page.t(&status_key(t.status)),
            kind_label: page.t(&kind_key(t.kind)),
            updated: format::when(t.updated_at),
            overdue: t.overdue(now),
        }
    }
}

pub struct Count {
    pub status: &'static str,
    pub label: String,
    pub count: u64,
    pub href: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard<'a> {
    page: &'a Page,
    counts: Vec<Count>,
    waiting: Vec<Row>,
    rows: Vec<Row>,
    status: String,
    kind: String,
    q: String,
    total: u64,
    page_no: u64,
    prev: Option<String>,
    next: Option<String>,
    error: Option<String>,
}

impl Dashboard<'_> {
    fn status_options(&self) -> Vec<(&'static str, String)> {
        Status::ALL
            .iter()
            .map(|s| (s.as_str(), self.page.t(&status_key(*s))))
            .collect()
    }

    fn kind_options(&self) -> Vec<(&'static str, String)> {
        [Kind::InformationRequest, Kind::ProblemReport]
            .iter()
            .map(|k| (k.as_str(), self.page.t(&kind_key(*k))))
            .collect()
    }
}

fn page_href(query: &ListQuery, page: u64) -> String {
    let pairs = [
        ("status", query.status.clone().unwrap_or_default()),
        ("kind", query.kind.clone().unwrap_or_default()),
        ("q", query.q.clone().unwrap_or_default()),
        ("page", page.to_string()),
    ];
    let kept: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    format!(
        "/tickets?{}",
        serde_urlencoded::to_string(kept).unwrap_or_default()
    )
}

async fn dashboard(page: Page, state: State, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let caller = page.require()?;
    let mut query = web::Query::<ListQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    query.per_page = Some(PER_PAGE.to_string());
    let now = OffsetDateTime::now_utc();
    let api = |e: ApiError| PageError::from_api(page.tr, &e);
    let (filter, error) = match list_filter(caller, &query) {
        Ok(f) => (f, None),
        Err(e) => {
            // A hand-edited URL: show everything, and say what was wrong.
            let summary = FormErrors::from_api(page.tr, &e).summary;
            let clean = ListQuery {
                per_page: Some(PER_PAGE.to_string()),
                ..ListQuery::default()
            };
            query = clean;
            (list_filter(caller, &query).map_err(api)?, summary)
        }
    };
    let requester = filter.requester;
    let page_no = filter.page;
    let store = state.store.clone();
    let (found, counts, waiting) = web::block(move || {
        let found = store.list_tickets(&filter)?;
        let counts = store.status_counts(requester)?;
        let waiting = store.list_tickets(&crate::store::ListFilter {
            requester,
            status: Some(Status::Resolved),
            kind: None,
            q: None,
            page: 1,
            per_page: 10,
        })?;
        Ok::<_, crate::store::StoreError>((found, counts, waiting))
    })
    .await
    .map_err(|_| PageError::internal(page.tr))?
    .map_err(|e| api(e.into()))?;
    let counts = Status::ALL
        .iter()
        .zip(counts)
        .map(|(s, count)| Count {
            status: s.as_str(),
            label: page.t(&status_key(*s)),
            count,
            href: format!("/tickets?status={}", s.as_str()),
        })
        .collect();
    let pages = found.total.div_ceil(PER_PAGE).max(1);
    let body = Dashboard {
        page: &page,
        counts,
        waiting: waiting
            .items
            .iter()
            .map(|t| Row::new(&page, t, now))
            .collect(),
        rows: found
            .items
            .iter()
            .map(|t| Row::new(&page, t, now))
            .collect(),
        status: query.status.clone().unwrap_or_default(),
        kind: query.kind.clone().unwrap_or_default(),
        q: query.q.clone().unwrap_or_default(),
        total: found.total,
        page_no,
        prev: (page_no > 1).then(|| page_href(&query, page_no - 1)),
        next: (page_no < pages).then(|| page_href(&query, page_no + 1)),
        error,
    };
    Ok(page.render(&body))
}

// ---- forms with files ----

/// A multipart form from a page: its text fields and its staged files. The CSRF token must come
/// before any file, so nothing is written for a forged form.
struct PageForm {
    text: HashMap<String, String>,
    files: Vec<(String, StagedBlob)>,
}

impl PageForm {
    fn get(&self, name: &str) -> &str {
        self.text.get(name).map_or("", String::as_str)
    }
}

enum FormFailure {
    Page(PageError),
    Api(ApiError),
}

impl From<ApiError> for FormFailure {
    fn from(e: ApiError) -> Self {
        FormFailure::Api(e)
    }
}

async fn read_form(
    page: &Page,
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<PageForm, FormFailure> {
    refuse_declared_oversize(state, req, MAX_FILES as u64)?;
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut form = PageForm {
        text: HashMap::new(),
        files: Vec::new(),
    };
    let mut checked = false;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(malformed_multipart)?;
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field
            .content_disposition()
            .is_some_and(|cd| cd.get_filename().is_some());
        if !is_file {
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(malformed_multipart)?;
                // Text fields are small; a larger one is cut and then refused by validation.
                if value.len() < TEXT_MAX_BYTES * 2 {
                    value.extend_from_slice(&chunk);
                }
            }
            form.text
                .insert(name, String::from_utf8_lossy(&value).replace("\r\n", "\n"));
            continue;
        }
        if !checked {
            page.check_form(req, form.get("csrf"))
                .map_err(FormFailure::Page)?;
            checked = true;
        }
        let empty_choice = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .is_none_or(str::is_empty);
        if empty_choice {
            // A file input left empty still sends an empty part.
            drain(&mut field).await?;
            continue;
        }
        if form.files.len() == MAX_FILES {
            drain(&mut field).await?;
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too-many-files",
                "files",
                format!("at most {MAX_FILES} files at once"),
            )
            .into());
        }
        let staged = stage_file(state, &mut field).await.map_err(|mut e| {
            // The form's input is called `files`.
            if let Some(fields) = e.body.fields.as_mut()
                && let Some(m) = fields.remove("file")
            {
                fields.insert("files".into(), m);
            }
            e
        })?;
        form.files.push(staged);
    }
    if !checked {
        page.check_form(req, form.get("csrf"))
            .map_err(FormFailure::Page)?;
    }
    Ok(form)
}

/// An idempotency key for a page form, from the random id it was rendered with: a double-click
/// or a reload of the POST creates nothing twice.
fn form_key(caller: &Caller, scope: &str, form: &PageForm, parts: &[&str]) -> Option<Idempotency> {
    let id = form.get("form_id");
    if id.is_empty() || id.len() > 64 {
        return None;
    }
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    Some(Idempotency {
        key: keys::idempotency(caller.user.id, scope, id),
        fingerprint: hex::encode(hasher.finalize()),
    })
}

async fn attach_all(
    state: &AppState,
    caller: &Caller,
    ticket: &Ticket,
    files: Vec<(String, StagedBlob)>,
    form_id: &str,
) -> Result<(), ApiError> {
    for (i, (name, blob)) in files.into_iter().enumerate() {
        let idempotency = (!form_id.is_empty()).then(|| Idempotency {
            key: keys::idempotency(caller.user.id, &format!("page-file:{i}"), form_id),
            fingerprint: blob.sha256.clone(),
        });
        attach(
            state,
            caller,
            ticket.id,
            (name, blob),
            idempotency,
            Box::new(|a: &Attachment| a.id.0.to_string()),
        )
        .await?;
    }
    Ok(())
}

// ---- the new-ticket form ----

#[derive(Template)]
#[template(path = "new_ticket.html")]
struct NewTicketPage<'a> {
    page: &'a Page,
    kind: String,
    subject: String,
    description: String,
    priority: String,
    service: String,
    form_id: String,
    max_size: String,
    errors: FormErrors,
}

impl NewTicketPage<'_> {
    fn kinds(&self) -> Vec<(&'static str, String, String)> {
        [Kind::ProblemReport, Kind::InformationRequest]
            .iter()
            .map(|k| {
                let key = kind_key(*k);
                (
                    k.as_str(),
                    self.page.t(&key),
                    self.page.t(&format!("{key}-hint")),
                )
            })
            .collect()
    }

    fn priorities(&self) -> Vec<(&'static str, String)> {
        [
            Priority::Low,
            Priority::Medium,
            Priority::High,
            Priority::Urgent,
        ]
        .iter()
        .map(|p| (priority_as_str(*p), self.page.t(priority_key(*p))))
        .collect()
    }
}

fn priority_as_str(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Medium => "medium",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

fn new_form_id() -> String {
    crate::auth::new_secret("")[..32].to_owned()
}

fn customer(page: &Page) -> Result<&Caller, PageError> {
    let caller = page.require()?;
    if caller.user.role == Role::Customer {
        Ok(caller)
    } else {
        Err(PageError::new(
            page.tr,
            StatusCode::FORBIDDEN,
            "error-customers-only",
        ))
    }
}

async fn new_ticket_form(page: Page, state: State) -> Result<HttpResponse, PageError> {
    customer(&page)?;
    Ok(page.render(&NewTicketPage {
        page: &page,
        kind: "problem_report".into(),
        subject: String::new(),
        description: String::new(),
        priority: "medium".into(),
        service: String::new(),
        form_id: new_form_id(),
        max_size: format::size(state.config.portal.max_attachment_bytes),
        errors: FormErrors::default(),
    }))
}

fn parse_choice<T: serde::de::DeserializeOwned>(raw: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned())).ok()
}

async fn create_ticket(
    page: Page,
    req: HttpRequest,
    state: State,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let caller = customer(&page)?;
    let form = match read_form(&page, &req, &state, payload).await {
        Ok(form) => form,
        Err(FormFailure::Page(e)) => return Err(e),
        Err(FormFailure::Api(e)) => {
            // The text fields are lost only when the upload itself broke; say so.
            return Ok(new_ticket_again(&page, &state, None, &e));
        }
    };
    let kind = parse_choice::<Kind>(form.get("kind"));
    let priority = parse_choice::<Priority>(form.get("priority"));
    let submitted = kind.map(|kind| CreateTicketBody {
        kind,
        subject: form.get("subject").to_owned(),
        description: form.get("description").to_owned(),
        priority,
        service: Some(form.get("service").to_owned()),
    });
    let checked = match submitted {
        Some(body) => new_ticket(body),
        None => Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "kind",
            "choose what kind of request this is",
        )),
    };
    let input = match checked {
        Ok(input) => input,
        Err(e) => return Ok(new_ticket_again(&page, &state, Some(&form), &e)),
    };
    let idempotency = form_key(
        caller,
        "page-ticket",
        &form,
        &[
            form.get("kind"),
            &input.subject,
            &input.description,
            form.get("priority"),
            form.get("service"),
        ],
    );
    let msg = crate::actors::tickets::CreateTicket {
        requester: caller.user.clone(),
        actor: caller.actor.clone(),
        input,
        idempotency,
        render: Box::new(|t: &Ticket| t.number.clone()),
    };
    let created = match state.actors.tickets.send(msg).await {
        Ok(Ok(created)) => created,
        Ok(Err(e)) => return Ok(new_ticket_again(&page, &state, Some(&form), &e.into())),
        Err(e) => return Err(PageError::from_api(page.tr, &e.into())),
    };
    let number = created.body;
    let ticket = readable(&state, caller, &number).map_err(|e| PageError::from_api(page.tr, &e))?;
    let form_id = form.get("form_id").to_owned();
    let files = form.files;
    let flash = match attach_all(&state, caller, &ticket, files, &form_id).await {
        Ok(()) => "ticket-created",
        Err(e) => {
            tracing::warn!(error = %e, ticket = %number, "a file of a new ticket was not attached");
            "ticket-created-file-failed"
        }
    };
    Ok(see_other(&format!("/tickets/{number}"), Some(flash), &req))
}

/// Field messages in the page's language: validation writes them in English for the API, so each
/// field the portal's forms have gets its own translated message (what a valid value looks like).
fn localized(page: &Page, mut errors: FormErrors, max_size: &str) -> FormErrors {
    for (field, message) in &mut errors.fields {
        let key = format!("form-error-{field}");
        if page.tr.has(&key) {
            *message = page.t1(&key, "size", max_size);
        }
    }
    errors
}

/// The form again, with what was typed and what is wrong.
fn new_ticket_again(
    page: &Page,
    state: &AppState,
    form: Option<&PageForm>,
    e: &ApiError,
) -> HttpResponse {
    let max_size = format::size(state.config.portal.max_attachment_bytes);
    let mut errors = localized(page, FormErrors::from_api(page.tr, e), &max_size);
    if form.is_some_and(|f| !f.files.is_empty()) {
        errors
            .fields
            .entry("files".into())
            .or_insert_with(|| page.t("form-files-again"));
    }
    let get = |name: &str| form.map_or(String::new(), |f| f.get(name).to_owned());
    let status = if e.status.is_client_error() {
        e.status
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page.render_status(
        status,
        &NewTicketPage {
            page,
            kind: get("kind"),
            subject: get("subject"),
            description: get("description"),
            priority: get("priority"),
            service: get("service"),
            form_id: form.map_or_else(new_form_id, |f| f.get("form_id").to_owned()),
            max_size,
            errors,
        },
    )
}

// ---- the ticket page ----

pub struct HistoryLine {
    pub when: When,
    pub text: String,
    pub who: String,
}

pub struct Entry {
    pub mine: bool,
    pub system: bool,
    pub author: String,
    pub when: When,
    /// A message's text; empty for a file.
    pub body: String,
    pub file: Option<FileLink>,
    /// For the customer's own entries: `delivered`, `pending` or `failed`.
    pub delivery: &'static str,
    pub delivery_label: String,
}

pub struct FileLink {
    pub name: String,
    pub size: String,
    pub href: String,
    pub image: bool,
}

#[derive(Template)]
#[template(path = "ticket.html")]
#[allow(
    clippy::struct_excessive_bools,
    reason = "template data: one flag per button the page may show"
)]
struct TicketPage<'a> {
    page: &'a Page,
    number: String,
    subject: String,
    description: String,
    status: &'static str,
    status_label: String,
    status_hint: String,
    kind_label: String,
    priority_label: String,
    service: String,
    assignee: String,
    created: When,
    due: Option<When>,
    overdue: bool,
    sync: &'static str,
    sync_label: String,
    history: Vec<HistoryLine>,
    entries: Vec<Entry>,
    can_write: bool,
    can_confirm: bool,
    can_still_broken: bool,
    can_reopen: bool,
    can_reply: bool,
    reply: String,
    reason: String,
    form_id: String,
    max_size: String,
    errors: FormErrors,
}

fn delivery(page: &Page, d: Delivery) -> (&'static str, String) {
    let key = match d {
        Delivery::Pending => "pending",
        Delivery::Delivered => "delivered",
        Delivery::Failed => "failed",
    };
    (key, page.t(&format!("delivery-{key}")))
}

fn history_line(page: &Page, e: &Event) -> HistoryLine {
    let label = |s: &Option<String>| {
        s.as_deref()
            .and_then(Status::parse)
            .map_or_else(String::new, |s| page.t(&status_key(s)))
    };
    let key = format!("event-{}", e.kind.replace('_', "-"));
    let text = match e.kind.as_str() {
        "status_changed" | "conflict" | "confirmed" | "reopened" => {
            page.tr.t1(&key, "to", label(&e.to))
        }
        "assigned" => page.t1(&key, "to", e.to.clone().unwrap_or_default()),
        _ if page.tr.has(&key) => page.t(&key),
        _ => page.t("event-other"),
    };
    HistoryLine {
        when: format::when(e.at),
        text,
        who: e.actor.name.clone(),
    }
}

fn entries(page: &Page, number: &str, messages: &[Message], files: &[Attachment]) -> Vec<Entry> {
    let mut out: Vec<(OffsetDateTime, u64, Entry)> = Vec::new();
    for m in messages {
        let mine = m.origin == Origin::Portal && m.author.role == AuthorRole::Customer;
        let (d, d_label) = delivery(page, m.delivery);
        out.push((
            m.created_at,
            m.id.0,
            Entry {
                mine,
                system: m.author.role == AuthorRole::System,
                author: m.author.name.clone(),
                when: format::when(m.created_at),
                body: m.body.clone(),
                file: None,
                delivery: d,
                delivery_label: d_label,
            },
        ));
    }
    for a in files {
        let mine = a.origin == Origin::Portal && a.uploaded_by.role == AuthorRole::Customer;
        let (d, d_label) = delivery(page, a.delivery);
        // SVG can carry script: shown as a download, never inline.
        let image = matches!(
            a.content_type.as_str(),
            "image/png" | "image/jpeg" | "image/gif" | "image/webp"
        );
        out.push((
            a.created_at,
            a.id.0,
            Entry {
                mine,
                system: false,
                author: a.uploaded_by.name.clone(),
                when: format::when(a.created_at),
                body: String::new(),
                file: Some(FileLink {
                    name: a.filename.clone(),
                    size: format::size(a.size),
                    href: format!("/api/v1/tickets/{number}/attachments/{}", a.id.0),
                    image,
                }),
                delivery: d,
                delivery_label: d_label,
            },
        ));
    }
    out.sort_by_key(|(at, id, _)| (*at, *id));
    out.into_iter().map(|(_, _, e)| e).collect()
}

fn allowed(ticket: &Ticket, action: Action, window: ReopenWindow) -> bool {
    lifecycle::apply(
        ticket.status,
        ticket.closed_at,
        action,
        window,
        OffsetDateTime::now_utc(),
    )
    .is_ok()
}

struct Typed<'a> {
    reply: &'a str,
    reason: &'a str,
    form_id: Option<&'a str>,
    errors: FormErrors,
}

fn render_ticket(
    page: &Page,
    state: &AppState,
    caller: &Caller,
    ticket: &Ticket,
    typed: Typed<'_>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let api = |e: crate::store::StoreError| PageError::from_api(page.tr, &e.into());
    let messages = state.store.messages(ticket.id).map_err(api)?;
    let files = state.store.attachments(ticket.id).map_err(api)?;
    let events = state.store.events(ticket.id).map_err(api)?;
    let window = ReopenWindow {
        days: state.config.portal.reopen_window_days,
    };
    let now = OffsetDateTime::now_utc();
    let can_write = caller.can_write(ticket);
    let max_size = format::size(state.config.portal.max_attachment_bytes);
    let (sync, sync_key) = match (ticket.sdp.sync_state, &ticket.sdp.request_id) {
        (SyncState::Failed, _) => ("failed", "sync-failed"),
        (SyncState::Synced, Some(_)) => ("synced", "sync-synced"),
        _ => ("pending", "sync-pending"),
    };
    let body = TicketPage {
        page,
        number: ticket.number.clone(),
        subject: ticket.subject.clone(),
        description: ticket.description.clone(),
        status: ticket.status.as_str(),
        status_label: page.t(&status_key(ticket.status)),
        status_hint: page.t(&format!("{}-hint", status_key(ticket.status))),
        kind_label: page.t(&kind_key(ticket.kind)),
        priority_label: page.t(priority_key(ticket.priority)),
        service: ticket.service.clone().unwrap_or_default(),
        assignee: ticket.assignee.clone().unwrap_or_default(),
        created: format::when(ticket.created_at),
        due: ticket.due_by.map(format::when),
        overdue: ticket.overdue(now),
        sync,
        sync_label: page.t(sync_key),
        history: events.iter().map(|e| history_line(page, e)).collect(),
        entries: entries(page, &ticket.number, &messages, &files),
        can_write,
        can_confirm: can_write && allowed(ticket, Action::Confirm, window),
        can_still_broken: can_write
            && ticket.status == Status::Resolved
            && allowed(ticket, Action::Reopen, window),
        can_reopen: can_write
            && ticket.status == Status::Closed
            && allowed(ticket, Action::Reopen, window),
        can_reply: can_write && allowed(ticket, Action::Reply, window),
        reply: typed.reply.to_owned(),
        reason: typed.reason.to_owned(),
        form_id: typed.form_id.map_or_else(new_form_id, str::to_owned),
        errors: localized(page, typed.errors, &max_size),
        max_size,
    };
    Ok(page.render_status(status, &body))
}

fn found(
    page: &Page,
    state: &AppState,
    caller: &Caller,
    number: &str,
) -> Result<Ticket, PageError> {
    readable(state, caller, number).map_err(|_| PageError::not_found(page.tr))
}

async fn ticket_page(
    page: Page,
    state: State,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let caller = page.require()?;
    let ticket = found(&page, &state, caller, &number)?;
    let typed = Typed {
        reply: "",
        reason: "",
        form_id: None,
        errors: FormErrors::default(),
    };
    render_ticket(&page, &state, caller, &ticket, typed, StatusCode::OK)
}

async fn reply(
    page: Page,
    req: HttpRequest,
    state: State,
    number: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let caller = page.require()?;
    let ticket = writable(&state, caller, &number).map_err(|e| PageError::from_api(page.tr, &e))?;
    let again = |form: Option<&PageForm>, e: &ApiError| {
        let mut errors = FormErrors::from_api(page.tr, e);
        if let Some(m) = errors.fields.remove("body") {
            errors.fields.insert("reply".into(), m);
        }
        let typed = Typed {
            reply: form.map_or("", |f| f.get("body")),
            reason: "",
            form_id: form.map(|f| f.get("form_id")),
            errors,
        };
        let status = if e.status.is_client_error() {
            e.status
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        render_ticket(&page, &state, caller, &ticket, typed, status)
    };
    let form = match read_form(&page, &req, &state, payload).await {
        Ok(form) => form,
        Err(FormFailure::Page(e)) => return Err(e),
        Err(FormFailure::Api(e)) => return again(None, &e),
    };
    let text = form.get("body").trim().to_owned();
    if text.is_empty() && form.files.is_empty() {
        let e = ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "body",
            "write a message or choose a file",
        );
        return again(Some(&form), &e);
    }
    if !text.is_empty() {
        let idempotency = form_key(
            caller,
            &format!("page-message:{}", ticket.id.0),
            &form,
            &[&text],
        );
        let render = Box::new(|m: &Message| m.id.0.to_string());
        if let Err(e) = post_message(&state, caller, &ticket, text, idempotency, render).await {
            return again(Some(&form), &e);
        }
    }
    let form_id = format!("{}:{}", ticket.id.0, form.get("form_id"));
    let had_files = !form.files.is_empty();
    if let Err(e) = attach_all(&state, caller, &ticket, form.files, &form_id).await {
        let ticket =
            readable(&state, caller, &number).map_err(|e| PageError::from_api(page.tr, &e))?;
        let mut errors = FormErrors::from_api(page.tr, &e);
        if let Some(m) = errors.fields.remove("file") {
            errors.fields.insert("files".into(), m);
        }
        let typed = Typed {
            reply: "",
            reason: "",
            form_id: None,
            errors,
        };
        return render_ticket(&page, &state, caller, &ticket, typed, e.status);
    }
    let flash = if had_files {
        "reply-sent-files"
    } else {
        "reply-sent"
    };
    Ok(see_other(
        &format!("/tickets/{}#discussion", ticket.number),
        Some(flash),
        &req,
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ActionForm {
    csrf: String,
    reason: String,
}

async fn confirm(
    page: Page,
    req: HttpRequest,
    state: State,
    number: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    customer_step(page, req, state, number, body, Action::Confirm).await
}

async fn reopen(
    page: Page,
    req: HttpRequest,
    state: State,
    number: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    customer_step(page, req, state, number, body, Action::Reopen).await
}

/// Confirm or reopen, through the same state machine as the API.
async fn customer_step(
    page: Page,
    req: HttpRequest,
    state: State,
    number: web::Path<String>,
    body: web::Bytes,
    action: Action,
) -> Result<HttpResponse, PageError> {
    let caller = page.require()?;
    let form: ActionForm = parse_form(page.tr, &body)?;
    page.check_form(&req, &form.csrf)?;
    let ticket = writable(&state, caller, &number).map_err(|e| PageError::from_api(page.tr, &e))?;
    let reason = (action == Action::Reopen).then(|| form.reason.trim().to_owned());
    match customer_action(&state, caller, &ticket, action, reason).await {
        Ok(ticket) => {
            let flash = if action == Action::Confirm {
                "confirmed"
            } else {
                "reopened"
            };
            Ok(see_other(
                &format!("/tickets/{}", ticket.number),
                Some(flash),
                &req,
            ))
        }
        Err(e) if e.status.is_client_error() => {
            let typed = Typed {
                reply: "",
                reason: &form.reason,
                form_id: None,
                errors: FormErrors::from_api(page.tr, &e),
            };
            render_ticket(&page, &state, caller, &ticket, typed, e.status)
        }
        Err(e) => Err(PageError::from_api(page.tr, &e)),
    }
}
