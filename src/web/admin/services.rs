//! The mapping page's services: SDP's categories and subcategories as last fetched, "Fetch from
//! SDP", and the checkboxes of what customers may choose in the new-ticket form.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};

use super::AdminPage;
use super::sdp::NoFields;
use crate::domain::catalogue::entry;
use crate::service::{AppState, catalogue};
use crate::web::format::{When, when};
use crate::web::{Page, PageError, see_other};

type State = web::Data<AppState>;

/// One checkbox: an entry of the catalogue.
pub(super) struct Offer {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

pub(super) struct CategoryRow {
    pub name: String,
    /// The category alone, then each subcategory.
    pub offers: Vec<Offer>,
}

pub(super) struct Section {
    pub fetched_at: Option<When>,
    pub error: Option<(When, String)>,
    pub categories: Vec<CategoryRow>,
    pub required: bool,
    /// SDP is not configured: nothing to fetch, and the form keeps its free-text service.
    pub off: bool,
}

pub(super) fn section(page: &Page, state: &AppState) -> Result<Section, PageError> {
    let catalogue = state.store.catalogue().map_err(page.store())?;
    let offered = state.store.offered().map_err(page.store())?;
    let offer = |value: String, label: String| Offer {
        checked: offered.entries.contains(&value),
        value,
        label,
    };
    let categories = catalogue
        .categories
        .iter()
        .map(|c| CategoryRow {
            name: c.name.clone(),
            offers: std::iter::once(offer(entry(&c.id, None), page.t("services-category-alone")))
                .chain(
                    c.subcategories
                        .iter()
                        .map(|s| offer(entry(&c.id, Some(&s.id)), s.name.clone())),
                )
                .collect(),
        })
        .collect();
    Ok(Section {
        fetched_at: catalogue.fetched_at.map(when),
        error: catalogue.failed_at.map(when).zip(catalogue.error),
        categories,
        required: offered.required,
        off: !state.sync.is_running(),
    })
}

pub(super) async fn fetch(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let _: NoFields = page.submitted(&req, &body)?;
    let fetched = catalogue::fetch(&state, admin.admin())
        .await
        .map_err(page.api())?;
    let flash = if fetched.error.is_some() {
        "services-fetch-failed"
    } else {
        "services-fetched"
    };
    Ok(see_other(
        "/admin/mapping#services-title",
        Some(flash),
        &req,
    ))
}

pub(super) async fn save(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let pairs: Vec<(String, String)> = page.submitted(&req, &body)?;
    let entries: BTreeSet<String> = pairs
        .iter()
        .filter(|(k, _)| k == "offer")
        .map(|(_, v)| v.clone())
        .collect();
    let required = pairs.iter().any(|(k, v)| k == "required" && v == "on");
    catalogue::offer(&state, admin.admin(), &entries, required)
        .await
        .map_err(page.api())?;
    Ok(see_other(
        "/admin/mapping#services-title",
        Some("services-saved"),
        &req,
    ))
}
