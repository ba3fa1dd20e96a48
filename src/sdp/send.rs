//! What the client sends and where it follows: a file to upload, streamed from disk (and the time
//! it is given), and the redirect rule every call follows (never off SDP's origin).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::redirect::{Attempt, Policy};

use super::SdpError;

/// The slowest link a transfer is given time for: an upload's deadline grows with its size at
/// this rate, so a large file on a slow link is not cut off by the deadline of a JSON call.
const SLOW_LINK_BYTES_PER_SEC: u64 = 32 * 1024;
/// Redirects followed within SDP's origin before giving up.
const MAX_REDIRECTS: usize = 5;

/// A file to upload, read from disk as it is sent.
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub path: PathBuf,
    pub size: u64,
}

impl Upload {
    /// The multipart part, opened anew for each attempt (a retried call sends the file again).
    pub(super) async fn part(&self) -> Result<reqwest::multipart::Part, SdpError> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| SdpError::Decode(format!("reading the file to upload: {e}")))?;
        Ok(
            reqwest::multipart::Part::stream_with_length(file, self.size)
                .file_name(self.filename.clone()),
        )
    }

    /// How long the whole upload may take: a call's timeout plus the file at a slow link's pace.
    pub(super) fn deadline(&self, call_timeout: Duration) -> Duration {
        call_timeout + Duration::from_secs(self.size / SLOW_LINK_BYTES_PER_SEC)
    }
}

/// Redirects are followed only within the origin they start from: a `Location` on another host
/// is not followed (the 3xx comes back as the answer), so no header of ours reaches it.
pub(super) fn redirect_policy() -> Policy {
    Policy::custom(|attempt: Attempt<'_>| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        let same = attempt
            .previous()
            .last()
            .is_some_and(|from| from.origin() == attempt.url().origin());
        if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}
