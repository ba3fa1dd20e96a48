//! Who is asking: a bearer token or a session resolves to an account; the integration account acts
//! only for a customer it names, who is created on first use.

use time::{Duration, OffsetDateTime};

use super::AppState;
use crate::auth;
use crate::domain::user::normalize_email;
use crate::domain::validate::{self, NAME_MAX_CHARS, ORGANIZATION_MAX_CHARS};
use crate::domain::{
    Actor, DomainError, Organization, Role, Sharing, Ticket, User, UserId, Validation,
};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::store::users::TokenKind;
use crate::store::{OpError, TokenRecord};

pub const ON_BEHALF_OF: &str = "X-Deskbridge-On-Behalf-Of";
pub const ON_BEHALF_OF_NAME: &str = "X-Deskbridge-On-Behalf-Of-Name";
pub const ON_BEHALF_OF_ORGANIZATION: &str = "X-Deskbridge-On-Behalf-Of-Organization";

/// The authenticated caller. For the integration account acting with `X-Deskbridge-On-Behalf-Of`,
/// `user` is the customer and `principal` the integration account; otherwise both are the same.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub principal: User,
    pub actor: Actor,
    /// The hash of the credential used, so sign-out can revoke exactly it.
    pub credential: [u8; 32],
    /// The customer's organisation, read with the credential: its sharing decides what they see.
    pub org: Option<Organization>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Whether the caller may read this ticket: an admin, or whoever may write it.
    pub fn can_read(&self, ticket: &Ticket) -> bool {
        self.is_admin() || self.can_write(ticket)
    }

    /// Whether the caller may write on this ticket (reply, attach): its requester (or the portal
    /// on their behalf), or a colleague the organisation's sharing lets in.
    pub fn can_write(&self, ticket: &Ticket) -> bool {
        ticket.requester.id == self.user.id
            || (self.user.role == Role::Customer
                && self
                    .org
                    .as_ref()
                    .is_some_and(|o| o.shares(&self.user, ticket)))
    }

    /// Whether the caller decides for the ticket (confirm, reopen): only its requester.
    pub fn is_requester(&self, ticket: &Ticket) -> bool {
        ticket.requester.id == self.user.id
    }

    /// The organisation's sharing, for a customer who belongs to one.
    pub fn sharing(&self) -> Sharing {
        self.org.as_ref().map_or(Sharing::Off, |o| o.sharing)
    }
}

/// The customer the integration account names in its headers.
#[derive(Debug, Clone, Default)]
pub struct OnBehalf<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub organization: Option<&'a str>,
}

/// Resolves a credential (a bearer token or a session secret) to the caller.
pub fn authenticate(
    state: &AppState,
    secret: &str,
    on_behalf: Option<OnBehalf<'_>>,
) -> ApiResult<Caller> {
    let hash = auth::secret_hash(secret);
    let now = OffsetDateTime::now_utc();
    let (record, principal) = live_credential(state, &hash, now)?;
    // Written at most once a minute (or a tenth of the idle timeout): enough for the idle
    // timeout and the token list, without a store write per request.
    let step = std::cmp::min(idle_timeout(state) / 10, Duration::minutes(1));
    if record.last_used_at.is_none_or(|at| now - at >= step) {
        state.store.touch_token(&hash, now)?;
    }
    if principal.role != Role::Integration {
        if on_behalf.is_some() {
            return Err(ApiError::new(
                ErrorCode::OnBehalfOfNotAllowed,
                "only the integration account may act on behalf of a customer",
            ));
        }
        let actor = Actor::user(&principal);
        return Ok(Caller {
            org: org_of(state, &principal)?,
            user: principal.clone(),
            principal,
            actor,
            credential: hash,
        });
    }
    let on_behalf = on_behalf.ok_or_else(|| {
        ApiError::new(
            ErrorCode::OnBehalfOfRequired,
            format!("the integration account must name the customer in {ON_BEHALF_OF}"),
        )
    })?;
    let customer = customer_for(state, &on_behalf)?;
    let actor = Actor::on_behalf(&customer, &principal);
    Ok(Caller {
        org: org_of(state, &customer)?,
        user: customer,
        principal,
        actor,
        credential: hash,
    })
}

/// A customer's organisation (admins and integrations belong to none that matters here).
fn org_of(state: &AppState, user: &User) -> ApiResult<Option<Organization>> {
    match user.org {
        Some(id) if user.role == Role::Customer => Ok(state.store.org(id)?),
        _ => Ok(None),
    }
}

fn idle_timeout(state: &AppState) -> Duration {
    Duration::minutes(i64::try_from(state.config.auth.session_idle_minutes).unwrap_or(30))
}

/// The record and account of a credential that still works: known, within its lifetime, a session
/// not idle past the timeout, its account enabled. An ended credential is removed on the way.
fn live_credential(
    state: &AppState,
    hash: &[u8; 32],
    now: OffsetDateTime,
) -> ApiResult<(TokenRecord, User)> {
    let record = state
        .store
        .token(hash)?
        .ok_or_else(ApiError::unauthenticated)?;
    let idle = record.kind == TokenKind::Session
        && record.last_used_at.unwrap_or(record.created_at) + idle_timeout(state) <= now;
    if record.expires_at <= now || idle {
        state.store.delete_token(hash)?;
        return Err(ApiError::unauthenticated());
    }
    let principal = state
        .store
        .user(record.user)?
        .ok_or_else(ApiError::unauthenticated)?;
    if principal.disabled {
        return Err(ApiError::new(
            ErrorCode::AccountDisabled,
            "this account is disabled",
        ));
    }
    Ok((record, principal))
}

/// Whether the credential a caller used still works (a live stream asks every half second), without
/// counting as use: an open page alone does not keep a session from its idle timeout.
pub fn still_valid(state: &AppState, credential: &[u8; 32]) -> bool {
    live_credential(state, credential, OffsetDateTime::now_utc()).is_ok()
}

/// Finds the customer the integration acts for, creating them on first use when a name is given.
fn customer_for(state: &AppState, on_behalf: &OnBehalf<'_>) -> ApiResult<User> {
    let mut v = Validation::default();
    validate::email(&mut v, ON_BEHALF_OF, on_behalf.email);
    v.into_result()?;
    let email = normalize_email(on_behalf.email);
    if let Some(user) = state.store.user_by_email(&email)? {
        return match (user.role, user.disabled) {
            (Role::Customer, false) => Ok(user),
            (Role::Customer, true) => Err(ApiError::new(
                ErrorCode::AccountDisabled,
                "this customer's account is disabled",
            )),
            _ => Err(ApiError::new(
                ErrorCode::OnBehalfOfNotCustomer,
                "the integration may only act for customer accounts",
            )),
        };
    }
    let Some(name) = on_behalf.name.filter(|n| !n.is_empty()) else {
        return Err(ApiError::field(
            ErrorCode::CustomerUnknown,
            ON_BEHALF_OF_NAME,
            "the customer is new: send their name to create the account",
        ));
    };
    let organization = on_behalf.organization.unwrap_or_default();
    let mut v = Validation::default();
    validate::required_line(&mut v, ON_BEHALF_OF_NAME, name, NAME_MAX_CHARS);
    validate::optional_line(
        &mut v,
        ON_BEHALF_OF_ORGANIZATION,
        Some(organization),
        ORGANIZATION_MAX_CHARS,
    );
    v.into_result()?;
    let mut user = User {
        id: UserId::new(),
        email: email.clone(),
        name: name.to_owned(),
        role: Role::Customer,
        organization: String::new(),
        org: None,
        password_hash: String::new(),
        disabled: false,
        created_at: OffsetDateTime::now_utc(),
    };
    super::orgs::place(state, &mut user, Some(organization))?;
    match state.store.create_user(&user) {
        Ok(()) => {
            tracing::info!(customer = %user.email, "customer created on behalf of the integration");
            Ok(user)
        }
        // Two first requests raced: the other one created the account.
        Err(OpError::Rule(DomainError::EmailTaken)) => state
            .store
            .user_by_email(&email)?
            .ok_or_else(ApiError::unauthenticated),
        Err(e) => Err(e.into()),
    }
}
