//! Files both ways without holding them in memory: an upload is streamed from its blob file, a
//! download is handed over chunk by chunk. Files come only from SDP's own origin and redirects
//! never leave it, so the credential is sent to nobody else.

use bytes::Bytes;
use reqwest::{StatusCode, Url};

use super::SdpError;
use super::budget::is_unavailable;
use super::client::{ACCEPT, Calls, SdpClient, retry_after, transport};

/// A file being downloaded: its length when SDP says, and its content chunk by chunk. A stalled
/// transfer ends after the client's idle (read) timeout, not after a total deadline.
pub struct Download {
    response: reqwest::Response,
}

impl Download {
    pub(super) fn new(response: reqwest::Response) -> Download {
        Download { response }
    }

    /// The length SDP announced, if it did.
    pub fn announced_len(&self) -> Option<u64> {
        self.response.content_length()
    }

    /// The next chunk; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, SdpError> {
        self.response
            .chunk()
            .await
            .map_err(|e| SdpError::NoAnswer(format!("the download stopped: {e}")))
    }
}

/// Refuses a file URL outside SDP's origin before anything is sent to it.
pub(super) fn same_origin(url: &str, root: &str) -> Result<(), SdpError> {
    let parsed = Url::parse(url).map_err(|e| SdpError::Decode(format!("file URL {url}: {e}")))?;
    let origin = parsed.origin().ascii_serialization();
    if origin == root {
        Ok(())
    } else {
        Err(SdpError::Decode(format!(
            "SDP names a file on another host ({origin}); files are fetched only from {root}, \
             so the credential is never sent elsewhere"
        )))
    }
}

/// A redirect that was not followed, as an error an admin can act on.
pub(super) fn not_followed(status: StatusCode, response: &reqwest::Response) -> SdpError {
    let to = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    SdpError::Decode(format!(
        "the download answered HTTP {status} to {to}, outside SDP's origin; not followed"
    ))
}

impl Calls<'_> {
    /// Starts downloading a file by its `content_url`; only from SDP's own origin.
    pub async fn download(&self, content_url: &str) -> Result<Download, SdpError> {
        let url = self.sdp.content_url(content_url);
        let permit = self.sdp.budget.acquire(self.lane).await;
        let result = self.sdp.download_once(&url).await;
        match &result {
            Err(e) if is_unavailable(e) => permit.unavailable(e),
            _ => permit.answered(),
        }
        result
    }
}

impl SdpClient {
    async fn download_once(&self, url: &str) -> Result<Download, SdpError> {
        same_origin(url, &self.root)?;
        // The vnd Accept header as on every call (§13: both live clients send it).
        let req = self.http.get(url).header(reqwest::header::ACCEPT, ACCEPT);
        let (req, _) = self.authorize(req, None).await?;
        let response = req.send().await.map_err(transport)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(not_followed(status, &response));
        }
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let body = response.bytes().await.map_err(transport)?;
            return Self::check(status, retry_after, &body).and(Err(SdpError::Decode(format!(
                "download answered HTTP {status}"
            ))));
        }
        Ok(Download::new(response))
    }
}
