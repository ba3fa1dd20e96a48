//! The console's front page: sync health, dead letters (retry or discard), poll now, the backup
//! download and the way to a ticket's sync log.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminPage;
use crate::sdp::budget::Reachability;
use crate::service::AppState;
use crate::service::sync::{self, DeadLetterAction, SyncView};
use crate::store::{OutboxEntry, OutboxOp};
use crate::sync::BackfillProgress;
use crate::web::format::{self, When};
use crate::web::{Page, PageError, see_other};

type State = web::Data<AppState>;

/// An outbox entry as the console lists it.
pub(super) struct Change {
    pub seq: u64,
    pub number: String,
    pub op: &'static str,
    pub error: String,
    pub attempts: u32,
    pub at: When,
}

fn op_name(op: &OutboxOp) -> &'static str {
    match op {
        OutboxOp::CreateRequest => "create request",
        OutboxOp::AddNote { .. } => "add note",
        OutboxOp::AddAttachment { .. } => "upload file",
        OutboxOp::Close => "close",
        OutboxOp::Reopen { .. } => "reopen",
        OutboxOp::UpdateCc => "update CC",
    }
}

pub(super) fn changes(state: &AppState, entries: &[OutboxEntry]) -> Vec<Change> {
    entries
        .iter()
        .map(|e| Change {
            seq: e.seq,
            number: state
                .store
                .ticket(e.ticket)
                .ok()
                .flatten()
                .map_or_else(|| format!("#{}", e.ticket.0), |t| t.number),
            op: op_name(&e.op),
            error: e.last_error.clone().unwrap_or_default(),
            attempts: e.attempts,
            at: format::when(e.at),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin_overview.html")]
struct Overview<'a> {
    page: &'a Page,
    view: SyncView,
    last_poll: Option<When>,
    dead: Vec<Change>,
    tickets: u64,
    paused: bool,
    unreachable_since: String,
    budget_used: String,
    import: Option<String>,
    stretched: Option<String>,
}

pub(super) async fn show(admin: AdminPage, state: State) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let view = sync::health(&state).await.map_err(page.api())?;
    let dead = changes(&state, &view.dead_letters);
    let last_poll = view
        .stats
        .as_ref()
        .and_then(|s| s.last_poll_ok)
        .map(format::when);
    let tickets = state.store.ticket_count().map_err(page.store())?;
    let unreachable_since = match &view.budget.sdp {
        Reachability::Unreachable { since, .. } => {
            page.t1("sdp-unreachable", "since", format::when(*since).text)
        }
        _ => String::new(),
    };
    let budget_used = page.tr.t2(
        "sync-budget-value",
        ("used", view.budget.in_window),
        ("limit", view.budget.per_minute),
    );
    let import = view.backfill.as_ref().map(|b| import_line(page, b));
    let stretched = view
        .stats
        .as_ref()
        .filter(|s| s.polls_stretched)
        .and_then(|s| s.poll_period_secs)
        .map(|secs| page.t1("sync-polls-stretched", "secs", secs));
    Ok(page.render(&Overview {
        page,
        paused: matches!(view.budget.sdp, Reachability::Paused),
        view,
        last_poll,
        dead,
        tickets,
        unreachable_since,
        budget_used,
        import,
        stretched,
    }))
}

fn import_line(page: &Page, b: &BackfillProgress) -> String {
    let tr = page.tr;
    if !b.first_pass_done {
        tr.t2(
            "import-first-pass",
            ("seen", b.rows_seen),
            ("created", b.tickets_created),
        )
    } else if b.details_fetched < b.tickets_created {
        tr.t2(
            "import-details",
            ("created", b.tickets_created),
            ("fetched", b.details_fetched),
        )
    } else {
        page.t1("import-done", "created", b.tickets_created)
    }
}

pub(super) async fn pause(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    set_paused(admin, req, state, body, true).await
}

pub(super) async fn resume(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    set_paused(admin, req, state, body, false).await
}

async fn set_paused(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
    paused: bool,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let _: NoFields = page.submitted(&req, &body)?;
    sync::set_paused(&state, admin.admin(), paused)
        .await
        .map_err(page.api())?;
    let flash = if paused {
        "sync-paused"
    } else {
        "sync-resumed"
    };
    Ok(see_other("/admin", Some(flash), &req))
}

pub(super) async fn dead_letters(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let form: DeadLetterForm = page.submitted(&req, &body)?;
    sync::handle_dead_letters(&state, admin.admin(), form.action, None)
        .await
        .map_err(page.api())?;
    let flash = match form.action {
        DeadLetterAction::Retry => "dead-letters-retried",
        DeadLetterAction::Discard => "dead-letters-discarded",
    };
    Ok(see_other("/admin", Some(flash), &req))
}

#[derive(Deserialize)]
struct NoFields {}

pub(super) async fn sync_run(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let _: NoFields = admin.page.submitted(&req, &body)?;
    let flash = match sync::poll_now(&state) {
        Ok(()) => "sync-started",
        Err(_) => "sync-off",
    };
    Ok(see_other("/admin", Some(flash), &req))
}

pub(super) async fn sync_sweep(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let _: NoFields = admin.page.submitted(&req, &body)?;
    let flash = match sync::sweep_now(&state) {
        Ok(()) => "sweep-started",
        Err(_) => "sync-off",
    };
    Ok(see_other("/admin", Some(flash), &req))
}

#[derive(Deserialize)]
struct DeadLetterForm {
    action: DeadLetterAction,
}

pub(super) async fn dead_letter(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    seq: web::Path<u64>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let form: DeadLetterForm = page.submitted(&req, &body)?;
    sync::handle_dead_letter(&state, admin.admin(), *seq, form.action)
        .await
        .map_err(page.api())?;
    let flash = match form.action {
        DeadLetterAction::Retry => "dead-letter-retried",
        DeadLetterAction::Discard => "dead-letter-discarded",
    };
    Ok(see_other("/admin", Some(flash), &req))
}
