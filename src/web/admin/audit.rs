//! What happened: the audit log of admin actions, and one ticket read-only: its requester,
//! discussion, files, history and sync log (what waits for SDP and what SDP refused).

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminPage;
use super::overview::{Change, changes};
use crate::service::{AppState, tickets};
use crate::web::format::{self, When, status_key};
use crate::web::{Page, PageError};

type State = web::Data<AppState>;

pub(super) struct AuditRow {
    pub at: When,
    pub admin: String,
    pub action: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage<'a> {
    page: &'a Page,
    rows: Vec<AuditRow>,
}

pub(super) async fn log(admin: AdminPage, state: State) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let rows = state
        .store
        .audit_log(500)
        .map_err(page.store())?
        .into_iter()
        .map(|e| AuditRow {
            at: format::when(e.at),
            admin: e.admin,
            action: e.action,
            detail: e.detail,
        })
        .collect();
    Ok(page.render(&AuditPage { page, rows }))
}

pub(super) struct LogRow {
    pub at: When,
    pub what: &'static str,
    pub who: String,
    pub detail: String,
}

pub(super) struct MessageRow {
    pub at: When,
    pub author: String,
    pub body: String,
}

pub(super) struct FileRow {
    pub at: When,
    pub by: String,
    pub name: String,
    pub size: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "admin_ticket.html")]
struct TicketLog<'a> {
    page: &'a Page,
    number: String,
    subject: String,
    status_label: String,
    requester: String,
    organization: String,
    description: String,
    messages: Vec<MessageRow>,
    files: Vec<FileRow>,
    request_id: String,
    sync_state: String,
    last_error: String,
    pending: Vec<Change>,
    dead: Vec<Change>,
    events: Vec<LogRow>,
}

#[derive(Deserialize)]
pub(super) struct FindQuery {
    number: String,
}

pub(super) async fn find_ticket(
    _: AdminPage,
    query: web::Query<FindQuery>,
) -> Result<HttpResponse, PageError> {
    let number: String = query
        .number
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Err(PageError::Redirect(format!("/admin/tickets/{number}")))
}

pub(super) async fn ticket_log(
    admin: AdminPage,
    state: State,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    // The same access rule as every other read (an admin may read every ticket).
    let ticket = tickets::readable(&state, admin.admin(), &number)
        .map_err(|_| PageError::not_found(page.tr))?;
    let messages = state
        .store
        .messages(ticket.id)
        .map_err(page.store())?
        .into_iter()
        .map(|m| MessageRow {
            at: format::when(m.created_at),
            author: m.author.name,
            body: m.body,
        })
        .collect();
    let files = state
        .store
        .attachments(ticket.id)
        .map_err(page.store())?
        .into_iter()
        .map(|a| FileRow {
            at: format::when(a.created_at),
            by: a.uploaded_by.name,
            href: format!("/api/v1/tickets/{}/attachments/{}", ticket.number, a.id.0),
            name: a.filename,
            size: format::size(a.size),
        })
        .collect();
    // Only a ticket with undelivered changes has outbox entries or dead letters to look for.
    let (pending, dead) = if ticket.sdp_pending == 0 {
        (Vec::new(), Vec::new())
    } else {
        let dead = state.store.dead_letters().map_err(page.store())?;
        let pending = state.store.outbox_of(ticket.id).map_err(page.store())?;
        (
            pending,
            dead.into_iter().filter(|e| e.ticket == ticket.id).collect(),
        )
    };
    let events = state
        .store
        .events(ticket.id)
        .map_err(page.store())?
        .into_iter()
        .map(|e| LogRow {
            at: format::when(e.at),
            what: e.kind.as_str(),
            who: e.actor.name,
            detail: [e.from, e.to, e.detail]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" → "),
        })
        .collect();
    Ok(page.render(&TicketLog {
        page,
        number: ticket.number.clone(),
        subject: ticket.subject.clone(),
        status_label: page.t(&status_key(ticket.status)),
        requester: format!("{} <{}>", ticket.requester.name, ticket.requester.email),
        organization: ticket.requester.organization.clone(),
        description: ticket.description.clone(),
        messages,
        files,
        // Cloud's number is not its id: both, so the team can find it either way.
        request_id: match (&ticket.sdp.number, &ticket.sdp.request_id) {
            (Some(number), Some(id)) if number != id => format!("{number} (id {id})"),
            (_, id) => id.clone().unwrap_or_default(),
        },
        sync_state: format!("{:?}", ticket.sdp.sync_state).to_lowercase(),
        last_error: ticket.sdp.last_error.clone().unwrap_or_default(),
        pending: changes(&state, &pending),
        dead: changes(&state, &dead),
        events,
    }))
}
