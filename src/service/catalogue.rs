//! Services from SDP as the use cases see them: an admin fetches the catalogue and chooses what
//! customers may pick; a new ticket's category is checked against that choice. Without SDP, or
//! with nothing offered, there is no choice and the free-text service stays.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{AppState, Caller};
use crate::domain::catalogue::{ServiceOption, entry};
use crate::domain::{Catalogue, Offered, ServiceChoice};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::sdp::Lane;

/// How long an admin waits for SDP's lists.
const FETCH_WAIT: Duration = Duration::from_secs(30);

/// What the new-ticket form offers: the options by category, and whether one must be chosen.
/// Empty when SDP is not configured or nothing is offered.
pub struct Choices {
    pub groups: Vec<(String, Vec<ServiceOption>)>,
    pub required: bool,
}

pub fn choices(state: &AppState) -> ApiResult<Choices> {
    let (catalogue, offered) = in_force(state)?;
    Ok(Choices {
        groups: offered.options(&catalogue),
        required: offered.required,
    })
}

/// The catalogue and what is offered of it; nothing is offered while SDP is not configured.
fn in_force(state: &AppState) -> ApiResult<(Catalogue, Offered)> {
    if !state.sync.is_running() {
        return Ok((Catalogue::default(), Offered::default()));
    }
    Ok((state.store.catalogue()?, state.store.offered()?))
}

/// Checks a submitted category (and subcategory) id against what is offered.
pub fn choose(
    state: &AppState,
    category: Option<&str>,
    subcategory: Option<&str>,
) -> ApiResult<Option<ServiceChoice>> {
    let (catalogue, offered) = in_force(state)?;
    offered
        .choose(&catalogue, category, subcategory)
        .map_err(|e| ApiError::field(ErrorCode::InvalidField, e.field, e.message))
}

/// Fetches SDP's categories now, in the interactive lane; the stored catalogue says how it went.
pub async fn fetch(state: &AppState, admin: &Caller) -> ApiResult<Catalogue> {
    let Some(client) = state.sync.client() else {
        return Err(super::sync::sync_off());
    };
    let read = crate::sync::catalogue::fetch(&client, &state.store, Lane::Interactive);
    let outcome = match tokio::time::timeout(FETCH_WAIT, read).await {
        Ok(Ok(c)) => format!("{} categories", c.categories.len()),
        Ok(Err(e)) => format!("failed: {e}"),
        Err(_) => "no answer in time".to_owned(),
    };
    state
        .store
        .audit(&admin.user.email, "services.fetched", &outcome)?;
    state.store.durable().await?;
    Ok(state.store.catalogue()?)
}

/// Saves what customers may choose: entries of the catalogue (`<category>` or
/// `<category>/<subcategory>`); entries it does not have are dropped.
pub async fn offer(
    state: &AppState,
    admin: &Caller,
    entries: &BTreeSet<String>,
    required: bool,
) -> ApiResult<Offered> {
    let catalogue = state.store.catalogue()?;
    let known: BTreeSet<String> = catalogue
        .categories
        .iter()
        .flat_map(|c| {
            std::iter::once(entry(&c.id, None))
                .chain(c.subcategories.iter().map(|s| entry(&c.id, Some(&s.id))))
        })
        .collect();
    let offered = Offered {
        entries: entries.intersection(&known).cloned().collect(),
        required,
    };
    state.store.put_offered(&offered)?;
    let detail = format!(
        "{} offered{}",
        offered.entries.len(),
        if required { ", required" } else { "" }
    );
    state
        .store
        .audit(&admin.user.email, "services.offered", &detail)?;
    state.store.durable().await?;
    Ok(offered)
}
