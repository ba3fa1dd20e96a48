//! SDP v3 wire types, exactly as SDP sends them, parsed tolerantly: unknown fields are ignored, ids
//! and numbers may come as strings or numbers, dates as `{value, display_value}` objects, and the
//! two known spellings of note fields (`added_*` / `created_*`) are both read. These types never
//! leave the `sdp` and `sync` modules.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Accepts `"101"`, `101` or `null` as an optional id string.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Object(map)) => map.get("value").and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
        Some(other) => return Err(de::Error::custom(format!("expected an id, found {other}"))),
    })
}

/// E-mail recipients as SDP writes them: strings, `{"email_id"}` objects, or one comma-separated
/// string. Anything else reads as no recipient.
fn addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    fn one(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.extend(
                s.split([',', ';'])
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned),
            ),
            Value::Object(o) => {
                if let Some(a) = o
                    .get("email_id")
                    .or_else(|| o.get("email"))
                    .and_then(Value::as_str)
                {
                    out.push(a.trim().to_owned());
                }
            }
            Value::Array(items) => items.iter().for_each(|i| one(i, out)),
            _ => {}
        }
    }
    let value = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
    let mut out = Vec::new();
    one(&value, &mut out);
    Ok(out)
}

pub(crate) fn required_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    id_string(d)?.ok_or_else(|| de::Error::custom("missing id"))
}

/// A date: `{"value": "1718000000000", "display_value": "…"}`; `value` is epoch milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdpDate {
    #[serde(default, deserialize_with = "id_string")]
    pub value: Option<String>,
    #[serde(default)]
    pub display_value: Option<String>,
}

impl SdpDate {
    pub fn millis(&self) -> Option<i64> {
        self.value.as_deref()?.trim().parse().ok()
    }
}

/// A lookup (`status`, `priority`, `request_type`, `category`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    #[serde(default, deserialize_with = "id_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StatusRef {
    #[serde(default, deserialize_with = "id_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub internal_name: Option<String>,
    #[serde(default)]
    pub in_progress: Option<bool>,
    #[serde(default)]
    pub stop_timer: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UserRef {
    #[serde(default, deserialize_with = "id_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Resolution {
    #[serde(default)]
    pub content: Option<String>,
    /// Files the technician attached to the resolution.
    #[serde(default, rename = "resolution_attachments")]
    pub files: Option<Vec<AttachmentInfo>>,
    #[serde(default)]
    pub submitted_on: Option<SdpDate>,
    #[serde(default)]
    pub submitted_by: Option<UserRef>,
}

/// An attachment in either format: revised (`name`, `size: {value}`) or old (`file_name`, `size: "73KB"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AttachmentInfo {
    #[serde(deserialize_with = "required_id")]
    pub id: String,
    #[serde(default, alias = "file_name")]
    pub name: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub size: Option<Value>,
    #[serde(default)]
    pub content_url: Option<String>,
    #[serde(default)]
    pub attached_on: Option<SdpDate>,
    #[serde(default)]
    pub attached_by: Option<UserRef>,
}

impl AttachmentInfo {
    /// Size in bytes when SDP states it exactly (revised format); the old format only has text.
    pub fn size_bytes(&self) -> Option<u64> {
        match self.size.as_ref()? {
            Value::Object(map) => match map.get("value")? {
                Value::String(s) => s.parse().ok(),
                Value::Number(n) => n.as_u64(),
                _ => None,
            },
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }
}

#[expect(
    clippy::struct_field_names,
    reason = "the fields are named as SDP names them"
)]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Request {
    #[serde(deserialize_with = "required_id")]
    pub id: String,
    #[serde(default, deserialize_with = "id_string")]
    pub display_id: Option<String>,
    /// True while the request is in SDP's trash.
    #[serde(default)]
    pub is_trashed: Option<bool>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub requester: Option<UserRef>,
    #[serde(default)]
    pub technician: Option<UserRef>,
    /// The support group the request is assigned to.
    #[serde(default)]
    pub group: Option<UserRef>,
    #[serde(default)]
    pub status: Option<StatusRef>,
    #[serde(default)]
    pub priority: Option<Named>,
    #[serde(default)]
    pub request_type: Option<Named>,
    #[serde(default)]
    pub created_time: Option<SdpDate>,
    #[serde(default)]
    pub last_updated_time: Option<SdpDate>,
    #[serde(default)]
    pub due_by_time: Option<SdpDate>,
    #[serde(default)]
    pub first_response_due_by_time: Option<SdpDate>,
    #[serde(default)]
    pub responded_time: Option<SdpDate>,
    #[serde(default)]
    pub resolved_time: Option<SdpDate>,
    #[serde(default)]
    pub resolution: Option<Resolution>,
    #[serde(default)]
    pub udf_fields: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub attachments: Option<Vec<AttachmentInfo>>,
    /// Who SDP copies on the request's mails (CC); absent when the answer leaves it out.
    #[serde(default)]
    pub email_ids_to_notify: Option<Vec<String>>,
    #[serde(default)]
    pub is_overdue: Option<bool>,
    #[serde(default)]
    pub is_first_response_overdue: Option<bool>,
    /// Whether the request has notes, files and an e-mail thread: absent (older builds, list rows)
    /// means "maybe", so the sub-list is read.
    #[serde(default)]
    pub has_notes: Option<bool>,
    #[serde(default)]
    pub has_attachments: Option<bool>,
    #[serde(default)]
    pub has_conversation: Option<bool>,
    /// How the request was closed: the technician's closure comments.
    #[serde(default)]
    pub closure_info: Option<ClosureInfo>,
}

/// A request's `closure_info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ClosureInfo {
    #[serde(default)]
    pub closure_comments: Option<String>,
}

impl Request {
    /// `last_updated_time` in ms; null on a request never edited since it was created.
    pub fn updated_ms(&self) -> Option<i64> {
        self.last_updated_time.as_ref().and_then(SdpDate::millis)
    }

    pub fn created_ms(&self) -> Option<i64> {
        self.created_time.as_ref().and_then(SdpDate::millis)
    }

    pub fn due_ms(&self) -> Option<i64> {
        self.due_by_time.as_ref().and_then(SdpDate::millis)
    }

    pub fn respond_by_ms(&self) -> Option<i64> {
        self.first_response_due_by_time
            .as_ref()
            .and_then(SdpDate::millis)
    }

    pub fn responded_ms(&self) -> Option<i64> {
        self.responded_time.as_ref().and_then(SdpDate::millis)
    }

    pub fn resolved_ms(&self) -> Option<i64> {
        self.resolved_time.as_ref().and_then(SdpDate::millis)
    }
}

/// A note, on-prem revised (`added_*`) or Cloud / older builds (`created_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Note {
    #[serde(deserialize_with = "required_id")]
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Absent means private: deskbridge treats a note as public only when this is `true`.
    #[serde(default)]
    pub show_to_requester: Option<bool>,
    #[serde(default, alias = "created_time")]
    pub added_time: Option<SdpDate>,
    #[serde(default, alias = "created_by")]
    pub added_by: Option<UserRef>,
    /// On-prem: when the note was last edited.
    #[serde(default)]
    pub last_updated_time: Option<SdpDate>,
}

impl Note {
    pub fn updated_ms(&self) -> Option<i64> {
        self.last_updated_time.as_ref().and_then(SdpDate::millis)
    }
}

/// A row of the conversations list (metadata only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Conversation {
    #[serde(deserialize_with = "required_id")]
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub created_time: Option<SdpDate>,
    #[serde(default)]
    pub show_to_requester: Option<bool>,
    #[serde(default)]
    pub created_by: Option<UserRef>,
    #[serde(default)]
    pub has_attachments: Option<bool>,
    #[serde(default)]
    pub content_url: Option<String>,
}

/// An e-mail in the request's thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Notification {
    #[serde(deserialize_with = "required_id")]
    pub id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub sender: Option<UserRef>,
    /// Recipients; SDP's field names vary by build.
    #[serde(
        default,
        alias = "to_addresses",
        alias = "email_to",
        deserialize_with = "addresses"
    )]
    pub to: Vec<String>,
    #[serde(
        default,
        alias = "cc_addresses",
        alias = "email_cc",
        deserialize_with = "addresses"
    )]
    pub cc: Vec<String>,
    #[serde(default)]
    pub show_to_requester: Option<bool>,
    #[serde(default)]
    pub time: Option<SdpDate>,
    #[serde(default)]
    pub attachments: Option<Vec<AttachmentInfo>>,
}

/// One entry of `response_status.messages`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct StatusMessage {
    #[serde(default)]
    pub status_code: Option<Value>,
    #[serde(default)]
    pub message: Option<Value>,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

/// `response_status`: an object on single-entity calls, an array on lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct ResponseStatus {
    #[serde(default)]
    pub status_code: Option<Value>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub messages: Vec<StatusMessage>,
}

fn code_of(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl ResponseStatus {
    /// Reads `response_status` from a whole body, whichever shape it has.
    pub(crate) fn from_body(body: &Value) -> Option<ResponseStatus> {
        let raw = body.get("response_status")?;
        let one = match raw {
            Value::Array(items) => items.first()?.clone(),
            other => other.clone(),
        };
        serde_json::from_value(one).ok()
    }

    pub(crate) fn failed(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("failed"))
            || code_of(self.status_code.as_ref()).is_some_and(|c| c >= 4000)
    }

    /// The specific code: the first message's, else the top level's.
    pub(crate) fn code(&self) -> Option<u32> {
        self.messages
            .iter()
            .find_map(|m| code_of(m.status_code.as_ref()))
            .or_else(|| code_of(self.status_code.as_ref()))
    }

    /// A readable summary of the messages, with the fields they name.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        for m in &self.messages {
            let mut text = match &m.message {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let fields: Vec<&str> = m
                .field
                .iter()
                .map(String::as_str)
                .chain(m.fields.iter().flatten().map(String::as_str))
                .collect();
            if !fields.is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str("(fields: ");
                text.push_str(&fields.join(", "));
                text.push(')');
            }
            if !text.is_empty() {
                parts.push(text);
            }
        }
        parts.join("; ")
    }

    /// The request a merged request went into: SDP's 4007 then carries an object message,
    /// `{"parent_request": {"id"}, "message"}`.
    pub(crate) fn merged_into(&self) -> Option<String> {
        self.messages.iter().find_map(|m| {
            let id = m.message.as_ref()?.pointer("/parent_request/id")?;
            id.as_str()
                .map(str::to_owned)
                .or_else(|| id.as_u64().map(|n| n.to_string()))
        })
    }

    pub(crate) fn fields(&self) -> Vec<String> {
        self.messages
            .iter()
            .flat_map(|m| {
                m.field
                    .iter()
                    .cloned()
                    .chain(m.fields.iter().flatten().cloned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_parse_from_both_deployments() {
        let onprem = json!({"id": "65997", "subject": "VPN", "status": {"id": "2", "name": "Open", "in_progress": true, "stop_timer": false},
            "last_updated_time": {"value": "1718000000000", "display_value": "Jun 10, 2024"}, "unknown_field": [1, 2]});
        let r: Request = serde_json::from_value(onprem).unwrap();
        assert_eq!(r.id, "65997");
        assert_eq!(
            r.last_updated_time.unwrap().millis(),
            Some(1_718_000_000_000)
        );
        let cloud = json!({"id": 123_640_000_000_240_013_u64, "display_id": {"value": "501", "display_value": "REQ-501"}, "technician": null});
        let r: Request = serde_json::from_value(cloud).unwrap();
        assert_eq!(r.id, "123640000000240013");
        assert_eq!(r.display_id.as_deref(), Some("501"));
        assert!(r.technician.is_none());
    }

    #[test]
    fn notes_read_added_or_created_fields_and_default_to_private() {
        let onprem: Note = serde_json::from_value(json!({"id": "9", "description": "<p>x</p>", "added_by": {"name": "Tech"}, "added_time": {"value": "5"}})).unwrap();
        let cloud: Note = serde_json::from_value(
            json!({"id": 9, "created_by": {"name": "Tech"}, "created_time": {"value": 5}}),
        )
        .unwrap();
        assert_eq!(onprem.added_by, cloud.added_by);
        assert_eq!(
            onprem.added_time.unwrap().millis(),
            cloud.added_time.unwrap().millis()
        );
        assert_eq!(cloud.show_to_requester, None);
    }

    #[test]
    fn response_status_as_object_or_array_with_codes() {
        let list = json!({"response_status": [{"status_code": 2000, "status": "success"}]});
        assert!(!ResponseStatus::from_body(&list).unwrap().failed());
        let err = json!({"response_status": {"status_code": 4000, "status": "failed",
            "messages": [{"status_code": 4012, "type": "failed", "fields": ["subcategory", "requester"]}]}});
        let status = ResponseStatus::from_body(&err).unwrap();
        assert!(status.failed());
        assert_eq!(status.code(), Some(4012));
        assert_eq!(status.fields(), ["subcategory", "requester"]);
        let top = json!({"response_status": {"status_code": "4022", "status": "failed"}});
        assert_eq!(ResponseStatus::from_body(&top).unwrap().code(), Some(4022));
    }

    #[test]
    fn attachment_sizes_in_both_formats() {
        let revised: AttachmentInfo = serde_json::from_value(json!({"id": "606", "name": "a.png", "size": {"value": "75550", "display_value": "73.78KB"}})).unwrap();
        assert_eq!(revised.size_bytes(), Some(75_550));
        let old: AttachmentInfo =
            serde_json::from_value(json!({"id": "606", "file_name": "a.png", "size": "73.78KB"}))
                .unwrap();
        assert_eq!(old.name.as_deref(), Some("a.png"));
        assert_eq!(old.size_bytes(), None);
    }

    #[test]
    fn e_mail_recipients_in_every_shape() {
        let mail: Notification = serde_json::from_value(json!({"id": "77",
            "to": ["Alice <alice@example.com>", {"email_id": "bob@example.com"}],
            "cc_addresses": "carol@example.com; dan@example.com"}))
        .unwrap();
        assert_eq!(mail.to, ["Alice <alice@example.com>", "bob@example.com"]);
        assert_eq!(mail.cc, ["carol@example.com", "dan@example.com"]);
        let bare: Notification = serde_json::from_value(json!({"id": "78", "to": null})).unwrap();
        assert!(bare.to.is_empty() && bare.cc.is_empty());
    }
}
