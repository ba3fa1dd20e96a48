//! A fake `ManageEngine` `ServiceDesk` Plus (REST API v3) for the integration tests and the benchmarks,
//! and the simulated SDP behind `deskbridge demo`: a real HTTP server on 127.0.0.1 that follows
//! `../shared/sdp-v3-api.md` (§12 is its checklist), not deskbridge's client.
//!
//! - [`FakeSdp::start`] picks a [`Profile`]: on-prem (`authtoken`/`TECHNICIAN_KEY`, `note` wrapper,
//!   small ids, `/close`) or Cloud (Zoho OAuth with a fake `POST /oauth/v2/token`, `request_note`,
//!   long ids plus `display_id`, `/_close`). Both serve `/api/v3/...` and `/app/itdesk/api/v3/...`.
//! - Faults ([`Fault`]) are switched at runtime; [`FakeSdp::refuse_connections`] really closes the
//!   listener and [`FakeSdp::accept_connections`] reopens it on the same port.
//! - The "technician" methods change data as someone working in SDP would (no HTTP), and the
//!   inspection methods show what deskbridge sent, as stored.
//!
//! By default it is as strict as a live instance (§13 of the doc), each rule with a setter:
//! - A call budget ([`FakeSdp::set_budget`]): 60 accepted API calls per sliding 60 s. The call
//!   over it is refused, is not counted, changes nothing and is logged with its status and
//!   [`CallRecord::throttled`]. Cloud answers HTTP 429 with the 4015 JSON body and no
//!   `Retry-After` ([`FakeSdp::set_budget_retry_after`] adds one). On-prem answers the "URL blocked
//!   as maximum access limit exceeded" page and then refuses every call for a block period
//!   ([`FakeSdp::set_block_period`], 60 s); the live HTTP status of that page is unknown, so it is
//!   sent as **HTTP 403, `Content-Type: text/html`**. The [`Fault`] rate limits apply on top.
//! - `fields_required` is read at the top level of `input_data`; inside `list_info` only on Cloud
//!   (on-prem ignores it there, so rows stay abbreviated). A single-object GET (a request, a note,
//!   a notification, a resolution, one reference row) with any `input_data` answers 400.
//! - Every list pages: `row_count` default 10, at most 100, `start_index` (0 reads as 1),
//!   `has_more_rows`, `total_count` on `get_total_count` (echoed as the string `"true"`).
//! - A request never edited has `last_updated_time: null`; every change through the API or the
//!   technician methods is an edit. List rows are abbreviated (`wire::ABBREVIATED`); the full
//!   request carries `has_notes`, `has_attachments`, `has_conversation`, `unreplied_count` and
//!   its `attachments`. The notes list omits each note's `description`.
//! - On-prem 400s on `search_criteria` combining a date criterion with any other.
//! - On-prem serves `/users`, Cloud `/requesters`; the other path is 404.
//! - Requests leave as SDP lets them (§13.1, §13.2): `DELETE …/move_to_trash` (answers the
//!   request's `id`, `is_trashed`, `deleted_by`, `deleted_on`), `PUT …/restore_from_trash`
//!   (any `input_data` → 400), `DELETE /requests/{id}` purges only a trashed request (else 4000
//!   with `messages[0]` 4017 "Not in trash"; trashing twice is 4016), wrong verbs 4021 naming the
//!   verb, `is_trashed` given on update 4009. Every request carries `is_trashed`, `deleted_time`
//!   and `deleted_by`. `PUT /requests/{parent}/merge_requests` (1 to 49 children) merges for
//!   good: any path of a child answers 404 / 4007 whose `messages[0].message` is the object
//!   `{"parent_request": {"id"}, "message"}`, the child leaves the lists, and the parent gains
//!   a conversation whose notification has `notification_history.operation: "MERGE"` and
//!   `merged_request_id`, plus an edit.
//! - Files are stored once ([`actix_web::web::Bytes`]) and every download shares them, so a
//!   48 MiB upload or [`FakeSdp::attach_file`] is held once; an upload is read into one buffer
//!   sized from the request's length. Downloads answer on `…/attachments/{id}/download` and on
//!   the live `…/_download` (§13.10). A resolution may carry files
//!   (`resolution.resolution_attachments`, [`FakeSdp::set_resolution_with_files`]).
//!   [`FakeSdp::absolute_content_urls`] (off by default) makes every attachment `content_url`
//!   absolute on a second listener, another origin that needs no credential and logs whether
//!   one reached it ([`FakeSdp::foreign_hits`]).
//! - E-mails carry recipients and visibility (§5, §13.4): a conversation row has `type`,
//!   `show_to_requester`, `created_time`, `created_by`, `has_attachments`, `content_url`; the
//!   notification has `sender`, `to`, `cc`, `description`, `time`, `show_to_requester`,
//!   `attachments`. A reply to the requester is shown to them, a forward to a vendor or a mail
//!   to another team is not ([`FakeSdp::add_email_with`] and the mail methods beside it).
//! - Notes change after the fact (§4, §13.5): edited, made private again, deleted for good (no
//!   tombstone), through the API or [`FakeSdp::edit_note`] and its siblings; each move bumps
//!   the note's `last_updated_time` (with `last_updated_by`) and the request's.
//! - `GET /statuses` always carries `internal_name`, `in_progress` and `stop_timer`; assigning a
//!   technician never changes the status. Requesters are looked up on `/users` or `/requesters`
//!   with `search_criteria`/`search_fields` on `email_id`, and created with `POST` of
//!   `{"user": {…}}` (on-prem, §8's revised format) or `{"requester": {…}}` (Cloud).
//!
//! Off by default, because existing tests rely on the seeded instance, each a switch:
//! [`FakeSdp::use_default_statuses`] (only Open, On Hold, Resolved, Closed, Cancelled, §13.6, plus
//! [`FakeSdp::add_status`] for custom ones; the seed also has "Assigned" and "In Progress"),
//! [`FakeSdp::embed_status_flags`]`(false)` (a request's `status` is only `{id, name, color}`, as
//! on-prem 15100+), [`FakeSdp::auto_create_requesters`]`(false)` (an unknown requester on create or
//! update → 4000 with `messages[0]` 4001 naming `requester`), [`FakeSdp::absolute_content_urls`],
//! [`FakeSdp::set_recipients_as_objects`], and the [`TrashRules`] alternatives.
//!
//! Behaviour the doc marks [U] is chosen here as follows: create answers 200 (see
//! [`FakeSdp::set_create_status`]); unknown keys are rejected in both profiles; an unknown requester
//! e-mail or name is created on the fly (through the API only while
//! [`FakeSdp::auto_create_requesters`] is on); requests are sorted by `created_time` desc by
//! default; binding uploads via `PUT /requests/{id}` adds to the attachments (never removes).
//! Adding, editing or deleting a note, an e-mail or a file bumps the request's `last_updated_time`
//! (a staged `_upload` does not until it is bound). Calls with bad credentials neither count
//! toward the budget nor are throttled. On-prem's block runs from the refused call for its whole
//! period (calls during it do not extend it) and empties the window, so the budget is whole again
//! after it. A criterion takes at most 100 `values`. Cloud's notes list also omits `description`
//! (seen live only on-prem; the stricter choice). List rows carry only the fields §2.4 names, so
//! `priority` and `site` need `fields_required` too. A trashed request answers GET with
//! `is_trashed: true` (trashing and restoring are edits), is left out of lists, and refuses
//! changes through the API with 403 / 4002 until restored ([`TrashRules`] switches each); a
//! purged one is a plain 404. Restoring answers status only. A merge's conversation row has
//! `type: "NOTIFICATION"` and is hidden from the requester; `parent_request.id` is a string like
//! every id; the merged child's own notes, e-mails and files stay with it, out of reach. A
//! notification's `to`/`cc` are plain addresses, as in §5's example
//! ([`FakeSdp::set_recipients_as_objects`] gives `{email_id, name}` objects); every mail is
//! `type: "EMAIL"`, a forward told from a reply only by its recipients and `show_to_requester`
//! (the live marker is unknown). `unreplied_count` counts requester e-mails after the last
//! technician mail the requester sees or public note. A new resolution drops the old one's files.
//! A custom status has its own name as `internal_name`; any status that is not in progress
//! completes the request (`completed_time`). Creating a user keeps only `name` and `email_id`.

mod desk;
mod foreign;
mod routes;
mod search;
mod state;
mod wire;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::web;
use actix_web::web::Bytes;
use serde_json::{Value, json};

pub use desk::DeskAction;
pub use foreign::ForeignHit;
#[allow(unused_imports, reason = "part of the API even where no test names it")]
pub use state::{
    AttachmentOwner, CallRecord, DEFAULT_BUDGET, Person, StatusChange, StoredAttachment,
    StoredEmail, StoredNote, Trash, TrashRules,
};
use state::{Shared, State};

/// Which SDP the fake pretends to be; fixed at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    OnPrem,
    Cloud,
}

/// The operations [`Fault::CommitThenDrop`] can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `POST /requests`
    CreateRequest,
    /// `PUT /requests/{id}`
    UpdateRequest,
    /// `POST /requests/{id}/notes`
    AddNote,
    /// `PUT /requests/{id}/upload` and `POST /requests/{id}/_upload`
    Upload,
    /// `PUT /requests/{id}/close` (`_close` on Cloud)
    Close,
    /// Any call that changes something.
    AnyMutation,
}

/// Runtime faults and instance policies. Setting one replaces an earlier one of the same kind;
/// [`FakeSdp::clear_faults`] removes them all.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Every API call answers HTTP 503 (a front end that is up in front of an SDP that is not).
    Down503,
    /// Every API call waits this long before it is handled. It is still handled after a client
    /// gave up (actix does not cancel it), so a timeout can leave a committed change behind.
    Slow(Duration),
    /// Every `every_nth` API call (1 = all of them) answers HTTP 429 with code 4015, plus a
    /// `Retry-After` header when given. Applies on top of the call budget, in both profiles.
    RateLimit {
        every_nth: u32,
        retry_after_secs: Option<u64>,
    },
    /// More than `max` accepted API calls within any `per` window → HTTP 429 / 4015, in both
    /// profiles and without a block (the budget, [`FakeSdp::set_budget`], is the instance's own).
    RateWindow {
        max: u32,
        per: Duration,
        retry_after_secs: Option<u64>,
    },
    /// The next `times` successful calls of `op` are committed, then the connection is closed
    /// without an answer (the client sees a transport error).
    CommitThenDrop { op: Op, times: u32 },
    /// Extra mandatory fields on create, as paths into `request` (`priority`,
    /// `udf_fields.udf_sline_301`) → HTTP 400, code 4012 with `fields`.
    MandatoryFields(Vec<String>),
    /// What must be filled before a request may be closed → HTTP 400, code 4003 with `fields`.
    /// `resolution` means a resolution exists, `closure_info.<key>` is looked up in the close
    /// call's body, any other name in the stored request (`technician`, `category`, …).
    ClosureRule(Vec<String>),
    /// Giving a value for this request field on create or update → HTTP 403, code 4002.
    ForbiddenField(String),
    /// The token endpoint issues this many more tokens, then answers Zoho's "Access Denied".
    TokenLimit(u32),
}

/// Cloud OAuth material the appliance would be configured with.
#[derive(Clone, Debug)]
pub struct OAuthCreds {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// A single-use grant code for `grant_type=authorization_code`.
    pub grant_code: String,
}

/// Who wrote an e-mail added with [`FakeSdp::add_email`].
#[derive(Clone, Debug)]
pub enum EmailFrom {
    /// The request's requester (an inbound reply).
    Requester,
    /// A technician by name (an outgoing reply).
    Technician(String),
}

/// An e-mail for [`FakeSdp::add_email_with`].
#[derive(Clone, Debug)]
pub struct Email {
    pub from: EmailFrom,
    /// Addresses; empty: the requester for a technician's mail, the help desk's address
    /// (`helpdesk@example.com`) for the requester's.
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// HTML body.
    pub body: String,
    /// Whether the requester sees it in the portal: a reply does, a forward or an internal mail
    /// does not.
    pub show_to_requester: bool,
    /// `(file name, bytes)`.
    pub attachments: Vec<(String, Vec<u8>)>,
}

impl Email {
    /// A mail from `from` to the default recipient, shown to the requester, without files.
    pub fn new(from: EmailFrom, body: &str) -> Email {
        Email {
            from,
            to: Vec::new(),
            cc: Vec::new(),
            body: body.to_owned(),
            show_to_requester: true,
            attachments: Vec::new(),
        }
    }
}

/// The portal name in Cloud URLs (`/app/itdesk/api/v3/...`).
pub const PORTAL: &str = "itdesk";

/// A running fake SDP. Dropping it stops the server (without waiting); prefer [`FakeSdp::stop`].
pub struct FakeSdp {
    shared: Arc<Shared>,
    profile: Profile,
    addr: SocketAddr,
    server: Mutex<Option<ServerHandle>>,
    /// The other origin ([`foreign`]), started by the first [`FakeSdp::absolute_content_urls`].
    foreign: Mutex<Option<(SocketAddr, ServerHandle)>>,
    http: reqwest::Client,
}

impl FakeSdp {
    /// Starts the server on 127.0.0.1 and a free port, on the current runtime.
    #[expect(
        clippy::unused_async,
        reason = "it spawns on the caller's runtime; async keeps that requirement visible"
    )]
    pub async fn start(profile: Profile) -> FakeSdp {
        let shared = Arc::new(Shared::new(State::new(profile)));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let handle = serve(&shared, listener, Origin::Sdp);
        FakeSdp {
            shared,
            profile,
            addr,
            server: Mutex::new(Some(handle)),
            foreign: Mutex::new(None),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("webhook client"),
        }
    }

    /// Stops the server (and the other origin); connections in flight are dropped.
    pub async fn stop(self) {
        let handle = self.server_slot().take();
        if let Some(handle) = handle {
            handle.stop(false).await;
        }
        let foreign = self.foreign_slot().take();
        if let Some((_, handle)) = foreign {
            handle.stop(false).await;
        }
    }

    /// Closes the listener, so connecting is refused (the `down_refused` fault). Open keep-alive
    /// connections are cut too, so a client reusing one sees a reset or an incomplete message
    /// rather than a refused connection, as when a real server dies.
    pub async fn refuse_connections(&self) {
        self.state().settings.refusing = true;
        let handle = self.server_slot().take();
        if let Some(handle) = handle {
            handle.stop(false).await;
        }
    }

    /// Opens the listener again on the same port after [`FakeSdp::refuse_connections`].
    pub async fn accept_connections(&self) {
        if self.server_slot().is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(Instant::now() < deadline, "rebind {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.state().settings.refusing = false;
        let handle = serve(&self.shared, listener, Origin::Sdp);
        *self.server_slot() = Some(handle);
    }

    fn server_slot(&self) -> MutexGuard<'_, Option<ServerHandle>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn foreign_slot(&self) -> MutexGuard<'_, Option<(SocketAddr, ServerHandle)>> {
        self.foreign.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    // ----- addresses and credentials -----

    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// `http://127.0.0.1:PORT`, the server root.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the appliance is configured with: on-prem the root, Cloud `<root>/app/itdesk`.
    pub fn base_url(&self) -> String {
        match self.profile {
            Profile::OnPrem => self.root_url(),
            Profile::Cloud => format!("{}/app/{PORTAL}", self.root_url()),
        }
    }

    /// `<base_url>/api/v3<path>`, e.g. `api_url("/requests")`.
    pub fn api_url(&self, path: &str) -> String {
        format!("{}/api/v3{path}", self.base_url())
    }

    /// The fake Zoho accounts server (`POST <accounts_url>/oauth/v2/token`).
    pub fn accounts_url(&self) -> String {
        self.root_url()
    }

    /// The technician API key on-prem (ignored by the Cloud profile).
    pub fn api_key(&self) -> String {
        self.state().auth.api_key.clone()
    }

    /// Replaces the API key: the old one gets 401 / 4022 from now on.
    pub fn set_api_key(&self, key: &str) {
        key.clone_into(&mut self.state().auth.api_key);
    }

    pub fn oauth(&self) -> OAuthCreds {
        self.state().auth.creds.clone()
    }

    /// Every access token issued so far stops working (401 / 4022), as if it had expired.
    pub fn expire_access_tokens(&self) {
        self.state().auth.access_tokens.clear();
    }

    /// The refresh token stops working (the token endpoint answers `invalid_code`).
    pub fn revoke_refresh_token(&self) {
        self.state().auth.refresh_tokens.clear();
    }

    /// Lifetime of tokens issued from now on (`expires_in`; default 3600 s); they really expire.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().auth.lifetime = lifetime;
    }

    /// Cloud: adds an OAuth scope to what the tokens carry (`SDPOnDemand.users.ALL` opens the
    /// requester directory; without it `/requesters` and `/users` answer 401, §2).
    pub fn grant_scope(&self, scope: &str) {
        self.state().auth.scopes.push(scope.to_owned());
    }

    /// How many calls reached `POST /oauth/v2/token`.
    pub fn token_requests(&self) -> usize {
        self.state().auth.token_requests
    }

    // ----- faults and settings -----

    pub fn set_fault(&self, fault: Fault) {
        self.state().faults.set(fault);
    }

    /// Removes every [`Fault`] (not the settings below, and not a closed listener).
    pub fn clear_faults(&self) {
        self.state().faults = state::Faults::default();
    }

    /// A fixed extra delay on every API answer (for benchmarks); survives `clear_faults`.
    pub fn set_latency(&self, latency: Duration) {
        self.state().settings.latency = latency;
    }

    /// Largest accepted upload (default 10 MB); bigger ones get HTTP 400 / 4000.
    pub fn set_max_upload(&self, bytes: usize) {
        self.state().settings.max_upload = bytes;
    }

    /// Whether a notification's `to` and `cc` are `{"email_id", "name"}` objects (default: plain
    /// addresses, as in §5's example).
    pub fn set_recipients_as_objects(&self, on: bool) {
        self.state().settings.recipient_objects = on;
    }

    /// Cloud: send `display_id` as `{"value", "display_value"}` instead of a string.
    pub fn set_display_id_object(&self, on: bool) {
        self.state().settings.display_id_object = on;
    }

    /// Whether attachment `content_url`s (of requests, e-mails and resolutions) are absolute URLs
    /// on another origin: a second listener on 127.0.0.1 that serves the same bytes without
    /// credentials and records every call ([`FakeSdp::foreign_hits`]). Off by default (relative
    /// URLs on the SDP origin). The first switch-on starts that listener, on the current runtime.
    pub fn absolute_content_urls(&self, on: bool) {
        let origin = on.then(|| {
            let mut slot = self.foreign_slot();
            let (addr, _) = slot.get_or_insert_with(|| {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
                let addr = listener.local_addr().expect("local addr");
                (addr, serve(&self.shared, listener, Origin::Foreign))
            });
            format!("http://{addr}")
        });
        self.state().settings.content_origin = origin;
    }

    /// Every call the other origin received, in arrival order.
    pub fn foreign_hits(&self) -> Vec<ForeignHit> {
        self.state().foreign_hits.clone()
    }

    /// HTTP status of a successful create (200 as observed; 201 is possible).
    pub fn set_create_status(&self, status: u16) {
        self.state().settings.create_status = status;
    }

    // ----- instance policies (strict by default; these relax or tune them) -----

    /// The call budget: at most `max` accepted API calls in any `per` (sliding); `None` is
    /// unlimited, for tests that say why. Default [`DEFAULT_BUDGET`] (60 per 60 s). Starts a fresh
    /// window and lifts an on-prem block. Survives `clear_faults`.
    pub fn set_budget(&self, budget: Option<(u32, Duration)>) {
        let mut s = self.state();
        s.budget.limit = budget;
        s.budget.accepted.clear();
        s.budget.blocked_until = None;
    }

    /// On-prem: how long every call is refused once the budget was exceeded (default 60 s), from
    /// the next block on. Zero refuses only the calls over the budget, as Cloud does.
    pub fn set_block_period(&self, block: Duration) {
        self.state().budget.block = block;
    }

    /// A `Retry-After` header (seconds) on budget refusals; none by default, as SDP documents none.
    pub fn set_budget_retry_after(&self, secs: Option<u64>) {
        self.state().budget.retry_after = secs;
    }

    /// Until when an on-prem block refuses every call, if one is in force.
    pub fn blocked_until(&self) -> Option<Instant> {
        let s = self.state();
        s.budget
            .blocked_until
            .filter(|until| Instant::now() < *until)
    }

    /// `row_count` of a list call that gives none (default 10).
    pub fn set_default_row_count(&self, rows: usize) {
        self.state().settings.default_row_count = rows;
    }

    /// Whether `fields_required` inside `list_info` is read (default: Cloud yes, on-prem no).
    pub fn set_fields_required_in_list_info(&self, read: bool) {
        self.state().settings.fields_required_in_list_info = read;
    }

    /// Whether single-object GETs answer 400 when `input_data` is attached (default yes).
    pub fn set_reject_single_get_input(&self, reject: bool) {
        self.state().settings.reject_single_get_input = reject;
    }

    /// Whether a never-edited request shows `last_updated_time: null` (default yes); off, it shows
    /// its creation time.
    pub fn set_last_updated_null_until_edited(&self, null: bool) {
        self.state().settings.null_until_edited = null;
    }

    /// Whether rows of the notes list carry `description` (default no).
    pub fn set_note_list_descriptions(&self, with: bool) {
        self.state().settings.note_list_descriptions = with;
    }

    /// Whether `search_criteria` may combine a date criterion with others (default: Cloud yes,
    /// on-prem no).
    pub fn set_mixed_date_criteria(&self, allowed: bool) {
        self.state().settings.mixed_date_criteria = allowed;
    }

    /// Whether both `/users` and `/requesters` are served (default: only the profile's own).
    pub fn set_both_user_paths(&self, both: bool) {
        self.state().settings.both_user_paths = both;
    }

    /// Whether an unknown requester (by e-mail or name) on create or update through the API
    /// becomes a new requester (default yes); off, it answers 400 / 4000 with `messages[0]`
    /// 4001 naming `requester`. Someone working in SDP (the technician methods) may always
    /// name a new requester.
    pub fn auto_create_requesters(&self, on: bool) {
        self.state().settings.auto_create_requesters = on;
    }

    /// Only the statuses a fresh instance has (§13.6): Open (timer on), On Hold (in progress,
    /// timer stopped), Resolved, Closed, Cancelled (completed); no "Assigned" or "In Progress".
    /// Off by default (the seeded seven). Call it before raising requests: a request keeps the
    /// status it has.
    pub fn use_default_statuses(&self) {
        self.state().use_default_statuses();
    }

    /// A subcategory added in SDP under the category named `category`; returns its id.
    pub fn add_subcategory(&self, category: &str, name: &str) -> String {
        self.state().add_subcategory(category, name)
    }

    /// A custom status (say "Awaiting Vendor" in progress with the timer stopped, or
    /// "Investigating" in progress with the timer on); `in_progress` false makes it completed.
    /// Returns its id.
    pub fn add_status(&self, name: &str, in_progress: bool, stop_timer: bool) -> String {
        self.state().add_status(name, in_progress, stop_timer)
    }

    /// Whether a request's `status` carries `internal_name`, `in_progress` and `stop_timer`
    /// (default yes); off, only `{id, name, color}` as on-prem 15100+ sends it, and the flags
    /// come only from `GET /statuses`.
    pub fn embed_status_flags(&self, on: bool) {
        self.state().settings.embed_status_flags = on;
    }

    /// What a trashed request answers (default [`TrashRules::default`]: GET shows it with
    /// `is_trashed: true`, lists leave it out, API changes to it are refused).
    pub fn set_trash_rules(&self, rules: TrashRules) {
        self.state().settings.trash = rules;
    }

    // ----- the technician side: changes made inside SDP -----

    /// Raises a request as if it came in through SDP; returns its id.
    pub fn raise_request(&self, subject: &str, requester_email: &str) -> String {
        self.raise_request_with(
            json!({"subject": subject, "requester": {"email_id": requester_email}}),
        )
    }

    /// Raises a request from fields shaped like the API's `request` object.
    pub fn raise_request_with(&self, fields: Value) -> String {
        let fields = into_object(fields);
        let mut s = self.state();
        let by = s.technician("Tech One");
        s.create_request(&fields, &by, false)
            .unwrap_or_else(|e| panic!("raise_request_with({fields:?}): {e:?}"))
    }

    /// Edits a request with fields shaped like the API's `request` object.
    pub fn edit_request(&self, id: &str, fields: Value) {
        let fields = into_object(fields);
        let mut s = self.state();
        s.update_request(id, &fields, false)
            .unwrap_or_else(|e| panic!("edit_request({id}, {fields:?}): {e:?}"));
    }

    /// Changes the status by name (`"Resolved"`, `"On Hold"`, `"Closed"` …).
    pub fn set_status(&self, id: &str, status: &str, comments: Option<&str>) {
        let mut fields = json!({"status": {"name": status}});
        if let Some(comments) = comments {
            fields["status_change_comments"] = json!(comments);
        }
        self.edit_request(id, fields);
    }

    /// Closes the request as the close action does: status Closed, `closure_info.closure_comments`.
    pub fn close(&self, id: &str, closure_comments: &str) {
        let closure = json!({"closure_comments": closure_comments});
        self.state()
            .close_request(id, Some(as_object(&closure)))
            .unwrap_or_else(|e| panic!("close({id}): {e:?}"));
    }

    /// Changes the requester to the user with `email`, who is created (named `name`) if new.
    pub fn change_requester(&self, id: &str, email: &str, name: &str) {
        self.edit_request(id, json!({"requester": {"email_id": email, "name": name}}));
    }

    /// Sets the SLA's times as SDP computes them (ms since the epoch; `None`: none) and its
    /// overdue flags, as a technician's edit does (`last_updated_time` moves).
    pub fn set_due_times(
        &self,
        id: &str,
        first_response_ms: Option<i64>,
        resolve_ms: Option<i64>,
        (first_response_overdue, overdue): (bool, bool),
    ) {
        let flags = [first_response_overdue, overdue];
        self.state()
            .set_promise(id, Some([first_response_ms, resolve_ms]), flags, true);
    }

    /// Raises or lowers the overdue flags as SDP's scheduler does: `last_updated_time` stays.
    pub fn set_overdue_flags(&self, id: &str, first_response_overdue: bool, overdue: bool) {
        self.state()
            .set_promise(id, None, [first_response_overdue, overdue], false);
    }

    /// Records the team's first response at `at_ms` (`responded_time`).
    pub fn set_responded(&self, id: &str, at_ms: i64) {
        self.state().set_responded(id, at_ms);
    }

    /// Assigns a technician by name (`"Tech One"`, `"Tech Two"`); the status stays as it is.
    pub fn assign_technician(&self, id: &str, technician: &str) {
        self.edit_request(id, json!({"technician": {"name": technician}}));
    }

    /// Adds a note by "Tech One"; `public` is `show_to_requester`. Returns the note id.
    pub fn add_note(&self, id: &str, text: &str, public: bool) -> String {
        let mut s = self.state();
        let by = s.technician("Tech One");
        let input = json!({"description": text, "show_to_requester": public});
        s.add_note(id, as_object(&input), &by)
            .unwrap_or_else(|e| panic!("add_note({id}): {e:?}"))
    }

    /// Adds an e-mail conversation; returns its (notification) id.
    pub fn add_email(&self, id: &str, from: EmailFrom, body: &str) -> String {
        self.add_email_with_files(id, from, body, &[])
    }

    /// Adds an e-mail conversation carrying attachments (`(file name, bytes)`).
    pub fn add_email_with_files(
        &self,
        id: &str,
        from: EmailFrom,
        body: &str,
        files: &[(&str, &[u8])],
    ) -> String {
        let mut mail = Email::new(from, body);
        mail.attachments = files
            .iter()
            .map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec()))
            .collect();
        self.add_email_with(id, mail)
    }

    /// Adds an e-mail conversation with its recipients and visibility; returns its id.
    pub fn add_email_with(&self, id: &str, mail: Email) -> String {
        self.state()
            .add_email(id, mail)
            .unwrap_or_else(|e| panic!("add_email({id}): {e:?}"))
    }

    /// A technician's reply to the requester (to: the requester, shown to the requester).
    pub fn email_requester(&self, id: &str, technician: &str, body: &str) -> String {
        self.add_email_with(
            id,
            Email::new(EmailFrom::Technician(technician.to_owned()), body),
        )
    }

    /// A technician forwards the request to a vendor (to: `vendor`, hidden from the requester).
    pub fn forward_to_vendor(
        &self,
        id: &str,
        technician: &str,
        vendor: &str,
        body: &str,
    ) -> String {
        self.mail_elsewhere(id, technician, vendor, body)
    }

    /// A technician mails another team about the request (to: `address`, hidden from the
    /// requester).
    pub fn email_team(&self, id: &str, technician: &str, address: &str, body: &str) -> String {
        self.mail_elsewhere(id, technician, address, body)
    }

    fn mail_elsewhere(&self, id: &str, technician: &str, to: &str, body: &str) -> String {
        let mut mail = Email::new(EmailFrom::Technician(technician.to_owned()), body);
        mail.to = vec![to.to_owned()];
        mail.show_to_requester = false;
        self.add_email_with(id, mail)
    }

    /// An inbound mail from the requester (to: the help desk, shown to the requester).
    pub fn email_from_requester(&self, id: &str, body: &str) -> String {
        self.add_email_with(id, Email::new(EmailFrom::Requester, body))
    }

    /// Edits a note's text as "Tech One".
    pub fn edit_note(&self, request: &str, note: &str, html: &str) {
        self.change_note(request, note, &json!({"description": html}));
    }

    /// Makes a note public (`show_to_requester: true`) or private again, as "Tech One".
    pub fn set_note_public(&self, request: &str, note: &str, public: bool) {
        self.change_note(request, note, &json!({"show_to_requester": public}));
    }

    fn change_note(&self, request: &str, note: &str, input: &Value) {
        let mut s = self.state();
        let by = s.technician("Tech One");
        s.update_note(request, note, as_object(input), &by)
            .unwrap_or_else(|e| panic!("change note {note} of {request}: {e:?}"));
    }

    /// Deletes a note for good (no tombstone); the request's `last_updated_time` moves.
    pub fn delete_note(&self, request: &str, note: &str) {
        self.state()
            .delete_note(request, note)
            .unwrap_or_else(|e| panic!("delete_note({request}, {note}): {e:?}"));
    }

    /// Attaches a file to the request as "Tech One"; returns the attachment id. The fake keeps
    /// one copy of the bytes, shared by every download.
    pub fn attach_file(&self, id: &str, name: &str, bytes: &[u8]) -> String {
        let bytes = Bytes::copy_from_slice(bytes);
        let mut s = self.state();
        let by = s.technician("Tech One");
        let content_type = wire::guess_content_type(name);
        s.add_attachment(
            id,
            name,
            &content_type,
            bytes,
            AttachmentOwner::Request,
            &by,
        )
        .unwrap_or_else(|e| panic!("attach_file({id}): {e:?}"))
    }

    /// Sets (replaces) the resolution as "Tech One".
    pub fn set_resolution(&self, id: &str, text: &str) {
        self.set_resolution_with_files(id, text, &[]);
    }

    /// Sets (replaces) the resolution as "Tech One" with files (`(file name, bytes)`), listed in
    /// `resolution.resolution_attachments` and downloadable like any attachment.
    pub fn set_resolution_with_files(&self, id: &str, html: &str, files: &[(&str, &[u8])]) {
        let files = files
            .iter()
            .map(|(name, bytes)| ((*name).to_owned(), Bytes::copy_from_slice(bytes)))
            .collect();
        let mut s = self.state();
        let by = s.technician("Tech One");
        s.set_resolution_with_files(id, html, files, &by)
            .unwrap_or_else(|e| panic!("set_resolution_with_files({id}): {e:?}"));
    }

    /// Moves the request to the trash as "Tech One" (`DELETE …/move_to_trash`).
    pub fn trash(&self, id: &str) {
        let mut s = self.state();
        let by = s.technician("Tech One");
        s.trash(id, &by)
            .unwrap_or_else(|e| panic!("trash({id}): {e:?}"));
    }

    /// Takes the request out of the trash (`PUT …/restore_from_trash`).
    pub fn restore(&self, id: &str) {
        self.state()
            .restore(id)
            .unwrap_or_else(|e| panic!("restore({id}): {e:?}"));
    }

    /// Deletes a trashed request for good (`DELETE /requests/{id}`); from then on it is 404.
    pub fn purge(&self, id: &str) {
        self.state()
            .purge(id)
            .unwrap_or_else(|e| panic!("purge({id}): {e:?}"));
    }

    /// Merges `child` into `parent` as "Tech One" (`PUT /requests/{parent}/merge_requests`).
    pub fn merge(&self, parent: &str, child: &str) {
        let mut s = self.state();
        let by = s.technician("Tech One");
        s.merge(parent, &[child.to_owned()], &by)
            .unwrap_or_else(|e| panic!("merge({parent}, {child}): {e:?}"));
    }

    // ----- inspection -----

    /// The request as `GET /requests/{id}` shows it; a merged request too, as it was when merged
    /// (its GET answers 404). `None` once purged.
    pub fn request(&self, id: &str) -> Option<Value> {
        let s = self.state();
        s.requests.get(id).map(|r| wire::request(&s, r))
    }

    /// Every request, oldest first, as `GET /requests/{id}` shows them (trashed and merged ones
    /// too; purged ones are gone).
    pub fn requests(&self) -> Vec<Value> {
        let s = self.state();
        let mut all: Vec<_> = s.requests.values().collect();
        all.sort_by_key(|r| r.created_ms);
        all.into_iter().map(|r| wire::request(&s, r)).collect()
    }

    /// The request's notes as stored, oldest first.
    pub fn notes(&self, id: &str) -> Vec<StoredNote> {
        let s = self.state();
        s.notes
            .iter()
            .filter(|n| n.request_id == id)
            .cloned()
            .collect()
    }

    /// The request's e-mail conversations, oldest first.
    pub fn emails(&self, id: &str) -> Vec<StoredEmail> {
        let s = self.state();
        s.emails
            .iter()
            .filter(|e| e.request_id == id)
            .cloned()
            .collect()
    }

    /// Every file stored for the request (bound, unbound and e-mail ones), with bytes.
    pub fn attachments(&self, id: &str) -> Vec<StoredAttachment> {
        let s = self.state();
        s.attachments
            .iter()
            .filter(|a| a.request_id == id)
            .cloned()
            .collect()
    }

    /// The request's status changes with their comments, oldest first.
    pub fn status_changes(&self, id: &str) -> Vec<StatusChange> {
        let s = self.state();
        s.requests
            .get(id)
            .map(|r| r.status_changes.clone())
            .unwrap_or_default()
    }

    /// Every call received (API and token endpoint) since the last [`FakeSdp::reset_calls`], in
    /// arrival order; refused ones have their status and [`CallRecord::throttled`].
    pub fn calls(&self) -> Vec<CallRecord> {
        self.state().calls.clone()
    }

    /// The calls that arrived at or after `from` and before `to`.
    pub fn calls_between(&self, from: Instant, to: Instant) -> Vec<CallRecord> {
        let s = self.state();
        s.calls
            .iter()
            .filter(|c| from <= c.at && c.at < to)
            .cloned()
            .collect()
    }

    /// Forgets the calls logged so far (not the budget's window, which is the instance's).
    pub fn reset_calls(&self) {
        self.state().calls.clear();
    }

    /// How many calls hit an endpoint, named like `"POST /requests"`,
    /// `"GET /requests/{id}/notes"` or `"POST /oauth/v2/token"` (ids become `{id}`).
    pub fn call_count(&self, endpoint: &str) -> usize {
        let s = self.state();
        s.calls.iter().filter(|c| c.endpoint == endpoint).count()
    }

    /// Arrival times of the API calls (not the token endpoint), for pacing assertions.
    pub fn call_times(&self) -> Vec<Instant> {
        let s = self.state();
        s.calls
            .iter()
            .filter(|c| c.endpoint != routes::TOKEN_ENDPOINT)
            .map(|c| c.at)
            .collect()
    }

    /// Plays an SDP trigger: POSTs `{"request_id": "<id>", "event": "request_updated"}` to `url`.
    pub async fn fire_webhook(
        &self,
        url: &str,
        request_id: &str,
    ) -> reqwest::Result<reqwest::StatusCode> {
        self.fire_webhook_with(
            url,
            &json!({"request_id": request_id, "event": "request_updated"}),
        )
        .await
    }

    /// Plays an SDP custom function that posts a form (`application/x-www-form-urlencoded`).
    pub async fn fire_webhook_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Result<reqwest::StatusCode> {
        let response = self.http.post(url).form(form).send().await?;
        Ok(response.status())
    }

    /// Plays an SDP trigger with any JSON body.
    pub async fn fire_webhook_with(
        &self,
        url: &str,
        body: &Value,
    ) -> reqwest::Result<reqwest::StatusCode> {
        let response = self.http.post(url).json(body).send().await?;
        Ok(response.status())
    }
}

impl Drop for FakeSdp {
    fn drop(&mut self) {
        // The stop commands are sent at once; nobody waits for them here.
        if let Some(handle) = self.server_slot().take() {
            drop(handle.stop(false));
        }
        if let Some((_, handle)) = self.foreign_slot().take() {
            drop(handle.stop(false));
        }
    }
}

fn into_object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(map) => map,
        other => panic!("fields must be a JSON object, not {other}"),
    }
}

fn as_object(v: &Value) -> &serde_json::Map<String, Value> {
    v.as_object().expect("fields must be a JSON object")
}

/// Which of the fake's two listeners a server is.
#[derive(Clone, Copy)]
enum Origin {
    /// The SDP API and the token endpoint.
    Sdp,
    /// The other origin that absolute `content_url`s point to.
    Foreign,
}

/// Runs an actix server for `shared` on `listener`, spawned on the current runtime.
fn serve(shared: &Arc<Shared>, listener: TcpListener, origin: Origin) -> ServerHandle {
    let data = web::Data::from(Arc::clone(shared));
    spawn_server(listener, move |cfg| {
        cfg.app_data(data.clone());
        match origin {
            Origin::Sdp => cfg.default_service(web::to(routes::dispatch)),
            Origin::Foreign => cfg.default_service(web::to(foreign::handle)),
        };
    })
}

/// Runs a fake server (an actix app configured by `configure`) on `listener`, one worker, spawned on
/// the current runtime: how the fake SDP and the test identity provider serve HTTP.
pub fn spawn_server(
    listener: std::net::TcpListener,
    configure: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
) -> actix_web::dev::ServerHandle {
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(0)
            .listen(listener)
            .expect("listen")
            .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}
