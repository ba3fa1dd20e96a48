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

/// Checks the password, throttled per account and per address. Failures look the same whether or
/// not the account exists.
pub async fn sign_in(
    state: &AppState,
    address: Option<IpAddr>,
    email: &str,
    password: &str,
) -> ApiResult<User> {
    let email = normalize_email(email);
    if let Err(wait) = state.throttle.attempt(&email, address) {
        state.metrics.login_failures.inc();
        tracing::warn!(account = %email, ?address, "sign-in throttled");
        let mut e = ApiError::new(
            ErrorCode::TooManyAttempts,
            "too many sign-in attempts; wait and try again",
        );
        e.retry_after = Some(wait);
        return Err(e);
    }
    let user = state.store.user_by_email(&email)?;
    let password = password.to_owned();
    let hash = user.as_ref().map_or_else(
        || auth::dummy_hash().to_owned(),
        |u| u.password_hash.clone(),
    );
    let valid =
        blocking(move || !hash.is_empty() && auth::verify_password(&password, &hash)).await?;
    match user {
        Some(user) if valid && !user.disabled => Ok(user),
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
fn issue(state: &AppState, user: &User, kind: TokenKind) -> ApiResult<Issued> {
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
    };
    state
        .store
        .insert_token(&auth::secret_hash(&token), &record)?;
    Ok(Issued {
        token,
        expires_at: record.expires_at,
    })
}

/// Signs in for an API token.
pub async fn create_token(
    state: &AppState,
    address: Option<IpAddr>,
    email: &str,
    password: &str,
) -> ApiResult<Issued> {
    let user = sign_in(state, address, email, password).await?;
    let issued = issue(state, &user, TokenKind::Api)?;
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
    if let Some(old) = old_session {
        state.store.delete_token(&auth::secret_hash(old))?;
    }
    let issued = issue(state, &user, TokenKind::Session)?;
    state.store.durable().await?;
    Ok((user, issued))
}

/// Revokes the credential the caller used (sign-out, or revoking this token).
pub async fn revoke_own(state: &AppState, caller: &Caller) -> ApiResult<()> {
    state.store.delete_token(&caller.credential)?;
    state.store.durable().await?;
    Ok(())
}

/// Ends every browser session of the caller's account.
pub async fn sign_out_everywhere(state: &AppState, caller: &Caller) -> ApiResult<()> {
    state.store.delete_sessions_of(caller.user.id)?;
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
    let user = account.into_user().await?;
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
    /// Sets a new password and ends every browser session.
    ResetPassword {
        password: String,
    },
    /// Issues an API token for the account (shown once).
    IssueToken,
}

impl AccountAction {
    fn name(&self) -> &'static str {
        match self {
            AccountAction::Disable => "disable",
            AccountAction::Enable => "enable",
            AccountAction::ResetPassword { .. } => "password",
            AccountAction::IssueToken => "token",
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
                // A disabled account is signed out everywhere at once.
                state.store.delete_tokens_of(user.id)?;
            }
        }
        AccountAction::ResetPassword { password } => {
            let mut v = Validation::default();
            validate::password(&mut v, "password", &password);
            v.into_result()?;
            user.password_hash = blocking(move || auth::hash_password(&password)).await?;
            state.store.update_user(&user)?;
            state.store.delete_sessions_of(user.id)?;
        }
        AccountAction::IssueToken => issued = Some(issue(state, &user, TokenKind::Api)?),
    }
    state
        .store
        .audit(&admin.user.email, &format!("user.{name}"), &user.email)?;
    state.store.durable().await?;
    tracing::info!(admin = %admin.user.email, user = %user.email, action = name, "account changed");
    Ok((user, issued))
}
