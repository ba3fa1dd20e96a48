//! `deskbridge backup`: download the archive from a running appliance to `FILE.partial`, check
//! every checksum, then rename it to `FILE`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{BackupError, Manifest, Progress, io_at, restore};

/// The endpoint, relative to the appliance's base URL.
pub(crate) const ENDPOINT: &str = "/api/v1/admin/backup";

/// Downloads a backup from the appliance at `base_url` with an admin token and checks it; `out`
/// appears only once the whole archive is on disk and every checksum matched.
pub(crate) fn backup(base_url: &str, token: &str, out: &Path) -> Result<Manifest, BackupError> {
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let url = format!("{}{ENDPOINT}", base_url.trim_end_matches('/'));
    let result = fetch(&url, token, &partial).and_then(|()| {
        let size = std::fs::metadata(&partial).map_err(io_at(&partial))?.len();
        let mut progress = Progress::new("backup: checking", Some(size));
        let manifest = restore::verify(&partial, &mut progress)?;
        progress.finish(size);
        std::fs::rename(&partial, out).map_err(io_at(out))?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_at(dir))?;
        }
        Ok(manifest)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn fetch(url: &str, token: &str, partial: &Path) -> Result<(), BackupError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_at(partial))?;
    let failed = |e: reqwest::Error| BackupError::Download(format!("{url}: {e}"));
    runtime.block_on(async {
        // No limit on the whole download, which grows with the data; but a silent server fails.
        // The answer starts once the store is copied, which takes minutes on a large store.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_mins(10))
            .build()
            .map_err(failed)?;
        let mut response = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or(body);
            return Err(BackupError::Download(format!(
                "{url} answered {status}: {message}"
            )));
        }
        let total = response.content_length();
        let mut progress = Progress::new("backup: downloading", total);
        let mut file = tokio::fs::File::create(partial)
            .await
            .map_err(io_at(partial))?;
        let mut done = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            file.write_all(&chunk).await.map_err(io_at(partial))?;
            done += chunk.len() as u64;
            progress.update(done);
        }
        progress.finish(done);
        if total.is_some_and(|total| total != done) {
            return Err(BackupError::Download(format!(
                "{url}: the download ended after {done} bytes"
            )));
        }
        file.sync_all().await.map_err(io_at(partial))
    })
}
