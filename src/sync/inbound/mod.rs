//! Inbound: reads what changed in SDP and hands it to the ticket commands (`tickets::team`,
//! `tickets::import`). The poll walks requests by `last_updated_time` above a persisted watermark
//! (minus an overlap); a read takes the request, its notes, e-mails and files. Private notes never
//! become portal messages.

mod collect;

use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument;

use super::{ImportProgress, SyncCtx, SyncError, state, text};
use crate::domain::{Actor, Kind, Priority, Role, Status, TicketId, User};
use crate::sdp::dto::Request;
use crate::tickets::import::Imported;
use crate::tickets::team::Observation;

pub(super) fn millis_to_time(ms: Option<i64>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms?) * 1_000_000).ok()
}

/// One poll: every page of requests changed since the watermark. Returns how many were read.
#[tracing::instrument(name = "sdp_poll", skip_all)]
pub async fn poll(ctx: &SyncCtx) -> Result<u64, SyncError> {
    let watermark: i64 = ctx.store.sync_value(state::WATERMARK)?.unwrap_or(0);
    let overlap = i64::try_from(ctx.config.poll_overlap_secs).unwrap_or(60) * 1000;
    let since = (watermark - overlap).max(0);
    let mut progress: ImportProgress = ctx.store.sync_value(state::IMPORT)?.unwrap_or_default();
    let mut max_seen = watermark;
    let mut start_index = 1u64;
    let mut read = 0u64;
    loop {
        let list_info = json!({
            "row_count": 100,
            "start_index": start_index,
            "sort_field": "last_updated_time",
            "sort_order": "asc",
            "get_total_count": start_index == 1 && !progress.done,
            "search_criteria": [{"field": "last_updated_time", "condition": "greater than", "value": since.to_string()}],
            "fields_required": ["id", "subject", "requester", "status", "technician", "last_updated_time"],
        });
        let page = ctx.sdp.list_requests(&list_info).await?;
        if start_index == 1 && !progress.done && progress.total.is_none() {
            progress.total = page.total;
        }
        let (rows, more) = (page.rows, page.more);
        for row in &rows {
            if relevant(ctx, row)? {
                match read_request(ctx, &row.id).await {
                    Ok(imported) => progress.imported += u64::from(imported),
                    // SDP unavailable: stop here; the watermark stays and the next poll resumes.
                    Err(SyncError::Sdp(e)) if e.is_retryable() => return Err(SyncError::Sdp(e)),
                    // One request SDP will never serve (deleted, unreadable) must not stall the rest.
                    Err(e) => ctx.mismatch(format!(
                        "SDP request {} could not be read and was skipped: {e}",
                        row.id
                    )),
                }
                read += 1;
            }
            if let Some(ms) = row
                .last_updated_time
                .as_ref()
                .and_then(super::super::sdp::dto::SdpDate::millis)
            {
                max_seen = max_seen.max(ms);
            }
        }
        if !progress.done {
            progress.walked += rows.len() as u64;
        }
        // The watermark moves only once the page is applied, and is written durably.
        save_progress(ctx, Some(max_seen), &progress).await?;
        if !more || rows.is_empty() {
            break;
        }
        start_index += rows.len() as u64;
    }
    if !progress.done {
        progress.done = true;
        save_progress(ctx, None, &progress).await?;
    }
    let now = OffsetDateTime::now_utc();
    ctx.stats().last_poll_ok = Some(now);
    ctx.store
        .metrics
        .sdp_last_poll_timestamp_seconds
        .set(now.unix_timestamp());
    Ok(read)
}

async fn save_progress(
    ctx: &SyncCtx,
    watermark: Option<i64>,
    progress: &ImportProgress,
) -> Result<(), SyncError> {
    let mut values = vec![(state::IMPORT, json!(progress))];
    if let Some(watermark) = watermark {
        values.push((state::WATERMARK, json!(watermark)));
    }
    ctx.store.put_sync_values(&values)?;
    ctx.store.durable().await?;
    Ok(())
}

/// Whether a listed request concerns the portal: linked, or importable for a portal customer.
fn relevant(ctx: &SyncCtx, row: &Request) -> Result<bool, SyncError> {
    if ctx.store.ticket_by_sdp_id(&row.id)?.is_some() {
        return Ok(true);
    }
    Ok(ctx.config.import_requester_requests && importable_requester(ctx, row)?.is_some())
}

fn importable_requester(ctx: &SyncCtx, request: &Request) -> Result<Option<User>, SyncError> {
    let Some(email) = request
        .requester
        .as_ref()
        .and_then(|r| r.email_id.as_deref())
    else {
        return Ok(None);
    };
    let email = crate::domain::user::normalize_email(email);
    Ok(ctx
        .store
        .user_by_email(&email)?
        .filter(|u| u.role == Role::Customer && !u.disabled))
}

/// Re-reads every linked ticket that is not closed: catches what the watermark missed.
#[tracing::instrument(name = "sdp_reconcile", skip_all)]
pub async fn reconcile(ctx: &SyncCtx) -> Result<u64, SyncError> {
    let mut read = 0;
    for (sdp_id, ticket) in ctx.store.sdp_links()? {
        let open = ctx
            .store
            .ticket(ticket)?
            .is_some_and(|t| t.status != Status::Closed);
        if open {
            read_request(ctx, &sdp_id).await?;
            read += 1;
        }
    }
    Ok(read)
}

/// Reads one request with everything attached to it and applies it. Unknown requests are imported
/// when they belong to a portal customer, and ignored otherwise. Returns whether it was imported.
pub async fn read_request(ctx: &SyncCtx, sdp_id: &str) -> Result<bool, SyncError> {
    let span = tracing::info_span!("sdp_read", request = %sdp_id, ticket = tracing::field::Empty);
    async {
        let request = ctx.sdp.get_request(sdp_id).await?;
        let (ticket_id, imported) = if let Some(id) = ctx.store.ticket_by_sdp_id(&request.id)? {
            (id, false)
        } else {
            if !ctx.config.import_requester_requests {
                return Ok(false);
            }
            let Some(requester) = importable_requester(ctx, &request)? else {
                return Ok(false);
            };
            import(ctx, &request, &requester)?
        };
        let Some(ticket) = ctx.store.ticket(ticket_id)? else {
            return Ok(false);
        };
        tracing::Span::current().record("ticket", ticket.number.as_str());
        let messages = collect::messages(ctx, &ticket, &request).await?;
        let files = collect::files(ctx, &ticket, &request.id).await?;
        let technician = request
            .technician
            .as_ref()
            .and_then(|t| t.name.clone())
            .filter(|n| !n.is_empty());
        let mapped = request
            .status
            .as_ref()
            .map(|s| ctx.mapping.status(s, technician.is_some()));
        if let Some(warning) = mapped.as_ref().and_then(|m| m.warning.clone()) {
            ctx.mismatch(warning);
        }
        let observation = Observation {
            updated_ms: request
                .last_updated_time
                .as_ref()
                .and_then(super::super::sdp::dto::SdpDate::millis),
            sdp_status: request.status.as_ref().and_then(|s| s.name.clone()),
            status: mapped.map(|m| m.status),
            team: Actor::team(technician.as_deref().unwrap_or("ServiceDesk Plus")),
            technician,
            due_by: millis_to_time(
                request
                    .due_by_time
                    .as_ref()
                    .and_then(super::super::sdp::dto::SdpDate::millis),
            ),
            messages,
            files,
        };
        let (_, events) =
            crate::tickets::team::observe(&ctx.store, ticket_id, &observation, ctx.window)?;
        ctx.store.durable().await?;
        for event in events {
            (ctx.publish)(event);
        }
        Ok(imported)
    }
    .instrument(span)
    .await
}

/// Takes a request raised in SDP into the portal; returns the ticket and whether it is new.
fn import(
    ctx: &SyncCtx,
    request: &Request,
    requester: &User,
) -> Result<(TicketId, bool), SyncError> {
    let mapping = &ctx.mapping.config;
    let kind = match request
        .request_type
        .as_ref()
        .and_then(|t| t.name.as_deref())
    {
        Some(name) if name.eq_ignore_ascii_case(&mapping.request_type_information_request) => {
            Kind::InformationRequest
        }
        _ => Kind::ProblemReport,
    };
    let priority = request
        .priority
        .as_ref()
        .and_then(|p| p.name.as_deref())
        .and_then(|name| {
            Priority::ALL
                .into_iter()
                .find(|p| ctx.mapping.priority(*p).eq_ignore_ascii_case(name))
        })
        .unwrap_or_default();
    let imported = Imported {
        sdp_id: request.id.clone(),
        kind,
        priority,
        subject: request
            .subject
            .clone()
            .unwrap_or_default()
            .chars()
            .take(250)
            .collect(),
        description: text::from_html(request.description.as_deref().unwrap_or_default()),
        created_at: millis_to_time(
            request
                .created_time
                .as_ref()
                .and_then(super::super::sdp::dto::SdpDate::millis),
        )
        .unwrap_or_else(OffsetDateTime::now_utc),
    };
    let (id, new) = crate::tickets::import::import(&ctx.store, &imported, requester)?;
    if new {
        tracing::info!(request = %request.id, ticket = id.0, "sdp request imported");
    }
    Ok((id, new))
}
