//! A request's fate in SDP: moved to the trash, deleted, merged into another, or back again. Read
//! from what a GET answers. A "not found" is confirmed with a list call before the ticket is called
//! removed, so an address SDP does not serve never reads as a deletion.

use serde_json::json;

use super::{SyncCtx, SyncError};
use crate::domain::{Actor, SdpFate, TicketId};
use crate::sdp::dto::Request;
use crate::sdp::{Lane, SdpError};

/// What a read of a request found.
#[derive(Debug)]
pub(crate) enum Found {
    Request(Box<Request>),
    /// SDP cannot take changes to it.
    Gone(SdpFate),
}

/// Reads a request, turning what SDP says about its fate into a [`SdpFate`].
pub(crate) async fn get(ctx: &SyncCtx, lane: Lane, id: &str) -> Result<Found, SyncError> {
    match ctx.sdp.on(lane).get_request(id).await {
        Ok(request) if request.is_trashed == Some(true) => Ok(Found::Gone(SdpFate::Trashed)),
        Ok(request) => Ok(Found::Request(Box::new(request))),
        Err(SdpError::Merged { into }) => Ok(Found::Gone(merged(ctx, into)?)),
        Err(e) if e.is_not_found() => {
            if absent(ctx, lane, id).await? {
                Ok(Found::Gone(SdpFate::Removed))
            } else {
                Err(e.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// What an error from a change to the request says of its fate, when it says anything: a merge
/// names the parent; a refusal is checked with a read.
pub(crate) async fn after_refusal(
    ctx: &SyncCtx,
    request_id: &str,
    error: &SdpError,
) -> Result<Option<SdpFate>, SyncError> {
    match error {
        SdpError::Merged { into } => Ok(Some(merged(ctx, into.clone())?)),
        SdpError::Api { .. } => match get(ctx, Lane::Outbox, request_id).await? {
            Found::Gone(fate) => Ok(Some(fate)),
            Found::Request(_) => Ok(None),
        },
        _ => Ok(None),
    }
}

fn merged(ctx: &SyncCtx, into: String) -> Result<SdpFate, SyncError> {
    let ticket = match ctx.store.ticket_by_sdp_id(&into)? {
        Some(id) => ctx.store.ticket(id)?.map(|t| t.number),
        None => None,
    };
    Ok(SdpFate::Merged { into, ticket })
}

/// Whether SDP, answering a list, does not list the request.
async fn absent(ctx: &SyncCtx, lane: Lane, id: &str) -> Result<bool, SyncError> {
    let list_info = json!({
        "row_count": 1,
        "start_index": 1,
        "search_criteria": {"field": "id", "condition": "is", "values": [id]},
    });
    match ctx.sdp.on(lane).list_requests(&list_info, &["id"]).await {
        Ok(page) => Ok(!page.rows.iter().any(|r| r.id == id)),
        Err(e) if e.is_retryable() => Err(e.into()),
        // SDP will not say: leave the ticket as it is.
        Err(_) => Ok(false),
    }
}

/// Records the fate (or, with `None`, its end) on the ticket and tells live pages; a ticket back
/// in SDP sends what waited for it.
pub(crate) async fn settle(
    ctx: &SyncCtx,
    ticket: TicketId,
    fate: Option<&SdpFate>,
) -> Result<(), SyncError> {
    let events = crate::tickets::team::settle_fate(
        &ctx.store,
        ticket,
        fate,
        &Actor::team("ServiceDesk Plus"),
    )?;
    if events.is_empty() {
        return Ok(());
    }
    ctx.store.durable().await?;
    tracing::info!(ticket = ticket.0, ?fate, "sdp request fate");
    if fate.is_none() {
        ctx.store.outbox_signal().notify_one();
    }
    for event in events {
        (ctx.publish)(event);
    }
    Ok(())
}
