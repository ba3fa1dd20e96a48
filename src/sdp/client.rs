use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::SdpError;
use super::budget::{Budget, Lane, is_unavailable};
use super::dto::{AttachmentInfo, Conversation, Note, Notification, Request, ResponseStatus};
use super::error::{INVALID_KEY, RATE_LIMIT};
use super::oauth::OAuth;
use super::send::{Upload, redirect_policy};
use crate::config::{Deployment, SdpConfig, Secret};

pub(super) const ACCEPT: &str = "application/vnd.manageengine.sdp.v3+json";
/// Rows per page of a list: SDP's maximum.
const PAGE: u64 = 100;

enum Auth {
    OnPrem(Secret),
    Cloud(OAuth),
}

/// One page of `GET /requests`.
pub struct RequestPage {
    pub rows: Vec<Request>,
    pub more: bool,
    pub total: Option<u64>,
}

/// What the client has learnt of the directory.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub(super) path: Option<&'static str>,
    pub(super) refused_at: Option<std::time::Instant>,
}

pub struct SdpClient {
    pub(super) http: reqwest::Client,
    /// `<base_url>/api/v3`
    api: String,
    /// The server root, for joining relative `content_url`s.
    pub(super) root: String,
    deployment: Deployment,
    auth: Auth,
    /// Shared by every client of this appliance, so console calls and a restarted sync spend from
    /// the same budget.
    pub(super) budget: Arc<Budget>,
    /// The deadline of one JSON call; transfers have an idle timeout of the same length instead.
    call_timeout: Duration,
    /// Where this SDP keeps requesters, once a call has shown it, and when the credential was
    /// last refused there (see `requesters`).
    pub(super) directory: std::sync::Mutex<Directory>,
}

/// The client's calls on behalf of one [`Lane`]: `sdp.on(Lane::Poll).get_request(id)`.
pub struct Calls<'a> {
    pub(super) sdp: &'a SdpClient,
    pub(super) lane: Lane,
    /// Calls to a part of SDP the credential may not reach (a missing OAuth scope): a refusal is
    /// this call's answer, not SDP being away, and no token is refreshed for it.
    optional: bool,
}

impl SdpClient {
    pub fn new(config: &SdpConfig, budget: Arc<Budget>) -> Result<SdpClient, SdpError> {
        let call_timeout = Duration::from_secs(config.request_timeout_secs);
        let http = reqwest::Client::builder()
            .read_timeout(call_timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(redirect_policy())
            .user_agent(concat!("deskbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SdpError::Connect(format!("cannot build the HTTP client: {e}")))?;
        let base = config.base_url.trim_end_matches('/').to_owned();
        let root = reqwest::Url::parse(&base)
            .map(|u| u.origin().ascii_serialization())
            .map_err(|e| SdpError::Connect(format!("sdp.base_url: {e}")))?;
        let auth = match config.deployment {
            Deployment::OnPrem => Auth::OnPrem(config.api_key.clone()),
            Deployment::Cloud => Auth::Cloud(OAuth::new(
                config.oauth_accounts_url.clone(),
                config.oauth_client_id.clone(),
                config.oauth_client_secret.clone(),
                config.oauth_refresh_token.clone(),
            )),
        };
        Ok(SdpClient {
            http,
            api: format!("{base}/api/v3"),
            root,
            deployment: config.deployment,
            auth,
            budget,
            call_timeout,
            directory: std::sync::Mutex::default(),
        })
    }

    pub fn deployment(&self) -> Deployment {
        self.deployment
    }

    /// The calls of one lane.
    pub fn on(&self, lane: Lane) -> Calls<'_> {
        Calls {
            sdp: self,
            lane,
            optional: false,
        }
    }

    /// The note wrapper key: `note` on-prem (revised format), `request_note` on Cloud.
    fn note_key(&self) -> &'static str {
        match self.deployment {
            Deployment::OnPrem => "note",
            Deployment::Cloud => "request_note",
        }
    }

    /// Action paths: `close` on-prem, `_close` on Cloud.
    fn action(&self, name: &str) -> String {
        match self.deployment {
            Deployment::OnPrem => name.to_owned(),
            Deployment::Cloud => format!("_{name}"),
        }
    }

    pub(super) async fn authorize(
        &self,
        req: reqwest::RequestBuilder,
        stale: Option<&str>,
    ) -> Result<(reqwest::RequestBuilder, Option<String>), SdpError> {
        Ok(match &self.auth {
            Auth::OnPrem(key) => (req.header("authtoken", key.expose()), None),
            Auth::Cloud(oauth) => {
                let token = oauth.token(&self.http, stale).await?;
                (
                    req.header(header::AUTHORIZATION, format!("Zoho-oauthtoken {token}")),
                    Some(token),
                )
            }
        })
    }

    /// One call: within the budget, authorized (with one token refresh on 401 for Cloud), and
    /// checked; its outcome tells the budget whether SDP is there.
    async fn call(
        &self,
        lane: Lane,
        method: Method,
        url: &str,
        input: Option<&Value>,
        upload: Option<&Upload>,
        optional: bool,
    ) -> Result<Value, SdpError> {
        let mut stale: Option<String> = None;
        for attempt in 0..2 {
            let permit = self.budget.acquire(lane).await;
            let answer = self
                .call_once(method.clone(), url, input, upload, stale.as_deref())
                .await;
            match answer {
                Err((e, token))
                    if matches!(e, SdpError::Auth(_))
                        && attempt == 0
                        && token.is_some()
                        && !optional =>
                {
                    // A stale access token, most likely: refresh once before believing it.
                    permit.answered();
                    stale = token;
                }
                Err((SdpError::Auth(message), _)) if optional => {
                    permit.answered();
                    return Err(SdpError::Api {
                        status: 401,
                        code: None,
                        message: format!("not allowed to this credential: {message}"),
                        fields: Vec::new(),
                    });
                }
                Err((e, _)) => {
                    if is_unavailable(&e) {
                        permit.unavailable(&e);
                    } else {
                        permit.answered();
                    }
                    return Err(e);
                }
                Ok(value) => {
                    permit.answered();
                    return Ok(value);
                }
            }
        }
        Err(SdpError::Auth(
            "the refreshed access token was refused too".into(),
        ))
    }

    /// Sends one request; an error comes back with the access token it was sent with.
    async fn call_once(
        &self,
        method: Method,
        url: &str,
        input: Option<&Value>,
        upload: Option<&Upload>,
        stale: Option<&str>,
    ) -> Result<Value, (SdpError, Option<String>)> {
        let deadline = upload.map_or(self.call_timeout, |u| u.deadline(self.call_timeout));
        let mut req = self
            .http
            .request(method.clone(), url)
            .timeout(deadline)
            .header(header::ACCEPT, ACCEPT);
        if let Some(input) = input {
            let encoded = input.to_string();
            req = if method == Method::GET || upload.is_some() {
                req.query(&[("input_data", encoded)])
            } else {
                req.form(&[("input_data", encoded)])
            };
        }
        if let Some(upload) = upload {
            let part = upload.part().await.map_err(|e| (e, None))?;
            req = req.multipart(reqwest::multipart::Form::new().part("input_file", part));
        }
        let (req, token) = self.authorize(req, stale).await.map_err(|e| (e, None))?;
        let with_token = |e| (e, token.clone());
        let response = req.send().await.map_err(transport).map_err(with_token)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(transport)
            .map_err(with_token)?;
        Self::check(status, retry_after, &body).map_err(with_token)
    }

    pub(super) fn check(
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> Result<Value, SdpError> {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        if json.is_none() && blocked_page(body) {
            // On-prem's URL throttle answers with a page, not JSON.
            return Err(SdpError::RateLimited {
                status: status.as_u16(),
                retry_after,
            });
        }
        let rs = json.as_ref().and_then(ResponseStatus::from_body);
        let code = rs.as_ref().and_then(ResponseStatus::code);
        if status == StatusCode::TOO_MANY_REQUESTS || code == Some(RATE_LIMIT) {
            return Err(SdpError::RateLimited {
                status: status.as_u16(),
                retry_after,
            });
        }
        if status == StatusCode::UNAUTHORIZED || code == Some(INVALID_KEY) {
            let detail = rs
                .as_ref()
                .map(ResponseStatus::describe)
                .unwrap_or_default();
            return Err(SdpError::Auth(
                format!("HTTP {status} {detail}").trim().to_owned(),
            ));
        }
        let failed = rs.as_ref().is_some_and(ResponseStatus::failed);
        if let Some(into) = rs.as_ref().and_then(ResponseStatus::merged_into)
            && (failed || !status.is_success())
        {
            return Err(SdpError::Merged { into });
        }
        if !status.is_success() || failed {
            let message = rs
                .as_ref()
                .map(ResponseStatus::describe)
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
                });
            let fields = rs.as_ref().map(ResponseStatus::fields).unwrap_or_default();
            return Err(SdpError::Api {
                status: status.as_u16(),
                code,
                message,
                fields,
            });
        }
        json.ok_or_else(|| SdpError::Decode(format!("HTTP {status} with a body that is not JSON")))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.api, path.trim_start_matches('/'))
    }

    /// The URL of a `content_url`: relative to the server root, or absolute on the SDP's own origin.
    pub(super) fn content_url(&self, content_url: &str) -> String {
        if content_url.starts_with("http://") || content_url.starts_with("https://") {
            content_url.to_owned()
        } else if content_url.starts_with("/api/v3/") && self.api.ends_with("/api/v3") {
            // Cloud content URLs omit the portal path; join them to the configured API root.
            format!("{}{}", self.api.trim_end_matches("/api/v3"), content_url)
        } else {
            format!("{}/{}", self.root, content_url.trim_start_matches('/'))
        }
    }
}

impl Calls<'_> {
    /// The same lane's calls, for a part of SDP the credential may not reach.
    pub(super) fn optional(&self) -> Calls<'_> {
        Calls {
            sdp: self.sdp,
            lane: self.lane,
            optional: true,
        }
    }

    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        input: Option<&Value>,
        upload: Option<&Upload>,
    ) -> Result<Value, SdpError> {
        let url = self.sdp.url(path);
        self.sdp
            .call(self.lane, method, &url, input, upload, self.optional)
            .await
    }

    pub(super) async fn entity<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        input: Option<&Value>,
        keys: &[&str],
    ) -> Result<T, SdpError> {
        let body = self.call(method, path, input, None).await?;
        take(&body, keys)
    }

    /// Every row of a list, page after page until SDP says there are no more.
    async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        keys: &[&str],
    ) -> Result<Vec<T>, SdpError> {
        let mut rows = Vec::new();
        let mut start = 1u64;
        loop {
            let input = json!({"list_info": {"row_count": PAGE, "start_index": start}});
            let body = self.call(Method::GET, path, Some(&input), None).await?;
            let page: Vec<T> = take(&body, keys)?;
            let n = page.len() as u64;
            rows.extend(page);
            if !more_rows(&body) || n == 0 {
                return Ok(rows);
            }
            start += n;
        }
    }

    pub async fn create_request(&self, request: &Value) -> Result<Request, SdpError> {
        self.entity(
            Method::POST,
            "requests",
            Some(&json!({ "request": request })),
            &["request"],
        )
        .await
    }

    pub async fn get_request(&self, id: &str) -> Result<Request, SdpError> {
        // A single-object GET takes no input_data: some builds refuse one.
        self.entity(Method::GET, &format!("requests/{id}"), None, &["request"])
            .await
    }

    /// Changes fields of a request; SDP answers with the request as it now is.
    pub async fn update_request(&self, id: &str, request: &Value) -> Result<Value, SdpError> {
        self.call(
            Method::PUT,
            &format!("requests/{id}"),
            Some(&json!({ "request": request })),
            None,
        )
        .await
    }

    /// One page of requests: `list_info` as SDP takes it, and the fields each row should carry
    /// (sent at the top level of `input_data`, where both deployments read it).
    pub async fn list_requests(
        &self,
        list_info: &Value,
        fields: &[&str],
    ) -> Result<RequestPage, SdpError> {
        let mut input = json!({ "list_info": list_info });
        if !fields.is_empty() {
            input["fields_required"] = json!(fields);
        }
        let body = self
            .call(Method::GET, "requests", Some(&input), None)
            .await?;
        let rows = take(&body, &["requests"])?;
        // Only present when `get_total_count` was asked for; a string or a number.
        let total = body
            .pointer("/list_info/total_count")
            .and_then(|v| match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            });
        Ok(RequestPage {
            rows,
            more: more_rows(&body),
            total,
        })
    }

    pub async fn add_note(
        &self,
        request_id: &str,
        description_html: &str,
        public: bool,
    ) -> Result<Note, SdpError> {
        let note = json!({ self.sdp.note_key(): {
            "description": description_html,
            "show_to_requester": public,
            "notify_technician": true,
            "mark_first_response": false,
            "add_to_linked_requests": false,
        }});
        self.entity(
            Method::POST,
            &format!("requests/{request_id}/notes"),
            Some(&note),
            &["note", "request_note"],
        )
        .await
    }

    pub async fn list_notes(&self, request_id: &str) -> Result<Vec<Note>, SdpError> {
        self.list_all(
            &format!("requests/{request_id}/notes"),
            &["notes", "request_notes"],
        )
        .await
    }

    /// One note in full (a live on-prem notes list leaves out each note's body).
    pub async fn get_note(&self, request_id: &str, note_id: &str) -> Result<Note, SdpError> {
        self.entity(
            Method::GET,
            &format!("requests/{request_id}/notes/{note_id}"),
            None,
            &["note", "request_note"],
        )
        .await
    }

    /// Every note with its body: the list, then each note the list gave without one.
    pub async fn notes_with_bodies(&self, request_id: &str) -> Result<Vec<Note>, SdpError> {
        let mut notes = self.list_notes(request_id).await?;
        for note in &mut notes {
            if note.description.is_none() {
                *note = self.get_note(request_id, &note.id).await?;
            }
        }
        Ok(notes)
    }

    pub async fn list_conversations(
        &self,
        request_id: &str,
    ) -> Result<Vec<Conversation>, SdpError> {
        self.list_all(
            &format!("requests/{request_id}/conversations"),
            &["conversations"],
        )
        .await
    }

    pub async fn notification(&self, request_id: &str, id: &str) -> Result<Notification, SdpError> {
        self.entity(
            Method::GET,
            &format!("requests/{request_id}/notifications/{id}"),
            None,
            &["notification"],
        )
        .await
    }

    pub async fn list_attachments(
        &self,
        request_id: &str,
    ) -> Result<Vec<AttachmentInfo>, SdpError> {
        self.list_all(
            &format!("requests/{request_id}/attachments"),
            &["attachments"],
        )
        .await
    }

    /// Uploads one file to the request (`PUT …/upload`, multipart field `input_file`), streamed
    /// from disk.
    pub async fn upload(&self, request_id: &str, file: &Upload) -> Result<Value, SdpError> {
        self.call(
            Method::PUT,
            &format!("requests/{request_id}/upload"),
            None,
            Some(file),
        )
        .await
    }

    /// Closes the request as the requester accepting the resolution.
    pub async fn close_request(&self, request_id: &str, comments: &str) -> Result<Value, SdpError> {
        let body = json!({"request": {"closure_info": {
            "requester_ack_resolution": true,
            "requester_ack_comments": comments,
            "closure_comments": comments,
        }}});
        let path = format!("requests/{request_id}/{}", self.sdp.action("close"));
        self.call(Method::PUT, &path, Some(&body), None).await
    }

    /// A reference list (`statuses`, `priorities`, `request_types`, `categories`, `request_templates`…).
    pub async fn lookups(&self, path: &str) -> Result<Vec<Value>, SdpError> {
        self.list_all(path, &[path]).await
    }
}

fn more_rows(body: &Value) -> bool {
    body.pointer("/list_info/has_more_rows")
        .and_then(|v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => Some(s == "true"),
            _ => None,
        })
        .unwrap_or(false)
}

/// Whether a body is on-prem's "URL blocked as maximum access limit exceeded" page.
fn blocked_page(body: &[u8]) -> bool {
    let head = &body[..body.len().min(4096)];
    String::from_utf8_lossy(head)
        .to_ascii_lowercase()
        .contains("maximum access limit exceeded")
}

/// Reads the first of `keys` present in the body as `T`.
pub(super) fn take<T: DeserializeOwned>(body: &Value, keys: &[&str]) -> Result<T, SdpError> {
    let value = keys
        .iter()
        .find_map(|k| body.get(*k))
        .ok_or_else(|| SdpError::Decode(format!("the answer has no {}", keys.join(" or "))))?;
    serde_json::from_value(value.clone()).map_err(|e| SdpError::Decode(format!("{}: {e}", keys[0])))
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "used as a map_err adapter, which passes by value"
)]
pub(super) fn transport(e: reqwest::Error) -> SdpError {
    // A refused or failed connection never reached SDP; anything later may have been applied.
    if e.is_connect() {
        SdpError::Connect(e.to_string())
    } else {
        SdpError::NoAnswer(e.to_string())
    }
}

pub(super) fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

mod catalogue;
#[cfg(test)]
mod props;
