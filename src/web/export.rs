//! CSV exports of a ticket list (the console's, a customer's own), streamed a page of the list at
//! a time so a long list never sits in memory. A cell a spreadsheet would take for a formula gets a
//! leading quote.

use std::borrow::Cow;

use actix_web::{HttpResponse, web};
use bytes::Bytes;
use futures_util::stream;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::Ticket;
use crate::service::AppState;
use crate::store::ListFilter;

/// Tickets read from the store per chunk of the response.
const CHUNK: u64 = 100;

const HEADER: [&str; 12] = [
    "number",
    "subject",
    "status",
    "kind",
    "priority",
    "requester",
    "requester_email",
    "organization",
    "created_at",
    "updated_at",
    "sync_state",
    "sdp_request",
];

/// Answers with the tickets `filter` lists (every page of them) as a CSV download named `filename`.
/// The access check is the filter's: the caller's use case built it.
pub(crate) fn tickets(
    state: web::Data<AppState>,
    filter: ListFilter,
    filename: &str,
) -> HttpResponse {
    let first = ListFilter {
        page: 1,
        per_page: CHUNK,
        ..filter
    };
    let body = stream::unfold(Some(first), move |next| {
        let state = state.clone();
        async move {
            let filter = next?;
            let store = state.store.clone();
            let query = filter.clone();
            let found = match web::block(move || store.list_tickets(&query)).await {
                Ok(Ok(found)) => found,
                failed => {
                    let error = failed.map_or_else(
                        |e| e.to_string(),
                        |r| r.err().map(|e| e.to_string()).unwrap_or_default(),
                    );
                    tracing::error!(%error, "ticket export cut short");
                    let cut = actix_web::error::ErrorInternalServerError("export failed");
                    return Some((Err(cut), None));
                }
            };
            let chunk = encode(filter.page == 1, &found.items);
            let more = filter.page.saturating_mul(CHUNK) < found.total && !found.items.is_empty();
            let next = more.then(|| ListFilter {
                page: filter.page + 1,
                ..filter
            });
            Some((Ok::<_, actix_web::Error>(chunk), next))
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .streaming(body)
}

fn encode(header: bool, tickets: &[Ticket]) -> Bytes {
    let mut out = csv::Writer::from_writer(Vec::new());
    if header {
        out.write_record(HEADER)
            .expect("writing to memory cannot fail");
    }
    for t in tickets {
        for cell in row(t) {
            out.write_field(neutralised(&cell).as_bytes())
                .expect("writing to memory cannot fail");
        }
        out.write_record(None::<&[u8]>)
            .expect("writing to memory cannot fail");
    }
    Bytes::from(out.into_inner().expect("writing to memory cannot fail"))
}

fn row(t: &Ticket) -> [String; 12] {
    let at = |when: OffsetDateTime| when.format(&Rfc3339).unwrap_or_default();
    [
        t.number.clone(),
        t.subject.clone(),
        t.status.as_str().to_owned(),
        t.kind.as_str().to_owned(),
        t.priority.as_str().to_owned(),
        t.requester.name.clone(),
        t.requester.email.clone(),
        t.requester.organization.clone(),
        at(t.created_at),
        at(t.updated_at),
        t.sdp.sync_state.as_str().to_owned(),
        t.sdp.number.clone().unwrap_or_default(),
    ]
}

/// A cell as a spreadsheet may safely open it: one that would start a formula (or a DDE call, after
/// a tab or carriage return) is prefixed with `'`, so it reads as text.
fn neutralised(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::neutralised;

    #[test]
    fn formula_cells_become_text() {
        for cell in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralised(cell), format!("'{cell}"));
        }
        for cell in ["plain", "a=b", "", "'quoted"] {
            assert_eq!(neutralised(cell), cell);
        }
    }
}
