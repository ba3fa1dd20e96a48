//! The technician's side for a person at the desk (the demo's service desk page): the same changes
//! as the test-side technician methods, but a refusal comes back as SDP's message instead of a
//! panic, because a person typed it.

use actix_web::web::Bytes;
use serde_json::{Map, Value, json};

use super::state::AttachmentOwner;
use super::wire::{self, SdpError};
use super::{Email, EmailFrom, FakeSdp};

/// The API user the appliance calls with; not someone a request is assigned to.
const API_USER: &str = "Deskbridge API";

/// One thing a technician does to a request.
#[derive(Clone, Debug)]
pub enum DeskAction {
    /// An e-mail reply to the requester, who sees it (HTML, as SDP stores it).
    Reply(String),
    /// A note (HTML); `public` is `show_to_requester`.
    Note { html: String, public: bool },
    /// Assigns the technician of this name.
    Assign(String),
    /// Changes the status to the one of this name.
    Status(String),
    /// Attaches a file to the request.
    Attach { name: String, bytes: Bytes },
    /// Sets the resolution (HTML) and the status "Resolved".
    Resolve(String),
}

impl FakeSdp {
    /// The technicians a request can be assigned to, by name.
    pub fn technician_names(&self) -> Vec<String> {
        names(&self.state().tables["technicians"])
            .filter(|name| name != API_USER)
            .collect()
    }

    /// The statuses a request can take, by name, in SDP's order.
    pub fn status_names(&self) -> Vec<String> {
        names(&self.state().tables["statuses"]).collect()
    }

    /// Does `action` to request `id` as `technician`; `Err` carries SDP's reason.
    pub fn act(&self, id: &str, technician: &str, action: DeskAction) -> Result<(), String> {
        if technician == API_USER || !self.technician_names().iter().any(|t| t == technician) {
            return Err(format!("There is no technician named {technician}."));
        }
        let mut s = self.state();
        let by = s.technician(technician);
        let done = match action {
            DeskAction::Reply(html) => {
                let mail = Email::new(EmailFrom::Technician(technician.to_owned()), &html);
                s.add_email(id, mail).map(drop)
            }
            DeskAction::Note { html, public } => {
                let input = object(json!({"description": html, "show_to_requester": public}));
                s.add_note(id, &input, &by).map(drop)
            }
            DeskAction::Assign(name) => {
                let input = object(json!({"technician": {"name": name}}));
                s.update_request(id, &input, false)
            }
            DeskAction::Status(name) => {
                let input = object(json!({"status": {"name": name}}));
                s.update_request(id, &input, false)
            }
            DeskAction::Attach { name, bytes } => {
                let content_type = wire::guess_content_type(&name);
                let owner = AttachmentOwner::Request;
                s.add_attachment(id, &name, &content_type, bytes, owner, &by)
                    .map(drop)
            }
            DeskAction::Resolve(html) => s
                .set_resolution_with_files(id, &html, Vec::new(), &by)
                .and_then(|()| {
                    let input = object(json!({"status": {"name": "Resolved"}}));
                    s.update_request(id, &input, false)
                }),
        };
        done.map_err(|e| reason(&e))
    }
}

fn names(rows: &[Value]) -> impl Iterator<Item = String> + '_ {
    rows.iter()
        .filter(|row| row["deleted"] != true)
        .filter_map(|row| row["name"].as_str().map(str::to_owned))
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn reason(e: &SdpError) -> String {
    let what = e.message.clone().unwrap_or_else(|| "Refused".to_owned());
    match &e.field {
        Some(field) => format!("{what} ({field}, SDP code {})", e.code),
        None => format!("{what} (SDP code {})", e.code),
    }
}
