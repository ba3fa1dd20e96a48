//! The ticket page: status and what it means, history, the discussion with files, and what the
//! customer may do now (reply, upload, confirm the resolution, reopen), each shown only when the
//! state machine allows it and done through the same use cases as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::form::{self, FormFailure, PageForm};
use crate::domain::lifecycle::{self, Action, ReopenWindow};
use crate::domain::{
    Attachment, AuthorRole, Delivery, Event, EventKind, Message, Origin, Priority, SdpFate,
    Sharing, Status, SyncState, Ticket,
};
use crate::error::{ApiError, ErrorCode};
use crate::service::tickets::{self, readable, writable};
use crate::service::{AppState, Caller};
use crate::tickets::CustomerStep;
use crate::web::format::{self, When, event_key, kind_key, priority_key, status_key};
use crate::web::{FormErrors, Page, PageError, see_other};

type State = web::Data<AppState>;

pub(super) struct HistoryLine {
    pub when: When,
    pub text: String,
    pub who: String,
}

pub(super) struct Entry {
    pub mine: bool,
    /// Edited by the team in SDP after it was first shown.
    pub edited: bool,
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

pub(super) struct FileLink {
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
    /// "We will respond by": until the team responded.
    respond_by: Option<When>,
    respond_overdue: bool,
    /// "We aim to resolve by".
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
    /// Who is on the ticket: the requester (name and e-mail), who raised it for them, who is
    /// copied; and whether the visitor may change who is copied.
    requester: String,
    author: String,
    cc: Vec<String>,
    can_copy: bool,
    cc_email: String,
    /// Why nothing can be added (the request was trashed, deleted or merged in SDP); empty otherwise.
    frozen: String,
    reply: String,
    reason: String,
    form_id: String,
    max_size: String,
    /// `portal.max_attachment_bytes`, for the page's own check before an upload.
    max_bytes: u64,
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
    let key = event_key(e.kind);
    let text = match e.kind {
        EventKind::StatusChanged
        | EventKind::Conflict
        | EventKind::Confirmed
        | EventKind::Reopened => page.t1(&key, "to", label(&e.to)),
        EventKind::Assigned
        | EventKind::SdpMerged
        | EventKind::RequesterChanged
        | EventKind::SubjectChanged
        | EventKind::CcAdded => page.t1(&key, "to", e.to.clone().unwrap_or_default()),
        EventKind::CcRemoved => page.t1(&key, "to", e.from.clone().unwrap_or_default()),
        EventKind::PriorityChanged => page.t1(
            &key,
            "to",
            e.to.as_deref()
                .and_then(Priority::parse)
                .map_or_else(String::new, |p| page.t(&priority_key(p))),
        ),
        EventKind::Created
        | EventKind::Imported
        | EventKind::SdpLinked
        | EventKind::MessageAdded
        | EventKind::AttachmentAdded
        | EventKind::SdpDiscarded
        | EventKind::SdpTrashed
        | EventKind::SdpRemoved
        | EventKind::SdpRestored
        | EventKind::MessageEdited
        | EventKind::MessageWithdrawn
        | EventKind::SdpResponded
        | EventKind::SdpResolved => page.t(&key),
    };
    // SDP's own time of the response or resolution, which the line mirrors.
    let at = match e.kind {
        EventKind::SdpResponded | EventKind::SdpResolved => {
            e.to.as_deref()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        }
        _ => None,
    };
    HistoryLine {
        when: format::when(at.unwrap_or(e.at)),
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
                edited: m.edited_at.is_some(),
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
                edited: false,
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

/// What the visitor had typed, when a form comes back.
pub(super) struct Typed<'a> {
    pub reply: &'a str,
    pub reason: &'a str,
    /// The colleague's e-mail of the form that copies one on the ticket.
    pub cc: &'a str,
    pub form_id: Option<&'a str>,
    pub errors: FormErrors,
}

impl Typed<'_> {
    pub(super) fn nothing() -> Typed<'static> {
        Typed {
            reply: "",
            reason: "",
            cc: "",
            form_id: None,
            errors: FormErrors::default(),
        }
    }
}

pub(super) fn render(
    page: &Page,
    state: &AppState,
    caller: &Caller,
    ticket: &Ticket,
    typed: Typed<'_>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let messages = state.store.messages(ticket.id).map_err(page.store())?;
    let files = state.store.attachments(ticket.id).map_err(page.store())?;
    let events = state.store.events(ticket.id).map_err(page.store())?;
    let window = state.window();
    let now = OffsetDateTime::now_utc();
    // A ticket whose request SDP cannot take changes to is read-only for everyone.
    let can_write = caller.can_write(ticket) && ticket.sdp.fate.is_none();
    // Confirming, reopening and copying colleagues are the requester's.
    let decides = can_write && caller.is_requester(ticket);
    let max_size = format::size(state.config.portal.max_attachment_bytes);
    // A plain-language state only: SDP's error text names internal hosts (admins see it in the
    // console's ticket log).
    let (sync, sync_key) = match (ticket.sdp.sync_state, &ticket.sdp.request_id) {
        (SyncState::Failed, _) => ("failed", "sync-failed"),
        (SyncState::Synced, Some(_)) => ("synced", "sync-synced"),
        (SyncState::Pending, _) if ticket.sdp.last_error.is_some() => ("retrying", "sync-retrying"),
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
        priority_label: page.t(&priority_key(ticket.priority)),
        service: ticket
            .category
            .as_ref()
            .map(crate::domain::ServiceChoice::label)
            .or_else(|| ticket.service.clone())
            .unwrap_or_default(),
        assignee: ticket.assignee.clone().unwrap_or_default(),
        created: format::when(ticket.created_at),
        respond_by: ticket
            .promise
            .respond_by
            .filter(|_| ticket.promise.responded_at.is_none() && ticket.status.is_open())
            .map(format::when),
        respond_overdue: ticket.respond_overdue(now),
        due: ticket.due_by.map(format::when),
        overdue: ticket.resolve_overdue(now),
        sync,
        sync_label: page.t(sync_key),
        history: events.iter().map(|e| history_line(page, e)).collect(),
        entries: entries(page, &ticket.number, &messages, &files),
        frozen: match &ticket.sdp.fate {
            None => String::new(),
            Some(SdpFate::Merged { into, ticket }) => page.t1(
                "frozen-merged",
                "to",
                ticket.clone().unwrap_or_else(|| format!("#{into}")),
            ),
            Some(SdpFate::Trashed | SdpFate::Removed) => page.t("frozen-removed"),
        },
        can_write,
        can_confirm: decides && allowed(ticket, Action::Confirm, window),
        can_still_broken: decides
            && ticket.status == Status::Resolved
            && allowed(ticket, Action::Reopen, window),
        can_reopen: decides
            && ticket.status == Status::Closed
            && allowed(ticket, Action::Reopen, window),
        can_reply: can_write && allowed(ticket, Action::Reply, window),
        requester: format!("{} <{}>", ticket.requester.name, ticket.requester.email),
        author: ticket
            .author
            .as_ref()
            .map(|a| format!("{} <{}>", a.name, a.email))
            .unwrap_or_default(),
        cc: ticket.cc.clone(),
        can_copy: decides && caller.sharing() != Sharing::Off,
        cc_email: typed.cc.to_owned(),
        reply: typed.reply.to_owned(),
        reason: typed.reason.to_owned(),
        form_id: typed.form_id.map_or_else(form::new_id, str::to_owned),
        errors: form::localized(page, typed.errors, &max_size),
        max_size,
        max_bytes: state.config.portal.max_attachment_bytes,
    };
    Ok(page.render_status(status, &body))
}

#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(super) async fn show(
    page: Page,
    state: State,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let caller = page.require()?;
    let ticket = readable(&state, caller, &number).map_err(|_| PageError::not_found(page.tr))?;
    render(
        &page,
        &state,
        caller,
        &ticket,
        Typed::nothing(),
        StatusCode::OK,
    )
}

#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(super) async fn reply(
    page: Page,
    req: HttpRequest,
    state: State,
    number: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let caller = page.require()?;
    let ticket = writable(&state, caller, &number).map_err(page.api())?;
    let again = |form: Option<&PageForm>, e: &ApiError| {
        let typed = Typed {
            reply: form.map_or("", |f| f.get("body")),
            form_id: form.map(|f| f.get("form_id")),
            errors: FormErrors::from_api(page.tr, e),
            ..Typed::nothing()
        };
        render(&page, &state, caller, &ticket, typed, form::form_status(e))
    };
    let form = match form::read_ticket_form(&page, &req, &state, payload).await {
        Ok(form) => form,
        Err(FormFailure::Page(e)) => return Err(e),
        Err(FormFailure::Api(e, typed)) => return again(typed.as_ref(), &e),
    };
    let text = form.get("body").trim().to_owned();
    if text.is_empty() && form.files.is_empty() {
        let e = ApiError::field(
            ErrorCode::InvalidField,
            "body",
            "write a message or choose a file",
        );
        return again(Some(&form), &e);
    }
    if !text.is_empty() {
        let scope = format!("page-message:{}", ticket.id.0);
        let idempotency = form::key(caller, &scope, &form, &[&text]);
        let render = Box::new(|m: &Message| m.id.0.to_string());
        let sent = tickets::post_message(&state, caller, &ticket, text, idempotency, render).await;
        if let Err(e) = sent {
            return again(Some(&form), &e);
        }
    }
    let form_id = format!("{}:{}", ticket.id.0, form.get("form_id"));
    let had_files = !form.files.is_empty();
    if let Err(e) = form::attach_all(&state, caller, &ticket, form.files, &form_id).await {
        // The message (if any) went out: show the ticket as it now is, with the file's error.
        let ticket = readable(&state, caller, &number).map_err(page.api())?;
        let typed = Typed {
            errors: FormErrors::from_api(page.tr, &e),
            ..Typed::nothing()
        };
        return render(&page, &state, caller, &ticket, typed, e.status());
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
struct StepForm {
    reason: String,
}

#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(super) async fn confirm(
    page: Page,
    req: HttpRequest,
    state: State,
    number: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    take_step(page, req, state, number, body, Action::Confirm).await
}

#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(super) async fn reopen(
    page: Page,
    req: HttpRequest,
    state: State,
    number: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    take_step(page, req, state, number, body, Action::Reopen).await
}

/// Confirm or reopen, through the same use case as the API.
async fn take_step(
    page: Page,
    req: HttpRequest,
    state: State,
    number: web::Path<String>,
    body: web::Bytes,
    action: Action,
) -> Result<HttpResponse, PageError> {
    let caller = page.require()?;
    let form: StepForm = page.submitted(&req, &body)?;
    let ticket = writable(&state, caller, &number).map_err(page.api())?;
    let (step, flash) = if action == Action::Confirm {
        (CustomerStep::Confirm, "confirmed")
    } else {
        let reason = form.reason.trim().to_owned();
        (CustomerStep::Reopen { reason }, "reopened")
    };
    match tickets::take_step(&state, caller, &ticket, step).await {
        Ok(ticket) => Ok(see_other(
            &format!("/tickets/{}", ticket.number),
            Some(flash),
            &req,
        )),
        Err(e) if e.status().is_client_error() => {
            let typed = Typed {
                reason: &form.reason,
                errors: FormErrors::from_api(page.tr, &e),
                ..Typed::nothing()
            };
            render(&page, &state, caller, &ticket, typed, e.status())
        }
        Err(e) => Err(PageError::from_api(page.tr, &e)),
    }
}
