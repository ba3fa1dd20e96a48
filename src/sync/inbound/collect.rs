//! What a read of one request brings in besides its fields: public notes, e-mails and the
//! resolution as messages, and files (downloaded and committed before the records that point at
//! them). Default deny: only what SDP shows the requester reaches the portal.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::super::mapping::is_our_note;
use super::super::{SyncCtx, SyncError, text};
use super::millis_to_time;
use crate::domain::{Author, AuthorRole, Delivery, Origin, Ticket};
use crate::sdp::Lane;
use crate::sdp::dto::{AttachmentInfo, Request};
use crate::store::BlobWriter;
use crate::tickets::team::{TeamFile, TeamMessage};

/// Public notes, e-mails and the resolution that the portal has not taken in yet. A sub-list the
/// request says it does not have is not read.
pub(super) async fn messages(
    ctx: &SyncCtx,
    lane: Lane,
    ticket: &Ticket,
    request: &Request,
) -> Result<Vec<TeamMessage>, SyncError> {
    let mut out = Vec::new();
    let seen = |key: &str| ctx.store.seen(ticket.id, key);
    let calls = ctx.sdp.on(lane);
    let notes = if request.has_notes == Some(false) {
        Vec::new()
    } else {
        calls.list_notes(&request.id).await?
    };
    let conversations = if request.has_conversation == Some(false) {
        Vec::new()
    } else {
        calls.list_conversations(&request.id).await?
    };
    out.extend(public_notes(ctx, lane, ticket, &request.id, notes).await?);
    for conversation in conversations {
        let is_email = conversation
            .kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("EMAIL"));
        let key = format!("conv:{}", conversation.id);
        if !is_email || seen(&key)? {
            continue;
        }
        let mail = calls.notification(&request.id, &conversation.id).await?;
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
        out.push(TeamMessage {
            seen_key: key,
            author: Author { name, role },
            body: text::from_html(mail.description.as_deref().unwrap_or_default()),
            at: millis_to_time(
                mail.time
                    .as_ref()
                    .and_then(crate::sdp::dto::SdpDate::millis),
            ),
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
            out.push(TeamMessage {
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

/// The public notes not taken in yet; our own notes (marked) never come back.
async fn public_notes(
    ctx: &SyncCtx,
    lane: Lane,
    ticket: &Ticket,
    request_id: &str,
    notes: Vec<crate::sdp::dto::Note>,
) -> Result<Vec<TeamMessage>, SyncError> {
    let mut out = Vec::new();
    let seen = |key: &str| ctx.store.seen(ticket.id, key);
    for mut note in notes {
        if note.show_to_requester != Some(true) || seen(&format!("note:{}", note.id))? {
            continue;
        }
        if note.description.is_none() {
            // The list gave no body: read this one note.
            note = ctx.sdp.on(lane).get_note(request_id, &note.id).await?;
        }
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
        out.push(TeamMessage {
            seen_key: key,
            author: Author {
                name,
                role: AuthorRole::Team,
            },
            body: text::from_html(&description),
            at: millis_to_time(
                note.added_time
                    .as_ref()
                    .and_then(crate::sdp::dto::SdpDate::millis),
            ),
            sdp_id: note.id.clone(),
        });
    }
    Ok(out)
}

/// Files attached in SDP that the portal does not have, downloaded and committed. The request's
/// own `attachments` list is used when it carries one.
pub(super) async fn files(
    ctx: &SyncCtx,
    lane: Lane,
    ticket: &Ticket,
    request: &Request,
) -> Result<Vec<TeamFile>, SyncError> {
    let request_id = request.id.as_str();
    let calls = ctx.sdp.on(lane);
    let listed: Vec<AttachmentInfo> = match (&request.attachments, request.has_attachments) {
        (Some(embedded), _) => embedded.clone(),
        (None, Some(false)) => Vec::new(),
        (None, _) => calls.list_attachments(request_id).await?,
    };
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
        if ctx.store.seen(ticket.id, &key)? {
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
        let bytes = calls.download(&url).await?;
        let mut writer = BlobWriter::create(&ctx.store, u64::MAX).await?;
        writer.write(&bytes).await?;
        // Content first, then (in the ticket command) the record that points at it.
        let content = ctx.store.commit_blob(writer.finish().await?).await?;
        out.push(TeamFile {
            seen_key: key,
            sdp_id: info.id.clone(),
            filename,
            content,
        });
    }
    Ok(out)
}
