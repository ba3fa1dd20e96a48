//! Accounts and their credentials: signing in (throttled), browser sessions and API tokens, the
//! first admin, and what an admin does to accounts (create, disable, enable, reset the password,
//! issue a token). Every admin action is recorded in the audit log.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;

use super::{AppState, Caller};
use crate::auth::{self, API_TOKEN_PREFIX};
use crate::domain::user::normalize_email;
use crate::domain::validate::{self, NAME_MAX_CHARS, ORGANIZATION_MAX_CHARS};
use crate::domain::{Role, User, UserId, Validation};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::store::TokenRecord;
use crate::store::users::TokenKind;

/// A credential just issued; the secret is shown once and stored only as its hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TokenResponse)]
pub struct Issued {
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// Runs blocking work (argon2 takes tens of milliseconds of CPU) off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(&e))
}

/// Longest e-mail address there is (RFC 5321's path limit, less the brackets).
const EMAIL_MAX_BYTES: usize = 254;

/// Checks the password, throttled per account and per address. Failures look the same whether or
/// not the account exists, or has a password at all: every attempt past the checks runs one argon2
/// verification.
pub async fn sign_in(
    state: &AppState,
    address: Option<IpAddr>,
    email: &str,
    password: &str,
) -> ApiResult<User> {
    // Before anything else: nothing longer than an address is hashed, looked up or remembered.
    if email.len() > EMAIL_MAX_BYTES {
        state.metrics.login_failures.inc();
        return Err(ApiError::field(
            ErrorCode::InvalidField,
            "email",
            format!("must be at most {EMAIL_MAX_BYTES} characters"),
        ));
    }
    let email = normalize_email(email);
    if let Err(wait) = state.throttle.attempt(&email, address) {
        state.metrics.login_failures.inc();
        tracing::warn!(account = %email, ?address, "sign-in throttled");
        let mut e = ApiError::new(
            ErrorCode::TooManyAttempts,
            "too many failed sign-in attempts; wait and try again",
        );
        e.retry_after = Some(wait);
        return Err(e);
    }
    let user = state.store.user_by_email(&email)?;
    let password = password.to_owned();
    // An account created on a customer's behalf has no password: it is checked against the
    // dummy hash like a missing one, so timing does not tell the two apart.
    let (hash, has_password) = match &user {
        Some(u) if !u.password_hash.is_empty() => (u.password_hash.clone(), true),
        _ => (auth::dummy_hash().to_owned(), false),
    };
    let valid = blocking(move || auth::verify_password(&password, &hash)).await? && has_password;
    match user {
        Some(user) if valid && !user.disabled => {
            state.throttle.succeeded(&email, address);
            // Checked only once the password is right, so the refusal says nothing to a guesser.
            if user.role == Role::Customer && state.config.oidc.customers_sso_only {
                return Err(ApiError::new(
                    ErrorCode::SsoOnly,
                    "customers sign in with single sign-on; use the button on the sign-in page",
                ));
            }
            Ok(user)
        }
        _ => {
            state.metrics.login_failures.inc();
            Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "wrong e-mail or password",
            ))
        }
    }
}

/// Issues a credential of `kind` for `user` (not yet durable: the caller awaits the commit).
/// `single_sign_on`: a session begun at the identity provider.
pub(super) fn issue(
    state: &AppState,
    user: &User,
    kind: TokenKind,
    name: String,
    single_sign_on: bool,
) -> ApiResult<Issued> {
    let now = OffsetDateTime::now_utc();
    let ttl = match kind {
        TokenKind::Api => {
            Duration::days(i64::try_from(state.config.auth.token_ttl_days).unwrap_or(30))
        }
        TokenKind::Session => {
            Duration::hours(i64::try_from(state.config.auth.session_ttl_hours).unwrap_or(12))
        }
    };
    let token = auth::new_secret(if kind == TokenKind::Api {
        API_TOKEN_PREFIX
    } else {
        ""
    });
    let record = TokenRecord {
        user: user.id,
        kind,
        created_at: now,
        expires_at: now + ttl,
        name,
        last_used_at: None,
        single_sign_on,
    };
    state
        .store
        .insert_token(&auth::secret_hash(&token), &record)?;
    Ok(Issued {
        token,
        expires_at: record.expires_at,
    })
}

/// What an API token is called when its owner gave no name.
fn token_name(name: Option<&str>) -> ApiResult<String> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Ok("API token".into());
    }
    let mut v = Validation::default();
    validate::required_line(&mut v, "name", name, NAME_MAX_CHARS);
    v.into_result()?;
    Ok(name.to_owned())
}

/// Signs in for an API token.
pub async fn create_token(
    state: &AppState,
    address: Option<IpAddr>,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> ApiResult<Issued> {
    let name = token_name(name)?;
    let user = sign_in(state, address, email, password).await?;
    let issued = issue(state, &user, TokenKind::Api, name, false)?;
    state.store.durable().await?;
    tracing::info!(user = %user.email, "api token issued");
    Ok(issued)
}

/// Signs in for a browser session: a fresh session id at every sign-in (the old one, if any, is
/// revoked), so a session fixed before sign-in is worthless.
pub async fn start_session(
    state: &AppState,
    address: Option<IpAddr>,
    old_session: Option<&str>,
    email: &str,
    password: &str,
) -> ApiResult<(User, Issued)> {
    let user = sign_in(state, address, email, password).await?;
    let issued = open_session(state, &user, old_session, false).await?;
    Ok((user, issued))
}

/// A fresh browser session for a user who proved who they are (the old session, if any, ends).
pub(super) async fn open_session(
    state: &AppState,
    user: &User,
    old_session: Option<&str>,
    single_sign_on: bool,
) -> ApiResult<Issued> {
    if let Some(old) = old_session {
        state.store.delete_token(&auth::secret_hash(old))?;
    }
    let issued = issue(
        state,
        user,
        TokenKind::Session,
        String::new(),
        single_sign_on,
    )?;
    state.store.durable().await?;
    Ok(issued)
}

/// The organisation single sign-on gives a customer: the one the configured claim names (found by
/// name or created); without the claim, a new account joins the organisation of its e-mail's
/// domain and an existing one keeps its own.
pub(super) fn sso_organization(
    state: &AppState,
    user: &mut User,
    claim: Option<&str>,
) -> ApiResult<()> {
    match claim.map(str::trim).filter(|o| !o.is_empty()) {
        Some(name) => {
            let name: String = name.chars().take(ORGANIZATION_MAX_CHARS).collect();
            super::orgs::place(state, user, Some(&name))
        }
        None if user.org.is_none() => super::orgs::place(state, user, None),
        None => Ok(()),
    }
}

/// Signs out: a session ends every session of the account (and with them its live streams); an
/// API token revokes only itself.
pub async fn sign_out(state: &AppState, caller: &Caller) -> ApiResult<()> {
    let session = state
        .store
        .token(&caller.credential)?
        .is_some_and(|r| r.kind == TokenKind::Session);
    if session {
        state.store.delete_sessions_of(caller.principal.id)?;
    } else {
        state.store.delete_token(&caller.credential)?;
    }
    state.store.durable().await?;
    Ok(())
}

/// An API token as its owner and admins see it; never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Names the token to revoke it (a prefix of its hash, not the secret).
    pub id: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// To the minute; null if never used.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

fn token_id(hash: &[u8; 32]) -> String {
    hex::encode(&hash[..8])
}

/// The account's API tokens that have not expired, oldest first.
pub fn tokens(state: &AppState, user: UserId) -> ApiResult<Vec<TokenView>> {
    let now = OffsetDateTime::now_utc();
    let mut items: Vec<TokenView> = state
        .store
        .tokens_of(user)?
        .into_iter()
        .filter(|(_, r)| r.kind == TokenKind::Api && r.expires_at > now)
        .map(|(hash, r)| TokenView {
            id: token_id(&hash),
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
        })
        .collect();
    items.sort_by_key(|t| t.created_at);
    Ok(items)
}

/// Revokes one API token of `owner`: the owner's own, or any account's for an admin (audited).
pub async fn revoke_token(
    state: &AppState,
    caller: &Caller,
    owner: UserId,
    id: &str,
) -> ApiResult<()> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such API token");
    if owner != caller.principal.id && !caller.is_admin() {
        return Err(not_found());
    }
    let (hash, _) = state
        .store
        .tokens_of(owner)?
        .into_iter()
        .find(|(hash, r)| r.kind == TokenKind::Api && token_id(hash) == id)
        .ok_or_else(not_found)?;
    state.store.delete_token(&hash)?;
    if owner != caller.principal.id {
        let email = state
            .store
            .user(owner)?
            .map(|u| u.email)
            .unwrap_or_default();
        state.store.audit(
            &caller.principal.email,
            "user.token_revoked",
            &format!("{email} ({id})"),
        )?;
    }
    state.store.durable().await?;
    tracing::info!(by = %caller.principal.email, token = id, "api token revoked");
    Ok(())
}

/// Changes the caller's own password, given the current one. Every browser session of the account
/// ends (the caller signs in again); its API tokens keep working.
pub async fn change_password(
    state: &AppState,
    caller: &Caller,
    current: &str,
    new: &str,
) -> ApiResult<()> {
    let mut v = Validation::default();
    validate::password(&mut v, "new_password", new);
    v.into_result()?;
    let mut user = sign_in(state, None, &caller.principal.email, current).await?;
    let new = new.to_owned();
    user.password_hash = blocking(move || auth::hash_password(&new)).await?;
    state.store.update_user(&user)?;
    state.store.delete_sessions_of(user.id)?;
    state
        .store
        .audit(&user.email, "user.password_changed", &user.email)?;
    state.store.durable().await?;
    Ok(())
}

/// A new account as an admin (or the setup) gives it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub email: String,
    pub name: String,
    /// At least 10 characters.
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub organization: String,
}

impl NewAccount {
    fn validate(&self) -> ApiResult<()> {
        let mut v = Validation::default();
        validate::email(&mut v, "email", &self.email);
        validate::required_line(&mut v, "name", &self.name, NAME_MAX_CHARS);
        validate::password(&mut v, "password", &self.password);
        validate::optional_line(
            &mut v,
            "organization",
            Some(&self.organization),
            ORGANIZATION_MAX_CHARS,
        );
        Ok(v.into_result()?)
    }

    async fn into_user(self) -> ApiResult<User> {
        blocking(move || User {
            id: UserId::new(),
            email: normalize_email(&self.email),
            name: self.name.trim().to_owned(),
            role: self.role,
            organization: self.organization.trim().to_owned(),
            org: None,
            password_hash: auth::hash_password(&self.password),
            disabled: false,
            created_at: OffsetDateTime::now_utc(),
        })
        .await
    }
}

/// Creates an account, recorded in the audit log.
pub async fn create_account(
    state: &AppState,
    admin: &Caller,
    account: NewAccount,
) -> ApiResult<User> {
    account.validate()?;
    let mut user = account.into_user().await?;
    if user.role == Role::Customer {
        let named = std::mem::take(&mut user.organization);
        super::orgs::place(state, &mut user, Some(&named))?;
    } else {
        user.organization.clear();
    }
    state.store.create_user(&user)?;
    state.store.audit(
        &admin.user.email,
        "user.created",
        &format!("{} ({:?})", user.email, user.role),
    )?;
    state.store.durable().await?;
    tracing::info!(admin = %admin.user.email, user = %user.email, role = ?user.role, "account created");
    Ok(user)
}

/// Creates the first admin with the one-time setup token printed at start.
pub async fn create_first_admin(
    state: &AppState,
    token: &str,
    email: String,
    name: String,
    password: String,
) -> ApiResult<User> {
    let account = NewAccount {
        email,
        name,
        password,
        role: Role::Admin,
        organization: String::new(),
    };
    account.validate()?;
    let user = account.into_user().await?;
    {
        let mut slot = state
            .setup_token
            .lock()
            .expect("setup lock is never poisoned: no panics while held");
        let Some(expected) = slot.as_deref() else {
            return Err(ApiError::new(
                ErrorCode::SetupDone,
                "an admin already exists; sign in instead",
            ));
        };
        if !auth::secrets_equal(expected, token.trim()) {
            return Err(ApiError::new(
                ErrorCode::InvalidSetupToken,
                "the setup token is wrong; see the log printed at start",
            ));
        }
        state.store.create_user(&user)?;
        // Voided only once the admin exists, so a failed attempt can be retried.
        *slot = None;
    }
    state.store.audit(&user.email, "setup.done", &user.email)?;
    state.store.durable().await?;
    tracing::info!(admin = %user.email, "first admin created through setup");
    Ok(user)
}

/// What an admin does to an existing account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "action", deny_unknown_fields)]
pub enum AccountAction {
    /// Refuses sign-in and ends every session and token at once.
    Disable,
    Enable,
    /// Sets a new password and ends every session and API token.
    ResetPassword {
        password: String,
    },
    /// Issues an API token (shown once) for the admin's own account or an integration account;
    /// refused for anyone else's.
    IssueToken,
    /// Moves a customer to the organisation of this name (created if new); empty: none.
    SetOrganization {
        organization: String,
    },
}

impl AccountAction {
    fn name(&self) -> &'static str {
        match self {
            AccountAction::Disable => "disable",
            AccountAction::Enable => "enable",
            AccountAction::ResetPassword { .. } => "password",
            AccountAction::IssueToken => "token",
            AccountAction::SetOrganization { .. } => "organization",
        }
    }
}

/// Applies an admin's action to an account; a token comes back once, for `IssueToken`.
pub async fn change_account(
    state: &AppState,
    admin: &Caller,
    id: UserId,
    action: AccountAction,
) -> ApiResult<(User, Option<Issued>)> {
    let mut user = state
        .store
        .user(id)?
        .ok_or_else(|| ApiError::new(ErrorCode::UserNotFound, "no such account"))?;
    let name = action.name();
    let mut issued = None;
    match action {
        AccountAction::Disable | AccountAction::Enable => {
            if user.id == admin.user.id {
                return Err(ApiError::new(
                    ErrorCode::SelfDisable,
                    "you cannot disable or enable your own account",
                ));
            }
            user.disabled = action == AccountAction::Disable;
            state.store.update_user(&user)?;
            if user.disabled {
                // A disabled account is signed out everywhere at once (its live streams check
                // their session every half second).
                state.store.delete_tokens_of(user.id)?;
            }
        }
        AccountAction::ResetPassword { password } => {
            let mut v = Validation::default();
            validate::password(&mut v, "password", &password);
            v.into_result()?;
            user.password_hash = blocking(move || auth::hash_password(&password)).await?;
            state.store.update_user(&user)?;
            // A reset answers a lost or stolen password: whatever it let anyone obtain ends.
            state.store.delete_tokens_of(user.id)?;
        }
        AccountAction::IssueToken => {
            // A token acts as its account: an admin makes one only for itself or for an
            // integration account it runs, never to act as a person.
            if user.id != admin.principal.id && user.role != Role::Integration {
                return Err(ApiError::new(
                    ErrorCode::TokenForAnotherAccount,
                    "an admin cannot create an API token for another person's account; they \
                     sign in with POST /api/v1/auth/token themselves",
                ));
            }
            let name = format!("issued by {}", admin.principal.email);
            issued = Some(issue(state, &user, TokenKind::Api, name, false)?);
        }
        AccountAction::SetOrganization { organization } => {
            if user.role != Role::Customer {
                return Err(ApiError::field(
                    ErrorCode::InvalidField,
                    "organization",
                    "only customers belong to an organisation",
                ));
            }
            let organization = organization.trim();
            if organization.is_empty() {
                user.org = None;
                user.organization.clear();
            } else {
                super::orgs::place(state, &mut user, Some(organization))?;
            }
            state.store.update_user(&user)?;
        }
    }
    state
        .store
        .audit(&admin.user.email, &format!("user.{name}"), &user.email)?;
    state.store.durable().await?;
    tracing::info!(admin = %admin.user.email, user = %user.email, action = name, "account changed");
    Ok((user, issued))
}
