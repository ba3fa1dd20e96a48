//! Portal values ↔ SDP names, as configured in `sdp.mapping`.

use serde_json::{Value, json};

use super::text;
use crate::config::MappingConfig;
use crate::domain::{Kind, Message, MessageId, Priority, Status, Ticket};
use crate::sdp::dto::{Request, StatusRef};

const MARKER_OPEN: &str = "[deskbridge:";

/// Removes deskbridge markers (ours or another appliance's) from text shown in the portal: a
/// technician quoting a customer's message quotes its marker too.
pub fn without_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARKER_OPEN) {
        let after = &rest[at + MARKER_OPEN.len()..];
        if let Some(end) = after.find(']').filter(|end| {
            after[..*end]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-')
        }) {
            out.push_str(rest[..at].trim_end_matches([' ', '\u{a0}']));
            rest = &after[end + 1..];
        } else {
            out.push_str(&rest[..at + MARKER_OPEN.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out.trim_end().to_owned()
}

pub struct Mapping {
    pub config: MappingConfig,
    /// This appliance's id in markers and number tags (`sdp.instance_id`, else the store's).
    pub instance: String,
    /// SDP's statuses with their flags, as `GET /statuses` gave them (see `sync::statuses`).
    pub catalog: StatusCatalog,
}

/// A status's `(in_progress, stop_timer)`.
type Flags = (Option<bool>, Option<bool>);

/// SDP's statuses by lower-cased name: `(in_progress, stop_timer)`. Builds that embed a status as
/// `{id, name, color}` only are classified from here.
#[derive(Debug, Default)]
pub struct StatusCatalog {
    flags: std::sync::RwLock<std::collections::BTreeMap<String, Flags>>,
    /// When it was last read from SDP.
    pub(crate) read_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl StatusCatalog {
    pub fn flags(&self, name: &str) -> Option<Flags> {
        self.flags
            .read()
            .expect("catalog lock is never poisoned: no panics while held")
            .get(&name.to_lowercase())
            .copied()
    }

    pub fn replace(&self, statuses: impl IntoIterator<Item = StatusRef>) {
        let fresh = statuses
            .into_iter()
            .filter_map(|s| Some((s.name?.to_lowercase(), (s.in_progress, s.stop_timer))))
            .collect();
        *self
            .flags
            .write()
            .expect("catalog lock is never poisoned: no panics while held") = fresh;
    }

    /// Every status SDP listed, by name as SDP spells it lower-cased.
    pub fn names(&self) -> Vec<String> {
        self.flags
            .read()
            .expect("catalog lock is never poisoned: no panics while held")
            .keys()
            .cloned()
            .collect()
    }
}

/// A mapped SDP status, with a warning when the name was not configured.
#[derive(Debug, PartialEq, Eq)]
pub struct MappedStatus {
    pub status: Status,
    pub warning: Option<String>,
}

impl Mapping {
    /// The marker put at the end of every note deskbridge writes: with the SDP note id stored at
    /// delivery, it tells our notes from the team's, and finds a note again after an unanswered call.
    pub fn note_marker(&self, message: MessageId) -> String {
        format!("{MARKER_OPEN}{}:m{}]", self.instance, message.0)
    }

    /// The portal message whose marker (this appliance's) ends a note, if any.
    pub fn marked_message(&self, description: &str) -> Option<MessageId> {
        let open = format!("{MARKER_OPEN}{}:m", self.instance);
        let at = description.rfind(&open)?;
        let digits = &description[at + open.len()..];
        let end = digits.find(']')?;
        digits[..end].parse().ok().map(MessageId)
    }

    /// The tag that carries the portal number in the subject when no custom field is configured.
    pub fn number_tag(&self, number: &str) -> String {
        format!("[{number}@{}]", self.instance)
    }

    /// The portal number a request carries when this appliance created it: its number tag, or
    /// the number field when one is configured.
    pub fn our_number(&self, request: &Request) -> Option<String> {
        let udf = self.config.number_udf.trim();
        if udf.is_empty() {
            let subject = request.subject.as_deref()?.trim_start();
            let (tag, _) = subject.strip_prefix('[')?.split_once(']')?;
            let (number, instance) = tag.rsplit_once('@')?;
            (instance == self.instance && !number.is_empty()).then(|| number.to_owned())
        } else {
            let value = request.udf_fields.as_ref()?.get(udf)?.as_str()?.trim();
            (!value.is_empty()).then(|| value.to_owned())
        }
    }

    /// A request's subject without the number tag deskbridge put in front of it.
    pub fn without_number_tag(&self, subject: &str, number: &str) -> String {
        let tag = self.number_tag(number);
        subject
            .trim()
            .strip_prefix(&tag)
            .unwrap_or(subject)
            .trim()
            .to_owned()
    }

    pub fn request_type(&self, kind: Kind) -> &str {
        match kind {
            Kind::ProblemReport => &self.config.request_type_problem_report,
            Kind::InformationRequest => &self.config.request_type_information_request,
        }
    }

    pub fn priority(&self, priority: Priority) -> &str {
        match priority {
            Priority::Low => &self.config.priority_low,
            Priority::Medium => &self.config.priority_medium,
            Priority::High => &self.config.priority_high,
            Priority::Urgent => &self.config.priority_urgent,
        }
    }

    /// The `request` object for a new SDP request. Fields named in `omit` (refused by SDP before)
    /// are left out.
    pub fn new_request(&self, ticket: &Ticket, omit: &[String]) -> Value {
        let udf = self.config.number_udf.trim();
        let subject = if udf.is_empty() {
            let tag = self.number_tag(&ticket.number);
            let room = 250 - tag.chars().count() - 1;
            let short: String = ticket.subject.chars().take(room).collect();
            format!("{tag} {short}")
        } else {
            ticket.subject.clone()
        };
        let mut description = text::to_html(&ticket.description);
        if let Some(service) = &ticket.service {
            description.push_str("<br><br>Service: ");
            description.push_str(&text::to_html(service));
        }
        let mut request = json!({
            "subject": subject,
            "description": description,
            "requester": {"email_id": ticket.requester.email, "name": ticket.requester.name},
        });
        let mut set = |field: &str, value: Value| {
            if !omit.iter().any(|o| o == field) {
                request[field] = value;
            }
        };
        set(
            "request_type",
            json!({"name": self.request_type(ticket.kind)}),
        );
        set("priority", json!({"name": self.priority(ticket.priority)}));
        // A category the customer chose goes by id (names are not stable keys); otherwise the
        // configured default, if any.
        if let Some(choice) = &ticket.category {
            set("category", json!({"id": choice.category.id}));
            if let Some(sub) = &choice.subcategory {
                set("subcategory", json!({"id": sub.id}));
            }
        } else if !self.config.category.trim().is_empty() {
            set("category", json!({"name": self.config.category.trim()}));
        }
        if !self.config.template.trim().is_empty() {
            set("template", json!({"name": self.config.template.trim()}));
        }
        if !udf.is_empty() {
            set("udf_fields", json!({ udf: ticket.number }));
        }
        if !ticket.cc.is_empty() {
            set("email_ids_to_notify", json!(ticket.cc));
        }
        request
    }

    /// The `search_criteria` that finds the request created for a portal number.
    pub fn search_for(&self, number: &str) -> Value {
        let udf = self.config.number_udf.trim();
        if udf.is_empty() {
            json!([{"field": "subject", "condition": "contains", "value": self.number_tag(number)}])
        } else {
            json!([{"field": format!("udf_fields.{udf}"), "condition": "is", "value": number}])
        }
    }

    /// The note for a customer message: its text as HTML, then the marker.
    pub fn note_html(&self, message: &Message) -> String {
        format!(
            "{}<br><br>{}",
            text::to_html(&message.body),
            self.note_marker(message.id)
        )
    }

    /// The portal status a configured SDP status name maps to.
    pub fn configured(&self, name: &str) -> Option<Status> {
        self.config
            .statuses
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| Status::parse(v))
    }

    /// What an SDP status means without a mapping, by its flags: timer stopped → pending, not in
    /// progress (completed) → resolved, otherwise in progress.
    pub fn by_flags(in_progress: Option<bool>, stop_timer: Option<bool>) -> Status {
        match (in_progress, stop_timer) {
            (Some(false), _) => Status::Resolved,
            (_, Some(true)) => Status::Pending,
            _ => Status::InProgress,
        }
    }

    /// Maps an SDP status: by configured name, else by its flags (from the request, else from the
    /// catalog), with a note in sync health. `assigned`: a technician or a group is set, which
    /// makes an open request `assigned` (SDP has no such default status).
    pub fn status(&self, sdp: &StatusRef, assigned: bool) -> MappedStatus {
        let name = sdp.name.as_deref().unwrap_or_default();
        let (status, warning) = if let Some(status) = self.configured(name) {
            (status, None)
        } else {
            let known = self.catalog.flags(name);
            let in_progress = sdp.in_progress.or(known.and_then(|k| k.0));
            let stop_timer = sdp.stop_timer.or(known.and_then(|k| k.1));
            let status = Self::by_flags(in_progress, stop_timer);
            (
                status,
                Some(format!(
                    "SDP status {name:?} is not in sdp.mapping.statuses; treated as {status} by its flags"
                )),
            )
        };
        let status = if status == Status::New && assigned {
            Status::Assigned
        } else {
            status
        };
        MappedStatus { status, warning }
    }
}

/// The closure comment of a close the customer confirmed; read back, it is not the team's.
pub(crate) const CUSTOMER_CLOSE: &str = "Confirmed by the customer in the portal";

/// Whether someone has the request: a technician, or only a support group.
pub(crate) fn assigned(request: &Request) -> bool {
    technician(request).is_some()
        || request
            .group
            .as_ref()
            .is_some_and(|g| g.name.as_deref().is_some_and(|n| !n.is_empty()) || g.id.is_some())
}

pub(crate) fn technician(request: &Request) -> Option<String> {
    request
        .technician
        .as_ref()
        .and_then(|t| t.name.clone())
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TicketId;

    fn mapping(config: MappingConfig) -> Mapping {
        Mapping {
            config,
            instance: "a1b2".into(),
            catalog: StatusCatalog::default(),
        }
    }

    fn ticket() -> Ticket {
        crate::domain::ticket::sample(123)
    }

    fn status(name: &str, in_progress: Option<bool>, stop_timer: Option<bool>) -> StatusRef {
        StatusRef {
            name: Some(name.into()),
            in_progress,
            stop_timer,
            ..StatusRef::default()
        }
    }

    #[test]
    fn a_chosen_category_goes_by_id_before_the_configured_default() {
        use crate::domain::ServiceChoice;
        use crate::domain::catalogue::Named;
        let m = mapping(MappingConfig {
            category: "Cloud".into(),
            ..MappingConfig::default()
        });
        assert_eq!(m.new_request(&ticket(), &[])["category"]["name"], "Cloud");
        let mut chosen = ticket();
        let named = |id: &str, name: &str| Named {
            id: id.into(),
            name: name.into(),
        };
        chosen.category = Some(ServiceChoice {
            category: named("4", "Network"),
            subcategory: Some(named("104", "VPN")),
        });
        let r = m.new_request(&chosen, &[]);
        assert_eq!(r["category"], json!({"id": "4"}));
        assert_eq!(r["subcategory"], json!({"id": "104"}));
        let without = m.new_request(&chosen, &["subcategory".into()]);
        assert!(without.get("subcategory").is_none());
    }

    #[test]
    fn a_new_request_carries_the_mapped_fields_and_the_number() {
        let m = mapping(MappingConfig::default());
        let r = m.new_request(&ticket(), &[]);
        assert_eq!(r["subject"], "[DB-000123@a1b2] VPN <down>");
        assert_eq!(r["description"], "Since 09:00<br>branch 12 &amp; 13");
        assert_eq!(r["requester"]["email_id"], "a@example.com");
        assert_eq!(r["request_type"]["name"], "Incident");
        assert_eq!(r["priority"]["name"], "Urgent");
        assert!(r.get("category").is_none());
        let without = m.new_request(&ticket(), &["priority".into()]);
        assert!(without.get("priority").is_none());

        assert!(r.get("template").is_none());

        let udf = mapping(MappingConfig {
            number_udf: "udf_sline_301".into(),
            template: "Cloud incident".into(),
            ..MappingConfig::default()
        });
        let r = udf.new_request(&ticket(), &[]);
        assert_eq!(r["subject"], "VPN <down>");
        assert_eq!(r["udf_fields"]["udf_sline_301"], "DB-000123");
        assert_eq!(r["template"]["name"], "Cloud incident");
        assert_eq!(
            udf.search_for("DB-000123")[0]["field"],
            "udf_fields.udf_sline_301"
        );
    }

    #[test]
    fn statuses_map_by_name_then_by_flags() {
        let m = mapping(MappingConfig::default());
        assert_eq!(
            m.status(&status("Open", Some(true), Some(false)), false)
                .status,
            Status::New
        );
        assert_eq!(
            m.status(&status("Open", None, None), true).status,
            Status::Assigned
        );
        assert_eq!(
            m.status(&status("on hold", None, None), false).status,
            Status::Pending
        );
        assert_eq!(
            m.status(&status("Canceled", None, None), false).status,
            Status::Closed
        );
        let odd = m.status(&status("Waiting for vendor", Some(true), Some(true)), false);
        assert_eq!(odd.status, Status::Pending);
        assert!(odd.warning.is_some());
        assert_eq!(
            m.status(&status("Done", Some(false), None), false).status,
            Status::Resolved
        );
        assert_eq!(
            m.status(&status("Working", Some(true), Some(false)), false)
                .status,
            Status::InProgress
        );
        // A build that embeds only {id, name, color}: the catalog from GET /statuses decides.
        m.catalog.replace([
            status("Awaiting Vendor", Some(true), Some(true)),
            status("Investigating", Some(true), Some(false)),
        ]);
        assert_eq!(
            m.status(&status("awaiting vendor", None, None), false)
                .status,
            Status::Pending
        );
        assert_eq!(
            m.status(&status("Investigating", None, None), false).status,
            Status::InProgress
        );
        assert_eq!(
            m.status(&status("Onhold", None, None), false).status,
            Status::Pending
        );
    }

    #[test]
    fn our_notes_are_recognised_by_this_instance_marker() {
        let message = Message {
            id: MessageId(42),
            ticket: TicketId(1),
            author: crate::domain::Author {
                name: "A".into(),
                role: crate::domain::AuthorRole::Customer,
            },
            body: "hi\nthere".into(),
            created_at: time::OffsetDateTime::now_utc(),
            origin: crate::domain::Origin::Portal,
            delivery: crate::domain::Delivery::Pending,
            sdp_id: None,
            edited_at: None,
        };
        let m = mapping(MappingConfig::default());
        let html = m.note_html(&message);
        assert_eq!(html, "hi<br>there<br><br>[deskbridge:a1b2:m42]");
        assert_eq!(m.marked_message(&html), Some(MessageId(42)));
        assert_eq!(m.marked_message("<p>from a technician</p>"), None);
        // Another appliance's note, or an earlier version's, is not ours.
        assert_eq!(m.marked_message("hi [deskbridge:ffff:m42]"), None);
        assert_eq!(m.marked_message("hi [deskbridge:m42]"), None);
        assert_eq!(
            m.marked_message("quote [deskbridge:a1b2:m7] answer [deskbridge:a1b2:m9]"),
            Some(MessageId(9))
        );
    }

    #[test]
    fn the_number_tag_comes_off_a_subject() {
        let m = mapping(MappingConfig::default());
        assert_eq!(
            m.without_number_tag("[DB-000123@a1b2] VPN down", "DB-000123"),
            "VPN down"
        );
        assert_eq!(
            m.without_number_tag("[DB-000123@ffff] VPN down", "DB-000123"),
            "[DB-000123@ffff] VPN down"
        );
        assert_eq!(m.without_number_tag(" Printer ", "DB-000001"), "Printer");
    }

    #[test]
    fn our_requests_are_known_by_their_number() {
        let request = |subject: &str, udf: Option<&str>| Request {
            subject: Some(subject.into()),
            udf_fields: udf.map(|n| serde_json::from_value(json!({"udf_sline_301": n})).unwrap()),
            ..Request::default()
        };
        let m = mapping(MappingConfig::default());
        let ours = m.our_number(&request("[DB-000123@a1b2] VPN down", None));
        assert_eq!(ours.as_deref(), Some("DB-000123"));
        assert_eq!(
            m.our_number(&request("[DB-000123@ffff] VPN down", None)),
            None
        );
        assert_eq!(m.our_number(&request("VPN [DB-1@a1b2]", None)), None);
        assert_eq!(m.our_number(&request("[@a1b2] x", None)), None);
        let m = mapping(MappingConfig {
            number_udf: "udf_sline_301".into(),
            ..MappingConfig::default()
        });
        let ours = m.our_number(&request("VPN down", Some("DB-000123")));
        assert_eq!(ours.as_deref(), Some("DB-000123"));
        assert_eq!(m.our_number(&request("[DB-1@a1b2] x", None)), None);
    }

    #[test]
    fn markers_are_taken_out_of_text_shown_in_the_portal() {
        assert_eq!(
            without_markers("> hi [deskbridge:a1b2:m42]\nSee above [deskbridge:m7]"),
            "> hi\nSee above"
        );
        assert_eq!(
            without_markers("[deskbridge: not one"),
            "[deskbridge: not one"
        );
        assert_eq!(without_markers("plain"), "plain");
    }
}
