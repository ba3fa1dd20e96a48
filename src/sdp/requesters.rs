//! SDP's requester directory: on-prem keeps requesters under `/users`, Cloud under `/requesters`
//! (§13.7). The path of the deployment is tried first; on "Invalid URL" (404) the other is tried,
//! and the one that answers is remembered for the life of the client. A credential the directory
//! refuses (a Cloud token without the `users` scope) is not SDP being away: the refusal is
//! remembered for an hour, and requests name their requester by e-mail meanwhile.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::SdpError;
use super::client::{Calls, Directory, take};
use crate::config::Deployment;

/// A requester as the directory lists it.
#[derive(Debug, Clone, Deserialize)]
struct Entry {
    #[serde(deserialize_with = "super::dto::required_id")]
    id: String,
    #[serde(default)]
    email_id: Option<String>,
}

/// How long a refusal stands before the directory is asked again.
const ASK_AGAIN_AFTER: Duration = Duration::from_hours(1);

/// `(path, wrapper key of one entry)`.
const USERS: (&str, &str) = ("users", "user");
const REQUESTERS: (&str, &str) = ("requesters", "requester");

impl Calls<'_> {
    /// The paths to try, the remembered one (or the deployment's) first.
    fn requester_paths(&self) -> Vec<(&'static str, &'static str)> {
        let known = self.directory().path;
        match known {
            Some(path) if path == USERS.0 => vec![USERS],
            Some(_) => vec![REQUESTERS],
            None if self.sdp.deployment() == Deployment::Cloud => vec![REQUESTERS, USERS],
            None => vec![USERS, REQUESTERS],
        }
    }

    fn directory(&self) -> std::sync::MutexGuard<'_, Directory> {
        self.sdp
            .directory
            .lock()
            .expect("directory lock is never poisoned: no panics while held")
    }

    fn remember(&self, path: &'static str) {
        self.directory().path = Some(path);
    }

    /// Refused recently: no call is spent to hear it again.
    fn refused(&self) -> Result<(), SdpError> {
        match self.directory().refused_at {
            Some(at) if at.elapsed() < ASK_AGAIN_AFTER => Err(SdpError::Api {
                status: 401,
                code: None,
                message: "the credential may not use SDP's requester directory".into(),
                fields: Vec::new(),
            }),
            _ => Ok(()),
        }
    }

    /// Notes a refusal of the credential (see [`Calls::optional`]).
    fn note(&self, e: &SdpError) {
        if matches!(
            e,
            SdpError::Api {
                status: 401 | 403,
                ..
            }
        ) {
            self.directory().refused_at = Some(Instant::now());
        }
    }

    /// The SDP id of the requester with this e-mail, if SDP has one.
    pub async fn find_requester(&self, email: &str) -> Result<Option<String>, SdpError> {
        let input = json!({"list_info": {"row_count": 10, "start_index": 1,
            "search_criteria": {"field": "email_id", "condition": "is", "value": email}}});
        self.refused()?;
        let mut last = None;
        for (path, _) in self.requester_paths() {
            match self
                .optional()
                .call(Method::GET, path, Some(&input), None)
                .await
            {
                Ok(body) => {
                    self.remember(path);
                    let rows: Vec<Entry> = take(&body, &[path])?;
                    return Ok(rows
                        .into_iter()
                        .find(|r| {
                            r.email_id
                                .as_deref()
                                .is_some_and(|e| e.eq_ignore_ascii_case(email))
                        })
                        .map(|r| r.id));
                }
                Err(e) if e.is_not_found() => last = Some(e),
                Err(e) => {
                    self.note(&e);
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| SdpError::Decode("no requester directory".into())))
    }

    /// Creates the requester: SDP's id for it, or `None` when one with this e-mail exists already
    /// (4008), for the caller to look up in a call of its own.
    pub async fn create_requester(
        &self,
        name: &str,
        email: &str,
    ) -> Result<Option<String>, SdpError> {
        self.refused()?;
        let paths = self.requester_paths();
        let mut last = None;
        for (path, key) in paths {
            let body = json!({ key: {"name": name, "email_id": email} });
            match self
                .optional()
                .entity::<Entry>(Method::POST, path, Some(&body), &[key])
                .await
            {
                Ok(entry) => {
                    self.remember(path);
                    return Ok(Some(entry.id));
                }
                Err(e) if e.code() == Some(DUPLICATE) => {
                    self.remember(path);
                    return Ok(None);
                }
                Err(e) if e.is_not_found() => last = Some(e),
                Err(e) => {
                    self.note(&e);
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| SdpError::Decode("no requester directory".into())))
    }
}

/// SDP's "already exists".
const DUPLICATE: u32 = 4008;

/// The requester of a new request: by SDP id when the directory has one, else by e-mail.
pub(crate) fn requester_ref(id: Option<&str>, email: &str, name: &str) -> Value {
    match id {
        Some(id) => json!({"id": id}),
        None => json!({"email_id": email, "name": name}),
    }
}
