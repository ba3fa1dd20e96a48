//! What a read of one request brings in besides its fields: public notes, e-mails and the
//! resolution as messages, and files (downloaded and committed before the records that point at
//! them). Default deny: only what SDP shows the requester reaches the portal.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::super::mapping::without_markers;
use super::super::{SyncCtx, SyncError, text};
use super::millis_to_time;
use crate::domain::{Author, AuthorRole, Delivery, DomainError, Origin, Ticket};
use crate::sdp::Lane;
use crate::sdp::SdpError;
use crate::sdp::budget::is_unavailable;
use crate::sdp::dto::{AttachmentInfo, Conversation, Notification, Request};
use crate::store::{BlobWriter, OpError, StoredBlob};
use crate::tickets::team::{TeamChange, TeamFile, TeamMessage};

/// What a read brings for the discussion: messages to add, and SDP items to mark as looked at
/// without showing them (e-mails not for the requester, so they are not fetched again).
#[derive(Debug, Default)]
pub(super) struct Collected {
    pub messages: Vec<TeamMessage>,
    pub hidden: Vec<String>,
    pub changes: Vec<TeamChange>,
}

/// Public notes, e-mails for the requester and the resolution that the portal has not taken in
/// yet. A sub-list the request says it does not have is not read.
pub(super) async fn messages(
    ctx: &SyncCtx,
    lane: Lane,
    ticket: &Ticket,
    request: &Request,
) -> Result<Collected, SyncError> {
    let mut out = Vec::new();
    let mut hidden = Vec::new();
    let seen = |key: &str| ctx.store.seen(ticket.id, key);
    let calls = ctx.sdp.on(lane);
    let notes = super::notes::collect(ctx, lane, ticket, request).await?;
    let conversations = if request.has_conversation == Some(false) {
        Vec::new()
    } else {
        calls.list_conversations(&request.id).await?
    };
    out.extend(notes.new);
    for conversation in conversations {
        let is_email = conversation
            .kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("EMAIL"));
        let key = format!("conv:{}", conversation.id);
        let hidden_key = format!("conv-hidden:{}", conversation.id);
        if !is_email
            || seen(&key)?
            || (conversation.show_to_requester != Some(true) && seen(&hidden_key)?)
        {
            continue;
        }
        let mail = calls.notification(&request.id, &conversation.id).await?;
        // Default deny: a forward to a vendor or a mail to another team stays in SDP.
        if !for_requester(&conversation, &mail, &ticket.requester.email) {
            hidden.push(hidden_key);
            continue;
        }
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
            body: without_markers(&text::from_html(
                mail.description.as_deref().unwrap_or_default(),
            )),
            at: millis_to_time(
                mail.time
                    .as_ref()
                    .and_then(crate::sdp::dto::SdpDate::millis),
            ),
            sdp_id: conversation.id.clone(),
            version: None,
        });
    }
    for (kind, label, html, by) in closing_texts(request) {
        let key = format!(
            "{kind}:{}",
            hex::encode(&Sha256::digest(html.as_bytes())[..8])
        );
        if !seen(&key)? {
            out.push(TeamMessage {
                seen_key: key,
                author: Author {
                    name: by.unwrap_or_else(|| "Support team".into()),
                    role: AuthorRole::Team,
                },
                body: format!("{label}:\n{}", text::from_html(html)),
                at: None,
                sdp_id: format!("{kind}:{}", request.id),
                version: None,
            });
        }
    }
    // In the order they were written, whichever list they came from.
    out.sort_by_key(|m| (m.at.is_none(), m.at));
    Ok(Collected {
        messages: out,
        hidden,
        changes: notes.changes,
    })
}

/// Whether an e-mail is the requester's to read: SDP shows it to the requester, or the requester
/// sent it or is among its recipients.
fn for_requester(row: &Conversation, mail: &Notification, requester: &str) -> bool {
    let is_requester = |address: &str| bare_address(address).eq_ignore_ascii_case(requester.trim());
    row.show_to_requester == Some(true)
        || mail.show_to_requester == Some(true)
        || mail
            .sender
            .as_ref()
            .and_then(|s| s.email_id.as_deref())
            .is_some_and(is_requester)
        || mail.to.iter().chain(&mail.cc).any(|a| is_requester(a))
}

/// `alice@example.com` from `Alice <alice@example.com>`.
fn bare_address(address: &str) -> &str {
    match (address.rfind('<'), address.rfind('>')) {
        (Some(open), Some(close)) if open < close => address[open + 1..close].trim(),
        _ => address.trim(),
    }
}

/// The resolution and the closure comments, as `(kind, label, html, author)`; each becomes a
/// message once per text. A close the customer confirmed carries our own comment: not the team's.
fn closing_texts(request: &Request) -> Vec<(&'static str, &'static str, &str, Option<String>)> {
    let mut out = Vec::new();
    if let Some(resolution) = &request.resolution
        && let Some(content) = resolution
            .content
            .as_deref()
            .filter(|c| !c.trim().is_empty())
    {
        let by = resolution
            .submitted_by
            .as_ref()
            .and_then(|u| u.name.clone());
        out.push(("resolution", "Resolution", content, by));
    }
    if let Some(comments) = request
        .closure_info
        .as_ref()
        .and_then(|c| c.closure_comments.as_deref())
        .map(str::trim)
        .filter(|c| !c.is_empty() && *c != super::super::mapping::CUSTOMER_CLOSE)
    {
        out.push(("closure", "Closed", comments, None));
    }
    out
}

/// Files from one read: those downloaded, and whether one could not be (it is tried again on a
/// later read; the ticket's other changes do not wait for it).
#[derive(Debug, Default)]
pub(super) struct Files {
    pub stored: Vec<TeamFile>,
    /// A line in the discussion for each file too large for the portal.
    pub too_large: Vec<TeamMessage>,
    pub incomplete: bool,
}

/// Files attached in SDP that the portal does not have, downloaded and committed. The request's
/// own `attachments` list is used when it carries one. A file that fails is left for a later read
/// and reported in sync health; only SDP being away stops the read.
pub(super) async fn files(
    ctx: &SyncCtx,
    lane: Lane,
    ticket: &Ticket,
    request: &Request,
) -> Result<Files, SyncError> {
    let request_id = request.id.as_str();
    let calls = ctx.sdp.on(lane);
    let mut listed: Vec<AttachmentInfo> = match (&request.attachments, request.has_attachments) {
        (Some(embedded), _) => embedded.clone(),
        (None, Some(false)) => Vec::new(),
        (None, _) => calls.list_attachments(request_id).await?,
    };
    // The resolution's files, as the request shows them (no call of their own).
    if let Some(files) = request.resolution.as_ref().and_then(|r| r.files.as_ref()) {
        listed.extend(
            files
                .iter()
                .filter(|f| !listed.iter().any(|l| l.id == f.id))
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    if listed.is_empty() {
        return Ok(Files::default());
    }
    // A portal upload whose delivery is not yet confirmed must not come back as an SDP file.
    let undelivered: HashSet<(String, u64)> = ctx
        .store
        .attachments(ticket.id)?
        .into_iter()
        .filter(|a| a.origin == Origin::Portal && a.delivery != Delivery::Delivered)
        .map(|a| (a.filename, a.size))
        .collect();
    let mut out = Files::default();
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
        let failed_key = format!("{request_id}/attachments/{}", info.id);
        let limit = ctx.portal.max_file_bytes;
        let content = match download(ctx, lane, &url, info.size_bytes()).await {
            Ok(Some(content)) => content,
            Ok(None) => {
                ctx.stats().files_failed.remove(&failed_key);
                out.too_large.push(too_large(&info, key, &filename, limit));
                continue;
            }
            Err(SyncError::Sdp(e)) if is_unavailable(&e) && !matches!(e, SdpError::NoAnswer(_)) => {
                return Err(SyncError::Sdp(e));
            }
            Err(e) => {
                tracing::warn!(file = %failed_key, error = %e, "an SDP file could not be taken in; it is tried again later");
                ctx.stats().files_failed.insert(failed_key, e.to_string());
                out.incomplete = true;
                continue;
            }
        };
        ctx.stats().files_failed.remove(&failed_key);
        out.stored.push(TeamFile {
            seen_key: key,
            sdp_id: info.id.clone(),
            filename,
            content,
        });
    }
    Ok(out)
}

/// Streams one file into the blob store: content first, then (in the ticket command) the record
/// that points at it. `None` when it is larger than the portal takes: known from SDP's list
/// (then nothing is downloaded), from the announced length, or counted while it streams.
async fn download(
    ctx: &SyncCtx,
    lane: Lane,
    url: &str,
    listed_size: Option<u64>,
) -> Result<Option<StoredBlob>, SyncError> {
    let limit = ctx.portal.max_file_bytes;
    if listed_size.is_some_and(|size| size > limit) {
        return Ok(None);
    }
    let mut download = ctx.sdp.on(lane).download(url).await?;
    if download.announced_len().is_some_and(|len| len > limit) {
        return Ok(None);
    }
    let mut writer = BlobWriter::create(&ctx.store, limit).await?;
    while let Some(chunk) = download.chunk().await? {
        match writer.write(&chunk).await {
            Ok(()) => {}
            Err(OpError::Rule(DomainError::AttachmentTooLarge { .. })) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(ctx.store.commit_blob(writer.finish().await?).await?))
}

/// The discussion's line for a file the portal does not take: the customer learns it exists and
/// whom to ask.
fn too_large(info: &AttachmentInfo, seen_key: String, filename: &str, limit: u64) -> TeamMessage {
    let name = info
        .attached_by
        .as_ref()
        .and_then(|u| u.name.clone())
        .unwrap_or_else(|| "Support team".into());
    TeamMessage {
        seen_key,
        author: Author {
            name,
            role: AuthorRole::Team,
        },
        body: format!(
            "Attached the file \"{filename}\", which is larger than the portal shows \
             ({} MiB at most): ask the team for it.",
            limit / (1024 * 1024)
        ),
        at: millis_to_time(
            info.attached_on
                .as_ref()
                .and_then(crate::sdp::dto::SdpDate::millis),
        ),
        sdp_id: format!("file:{}", info.id),
        version: None,
    }
}
