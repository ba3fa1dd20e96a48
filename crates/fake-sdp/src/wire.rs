//! How the fake writes JSON: ids and numbers as strings, dates as `{value, display_value}`,
//! `response_status` an object on single calls and an array on lists, errors as in the doc's §9.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use super::Profile;
use super::foreign;
use super::state::{
    AttachmentOwner, Person, Request, State, StoredAttachment, StoredEmail, StoredNote,
};

/// An SDP error answer.
#[derive(Debug)]
pub(crate) struct SdpError {
    pub http: u16,
    pub code: u32,
    pub message: Option<String>,
    pub field: Option<String>,
    pub fields: Vec<String>,
    pub retry_after: Option<u64>,
    /// A `message` that is an object rather than text (a merged request's answer, §13.2).
    pub message_object: Option<Box<Value>>,
}

impl SdpError {
    pub(crate) fn new(http: u16, code: u32, message: &str) -> SdpError {
        SdpError {
            http,
            code,
            message: Some(message.to_owned()),
            field: None,
            fields: Vec::new(),
            retry_after: None,
            message_object: None,
        }
    }

    pub(crate) fn with_message(mut self, message: &str) -> SdpError {
        self.message = Some(message.to_owned());
        self
    }

    pub(crate) fn with_field(mut self, field: &str) -> SdpError {
        self.field = Some(field.to_owned());
        self
    }

    pub(crate) fn bad_input(message: &str) -> SdpError {
        SdpError::new(400, 4000, message)
    }

    pub(crate) fn not_found(what: &str) -> SdpError {
        SdpError::new(404, 4007, &format!("Invalid URL or {what} not found"))
    }

    pub(crate) fn invalid_value(field: &str) -> SdpError {
        SdpError::new(400, 4001, &format!("Invalid value for {field}")).with_field(field)
    }

    pub(crate) fn forbidden(field: &str) -> SdpError {
        SdpError::new(403, 4002, &format!("Cannot give value for {field}")).with_field(field)
    }

    pub(crate) fn type_mismatch(field: &str) -> SdpError {
        SdpError::new(400, 4021, &format!("Data type mismatch for {field}")).with_field(field)
    }

    pub(crate) fn mandatory(fields: Vec<String>) -> SdpError {
        SdpError {
            fields,
            message: None,
            ..SdpError::new(400, 4012, "")
        }
    }

    pub(crate) fn closure_rule(fields: Vec<String>) -> SdpError {
        SdpError {
            fields,
            ..SdpError::new(400, 4003, "Closure rule violation")
        }
    }

    /// An unknown key in `input_data` (Cloud's wording, used by both profiles).
    pub(crate) fn extra_key(key: &str) -> SdpError {
        SdpError::new(400, 4000, "EXTRA_KEY_FOUND_IN_JSON").with_field(key)
    }

    pub(crate) fn unauthorized(profile: Profile) -> SdpError {
        let message = match profile {
            Profile::OnPrem => "Invalid API key received",
            Profile::Cloud => "UNAUTHORISED",
        };
        SdpError::new(401, 4022, message)
    }

    pub(crate) fn rate_limited(retry_after: Option<u64>) -> SdpError {
        SdpError {
            retry_after,
            ..SdpError::new(429, 4015, "API rate limit reached")
        }
    }

    /// Cloud over its call budget: 429 / 4015 with the wording reported from Cloud (§13.8).
    pub(crate) fn over_budget(retry_after: Option<u64>) -> SdpError {
        SdpError {
            retry_after,
            ..SdpError::new(
                429,
                4015,
                "You have made too many requests continuously. Please try again after some time.",
            )
        }
    }

    /// Purging or restoring a request that is not in the trash (§13.1).
    pub(crate) fn not_in_trash() -> SdpError {
        SdpError::new(400, 4017, "Not in trash")
    }

    /// A change to a trashed request ([U]: the trash is read-only in SDP's UI).
    pub(crate) fn in_trash() -> SdpError {
        SdpError::new(403, 4002, "Request is in trash")
    }

    /// A read-only field that a live instance refuses when given (`is_trashed`, §13.1).
    pub(crate) fn not_editable(field: &str) -> SdpError {
        SdpError::new(400, 4009, "Given field is not editable").with_field(field)
    }

    /// A wrong verb on an action path (§13.1): 4021 naming the verb.
    pub(crate) fn invalid_method(method: &str) -> SdpError {
        SdpError::new(400, 4021, "Invalid HTTP method").with_field(method)
    }

    /// Any path of a request merged into `parent`: 404 / 4007 whose message is an object
    /// carrying the parent's id (§13.2).
    pub(crate) fn merged(child: &str, parent: &str) -> SdpError {
        SdpError {
            message: None,
            message_object: Some(Box::new(json!({
                "parent_request": {"id": parent},
                "message": format!("Request Id(s) {child} has been Merged with Parent Request {parent}."),
            }))),
            ..SdpError::new(404, 4007, "")
        }
    }

    pub(crate) fn too_large(limit: usize) -> SdpError {
        SdpError::bad_input(&format!("File size exceeds the limit of {limit} bytes"))
    }

    /// `{"response_status": {...}}`; the status is an array when `list` is set.
    pub(crate) fn body(&self, list: bool) -> Value {
        let mut message = Map::new();
        message.insert("status_code".into(), json!(self.code));
        message.insert("type".into(), json!("failed"));
        if let Some(m) = &self.message_object {
            message.insert("message".into(), (**m).clone());
        } else if let Some(m) = &self.message {
            message.insert("message".into(), json!(m));
        }
        if let Some(f) = &self.field {
            message.insert("field".into(), json!(f));
        }
        if !self.fields.is_empty() {
            message.insert("fields".into(), json!(self.fields));
        }
        let status = json!({"status_code": 4000, "status": "failed", "messages": [message]});
        json!({"response_status": if list { json!([status]) } else { status }})
    }
}

pub(crate) fn success() -> Value {
    json!({"status_code": 2000, "status": "success"})
}

/// `{key: entity, "response_status": {...}}`
pub(crate) fn single(key: &str, entity: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_owned(), entity);
    m.insert("response_status".into(), success());
    Value::Object(m)
}

/// `{"response_status": {..., "messages": [{2000, message}]}}` for action calls.
pub(crate) fn action(message: &str) -> Value {
    json!({"response_status": {"status_code": 2000, "status": "success",
        "messages": [{"status_code": 2000, "type": "success", "message": message}]}})
}

/// `{key: rows, "list_info": {...}, "response_status": [{...}]}`
pub(crate) fn list(key: &str, rows: Vec<Value>, list_info: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_owned(), Value::Array(rows));
    m.insert("list_info".into(), list_info);
    m.insert("response_status".into(), json!([success()]));
    Value::Object(m)
}

pub(crate) fn display(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(format_description!(
        "[month repr:short] [day padding:none], [year] [hour repr:12]:[minute] [period]"
    ))
    .unwrap_or_default()
}

pub(crate) fn date(ms: i64) -> Value {
    json!({"value": ms.to_string(), "display_value": display(ms)})
}

fn opt_date(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, date)
}

/// An input number given as a JSON number or a numeric string.
pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// A scalar as text: `"101"` and `101` both give `101`.
pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn person(profile: Profile, p: &Person) -> Value {
    let vip = match profile {
        Profile::OnPrem => "is_vipuser",
        Profile::Cloud => "is_vip_user",
    };
    let mut v = json!({"id": p.id, "name": p.name, "email_id": p.email, "is_technician": p.is_technician,
        "phone": null, "mobile": null, "department": null, "photo_url": null, "sms_mail": null});
    v[vip] = json!(false);
    v
}

fn user_ref(p: &Person) -> Value {
    json!({"id": p.id, "name": p.name, "email_id": p.email})
}

/// The keys [`request`] computes from the stored request; they win over stored fields.
const COMPUTED: &[&str] = &[
    "id",
    "status",
    "display_id",
    "created_by",
    "created_time",
    "last_updated_time",
    "assigned_time",
    "resolved_time",
    "completed_time",
    "responded_time",
    "short_description",
    "resolution",
    "closure_info",
    "has_attachments",
    "attachments",
    "has_notes",
    "has_conversation",
    "is_service_request",
    "is_reopened",
    "unreplied_count",
    "time_elapsed",
    "is_trashed",
    "deleted_time",
    "deleted_by",
];

/// The full request, as `GET /requests/{id}` answers.
pub(crate) fn request(s: &State, r: &Request) -> Value {
    let mut v = request_defaults();
    for (k, value) in &r.fields {
        v.insert(k.clone(), value.clone());
    }
    for key in COMPUTED {
        v.insert(
            (*key).to_owned(),
            computed(s, r, key).expect("a computed key"),
        );
    }
    Value::Object(v)
}

/// One top-level key of [`request`] without rendering the others (`null` when the request has no
/// such key), for filtering and sorting many requests.
pub(crate) fn request_key(s: &State, r: &Request, key: &str) -> Value {
    computed(s, r, key)
        .or_else(|| r.fields.get(key).cloned())
        .or_else(|| request_defaults().remove(key))
        .unwrap_or(Value::Null)
}

/// A key of [`COMPUTED`]; `None` for any other.
fn computed(s: &State, r: &Request, key: &str) -> Option<Value> {
    let listed =
        |a: &&StoredAttachment| a.request_id == r.id && a.owner == AttachmentOwner::Request;
    Some(match key {
        "id" => json!(r.id),
        "status" => {
            let status = &r.fields["status"];
            if s.settings.embed_status_flags {
                status.clone()
            } else {
                json!({"id": status["id"], "name": status["name"], "color": status["color"]})
            }
        }
        "display_id" => match s.profile {
            Profile::Cloud if s.settings.display_id_object => {
                json!({"value": r.display_id.to_string(), "display_value": format!("REQ-{}", r.display_id)})
            }
            _ => json!(r.display_id.to_string()),
        },
        "created_by" => person(s.profile, &r.created_by),
        "created_time" => date(r.created_ms),
        "last_updated_time" => match r.updated_ms {
            None if !s.settings.null_until_edited => date(r.created_ms),
            updated => opt_date(updated),
        },
        "assigned_time" => opt_date(r.assigned_ms),
        "resolved_time" => opt_date(r.resolved_ms),
        "completed_time" => opt_date(r.completed_ms),
        "responded_time" => opt_date(r.responded_ms),
        "short_description" => {
            let description = r
                .fields
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!(
                strip_html(description)
                    .chars()
                    .take(100)
                    .collect::<String>()
            )
        }
        "resolution" => r.resolution.as_ref().map_or(Value::Null, |res| {
            let files: Vec<Value> = s
                .attachments
                .iter()
                .filter(|a| a.request_id == r.id && a.owner == AttachmentOwner::Resolution)
                .map(|a| attachment(s, a))
                .collect();
            json!({"content": res.content, "submitted_by": user_ref(&res.by),
                   "submitted_on": date(res.at_ms), "resolution_attachments": files})
        }),
        "closure_info" => r.closure_info.clone().unwrap_or(Value::Null),
        "has_attachments" => json!(s.attachments.iter().any(|a| listed(&a))),
        "attachments" => Value::Array(
            s.attachments
                .iter()
                .filter(listed)
                .map(|a| attachment(s, a))
                .collect(),
        ),
        "has_notes" => json!(s.notes.iter().any(|n| n.request_id == r.id)),
        "has_conversation" => json!(s.emails.iter().any(|e| e.request_id == r.id)),
        "is_service_request" => json!(
            r.fields
                .get("request_type")
                .is_some_and(|t| t["name"] == "Service Request")
        ),
        "is_reopened" => json!(r.is_reopened),
        "unreplied_count" => json!(unreplied(s, r)),
        "time_elapsed" => json!("0"),
        "is_trashed" => json!(r.trashed.is_some()),
        "deleted_time" => opt_date(r.trashed.as_ref().map(|t| t.at_ms)),
        "deleted_by" => r.trashed.as_ref().map_or(Value::Null, |t| user_ref(&t.by)),
        _ => return None,
    })
}

/// What a request carries before its own fields: nulls, empty lists, `false` flags.
fn request_defaults() -> Map<String, Value> {
    let mut v = Map::new();
    for key in [
        "description",
        "technician",
        "group",
        "site",
        "priority",
        "urgency",
        "impact",
        "level",
        "mode",
        "request_type",
        "category",
        "subcategory",
        "item",
        "service_category",
        "on_behalf_of",
        "due_by_time",
        "first_response_due_by_time",
        "scheduled_start_time",
        "scheduled_end_time",
        "impact_details",
    ] {
        v.insert(key.into(), Value::Null);
    }
    for key in ["email_to", "email_cc", "email_bcc", "email_ids_to_notify"] {
        v.insert(key.into(), json!([]));
    }
    for flag in [
        "is_overdue",
        "is_first_response_overdue",
        "is_escalated",
        "is_read",
        "is_fcr",
        "has_linked_requests",
        "has_problem",
        "has_project",
        "has_request_initiated_change",
        "has_draft",
        "cancellation_requested",
    ] {
        v.insert(flag.into(), json!(false));
    }
    v
}

/// Requester e-mails since the last technician e-mail the requester sees or public note ([U]:
/// SDP's exact rule is unknown; a public note is how the team answers through the API, and a
/// forward or an internal mail answers nobody).
fn unreplied(s: &State, r: &Request) -> usize {
    let last_reply = s
        .emails
        .iter()
        .filter(|e| e.request_id == r.id && !e.from_requester && e.show_to_requester)
        .map(|e| e.time_ms)
        .chain(
            s.notes
                .iter()
                .filter(|n| n.request_id == r.id && n.show_to_requester == Some(true))
                .map(|n| n.created_ms),
        )
        .max()
        .unwrap_or(0);
    s.emails
        .iter()
        .filter(|e| e.request_id == r.id && e.from_requester && e.time_ms > last_reply)
        .count()
}

/// What a list row carries when `fields_required` does not say otherwise (§2.4): no
/// `description`, `udf_fields`, `last_updated_time`, nor `priority`.
pub(crate) const ABBREVIATED: &[&str] = &[
    "id",
    "display_id",
    "subject",
    "requester",
    "technician",
    "status",
    "template",
    "group",
    "created_time",
    "due_by_time",
    "has_notes",
    "is_service_request",
    "cancellation_requested",
    "has_draft",
];

pub(crate) fn note(s: &State, n: &StoredNote) -> Value {
    let (time_key, by_key) = match s.profile {
        Profile::OnPrem => ("added_time", "added_by"),
        Profile::Cloud => ("created_time", "created_by"),
    };
    let mut v = json!({
        "id": n.id,
        "description": n.description,
        "show_to_requester": n.show_to_requester.unwrap_or(false),
        "notify_technician": n.notify_technician.unwrap_or(false),
        "mark_first_response": n.mark_first_response.unwrap_or(false),
        "add_to_linked_requests": n.add_to_linked_requests.unwrap_or(false),
        "last_updated_time": date(n.updated_ms),
        "last_updated_by": user_ref(&n.updated_by),
        "request": {"id": n.request_id},
    });
    v[time_key] = date(n.created_ms);
    v[by_key] = user_ref(&n.author);
    v
}

pub(crate) fn note_key(profile: Profile) -> &'static str {
    match profile {
        Profile::OnPrem => "note",
        Profile::Cloud => "request_note",
    }
}

/// Relative to the server root, or absolute on the other origin when one is set.
pub(crate) fn content_url(s: &State, a: &StoredAttachment) -> String {
    match &s.settings.content_origin {
        Some(origin) => foreign::url(origin, a),
        None => format!(
            "/api/v3/requests/{}/attachments/{}/download",
            a.request_id, a.id
        ),
    }
}

pub(crate) fn attachment(s: &State, a: &StoredAttachment) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "content_type": a.content_type,
        "module": "request",
        "size": {"value": a.bytes.len().to_string(), "display_value": size_text(a.bytes.len())},
        "content_url": content_url(s, a),
        "attached_by": user_ref(&a.attached_by),
        "attached_on": date(a.attached_ms),
    })
}

fn size_text(bytes: usize) -> String {
    #[expect(
        clippy::cast_precision_loss,
        reason = "a display value with two decimals"
    )]
    let kb = bytes as f64 / 1024.0;
    if kb < 1024.0 {
        format!("{kb:.2}KB")
    } else {
        format!("{:.2}MB", kb / 1024.0)
    }
}

/// A conversations row: metadata only.
pub(crate) fn conversation_note(n: &StoredNote) -> Value {
    json!({"id": n.id, "type": "NOTES", "created_time": date(n.created_ms),
           "show_to_requester": n.show_to_requester.unwrap_or(false), "created_by": user_ref(&n.author),
           "has_attachments": false,
           "content_url": format!("/api/v3/requests/{}/notes/{}", n.request_id, n.id)})
}

/// The conversation `type` of an e-mail, and of the notification a merge leaves ([U]: the live
/// row type of a merge is not known).
fn conversation_type(e: &StoredEmail) -> &'static str {
    if e.merged_request_id.is_some() {
        "NOTIFICATION"
    } else {
        "EMAIL"
    }
}

pub(crate) fn conversation_email(s: &State, e: &StoredEmail) -> Value {
    let has_attachments = s
        .attachments
        .iter()
        .any(|a| a.owner == AttachmentOwner::Email(e.id.clone()));
    json!({"id": e.id, "type": conversation_type(e), "created_time": date(e.time_ms),
           "show_to_requester": e.show_to_requester,
           "created_by": user_ref(&e.sender), "has_attachments": has_attachments,
           "content_url": format!("/api/v3/requests/{}/notifications/{}", e.request_id, e.id)})
}

/// `GET /requests/{id}/notifications/{id}`: the e-mail itself.
pub(crate) fn notification(s: &State, e: &StoredEmail) -> Value {
    let attachments: Vec<Value> = s
        .attachments
        .iter()
        .filter(|a| a.owner == AttachmentOwner::Email(e.id.clone()))
        .map(|a| attachment(s, a))
        .collect();
    let mut v = json!({"id": e.id, "subject": e.subject, "description": e.description,
           "sender": {"name": e.sender.name, "email_id": e.sender.email},
           "to": recipients(s, &e.to), "cc": recipients(s, &e.cc), "time": date(e.time_ms),
           "type": conversation_type(e), "show_to_requester": e.show_to_requester,
           "from_requester": e.from_requester, "attachments": attachments});
    if let Some(child) = &e.merged_request_id {
        // Where a live client reads a merge (§13.2): the operation in `notification_history`,
        // the child's id beside it.
        v["notification_history"] = json!({"operation": "MERGE"});
        v["merged_request_id"] = json!(child);
    }
    v
}

/// `to`/`cc` of a notification: addresses, or `{email_id, name}` objects where
/// [`super::state::Settings::recipient_objects`] says so (`name` from the known users, else null).
fn recipients(s: &State, addresses: &[String]) -> Value {
    if !s.settings.recipient_objects {
        return json!(addresses);
    }
    let name = |address: &str| {
        let technicians = s.tables["technicians"].iter().map(|t| {
            (
                t["email_id"].as_str().unwrap_or_default(),
                t["name"].as_str().unwrap_or_default(),
            )
        });
        s.users
            .iter()
            .map(|u| (u.email.as_deref().unwrap_or_default(), u.name.as_str()))
            .chain(technicians)
            .find(|(email, _)| email.eq_ignore_ascii_case(address))
            .map(|(_, name)| name.to_owned())
    };
    addresses
        .iter()
        .map(|a| json!({"email_id": a, "name": name(a)}))
        .collect()
}

/// `DELETE /requests/{id}/move_to_trash`'s `request` (§13.1).
pub(crate) fn trashed(r: &Request) -> Value {
    let trash = r.trashed.as_ref();
    json!({"id": r.id, "is_trashed": trash.is_some(),
           "deleted_by": trash.map(|t| json!({"id": t.by.id, "name": t.by.name})),
           "deleted_on": trash.map(|t| date(t.at_ms))})
}

fn strip_html(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

pub(crate) fn guess_content_type(name: &str) -> String {
    let ext = name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
    .to_owned()
}
