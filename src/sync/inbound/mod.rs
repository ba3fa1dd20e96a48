//! Inbound: reads what changed in SDP and hands it to the ticket commands (`tickets::team`,
//! `tickets::import`). A poll lists requests changed since its cursor (by `last_updated_time`,
//! and by `created_time` for requests never edited, whose `last_updated_time` is null) and reads
//! only those newer than what the ticket already shows. A read takes the request, then only the
//! sub-lists the request says it has (notes, e-mails, files). Private notes never become portal
//! messages.

mod collect;
mod fields;
mod notes;

use std::collections::HashSet;

use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument;

use super::fate::{self, Found};
use super::mapping::{assigned, technician};
use super::{PollCursor, SyncCtx, SyncError, state, text};
use crate::domain::{Actor, Kind, Priority, Promise, Role, SdpFate, Status, TicketId, User};
use crate::sdp::Lane;
use crate::sdp::dto::Request;
use crate::tickets::import::Imported;
use crate::tickets::team::Observation;

pub(super) fn millis_to_time(ms: Option<i64>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms?) * 1_000_000).ok()
}

/// The fields a poll's list rows carry: enough to tell whether a request needs reading, and whose.
/// The promise (due times, overdue flags, responded and resolved times) comes with that read;
/// flags SDP raises without an edit are the sweep's to notice.
const POLL_FIELDS: [&str; 6] = [
    "id",
    "subject",
    "requester",
    "status",
    "last_updated_time",
    "created_time",
];

/// The list field a poll walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    Updated,
    Created,
}

impl Walk {
    fn field(self) -> &'static str {
        match self {
            Walk::Updated => "last_updated_time",
            Walk::Created => "created_time",
        }
    }

    fn of(self, row: &Request) -> Option<i64> {
        match self {
            Walk::Updated => row.updated_ms(),
            Walk::Created => row.created_ms(),
        }
    }
}

/// Where the poll stands (see [`init_positions`]).
pub(crate) fn cursor(ctx: &SyncCtx) -> Result<PollCursor, SyncError> {
    Ok(ctx
        .store
        .sync_value::<PollCursor>(state::POLL)?
        .unwrap_or_default())
}

/// One poll: the requests changed since the cursor, read where they changed. Returns how many
/// were read.
#[tracing::instrument(name = "sdp_poll", skip_all)]
pub async fn poll(ctx: &SyncCtx) -> Result<u64, SyncError> {
    // The first poll asks SDP where it and the backfill start.
    init_positions(ctx).await?;
    let mut cursor = cursor(ctx)?;
    let mut read = walk(ctx, Walk::Updated, &mut cursor).await?;
    // Requests never edited have no `last_updated_time`: only the created-time walk finds new
    // ones raised for portal customers.
    if ctx.config.import_requester_requests {
        read += walk(ctx, Walk::Created, &mut cursor).await?;
    }
    let now = OffsetDateTime::now_utc();
    ctx.stats().last_poll_ok = Some(now);
    ctx.store
        .metrics
        .sdp_last_poll_timestamp_seconds
        .set(now.unix_timestamp());
    Ok(read)
}

/// Walks one list by `walk`'s field from the cursor (less the overlap), page by page keyed on the
/// field (not on offsets, so rows changing during the walk are not skipped).
async fn walk(ctx: &SyncCtx, walk: Walk, cursor: &mut PollCursor) -> Result<u64, SyncError> {
    let overlap = i64::try_from(ctx.config.poll_overlap_secs).unwrap_or(60) * 1000;
    let position = match walk {
        Walk::Updated => cursor.updated_ms,
        Walk::Created => cursor.created_ms,
    };
    let backfill = ctx.backfill_progress()?;
    let mut since = (position - overlap).max(0);
    if walk == Walk::Created
        && let Some(b) = &backfill
    {
        // What was created before the poll began is the backfill's: no need to list it again.
        since = since.max(b.until_ms);
    }
    let mut start = 1u64;
    let mut newest = position;
    let mut taken = HashSet::new();
    let mut read = 0;
    // Requests created before the backfill's limit are its to import, from list rows, while its
    // first pass runs; the poll takes only changes to tickets it already has.
    let backfill_until = backfill.filter(|b| !b.first_pass_done).map(|b| b.until_ms);
    loop {
        let list_info = json!({
            "row_count": 100,
            "start_index": start,
            "sort_field": walk.field(),
            "sort_order": "asc",
            "search_criteria": {"field": walk.field(), "condition": "greater or equal", "value": since.to_string()},
        });
        let page = ctx
            .sdp
            .on(Lane::Poll)
            .list_requests(&list_info, &POLL_FIELDS)
            .await?;
        for row in &page.rows {
            if !taken.insert(row.id.clone()) {
                continue;
            }
            let backfills =
                backfill_until.is_some_and(|until| row.created_ms().is_none_or(|ms| ms < until));
            if needs_reading(ctx, walk, row, backfills)? {
                match read_request(ctx, Lane::Poll, &row.id).await {
                    Ok(_) => read += 1,
                    // SDP unavailable: stop here; the cursor stays and the next poll resumes.
                    Err(SyncError::Sdp(e)) if e.is_retryable() => return Err(SyncError::Sdp(e)),
                    // One request SDP will not serve must not stall the rest: it waits for the
                    // sweep, and health shows it meanwhile.
                    Err(e) => {
                        tracing::warn!(request = %row.id, error = %e, "an SDP request could not be read; the sweep tries it again");
                        ctx.stats().unreadable.insert(row.id.clone(), e.to_string());
                    }
                }
            }
        }
        if let Some(ms) = page.rows.iter().filter_map(|r| walk.of(r)).max() {
            newest = newest.max(ms);
        }
        // The cursor moves only once the page is applied, and is written durably.
        match walk {
            Walk::Updated => cursor.updated_ms = newest,
            Walk::Created => cursor.created_ms = newest,
        }
        ctx.store.put_sync_values(&[(state::POLL, json!(cursor))])?;
        ctx.store.durable().await?;
        let last = page.rows.last().and_then(|r| walk.of(r));
        if !page.more || page.rows.is_empty() {
            return Ok(read);
        }
        match last {
            // The next page starts at the last row's time; rows already taken are skipped.
            Some(ms) if ms > since => {
                since = ms;
                start = 1;
            }
            // A whole page at one instant: step over it by position.
            _ => start += page.rows.len() as u64,
        }
    }
}

/// Whether a listed request must be read: it belongs to a ticket and changed since the ticket's
/// last read, or it is a portal customer's request not taken in yet.
fn needs_reading(
    ctx: &SyncCtx,
    walk: Walk,
    row: &Request,
    backfills: bool,
) -> Result<bool, SyncError> {
    if let Some(id) = ctx.store.ticket_by_sdp_id(&row.id)? {
        let Some(ticket) = ctx.store.ticket(id)? else {
            return Ok(false);
        };
        return Ok(match (row.updated_ms(), ticket.sdp_updated_ms, walk) {
            (Some(listed), Some(applied), _) => listed > applied,
            // Never edited since it was created: nothing to take in.
            (None, _, Walk::Created) => false,
            // Never read, or listed as changed without saying when: read it.
            (Some(_), None, _) | (None, _, Walk::Updated) => true,
        });
    }
    Ok(!backfills
        && ctx.config.import_requester_requests
        && !awaiting_link(ctx, row)?
        && importable_requester(ctx, row)?.is_some())
}

pub(super) fn importable_requester(
    ctx: &SyncCtx,
    request: &Request,
) -> Result<Option<User>, SyncError> {
    let Some(email) = request
        .requester
        .as_ref()
        .and_then(|r| r.email_id.as_deref())
        .filter(|e| !e.is_empty())
    else {
        return Ok(None);
    };
    let email = crate::domain::user::normalize_email(email);
    Ok(ctx
        .store
        .user_by_email(&email)?
        .filter(|u| u.role == Role::Customer && !u.disabled))
}

/// A request this appliance created whose link to its ticket is not recorded yet: the process
/// stopped between SDP's answer and the commit. It is never imported as a ticket of its own; the
/// outbox's next attempt finds it by its number and links it.
pub(super) fn awaiting_link(ctx: &SyncCtx, request: &Request) -> Result<bool, SyncError> {
    let Some(number) = ctx.mapping.our_number(request) else {
        return Ok(false);
    };
    Ok(ctx.store.ticket_by_number(&number)?.is_some())
}

/// Reads one request with what it says it has (notes, e-mails, files) and applies it, in `lane`.
/// Unknown requests are imported when they belong to a portal customer, and ignored otherwise.
/// Returns whether it was imported.
pub async fn read_request(ctx: &SyncCtx, lane: Lane, sdp_id: &str) -> Result<bool, SyncError> {
    let span =
        tracing::info_span!("sdp_read", request = %sdp_id, ?lane, ticket = tracing::field::Empty);
    async {
        let request = match fate::get(ctx, lane, sdp_id).await? {
            Found::Request(request) => *request,
            Found::Gone(gone) => {
                if let Some(ticket) = ctx.store.ticket_by_sdp_id(sdp_id)? {
                    fate::settle(ctx, ticket, Some(&gone)).await?;
                }
                return Ok(false);
            }
        };
        let (ticket_id, imported) = if let Some(id) = ctx.store.ticket_by_sdp_id(&request.id)? {
            (id, false)
        } else {
            if !ctx.config.import_requester_requests || awaiting_link(ctx, &request)? {
                return Ok(false);
            }
            let Some(requester) = importable_requester(ctx, &request)? else {
                return Ok(false);
            };
            let imported = imported(ctx, &request, false);
            let (id, new) = crate::tickets::import::import(&ctx.store, &imported, &requester)?;
            if new {
                tracing::info!(ticket = id.0, "sdp request imported");
            }
            (id, new)
        };
        let Some(ticket) = ctx.store.ticket(ticket_id)? else {
            return Ok(false);
        };
        tracing::Span::current().record("ticket", ticket.number.as_str());
        if ticket.sdp.fate.is_some() {
            // SDP serves the request again (restored from the trash).
            fate::settle(ctx, ticket_id, None).await?;
        }
        let details = ctx.store.has_details_pending(ticket_id)?;
        super::statuses::ensure(ctx, lane, request.status.as_ref()).await;
        let mut observation = observe(ctx, &request);
        fields::changes(ctx, &ticket, &request, &mut observation)?;
        // E-mails are judged for the requester SDP now names.
        let mut ticket = ticket;
        if let Some(requester) = &observation.requester {
            ticket.requester = requester.clone();
        }
        let collected = collect::messages(ctx, lane, &ticket, &request).await?;
        let files = collect::files(ctx, lane, &ticket, &request).await?;
        observation.messages = collected.messages;
        observation.messages.extend(files.too_large);
        observation.hidden = collected.hidden;
        observation.changes = collected.changes;
        observation.files = files.stored;
        if files.incomplete {
            // Not recorded as read up to this change: the sweep reads it again for the file.
            observation.updated_ms = None;
        }
        if details {
            observation.description = Some(description(&request));
        }
        let (_, events) =
            crate::tickets::team::observe(&ctx.store, ticket_id, &observation, ctx.portal.window)?;
        ctx.store.durable().await?;
        for event in events {
            (ctx.publish)(event);
        }
        Ok(imported)
    }
    .instrument(span)
    .await
}

fn description(request: &Request) -> String {
    text::from_html_whole(request.description.as_deref().unwrap_or_default())
}

/// What a request's fields say, in portal terms (messages and files are added by the caller).
fn observe(ctx: &SyncCtx, request: &Request) -> Observation {
    let technician = technician(request);
    let mapped = request
        .status
        .as_ref()
        .map(|s| ctx.mapping.status(s, assigned(request)));
    if let Some(warning) = mapped.as_ref().and_then(|m| m.warning.clone()) {
        ctx.mismatch(warning);
    }
    Observation {
        updated_ms: request.updated_ms(),
        sdp_status: request.status.as_ref().and_then(|s| s.name.clone()),
        status: mapped.map(|m| m.status),
        number: Some(
            request
                .display_id
                .clone()
                .unwrap_or_else(|| request.id.clone()),
        ),
        team: Actor::team(technician.as_deref().unwrap_or("ServiceDesk Plus")),
        technician,
        due_by: millis_to_time(request.due_ms()),
        promise: promise(request),
        messages: Vec::new(),
        hidden: Vec::new(),
        changes: Vec::new(),
        files: Vec::new(),
        description: None,
        requester: None,
        subject: None,
        priority: None,
        cc: None,
    }
}

/// The service desk's promise as the request shows it.
pub(super) fn promise(request: &Request) -> Promise {
    Promise {
        respond_by: millis_to_time(request.respond_by_ms()),
        respond_overdue: request.is_first_response_overdue == Some(true),
        resolve_overdue: request.is_overdue == Some(true),
        responded_at: millis_to_time(request.responded_ms()),
        resolved_at: millis_to_time(request.resolved_ms()),
    }
}

/// A request (read in full, or a list row) as a ticket to import.
pub(super) fn imported(ctx: &SyncCtx, request: &Request, from_row: bool) -> Imported {
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
    let technician = technician(request);
    // From a list row the fields are final until the details are read; a full read applies the
    // status through the state machine right after the import.
    let status = from_row
        .then(|| {
            let sdp = request.status.as_ref()?;
            let mapped = ctx.mapping.status(sdp, assigned(request));
            Some((mapped.status, sdp.name.clone()?))
        })
        .flatten();
    Imported {
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
        description: if from_row {
            String::new()
        } else {
            description(request)
        },
        created_at: millis_to_time(request.created_ms()).unwrap_or_else(OffsetDateTime::now_utc),
        status,
        assignee: if from_row { technician } else { None },
        due_by: millis_to_time(request.due_ms()),
        updated_ms: if from_row { request.updated_ms() } else { None },
        details_pending: from_row,
    }
}

/// The open tickets linked to SDP requests, with what their last read applied.
pub(super) fn open_links(ctx: &SyncCtx) -> Result<Vec<(String, TicketId, Option<i64>)>, SyncError> {
    let mut open = Vec::new();
    for (sdp_id, ticket) in ctx.store.sdp_links()? {
        if let Some(t) = ctx.store.ticket(ticket)?
            && t.status != Status::Closed
            // A merge is final: nothing more to read there.
            && !matches!(t.sdp.fate, Some(SdpFate::Merged { .. }))
        {
            open.push((sdp_id, ticket, t.sdp_updated_ms));
        }
    }
    Ok(open)
}

/// Where the poll and the backfill start, on first use: the poll at SDP's newest request (by SDP's
/// own clock, so a skewed clock on either side loses nothing), the backfill with everything created
/// up to it. An earlier version's watermark, when there is one, is where the poll goes on.
pub(crate) async fn init_positions(ctx: &SyncCtx) -> Result<(), SyncError> {
    let poll = ctx.store.sync_value::<PollCursor>(state::POLL)?;
    let backfill = ctx.backfill_progress()?;
    if poll.is_some() && backfill.is_some() {
        return Ok(());
    }
    let cursor = match (poll, ctx.store.sync_value::<i64>(state::LEGACY_WATERMARK)?) {
        (Some(cursor), _) => cursor,
        (None, Some(watermark)) => PollCursor {
            updated_ms: watermark,
            created_ms: watermark,
        },
        (None, None) => {
            let created = newest(ctx, Walk::Created).await?;
            let updated = newest(ctx, Walk::Updated).await?.max(created);
            PollCursor {
                updated_ms: updated,
                created_ms: created,
            }
        }
    };
    // An earlier version's walk imported everything it found in full.
    let legacy_done = ctx
        .store
        .sync_value::<serde_json::Value>(state::LEGACY_IMPORT)?
        .is_some_and(|v| v["done"] == true);
    let mut values = vec![(state::POLL, json!(cursor))];
    if backfill.is_none() {
        let progress = super::BackfillProgress {
            until_ms: cursor.created_ms + 1,
            first_pass_done: legacy_done,
            ..super::BackfillProgress::default()
        };
        values.push((state::BACKFILL, json!(progress)));
    }
    ctx.store.put_sync_values(&values)?;
    ctx.store.durable().await?;
    Ok(())
}

/// The newest value of `walk`'s field in SDP, 0 when it has no request.
async fn newest(ctx: &SyncCtx, walk: Walk) -> Result<i64, SyncError> {
    let list_info = json!({
        "row_count": 1,
        "start_index": 1,
        "sort_field": walk.field(),
        "sort_order": "desc",
    });
    let page = ctx
        .sdp
        .on(Lane::Poll)
        .list_requests(&list_info, &["id", walk.field()])
        .await?;
    Ok(page.rows.first().and_then(|r| walk.of(r)).unwrap_or(0))
}
