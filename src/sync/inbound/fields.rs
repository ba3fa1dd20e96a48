//! Fields the team can change in SDP besides status and assignee: the requester, who is copied
//! (CC), the subject and the priority. Each is taken only when it differs from what deskbridge itself sent, so our own
//! number tag, a subject SDP cut short, or two portal priorities mapped to one SDP name never read
//! as the team's change.

use super::super::{SyncCtx, SyncError};
use super::importable_requester;
use crate::domain::user::normalize_email;
use crate::domain::{Priority, Requester, Ticket, UserId};
use crate::sdp::dto::Request;
use crate::tickets::team::Observation;

/// Adds to `seen` what the team changed in these fields.
pub(super) fn changes(
    ctx: &SyncCtx,
    ticket: &Ticket,
    request: &Request,
    seen: &mut Observation,
) -> Result<(), SyncError> {
    seen.requester = requester(ctx, ticket, request)?;
    seen.cc = request.email_ids_to_notify.as_ref().map(|list| {
        let mut cc: Vec<String> = list
            .iter()
            .map(|e| normalize_email(e))
            .filter(|e| !e.is_empty())
            .collect();
        cc.sort();
        cc.dedup();
        cc
    });
    seen.subject = request
        .subject
        .as_deref()
        .map(|s| ctx.mapping.without_number_tag(s, &ticket.number))
        .filter(|s| !s.is_empty() && *s != ticket.subject && !cut_short(s, &ticket.subject))
        .map(|s| s.chars().take(250).collect());
    seen.priority = request
        .priority
        .as_ref()
        .and_then(|p| p.name.as_deref())
        .filter(|name| {
            !ctx.mapping
                .priority(ticket.priority)
                .eq_ignore_ascii_case(name)
        })
        .and_then(|name| {
            Priority::ALL
                .into_iter()
                .find(|p| ctx.mapping.priority(*p).eq_ignore_ascii_case(name))
        });
    Ok(())
}

/// Whether SDP's subject is ours cut to fit its length limit after the number tag.
fn cut_short(sdp: &str, ours: &str) -> bool {
    sdp.chars().count() >= 200 && ours.starts_with(sdp)
}

/// The ticket's new requester when SDP's differs: the portal customer with that e-mail, or nobody
/// in the portal (a requester no customer signs in as).
fn requester(
    ctx: &SyncCtx,
    ticket: &Ticket,
    request: &Request,
) -> Result<Option<Requester>, SyncError> {
    let Some(sdp) = &request.requester else {
        return Ok(None);
    };
    let email = normalize_email(sdp.email_id.as_deref().unwrap_or_default());
    // SDP gives "" for a requester without an e-mail: nothing to compare.
    if email.is_empty() || email == normalize_email(&ticket.requester.email) {
        return Ok(None);
    }
    Ok(Some(match importable_requester(ctx, request)? {
        Some(user) => Requester::of(&user),
        None => Requester {
            id: UserId(uuid::Uuid::nil()),
            name: sdp.name.clone().unwrap_or_else(|| email.clone()),
            email,
            organization: String::new(),
            org: None,
        },
    }))
}
