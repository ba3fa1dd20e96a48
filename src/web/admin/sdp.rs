//! The SDP connection: address, deployment, credentials, poll interval and webhook secret, with a
//! connection test that goes through the running client. The fields come from the console-settings
//! table ([`ConsoleKey`]); what the file or environment fixes shows read-only.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::Value;

use super::AdminPage;
use crate::config::{ConfigError, ConsoleKey, ValueKind, deployment_name};
use crate::service::AppState;
use crate::service::sync::Check;
use crate::settings::{self, ConsoleSdp};
use crate::web::{FormErrors, Page, PageError, see_other};

type State = web::Data<AppState>;

/// A connection setting as the form shows it.
pub(super) struct Field {
    pub key: &'static str,
    pub value: String,
    /// Where the configuration fixes it, when it does.
    pub fixed: Option<String>,
    pub secret: bool,
    /// A secret is set (its value is never shown).
    pub set: bool,
}

/// A connection test result, in the page's language.
pub(super) struct CheckLine {
    pub ok: bool,
    pub label: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin_sdp.html")]
struct SdpPage<'a> {
    page: &'a Page,
    fields: Vec<Field>,
    deployment: &'static str,
    deployment_fixed: Option<String>,
    webhook_url: String,
    running: bool,
    checks: Vec<CheckLine>,
    errors: FormErrors,
}

/// The connection keys the form edits as text (the deployment is a choice of its own).
fn connection_keys() -> impl Iterator<Item = ConsoleKey> {
    ConsoleKey::ALL
        .into_iter()
        .filter(|k| !k.is_mapping() && k.kind() != ValueKind::Deployment)
}

fn fields(state: &AppState) -> Vec<Field> {
    let sdp = state.sync.sdp();
    connection_keys()
        .map(|key| {
            let value = key.get(&sdp);
            let text = match &value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let secret = key.kind() == ValueKind::Secret;
            Field {
                key: key.field(),
                set: secret && !text.is_empty(),
                value: if secret { String::new() } else { text },
                fixed: state.config.fixed.get(&key.key()).cloned(),
                secret,
            }
        })
        .collect()
}

fn webhook_url(state: &AppState, req: &HttpRequest) -> String {
    let public = state.config.server.public_url.trim_end_matches('/');
    let base = if public.is_empty() {
        let client = crate::http::client::Client::of(req);
        format!("{}://{}", client.scheme(), client.host)
    } else {
        public.to_owned()
    };
    format!("{base}/api/v1/hooks/sdp")
}

fn sdp_page<'a>(
    page: &'a Page,
    state: &AppState,
    req: &HttpRequest,
    checks: Vec<CheckLine>,
    errors: FormErrors,
) -> SdpPage<'a> {
    SdpPage {
        page,
        fields: fields(state),
        deployment: deployment_name(state.sync.sdp().deployment),
        deployment_fixed: state
            .config
            .fixed
            .get(&ConsoleKey::Deployment.key())
            .cloned(),
        webhook_url: webhook_url(state, req),
        running: state.sync.is_running(),
        checks,
        errors,
    }
}

pub(super) async fn form(admin: AdminPage, req: HttpRequest, state: State) -> HttpResponse {
    let page = &admin.page;
    page.render(&sdp_page(
        page,
        &state,
        &req,
        Vec::new(),
        FormErrors::default(),
    ))
}

/// A configuration error as a form error on its field.
pub(super) fn config_error(page: &Page, e: &ConfigError) -> FormErrors {
    let mut errors = FormErrors {
        summary: Some(page.t("error-invalid-field")),
        ..FormErrors::default()
    };
    match e {
        ConfigError::Invalid { key, message } => {
            let field = key
                .trim_start_matches("sdp.")
                .trim_start_matches("mapping.");
            errors.fields.insert(field.to_owned(), message.clone());
        }
        other => errors.summary = Some(other.to_string()),
    }
    errors
}

pub(super) async fn save(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let form: BTreeMap<String, String> = page.submitted(&req, &body)?;
    let mut saved = settings::load(&state.store, &state.secret_key).map_err(page.store())?;
    let before = saved.clone();
    let mut errors = FormErrors::default();
    for key in ConsoleKey::ALL.into_iter().filter(|k| !k.is_mapping()) {
        let Some(given) = form.get(key.field()).map(|v| v.trim()) else {
            continue;
        };
        let value = match key.kind() {
            // An empty secret field keeps the stored secret.
            ValueKind::Secret if given.is_empty() => continue,
            ValueKind::Text if key == ConsoleKey::BaseUrl => given.trim_end_matches('/'),
            _ => given,
        };
        if let Err(message) = saved.set(key, &Value::String(value.to_owned())) {
            let message = match key.kind() {
                ValueKind::Seconds => page.t("admin-whole-seconds"),
                _ => message,
            };
            errors.fields.insert(key.field().to_owned(), message);
        }
    }
    require_credential_on_new_address(page, &state, &form, &before, &mut saved, &mut errors);
    if !errors.fields.is_empty() {
        errors.summary = Some(page.t("error-invalid-field"));
        let body = sdp_page(page, &state, &req, Vec::new(), errors);
        return Ok(page.render_status(StatusCode::UNPROCESSABLE_ENTITY, &body));
    }
    let sdp = settings::effective(&state.config, &saved);
    if let Err(e) = settings::validate(&state.config, &sdp) {
        let body = sdp_page(page, &state, &req, Vec::new(), config_error(page, &e));
        return Ok(page.render_status(StatusCode::UNPROCESSABLE_ENTITY, &body));
    }
    let changed: Vec<&str> = before
        .changed_keys(&saved)
        .into_iter()
        .map(ConsoleKey::field)
        .collect();
    put_in_force(
        &admin,
        &state,
        &saved,
        sdp,
        "sdp.saved",
        &changed.join(", "),
    )
    .await?;
    Ok(see_other("/admin/sdp", Some("sdp-saved"), &req))
}

/// The SDP credentials, which go to the SDP address with every call.
const CREDENTIALS: [ConsoleKey; 3] = [
    ConsoleKey::ApiKey,
    ConsoleKey::OauthClientSecret,
    ConsoleKey::OauthRefreshToken,
];

/// A saved credential is never sent to a new SDP address (a mistyped or hostile one would receive
/// it): when the address changes, the form must carry a credential again, and saved ones it does
/// not carry are forgotten.
fn require_credential_on_new_address(
    page: &Page,
    state: &AppState,
    form: &BTreeMap<String, String>,
    before: &ConsoleSdp,
    saved: &mut ConsoleSdp,
    errors: &mut FormErrors,
) {
    let old = settings::effective(&state.config, before).base_url;
    let after = settings::effective(&state.config, saved);
    let held = CREDENTIALS.into_iter().any(|k| before.has(k));
    if old.is_empty() || old.eq_ignore_ascii_case(&after.base_url) || !held {
        return;
    }
    let given = |k: ConsoleKey| form.get(k.field()).is_some_and(|v| !v.trim().is_empty());
    if CREDENTIALS.into_iter().any(given) {
        for key in CREDENTIALS.into_iter().filter(|k| !given(*k)) {
            saved.remove(key);
        }
    } else {
        let field = if after.deployment == crate::config::Deployment::Cloud {
            ConsoleKey::OauthRefreshToken
        } else {
            ConsoleKey::ApiKey
        };
        errors
            .fields
            .insert(field.field().to_owned(), page.t("admin-reenter-credential"));
    }
}

/// Saves the console's settings, records who did it, and puts them in force.
pub(super) async fn put_in_force(
    admin: &AdminPage,
    state: &AppState,
    saved: &ConsoleSdp,
    sdp: crate::config::SdpConfig,
    action: &str,
    detail: &str,
) -> Result<(), PageError> {
    let page = &admin.page;
    let who = &admin.admin().user.email;
    settings::save(&state.store, &state.secret_key, saved).map_err(page.store())?;
    state
        .store
        .audit(who, action, detail)
        .map_err(page.store())?;
    state.store.durable().await.map_err(page.store())?;
    state.sync.apply(sdp).await.map_err(|e| {
        tracing::error!(error = %e, "the new SDP settings could not be put in force");
        PageError::internal(page.tr)
    })?;
    tracing::info!(admin = %who, action, detail, "console settings saved");
    Ok(())
}

fn check_line(page: &Page, check: &Check) -> CheckLine {
    let line = |label: &str, detail: String| CheckLine {
        ok: check.ok(),
        label: page.t(label),
        detail,
    };
    match check {
        Check::NotConfigured => line("check-configured", page.t("check-no-url")),
        Check::Auth(Ok(())) => line("check-auth", page.t("check-auth-ok")),
        Check::Auth(Err(e)) => line("check-auth", e.clone()),
        Check::Statuses(names) => line("check-statuses", names.join(", ")),
        Check::Read(Ok(Some(id))) => line("check-read", page.t1("check-read-ok", "id", id)),
        Check::Read(Ok(None)) => line("check-read", page.t("check-read-none")),
        Check::Read(Err(e)) => line("check-read", e.clone()),
    }
}

/// A form that carries nothing but its CSRF token.
#[derive(serde::Deserialize)]
pub(super) struct NoFields {}

pub(super) async fn test(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let _: NoFields = page.submitted(&req, &body)?;
    let checks = state.sync.test_connection().await;
    let passed = checks.iter().all(Check::ok);
    state
        .store
        .audit(
            &admin.admin().user.email,
            "sdp.tested",
            if passed { "passed" } else { "failed" },
        )
        .map_err(page.store())?;
    let lines = checks.iter().map(|c| check_line(page, c)).collect();
    Ok(page.render(&sdp_page(page, &state, &req, lines, FormErrors::default())))
}
