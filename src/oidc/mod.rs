//! The `OpenID Connect` relying party: discovery from the issuer URL (cached for a while), the
//! authorization-code flow with PKCE, state and nonce, and the ID token's signature and claims
//! checked by `openidconnect`. What a sign-in waits for (nonce, PKCE verifier, where to go next) is
//! kept here, in memory, under its `state`: taken once, only by the browser holding the matching
//! cookie, and only for a few minutes. No accounts here: `service` turns an [`Identity`] into one.

mod http;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClaimsVerificationError, Client,
    ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdTokenFields, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::auth;
use crate::config::OidcConfig;
use crate::error::chain as error_chain;

/// How long a discovered configuration (and the provider's keys) is used before it is read again.
const DISCOVERY_TTL: Duration = Duration::from_mins(10);
/// How long a browser has to come back from the provider.
pub(crate) const PENDING_TTL: Duration = Duration::from_mins(10);
/// Sign-ins waiting at once; more are refused until some finish or expire.
const PENDING_MAX: usize = 10_000;
/// Sign-ins one client address may have waiting, so one client cannot use up the rest.
const PENDING_PER_ADDRESS: usize = 20;

/// Every claim of the ID token beyond the standard ones, so a configured one can be read.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct Extra {
    #[serde(flatten)]
    claims: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for Extra {}

type Tokens = StandardTokenResponse<
    IdTokenFields<
        Extra,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

type RelyingParty = Client<
    Extra,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

#[derive(Debug, thiserror::Error)]
pub(crate) enum OidcError {
    #[error("the identity provider cannot be reached or answers wrongly: {0}")]
    Unavailable(String),
    #[error("this sign-in is unknown, expired, already used or was started in another browser")]
    State,
    #[error("the identity provider refused the sign-in: {0}")]
    Denied(String),
    #[error("the identity provider's answer was refused: {0}")]
    Refused(String),
    #[error("too many sign-ins are in progress; try again in a few minutes")]
    Busy,
}

/// Who the provider says signed in, once every check passed.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) issuer: String,
    pub(crate) subject: String,
    pub(crate) email: Option<String>,
    pub(crate) email_verified: bool,
    pub(crate) name: Option<String>,
    /// The configured organisation claim's text, when configured and present.
    pub(crate) organization: Option<String>,
    /// Where the browser goes once signed in (a local path, checked when the sign-in began).
    pub(crate) next: String,
}

/// A sign-in sent to the provider: where to send the browser, and the cookie binding it.
pub(crate) struct Started {
    pub(crate) url: String,
    pub(crate) binding: String,
}

/// What the provider sends back to the callback.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Callback {
    pub(crate) state: String,
    pub(crate) code: String,
    pub(crate) error: String,
    pub(crate) error_description: String,
}

struct Pending {
    address: Option<std::net::IpAddr>,
    binding: [u8; 32],
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    redirect: String,
    next: String,
    started: Instant,
}

pub(crate) struct Oidc {
    config: OidcConfig,
    issuer: IssuerUrl,
    http: http::Http,
    discovered: tokio::sync::Mutex<Option<(Instant, Arc<ProviderMetadataWithLogout>)>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Oidc {
    /// The relying party for `[oidc]`; `None` while single sign-on is off.
    pub(crate) fn new(config: &OidcConfig) -> anyhow::Result<Option<Oidc>> {
        if !config.enabled() {
            return Ok(None);
        }
        let issuer = IssuerUrl::new(config.issuer_url.clone())?;
        let http = http::Http::new()?;
        Ok(Some(Oidc {
            config: config.clone(),
            issuer,
            http,
            discovered: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        }))
    }

    /// The provider's configuration and keys, read again once [`DISCOVERY_TTL`] has passed (or at
    /// once with `fresh`). A failure is not remembered: the next sign-in tries again.
    async fn metadata(&self, fresh: bool) -> Result<Arc<ProviderMetadataWithLogout>, OidcError> {
        let mut slot = self.discovered.lock().await;
        if let Some((at, metadata)) = slot.as_ref()
            && at.elapsed() < DISCOVERY_TTL
            && !fresh
        {
            return Ok(Arc::clone(metadata));
        }
        let metadata = ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                let reason = error_chain(&e);
                tracing::warn!(issuer = %self.issuer.as_str(), error = %reason, "oidc discovery failed");
                OidcError::Unavailable(reason)
            })?;
        let metadata = Arc::new(metadata);
        *slot = Some((Instant::now(), Arc::clone(&metadata)));
        Ok(metadata)
    }

    fn client(
        &self,
        metadata: &ProviderMetadataWithLogout,
        redirect: &str,
    ) -> Result<RelyingParty, OidcError> {
        let secret = self.config.client_secret.expose();
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| OidcError::Unavailable(format!("redirect URI: {e}")))?;
        Ok(RelyingParty::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            (!secret.is_empty()).then(|| ClientSecret::new(secret.to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending
            .lock()
            .expect("pending sign-ins lock is never poisoned: no panics while held")
    }

    /// Starts a sign-in: the provider's authorization URL (PKCE, state and nonce), and the value
    /// of the cookie that binds the sign-in to this browser.
    pub(crate) async fn begin(
        &self,
        address: Option<std::net::IpAddr>,
        redirect: &str,
        next: &str,
    ) -> Result<Started, OidcError> {
        let metadata = self.metadata(false).await?;
        let client = self.client(&metadata, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.config.scope_list().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.to_owned()));
        }
        let (url, state, nonce) = request.url();
        let binding = auth::new_secret("");
        let mut pending = self.pending();
        pending.retain(|_, p| p.started.elapsed() < PENDING_TTL);
        let from_here = pending.values().filter(|p| p.address == address).count();
        if pending.len() >= PENDING_MAX || from_here >= PENDING_PER_ADDRESS {
            return Err(OidcError::Busy);
        }
        pending.insert(
            state.secret().clone(),
            Pending {
                address,
                binding: auth::secret_hash(&binding),
                nonce,
                verifier,
                redirect: redirect.to_owned(),
                next: next.to_owned(),
                started: Instant::now(),
            },
        );
        Ok(Started {
            url: url.to_string(),
            binding,
        })
    }

    /// Finishes a sign-in the provider sent back: the `state` is taken (so it never serves twice)
    /// and must belong to this browser; then the code is exchanged and the ID token checked.
    pub(crate) async fn finish(
        &self,
        back: &Callback,
        binding: Option<&str>,
    ) -> Result<Identity, OidcError> {
        let pending = self.pending().remove(&back.state).ok_or(OidcError::State)?;
        let ours = binding.is_some_and(|b| auth::secret_hash(b) == pending.binding);
        if !ours || pending.started.elapsed() >= PENDING_TTL {
            return Err(OidcError::State);
        }
        if !back.error.is_empty() {
            let reason = if back.error_description.is_empty() {
                back.error.clone()
            } else {
                format!("{}: {}", back.error, back.error_description)
            };
            return Err(OidcError::Denied(reason));
        }
        if back.code.is_empty() {
            return Err(OidcError::Refused("no authorization code".into()));
        }
        let metadata = self.metadata(false).await?;
        let client = self.client(&metadata, &pending.redirect)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(back.code.clone()))
            .map_err(|e| OidcError::Unavailable(e.to_string()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::Request(e) => OidcError::Unavailable(error_chain(&e)),
                e => OidcError::Refused(format!("token endpoint: {}", error_chain(&e))),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| OidcError::Refused("no ID token".into()))?;
        // A key the cached set lacks: the provider rotated its keys since discovery; read them again.
        let unknown_key = matches!(
            id_token.claims(&client.id_token_verifier(), &pending.nonce),
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey
            ))
        );
        let client = if unknown_key {
            let fresh = self.metadata(true).await?;
            self.client(&fresh, &pending.redirect)?
        } else {
            client
        };
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &pending.nonce)
            .map_err(|e| OidcError::Refused(error_chain(&e)))?;
        // A token answer whose access token is not the one the ID token names was tampered with.
        if let Some(expected) = claims.access_token_hash() {
            let refused = |e: &dyn std::error::Error| OidcError::Refused(e.to_string());
            let alg = id_token.signing_alg().map_err(|e| refused(&e))?;
            let key = id_token.signing_key(&verifier).map_err(|e| refused(&e))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                .map_err(|e| refused(&e))?;
            if actual != *expected {
                return Err(OidcError::Refused("access token hash mismatch".into()));
            }
        }
        let organization = Some(self.config.organization_claim.as_str())
            .filter(|c| !c.is_empty())
            .and_then(|c| claims.additional_claims().claims.get(c))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|n| n.as_str().to_owned()));
        Ok(Identity {
            issuer: claims.issuer().as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            name,
            organization,
            next: pending.next,
        })
    }

    /// The provider's sign-out URL (RP-initiated logout), when its discovery names one.
    pub(crate) async fn end_session_url(&self, post_logout: &str) -> Option<String> {
        let metadata = self.metadata(false).await.ok()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.config.client_id.clone()));
        if let Ok(back) = PostLogoutRedirectUrl::new(post_logout.to_owned()) {
            request = request.set_post_logout_redirect_uri(back);
        }
        Some(request.http_get_url().to_string())
    }
}
