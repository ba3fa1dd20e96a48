//! A small `OpenID Connect` provider on 127.0.0.1 for the single sign-on tests: discovery, a key set,
//! an authorize endpoint that sends the browser straight back with a code for the configured user,
//! and a token endpoint that checks the code, the client and the PKCE verifier and answers with an
//! ID token signed (ES256) by a key generated here. A test sets the claims, or has the provider
//! sign a token that must be refused (wrong issuer, wrong audience, expired, bad signature).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use deskbridge::config::{Config, Secret};

pub const CLIENT_ID: &str = "deskbridge-portal";
pub const CLIENT_SECRET: &str = "provider-client-secret";

/// What the next token answer gets wrong on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    None,
    WrongIssuer,
    WrongAudience,
    Expired,
    /// Signed by another key that claims the published key's id.
    BadSignature,
}

struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

struct State {
    issuer: String,
    /// The signed-in user's claims (`sub`, `email`, `name`, ...).
    user: serde_json::Map<String, Value>,
    tamper: Tamper,
    /// The authorize endpoint answers `error=access_denied`.
    deny: bool,
    grants: HashMap<String, Grant>,
    key: KeyPair,
    /// Names `key` in the key set and in each token's header.
    kid: String,
    other_key: KeyPair,
}

pub struct OidcProvider {
    pub issuer: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl OidcProvider {
    #[expect(
        clippy::unused_async,
        reason = "it spawns on the caller's runtime; async keeps that requirement visible"
    )]
    pub async fn start() -> OidcProvider {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let issuer = format!("http://{addr}/realms/test");
        let generate = || KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        let state = Arc::new(Mutex::new(State {
            issuer: issuer.clone(),
            user: serde_json::Map::new(),
            tamper: Tamper::None,
            deny: false,
            grants: HashMap::new(),
            key: generate(),
            kid: "key-1".into(),
            other_key: generate(),
        }));
        let data = web::Data::from(Arc::clone(&state));
        let handle = fake_sdp::spawn_server(listener, move |cfg| {
            cfg.app_data(data.clone());
            cfg.default_service(web::to(dispatch));
        });
        OidcProvider {
            issuer,
            state,
            handle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("provider state")
    }

    /// The user the authorize endpoint signs in from now on.
    pub fn sign_in_as(&self, claims: &Value) {
        self.lock()
            .user
            .clone_from(claims.as_object().expect("claims object"));
    }

    pub fn tamper(&self, tamper: Tamper) {
        self.lock().tamper = tamper;
    }

    /// Signs with a new key from now on, published under a new id (the old one is withdrawn).
    pub fn rotate_key(&self) {
        let mut s = self.lock();
        s.key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        s.kid = format!("key-{}", uuid::Uuid::new_v4());
    }

    pub fn deny(&self, deny: bool) {
        self.lock().deny = deny;
    }

    /// Points deskbridge's `[oidc]` at this provider.
    pub fn configure(&self, config: &mut Config) {
        config.oidc.issuer_url.clone_from(&self.issuer);
        config.oidc.client_id = CLIENT_ID.into();
        config.oidc.client_secret = Secret::new(CLIENT_SECRET.into());
        config.oidc.button_label = "Cloudeka ID".into();
    }

    /// The same for a `deskbridge` process, as environment variables; customers sign in only here.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("ISSUER_URL", self.issuer.as_str()),
            ("CLIENT_ID", CLIENT_ID),
            ("CLIENT_SECRET", CLIENT_SECRET),
            ("BUTTON_LABEL", "Cloudeka ID"),
            ("CUSTOMERS_SSO_ONLY", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (format!("DESKBRIDGE__OIDC__{k}"), v.to_owned()))
        .collect()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn b64_json(value: &Value) -> String {
    B64.encode(serde_json::to_vec(value).expect("json"))
}

/// An ASN.1 DER ECDSA signature (what rcgen gives) as JWS wants it: r and s, 32 bytes each.
fn jws_signature(der: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> (&[u8], &[u8]) {
        assert_eq!(bytes[0], 0x02, "an INTEGER");
        let len = usize::from(bytes[1]);
        (&bytes[2..2 + len], &bytes[2 + len..])
    }
    assert_eq!(der[0], 0x30, "a SEQUENCE");
    let (r, rest) = integer(&der[2..]);
    let (s, _) = integer(rest);
    let mut out = Vec::with_capacity(64);
    for part in [r, s] {
        let part = &part[part.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0, 32 - part.len()));
        out.extend_from_slice(part);
    }
    out
}

fn sign(key: &KeyPair, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    let input = format!("{}.{}", b64_json(&header), b64_json(claims));
    let der = key.sign(input.as_bytes()).expect("sign");
    format!("{input}.{}", B64.encode(jws_signature(&der)))
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    serde_urlencoded::from_str(req.query_string()).unwrap_or_default()
}

async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let mut s = state.lock().expect("provider state");
    let path = req.path().trim_start_matches("/realms/test");
    match path {
        "/.well-known/openid-configuration" => HttpResponse::Ok().json(json!({
            "issuer": s.issuer,
            "authorization_endpoint": format!("{}/authorize", s.issuer),
            "token_endpoint": format!("{}/token", s.issuer),
            "jwks_uri": format!("{}/jwks", s.issuer),
            "end_session_endpoint": format!("{}/logout", s.issuer),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })),
        "/jwks" => {
            // The uncompressed point: 0x04, then x and y.
            let point = s.key.public_key_raw();
            HttpResponse::Ok().json(json!({"keys": [{
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": s.kid,
                "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
            }]}))
        }
        "/authorize" => authorize(&mut s, &query(&req)),
        "/token" => token(&mut s, &req, &body),
        _ => HttpResponse::NotFound().finish(),
    }
}

fn authorize(s: &mut State, q: &HashMap<String, String>) -> HttpResponse {
    let field = |k: &str| q.get(k).cloned().unwrap_or_default();
    let ok = field("client_id") == CLIENT_ID
        && field("response_type") == "code"
        && field("code_challenge_method") == "S256"
        && field("scope").split(' ').any(|s| s == "openid")
        && !field("state").is_empty()
        && !field("nonce").is_empty();
    if !ok {
        return HttpResponse::BadRequest().body(format!("bad authorization request: {q:?}"));
    }
    let redirect = field("redirect_uri");
    let state = field("state");
    let answer = if s.deny {
        serde_urlencoded::to_string([
            ("error", "access_denied"),
            ("error_description", "the user said no"),
            ("state", &state),
        ])
    } else {
        let code = format!("code-{}", uuid::Uuid::new_v4());
        s.grants.insert(
            code.clone(),
            Grant {
                nonce: field("nonce"),
                challenge: field("code_challenge"),
                redirect_uri: redirect.clone(),
            },
        );
        serde_urlencoded::to_string([("code", code.as_str()), ("state", &state)])
    }
    .expect("query");
    HttpResponse::Found()
        .insert_header(("Location", format!("{redirect}?{answer}")))
        .finish()
}

fn client_authenticated(req: &HttpRequest, form: &HashMap<String, String>) -> bool {
    let basic = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let expected = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    basic.is_some_and(|b| b == expected)
        || (form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET))
}

fn token(s: &mut State, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let refuse = |why: &str| {
        HttpResponse::BadRequest().json(json!({"error": "invalid_grant", "error_description": why}))
    };
    if !client_authenticated(req, &form) {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    let Some(grant) = form.get("code").and_then(|c| s.grants.remove(c)) else {
        return refuse("unknown or used code");
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return refuse("redirect_uri differs");
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if B64.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return refuse("PKCE verifier does not match");
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = s.user.clone();
    let issuer = match s.tamper {
        Tamper::WrongIssuer => "http://127.0.0.1:9/realms/other".to_owned(),
        _ => s.issuer.clone(),
    };
    let audience = match s.tamper {
        Tamper::WrongAudience => "another-client",
        _ => CLIENT_ID,
    };
    let (iat, exp) = match s.tamper {
        Tamper::Expired => (now - 3600, now - 600),
        _ => (now, now + 300),
    };
    for (k, v) in [
        ("iss", json!(issuer)),
        ("aud", json!(audience)),
        ("iat", json!(iat)),
        ("exp", json!(exp)),
        ("nonce", json!(grant.nonce)),
    ] {
        claims.insert(k.into(), v);
    }
    let key = if s.tamper == Tamper::BadSignature {
        &s.other_key
    } else {
        &s.key
    };
    let id_token = sign(key, &s.kid, &Value::Object(claims));
    HttpResponse::Ok().json(json!({
        "access_token": format!("access-{}", uuid::Uuid::new_v4()),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
}
