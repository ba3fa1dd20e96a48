//! Every ticket: the console's list with search, filters (status, organisation, requester, sync
//! state, overdue) and paging, and its CSV export. Each ticket links to its page (`audit.rs`).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::AdminPage;
use crate::domain::{Role, SyncState, Ticket};
use crate::service::AppState;
use crate::service::tickets::{self, ConsoleQuery};
use crate::store::{ListFilter, StoreError};
use crate::web::format::{self, When, status_key};
use crate::web::{FormErrors, Page, PageError, export};

type State = web::Data<AppState>;

/// Tickets per console page unless the query asks for another number (up to 100).
const PER_PAGE: u64 = 50;

pub(super) struct Row {
    pub number: String,
    pub subject: String,
    pub status: &'static str,
    pub status_label: String,
    pub requester: String,
    pub organization: String,
    pub sync: &'static str,
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
            requester: t.requester.email.clone(),
            organization: t.requester.organization.clone(),
            sync: t.sdp.sync_state.as_str(),
            updated: format::when(t.updated_at),
            overdue: t.overdue(now),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_tickets.html")]
struct TicketList<'a> {
    page: &'a Page,
    rows: Vec<Row>,
    organizations: Vec<String>,
    status: String,
    organization: String,
    requester: String,
    sync: String,
    overdue: bool,
    q: String,
    total: u64,
    page_no: u64,
    prev: Option<String>,
    next: Option<String>,
    csv: String,
    error: Option<String>,
}

impl TicketList<'_> {
    fn sync_options(&self) -> Vec<(&'static str, String)> {
        SyncState::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str(),
                    self.page.t(&format!("sync-state-{}", s.as_str())),
                )
            })
            .collect()
    }
}

/// The query string of `query` with only its filled fields, at `page` (none: every page).
fn query_string(query: &ConsoleQuery, page: Option<u64>) -> String {
    let pairs = [
        ("q", query.list.q.clone()),
        ("status", query.list.status.clone()),
        ("organization", query.organization.clone()),
        ("requester", query.requester.clone()),
        ("sync", query.sync.clone()),
        ("overdue", query.overdue.clone()),
        ("per_page", query.list.per_page.clone()),
        ("page", page.map(|p| p.to_string())),
    ];
    let kept: Vec<(&str, String)> = pairs
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

fn parse(req: &HttpRequest) -> ConsoleQuery {
    let mut query = web::Query::<ConsoleQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    query.list.per_page = query
        .list
        .per_page
        .filter(|n| !n.is_empty())
        .or_else(|| Some(PER_PAGE.to_string()));
    query
}

pub(super) async fn list(
    admin: AdminPage,
    state: State,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let mut query = parse(&req);
    let (filter, error) = match tickets::console_filter(admin.admin(), &query) {
        Ok(f) => (f, None),
        Err(e) => {
            // A hand-edited URL: show everything, and say what was wrong.
            let summary = FormErrors::from_api(page.tr, &e).summary;
            query = ConsoleQuery::default();
            query.list.per_page = Some(PER_PAGE.to_string());
            let all = tickets::console_filter(admin.admin(), &query).map_err(page.api())?;
            (all, summary)
        }
    };
    let page_no = filter.page;
    let per_page = filter.per_page;
    let store = state.store.clone();
    let (found, users) =
        web::block(move || Ok::<_, StoreError>((store.list_tickets(&filter)?, store.users()?)))
            .await
            .map_err(|_| PageError::internal(page.tr))?
            .map_err(page.store())?;
    let mut organizations: Vec<String> = users
        .into_iter()
        .filter(|u| u.role == Role::Customer && !u.organization.trim().is_empty())
        .map(|u| u.organization.trim().to_owned())
        .collect();
    organizations.sort_by_key(|o| o.to_lowercase());
    organizations.dedup_by_key(|o| o.to_lowercase());
    let now = OffsetDateTime::now_utc();
    let pages = found.total.div_ceil(per_page).max(1);
    let href = |n: u64| format!("/admin/tickets?{}", query_string(&query, Some(n)));
    let body = TicketList {
        page,
        rows: found.items.iter().map(|t| Row::new(page, t, now)).collect(),
        organizations,
        status: query.list.status.clone().unwrap_or_default(),
        organization: query.organization.clone().unwrap_or_default(),
        requester: query.requester.clone().unwrap_or_default(),
        sync: query.sync.clone().unwrap_or_default(),
        overdue: query.overdue.as_deref().is_some_and(|o| !o.is_empty()),
        q: query.list.q.clone().unwrap_or_default(),
        total: found.total,
        page_no,
        prev: (page_no > 1).then(|| href(page_no - 1)),
        next: (page_no < pages).then(|| href(page_no + 1)),
        csv: format!("/admin/tickets.csv?{}", query_string(&query, None)),
        error,
    };
    Ok(page.render(&body))
}

/// The filtered list (every page of it) as CSV; a malformed filter is refused, not widened.
pub(super) async fn export_csv(
    admin: AdminPage,
    state: State,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let filter: ListFilter =
        tickets::console_filter(admin.admin(), &parse(&req)).map_err(page.api())?;
    Ok(export::tickets(state, filter, "tickets.csv"))
}
