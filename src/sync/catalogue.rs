//! SDP's categories and subcategories, fetched into the store's catalogue: by an admin ("Fetch
//! from SDP", interactive lane) and by the sweep at most every few hours (backfill lane) once the
//! admin offers any. A failed fetch keeps the last catalogue and records why and when.

use std::time::Duration;

use time::OffsetDateTime;

use super::{SyncCtx, SyncError};
use crate::domain::Catalogue;
use crate::domain::catalogue::{Category, Named};
use crate::sdp::{Lane, SdpClient, SdpError};
use crate::store::Store;

/// How old the catalogue may grow before the sync fetches it again.
pub const REFRESH_EVERY: Duration = Duration::from_hours(6);

/// Reads every category, then each one's subcategories, and stores the result. On failure the
/// stored catalogue keeps its categories and gains the error.
pub async fn fetch(sdp: &SdpClient, store: &Store, lane: Lane) -> Result<Catalogue, SyncError> {
    let read = read(sdp, lane).await;
    let mut catalogue = store.catalogue()?;
    let now = OffsetDateTime::now_utc();
    let outcome = match read {
        Ok(categories) => {
            catalogue = Catalogue {
                categories,
                fetched_at: Some(now),
                error: None,
                failed_at: None,
            };
            Ok(catalogue.clone())
        }
        Err(e) => {
            catalogue.error = Some(e.to_string());
            catalogue.failed_at = Some(now);
            Err(e.into())
        }
    };
    store.put_catalogue(&catalogue)?;
    outcome
}

async fn read(sdp: &SdpClient, lane: Lane) -> Result<Vec<Category>, SdpError> {
    let calls = sdp.on(lane);
    let mut categories = Vec::new();
    for row in calls.categories().await? {
        let subcategories = calls
            .subcategories(&row.id)
            .await?
            .into_iter()
            .map(|s| Named {
                id: s.id,
                name: s.name.unwrap_or_default(),
            })
            .collect();
        categories.push(Category {
            id: row.id,
            name: row.name.unwrap_or_default(),
            subcategories,
        });
    }
    Ok(categories)
}

/// Fetches the catalogue in the background when categories are offered and it is older than
/// [`REFRESH_EVERY`] (or the last try failed that long ago).
pub async fn refresh_if_due(ctx: &SyncCtx) {
    let (Ok(offered), Ok(catalogue)) = (ctx.store.offered(), ctx.store.catalogue()) else {
        return;
    };
    if offered.entries.is_empty() {
        return;
    }
    let last = catalogue.failed_at.max(catalogue.fetched_at);
    let due = last.is_none_or(|at| OffsetDateTime::now_utc() - at >= REFRESH_EVERY);
    if !due {
        return;
    }
    match fetch(&ctx.sdp, &ctx.store, Lane::Backfill).await {
        Ok(c) => tracing::info!(categories = c.categories.len(), "fetched SDP's categories"),
        Err(e) => {
            tracing::warn!(error = %e, "could not fetch SDP's categories; the last ones stay");
        }
    }
}
