//! SDP's status catalog: builds that embed a request's status as `{id, name, color}` only give no
//! flags to classify an unmapped status by, so they are read from `GET /statuses` once, and again
//! when a status appears that the catalog does not know (at most every ten minutes).

use std::time::{Duration, Instant};

use super::SyncCtx;
use crate::sdp::Lane;
use crate::sdp::dto::StatusRef;

const REFRESH_AT_MOST_EVERY: Duration = Duration::from_mins(10);

/// Makes sure `status` can be classified: the catalog is read when its name is not configured,
/// carries no flags, and is not in the catalog yet.
pub(crate) async fn ensure(ctx: &SyncCtx, lane: Lane, status: Option<&StatusRef>) {
    let Some(status) = status else {
        return;
    };
    let Some(name) = status.name.as_deref() else {
        return;
    };
    let catalog = &ctx.mapping.catalog;
    if ctx.mapping.configured(name).is_some()
        || status.in_progress.is_some()
        || status.stop_timer.is_some()
        || catalog.flags(name).is_some()
    {
        return;
    }
    {
        let mut read_at = catalog
            .read_at
            .lock()
            .expect("catalog lock is never poisoned: no panics while held");
        if read_at.is_some_and(|at| at.elapsed() < REFRESH_AT_MOST_EVERY) {
            return;
        }
        *read_at = Some(Instant::now());
    }
    match ctx.sdp.on(lane).lookups("statuses").await {
        Ok(values) => {
            catalog.replace(
                values
                    .into_iter()
                    .filter_map(|v| serde_json::from_value::<StatusRef>(v).ok()),
            );
            tracing::info!(
                statuses = catalog.names().len(),
                "read SDP's status catalog"
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read SDP's statuses; unmapped ones count as in progress");
        }
    }
}
