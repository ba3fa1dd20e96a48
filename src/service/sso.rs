//! Single sign-on: a customer who signed in at the identity provider gets a deskbridge session
//! like a password sign-in gives. Accounts are keyed by the provider's (issuer, subject) and made
//! on first sign-in; name, e-mail and organisation follow the ID token at each sign-in. An
//! existing customer is linked by e-mail only when the provider verified it; an admin's or the
//! integration account's e-mail is never taken over, and a disabled account stays out.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::accounts::{self, Issued};
use super::{AppState, Caller};
use crate::domain::user::normalize_email;
use crate::domain::validate::{self, NAME_MAX_CHARS};
use crate::domain::{Role, User, UserId, Validation};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::oidc::{Callback, Identity, Oidc, OidcError, Started};

pub(crate) use crate::oidc::PENDING_TTL;

fn refusal(e: &OidcError) -> ApiError {
    let code = match e {
        OidcError::Unavailable(_) => ErrorCode::SsoUnavailable,
        OidcError::Busy => ErrorCode::TooManyAttempts,
        OidcError::State => ErrorCode::SsoStateInvalid,
        OidcError::Denied(_) => ErrorCode::SsoDenied,
        OidcError::Refused(_) => ErrorCode::SsoTokenRefused,
    };
    tracing::warn!(error = %e, "single sign-on refused");
    ApiError::new(code, e.to_string())
}

fn provider(state: &AppState) -> ApiResult<&Oidc> {
    state.oidc.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::SsoOff,
            "single sign-on is not configured ([oidc] issuer_url)",
        )
    })
}

/// Sends the browser to the provider; `redirect` is our callback URL, `next` a local path.
pub(crate) async fn begin(
    state: &AppState,
    address: Option<IpAddr>,
    redirect: &str,
    next: &str,
) -> ApiResult<Started> {
    provider(state)?
        .begin(address, redirect, next)
        .await
        .map_err(|e| refusal(&e))
}

/// Finishes a sign-in at the callback: the account (made, linked or refreshed) and a new session,
/// with the local path to go to.
pub(crate) async fn finish(
    state: &AppState,
    address: Option<IpAddr>,
    old_session: Option<&str>,
    back: &Callback,
    binding: Option<&str>,
) -> ApiResult<(User, Issued, String)> {
    let identity = provider(state)?
        .finish(back, binding)
        .await
        .map_err(|e| refusal(&e))?;
    let user = account(state, &identity)?;
    let issued = accounts::open_session(state, &user, old_session, true).await?;
    tracing::info!(user = %user.email, ?address, issuer = %identity.issuer, "signed in with single sign-on");
    Ok((user, issued, identity.next))
}

/// The e-mail and name the ID token gives, checked like an admin's input.
fn claimed(identity: &Identity) -> ApiResult<(String, String)> {
    let email = normalize_email(identity.email.as_deref().unwrap_or_default());
    let mut v = Validation::default();
    validate::email(&mut v, "email", &email);
    if v.into_result().is_err() {
        return Err(refusal(&OidcError::Refused(
            "the ID token carries no usable e-mail address (is the email scope granted?)".into(),
        )));
    }
    let name = identity
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(&email);
    let name = name
        .chars()
        .filter(|c| !c.is_control())
        .take(NAME_MAX_CHARS)
        .collect();
    Ok((email, name))
}

/// The customer account for a provider identity: found by (issuer, subject), else linked by a
/// verified e-mail, else created.
fn account(state: &AppState, identity: &Identity) -> ApiResult<User> {
    let (email, name) = claimed(identity)?;
    let store = &state.store;
    let (mut user, old_email, action) =
        if let Some(user) = store.user_by_identity(&identity.issuer, &identity.subject)? {
            let old = user.email.clone();
            (user, Some(old), None)
        } else if let Some(user) = store.user_by_email(&email)? {
            if user.role == Role::Customer && !identity.email_verified {
                return Err(ApiError::new(
                    ErrorCode::SsoEmailUnverified,
                    "an account with this e-mail exists, and the identity provider has not \
                     verified the e-mail; ask an administrator",
                ));
            }
            (user, Some(email.clone()), Some("user.sso_linked"))
        } else {
            let user = User {
                id: UserId::new(),
                email: email.clone(),
                name: name.clone(),
                role: Role::Customer,
                organization: String::new(),
                org: None,
                password_hash: String::new(),
                disabled: false,
                created_at: OffsetDateTime::now_utc(),
            };
            (user, None, Some("user.sso_created"))
        };
    if user.role != Role::Customer {
        return Err(ApiError::new(
            ErrorCode::SsoNotCustomer,
            "this e-mail belongs to an administrator or integration account, which signs in \
             with its password",
        ));
    }
    if user.disabled {
        return Err(ApiError::new(
            ErrorCode::AccountDisabled,
            "this account is disabled",
        ));
    }
    user.email = email;
    user.name = name;
    accounts::sso_organization(state, &mut user, identity.organization.as_deref())?;
    store.save_linked_user(
        &user,
        old_email.as_deref(),
        &identity.issuer,
        &identity.subject,
    )?;
    if let Some(action) = action {
        let detail = format!("{} ({})", user.email, identity.issuer);
        store.audit(&user.email, action, &detail)?;
    }
    Ok(user)
}

/// Whether the caller's session began at the identity provider (signing out then offers the
/// provider's sign-out too).
pub(crate) fn began_at_provider(state: &AppState, caller: &Caller) -> bool {
    state.oidc.is_some()
        && state
            .store
            .token(&caller.credential)
            .ok()
            .flatten()
            .is_some_and(|r| r.single_sign_on)
}

/// The provider's sign-out URL (RP-initiated logout), when it has one, coming back to
/// `post_logout`.
pub(crate) async fn provider_sign_out(state: &AppState, post_logout: &str) -> Option<String> {
    state.oidc.as_ref()?.end_session_url(post_logout).await
}
