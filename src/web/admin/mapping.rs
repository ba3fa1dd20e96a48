//! The mapping: which SDP name each portal value uses, and how SDP's statuses show in the portal,
//! chosen from SDP's own lists (read through the running client). The fields come from the
//! console-settings table ([`ConsoleKey`]).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::Value;

use super::AdminPage;
use super::sdp::put_in_force;
use crate::config::{ConsoleKey, ValueKind};
use crate::domain::Status;
use crate::service::AppState;
use crate::settings;
use crate::web::format::status_key;
use crate::web::{Page, PageError, see_other};

type State = web::Data<AppState>;

pub(super) struct Choice {
    pub value: String,
    pub label: String,
}

pub(super) struct MapRow {
    pub name: String,
    pub input: String,
    pub current: String,
    /// What "automatic" means for this status, when SDP's list says.
    pub automatic: Option<String>,
}

pub(super) struct NameField {
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
    services: super::services::Section,
}

/// The mapping keys chosen from an SDP list, with that list's name.
fn name_keys() -> impl Iterator<Item = (ConsoleKey, &'static str)> {
    ConsoleKey::ALL.into_iter().filter_map(|k| match k.kind() {
        ValueKind::SdpName(list) => Some((k, list)),
        _ => None,
    })
}

pub(super) async fn form(admin: AdminPage, state: State) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let services = super::services::section(page, &state)?;
    let sdp = state.sync.sdp();
    let lists = state.sync.lookups().await;
    let rows = |name: &str| {
        lists
            .as_ref()
            .ok()
            .and_then(|l| l.get(name))
            .cloned()
            .unwrap_or_default()
    };
    let list = |name: &str| crate::service::sync::names(&rows(name));
    let status_rows = rows("statuses");
    // SDP's statuses first, then any mapped name SDP no longer lists.
    let mut status_names = list("statuses");
    for name in sdp.mapping.statuses.keys() {
        if !status_names.contains(name) {
            status_names.push(name.clone());
        }
    }
    let statuses = status_names
        .iter()
        .map(|name| MapRow {
            name: name.clone(),
            input: format!("status:{name}"),
            current: sdp.mapping.statuses.get(name).cloned().unwrap_or_default(),
            automatic: status_rows
                .iter()
                .find(|r| r["name"].as_str() == Some(name.as_str()))
                .map(|r| {
                    page.t1(
                        "mapping-automatic-as",
                        "status",
                        page.t(&status_key(crate::service::sync::status_default(r))),
                    )
                }),
        })
        .collect();
    let fixed = |key: ConsoleKey| state.config.fixed.get(&key.key()).cloned();
    let names = name_keys()
        .map(|(key, list_name)| NameField {
            key: key.field(),
            current: key.get(&sdp).as_str().unwrap_or_default().to_owned(),
            choices: list(list_name),
            fixed: fixed(key),
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
        page,
        statuses,
        statuses_fixed: fixed(ConsoleKey::Statuses),
        portal_statuses,
        names,
        lists_error: lists.err(),
        services,
    }))
}

pub(super) async fn save(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let pairs: Vec<(String, String)> = page.submitted(&req, &body)?;
    let mut saved = settings::load(&state.store, &state.secret_key).map_err(page.store())?;
    let mut statuses = serde_json::Map::new();
    for (key, value) in &pairs {
        if let Some(name) = key.strip_prefix("status:") {
            let name = name.trim();
            // An empty choice leaves the status to SDP's own flags (automatic).
            if !name.is_empty() && Status::parse(value).is_some() {
                statuses.insert(name.to_owned(), Value::String(value.clone()));
            }
        }
    }
    let form: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut result = saved.set(ConsoleKey::Statuses, &Value::Object(statuses));
    for (key, _) in name_keys() {
        if let Some(value) = form.get(key.field()) {
            result = result.and(saved.set(key, &Value::String(value.trim().to_owned())));
        }
    }
    let sdp = settings::effective(&state.config, &saved);
    let checked = result
        .map_err(|m| m.clone())
        .and_then(|()| settings::validate(&state.config, &sdp).map_err(|e| e.to_string()));
    if let Err(message) = checked {
        tracing::warn!(error = %message, "mapping refused");
        return Err(PageError::Shown {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            title: page.t("error-invalid-field"),
            detail: message,
            lang: page.tr.lang(),
        });
    }
    let detail = format!("{} statuses mapped", sdp.mapping.statuses.len());
    put_in_force(&admin, &state, &saved, sdp, "mapping.saved", &detail).await?;
    Ok(see_other("/admin/mapping", Some("mapping-saved"), &req))
}
