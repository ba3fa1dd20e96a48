//! The dashboard: a customer's tickets with counts per status, filters, paging and a "waiting on
//! you" list of resolved tickets to confirm.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use crate::domain::{Kind, Status, Ticket};
use crate::error::ApiError;
use crate::service::AppState;
use crate::service::tickets::{self, ListQuery};
use crate::store::{ListFilter, MoreFilter, Scope, StoreError};
use crate::web::format::{self, When, kind_key, status_key};
use crate::web::{FormErrors, Page, PageError, export};

type State = web::Data<AppState>;

/// Tickets per dashboard page.
const PER_PAGE: u64 = 20;

pub(super) struct Row {
    pub number: String,
    pub subject: String,
    pub requester: String,
    pub status: &'static str,
    pub status_label: String,
    pub kind_label: String,
    pub updated: When,
    /// The next time the service desk promised, while the ticket is open: the first response
    /// until it came, then the resolution.
    pub due: Option<When>,
    pub overdue: bool,
}

impl Row {
    fn new(page: &Page, t: &Ticket, now: OffsetDateTime) -> Row {
        Row {
            number: t.number.clone(),
            subject: t.subject.clone(),
            requester: t.requester.name.clone(),
            status: t.status.as_str(),
            status_label: page.t(&status_key(t.status)),
            kind_label: page.t(&kind_key(t.kind)),
            updated: format::when(t.updated_at),
            due: t
                .promise
                .respond_by
                .filter(|_| t.promise.responded_at.is_none())
                .or(t.due_by)
                .filter(|_| t.status.is_open())
                .map(format::when),
            overdue: t.overdue(now),
        }
    }
}

pub(super) struct Tally {
    pub status: &'static str,
    pub label: String,
    pub count: u64,
    pub href: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard<'a> {
    page: &'a Page,
    counts: Vec<Tally>,
    waiting: Vec<Row>,
    rows: Vec<Row>,
    status: String,
    kind: String,
    q: String,
    overdue: bool,
    total: u64,
    page_no: u64,
    prev: Option<String>,
    next: Option<String>,
    csv: String,
    error: Option<String>,
    /// The organisation's sharing: when on, rows show who requested each ticket; sharing every
    /// ticket offers "My organisation".
    sharing: &'static str,
    /// "My organisation" is shown.
    org_view: bool,
}

impl Dashboard<'_> {
    fn kind_options(&self) -> Vec<(&'static str, String)> {
        Kind::ALL
            .iter()
            .map(|k| (k.as_str(), self.page.t(&kind_key(*k))))
            .collect()
    }
}

/// `path` with the query's filters, at `page` (none: every page).
fn page_href(path: &str, query: &ListQuery, page: Option<u64>) -> String {
    let pairs = [
        ("status", query.status.clone().unwrap_or_default()),
        ("kind", query.kind.clone().unwrap_or_default()),
        ("q", query.q.clone().unwrap_or_default()),
        ("overdue", query.overdue.clone().unwrap_or_default()),
        ("view", query.view.clone().unwrap_or_default()),
        ("page", page.map(|p| p.to_string()).unwrap_or_default()),
    ];
    let kept: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(kept).unwrap_or_default()
    )
}

/// The caller's filtered list (every page of it) as CSV: a customer's own tickets only, by the
/// same filter as the dashboard.
pub(super) async fn export_csv(
    page: Page,
    state: State,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let caller = page.require()?;
    let query = web::Query::<ListQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let filter = tickets::list_filter(caller, &query).map_err(page.api())?;
    Ok(export::tickets(state, filter, "my-tickets.csv"))
}

pub(super) async fn show(
    page: Page,
    state: State,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let caller = page.require()?;
    let mut query = web::Query::<ListQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    query.per_page = Some(PER_PAGE.to_string());
    let now = OffsetDateTime::now_utc();
    let api = |e: ApiError| PageError::from_api(page.tr, &e);
    let (filter, error) = match tickets::list_filter(caller, &query) {
        Ok(f) => (f, None),
        Err(e) => {
            // A hand-edited URL: show everything, and say what was wrong.
            let summary = FormErrors::from_api(page.tr, &e).summary;
            let clean = ListQuery {
                per_page: Some(PER_PAGE.to_string()),
                ..ListQuery::default()
            };
            query = clean;
            (tickets::list_filter(caller, &query).map_err(api)?, summary)
        }
    };
    // Waiting for a decision: only the requester confirms or reopens.
    let scope = match &filter.scope {
        Scope::All => Scope::All,
        _ => Scope::Mine {
            user: caller.user.id,
            copied: None,
        },
    };
    let page_no = filter.page;
    let filter_scope = filter.scope.clone();
    let store = state.store.clone();
    let (found, counts, waiting) = web::block(move || {
        let found = store.list_tickets(&filter)?;
        let counts = store.status_counts(&filter.scope)?;
        let waiting = store.list_tickets(&ListFilter {
            scope,
            status: Some(Status::Resolved),
            kind: None,
            q: None,
            more: MoreFilter::default(),
            page: 1,
            per_page: 10,
        })?;
        Ok::<_, StoreError>((found, counts, waiting))
    })
    .await
    .map_err(|_| PageError::internal(page.tr))?
    .map_err(|e| api(e.into()))?;
    let counts = Status::ALL
        .iter()
        .zip(counts)
        .map(|(s, count)| Tally {
            status: s.as_str(),
            label: page.t(&status_key(*s)),
            count,
            href: page_href(
                "/tickets",
                &ListQuery {
                    status: Some(s.as_str().to_owned()),
                    view: query.view.clone(),
                    ..ListQuery::default()
                },
                None,
            ),
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
        overdue: query.overdue.as_deref() == Some("true"),
        total: found.total,
        page_no,
        prev: (page_no > 1).then(|| page_href("/tickets", &query, Some(page_no - 1))),
        next: (page_no < pages).then(|| page_href("/tickets", &query, Some(page_no + 1))),
        csv: page_href("/tickets.csv", &query, None),
        error,
        sharing: caller.sharing().as_str(),
        org_view: matches!(filter_scope, Scope::Org(_)),
    };
    Ok(page.render(&body))
}
