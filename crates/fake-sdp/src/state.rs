//! The fake's data and its rules: everything that both the HTTP routes and the test-side technician
//! methods change. One mutex around [`State`]; nothing holds it across an `await`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::web::Bytes;
use serde_json::{Map, Value, json};

use super::foreign::ForeignHit;
use super::search::{ListParams, ListRules};
use super::wire::{self, SdpError};
use super::{Email, EmailFrom, Fault, OAuthCreds, Op, Profile};

pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(state: State) -> Shared {
        Shared {
            state: Mutex::new(state),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A user as SDP shows it inside requests, notes and e-mails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub is_technician: bool,
}

#[derive(Clone, Debug)]
pub struct StatusChange {
    pub from: String,
    pub to: String,
    pub comments: Option<String>,
    pub at_ms: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct Resolution {
    pub content: String,
    pub by: Person,
    pub at_ms: i64,
}

/// A request; `fields` holds the writable fields already in wire form (lookups resolved).
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub id: String,
    pub display_id: u64,
    pub fields: Map<String, Value>,
    pub created_by: Person,
    pub created_ms: i64,
    /// `None` until the first edit: SDP shows `last_updated_time: null` on a request never edited.
    pub updated_ms: Option<i64>,
    pub assigned_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    /// The first response, as SDP records it (`responded_time`).
    pub responded_ms: Option<i64>,
    pub completed_ms: Option<i64>,
    pub resolution: Option<Resolution>,
    pub closure_info: Option<Value>,
    pub is_reopened: bool,
    pub status_changes: Vec<StatusChange>,
    pub update_reasons: Vec<String>,
    /// Set while the request is in the trash.
    pub trashed: Option<Trash>,
    /// The parent it was merged into: from then on it answers 404 naming the parent.
    pub merged_into: Option<String>,
}

/// Who moved a request to the trash, and when.
#[derive(Clone, Debug)]
pub struct Trash {
    pub by: Person,
    pub at_ms: i64,
}

/// What a trashed request does where the doc knows nothing ([U], §13.1); see
/// [`super::FakeSdp::set_trash_rules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrashRules {
    /// Every path of a trashed request (but restore and purge) answers 404 / 4007; off, a GET
    /// answers the request with `is_trashed: true`.
    pub get_not_found: bool,
    /// `GET /requests` lists trashed requests too.
    pub in_lists: bool,
    /// API changes to a trashed request (but restore and purge) answer 403 / 4002, as the
    /// trash is read-only in SDP's UI.
    pub read_only: bool,
}

impl Default for TrashRules {
    fn default() -> TrashRules {
        TrashRules {
            get_not_found: false,
            in_lists: false,
            read_only: true,
        }
    }
}

impl Request {
    pub(crate) fn status_name(&self) -> String {
        self.fields["status"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn requester(&self) -> Option<&Value> {
        self.fields.get("requester").filter(|v| v.is_object())
    }
}

/// A note as stored; the flags are `None` when the caller did not send them.
#[derive(Clone, Debug)]
pub struct StoredNote {
    pub id: String,
    pub request_id: String,
    pub description: String,
    pub show_to_requester: Option<bool>,
    pub notify_technician: Option<bool>,
    pub mark_first_response: Option<bool>,
    pub add_to_linked_requests: Option<bool>,
    pub author: Person,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Who edited it last (its author until someone edits it).
    pub updated_by: Person,
}

/// An e-mail threaded onto a request (a conversation of type `EMAIL`).
#[derive(Clone, Debug)]
pub struct StoredEmail {
    pub id: String,
    pub request_id: String,
    pub subject: String,
    pub description: String,
    pub sender: Person,
    /// Recipients' addresses.
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub from_requester: bool,
    /// Whether the requester sees it in the portal (false for forwards and internal mails).
    pub show_to_requester: bool,
    pub time_ms: i64,
    /// Set on the notification a merge leaves on the parent: the merged child's id.
    pub merged_request_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachmentOwner {
    /// Listed on the request.
    Request,
    /// Uploaded with `_upload` and not bound yet.
    Unbound,
    /// Came with an e-mail (notification id).
    Email(String),
    /// Part of the resolution (`resolution.resolution_attachments`).
    Resolution,
}

#[derive(Clone, Debug)]
pub struct StoredAttachment {
    pub id: String,
    pub request_id: String,
    pub name: String,
    pub content_type: String,
    /// Shared, not copied: every download and every [`super::FakeSdp::attachments`] shares it.
    pub bytes: Bytes,
    pub owner: AttachmentOwner,
    pub attached_by: Person,
    pub attached_ms: i64,
}

/// One call received, as recorded on arrival; `status` is `None` while in flight or when the
/// connection was dropped without an answer.
#[derive(Clone, Debug)]
pub struct CallRecord {
    /// Arrival number, from 1; survives [`super::FakeSdp::reset_calls`], so numbers are unique.
    pub seq: u64,
    pub at: Instant,
    pub epoch_ms: i64,
    pub method: String,
    pub path: String,
    /// `"PUT /requests/{id}/notes/{id}"`: the path without prefix, ids replaced.
    pub endpoint: String,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    /// The raw `input_data` text (from the form body, else the query string).
    pub input_data: Option<String>,
    pub status: Option<u16>,
    /// Refused for rate: by the call budget or by a rate-limit [`Fault`]. Such a call was not
    /// counted, not read and changed nothing.
    pub throttled: bool,
}

impl CallRecord {
    /// Whether the call went to the SDP API (not the Zoho token endpoint, not an unknown path).
    pub fn is_api(&self) -> bool {
        self.endpoint != super::routes::TOKEN_ENDPOINT && self.path.contains("/api/v3/")
    }
}

#[expect(
    clippy::struct_excessive_bools,
    reason = "independent switches, one per instance policy, each with its own setter"
)]
pub(crate) struct Settings {
    /// Set while the listener is closed: calls still arriving on old connections get no answer.
    pub refusing: bool,
    pub latency: Duration,
    pub max_upload: usize,
    pub display_id_object: bool,
    pub create_status: u16,
    /// `row_count` of a list call that does not give one.
    pub default_row_count: usize,
    /// Whether `fields_required` inside `list_info` is read (Cloud) or ignored (on-prem, §13.9).
    pub fields_required_in_list_info: bool,
    /// Single-object GETs answer 400 when any `input_data` is attached (§13.13).
    pub reject_single_get_input: bool,
    /// `last_updated_time` is `null` until the first edit (§13.13); off, it starts at creation.
    pub null_until_edited: bool,
    /// Whether rows of the notes list carry `description` (a live on-prem list omits it, §13.5).
    pub note_list_descriptions: bool,
    /// Whether `search_criteria` may mix a date criterion with any other (§13.13: on-prem 400).
    pub mixed_date_criteria: bool,
    /// Whether both `/users` and `/requesters` are served; otherwise on-prem serves only `/users`
    /// and Cloud only `/requesters`, the other answering 404 (§13.7).
    pub both_user_paths: bool,
    pub trash: TrashRules,
    /// Whether an unknown requester e-mail or name on create or update becomes a new requester
    /// (else 4001 naming the field).
    pub auto_create_requesters: bool,
    /// Whether a request's `status` carries `internal_name`, `in_progress` and `stop_timer`;
    /// off, only `{id, name, color}` as on-prem 15100+ (§13.6).
    pub embed_status_flags: bool,
    /// When set, attachment `content_url`s are absolute on this other origin (the second
    /// listener, [`super::foreign`]).
    pub content_origin: Option<String>,
    /// Whether a notification's `to`/`cc` are `{email_id, name}` objects rather than addresses.
    pub recipient_objects: bool,
}

#[derive(Default)]
pub(crate) struct Faults {
    pub down_503: bool,
    pub slow: Option<Duration>,
    /// `(every_nth, retry_after, calls seen)`
    pub rate_limit: Option<(u32, Option<u64>, u32)>,
    /// `(max, per, retry_after, accepted call times)`
    pub rate_window: Option<(u32, Duration, Option<u64>, VecDeque<Instant>)>,
    pub commit_then_drop: Vec<(Op, u32)>,
    pub mandatory: Vec<String>,
    pub closure_rule: Vec<String>,
    pub forbidden: Vec<String>,
    pub token_limit: Option<u32>,
}

impl Faults {
    pub(crate) fn set(&mut self, fault: Fault) {
        match fault {
            Fault::Down503 => self.down_503 = true,
            Fault::Slow(d) => self.slow = Some(d),
            Fault::RateLimit {
                every_nth,
                retry_after_secs,
            } => self.rate_limit = Some((every_nth.max(1), retry_after_secs, 0)),
            Fault::RateWindow {
                max,
                per,
                retry_after_secs,
            } => self.rate_window = Some((max, per, retry_after_secs, VecDeque::new())),
            Fault::CommitThenDrop { op, times } => {
                self.commit_then_drop.retain(|(o, _)| *o != op);
                self.commit_then_drop.push((op, times));
            }
            Fault::MandatoryFields(fields) => self.mandatory = fields,
            Fault::ClosureRule(fields) => self.closure_rule = fields,
            Fault::ForbiddenField(field) => self.forbidden = vec![field],
            Fault::TokenLimit(n) => self.token_limit = Some(n),
        }
    }

    /// Counts an API call against the rate-limit faults; the 429 to answer when it is over them.
    pub(crate) fn rate_limited(&mut self, now: Instant) -> Option<SdpError> {
        if let Some((every, retry_after, seen)) = &mut self.rate_limit {
            *seen += 1;
            if *seen % *every == 0 {
                return Some(SdpError::rate_limited(*retry_after));
            }
        }
        if let Some((max, per, retry_after, times)) = &mut self.rate_window {
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= *per)
            {
                times.pop_front();
            }
            if times.len() >= *max as usize {
                return Some(SdpError::rate_limited(*retry_after));
            }
            times.push_back(now);
        }
        None
    }

    /// Whether a successful `op` must now be answered by dropping the connection (uses one shot).
    pub(crate) fn take_drop(&mut self, op: Op) -> bool {
        let hit = self
            .commit_then_drop
            .iter_mut()
            .find(|(o, n)| *n > 0 && (*o == op || *o == Op::AnyMutation));
        match hit {
            Some((_, n)) => {
                *n -= 1;
                true
            }
            None => false,
        }
    }
}

/// The instance's call budget: a sliding window of accepted API calls and, on-prem, the block that
/// follows a refusal.
pub(crate) struct Budget {
    /// `(max calls, per window)`; `None` is unlimited.
    pub limit: Option<(u32, Duration)>,
    /// Arrival times of the accepted calls still inside the window, oldest first.
    pub accepted: VecDeque<Instant>,
    /// On-prem: how long every call is refused once the budget was exceeded.
    pub block: Duration,
    pub blocked_until: Option<Instant>,
    /// A `Retry-After` (seconds) on refusals; none by default, as SDP documents none.
    pub retry_after: Option<u64>,
}

impl Budget {
    fn new(limit: Option<(u32, Duration)>) -> Budget {
        Budget {
            limit,
            accepted: VecDeque::new(),
            block: Duration::from_mins(1),
            blocked_until: None,
            retry_after: None,
        }
    }

    /// Whether a call arriving `now` is refused; a refusal is not counted. On-prem an excess call
    /// starts a block, and the calls it paid for leave the window.
    fn refuses(&mut self, profile: Profile, now: Instant) -> bool {
        if let Some(until) = self.blocked_until {
            if now < until {
                return true;
            }
            self.blocked_until = None;
        }
        let Some((max, per)) = self.limit else {
            return false;
        };
        while self
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= per)
        {
            self.accepted.pop_front();
        }
        if self.accepted.len() < max as usize {
            return false;
        }
        if profile == Profile::OnPrem && self.block > Duration::ZERO {
            self.blocked_until = Some(now + self.block);
            self.accepted.clear();
        }
        true
    }

    fn count(&mut self, now: Instant) {
        if self.limit.is_some() {
            self.accepted.push_back(now);
        }
    }
}

/// Why an API call is answered before it is read.
pub(crate) enum Refusal {
    /// The call budget: Cloud's 429 / 4015, or on-prem's "URL blocked" page.
    Budget { retry_after: Option<u64> },
    /// A rate-limit [`Fault`].
    RateFault(SdpError),
}

pub(crate) struct AuthState {
    pub api_key: String,
    pub creds: OAuthCreds,
    pub access_tokens: HashMap<String, Instant>,
    pub refresh_tokens: HashSet<String>,
    pub grant_codes: HashSet<String>,
    pub lifetime: Duration,
    pub token_requests: usize,
    /// Cloud: the OAuth scopes the tokens carry (the documented set by default: no `users`).
    pub scopes: Vec<String>,
}

/// The writable request fields and how their input is checked.
#[derive(Clone, Copy)]
enum Kind {
    Text(usize),
    Html,
    /// A lookup in a reference table (unknown names → 4001).
    Table(&'static str),
    /// A lookup whose unknown names are created on the fly.
    Free(&'static str),
    User,
    Date,
    List,
    Udf,
    Comment,
    Attachments,
    Resolution,
    ReadOnly,
    /// Read-only and refused when given (4009), as `is_trashed` on a live instance (§13.1).
    NotEditable,
}

fn request_field(name: &str) -> Option<Kind> {
    Some(match name {
        "subject" => Kind::Text(250),
        "impact_details" => Kind::Text(5000),
        "description" => Kind::Html,
        "status" => Kind::Table("statuses"),
        "priority" => Kind::Table("priorities"),
        "urgency" => Kind::Table("urgencies"),
        "impact" => Kind::Table("impacts"),
        "level" => Kind::Table("levels"),
        "mode" => Kind::Table("modes"),
        "request_type" => Kind::Table("request_types"),
        "category" => Kind::Table("categories"),
        "group" => Kind::Table("support_groups"),
        "site" => Kind::Table("sites"),
        "template" => Kind::Table("request_templates"),
        "technician" => Kind::Table("technicians"),
        "subcategory" => Kind::Free("subcategories"),
        "item" => Kind::Free("items"),
        "service_category" => Kind::Free("service_categories"),
        "requester" | "on_behalf_of" => Kind::User,
        "due_by_time"
        | "first_response_due_by_time"
        | "scheduled_start_time"
        | "scheduled_end_time" => Kind::Date,
        "email_to" | "email_cc" | "email_bcc" | "email_ids_to_notify" => Kind::List,
        "udf_fields" => Kind::Udf,
        "update_reason" | "status_change_comments" => Kind::Comment,
        "attachments" => Kind::Attachments,
        "resolution" => Kind::Resolution,
        "is_trashed" => Kind::NotEditable,
        "id" | "display_id" | "created_time" | "last_updated_time" | "created_by"
        | "short_description" | "responded_time" | "resolved_time" | "completed_time"
        | "assigned_time" | "has_notes" | "has_attachments" | "is_service_request"
        | "deleted_time" | "deleted_by" => Kind::ReadOnly,
        _ => return None,
    })
}

/// The top-level keys of a full request (what `search_criteria`/`sort_field` may name).
pub(crate) const REQUEST_KEYS: &[&str] = &[
    "id",
    "display_id",
    "subject",
    "description",
    "short_description",
    "requester",
    "technician",
    "group",
    "site",
    "status",
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
    "template",
    "created_by",
    "on_behalf_of",
    "created_time",
    "last_updated_time",
    "due_by_time",
    "first_response_due_by_time",
    "responded_time",
    "resolved_time",
    "completed_time",
    "assigned_time",
    "scheduled_start_time",
    "scheduled_end_time",
    "resolution",
    "closure_info",
    "udf_fields",
    "attachments",
    "email_to",
    "email_cc",
    "email_bcc",
    "email_ids_to_notify",
    "impact_details",
    "is_reopened",
    "is_overdue",
    "is_service_request",
    "has_notes",
    "has_attachments",
    "has_conversation",
    "unreplied_count",
    "is_trashed",
    "deleted_time",
    "deleted_by",
];

/// Each subcategory names its category, as `GET /categories/{id}/subcategories` lists them.
fn seed_subcategories(categories: &[Value], id: &mut impl FnMut(u64) -> String) -> Vec<Value> {
    let subcategories = [
        ("Hardware", "Laptop"),
        ("Hardware", "Printer"),
        ("Software", "E-mail"),
        ("Network", "VPN"),
        ("Network", "Wi-Fi"),
    ];
    (101..)
        .zip(subcategories)
        .map(|(n, (category, name))| {
            let owner = categories
                .iter()
                .find(|c| c["name"] == *category)
                .expect("a seeded category");
            json!({"id": id(n), "name": name, "deleted": false,
                   "category": {"id": owner["id"], "name": category}})
        })
        .collect()
}

/// A subcategory belongs to one category: given with another, SDP refuses it (4001).
fn check_subcategory(patch: &Patch) -> Result<(), SdpError> {
    let (Some(category), Some(sub)) = (
        patch.fields.get("category"),
        patch.fields.get("subcategory"),
    ) else {
        return Ok(());
    };
    match sub.pointer("/category/id") {
        Some(owner) if Some(owner) != category.get("id") => {
            Err(SdpError::invalid_value("subcategory"))
        }
        _ => Ok(()),
    }
}

fn is_udf_key(key: &str) -> bool {
    ["udf_", "txt_", "num_", "date_", "dt_", "bool_", "dbl_"]
        .iter()
        .any(|p| key.starts_with(p) && key.len() > p.len())
}

/// A validated change to a request.
#[derive(Default)]
struct Patch {
    fields: Map<String, Value>,
    udf: Map<String, Value>,
    status: Option<Value>,
    status_comments: Option<String>,
    update_reason: Option<String>,
    bind: Vec<String>,
    resolution: Option<String>,
}

/// What a rendered request, and which requests a list shows, depend on besides the requests'
/// own records: see [`State::render_version`].
#[derive(Clone, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one field per setting that changes what a request shows"
)]
struct RenderVersion {
    clock_ms: i64,
    requests: usize,
    notes: usize,
    emails: usize,
    attachments: usize,
    display_id_object: bool,
    null_until_edited: bool,
    trashed_in_lists: bool,
    embed_status_flags: bool,
    content_origin: Option<String>,
}

/// The last `GET /requests` selection (see [`State::request_order`]).
struct ListCache {
    key: String,
    version: RenderVersion,
    ids: Arc<[String]>,
}

/// Every request in one sort's order, with the keys that order and a range on its field read
/// (see [`State::request_order`]).
struct SortedCache {
    key: String,
    version: RenderVersion,
    ids: Arc<[String]>,
    rows: Arc<[Value]>,
}

/// Sorts kept at once: a poll walks two fields while a backfill walks one of them.
const SORTED_CACHES: usize = 4;

/// The requests a `GET /requests` selects, in order: a run of a kept list of ids.
pub(crate) struct Selection {
    ids: Arc<[String]>,
    run: std::ops::Range<usize>,
}

impl Selection {
    pub(crate) fn ids(&self) -> &[String] {
        &self.ids[self.run.clone()]
    }
}

pub(crate) struct State {
    pub profile: Profile,
    pub settings: Settings,
    pub faults: Faults,
    pub budget: Budget,
    pub auth: AuthState,
    /// Reference data by list key (`statuses`, `priorities` …), rows as SDP sends them.
    pub tables: BTreeMap<&'static str, Vec<Value>>,
    /// Requesters (technicians live in `tables["technicians"]`).
    pub users: Vec<Person>,
    pub requests: BTreeMap<String, Request>,
    pub notes: Vec<StoredNote>,
    pub emails: Vec<StoredEmail>,
    pub attachments: Vec<StoredAttachment>,
    pub calls: Vec<CallRecord>,
    /// Every call the second origin received.
    pub foreign_hits: Vec<ForeignHit>,
    call_seq: u64,
    clock_ms: i64,
    next_display_id: u64,
    onprem_ids: HashMap<&'static str, u64>,
    cloud_seq: u64,
    list_cache: Option<ListCache>,
    sorted_caches: VecDeque<SortedCache>,
}

/// 60 accepted API calls per 60 s: a pace a live instance tolerates (§13.8 has no published
/// figure; a SOAR vendor suggests at most 30 a minute on Cloud).
pub const DEFAULT_BUDGET: (u32, Duration) = (60, Duration::from_mins(1));

pub(crate) fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit in i64")
}

fn secret(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

impl State {
    pub(crate) fn new(profile: Profile) -> State {
        let refresh = secret("1000.refresh.");
        let grant = secret("1000.grant.");
        let mut s = State {
            profile,
            settings: Settings {
                refusing: false,
                latency: Duration::ZERO,
                max_upload: 10 * 1024 * 1024,
                display_id_object: false,
                create_status: 200,
                default_row_count: 10,
                fields_required_in_list_info: profile == Profile::Cloud,
                reject_single_get_input: true,
                null_until_edited: true,
                note_list_descriptions: false,
                mixed_date_criteria: profile == Profile::Cloud,
                both_user_paths: false,
                trash: TrashRules::default(),
                auto_create_requesters: true,
                embed_status_flags: true,
                content_origin: None,
                recipient_objects: false,
            },
            faults: Faults::default(),
            budget: Budget::new(Some(DEFAULT_BUDGET)),
            auth: AuthState {
                api_key: secret("FAKE-TECH-KEY-").to_uppercase(),
                creds: OAuthCreds {
                    client_id: secret("1000.CLIENT").to_uppercase(),
                    client_secret: secret(""),
                    refresh_token: refresh.clone(),
                    grant_code: grant.clone(),
                },
                access_tokens: HashMap::new(),
                refresh_tokens: HashSet::from([refresh]),
                grant_codes: HashSet::from([grant]),
                lifetime: Duration::from_hours(1),
                token_requests: 0,
                scopes: vec![
                    "SDPOnDemand.requests.ALL".into(),
                    "SDPOnDemand.setup.READ".into(),
                ],
            },
            tables: BTreeMap::new(),
            users: Vec::new(),
            requests: BTreeMap::new(),
            notes: Vec::new(),
            emails: Vec::new(),
            attachments: Vec::new(),
            calls: Vec::new(),
            foreign_hits: Vec::new(),
            call_seq: 0,
            clock_ms: 0,
            next_display_id: match profile {
                Profile::OnPrem => 0,
                Profile::Cloud => 500,
            },
            onprem_ids: HashMap::new(),
            cloud_seq: 0,
            list_cache: None,
            sorted_caches: VecDeque::new(),
        };
        s.seed();
        s
    }

    /// A fresh id: on-prem small numbers per kind, Cloud long numbers from one sequence.
    pub(crate) fn new_id(&mut self, kind: &'static str) -> String {
        match self.profile {
            Profile::OnPrem => {
                let base = match kind {
                    "request" => 100,
                    "note" => 1000,
                    "attachment" => 5000,
                    "email" => 8000,
                    "user" => 300,
                    _ => 900,
                };
                let n = self.onprem_ids.entry(kind).or_insert(base);
                *n += 1;
                n.to_string()
            }
            Profile::Cloud => {
                self.cloud_seq += 1;
                (123_640_000_000_240_000 + self.cloud_seq).to_string()
            }
        }
    }

    /// Logs a call on arrival; returns its [`CallRecord::seq`].
    pub(crate) fn log_call(&mut self, mut record: CallRecord) -> u64 {
        self.call_seq += 1;
        record.seq = self.call_seq;
        self.calls.push(record);
        self.call_seq
    }

    /// The logged call `seq`, unless the log was reset since it arrived.
    pub(crate) fn call_mut(&mut self, seq: u64) -> Option<&mut CallRecord> {
        self.calls.iter_mut().rev().find(|c| c.seq == seq)
    }

    /// Lets an authenticated API call through the call budget and the rate-limit faults, or says
    /// why not. Only an admitted call counts toward the budget's window.
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), Refusal> {
        if self.budget.refuses(self.profile, now) {
            return Err(Refusal::Budget {
                retry_after: self.budget.retry_after,
            });
        }
        if let Some(e) = self.faults.rate_limited(now) {
            return Err(Refusal::RateFault(e));
        }
        self.budget.count(now);
        Ok(())
    }

    /// How list calls read `list_info` on this instance.
    pub(crate) fn list_rules(&self) -> ListRules {
        ListRules {
            default_row_count: self.settings.default_row_count,
            fields_required_in_list_info: self.settings.fields_required_in_list_info,
            mixed_date_criteria: self.settings.mixed_date_criteria,
        }
    }

    /// The next timestamp: wall-clock ms, but strictly after every earlier one.
    pub(crate) fn tick(&mut self) -> i64 {
        self.clock_ms = now_ms().max(self.clock_ms + 1);
        self.clock_ms
    }

    /// Changes whenever a rendered request may change: every change to a request, its notes,
    /// e-mails or files takes a fresh [`State::tick`] (strictly increasing), and a deletion
    /// shrinks a collection.
    fn render_version(&self) -> RenderVersion {
        RenderVersion {
            clock_ms: self.clock_ms,
            requests: self.requests.len(),
            notes: self.notes.len(),
            emails: self.emails.len(),
            attachments: self.attachments.len(),
            display_id_object: self.settings.display_id_object,
            null_until_edited: self.settings.null_until_edited,
            trashed_in_lists: self.settings.trash.in_lists,
            embed_status_flags: self.settings.embed_status_flags,
            content_origin: self.settings.content_origin.clone(),
        }
    }

    /// The ids of the requests that `params` selects, in its order. Filtering and sorting look at
    /// every request, so the result is kept while no request changes and the selection stays the
    /// same: a client paging through a large backlog pays for it once, not per page. Merged
    /// requests are never listed, trashed ones only where [`TrashRules::in_lists`] says so.
    ///
    /// A keyset walk (a range on the field it sorts by, as a poll or a backfill pages) names a
    /// new bound on every page; for it every request is kept in that sort's order and each page's
    /// run is found by bisection, so the walk pays for one sort, not one per page.
    pub(crate) fn request_order(&mut self, params: &ListParams) -> Selection {
        let version = self.render_version();
        if params.range_on_sort_field().is_some() {
            let key = params.sort_key();
            let at = self
                .sorted_caches
                .iter()
                .position(|c| c.key == key && c.version == version);
            let at = if let Some(at) = at {
                at
            } else {
                let (ids, mut rows) = self.selection_rows(params);
                let order = params.order_all(&rows);
                let ids: Arc<[String]> = order.iter().map(|&i| ids[i].clone()).collect();
                let rows: Arc<[Value]> = order
                    .iter()
                    .map(|&i| std::mem::take(&mut rows[i]))
                    .collect();
                if self.sorted_caches.len() == SORTED_CACHES {
                    self.sorted_caches.pop_front();
                }
                self.sorted_caches.push_back(SortedCache {
                    key,
                    version,
                    ids,
                    rows,
                });
                self.sorted_caches.len() - 1
            };
            let cache = &self.sorted_caches[at];
            return Selection {
                ids: Arc::clone(&cache.ids),
                run: params.matching_run(&cache.rows),
            };
        }
        let key = params.selection_key();
        if let Some(cache) = &self.list_cache
            && cache.key == key
            && cache.version == version
        {
            return Selection {
                run: 0..cache.ids.len(),
                ids: Arc::clone(&cache.ids),
            };
        }
        let (ids, rows) = self.selection_rows(params);
        let ids: Arc<[String]> = params
            .order(&rows)
            .into_iter()
            .map(|i| ids[i].clone())
            .collect();
        self.list_cache = Some(ListCache {
            key,
            version,
            ids: Arc::clone(&ids),
        });
        Selection {
            run: 0..ids.len(),
            ids,
        }
    }

    /// Every request's id, and a row of only what `params` selects and sorts by: such rows
    /// select exactly as full rows do.
    fn selection_rows(&self, params: &ListParams) -> (Vec<String>, Vec<Value>) {
        // Only what the selection reads is rendered: rows of the keys it names select exactly as
        // full rows do.
        let keys = params.selection_keys();
        let in_lists = self.settings.trash.in_lists;
        self.requests
            .values()
            .filter(|r| r.merged_into.is_none() && (in_lists || r.trashed.is_none()))
            .map(|r| {
                let row = keys
                    .iter()
                    .map(|k| (k.clone(), wire::request_key(self, r, k)))
                    .collect();
                (r.id.clone(), Value::Object(row))
            })
            .unzip()
    }

    fn seed(&mut self) {
        let cloud = self.profile == Profile::Cloud;
        let mut seq = 6000u64;
        let mut id = |onprem: u64| {
            seq += 1;
            if cloud {
                (123_640_000_000_000_000 + seq).to_string()
            } else {
                onprem.to_string()
            }
        };
        // (name, on-prem id, color, internal_name, in_progress, stop_timer); on-prem ids as observed.
        let statuses = [
            ("Open", 2, "#0066ff", "Open", true, false),
            ("Assigned", 5, "#00b0f0", "Assigned", true, false),
            ("In Progress", 6, "#ffc000", "In Progress", true, false),
            ("On Hold", 3, "#ff0000", "Onhold", true, true),
            ("Resolved", 4, "#00ff00", "Resolved", false, false),
            ("Closed", 1, "#006600", "Closed", false, false),
            ("Cancelled", 7, "#999999", "Canceled", false, false),
        ];
        let statuses = statuses
            .iter()
            .map(|(name, n, color, internal, in_progress, stop_timer)| {
                json!({"id": id(*n), "name": name, "color": color, "internal_name": internal,
                       "in_progress": in_progress, "stop_timer": stop_timer, "deleted": false})
            })
            .collect();
        let priorities = [
            ("Low", "#666666"),
            ("Medium", "#ffcc00"),
            ("High", "#ff6600"),
            ("Urgent", "#ff0000"),
        ];
        let priorities = (1..)
            .zip(priorities)
            .map(|(n, (name, color))| json!({"id": id(n), "name": name, "color": color, "deleted": false}))
            .collect();
        let mut simple = |names: &[&str], first: u64| -> Vec<Value> {
            (first..)
                .zip(names)
                .map(|(n, name)| json!({"id": id(n), "name": name, "deleted": false}))
                .collect()
        };
        let urgencies = simple(&["Low", "Normal", "High", "Urgent"], 1);
        let impacts = simple(&["Low", "Medium", "High"], 1);
        let levels = simple(&["Tier 1", "Tier 2", "Tier 3", "Tier 4"], 1);
        let modes = simple(&["E-Mail", "Phone Call", "Web Form"], 1);
        let request_types = simple(&["Incident", "Service Request"], 1);
        let categories = simple(&["General", "Hardware", "Software", "Network"], 1);
        let sites = simple(&["Base Site"], 1);
        let templates = simple(&["Default Request", "Access Request"], 1);
        let closure_codes = simple(&["Success", "Failed", "Cancelled", "Postponed"], 1);
        let groups = simple(&["Service Desk", "Network"], 1)
            .into_iter()
            .map(|mut g| {
                g["site"] = Value::Null;
                g
            })
            .collect();
        let technicians = [
            ("Deskbridge API", "deskbridge-api@example.com", 4),
            ("Tech One", "tech1@example.com", 5),
            ("Tech Two", "tech2@example.com", 6),
        ];
        let technicians = technicians
            .iter()
            .map(|(name, email, n)| {
                json!({"id": id(*n), "name": name, "email_id": email, "login_name": email.split('@').next(),
                       "phone": null, "mobile": null, "cost_per_hour": "0", "photo_url": null,
                       "sms_mail_id": null, "is_technician": true, "deleted": false})
            })
            .collect();
        let subcategories = seed_subcategories(&categories, &mut id);
        let tables: [(&'static str, Vec<Value>); 15] = [
            ("statuses", statuses),
            ("priorities", priorities),
            ("urgencies", urgencies),
            ("impacts", impacts),
            ("levels", levels),
            ("modes", modes),
            ("request_types", request_types),
            ("categories", categories),
            ("sites", sites),
            ("request_templates", templates),
            ("closure_codes", closure_codes),
            ("support_groups", groups),
            ("technicians", technicians),
            ("subcategories", subcategories),
            ("items", Vec::new()),
        ];
        self.tables.extend(tables);
        self.tables.insert("service_categories", Vec::new());
    }

    /// The technician the API key (or OAuth token) belongs to.
    pub(crate) fn api_user(&self) -> Person {
        self.technician("Deskbridge API")
    }

    pub(crate) fn technician(&self, name: &str) -> Person {
        let row = self.tables["technicians"]
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no technician {name}"));
        person_from_row(row)
    }

    /// The request, unless it is unknown (404) or was merged into another (404 naming the parent).
    pub(crate) fn request_ref(&self, id: &str) -> Result<&Request, SdpError> {
        let r = self
            .requests
            .get(id)
            .ok_or_else(|| SdpError::not_found("request"))?;
        match &r.merged_into {
            Some(parent) => Err(SdpError::merged(id, parent)),
            None => Ok(r),
        }
    }

    fn request_mut(&mut self, id: &str) -> Result<&mut Request, SdpError> {
        self.request_ref(id)?;
        Ok(self.requests.get_mut(id).expect("checked"))
    }

    /// Sets the SLA's due times (ms; `None`: none; no array: kept) and overdue flags; `touch` as
    /// an edit does, or not, as SDP's own scheduler raising a flag.
    pub(crate) fn set_promise(
        &mut self,
        id: &str,
        due: Option<[Option<i64>; 2]>,
        flags: [bool; 2],
        touch: bool,
    ) {
        let r = self.request_mut(id).expect("a request");
        for (key, ms) in ["first_response_due_by_time", "due_by_time"]
            .iter()
            .zip(due.into_iter().flatten())
        {
            r.fields
                .insert((*key).into(), ms.map_or(Value::Null, wire::date));
        }
        for (key, on) in ["is_first_response_overdue", "is_overdue"]
            .iter()
            .zip(flags)
        {
            r.fields.insert((*key).into(), json!(on));
        }
        if touch {
            self.touch(id);
        }
    }

    /// Records the first response at `at_ms` (`responded_time`), an edit.
    pub(crate) fn set_responded(&mut self, id: &str, at_ms: i64) {
        self.request_mut(id).expect("a request").responded_ms = Some(at_ms);
        self.touch(id);
    }

    /// Bumps `last_updated_time` of a request.
    fn touch(&mut self, id: &str) -> i64 {
        let now = self.tick();
        if let Some(r) = self.requests.get_mut(id) {
            r.updated_ms = Some(now);
        }
        now
    }

    // ----- lookups -----

    /// Resolves `{"id"}` / `{"name"}` (id wins) against a table; `null` clears.
    fn lookup(
        &mut self,
        table: &'static str,
        field: &str,
        v: &Value,
        free: bool,
    ) -> Result<Value, SdpError> {
        if v.is_null() {
            return Ok(Value::Null);
        }
        let Some(obj) = v.as_object() else {
            return Err(SdpError::invalid_value(field));
        };
        let rows = &self.tables[table];
        let found = if let Some(id) = obj.get("id").filter(|v| !v.is_null()) {
            let id = wire::scalar_text(id);
            rows.iter().find(|r| r["id"].as_str() == Some(id.as_str()))
        } else if let Some(name) = obj.get("name").and_then(Value::as_str) {
            rows.iter().find(|r| {
                r["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        } else if let Some(email) = obj.get("email_id").and_then(Value::as_str) {
            rows.iter().find(|r| {
                r["email_id"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
        } else {
            None
        };
        if let Some(row) = found {
            return Ok(row.clone());
        }
        match obj.get("name").and_then(Value::as_str) {
            Some(name) if free && obj.get("id").is_none_or(Value::is_null) => {
                let row = json!({"id": self.new_id("lookup"), "name": name, "deleted": false});
                self.tables.get_mut(table).expect("table").push(row.clone());
                Ok(row)
            }
            _ => Err(SdpError::invalid_value(field)),
        }
    }

    /// Resolves a user field: `{"id"}`, `{"email_id"}` or `{"name"}` (id wins, then e-mail);
    /// unknown e-mails and names become new requesters where `may_create`, else 4001.
    fn user(
        &mut self,
        field: &str,
        v: &Value,
        may_create: bool,
    ) -> Result<Option<Person>, SdpError> {
        if v.is_null() {
            return Ok(None);
        }
        let obj = v
            .as_object()
            .ok_or_else(|| SdpError::invalid_value(field))?;
        let all: Vec<Person> = self
            .users
            .iter()
            .cloned()
            .chain(self.tables["technicians"].iter().map(person_from_row))
            .collect();
        if let Some(id) = obj.get("id").filter(|v| !v.is_null()) {
            let id = wire::scalar_text(id);
            return all
                .into_iter()
                .find(|p| p.id == id)
                .map(Some)
                .ok_or_else(|| SdpError::invalid_value(field));
        }
        let email = obj.get("email_id").and_then(Value::as_str);
        let name = obj.get("name").and_then(Value::as_str);
        if let Some(email) = email {
            if let Some(p) = all.iter().find(|p| {
                p.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            }) {
                return Ok(Some(p.clone()));
            }
        } else if let Some(name) = name {
            if let Some(p) = all.iter().find(|p| p.name.eq_ignore_ascii_case(name)) {
                return Ok(Some(p.clone()));
            }
        } else {
            return Err(SdpError::invalid_value(field));
        }
        if !may_create {
            return Err(SdpError::invalid_value(field));
        }
        let name = name.map_or_else(
            || {
                email
                    .unwrap_or_default()
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            },
            str::to_owned,
        );
        Ok(Some(self.new_requester(&name, email)))
    }

    pub(crate) fn new_requester(&mut self, name: &str, email: Option<&str>) -> Person {
        let p = Person {
            id: self.new_id("user"),
            name: name.to_owned(),
            email: email.map(str::to_owned),
            is_technician: false,
        };
        self.users.push(p.clone());
        p
    }

    // ----- requests -----

    /// Validates a `request` object; `via_api` says whether the API (not someone in SDP) sent it.
    fn parse_patch(
        &mut self,
        input: &Map<String, Value>,
        creating: bool,
        via_api: bool,
    ) -> Result<Patch, SdpError> {
        let mut patch = Patch::default();
        for (key, v) in input {
            let kind = request_field(key).ok_or_else(|| SdpError::extra_key(key))?;
            if self.faults.forbidden.iter().any(|f| f == key) {
                return Err(SdpError::forbidden(key));
            }
            self.patch_field(&mut patch, key, kind, v, via_api)?;
        }
        check_subcategory(&patch)?;
        if creating {
            self.check_mandatory(input)?;
        }
        Ok(patch)
    }

    /// Validates one input field into `patch`.
    fn patch_field(
        &mut self,
        patch: &mut Patch,
        key: &str,
        kind: Kind,
        v: &Value,
        via_api: bool,
    ) -> Result<(), SdpError> {
        match kind {
            Kind::Text(_) | Kind::Html if !v.is_null() => {
                let text = v.as_str().ok_or_else(|| SdpError::type_mismatch(key))?;
                if let Kind::Text(max) = kind
                    && text.chars().count() > max
                {
                    return Err(SdpError::invalid_value(key)
                        .with_message(&format!("{key} exceeds {max} characters")));
                }
                patch.fields.insert(key.to_owned(), v.clone());
            }
            Kind::Text(_) | Kind::Html => {
                patch.fields.insert(key.to_owned(), Value::Null);
            }
            Kind::Table(table) | Kind::Free(table) => {
                let free = matches!(kind, Kind::Free(_));
                let row = self.lookup(table, key, v, free)?;
                if key == "status" {
                    if row.is_null() {
                        return Err(SdpError::invalid_value(key));
                    }
                    patch.status = Some(row);
                } else {
                    patch.fields.insert(key.to_owned(), row);
                }
            }
            Kind::User => {
                let may_create = !via_api || self.settings.auto_create_requesters;
                let user = self.user(key, v, may_create)?;
                let profile = self.profile;
                patch.fields.insert(
                    key.to_owned(),
                    user.map_or(Value::Null, |u| wire::person(profile, &u)),
                );
            }
            Kind::Date => {
                let date = match v {
                    Value::Null => Value::Null,
                    Value::Object(o) => {
                        let ms = o
                            .get("value")
                            .and_then(wire::as_i64)
                            .ok_or_else(|| SdpError::type_mismatch(key))?;
                        wire::date(ms)
                    }
                    _ => return Err(SdpError::type_mismatch(key)),
                };
                patch.fields.insert(key.to_owned(), date);
            }
            Kind::List => {
                let ok =
                    v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
                if !ok {
                    return Err(SdpError::type_mismatch(key));
                }
                patch.fields.insert(
                    key.to_owned(),
                    if v.is_null() { json!([]) } else { v.clone() },
                );
            }
            Kind::Udf => {
                let obj = v.as_object().ok_or_else(|| SdpError::type_mismatch(key))?;
                for (k, value) in obj {
                    if !is_udf_key(k) {
                        return Err(SdpError::extra_key(k));
                    }
                    patch.udf.insert(k.clone(), value.clone());
                }
            }
            Kind::Comment => {
                let text = v.as_str().ok_or_else(|| SdpError::type_mismatch(key))?;
                if key == "update_reason" {
                    patch.update_reason = Some(text.to_owned());
                } else {
                    patch.status_comments = Some(text.to_owned());
                }
            }
            Kind::Attachments => {
                let items = v.as_array().ok_or_else(|| SdpError::type_mismatch(key))?;
                for item in items {
                    let id = item
                        .get("id")
                        .filter(|v| !v.is_null())
                        .ok_or_else(|| SdpError::invalid_value(key))?;
                    patch.bind.push(wire::scalar_text(id));
                }
            }
            Kind::Resolution => {
                let content = v
                    .get("content")
                    .and_then(Value::as_str)
                    .ok_or_else(|| SdpError::invalid_value(key))?;
                patch.resolution = Some(content.to_owned());
            }
            Kind::ReadOnly => {}
            Kind::NotEditable => return Err(SdpError::not_editable(key)),
        }
        Ok(())
    }

    /// 4012 unless `subject` and every [`Fault::MandatoryFields`] path is given on create.
    fn check_mandatory(&self, input: &Map<String, Value>) -> Result<(), SdpError> {
        let mut missing: Vec<String> = Vec::new();
        let subject = input
            .get("subject")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if subject.trim().is_empty() {
            missing.push("subject".into());
        }
        let whole = Value::Object(input.clone());
        for path in &self.faults.mandatory {
            let given = path.split('.').try_fold(&whole, |v, k| v.get(k));
            let empty = given.is_none_or(|v| {
                v.is_null() || v.as_str() == Some("") || v.as_object().is_some_and(Map::is_empty)
            });
            if empty {
                missing.push(path.clone());
            }
        }
        if !missing.is_empty() {
            return Err(SdpError::mandatory(missing));
        }
        Ok(())
    }

    /// Creates a request from an API `request` object; `by` is the caller.
    pub(crate) fn create_request(
        &mut self,
        input: &Map<String, Value>,
        by: &Person,
        via_api: bool,
    ) -> Result<String, SdpError> {
        let mut patch = self.parse_patch(input, true, via_api)?;
        if !patch.bind.is_empty() {
            return Err(SdpError::invalid_value("attachments"));
        }
        let profile = self.profile;
        if !patch.fields.contains_key("requester") || patch.fields["requester"].is_null() {
            let requester = if via_api {
                by.clone()
            } else {
                return Err(SdpError::mandatory(vec!["requester".into()]));
            };
            patch
                .fields
                .insert("requester".into(), wire::person(profile, &requester));
        }
        if !patch.fields.contains_key("template") {
            let default = self.tables["request_templates"][0].clone();
            patch.fields.insert("template".into(), default);
        }
        let open = self.tables["statuses"][0].clone();
        let id = self.new_id("request");
        self.next_display_id += 1;
        let display_id = if profile == Profile::OnPrem {
            id.parse().expect("numeric id")
        } else {
            self.next_display_id
        };
        let now = self.tick();
        let mut fields = Map::new();
        fields.insert("status".into(), patch.status.take().unwrap_or(open));
        fields.insert("udf_fields".into(), Value::Object(Map::new()));
        let request = Request {
            id: id.clone(),
            display_id,
            fields,
            created_by: by.clone(),
            created_ms: now,
            updated_ms: None,
            assigned_ms: None,
            resolved_ms: None,
            responded_ms: None,
            completed_ms: None,
            resolution: None,
            closure_info: None,
            is_reopened: false,
            status_changes: Vec::new(),
            update_reasons: Vec::new(),
            trashed: None,
            merged_into: None,
        };
        self.requests.insert(id.clone(), request);
        self.apply_patch(&id, patch, by, now);
        Ok(id)
    }

    /// Updates a request from an API `request` object (only the fields given change); `via_api`
    /// as for [`State::create_request`].
    pub(crate) fn update_request(
        &mut self,
        id: &str,
        input: &Map<String, Value>,
        via_api: bool,
    ) -> Result<(), SdpError> {
        self.request_ref(id)?;
        let patch = self.parse_patch(input, false, via_api)?;
        self.check_bind(id, &patch.bind)?;
        if let Some(status) = &patch.status
            && status["name"] == "Closed"
        {
            self.check_closure_rule(id, None)?;
        }
        let now = self.touch(id);
        let by = self.api_user();
        self.apply_patch(id, patch, &by, now);
        Ok(())
    }

    /// 4001 unless every id to bind is an upload of this request (not an e-mail's file).
    fn check_bind(&self, id: &str, bind: &[String]) -> Result<(), SdpError> {
        for att in bind {
            let ok = self.attachments.iter().any(|a| {
                &a.id == att && a.request_id == id && !matches!(a.owner, AttachmentOwner::Email(_))
            });
            if !ok {
                return Err(SdpError::invalid_value("attachments"));
            }
        }
        Ok(())
    }

    fn apply_patch(&mut self, id: &str, patch: Patch, by: &Person, now: i64) {
        for a in &mut self.attachments {
            if a.request_id == id
                && patch.bind.contains(&a.id)
                && a.owner == AttachmentOwner::Unbound
            {
                a.owner = AttachmentOwner::Request;
            }
        }
        if let Some(content) = &patch.resolution {
            self.replace_resolution(id, content, by, now);
        }
        let r = self.requests.get_mut(id).expect("checked");
        for (k, v) in patch.fields {
            if k == "technician" && !v.is_null() {
                r.assigned_ms = Some(now);
            }
            r.fields.insert(k, v);
        }
        if !patch.udf.is_empty() {
            let udf = r.fields.entry("udf_fields").or_insert_with(|| json!({}));
            for (k, v) in patch.udf {
                udf[k] = v;
            }
        }
        if let Some(reason) = patch.update_reason {
            r.update_reasons.push(reason);
        }
        if let Some(status) = patch.status {
            set_status(r, status, patch.status_comments, now);
        }
    }

    /// 4003 when the closure rule is not met; `closure` is the close call's `closure_info`.
    fn check_closure_rule(
        &self,
        id: &str,
        closure: Option<&Map<String, Value>>,
    ) -> Result<(), SdpError> {
        let r = self.request_ref(id)?;
        let full = wire::request(self, r);
        let mut missing = Vec::new();
        for rule in &self.faults.closure_rule {
            let value = if let Some(key) = rule.strip_prefix("closure_info.") {
                closure.and_then(|c| c.get(key)).cloned()
            } else if rule == "resolution" {
                r.resolution.as_ref().map(|res| json!(res.content))
            } else {
                rule.split('.').try_fold(&full, |v, k| v.get(k)).cloned()
            };
            if value.is_none_or(|v| v.is_null() || v.as_str() == Some("")) {
                missing.push(rule.clone());
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(SdpError::closure_rule(missing))
        }
    }

    /// The close action: status Closed, `closure_info` stored.
    pub(crate) fn close_request(
        &mut self,
        id: &str,
        closure: Option<&Map<String, Value>>,
    ) -> Result<(), SdpError> {
        self.request_ref(id)?;
        let mut info = Map::new();
        for (k, v) in closure.into_iter().flatten() {
            let v = match k.as_str() {
                "requester_ack_resolution" if v.is_boolean() || v.is_null() => v.clone(),
                "requester_ack_comments" | "closure_comments" if v.is_string() || v.is_null() => {
                    v.clone()
                }
                "closure_code" => self.lookup("closure_codes", "closure_code", v, true)?,
                "requester_ack_resolution" | "requester_ack_comments" | "closure_comments" => {
                    return Err(SdpError::type_mismatch(k));
                }
                _ => return Err(SdpError::extra_key(k)),
            };
            info.insert(k.clone(), v);
        }
        self.check_closure_rule(id, closure)?;
        let closed = self.status_row("Closed");
        let now = self.touch(id);
        let r = self.request_mut(id)?;
        let comments = info
            .get("closure_comments")
            .and_then(Value::as_str)
            .map(str::to_owned);
        r.closure_info = Some(Value::Object(info));
        set_status(r, closed, comments, now);
        Ok(())
    }

    /// Only the statuses a fresh instance has (§13.6): Open, On Hold, Resolved, Closed and
    /// Cancelled; no "Assigned", no "In Progress".
    pub(crate) fn add_subcategory(&mut self, category: &str, name: &str) -> String {
        let owner = self.tables["categories"]
            .iter()
            .find(|c| c["name"] == category)
            .map(|c| c["id"].clone())
            .expect("a category of that name");
        let id = self.new_id("lookup");
        self.tables
            .get_mut("subcategories")
            .expect("the subcategories table")
            .push(json!({"id": id, "name": name, "deleted": false,
                         "category": {"id": owner, "name": category}}));
        id
    }

    pub(crate) fn use_default_statuses(&mut self) {
        const DEFAULTS: &[&str] = &["Open", "On Hold", "Resolved", "Closed", "Cancelled"];
        self.tables
            .get_mut("statuses")
            .expect("seeded")
            .retain(|row| DEFAULTS.iter().any(|name| row["name"] == *name));
    }

    /// A custom status; `in_progress` false makes it a completed one. Returns its id.
    pub(crate) fn add_status(&mut self, name: &str, in_progress: bool, stop_timer: bool) -> String {
        let id = self.new_id("status");
        let row = json!({"id": id, "name": name, "color": "#888888", "internal_name": name,
                         "in_progress": in_progress, "stop_timer": stop_timer, "deleted": false});
        self.tables.get_mut("statuses").expect("seeded").push(row);
        id
    }

    pub(crate) fn status_row(&self, name: &str) -> Value {
        self.tables["statuses"]
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .expect("seeded status")
    }

    /// The assign action: only `group` and `technician` may be given.
    pub(crate) fn assign(&mut self, id: &str, input: &Map<String, Value>) -> Result<(), SdpError> {
        if let Some(extra) = input.keys().find(|k| *k != "group" && *k != "technician") {
            return Err(SdpError::extra_key(extra));
        }
        self.update_request(id, input, true)
    }

    pub(crate) fn set_resolution(
        &mut self,
        id: &str,
        content: &str,
        by: &Person,
    ) -> Result<(), SdpError> {
        self.set_resolution_with_files(id, content, Vec::new(), by)
    }

    /// Sets the resolution with files (`(name, bytes)`), replacing the old one and its files.
    pub(crate) fn set_resolution_with_files(
        &mut self,
        id: &str,
        content: &str,
        files: Vec<(String, Bytes)>,
        by: &Person,
    ) -> Result<(), SdpError> {
        self.request_ref(id)?;
        let now = self.touch(id);
        self.replace_resolution(id, content, by, now);
        for (name, bytes) in files {
            let content_type = wire::guess_content_type(&name);
            self.add_attachment(
                id,
                &name,
                &content_type,
                bytes,
                AttachmentOwner::Resolution,
                by,
            )?;
        }
        Ok(())
    }

    /// A new resolution replaces the old one, files and all.
    fn replace_resolution(&mut self, id: &str, content: &str, by: &Person, now: i64) {
        self.attachments
            .retain(|a| !(a.request_id == id && a.owner == AttachmentOwner::Resolution));
        self.requests.get_mut(id).expect("checked").resolution = Some(Resolution {
            content: content.to_owned(),
            by: by.clone(),
            at_ms: now,
        });
    }

    // ----- trash, purge, merge -----

    /// Moves a request to the trash (4016 "Already in trash" if it is there).
    pub(crate) fn trash(&mut self, id: &str, by: &Person) -> Result<(), SdpError> {
        if self.request_ref(id)?.trashed.is_some() {
            return Err(SdpError::new(400, 4016, "Already in trash"));
        }
        let now = self.touch(id);
        self.request_mut(id)?.trashed = Some(Trash {
            by: by.clone(),
            at_ms: now,
        });
        Ok(())
    }

    /// Takes a request out of the trash (4017 "Not in trash" if it is not there).
    pub(crate) fn restore(&mut self, id: &str) -> Result<(), SdpError> {
        if self.request_ref(id)?.trashed.is_none() {
            return Err(SdpError::not_in_trash());
        }
        self.touch(id);
        self.request_mut(id)?.trashed = None;
        Ok(())
    }

    /// Deletes a trashed request for good, with its notes, e-mails and files; a request that is
    /// not in the trash answers 4017 "Not in trash" (§13.1).
    pub(crate) fn purge(&mut self, id: &str) -> Result<(), SdpError> {
        if self.request_ref(id)?.trashed.is_none() {
            return Err(SdpError::not_in_trash());
        }
        self.requests.remove(id);
        self.notes.retain(|n| n.request_id != id);
        self.emails.retain(|e| e.request_id != id);
        self.attachments.retain(|a| a.request_id != id);
        Ok(())
    }

    /// Merges `children` into `parent` (at most 49, §13.2): each child then answers 404 naming
    /// the parent and leaves the lists; the parent gains one `MERGE` notification per child and
    /// an edit. Children keep their own notes, e-mails and files, out of reach ([U]).
    pub(crate) fn merge(
        &mut self,
        parent: &str,
        children: &[String],
        by: &Person,
    ) -> Result<(), SdpError> {
        self.request_ref(parent)?;
        if children.is_empty() || children.len() > 49 {
            return Err(SdpError::invalid_value("merge_requests")
                .with_message("Between 1 and 49 requests can be merged at a time"));
        }
        for (i, child) in children.iter().enumerate() {
            if child == parent || children[..i].contains(child) || self.request_ref(child).is_err()
            {
                return Err(SdpError::invalid_value("merge_requests"));
            }
        }
        for child in children {
            let r = &self.requests[child];
            let text = |key: &str| {
                r.fields
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let (subject, description) = (text("subject"), text("description"));
            let id = self.new_id("email");
            let now = self.touch(parent);
            self.requests.get_mut(child).expect("checked").merged_into = Some(parent.to_owned());
            self.emails.push(StoredEmail {
                id,
                request_id: parent.to_owned(),
                subject,
                description,
                sender: by.clone(),
                to: Vec::new(),
                cc: Vec::new(),
                from_requester: false,
                show_to_requester: false,
                time_ms: now,
                merged_request_id: Some(child.clone()),
            });
        }
        Ok(())
    }

    // ----- notes, e-mails, attachments -----

    pub(crate) fn add_note(
        &mut self,
        rid: &str,
        input: &Map<String, Value>,
        by: &Person,
    ) -> Result<String, SdpError> {
        self.request_ref(rid)?;
        let mut note = StoredNote {
            id: String::new(),
            request_id: rid.to_owned(),
            description: String::new(),
            show_to_requester: None,
            notify_technician: None,
            mark_first_response: None,
            add_to_linked_requests: None,
            author: by.clone(),
            created_ms: 0,
            updated_ms: 0,
            updated_by: by.clone(),
        };
        apply_note_input(&mut note, input)?;
        if note.description.trim().is_empty() {
            return Err(SdpError::mandatory(vec!["description".into()]));
        }
        note.id = self.new_id("note");
        let now = self.touch(rid);
        note.created_ms = now;
        note.updated_ms = now;
        let id = note.id.clone();
        self.notes.push(note);
        Ok(id)
    }

    pub(crate) fn note_index(&self, rid: &str, nid: &str) -> Result<usize, SdpError> {
        self.request_ref(rid)?;
        self.notes
            .iter()
            .position(|n| n.request_id == rid && n.id == nid)
            .ok_or_else(|| SdpError::not_found("note"))
    }

    /// Edits a note (its text, its flags): the note's and the request's `last_updated_time`
    /// move, and `by` becomes its `last_updated_by`.
    pub(crate) fn update_note(
        &mut self,
        rid: &str,
        nid: &str,
        input: &Map<String, Value>,
        by: &Person,
    ) -> Result<(), SdpError> {
        let i = self.note_index(rid, nid)?;
        let mut note = self.notes[i].clone();
        apply_note_input(&mut note, input)?;
        if note.description.trim().is_empty() {
            return Err(SdpError::mandatory(vec!["description".into()]));
        }
        note.updated_ms = self.touch(rid);
        note.updated_by = by.clone();
        self.notes[i] = note;
        Ok(())
    }

    pub(crate) fn delete_note(&mut self, rid: &str, nid: &str) -> Result<(), SdpError> {
        let i = self.note_index(rid, nid)?;
        self.notes.remove(i);
        self.touch(rid);
        Ok(())
    }

    /// An e-mail as [`super::FakeSdp::add_email_with`] describes it. With no `to`, a
    /// technician's mail goes to the requester and the requester's to the help desk.
    pub(crate) fn add_email(&mut self, rid: &str, mail: Email) -> Result<String, SdpError> {
        let r = self.request_ref(rid)?;
        let subject = format!(
            "Re: [Request ID :##{}##] : {}",
            r.display_id,
            r.fields
                .get("subject")
                .and_then(Value::as_str)
                .unwrap_or_default()
        );
        let requester = r.requester().map(person_from_row);
        let (sender, default_to, from_requester) = match mail.from {
            EmailFrom::Requester => {
                let sender = requester.expect("the request has a requester");
                (sender, vec!["helpdesk@example.com".to_owned()], true)
            }
            EmailFrom::Technician(name) => {
                let to = requester.and_then(|p| p.email).into_iter().collect();
                (self.technician(&name), to, false)
            }
        };
        let to = if mail.to.is_empty() {
            default_to
        } else {
            mail.to
        };
        let files = mail
            .attachments
            .into_iter()
            .map(|(name, bytes)| (name, Bytes::from(bytes)))
            .collect();
        let email = StoredEmail {
            id: String::new(),
            request_id: rid.to_owned(),
            subject,
            description: mail.body,
            sender,
            to,
            cc: mail.cc,
            from_requester,
            show_to_requester: mail.show_to_requester,
            time_ms: 0,
            merged_request_id: None,
        };
        self.push_email(email, files)
    }

    /// Threads `email` onto its request with `files` (`(name, bytes)`); its id and time are
    /// given here. Returns the id.
    pub(crate) fn push_email(
        &mut self,
        mut email: StoredEmail,
        files: Vec<(String, Bytes)>,
    ) -> Result<String, SdpError> {
        let rid = email.request_id.clone();
        self.request_ref(&rid)?;
        email.id = self.new_id("email");
        email.time_ms = self.touch(&rid);
        for (name, bytes) in files {
            let content_type = wire::guess_content_type(&name);
            self.add_attachment(
                &rid,
                &name,
                &content_type,
                bytes,
                AttachmentOwner::Email(email.id.clone()),
                &email.sender,
            )?;
        }
        let id = email.id.clone();
        self.emails.push(email);
        Ok(id)
    }

    pub(crate) fn add_attachment(
        &mut self,
        rid: &str,
        name: &str,
        content_type: &str,
        bytes: Bytes,
        owner: AttachmentOwner,
        by: &Person,
    ) -> Result<String, SdpError> {
        self.request_ref(rid)?;
        let id = self.new_id("attachment");
        // A staged upload is no edit yet: binding it with `PUT /requests/{id}` is.
        let now = if owner == AttachmentOwner::Unbound {
            self.tick()
        } else {
            self.touch(rid)
        };
        self.attachments.push(StoredAttachment {
            id: id.clone(),
            request_id: rid.to_owned(),
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            bytes,
            owner,
            attached_by: by.clone(),
            attached_ms: now,
        });
        Ok(id)
    }

    pub(crate) fn delete_attachment(&mut self, rid: &str, aid: &str) -> Result<(), SdpError> {
        self.request_ref(rid)?;
        let before = self.attachments.len();
        self.attachments
            .retain(|a| !(a.request_id == rid && a.id == aid));
        if self.attachments.len() == before {
            return Err(SdpError::not_found("attachment"));
        }
        self.touch(rid);
        Ok(())
    }
}

fn set_status(r: &mut Request, status: Value, comments: Option<String>, now: i64) {
    let from = r.status_name();
    let was_open = r.fields["status"]["in_progress"] == true;
    let name = status["name"].as_str().unwrap_or_default().to_owned();
    let open = status["in_progress"] == true;
    if from != name || comments.is_some() {
        r.status_changes.push(StatusChange {
            from: from.clone(),
            to: name.clone(),
            comments,
            at_ms: now,
        });
    }
    if !was_open && open {
        r.is_reopened = true;
        r.resolved_ms = None;
        r.completed_ms = None;
    }
    match name.as_str() {
        "Resolved" => r.resolved_ms = Some(now),
        _ if !open => {
            // Closed, Cancelled and any custom completed status.
            r.completed_ms = Some(now);
            r.resolved_ms.get_or_insert(now);
        }
        _ => {}
    }
    r.fields.insert("status".into(), status);
}

fn apply_note_input(note: &mut StoredNote, input: &Map<String, Value>) -> Result<(), SdpError> {
    for (k, v) in input {
        let flag = |v: &Value| v.as_bool().ok_or_else(|| SdpError::type_mismatch(k));
        match k.as_str() {
            "description" => {
                v.as_str()
                    .ok_or_else(|| SdpError::type_mismatch(k))?
                    .clone_into(&mut note.description);
            }
            "show_to_requester" => note.show_to_requester = Some(flag(v)?),
            "notify_technician" => note.notify_technician = Some(flag(v)?),
            "mark_first_response" => note.mark_first_response = Some(flag(v)?),
            "add_to_linked_requests" => note.add_to_linked_requests = Some(flag(v)?),
            "id" | "added_time" | "added_by" | "created_time" | "created_by"
            | "last_updated_time" | "request" => {}
            _ => return Err(SdpError::extra_key(k)),
        }
    }
    Ok(())
}

pub(crate) fn person_from_row(row: &Value) -> Person {
    Person {
        id: row["id"].as_str().unwrap_or_default().to_owned(),
        name: row["name"].as_str().unwrap_or_default().to_owned(),
        email: row["email_id"].as_str().map(str::to_owned),
        is_technician: row["is_technician"] == true,
    }
}
