//! Inbound: reads what changed in SDP and applies it through the ticket state machine. The poll
//! walks requests by `last_updated_time` above a persisted watermark (minus an overlap); a read
//! takes the request, its notes, e-mails and files. Private notes never become portal messages.

use std::collections::HashSet;

use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::mapping::is_our_note;
use super::{ImportProgress, SyncCtx, SyncError, state, text};
use crate::actors::tickets::transition;
use crate::actors::{TicketEvent, TicketEventKind};
use crate::domain::lifecycle::Action;
use crate::domain::{
    Actor, Attachment, AttachmentId, Author, AuthorRole, Delivery, Kind, Message, MessageId,
    Origin, Priority, Requester, Role, SdpLink, Status, SyncState, Ticket, TicketId,
};
use crate::sdp::dto::{AttachmentInfo, Request};
use crate::store::{BlobWriter, OutboxOp, StagedBlob, TicketTx, TxResult};

/// An SDP message (public note, e-mail, resolution) not yet in the portal.
struct Incoming {
    seen_key: String,
    author: Author,
    body: String,
    at: Option<OffsetDateTime>,
    sdp_id: String,
}

/// A file from SDP, already staged on disk.
struct IncomingFile {
    seen_key: String,
    sdp_id: String,
    filename: String,
    blob: StagedBlob,
}

fn millis_to_time(ms: Option<i64>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms?) * 1_000_000).ok()
}

/// One poll: every page of requests changed since the watermark. Returns how many were read.
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
            if let Some(ms) = row.last_updated_time.as_ref().and_then(super::dto_millis) {
                max_seen = max_seen.max(ms);
            }
        }
        if !progress.done {
            progress.walked += rows.len() as u64;
        }
        // The watermark moves only once the page is applied, and is written durably.
        let (wm, p) = (max_seen, progress.clone());
        ctx.store.transact(|tx| {
            tx.put_sync(state::WATERMARK, &wm)?;
            tx.put_sync(state::IMPORT, &p)
        })?;
        ctx.store.durable().await?;
        if !more || rows.is_empty() {
            break;
        }
        start_index += rows.len() as u64;
    }
    if !progress.done {
        progress.done = true;
        let p = progress.clone();
        ctx.store.transact(|tx| tx.put_sync(state::IMPORT, &p))?;
    }
    let now = OffsetDateTime::now_utc();
    ctx.stats().last_poll_ok = Some(now);
    ctx.store
        .metrics
        .sdp_last_poll_timestamp_seconds
        .set(now.unix_timestamp());
    Ok(read)
}

/// Whether a listed request concerns the portal: linked, or importable for a portal customer.
fn relevant(ctx: &SyncCtx, row: &Request) -> Result<bool, SyncError> {
    if ctx.store.ticket_by_sdp_id(&row.id)?.is_some() {
        return Ok(true);
    }
    Ok(ctx.config.import_requester_requests && importable_requester(ctx, row)?.is_some())
}

fn importable_requester(
    ctx: &SyncCtx,
    request: &Request,
) -> Result<Option<crate::domain::User>, SyncError> {
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
        (import(ctx, &request, &requester)?, true)
    };
    let Some(ticket) = ctx.store.ticket(ticket_id)? else {
        return Ok(false);
    };
    let incoming = collect_messages(ctx, &ticket, &request).await?;
    let files = collect_files(ctx, &ticket, &request.id).await?;
    apply(ctx, ticket_id, &request, incoming, files).await?;
    Ok(imported)
}

fn import(
    ctx: &SyncCtx,
    request: &Request,
    requester: &crate::domain::User,
) -> Result<TicketId, SyncError> {
    let now = OffsetDateTime::now_utc();
    let kind = match request
        .request_type
        .as_ref()
        .and_then(|t| t.name.as_deref())
    {
        Some(name)
            if name.eq_ignore_ascii_case(&ctx.mapping.config.request_type_problem_report) =>
        {
            Kind::ProblemReport
        }
        Some(name)
            if name.eq_ignore_ascii_case(&ctx.mapping.config.request_type_information_request) =>
        {
            Kind::InformationRequest
        }
        _ => Kind::ProblemReport,
    };
    let priority = request
        .priority
        .as_ref()
        .and_then(|p| p.name.as_deref())
        .and_then(|name| {
            [
                Priority::Low,
                Priority::Medium,
                Priority::High,
                Priority::Urgent,
            ]
            .into_iter()
            .find(|p| ctx.mapping.priority(*p).eq_ignore_ascii_case(name))
        })
        .unwrap_or_default();
    let subject: String = request
        .subject
        .clone()
        .unwrap_or_default()
        .chars()
        .take(250)
        .collect();
    let description = text::from_html(request.description.as_deref().unwrap_or_default());
    let created =
        millis_to_time(request.created_time.as_ref().and_then(super::dto_millis)).unwrap_or(now);
    let sdp_id = request.id.clone();
    let id = ctx.store.transact(|tx| {
        // A concurrent read may have imported it already.
        if let Some(existing) = tx.ticket_by_sdp(&sdp_id)? {
            return Ok(existing);
        }
        let (id, number) = tx.next_ticket()?;
        let ticket = Ticket {
            id,
            uid: Uuid::now_v7(),
            number,
            kind,
            subject: if subject.trim().is_empty() {
                format!("ServiceDesk Plus request {sdp_id}")
            } else {
                subject.clone()
            },
            description: description.clone(),
            priority,
            service: None,
            status: Status::New,
            requester: Requester {
                id: requester.id,
                email: requester.email.clone(),
                name: requester.name.clone(),
                organization: requester.organization.clone(),
            },
            created_at: created,
            updated_at: now,
            resolved_at: None,
            closed_at: None,
            assignee: None,
            due_by: None,
            sdp: SdpLink {
                request_id: Some(sdp_id.clone()),
                sync_state: SyncState::Synced,
                last_error: None,
            },
            sdp_status: None,
            sdp_pending: 0,
            sdp_updated_ms: None,
        };
        tx.link_sdp(&sdp_id, id)?;
        tx.event(
            &ticket,
            "imported",
            &Actor::system(),
            None,
            Some(Status::New.to_string()),
            Some(format!("ServiceDesk Plus request {sdp_id}")),
        )?;
        tx.save(None, &ticket)?;
        Ok(id)
    })?;
    tracing::info!(request = %request.id, ticket = id.0, "sdp request imported");
    Ok(id)
}

/// Public notes, e-mails and the resolution that the portal has not taken in yet.
async fn collect_messages(
    ctx: &SyncCtx,
    ticket: &Ticket,
    request: &Request,
) -> Result<Vec<Incoming>, SyncError> {
    let mut out = Vec::new();
    let seen = |key: &str| ctx.store.transact(|tx| tx.seen(ticket.id, key));
    for note in ctx.sdp.list_notes(&request.id).await? {
        let key = format!("note:{}", note.id);
        let description = note.description.clone().unwrap_or_default();
        // Default deny: only a note explicitly shown to the requester reaches the portal.
        if note.show_to_requester != Some(true) || is_our_note(&description) || seen(&key)? {
            continue;
        }
        let name = note
            .added_by
            .as_ref()
            .and_then(|u| u.name.clone())
            .unwrap_or_else(|| "Support team".into());
        out.push(Incoming {
            seen_key: key,
            author: Author {
                name,
                role: AuthorRole::Team,
            },
            body: text::from_html(&description),
            at: millis_to_time(note.added_time.as_ref().and_then(super::dto_millis)),
            sdp_id: note.id.clone(),
        });
    }
    for conversation in ctx.sdp.list_conversations(&request.id).await? {
        let is_email = conversation
            .kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("EMAIL"));
        let key = format!("conv:{}", conversation.id);
        if !is_email || seen(&key)? {
            continue;
        }
        let mail = ctx.sdp.notification(&request.id, &conversation.id).await?;
        let sender = mail.sender.clone().unwrap_or_default();
        let from_requester = sender
            .email_id
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(&ticket.requester.email));
        let role = if from_requester {
            AuthorRole::Customer
        } else {
            AuthorRole::Team
        };
        let name = sender
            .name
            .or(sender.email_id)
            .unwrap_or_else(|| "E-mail".into());
        out.push(Incoming {
            seen_key: key,
            author: Author { name, role },
            body: text::from_html(mail.description.as_deref().unwrap_or_default()),
            at: millis_to_time(mail.time.as_ref().and_then(super::dto_millis)),
            sdp_id: conversation.id.clone(),
        });
    }
    if let Some(resolution) = &request.resolution
        && let Some(content) = resolution
            .content
            .as_deref()
            .filter(|c| !c.trim().is_empty())
    {
        let key = format!(
            "resolution:{}",
            hex::encode(&Sha256::digest(content.as_bytes())[..8])
        );
        if !seen(&key)? {
            let name = resolution
                .submitted_by
                .as_ref()
                .and_then(|u| u.name.clone())
                .unwrap_or_else(|| "Support team".into());
            out.push(Incoming {
                seen_key: key,
                author: Author {
                    name,
                    role: AuthorRole::Team,
                },
                body: format!("Resolution:\n{}", text::from_html(content)),
                at: None,
                sdp_id: format!("resolution:{}", request.id),
            });
        }
    }
    Ok(out)
}

/// Files attached in SDP that the portal does not have, downloaded and staged.
async fn collect_files(
    ctx: &SyncCtx,
    ticket: &Ticket,
    request_id: &str,
) -> Result<Vec<IncomingFile>, SyncError> {
    let listed: Vec<AttachmentInfo> = ctx.sdp.list_attachments(request_id).await?;
    if listed.is_empty() {
        return Ok(Vec::new());
    }
    // A portal upload whose delivery is not yet confirmed must not come back as an SDP file.
    let undelivered: HashSet<(String, u64)> = ctx
        .store
        .attachments(ticket.id)?
        .into_iter()
        .filter(|a| a.origin == Origin::Portal && a.delivery != Delivery::Delivered)
        .map(|a| (a.filename, a.size))
        .collect();
    let mut out = Vec::new();
    for info in listed {
        let key = format!("att:{}", info.id);
        if ctx.store.transact(|tx| tx.seen(ticket.id, &key))? {
            continue;
        }
        let filename =
            crate::domain::validate::safe_filename(info.name.as_deref().unwrap_or_default());
        if info
            .size_bytes()
            .is_some_and(|size| undelivered.contains(&(filename.clone(), size)))
        {
            continue;
        }
        let url = info.content_url.clone().unwrap_or_else(|| {
            format!(
                "/api/v3/requests/{request_id}/attachments/{}/download",
                info.id
            )
        });
        let bytes = ctx.sdp.download(&url).await?;
        let mut writer = BlobWriter::create(&ctx.store, u64::MAX).await?;
        writer.write(&bytes).await?;
        out.push(IncomingFile {
            seen_key: key,
            sdp_id: info.id.clone(),
            filename,
            blob: writer.finish().await?,
        });
    }
    Ok(out)
}

/// A file from SDP whose content is already stored.
struct StoredFile {
    seen_key: String,
    sdp_id: String,
    filename: String,
    sha256: String,
    size: u64,
    content_type: String,
}

/// What SDP says about the request's fields, already mapped.
struct Observed {
    technician: Option<String>,
    mapped: Option<super::mapping::MappedStatus>,
    sdp_status: Option<String>,
    due_by: Option<OffsetDateTime>,
    /// Queued customer status changes (confirm, reopen), oldest first.
    pending_status: Vec<u64>,
    updated_ms: Option<i64>,
    team: Actor,
}

async fn apply(
    ctx: &SyncCtx,
    ticket_id: TicketId,
    request: &Request,
    incoming: Vec<Incoming>,
    files: Vec<IncomingFile>,
) -> Result<(), SyncError> {
    // Content first, then the records that point at it.
    let mut stored = Vec::new();
    for file in files {
        let content_type = crate::actors::attachments::sniff_content_type(&file.blob.head);
        let size = file.blob.size;
        let store = std::sync::Arc::clone(&ctx.store);
        let sha256 = tokio::task::spawn_blocking(move || store.commit_blob(file.blob))
            .await
            .map_err(|e| {
                crate::store::StoreError::Durability(format!("blob commit task failed: {e}"))
            })??;
        stored.push(StoredFile {
            seen_key: file.seen_key,
            sdp_id: file.sdp_id,
            filename: file.filename,
            sha256,
            size,
            content_type,
        });
    }
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
    // Only a ticket with undelivered changes can have a queued status change: skip the scan otherwise.
    let has_pending = ctx
        .store
        .ticket(ticket_id)?
        .is_some_and(|t| t.sdp_pending > 0);
    let pending_status = if has_pending {
        ctx.store
            .outbox_after(0, 100_000)?
            .into_iter()
            .filter(|e| {
                e.ticket == ticket_id && matches!(e.op, OutboxOp::Close | OutboxOp::Reopen { .. })
            })
            .map(|e| e.seq)
            .collect()
    } else {
        Vec::new()
    };
    let observed = Observed {
        team: Actor::team(technician.as_deref().unwrap_or("ServiceDesk Plus")),
        technician,
        mapped,
        sdp_status: request.status.as_ref().and_then(|s| s.name.clone()),
        due_by: millis_to_time(request.due_by_time.as_ref().and_then(super::dto_millis)),
        pending_status,
        updated_ms: request
            .last_updated_time
            .as_ref()
            .and_then(super::dto_millis),
    };
    let (ticket, kinds) = ctx.store.transact(|tx| {
        let now = OffsetDateTime::now_utc();
        let before = tx.require(ticket_id)?;
        let mut ticket = before.clone();
        let mut kinds = Vec::new();
        apply_fields(tx, &mut ticket, &observed, ctx.window, now, &mut kinds)?;
        apply_messages(tx, &mut ticket, &incoming, now, &mut kinds)?;
        apply_files(tx, &mut ticket, &stored, &observed.team, now, &mut kinds)?;
        if ticket != before {
            tx.save(Some(&before), &ticket)?;
        }
        Ok((ticket, kinds))
    })?;
    ctx.store.durable().await?;
    for kind in kinds {
        (ctx.publish)(TicketEvent::of(&ticket, kind));
    }
    Ok(())
}

/// Assignee, due date and status. SDP owns the status: a change made there is applied through the
/// state machine; when the customer changed it too since the last sync, SDP wins, the customer's
/// queued change is withdrawn, and a `conflict` event records both values.
fn apply_fields(
    tx: &TicketTx<'_>,
    ticket: &mut Ticket,
    seen: &Observed,
    window: crate::domain::lifecycle::ReopenWindow,
    now: OffsetDateTime,
    kinds: &mut Vec<TicketEventKind>,
) -> TxResult<()> {
    // Reads can finish out of order (a poll and a read-back at once): never go back in time.
    if let (Some(applied), Some(read)) = (ticket.sdp_updated_ms, seen.updated_ms)
        && read < applied
    {
        return Ok(());
    }
    ticket.sdp_updated_ms = seen.updated_ms.or(ticket.sdp_updated_ms);
    if seen.technician != ticket.assignee {
        let from = std::mem::replace(&mut ticket.assignee, seen.technician.clone());
        ticket.updated_at = now;
        tx.event(
            ticket,
            "assigned",
            &seen.team,
            from,
            seen.technician.clone(),
            None,
        )?;
        kinds.push(TicketEventKind::Updated);
    }
    ticket.due_by = seen.due_by;
    let Some(mapped) = &seen.mapped else {
        return Ok(());
    };
    let sdp_changed = seen.sdp_status != ticket.sdp_status;
    if sdp_changed && mapped.status != ticket.status {
        let mut still_pending = Vec::new();
        for seq in &seen.pending_status {
            if tx.outbox_entry(*seq)?.is_some() {
                still_pending.push(*seq);
            }
        }
        if !still_pending.is_empty() {
            ticket.updated_at = now;
            let detail = format!(
                "status changed on both sides; ServiceDesk Plus ({}) wins",
                seen.sdp_status.clone().unwrap_or_default()
            );
            tx.event(
                ticket,
                "conflict",
                &Actor::system(),
                Some(ticket.status.to_string()),
                Some(mapped.status.to_string()),
                Some(detail),
            )?;
            for seq in &still_pending {
                tx.remove_outbox(*seq)?;
                ticket.sdp_pending = ticket.sdp_pending.saturating_sub(1);
            }
        }
        transition(
            tx,
            ticket,
            Action::Team(mapped.status),
            &seen.team,
            None,
            window,
            now,
        )?;
        kinds.push(TicketEventKind::StatusChanged);
    }
    ticket.sdp_status.clone_from(&seen.sdp_status);
    Ok(())
}

fn apply_messages(
    tx: &TicketTx<'_>,
    ticket: &mut Ticket,
    incoming: &[Incoming],
    now: OffsetDateTime,
    kinds: &mut Vec<TicketEventKind>,
) -> TxResult<()> {
    for m in incoming {
        if tx.seen(ticket.id, &m.seen_key)? {
            continue;
        }
        tx.mark_seen(ticket.id, &m.seen_key)?;
        let message = Message {
            id: MessageId(tx.next_item()?),
            ticket: ticket.id,
            author: m.author.clone(),
            body: m.body.clone(),
            created_at: m.at.unwrap_or(now),
            origin: Origin::Sdp,
            delivery: Delivery::Delivered,
            sdp_id: Some(m.sdp_id.clone()),
        };
        tx.message(&message)?;
        ticket.updated_at = now;
        tx.event(
            ticket,
            "message_added",
            &Actor::team(&m.author.name),
            None,
            None,
            None,
        )?;
        kinds.push(TicketEventKind::Message);
    }
    Ok(())
}

fn apply_files(
    tx: &TicketTx<'_>,
    ticket: &mut Ticket,
    files: &[StoredFile],
    team: &Actor,
    now: OffsetDateTime,
    kinds: &mut Vec<TicketEventKind>,
) -> TxResult<()> {
    for f in files {
        if tx.seen(ticket.id, &f.seen_key)? {
            continue;
        }
        tx.mark_seen(ticket.id, &f.seen_key)?;
        let attachment = Attachment {
            id: AttachmentId(tx.next_item()?),
            ticket: ticket.id,
            filename: f.filename.clone(),
            size: f.size,
            content_type: f.content_type.clone(),
            sha256: f.sha256.clone(),
            created_at: now,
            origin: Origin::Sdp,
            delivery: Delivery::Delivered,
            uploaded_by: Author {
                name: team.name.clone(),
                role: AuthorRole::Team,
            },
            sdp_id: Some(f.sdp_id.clone()),
        };
        tx.attachment(&attachment)?;
        ticket.updated_at = now;
        tx.event(
            ticket,
            "attachment_added",
            team,
            None,
            None,
            Some(f.filename.clone()),
        )?;
        kinds.push(TicketEventKind::Attachment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::ReopenWindow;
    use crate::metrics::Metrics;
    use crate::store::Store;
    use crate::sync::mapping::MappedStatus;

    const WINDOW: ReopenWindow = ReopenWindow { days: 30 };

    /// A closed ticket whose customer confirmation (Close) SDP has not seen yet.
    fn setup() -> (tempfile::TempDir, Store, TicketId, u64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 16, "DB", Metrics::new()).unwrap();
        let (id, seq) = store
            .transact(|tx| {
                let (id, _) = tx.next_ticket()?;
                let mut t = crate::domain::ticket::sample(id.0);
                t.status = Status::Closed;
                t.sdp_status = Some("Resolved".into());
                t.sdp_updated_ms = Some(10);
                let seq = tx.outbox(&mut t, OutboxOp::Close, OffsetDateTime::now_utc())?;
                tx.save(None, &t)?;
                Ok((id, seq))
            })
            .unwrap();
        (dir, store, id, seq)
    }

    fn observed(sdp: &str, status: Status, updated_ms: i64, pending: u64) -> Observed {
        Observed {
            technician: None,
            mapped: Some(MappedStatus {
                status,
                warning: None,
            }),
            sdp_status: Some(sdp.into()),
            due_by: None,
            pending_status: vec![pending],
            updated_ms: Some(updated_ms),
            team: Actor::team("Tech One"),
        }
    }

    fn run(store: &Store, id: TicketId, seen: &Observed) -> Ticket {
        store
            .transact(|tx| {
                let before = tx.require(id)?;
                let mut t = before.clone();
                apply_fields(
                    tx,
                    &mut t,
                    seen,
                    WINDOW,
                    OffsetDateTime::now_utc(),
                    &mut Vec::new(),
                )?;
                tx.save(Some(&before), &t)?;
                Ok(t)
            })
            .unwrap()
    }

    #[test]
    fn both_sides_changed_the_status_sdp_wins_and_the_conflict_is_recorded() {
        let (_dir, store, id, seq) = setup();
        let t = run(
            &store,
            id,
            &observed("In Progress", Status::InProgress, 20, seq),
        );
        assert_eq!(t.status, Status::InProgress);
        assert_eq!(t.sdp_pending, 0);
        assert!(
            store.outbox_after(0, 10).unwrap().is_empty(),
            "the customer's close is withdrawn"
        );
        let conflict = store
            .events(id)
            .unwrap()
            .into_iter()
            .find(|e| e.kind == "conflict")
            .expect("a conflict event");
        assert_eq!(
            (conflict.from.as_deref(), conflict.to.as_deref()),
            (Some("closed"), Some("in_progress"))
        );
    }

    #[test]
    fn an_older_read_changes_nothing() {
        let (_dir, store, id, seq) = setup();
        let t = run(
            &store,
            id,
            &observed("In Progress", Status::InProgress, 5, seq),
        );
        assert_eq!(t.status, Status::Closed);
        assert_eq!(store.outbox_after(0, 10).unwrap().len(), 1);
    }

    #[test]
    fn an_unchanged_sdp_status_leaves_the_customers_change_to_go_out() {
        let (_dir, store, id, seq) = setup();
        let t = run(&store, id, &observed("Resolved", Status::Resolved, 20, seq));
        assert_eq!(t.status, Status::Closed);
        assert_eq!(store.outbox_after(0, 10).unwrap().len(), 1);
        assert!(
            store
                .events(id)
                .unwrap()
                .iter()
                .all(|e| e.kind != "conflict")
        );
    }
}
