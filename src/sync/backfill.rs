//! The backfill: SDP's existing requests of portal customers become tickets. The first pass makes a
//! ticket from each list row (100 rows a call, walked by `created_time`), so a customer's history
//! shows within seconds of connecting; then each ticket's details (description, messages, files)
//! are read one request at a time. Both run in the lowest lane: they spend only what customers,
//! hints and polls leave. Progress is persisted, so a restart resumes where it stopped.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use super::inbound::{awaiting_link, importable_requester, imported, read_request};
use super::{BackfillProgress, SyncCtx, SyncError, state};
use crate::sdp::Lane;
use crate::sdp::dto::Request;

/// What a first-pass row carries: enough to show the ticket in the customer's list.
const ROW_FIELDS: [&str; 10] = [
    "id",
    "subject",
    "requester",
    "status",
    "technician",
    "created_time",
    "last_updated_time",
    "priority",
    "request_type",
    "due_by_time",
];

/// Details read between two saves of the progress.
const DETAILS_BATCH: usize = 20;

async fn save(ctx: &SyncCtx, progress: &BackfillProgress) -> Result<(), SyncError> {
    ctx.store
        .put_sync_values(&[(state::BACKFILL, json!(progress))])?;
    ctx.store.durable().await?;
    Ok(())
}

/// The backfill worker: the first pass, then the details, then it waits for more details (a
/// request the poll imported from a list is read in full at once, so this is rare).
pub(crate) async fn run(ctx: &SyncCtx) -> Result<(), SyncError> {
    // The poll worker asks SDP where both start; wait for it.
    let mut progress = loop {
        if let Some(progress) = ctx.backfill_progress()? {
            break progress;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if !progress.first_pass_done {
        if ctx.config.import_requester_requests {
            first_pass(ctx, &mut progress).await?;
        }
        progress.first_pass_done = true;
        save(ctx, &progress).await?;
        tracing::info!(
            rows = progress.rows_seen,
            tickets = progress.tickets_created,
            "backfill first pass done"
        );
    }
    loop {
        let pending = ctx.store.details_pending(DETAILS_BATCH)?;
        if pending.is_empty() {
            tokio::time::sleep(Duration::from_mins(1)).await;
            continue;
        }
        for (ticket, sdp_id) in pending {
            match read_request(ctx, Lane::Backfill, &sdp_id).await {
                Ok(_) => {}
                Err(SyncError::Sdp(e)) if e.is_retryable() => return Err(SyncError::Sdp(e)),
                Err(e) => {
                    ctx.mismatch(format!(
                        "the details of SDP request {sdp_id} could not be read: {e}"
                    ));
                    crate::tickets::import::details_unavailable(&ctx.store, ticket)?;
                }
            }
            progress.details_fetched += 1;
        }
        save(ctx, &progress).await?;
    }
}

/// Makes a ticket from every list row of a portal customer's request created before the poll
/// began.
async fn first_pass(ctx: &SyncCtx, progress: &mut BackfillProgress) -> Result<(), SyncError> {
    let mut since = progress.cursor_ms.unwrap_or(0);
    let mut start = 1u64;
    let mut taken = HashSet::new();
    loop {
        let list_info = json!({
            "row_count": 100,
            "start_index": start,
            "sort_field": "created_time",
            "sort_order": "asc",
            "get_total_count": progress.total.is_none(),
            "search_criteria": {"field": "created_time", "condition": "greater or equal", "value": since.to_string()},
        });
        let page = ctx
            .sdp
            .on(Lane::Backfill)
            .list_requests(&list_info, &ROW_FIELDS)
            .await?;
        if progress.total.is_none() {
            progress.total = page.total;
        }
        let mut batch = Vec::new();
        let mut reached_the_poll = false;
        for row in &page.rows {
            if row.created_ms().is_some_and(|ms| ms >= progress.until_ms) {
                reached_the_poll = true;
                break;
            }
            if !taken.insert(row.id.clone()) {
                continue;
            }
            progress.rows_seen += 1;
            if let Some(user) = importable(ctx, row)? {
                super::statuses::ensure(ctx, Lane::Backfill, row.status.as_ref()).await;
                batch.push((imported(ctx, row, true), user));
            }
        }
        progress.tickets_created += crate::tickets::import::import_page(&ctx.store, &batch)?;
        let last = page.rows.last().and_then(Request::created_ms);
        if let Some(ms) = last {
            progress.cursor_ms = Some(ms);
        }
        save(ctx, progress).await?;
        if reached_the_poll || !page.more || page.rows.is_empty() {
            return Ok(());
        }
        match last {
            Some(ms) if ms > since => {
                since = ms;
                start = 1;
            }
            _ => start += page.rows.len() as u64,
        }
    }
}

/// The portal customer a row's request belongs to, unless it is linked already.
fn importable(ctx: &SyncCtx, row: &Request) -> Result<Option<crate::domain::User>, SyncError> {
    if ctx.store.ticket_by_sdp_id(&row.id)?.is_some() || awaiting_link(ctx, row)? {
        return Ok(None);
    }
    importable_requester(ctx, row)
}
