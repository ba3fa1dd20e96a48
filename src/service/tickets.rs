//! Tickets as customers (and admins, read-only) use them: find one the caller may see, submit
//! (for oneself or a colleague), write, attach, copy colleagues, confirm or reopen, list. A
//! customer reaches only the tickets they requested or their organisation shares with them;
//! any other answers exactly like a missing one, so existence is not revealed.

use serde::Deserialize;
use time::OffsetDateTime;

use super::{AppState, Caller};
use crate::actors::attachments::StoreAttachment;
use crate::actors::discussions::PostMessage;
use crate::actors::tickets::{Copy, CreateTicket, TakeStep};
use crate::domain::org::email_domain;
use crate::domain::user::normalize_email;
use crate::domain::validate::{self, SERVICE_MAX_CHARS, SUBJECT_MAX_CHARS};
use crate::domain::{
    Attachment, Kind, Message, Organization, Priority, Requester, Role, Sharing, Status, SyncState,
    Ticket, User, Validation,
};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::sdp::Lane;
use crate::store::{ListFilter, MoreFilter, Scope, StagedBlob};
use crate::tickets::{Created, CustomerStep, Idempotency, NewTicket, Render};

/// The ticket, if the caller may read it; otherwise the same 404 as a missing ticket.
pub fn readable(state: &AppState, caller: &Caller, number: &str) -> ApiResult<Ticket> {
    match state.store.ticket_by_number(number)? {
        Some(ticket) if caller.can_read(&ticket) => Ok(ticket),
        _ => Err(ApiError::ticket_not_found()),
    }
}

/// The ticket a person opens: readable as [`readable`], and when it was imported from a list row
/// and its details are still to be read, they are read now, ahead of the backfill (the page
/// updates live when they arrive).
pub fn open(state: &AppState, caller: &Caller, number: &str) -> ApiResult<Ticket> {
    let ticket = readable(state, caller, number)?;
    if let Some(request) = &ticket.sdp.request_id
        && state.store.has_details_pending(ticket.id)?
    {
        state.sync.hint(Lane::Interactive, request.clone());
    }
    Ok(ticket)
}

/// The ticket, if the caller may act on it. An admin who may read but not act gets 403.
pub fn writable(state: &AppState, caller: &Caller, number: &str) -> ApiResult<Ticket> {
    let ticket = readable(state, caller, number)?;
    if caller.can_write(&ticket) {
        Ok(ticket)
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the ticket's requester and colleagues it is shared with can change it",
        ))
    }
}

/// A submission as typed, before it is checked.
#[derive(Debug, Clone)]
pub struct Submission {
    pub kind: Kind,
    pub subject: String,
    pub description: String,
    pub priority: Option<Priority>,
    pub service: Option<String>,
    /// A colleague's e-mail: they become the requester, the caller its author (copied on it).
    pub on_behalf_of: Option<String>,
    /// SDP ids of an offered category and subcategory (`service::catalogue`).
    pub category: Option<String>,
    pub subcategory: Option<String>,
}

impl Submission {
    /// Checks the fields and normalizes them.
    pub fn check(self) -> ApiResult<NewTicket> {
        let mut v = Validation::default();
        validate::required_line(&mut v, "subject", &self.subject, SUBJECT_MAX_CHARS);
        validate::text(&mut v, "description", &self.description, false);
        validate::optional_line(
            &mut v,
            "service",
            self.service.as_deref(),
            SERVICE_MAX_CHARS,
        );
        v.into_result()?;
        Ok(NewTicket {
            kind: self.kind,
            subject: self.subject.trim().to_owned(),
            description: self.description,
            priority: self.priority.unwrap_or_default(),
            service: self
                .service
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            author: None,
            category: None,
        })
    }
}

/// Submits a ticket for the caller (a customer, or the portal on a customer's behalf).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    submission: Submission,
    idempotency: Option<Idempotency>,
    render: Render<Ticket>,
) -> ApiResult<Created> {
    let colleague = submission
        .on_behalf_of
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|email| colleague(state, caller, "on_behalf_of", email))
        .transpose()?;
    let category = super::catalogue::choose(
        state,
        submission.category.as_deref(),
        submission.subcategory.as_deref(),
    )?;
    let mut input = NewTicket {
        category,
        ..submission.check()?
    };
    let requester = match colleague {
        Some(colleague) if colleague.id != caller.user.id => {
            input.author = Some(Requester::of(&caller.user));
            colleague
        }
        _ => caller.user.clone(),
    };
    let msg = CreateTicket {
        requester,
        actor: caller.actor.clone(),
        input,
        idempotency,
        render,
    };
    Ok(state.actors.tickets.send(msg).await??)
}

/// At most this many colleagues are copied on one ticket.
pub const MAX_CC: usize = 20;

/// The customer account of a colleague of the caller, by e-mail: same organisation, which shares
/// tickets. Anyone else is refused with the same answer, so accounts are not revealed.
pub fn colleague(state: &AppState, caller: &Caller, field: &str, email: &str) -> ApiResult<User> {
    let org = sharing_org(field, email, caller.org.as_ref())?;
    member(state, org, &normalize_email(email))?.ok_or_else(|| not_a_colleague(field))
}

/// The organisation, checked to share tickets, after the e-mail is checked to be one.
fn sharing_org<'a>(
    field: &str,
    email: &str,
    org: Option<&'a Organization>,
) -> ApiResult<&'a Organization> {
    let mut v = Validation::default();
    validate::email(&mut v, field, email);
    v.into_result()?;
    org.filter(|o| o.sharing != Sharing::Off).ok_or_else(|| {
        ApiError::field(
            ErrorCode::SharingOff,
            field,
            "this organisation does not share tickets between colleagues",
        )
    })
}

/// The enabled customer account of `org` with this (normalised) e-mail.
fn member(state: &AppState, org: &Organization, email: &str) -> ApiResult<Option<User>> {
    Ok(state
        .store
        .user_by_email(email)?
        .filter(|u| u.role == Role::Customer && !u.disabled && u.org == Some(org.id)))
}

fn not_a_colleague(field: &str) -> ApiError {
    ApiError::field(
        ErrorCode::NotAColleague,
        field,
        "is not a colleague in this organisation",
    )
}

/// Copies a colleague on the ticket (`add`), or stops copying them: the requester or an admin may.
/// A colleague is a customer of the ticket's organisation, or someone at one of its e-mail domains
/// who has no account yet (they see the ticket once they sign in).
pub async fn copy(
    state: &AppState,
    caller: &Caller,
    ticket: &Ticket,
    email: &str,
    add: bool,
) -> ApiResult<Ticket> {
    if !(caller.is_requester(ticket) || caller.is_admin()) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the ticket's requester or an admin can change who is copied",
        ));
    }
    let email = normalize_email(email);
    if add {
        let org = match ticket.org() {
            Some(id) => state.store.org(id)?,
            None => None,
        };
        let org = sharing_org("email", &email, org.as_ref())?;
        let by_domain = email_domain(&email).is_some_and(|d| org.domains.iter().any(|o| o == d));
        let known = member(state, org, &email)?;
        if known.is_none() && (!by_domain || state.store.user_by_email(&email)?.is_some()) {
            return Err(not_a_colleague("email"));
        }
        if email == ticket.requester.email {
            return Err(ApiError::field(
                ErrorCode::InvalidField,
                "email",
                "is the ticket's requester",
            ));
        }
        if ticket.cc.len() >= MAX_CC && !ticket.cc.contains(&email) {
            return Err(ApiError::field(
                ErrorCode::InvalidField,
                "email",
                format!("at most {MAX_CC} colleagues can be copied on a ticket"),
            ));
        }
    }
    let msg = Copy {
        ticket: ticket.id,
        actor: caller.actor.clone(),
        email,
        add,
    };
    Ok(state.actors.tickets.send(msg).await??)
}

/// Checks and posts a customer's message (a reply on a resolved or closed ticket reopens it).
pub async fn post_message(
    state: &AppState,
    caller: &Caller,
    ticket: &Ticket,
    body: String,
    idempotency: Option<Idempotency>,
    render: Render<Message>,
) -> ApiResult<Created> {
    let mut v = Validation::default();
    validate::text(&mut v, "body", &body, true);
    v.into_result()?;
    let msg = PostMessage {
        ticket: ticket.id,
        actor: caller.actor.clone(),
        body,
        idempotency,
        render,
    };
    Ok(state.actors.discussions.send(msg).await??)
}

/// Records a staged file (already capped, hashed and named safely) on the ticket.
pub async fn attach(
    state: &AppState,
    caller: &Caller,
    ticket: &Ticket,
    (filename, blob): (String, StagedBlob),
    idempotency: Option<Idempotency>,
    render: Render<Attachment>,
) -> ApiResult<Created> {
    let msg = StoreAttachment {
        ticket: ticket.id,
        actor: caller.actor.clone(),
        blob,
        filename,
        idempotency,
        render,
    };
    Ok(state.actors.attachments.send(msg).await??)
}

/// Confirms a resolution or reopens (with a reason) through the state machine.
pub async fn take_step(
    state: &AppState,
    caller: &Caller,
    ticket: &Ticket,
    step: CustomerStep,
) -> ApiResult<Ticket> {
    if !caller.is_requester(ticket) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the ticket's requester can confirm or reopen it",
        ));
    }
    if let CustomerStep::Reopen { reason } = &step {
        let mut v = Validation::default();
        validate::text(&mut v, "reason", reason, true);
        v.into_result()?;
    }
    let msg = TakeStep {
        ticket: ticket.id,
        actor: caller.actor.clone(),
        step,
    };
    Ok(state.actors.tickets.send(msg).await??)
}

/// A list query as typed (the API's query string, the dashboard's filters).
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// new | assigned | `in_progress` | pending | resolved | closed
    pub status: Option<String>,
    /// `information_request` | `problem_report`
    pub kind: Option<String>,
    /// Searches subject, description and number.
    pub q: Option<String>,
    /// `true`: only tickets past what the service desk promised (first response or resolution).
    pub overdue: Option<String>,
    /// mine (default): the tickets one is on; organization: every ticket of one's organisation,
    /// when it shares them.
    pub view: Option<String>,
    /// 1-based, default 1.
    pub page: Option<String>,
    /// 1 to 100, default 20.
    pub per_page: Option<String>,
}

fn number_param(v: &mut Validation, field: &str, raw: Option<&str>, default: u64, max: u64) -> u64 {
    match raw.filter(|s| !s.is_empty()) {
        None => default,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                v.add(field, format!("must be a whole number from 1 to {max}"));
                default
            }
        },
    }
}

/// Whose tickets a customer's list covers: theirs (and those they are copied on, when their
/// organisation shares), or, asked for, their organisation's. An admin's covers every ticket.
fn scope(v: &mut Validation, caller: &Caller, view: &str) -> Scope {
    if caller.is_admin() {
        return Scope::All;
    }
    let org = caller.org.as_ref();
    match view {
        "" | "mine" => Scope::Mine {
            user: caller.user.id,
            copied: org
                .filter(|o| o.sharing != Sharing::Off)
                .map(|o| (caller.user.email.clone(), o.id)),
        },
        "organization" => {
            if let Some(o) = org.filter(|o| o.sharing == Sharing::Organization) {
                Scope::Org(o.id)
            } else {
                v.add("view", "your organisation does not share its tickets");
                Scope::Mine {
                    user: caller.user.id,
                    copied: None,
                }
            }
        }
        _ => {
            v.add("view", "must be mine or organization");
            Scope::Mine {
                user: caller.user.id,
                copied: None,
            }
        }
    }
}

/// The list filter for a query; a customer sees only the tickets they may read.
pub fn list_filter(caller: &Caller, query: &ListQuery) -> ApiResult<ListFilter> {
    let mut v = Validation::default();
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| {
            let parsed = Status::parse(s);
            if parsed.is_none() {
                v.add(
                    "status",
                    "must be one of new, assigned, in_progress, pending, resolved, closed",
                );
            }
            parsed
        });
    let kind = query
        .kind
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| {
            let parsed = Kind::parse(s);
            if parsed.is_none() {
                v.add("kind", "must be information_request or problem_report");
            }
            parsed
        });
    let page = number_param(&mut v, "page", query.page.as_deref(), 1, 1_000_000);
    let per_page = number_param(&mut v, "per_page", query.per_page.as_deref(), 20, 100);
    let q = query
        .q
        .clone()
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.len() > 200) {
        v.add("q", "must be at most 200 bytes");
    }
    let overdue = match query.overdue.as_deref().unwrap_or_default() {
        "" | "false" => false,
        "true" => true,
        _ => {
            v.add("overdue", "must be true or false");
            false
        }
    };
    let scope = scope(&mut v, caller, query.view.as_deref().unwrap_or_default());
    v.into_result()?;
    Ok(ListFilter {
        scope,
        status,
        kind,
        q,
        more: MoreFilter {
            overdue_at: overdue.then(OffsetDateTime::now_utc),
            ..MoreFilter::default()
        },
        page,
        per_page,
    })
}

/// The console's list query: the customer's filters and the narrower ones only an admin has.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ConsoleQuery {
    #[serde(flatten)]
    pub list: ListQuery,
    pub organization: Option<String>,
    /// The requester's e-mail.
    pub requester: Option<String>,
    /// pending | synced | failed
    pub sync: Option<String>,
    /// Any value but empty keeps only overdue tickets.
    pub overdue: Option<String>,
}

/// The list filter for the console: every ticket, narrowed as asked. Only an admin may list them.
pub fn console_filter(caller: &Caller, query: &ConsoleQuery) -> ApiResult<ListFilter> {
    if !caller.is_admin() {
        return Err(ApiError::new(ErrorCode::Forbidden, "admins only"));
    }
    let mut filter = list_filter(caller, &query.list)?;
    let text = |raw: &Option<String>| {
        raw.as_deref()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
    };
    let sync_state = text(&query.sync).map(|s| SyncState::parse(&s));
    if sync_state.is_some_and(|s| s.is_none()) {
        let mut v = Validation::default();
        v.add("sync", "must be one of pending, synced, failed");
        v.into_result()?;
    }
    filter.more = MoreFilter {
        organization: text(&query.organization),
        requester_email: text(&query.requester),
        sync_state: sync_state.flatten(),
        overdue_at: text(&query.overdue).map(|_| time::OffsetDateTime::now_utc()),
    };
    Ok(filter)
}
