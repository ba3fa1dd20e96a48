//! The reconciliation sweep: every open linked ticket is checked against SDP cheaply (one list call
//! for up to 100 requests, asking only their `last_updated_time` and overdue flags), and only what
//! changed since the ticket's last read is read in full. It catches what the poll's cursor missed,
//! in the sweep lane, and goes on past a request it cannot read.

use serde_json::json;

use super::inbound::{open_links, read_request};
use super::{SyncCtx, SyncError};
use crate::domain::TicketId;
use crate::sdp::Lane;
use crate::sdp::dto::Request;

/// Ids per list call: SDP's page size.
const CHUNK: usize = 100;

/// What a sweep lists: SDP raises its overdue flags on its own schedule, which may leave
/// `last_updated_time` as it was.
const FIELDS: [&str; 4] = [
    "id",
    "last_updated_time",
    "is_overdue",
    "is_first_response_overdue",
];

/// Whether SDP's overdue flags differ from what the ticket shows (a row without them: no).
fn flags_moved(ctx: &SyncCtx, ticket: TicketId, row: &Request) -> bool {
    let Ok(Some(t)) = ctx.store.ticket(ticket) else {
        return false;
    };
    row.is_overdue
        .is_some_and(|o| o != t.promise.resolve_overdue)
        || row
            .is_first_response_overdue
            .is_some_and(|o| o != t.promise.respond_overdue)
}

/// One sweep. Returns how many requests were read in full.
#[tracing::instrument(name = "sdp_sweep", skip_all)]
pub async fn sweep(ctx: &SyncCtx) -> Result<u64, SyncError> {
    let open = open_links(ctx)?;
    let mut read = 0;
    let mut unreadable = std::collections::BTreeMap::new();
    for chunk in open.chunks(CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|(id, _, _)| id.as_str()).collect();
        let list_info = json!({
            "row_count": CHUNK,
            "start_index": 1,
            "search_criteria": {"field": "id", "condition": "is", "values": ids},
        });
        let listed = ctx
            .sdp
            .on(Lane::Sweep)
            .list_requests(&list_info, &FIELDS)
            .await;
        let changed: Vec<&str> = match listed {
            Ok(page) => chunk
                .iter()
                .filter(|(id, ticket, applied)| {
                    match page.rows.iter().find(|r| r.id == *id) {
                        Some(row) => match (row.updated_ms(), applied) {
                            (Some(listed), Some(applied)) => {
                                listed > *applied || flags_moved(ctx, *ticket, row)
                            }
                            (Some(_), None) => true,
                            (None, _) => false,
                        },
                        // Not listed: gone, or not visible to us; a read says which.
                        None => true,
                    }
                })
                .map(|(id, _, _)| id.as_str())
                .collect(),
            Err(e) if e.is_retryable() => return Err(e.into()),
            // SDP does not take a list by ids: read each one.
            Err(_) => ids.clone(),
        };
        for id in changed {
            match read_request(ctx, Lane::Sweep, id).await {
                Ok(_) => read += 1,
                Err(SyncError::Sdp(e)) if e.is_retryable() => return Err(SyncError::Sdp(e)),
                Err(e) => {
                    unreadable.insert(id.to_owned(), e.to_string());
                }
            }
        }
    }
    if !unreadable.is_empty() {
        tracing::warn!(
            count = unreadable.len(),
            "the sweep could not read some requests"
        );
    }
    let mut stats = ctx.stats();
    stats.unreadable = unreadable;
    stats.last_sweep_ok = Some(time::OffsetDateTime::now_utc());
    Ok(read)
}
