//! The admin console (`/admin`): first-run setup, the SDP connection and its test, the mapping
//! editor fed by SDP's own lists, users and API tokens, sync health with dead letters, a per-ticket
//! sync log and the audit log. Settings saved here take effect at once (`AppState::apply_sdp`);
//! keys fixed by the configuration file or environment show read-only with their source.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::{Value, json};

use super::format::{self, When, status_key};
use super::{FormErrors, Page, PageError, see_other};
use crate::config::{ConfigError, Deployment, MappingConfig, SdpConfig};
use crate::domain::{Role, Status, UserId};
use crate::error::ApiError;
use crate::http::AppState;
use crate::http::api::admin::{
    CreateUserBody, SyncView, create_account, handle_dead_letter, sync_view,
};
use crate::http::api::auth::{Credentials, SetupBody, create_first_admin, issue, start_session};
use crate::http::extract::Caller;
use crate::sdp::SdpClient;
use crate::settings::{self, ConsoleSdp};
use crate::store::OutboxEntry;
use crate::store::users::TokenKind;

type State = web::Data<AppState>;

/// How long the console waits for SDP when it reads lists or tests the connection.
const SDP_WAIT: Duration = Duration::from_secs(15);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(overview))
        .route("/admin/setup", web::get().to(setup_form))
        .route("/admin/setup", web::post().to(setup))
        .route("/admin/sdp", web::get().to(sdp_form))
        .route("/admin/sdp", web::post().to(sdp_save))
        .route("/admin/sdp/test", web::post().to(sdp_test))
        .route("/admin/mapping", web::get().to(mapping_form))
        .route("/admin/mapping", web::post().to(mapping_save))
        .route("/admin/users", web::get().to(users))
        .route("/admin/users", web::post().to(user_create))
        .route("/admin/users/{id}", web::post().to(user_action))
        .route("/admin/audit", web::get().to(audit))
        .route("/admin/sync/run", web::post().to(sync_run))
        .route("/admin/dead-letters/{seq}", web::post().to(dead_letter))
        .route("/admin/find", web::get().to(find_ticket))
        .route("/admin/tickets/{number}", web::get().to(ticket_log));
}

/// The signed-in admin; before the first admin exists, the way to the setup page.
fn admin<'a>(page: &'a Page, state: &AppState) -> Result<&'a Caller, PageError> {
    match &page.caller {
        Some(c) if c.is_admin() => Ok(c),
        Some(_) => Err(PageError::new(
            page.tr,
            StatusCode::FORBIDDEN,
            "error-admins-only",
        )),
        None if setup_open(state) => Err(PageError::Redirect("/admin/setup".into())),
        None => Err(PageError::SignIn {
            next: page.here.clone(),
        }),
    }
}

fn setup_open(state: &AppState) -> bool {
    state
        .setup_token
        .lock()
        .expect("setup lock is never poisoned")
        .is_some()
}

fn api(page: &Page) -> impl Fn(ApiError) -> PageError + '_ {
    move |e| PageError::from_api(page.tr, &e)
}

fn store_err(page: &Page) -> impl Fn(crate::store::StoreError) -> PageError + '_ {
    move |e| PageError::from_api(page.tr, &e.into())
}

// ---- overview: sync health ----

pub struct DeadLetter {
    pub seq: u64,
    pub number: String,
    pub op: String,
    pub error: String,
    pub attempts: u32,
    pub at: When,
}

fn op_name(op: &crate::store::OutboxOp) -> &'static str {
    use crate::store::OutboxOp;
    match op {
        OutboxOp::CreateRequest => "create request",
        OutboxOp::AddNote { .. } => "add note",
        OutboxOp::AddAttachment { .. } => "upload file",
        OutboxOp::Close => "close",
        OutboxOp::Reopen { .. } => "reopen",
    }
}

fn dead_letters(state: &AppState, entries: &[OutboxEntry]) -> Vec<DeadLetter> {
    entries
        .iter()
        .map(|e| DeadLetter {
            seq: e.seq,
            number: state
                .store
                .ticket(e.ticket)
                .ok()
                .flatten()
                .map_or_else(|| format!("#{}", e.ticket.0), |t| t.number),
            op: op_name(&e.op).to_owned(),
            error: e.last_error.clone().unwrap_or_default(),
            attempts: e.attempts,
            at: format::when(e.at),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin_overview.html")]
struct Overview<'a> {
    page: &'a Page,
    view: SyncView,
    last_poll: Option<When>,
    dead: Vec<DeadLetter>,
    tickets: u64,
}

async fn overview(page: Page, state: State) -> Result<HttpResponse, PageError> {
    admin(&page, &state)?;
    let view = sync_view(&state).await.map_err(api(&page))?;
    let dead = dead_letters(&state, &view.dead_letters);
    let last_poll = view
        .stats
        .as_ref()
        .and_then(|s| s.last_poll_ok)
        .map(format::when);
    let tickets = state.store.ticket_count().map_err(store_err(&page))?;
    Ok(page.render(&Overview {
        page: &page,
        view,
        last_poll,
        dead,
        tickets,
    }))
}

async fn sync_run(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    admin(&page, &state)?;
    let _: BTreeMap<String, String> = page.submitted(&req, &body)?;
    let flash = match state.sync() {
        Some(sync) => {
            sync.do_send(crate::actors::sync::SyncNow);
            "sync-started"
        }
        None => "sync-off",
    };
    Ok(see_other("/admin", Some(flash), &req))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeadLetterForm {
    csrf: String,
    action: String,
}

async fn dead_letter(
    page: Page,
    req: HttpRequest,
    state: State,
    seq: web::Path<u64>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let caller = admin(&page, &state)?;
    let form: DeadLetterForm = page.submitted(&req, &body)?;
    let retry = form.action == "retry";
    handle_dead_letter(&state, caller, *seq, retry)
        .await
        .map_err(api(&page))?;
    let flash = if retry {
        "dead-letter-retried"
    } else {
        "dead-letter-discarded"
    };
    Ok(see_other("/admin", Some(flash), &req))
}

// ---- first-run setup ----

#[derive(Template)]
#[template(path = "admin_setup.html")]
struct Setup<'a> {
    page: &'a Page,
    email: String,
    name: String,
    errors: FormErrors,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SetupForm {
    csrf: String,
    token: String,
    email: String,
    name: String,
    password: String,
}

async fn setup_form(page: Page, req: HttpRequest, state: State) -> Result<HttpResponse, PageError> {
    if !setup_open(&state) {
        return Ok(see_other("/admin", None, &req));
    }
    Ok(page.render(&Setup {
        page: &page,
        email: String::new(),
        name: String::new(),
        errors: FormErrors::default(),
    }))
}

async fn setup(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form: SetupForm = page.submitted(&req, &body)?;
    let body = SetupBody {
        token: form.token,
        email: form.email.clone(),
        name: form.name.clone(),
        password: form.password.clone(),
    };
    match create_first_admin(&state, body).await {
        Ok(user) => {
            let credentials = Credentials {
                email: user.email.clone(),
                password: form.password,
            };
            let (_, session) = start_session(&state, &req, credentials)
                .await
                .map_err(api(&page))?;
            let mut response = see_other("/admin/sdp", Some("setup-done"), &req);
            response
                .add_cookie(&session)
                .map_err(|_| PageError::internal(page.tr))?;
            Ok(response)
        }
        Err(e) if e.body.code == "setup-done" => Ok(see_other("/sign-in?next=/admin", None, &req)),
        Err(e) => Ok(page.render_status(
            e.status,
            &Setup {
                page: &page,
                email: form.email,
                name: form.name,
                errors: FormErrors::from_api(page.tr, &e),
            },
        )),
    }
}

// ---- the SDP connection ----

pub struct Field {
    pub key: &'static str,
    pub value: String,
    /// Where the configuration fixes it, when it does.
    pub fixed: Option<String>,
    pub secret: bool,
    /// A secret is set (its value is never shown).
    pub set: bool,
}

pub struct Check {
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
    checks: Vec<Check>,
    errors: FormErrors,
}

const SDP_TEXT: [&str; 4] = [
    "base_url",
    "oauth_client_id",
    "oauth_accounts_url",
    "poll_interval_secs",
];
const SDP_SECRETS: [&str; 4] = [
    "api_key",
    "oauth_client_secret",
    "oauth_refresh_token",
    "webhook_secret",
];

fn sdp_fields(state: &AppState) -> Vec<Field> {
    let sdp = state.sdp();
    let fixed = |key: &str| state.config.fixed.get(&format!("sdp.{key}")).cloned();
    let mut fields = Vec::new();
    for key in SDP_TEXT {
        let value = match key {
            "base_url" => sdp.base_url.clone(),
            "oauth_client_id" => sdp.oauth_client_id.clone(),
            "oauth_accounts_url" => sdp.oauth_accounts_url.clone(),
            _ => sdp.poll_interval_secs.to_string(),
        };
        fields.push(Field {
            key,
            value,
            fixed: fixed(key),
            secret: false,
            set: false,
        });
    }
    for key in SDP_SECRETS {
        let set = !match key {
            "api_key" => sdp.api_key.expose(),
            "oauth_client_secret" => sdp.oauth_client_secret.expose(),
            "oauth_refresh_token" => sdp.oauth_refresh_token.expose(),
            _ => sdp.webhook_secret.expose(),
        }
        .is_empty();
        fields.push(Field {
            key,
            value: String::new(),
            fixed: fixed(key),
            secret: true,
            set,
        });
    }
    fields
}

fn deployment_str(d: Deployment) -> &'static str {
    match d {
        Deployment::OnPrem => "on_prem",
        Deployment::Cloud => "cloud",
    }
}

fn webhook_url(state: &AppState, req: &HttpRequest) -> String {
    let base = if state.config.server.public_url.is_empty() {
        let info = req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    } else {
        state
            .config
            .server
            .public_url
            .trim_end_matches('/')
            .to_owned()
    };
    format!("{base}/api/v1/hooks/sdp")
}

fn sdp_page<'a>(
    page: &'a Page,
    state: &AppState,
    req: &HttpRequest,
    checks: Vec<Check>,
    errors: FormErrors,
) -> SdpPage<'a> {
    let sdp = state.sdp();
    SdpPage {
        page,
        fields: sdp_fields(state),
        deployment: deployment_str(sdp.deployment),
        deployment_fixed: state.config.fixed.get("sdp.deployment").cloned(),
        webhook_url: webhook_url(state, req),
        running: state.sync().is_some(),
        checks,
        errors,
    }
}

async fn sdp_form(page: Page, req: HttpRequest, state: State) -> Result<HttpResponse, PageError> {
    admin(&page, &state)?;
    Ok(page.render(&sdp_page(
        &page,
        &state,
        &req,
        Vec::new(),
        FormErrors::default(),
    )))
}

/// A config error as a form error on its field (the key without `sdp.`).
fn config_error(page: &Page, e: &ConfigError) -> FormErrors {
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

async fn sdp_save(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let caller = admin(&page, &state)?;
    let form: BTreeMap<String, String> = page.submitted(&req, &body)?;
    let mut saved = settings::load(&state.store).map_err(store_err(&page))?;
    let before = saved.clone();
    let given = |key: &str| form.get(key).map(|v| v.trim().to_owned());
    for key in SDP_TEXT {
        let Some(value) = given(key) else { continue };
        match key {
            "base_url" => saved.base_url = Some(value.trim_end_matches('/').to_owned()),
            "oauth_client_id" => saved.oauth_client_id = Some(value),
            "oauth_accounts_url" => saved.oauth_accounts_url = Some(value),
            _ => {
                let Ok(n) = value.parse::<u64>() else {
                    let mut errors = FormErrors {
                        summary: Some(page.t("error-invalid-field")),
                        ..FormErrors::default()
                    };
                    errors
                        .fields
                        .insert(key.into(), page.t("admin-whole-seconds"));
                    let body = sdp_page(&page, &state, &req, Vec::new(), errors);
                    return Ok(page.render_status(StatusCode::UNPROCESSABLE_ENTITY, &body));
                };
                saved.poll_interval_secs = Some(n);
            }
        }
    }
    for key in SDP_SECRETS {
        // An empty secret field keeps the stored secret.
        let Some(value) = given(key).filter(|v| !v.is_empty()) else {
            continue;
        };
        let slot = match key {
            "api_key" => &mut saved.api_key,
            "oauth_client_secret" => &mut saved.oauth_client_secret,
            "oauth_refresh_token" => &mut saved.oauth_refresh_token,
            _ => &mut saved.webhook_secret,
        };
        *slot = Some(value);
    }
    if let Some(d) = given("deployment") {
        saved.deployment = Some(if d == "cloud" {
            Deployment::Cloud
        } else {
            Deployment::OnPrem
        });
    }
    let sdp = settings::effective(&state.config, &saved);
    if let Err(e) = settings::validate(&state.config, &sdp) {
        let body = sdp_page(&page, &state, &req, Vec::new(), config_error(&page, &e));
        return Ok(page.render_status(StatusCode::UNPROCESSABLE_ENTITY, &body));
    }
    let changed = settings::changed_keys(&before, &saved).join(", ");
    apply(&page, &state, caller, &saved, sdp, "sdp.saved", &changed).await?;
    Ok(see_other("/admin/sdp", Some("sdp-saved"), &req))
}

/// Saves the console's settings, records who did it, and puts them in force.
async fn apply(
    page: &Page,
    state: &AppState,
    caller: &Caller,
    saved: &ConsoleSdp,
    sdp: SdpConfig,
    action: &str,
    detail: &str,
) -> Result<(), PageError> {
    settings::save(&state.store, saved).map_err(store_err(page))?;
    state
        .store
        .audit(&caller.user.email, action, detail)
        .map_err(store_err(page))?;
    state.store.durable().await.map_err(store_err(page))?;
    state.apply_sdp(sdp).await.map_err(|e| {
        tracing::error!(error = %e, "the new SDP settings could not be put in force");
        PageError::internal(page.tr)
    })?;
    tracing::info!(admin = %caller.user.email, action, detail, "console settings saved");
    Ok(())
}

async fn with_deadline<T>(
    call: impl std::future::Future<Output = Result<T, crate::sdp::SdpError>>,
) -> Result<T, String> {
    match tokio::time::timeout(SDP_WAIT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", SDP_WAIT.as_secs())),
    }
}

/// What works with the settings in force: signing in (reading a list), the statuses list, reading a request.
async fn connection_checks(page: &Page, sdp: &SdpConfig) -> Vec<Check> {
    let mut checks = Vec::new();
    let check = |ok: bool, key: &str, detail: String| Check {
        ok,
        label: page.t(key),
        detail,
    };
    if !sdp.enabled() {
        checks.push(check(false, "check-configured", page.t("check-no-url")));
        return checks;
    }
    let client = match SdpClient::new(sdp) {
        Ok(c) => c,
        Err(e) => {
            checks.push(check(false, "check-configured", e.to_string()));
            return checks;
        }
    };
    match with_deadline(client.lookups("statuses")).await {
        Ok(statuses) => {
            checks.push(check(true, "check-auth", page.t("check-auth-ok")));
            let names: Vec<String> = statuses
                .iter()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect();
            checks.push(check(!names.is_empty(), "check-statuses", names.join(", ")));
        }
        Err(e) => {
            checks.push(check(false, "check-auth", e));
            return checks;
        }
    }
    let list_info =
        json!({"row_count": 1, "start_index": 1, "sort_field": "id", "sort_order": "desc"});
    match with_deadline(client.list_requests(&list_info)).await {
        Ok(page_of) => match page_of.rows.first() {
            Some(first) => match with_deadline(client.get_request(&first.id)).await {
                Ok(r) => checks.push(check(
                    true,
                    "check-read",
                    page.t1("check-read-ok", "id", r.display_id.unwrap_or(r.id)),
                )),
                Err(e) => checks.push(check(false, "check-read", e)),
            },
            None => checks.push(check(true, "check-read", page.t("check-read-none"))),
        },
        Err(e) => checks.push(check(false, "check-read", e)),
    }
    checks
}

async fn sdp_test(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let caller = admin(&page, &state)?;
    let _: BTreeMap<String, String> = page.submitted(&req, &body)?;
    let checks = connection_checks(&page, &state.sdp()).await;
    let passed = checks.iter().all(|c| c.ok);
    state
        .store
        .audit(
            &caller.user.email,
            "sdp.tested",
            if passed { "passed" } else { "failed" },
        )
        .map_err(store_err(&page))?;
    Ok(page.render(&sdp_page(
        &page,
        &state,
        &req,
        checks,
        FormErrors::default(),
    )))
}

// ---- the mapping ----

pub struct Choice {
    pub value: String,
    pub label: String,
}

pub struct MapRow {
    pub name: String,
    pub input: String,
    pub current: String,
}

pub struct NameField {
    pub key: &'static str,
    pub current: String,
    pub choices: Vec<String>,
    pub fixed: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_mapping.html")]
struct MappingPage<'a> {
    page: &'a Page,
    statuses: Vec<MapRow>,
    statuses_fixed: Option<String>,
    portal_statuses: Vec<Choice>,
    names: Vec<NameField>,
    /// Why SDP's lists could not be read; the fields are then free text.
    lists_error: Option<String>,
}

/// SDP's reference lists, by name; empty when SDP cannot be reached.
async fn sdp_lists(sdp: &SdpConfig) -> Result<BTreeMap<&'static str, Vec<String>>, String> {
    if !sdp.enabled() {
        return Err("no SDP base URL is set".into());
    }
    let client = SdpClient::new(sdp).map_err(|e| e.to_string())?;
    let mut lists = BTreeMap::new();
    for path in [
        "statuses",
        "priorities",
        "request_types",
        "categories",
        "request_templates",
    ] {
        let rows: Vec<Value> = with_deadline(client.lookups(path)).await?;
        let names = rows
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_owned))
            .collect();
        lists.insert(path, names);
    }
    Ok(lists)
}

const MAPPING_NAMES: [(&str, &str); 9] = [
    ("request_type_problem_report", "request_types"),
    ("request_type_information_request", "request_types"),
    ("priority_low", "priorities"),
    ("priority_medium", "priorities"),
    ("priority_high", "priorities"),
    ("priority_urgent", "priorities"),
    ("category", "categories"),
    ("template", "request_templates"),
    ("reopen_status", "statuses"),
];

fn mapping_value<'m>(m: &'m mut MappingConfig, key: &str) -> &'m mut String {
    match key {
        "request_type_problem_report" => &mut m.request_type_problem_report,
        "request_type_information_request" => &mut m.request_type_information_request,
        "priority_low" => &mut m.priority_low,
        "priority_medium" => &mut m.priority_medium,
        "priority_high" => &mut m.priority_high,
        "priority_urgent" => &mut m.priority_urgent,
        "category" => &mut m.category,
        "template" => &mut m.template,
        _ => &mut m.reopen_status,
    }
}

async fn mapping_form(page: Page, state: State) -> Result<HttpResponse, PageError> {
    admin(&page, &state)?;
    let sdp = state.sdp();
    let lists = sdp_lists(&sdp).await;
    let mut mapping = sdp.mapping.clone();
    let empty = Vec::new();
    let list = |name: &str| {
        lists
            .as_ref()
            .ok()
            .and_then(|l| l.get(name))
            .unwrap_or(&empty)
            .clone()
    };
    // SDP's statuses first, then any mapped name SDP no longer lists.
    let mut status_names = list("statuses");
    for name in mapping.statuses.keys() {
        if !status_names.contains(name) {
            status_names.push(name.clone());
        }
    }
    let statuses = status_names
        .iter()
        .map(|name| MapRow {
            name: name.clone(),
            input: format!("status:{name}"),
            current: mapping.statuses.get(name).cloned().unwrap_or_default(),
        })
        .collect();
    let names = MAPPING_NAMES
        .iter()
        .map(|(key, list_name)| NameField {
            key,
            current: mapping_value(&mut mapping, key).clone(),
            choices: list(list_name),
            fixed: state
                .config
                .fixed
                .get(&format!("sdp.mapping.{key}"))
                .cloned(),
        })
        .collect();
    let portal_statuses = Status::ALL
        .iter()
        .map(|s| Choice {
            value: s.as_str().to_owned(),
            label: page.t(&status_key(*s)),
        })
        .collect();
    Ok(page.render(&MappingPage {
        page: &page,
        statuses,
        statuses_fixed: state.config.fixed.get("sdp.mapping.statuses").cloned(),
        portal_statuses,
        names,
        lists_error: lists.err(),
    }))
}

async fn mapping_save(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let caller = admin(&page, &state)?;
    let pairs: Vec<(String, String)> = page.submitted(&req, &body)?;
    let form: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut saved = settings::load(&state.store).map_err(store_err(&page))?;
    let mut mapping = state.sdp().mapping.clone();
    let mut statuses = BTreeMap::new();
    for (key, value) in &pairs {
        if let Some(name) = key.strip_prefix("status:") {
            let name = name.trim();
            // An empty choice leaves the status to SDP's own flags (automatic).
            if !name.is_empty() && Status::parse(value).is_some() {
                statuses.insert(name.to_owned(), value.clone());
            }
        }
    }
    mapping.statuses = statuses;
    for (key, _) in MAPPING_NAMES {
        if let Some(value) = form.get(key) {
            value.trim().clone_into(mapping_value(&mut mapping, key));
        }
    }
    saved.mapping = Some(mapping);
    let sdp = settings::effective(&state.config, &saved);
    if let Err(e) = settings::validate(&state.config, &sdp) {
        tracing::warn!(error = %e, "mapping refused");
        return Err(PageError::Shown {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            title: page.t("error-invalid-field"),
            detail: e.to_string(),
            lang: page.tr.lang(),
        });
    }
    let detail = format!("{} statuses mapped", sdp.mapping.statuses.len());
    apply(&page, &state, caller, &saved, sdp, "mapping.saved", &detail).await?;
    Ok(see_other("/admin/mapping", Some("mapping-saved"), &req))
}

// ---- users and tokens ----

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: &'static str,
    pub disabled: bool,
    pub me: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    page: &'a Page,
    rows: Vec<UserRow>,
    new_token: Option<(String, String)>,
    email: String,
    name: String,
    role: String,
    errors: FormErrors,
}

fn role_str(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Admin => "admin",
        Role::Integration => "integration",
    }
}

fn users_page<'a>(
    page: &'a Page,
    state: &AppState,
    caller: &Caller,
) -> Result<UsersPage<'a>, PageError> {
    let mut users = state.store.users().map_err(store_err(page))?;
    users.sort_by(|a, b| a.email.cmp(&b.email));
    let rows = users
        .iter()
        .map(|u| UserRow {
            id: u.id.0.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: role_str(u.role),
            disabled: u.disabled,
            me: u.id == caller.user.id,
        })
        .collect();
    Ok(UsersPage {
        page,
        rows,
        new_token: None,
        email: String::new(),
        name: String::new(),
        role: "customer".into(),
        errors: FormErrors::default(),
    })
}

async fn users(page: Page, state: State) -> Result<HttpResponse, PageError> {
    let caller = admin(&page, &state)?;
    Ok(page.render(&users_page(&page, &state, caller)?))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewUserForm {
    csrf: String,
    email: String,
    name: String,
    password: String,
    role: String,
    organization: String,
}

async fn user_create(
    page: Page,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let caller = admin(&page, &state)?;
    let form: NewUserForm = page.submitted(&req, &body)?;
    let role = match form.role.as_str() {
        "admin" => Role::Admin,
        "integration" => Role::Integration,
        _ => Role::Customer,
    };
    let body = CreateUserBody {
        email: form.email.clone(),
        name: form.name.clone(),
        password: form.password,
        role,
        organization: form.organization,
    };
    match create_account(&state, caller, body).await {
        Ok(_) => Ok(see_other("/admin/users", Some("user-created"), &req)),
        Err(e) => {
            let mut body = users_page(&page, &state, caller)?;
            body.email = form.email;
            body.name = form.name;
            body.role = form.role;
            body.errors = FormErrors::from_api(page.tr, &e);
            Ok(page.render_status(e.status, &body))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserActionForm {
    csrf: String,
    action: String,
    password: String,
}

async fn user_action(
    page: Page,
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let caller = admin(&page, &state)?;
    let form: UserActionForm = page.submitted(&req, &body)?;
    let id = id
        .parse::<uuid::Uuid>()
        .map(UserId)
        .map_err(|_| PageError::not_found(page.tr))?;
    let mut user = state
        .store
        .user(id)
        .map_err(store_err(&page))?
        .ok_or_else(|| PageError::not_found(page.tr))?;
    let mut new_token = None;
    let flash = match form.action.as_str() {
        "disable" | "enable" => {
            if user.id == caller.user.id {
                return Err(PageError::new(
                    page.tr,
                    StatusCode::CONFLICT,
                    "error-self-disable",
                ));
            }
            user.disabled = form.action == "disable";
            state.store.update_user(&user).map_err(store_err(&page))?;
            if user.disabled {
                // A disabled account is signed out everywhere at once.
                state
                    .store
                    .delete_tokens_of(user.id)
                    .map_err(store_err(&page))?;
            }
            if user.disabled {
                "user-disabled"
            } else {
                "user-enabled"
            }
        }
        "password" => {
            let mut v = crate::domain::Validation::default();
            crate::domain::validate::password(&mut v, "password", &form.password);
            if let Err(v) = v.into_result() {
                let mut body = users_page(&page, &state, caller)?;
                body.errors = FormErrors::from_api(page.tr, &v.into());
                return Ok(page.render_status(StatusCode::UNPROCESSABLE_ENTITY, &body));
            }
            let password = form.password.clone();
            user.password_hash = web::block(move || crate::auth::hash_password(&password))
                .await
                .map_err(|_| PageError::internal(page.tr))?;
            state.store.update_user(&user).map_err(store_err(&page))?;
            state
                .store
                .delete_sessions_of(user.id)
                .map_err(store_err(&page))?;
            "password-reset"
        }
        "token" => {
            let issued = issue(&state, &user, TokenKind::Api).map_err(api(&page))?;
            new_token = Some((user.email.clone(), issued.token));
            "token-issued"
        }
        _ => {
            return Err(PageError::new(
                page.tr,
                StatusCode::BAD_REQUEST,
                "error-bad-form",
            ));
        }
    };
    state
        .store
        .audit(
            &caller.user.email,
            &format!("user.{}", form.action),
            &user.email,
        )
        .map_err(store_err(&page))?;
    state.store.durable().await.map_err(store_err(&page))?;
    tracing::info!(admin = %caller.user.email, user = %user.email, action = %form.action, "account changed");
    if new_token.is_some() {
        // The token is shown once, on this answer, and never stored in the clear.
        let mut body = users_page(&page, &state, caller)?;
        body.new_token = new_token;
        return Ok(page.render(&body));
    }
    Ok(see_other("/admin/users", Some(flash), &req))
}

// ---- audit log and per-ticket sync log ----

pub struct AuditRow {
    pub at: When,
    pub admin: String,
    pub action: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage<'a> {
    page: &'a Page,
    rows: Vec<AuditRow>,
}

async fn audit(page: Page, state: State) -> Result<HttpResponse, PageError> {
    admin(&page, &state)?;
    let rows = state
        .store
        .audit_log(500)
        .map_err(store_err(&page))?
        .into_iter()
        .map(|e| AuditRow {
            at: format::when(e.at),
            admin: e.admin,
            action: e.action,
            detail: e.detail,
        })
        .collect();
    Ok(page.render(&AuditPage { page: &page, rows }))
}

pub struct LogRow {
    pub at: When,
    pub what: String,
    pub who: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin_ticket.html")]
struct TicketLog<'a> {
    page: &'a Page,
    number: String,
    subject: String,
    status_label: String,
    request_id: String,
    sync_state: String,
    last_error: String,
    pending: Vec<DeadLetter>,
    dead: Vec<DeadLetter>,
    events: Vec<LogRow>,
}

#[derive(Deserialize)]
struct FindQuery {
    number: String,
}

async fn find_ticket(
    page: Page,
    state: State,
    query: web::Query<FindQuery>,
) -> Result<HttpResponse, PageError> {
    admin(&page, &state)?;
    let number: String = query
        .number
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Err(PageError::Redirect(format!("/admin/tickets/{number}")))
}

async fn ticket_log(
    page: Page,
    state: State,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    admin(&page, &state)?;
    let ticket = state
        .store
        .ticket_by_number(&number)
        .map_err(store_err(&page))?
        .ok_or_else(|| PageError::not_found(page.tr))?;
    // Only a ticket with undelivered changes has outbox entries or dead letters to look for.
    let (pending, dead) = if ticket.sdp_pending == 0 {
        (Vec::new(), Vec::new())
    } else {
        let dead = state.store.dead_letters().map_err(store_err(&page))?;
        let pending = state.store.outbox_of(ticket.id).map_err(store_err(&page))?;
        (
            pending,
            dead.into_iter().filter(|e| e.ticket == ticket.id).collect(),
        )
    };
    let events = state
        .store
        .events(ticket.id)
        .map_err(store_err(&page))?
        .into_iter()
        .map(|e| LogRow {
            at: format::when(e.at),
            what: e.kind,
            who: e.actor.name,
            detail: [e.from, e.to, e.detail]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" → "),
        })
        .collect();
    Ok(page.render(&TicketLog {
        page: &page,
        number: ticket.number.clone(),
        subject: ticket.subject.clone(),
        status_label: page.t(&status_key(ticket.status)),
        request_id: ticket.sdp.request_id.clone().unwrap_or_default(),
        sync_state: format!("{:?}", ticket.sdp.sync_state).to_lowercase(),
        last_error: ticket.sdp.last_error.clone().unwrap_or_default(),
        pending: dead_letters(&state, &pending),
        dead: dead_letters(&state, &dead),
        events,
    }))
}
