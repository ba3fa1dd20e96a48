//! A request's notes as the portal shows them: every page of the list, each note's body read by id
//! when the list leaves it out. Public team notes become messages; an edited one updates its
//! message; one deleted or made private again leaves the discussion. Our own notes never come back:
//! one delivered is known by the SDP id stored at delivery; one whose delivery is not recorded yet
//! by the marker of a portal message that has no SDP id (or this one). A marker of a delivered
//! message inside another note is a technician quoting the customer: that note is the team's.

use std::collections::{HashMap, HashSet};

use super::super::mapping::without_markers;
use super::super::{SyncCtx, SyncError, text};
use super::millis_to_time;
use crate::domain::{Author, AuthorRole, Message, Origin, Ticket};
use crate::sdp::Lane;
use crate::sdp::dto::{Note, Request, SdpDate};
use crate::tickets::team::{TeamChange, TeamMessage};

/// What the notes brought: new team messages and changes to ones already shown.
#[derive(Debug, Default)]
pub(super) struct NotesRead {
    pub new: Vec<TeamMessage>,
    pub changes: Vec<TeamChange>,
}

pub(super) async fn collect(
    ctx: &SyncCtx,
    lane: Lane,
    ticket: &Ticket,
    request: &Request,
) -> Result<NotesRead, SyncError> {
    // Team messages that came from notes, by note id.
    let shown: HashMap<String, Message> = ctx
        .store
        .messages(ticket.id)?
        .into_iter()
        .filter(|m| m.origin == Origin::Sdp)
        .filter_map(|m| Some((m.sdp_id.clone()?, m)))
        .filter(|(id, _)| ctx.store.seen(ticket.id, &note_key(id)).unwrap_or(false))
        .collect();
    // A request without notes has nothing to list, unless some were shown: then the list tells
    // whether they were deleted.
    let notes = if request.has_notes == Some(false) && shown.is_empty() {
        Vec::new()
    } else {
        ctx.sdp.on(lane).list_notes(&request.id).await?
    };
    let mut out = NotesRead::default();
    let listed: HashSet<String> = notes.iter().map(|n| n.id.clone()).collect();
    for note in notes {
        let key = note_key(&note.id);
        let message = shown.get(&note.id);
        if note.show_to_requester != Some(true) {
            // Made private again: it leaves the discussion.
            if let Some(m) = message {
                out.changes.push(TeamChange::Withdrawn {
                    message: m.id,
                    seen_key: key,
                });
            }
            continue;
        }
        match ctx.store.seen_item(ticket.id, &key)?.map(|s| s.version) {
            None => {
                let note = with_body(ctx, lane, &request.id, note).await?;
                if in_flight(ctx, ticket, &note)? {
                    continue;
                }
                out.new.push(team_message(&note));
            }
            Some(version) => {
                // Ours, or taken in before; only a team message can have been edited.
                let (Some(m), Some(updated)) = (message, note.updated_ms()) else {
                    continue;
                };
                if version.is_some_and(|v| updated <= v) {
                    continue;
                }
                let note = with_body(ctx, lane, &request.id, note).await?;
                let body = body_of(&note);
                out.changes.push(TeamChange::Edited {
                    message: m.id,
                    seen_key: key,
                    body: (body != m.body).then_some(body),
                    version: updated,
                    at: millis_to_time(Some(updated)),
                });
            }
        }
    }
    // Deleted in SDP: shown here, no longer listed. (Only with a full list: a request that says it
    // has no notes was listed anyway above.)
    for (id, m) in &shown {
        if !listed.contains(id) && !ctx.store.seen(ticket.id, &format!("conv:{id}"))? {
            out.changes.push(TeamChange::Withdrawn {
                message: m.id,
                seen_key: note_key(id),
            });
        }
    }
    Ok(out)
}

fn note_key(id: &str) -> String {
    format!("note:{id}")
}

/// The note with its body: the list may leave it out (a live on-prem instance does).
async fn with_body(
    ctx: &SyncCtx,
    lane: Lane,
    request_id: &str,
    note: Note,
) -> Result<Note, SyncError> {
    if note.description.is_some() {
        return Ok(note);
    }
    Ok(ctx.sdp.on(lane).get_note(request_id, &note.id).await?)
}

fn body_of(note: &Note) -> String {
    without_markers(&text::from_html(
        note.description.as_deref().unwrap_or_default(),
    ))
}

fn team_message(note: &Note) -> TeamMessage {
    let name = note
        .added_by
        .as_ref()
        .and_then(|u| u.name.clone())
        .unwrap_or_else(|| "Support team".into());
    TeamMessage {
        seen_key: note_key(&note.id),
        author: Author {
            name,
            role: AuthorRole::Team,
        },
        body: body_of(note),
        at: millis_to_time(note.added_time.as_ref().and_then(SdpDate::millis)),
        sdp_id: note.id.clone(),
        version: note.updated_ms(),
    }
}

/// Whether a note is one of ours whose delivery is not recorded yet.
fn in_flight(ctx: &SyncCtx, ticket: &Ticket, note: &Note) -> Result<bool, SyncError> {
    let Some(message) = note
        .description
        .as_deref()
        .and_then(|d| ctx.mapping.marked_message(d))
    else {
        return Ok(false);
    };
    Ok(ctx.store.message(ticket.id, message)?.is_some_and(|m| {
        m.origin == Origin::Portal && m.sdp_id.as_ref().is_none_or(|id| *id == note.id)
    }))
}
