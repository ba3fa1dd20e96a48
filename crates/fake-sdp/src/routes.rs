//! The HTTP side: one default service that records the call, applies the faults, checks the
//! credentials, applies the call budget, reads `input_data` (query string, form body or
//! multipart) and routes by path.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use serde_json::{Map, Value, json};

use super::search::ListParams;
use super::state::{self, AttachmentOwner, CallRecord, Refusal, Shared, State, StoredEmail};
use super::wire::{self, SdpError};
use super::{Op, PORTAL, Profile};

pub(crate) const TOKEN_ENDPOINT: &str = "POST /oauth/v2/token";

/// Largest non-multipart body read.
const FORM_LIMIT: usize = 16 * 1024 * 1024;

/// On-prem's answer while its URL throttle blocks the caller (§13.8): a page, not JSON.
const BLOCKED_PAGE: &str = "<html><head><title>URL blocked</title></head><body>\
    <h2>URL blocked as maximum access limit exceeded</h2></body></html>";

const TABLES: &[(&str, &str)] = &[
    ("statuses", "status"),
    ("priorities", "priority"),
    ("urgencies", "urgency"),
    ("impacts", "impact"),
    ("levels", "level"),
    ("modes", "mode"),
    ("request_types", "request_type"),
    ("categories", "category"),
    ("subcategories", "subcategory"),
    ("items", "item"),
    ("sites", "site"),
    ("request_templates", "request_template"),
    ("closure_codes", "closure_code"),
    ("support_groups", "support_group"),
    ("technicians", "technician"),
];

enum Target {
    /// The path below `/api/v3`.
    Api(Vec<String>),
    Token,
    Unknown,
}

impl Target {
    fn of(path: &str) -> Target {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let rest = match segs.as_slice() {
            ["oauth", "v2", "token"] => return Target::Token,
            ["api", "v3", rest @ ..] => rest,
            ["app", portal, "api", "v3", rest @ ..] if *portal == PORTAL => rest,
            _ => return Target::Unknown,
        };
        Target::Api(rest.iter().map(|s| (*s).to_owned()).collect())
    }
}

enum Outcome {
    Json(u16, Value),
    File {
        name: String,
        content_type: String,
        bytes: Bytes,
    },
    /// Close the connection without an answer.
    Drop,
}

fn ok(body: Value) -> Outcome {
    Outcome::Json(200, body)
}

struct FilePart {
    field: String,
    name: String,
    content_type: String,
    bytes: Bytes,
}

struct RawInput {
    input_data: Option<String>,
    files: Vec<FilePart>,
}

/// The one handler behind every path.
pub(crate) async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let method = req.method().as_str().to_owned();
    let target = Target::of(req.path());
    let endpoint = match &target {
        Target::Token => TOKEN_ENDPOINT.to_owned(),
        Target::Api(rest) => endpoint_label(&method, rest),
        Target::Unknown => format!("{method} {}", req.path()),
    };
    let seq = {
        let mut s = shared.lock();
        s.log_call(CallRecord {
            seq: 0,
            at: Instant::now(),
            epoch_ms: state::now_ms(),
            method: method.clone(),
            path: req.path().to_owned(),
            endpoint,
            accept: header_text(req.headers(), "accept"),
            content_type: header_text(req.headers(), "content-type"),
            input_data: None,
            status: None,
            throttled: false,
        })
    };
    if shared.lock().settings.refusing {
        // A connection that outlived the listener: the server is "down", so no answer.
        drain(payload).await;
        return respond(Outcome::Drop);
    }
    let (status, response) = match target {
        Target::Token => token_call(&req, payload, &shared).await,
        Target::Api(rest) => api_call(&req, payload, &shared, &method, &rest, seq).await,
        Target::Unknown => {
            drain(payload).await;
            error_response(&SdpError::not_found("resource"), false)
        }
    };
    if let Some(call) = shared.lock().call_mut(seq) {
        call.status = status;
    }
    response
}

fn endpoint_label(method: &str, rest: &[String]) -> String {
    let parts: Vec<&str> = rest
        .iter()
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                s.as_str()
            }
        })
        .collect();
    format!("{method} /{}", parts.join("/"))
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn api_call(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &Shared,
    method: &str,
    rest: &[String],
    seq: u64,
) -> (Option<u16>, HttpResponse) {
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let list = method == "GET"
        && matches!(
            rest.as_slice(),
            [_] | [
                _,
                _,
                "notes" | "conversations" | "attachments" | "subcategories"
            ]
        );
    let (down, delay) = {
        let s = shared.lock();
        (
            s.faults.down_503,
            s.faults.slow.unwrap_or_default() + s.settings.latency,
        )
    };
    if down {
        drain(payload).await;
        let response = HttpResponse::ServiceUnavailable()
            .content_type("text/html")
            .body("<html><body><h1>503 Service Unavailable</h1></body></html>");
        return (Some(503), response);
    }
    if delay > Duration::ZERO {
        actix_web::rt::time::sleep(delay).await;
    }
    if lacks_scope(&shared.lock(), &rest) {
        drain(payload).await;
        // Cloud's front end refuses a call outside the token's scopes: 401, no SDP body (§2).
        let response = HttpResponse::Unauthorized()
            .content_type("text/plain")
            .body("OAUTH_SCOPE_MISMATCH");
        return (Some(401), response);
    }
    let max_upload = match admit(shared, req.headers(), seq, list) {
        Ok(max_upload) => max_upload,
        Err(answer) => {
            drain(payload).await;
            return *answer;
        }
    };
    let raw = match read_input(req, payload, max_upload).await {
        Ok(raw) => raw,
        Err(e) => return error_response(&e, list),
    };
    let mut s = shared.lock();
    if let Some(call) = s.call_mut(seq) {
        call.input_data.clone_from(&raw.input_data);
    }
    if method == "GET"
        && raw.input_data.is_some()
        && s.settings.reject_single_get_input
        && single_object_get(&rest)
    {
        // A live instance answers 400 to a GET of one object carrying any input_data (§13.13).
        return error_response(
            &SdpError::bad_input("input_data is not allowed for this operation"),
            false,
        );
    }
    let data = match raw
        .input_data
        .as_deref()
        .map(serde_json::from_str::<Value>)
        .transpose()
    {
        Ok(data) => data,
        Err(e) => {
            return error_response(
                &SdpError::bad_input(&format!("Invalid input_data: {e}")),
                list,
            );
        }
    };
    match route(&mut s, method, &rest, data.as_ref(), raw.files) {
        Ok(outcome) => {
            let success = match &outcome {
                Outcome::Json(status, _) => (200..300).contains(status),
                Outcome::File { .. } => true,
                Outcome::Drop => false,
            };
            let op = operation(s.profile, method, &rest);
            if success && op.is_some_and(|op| s.faults.take_drop(op)) {
                return (None, respond(Outcome::Drop));
            }
            let status = match &outcome {
                Outcome::Json(status, _) => Some(*status),
                Outcome::File { .. } => Some(200),
                Outcome::Drop => None,
            };
            (status, respond(outcome))
        }
        Err(e) => error_response(&e, list),
    }
}

/// Checks the credentials, then the call budget and the rate-limit faults; the answer to give
/// instead of handling the call, or else the largest upload to read. Calls with bad credentials
/// are answered before the budget: they neither count nor are throttled ([U]).
fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    seq: u64,
    list: bool,
) -> Result<usize, Box<(Option<u16>, HttpResponse)>> {
    let mut s = shared.lock();
    if !authorized(&s, headers) {
        return Err(Box::new(error_response(
            &SdpError::unauthorized(s.profile),
            false,
        )));
    }
    match s.admit(Instant::now()) {
        Ok(()) => Ok(s.settings.max_upload),
        Err(refusal) => {
            if let Some(call) = s.call_mut(seq) {
                call.throttled = true;
            }
            Err(Box::new(refusal_response(s.profile, &refusal, list)))
        }
    }
}

/// Which [`Op`] a mutating call is, for [`super::Fault::CommitThenDrop`].
fn operation(profile: Profile, method: &str, rest: &[&str]) -> Option<Op> {
    let close = close_path(profile);
    match (method, rest) {
        ("GET", _) => None,
        ("POST", ["requests"]) => Some(Op::CreateRequest),
        ("PUT", ["requests", _]) => Some(Op::UpdateRequest),
        ("POST", ["requests", _, "notes"]) => Some(Op::AddNote),
        ("PUT", ["requests", _, "upload"]) | ("POST", ["requests", _, "_upload"]) => {
            Some(Op::Upload)
        }
        ("PUT", ["requests", _, action]) if *action == close => Some(Op::Close),
        _ => Some(Op::AnyMutation),
    }
}

fn close_path(profile: Profile) -> &'static str {
    match profile {
        Profile::OnPrem => "close",
        Profile::Cloud => "_close",
    }
}

fn respond(outcome: Outcome) -> HttpResponse {
    match outcome {
        Outcome::Json(status, body) => {
            HttpResponse::build(StatusCode::from_u16(status).expect("valid status"))
                .content_type("application/json;charset=UTF-8")
                .body(body.to_string())
        }
        Outcome::File {
            name,
            content_type,
            bytes,
        } => file_response(&name, &content_type, bytes),
        // A body that fails at once: actix drops the connection before the head is flushed.
        Outcome::Drop => HttpResponse::Ok().streaming(futures_util::stream::once(async {
            Err::<Bytes, _>(std::io::Error::other("fake SDP: commit then drop"))
        })),
    }
}

/// A file download. The body shares the stored bytes: no copy per download, whatever the size.
pub(crate) fn file_response(name: &str, content_type: &str, bytes: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(bytes)
}

/// A GET of one object (which takes no `input_data`), not a list and not a download.
fn single_object_get(rest: &[&str]) -> bool {
    match rest {
        ["requests", id] => *id != "_metainfo",
        ["requests", _, "notes" | "notifications", _] | ["requests", _, "resolutions"] => true,
        [table, _] => TABLES.iter().any(|(list, _)| list == table),
        _ => false,
    }
}

/// The answer to a call refused for rate: Cloud's 429 / 4015 JSON; on-prem's "URL blocked" page,
/// sent as HTTP 403 `text/html` (the live status code is not known).
fn refusal_response(
    profile: Profile,
    refusal: &Refusal,
    list: bool,
) -> (Option<u16>, HttpResponse) {
    match (refusal, profile) {
        (Refusal::RateFault(e), _) => error_response(e, list),
        (Refusal::Budget { retry_after }, Profile::Cloud) => {
            error_response(&SdpError::over_budget(*retry_after), list)
        }
        (Refusal::Budget { retry_after }, Profile::OnPrem) => {
            let mut response = HttpResponse::Forbidden();
            if let Some(secs) = retry_after {
                response.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            let response = response
                .content_type("text/html;charset=UTF-8")
                .body(BLOCKED_PAGE);
            (Some(403), response)
        }
    }
}

fn error_response(e: &SdpError, list: bool) -> (Option<u16>, HttpResponse) {
    let mut response = HttpResponse::build(StatusCode::from_u16(e.http).expect("valid status"));
    if let Some(secs) = e.retry_after {
        response.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    let response = response
        .content_type("application/json;charset=UTF-8")
        .body(e.body(list).to_string());
    (Some(e.http), response)
}

async fn drain(mut payload: web::Payload) {
    while let Some(Ok(_)) = payload.next().await {}
}

async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, SdpError> {
    let mut body = Vec::new();
    let mut over = false;
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| SdpError::bad_input(&format!("cannot read the body: {e}")))?;
        over = over || body.len() + chunk.len() > limit;
        if !over {
            body.extend_from_slice(&chunk);
        }
    }
    if over {
        Err(SdpError::too_large(limit))
    } else {
        Ok(body)
    }
}

fn form_params(text: &str) -> Result<HashMap<String, String>, SdpError> {
    web::Query::<HashMap<String, String>>::from_query(text)
        .map(web::Query::into_inner)
        .map_err(|e| SdpError::bad_input(&format!("malformed parameters: {e}")))
}

/// `input_data` from a form body, a multipart text part or the query string (in that order of
/// preference), plus any uploaded files.
async fn read_input(
    req: &HttpRequest,
    payload: web::Payload,
    max_upload: usize,
) -> Result<RawInput, SdpError> {
    let mut input_data = form_params(req.query_string())?.remove("input_data");
    let content_type = header_text(req.headers(), "content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut files = Vec::new();
    if content_type.starts_with("multipart/form-data") {
        // A file part is read into one buffer sized from the request's length (a little more
        // than the file), so a large upload is held once, not regrown and copied.
        let hint = header_text(req.headers(), "content-length")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_default()
            .min(max_upload.saturating_add(1));
        let mut parts = Multipart::new(req.headers(), payload);
        let mut too_large = false;
        while let Some(part) = parts.next().await {
            let mut part =
                part.map_err(|e| SdpError::bad_input(&format!("malformed multipart body: {e}")))?;
            let field = part.name().unwrap_or_default().to_owned();
            let file_name = part
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .map(str::to_owned);
            let part_type = part.content_type().map(ToString::to_string);
            let mut bytes = BytesMut::with_capacity(if file_name.is_some() { hint } else { 0 });
            let mut over = false;
            while let Some(chunk) = part.next().await {
                let chunk = chunk
                    .map_err(|e| SdpError::bad_input(&format!("malformed multipart body: {e}")))?;
                over = over || bytes.len() + chunk.len() > max_upload;
                if !over {
                    bytes.extend_from_slice(&chunk);
                }
            }
            too_large |= over;
            if field == "input_data" && file_name.is_none() {
                input_data = Some(String::from_utf8_lossy(&bytes).into_owned());
            } else if !over {
                let name = file_name.unwrap_or_else(|| field.clone());
                let content_type = part_type
                    .filter(|t| t != "application/octet-stream")
                    .unwrap_or_else(|| wire::guess_content_type(&name));
                files.push(FilePart {
                    field,
                    name,
                    content_type,
                    bytes: bytes.freeze(),
                });
            }
        }
        if too_large {
            return Err(SdpError::too_large(max_upload));
        }
    } else {
        let body = read_body(payload, FORM_LIMIT).await?;
        if content_type.starts_with("application/x-www-form-urlencoded") && !body.is_empty() {
            let text = std::str::from_utf8(&body)
                .map_err(|_| SdpError::bad_input("the form body is not UTF-8"))?;
            if let Some(v) = form_params(text)?.remove("input_data") {
                input_data = Some(v);
            }
        }
    }
    Ok(RawInput { input_data, files })
}

// ----- authentication -----

/// Cloud: whether the call needs an OAuth scope the tokens do not carry (the user directory needs
/// `SDPOnDemand.users.*`).
fn lacks_scope(s: &State, rest: &[&str]) -> bool {
    s.profile == Profile::Cloud
        && matches!(rest.first(), Some(&("users" | "requesters")))
        && !s
            .auth
            .scopes
            .iter()
            .any(|scope| scope.starts_with("SDPOnDemand.users."))
}

fn authorized(s: &State, headers: &HeaderMap) -> bool {
    match s.profile {
        Profile::OnPrem => ["authtoken", "technician_key"]
            .iter()
            .filter_map(|name| header_text(headers, name))
            .any(|key| key.trim() == s.auth.api_key),
        Profile::Cloud => header_text(headers, "authorization")
            .as_deref()
            .and_then(|v| v.strip_prefix("Zoho-oauthtoken "))
            .and_then(|token| s.auth.access_tokens.get(token.trim()))
            .is_some_and(|expiry| Instant::now() < *expiry),
    }
}

/// `POST /oauth/v2/token` with form or query parameters, as Zoho's accounts server.
async fn token_call(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &Shared,
) -> (Option<u16>, HttpResponse) {
    let mut params = match form_params(req.query_string()) {
        Ok(params) => params,
        Err(e) => return error_response(&e, false),
    };
    let content_type = header_text(req.headers(), "content-type").unwrap_or_default();
    match read_body(payload, FORM_LIMIT).await {
        Ok(body) if content_type.starts_with("application/x-www-form-urlencoded") => {
            match std::str::from_utf8(&body)
                .map_err(|_| SdpError::bad_input("not UTF-8"))
                .and_then(form_params)
            {
                Ok(form) => params.extend(form),
                Err(e) => return error_response(&e, false),
            }
        }
        Ok(_) => {}
        Err(e) => return error_response(&e, false),
    }
    let (status, body) = issue_token(&mut shared.lock(), &params);
    let response = HttpResponse::build(StatusCode::from_u16(status).expect("valid status"))
        .content_type("application/json;charset=UTF-8")
        .body(body.to_string());
    (Some(status), response)
}

fn issue_token(s: &mut State, params: &HashMap<String, String>) -> (u16, Value) {
    s.auth.token_requests += 1;
    if s.faults.token_limit == Some(0) {
        return (
            400,
            json!({"error": "Access Denied", "status": "failure",
                   "error_description": "You have made too many requests continuously. Please try again after some time."}),
        );
    }
    let get = |k: &str| params.get(k).map(String::as_str);
    let creds = &s.auth.creds;
    if get("client_id") != Some(creds.client_id.as_str())
        || get("client_secret") != Some(creds.client_secret.as_str())
    {
        return (200, json!({"error": "invalid_client"}));
    }
    let new_refresh = match (get("grant_type"), get("refresh_token"), get("code")) {
        (Some("refresh_token"), Some(token), _) if s.auth.refresh_tokens.contains(token) => None,
        (Some("authorization_code"), _, Some(code)) if s.auth.grant_codes.remove(code) => {
            let token = format!(
                "1000.{}.{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            s.auth.refresh_tokens.insert(token.clone());
            Some(token)
        }
        _ => return (200, json!({"error": "invalid_code"})),
    };
    if let Some(left) = &mut s.faults.token_limit {
        *left -= 1;
    }
    let access = format!(
        "1000.{}.{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    s.auth
        .access_tokens
        .insert(access.clone(), Instant::now() + s.auth.lifetime);
    let mut body = json!({"access_token": access, "api_domain": "https://www.zohoapis.com",
                          "token_type": "Bearer", "expires_in": s.auth.lifetime.as_secs()});
    if let Some(refresh) = new_refresh {
        body["refresh_token"] = json!(refresh);
        body["scope"] = json!(s.auth.scopes.join(" "));
    }
    (200, body)
}

// ----- routing -----

/// The wrapped entity of `input_data` (`{"request": {...}}`); the first of `keys` is the name
/// used in errors, the others are accepted aliases; anything else at the top level is refused.
fn wrapped<'a>(data: Option<&'a Value>, keys: &[&str]) -> Result<&'a Map<String, Value>, SdpError> {
    optional_wrapped(data, keys)?.ok_or_else(|| SdpError::mandatory(vec![keys[0].to_owned()]))
}

fn optional_wrapped<'a>(
    data: Option<&'a Value>,
    keys: &[&str],
) -> Result<Option<&'a Map<String, Value>>, SdpError> {
    let Some(data) = data else { return Ok(None) };
    let top = data
        .as_object()
        .ok_or_else(|| SdpError::bad_input("input_data must be a JSON object"))?;
    if let Some(extra) = top.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(SdpError::extra_key(extra));
    }
    match keys.iter().find_map(|k| top.get(*k)) {
        None => Ok(None),
        Some(v) => v
            .as_object()
            .map(Some)
            .ok_or_else(|| SdpError::type_mismatch(keys[0])),
    }
}

fn note_keys(profile: Profile) -> &'static [&'static str] {
    match profile {
        // Lenient on-prem: the revised `note` and the older `request_note` both work.
        Profile::OnPrem => &["note", "request_note"],
        Profile::Cloud => &["request_note"],
    }
}

fn route(
    s: &mut State,
    method: &str,
    rest: &[&str],
    data: Option<&Value>,
    files: Vec<FilePart>,
) -> Result<Outcome, SdpError> {
    let assign = match s.profile {
        Profile::OnPrem => "assign",
        Profile::Cloud => "_assign",
    };
    let close = close_path(s.profile);
    trash_guard(s, method, rest)?;
    match (method, rest) {
        ("GET", ["requests"]) => list_requests(s, data),
        ("POST", ["requests"]) => {
            let by = s.api_user();
            let id = s.create_request(wrapped(data, &["request"])?, &by, true)?;
            let status = s.settings.create_status;
            Ok(Outcome::Json(
                status,
                wire::single("request", wire::request(s, s.request_ref(&id)?)),
            ))
        }
        ("GET", ["requests", "_metainfo"]) => Ok(ok(metainfo(s))),
        ("GET", ["requests", id]) => Ok(ok(wire::single(
            "request",
            wire::request(s, s.request_ref(id)?),
        ))),
        ("PUT", ["requests", id]) => {
            s.update_request(id, wrapped(data, &["request"])?, true)?;
            Ok(ok(wire::single(
                "request",
                wire::request(s, s.request_ref(id)?),
            )))
        }
        ("DELETE", ["requests", id])
        | (
            _,
            [
                "requests",
                id,
                "move_to_trash" | "restore_from_trash" | "merge_requests",
            ],
        ) => route_exits(s, method, id, &rest[2..], data),
        ("PUT", ["requests", id, action]) if *action == close => {
            let closure = match optional_wrapped(data, &["request"])? {
                None => None,
                Some(request) => {
                    if let Some(extra) = request.keys().find(|k| *k != "closure_info") {
                        return Err(SdpError::extra_key(extra));
                    }
                    match request.get("closure_info") {
                        None | Some(Value::Null) => None,
                        Some(info) => Some(
                            info.as_object()
                                .ok_or_else(|| SdpError::type_mismatch("closure_info"))?,
                        ),
                    }
                }
            };
            s.close_request(id, closure)?;
            Ok(ok(wire::action("Request(s) closed successfully")))
        }
        ("PUT", ["requests", id, action]) if *action == assign => {
            s.assign(id, wrapped(data, &["request"])?)?;
            Ok(ok(wire::action("Request(s) assigned successfully")))
        }
        ("PUT", ["requests", id, "pickup"]) => {
            let me = json!({"technician": {"id": s.api_user().id}});
            s.update_request(id, me.as_object().expect("object"), true)?;
            Ok(ok(wire::action("Request(s) picked up successfully")))
        }
        ("GET", ["requests", id, "resolutions"]) => {
            Ok(ok(wire::single("resolution", resolution(s, id)?)))
        }
        ("POST", ["requests", id, "resolutions"]) => {
            let input = wrapped(data, &["resolution"])?;
            if let Some(extra) = input
                .keys()
                .find(|k| *k != "content" && *k != "add_to_linked_requests")
            {
                return Err(SdpError::extra_key(extra));
            }
            let content = input
                .get("content")
                .and_then(Value::as_str)
                .ok_or_else(|| SdpError::mandatory(vec!["content".into()]))?;
            let by = s.api_user();
            s.set_resolution(id, content, &by)?;
            Ok(ok(wire::single("resolution", resolution(s, id)?)))
        }
        (
            _,
            [
                "requests",
                id,
                "notes" | "conversations" | "notifications",
                ..,
            ],
        ) => route_threads(s, method, id, &rest[2..], data),
        (_, ["requests", id, "upload" | "_upload" | "attachments", ..]) => {
            route_files(s, method, id, &rest[2..], data, files)
        }
        ("GET", ["attachments", aid]) => download(s, |a| a.id == *aid),
        _ => route_reference(s, method, rest, data),
    }
}

/// The ways out for request `id`: trash, restore, purge, merge; `sub` is the path after the id.
fn route_exits(
    s: &mut State,
    method: &str,
    id: &str,
    sub: &[&str],
    data: Option<&Value>,
) -> Result<Outcome, SdpError> {
    match (method, sub) {
        ("DELETE", []) => {
            s.purge(id)?;
            Ok(ok(wire::action("Request(s) deleted successfully")))
        }
        ("DELETE", ["move_to_trash"]) => {
            let by = s.api_user();
            s.trash(id, &by)?;
            Ok(ok(wire::single(
                "request",
                wire::trashed(s.request_ref(id)?),
            )))
        }
        ("PUT", ["restore_from_trash"]) => {
            if data.is_some() {
                // The live twin (changes) refuses any input here (§13.1).
                return Err(SdpError::bad_input(
                    "input_data is not allowed for this operation",
                ));
            }
            s.restore(id)?;
            Ok(ok(wire::action("Request(s) restored successfully")))
        }
        ("PUT", ["merge_requests"]) => {
            let children = merge_children(data)?;
            let by = s.api_user();
            s.merge(id, &children, &by)?;
            Ok(ok(wire::action("Request(s) merged successfully")))
        }
        _ => Err(SdpError::invalid_method(method)),
    }
}

/// What a trashed request answers before routing ([`state::TrashRules`]): restore, purge and
/// trash itself always reach their routes.
fn trash_guard(s: &State, method: &str, rest: &[&str]) -> Result<(), SdpError> {
    let ["requests", id, sub @ ..] = rest else {
        return Ok(());
    };
    let trashed = s
        .requests
        .get(*id)
        .is_some_and(|r| r.trashed.is_some() && r.merged_into.is_none());
    let exempt = matches!(
        (method, sub),
        ("DELETE", []) | (_, ["move_to_trash" | "restore_from_trash"])
    );
    if !trashed || exempt {
        Ok(())
    } else if s.settings.trash.get_not_found {
        Err(SdpError::not_found("request"))
    } else if method != "GET" && s.settings.trash.read_only {
        Err(SdpError::in_trash())
    } else {
        Ok(())
    }
}

/// The child ids of `{"merge_requests": [{"id": "<child>"}, …]}`.
fn merge_children(data: Option<&Value>) -> Result<Vec<String>, SdpError> {
    let data = data.ok_or_else(|| SdpError::mandatory(vec!["merge_requests".into()]))?;
    let top = data
        .as_object()
        .ok_or_else(|| SdpError::bad_input("input_data must be a JSON object"))?;
    if let Some(extra) = top.keys().find(|k| *k != "merge_requests") {
        return Err(SdpError::extra_key(extra));
    }
    let items = top
        .get("merge_requests")
        .ok_or_else(|| SdpError::mandatory(vec!["merge_requests".into()]))?
        .as_array()
        .ok_or_else(|| SdpError::type_mismatch("merge_requests"))?;
    items
        .iter()
        .map(|item| {
            item.get("id")
                .filter(|id| id.is_string() || id.is_number())
                .map(wire::scalar_text)
                .ok_or_else(|| SdpError::invalid_value("merge_requests"))
        })
        .collect()
}

/// Notes, conversations and e-mails of request `id`; `sub` is the path after the id.
fn route_threads(
    s: &mut State,
    method: &str,
    id: &str,
    sub: &[&str],
    data: Option<&Value>,
) -> Result<Outcome, SdpError> {
    match (method, sub) {
        ("GET", ["notes"]) => {
            s.request_ref(id)?;
            let params = ListParams::parse(data, &s.list_rules(), &[], Some(("id", true)))?;
            let rows = s
                .notes
                .iter()
                .filter(|n| n.request_id == id)
                .map(|n| {
                    let mut row = wire::note(s, n);
                    if !s.settings.note_list_descriptions
                        && let Some(row) = row.as_object_mut()
                    {
                        // The body comes only with the note by id.
                        row.remove("description");
                    }
                    row
                })
                .collect();
            let (page, info) = params.apply(rows, None);
            Ok(ok(wire::list("notes", page, info)))
        }
        ("POST", ["notes"]) => {
            let by = s.api_user();
            let nid = s.add_note(id, wrapped(data, note_keys(s.profile))?, &by)?;
            note_answer(s, id, &nid)
        }
        ("GET", ["notes", nid]) => note_answer(s, id, nid),
        ("PUT", ["notes", nid]) => {
            let by = s.api_user();
            s.update_note(id, nid, wrapped(data, note_keys(s.profile))?, &by)?;
            note_answer(s, id, nid)
        }
        ("DELETE", ["notes", nid]) => {
            s.delete_note(id, nid)?;
            Ok(ok(wire::action("Note(s) deleted successfully")))
        }
        ("GET", ["conversations"]) => {
            s.request_ref(id)?;
            let params =
                ListParams::parse(data, &s.list_rules(), &[], Some(("created_time", true)))?;
            let notes = s
                .notes
                .iter()
                .filter(|n| n.request_id == id)
                .map(wire::conversation_note);
            let emails = s
                .emails
                .iter()
                .filter(|e| e.request_id == id)
                .map(|e| wire::conversation_email(s, e));
            let (page, info) = params.apply(notes.chain(emails).collect(), None);
            Ok(ok(wire::list("conversations", page, info)))
        }
        ("GET", ["notifications", nid]) => {
            s.request_ref(id)?;
            let email = s.emails.iter().find(|e| e.request_id == id && e.id == *nid);
            let email = email.ok_or_else(|| SdpError::not_found("notification"))?;
            Ok(ok(wire::single(
                "notification",
                wire::notification(s, email),
            )))
        }
        ("POST", ["notifications"]) => send_notification(s, id, data),
        _ => Err(SdpError::not_found("resource")),
    }
}

/// Uploads and attachments of request `id`; `sub` is the path after the id.
fn route_files(
    s: &mut State,
    method: &str,
    id: &str,
    sub: &[&str],
    data: Option<&Value>,
    files: Vec<FilePart>,
) -> Result<Outcome, SdpError> {
    match (method, sub) {
        ("PUT", ["upload"]) => upload(s, id, files, AttachmentOwner::Request),
        ("POST", ["_upload"]) => upload(s, id, files, AttachmentOwner::Unbound),
        ("GET", ["attachments"]) => {
            s.request_ref(id)?;
            let params = ListParams::parse(data, &s.list_rules(), &[], None)?;
            let rows: Vec<Value> = s
                .attachments
                .iter()
                .filter(|a| a.request_id == id && a.owner == AttachmentOwner::Request)
                .map(|a| wire::attachment(s, a))
                .collect();
            let (page, info) = params.apply(rows, None);
            Ok(ok(wire::list("attachments", page, info)))
        }
        // `_download` as a live instance answers it, `download` as clients also use (§13.10).
        ("GET", ["attachments", aid, "download" | "_download"]) => {
            s.request_ref(id)?;
            download(s, |a| a.request_id == id && a.id == *aid)
        }
        ("DELETE", ["attachments", aid]) => {
            s.delete_attachment(id, aid)?;
            Ok(ok(wire::action("Attachment(s) deleted successfully")))
        }
        _ => Err(SdpError::not_found("resource")),
    }
}

/// Reference data and requesters.
fn route_reference(
    s: &mut State,
    method: &str,
    rest: &[&str],
    data: Option<&Value>,
) -> Result<Outcome, SdpError> {
    match (method, rest) {
        ("GET", [kind @ ("users" | "requesters")]) if serves_user_path(s, kind) => {
            let params = ListParams::parse(data, &s.list_rules(), &[], None)?;
            let rows = s.users.iter().map(|p| wire::person(s.profile, p)).collect();
            let (page, info) = params.apply(rows, None);
            Ok(ok(wire::list(kind, page, info)))
        }
        ("POST", [kind @ ("users" | "requesters")]) if serves_user_path(s, kind) => {
            create_user(s, kind, data)
        }
        ("GET", ["categories", id, "subcategories"]) => {
            let known = s.tables["categories"]
                .iter()
                .any(|c| c["id"].as_str() == Some(*id));
            if !known {
                return Err(SdpError::not_found("category"));
            }
            let rows = s.tables["subcategories"]
                .iter()
                .filter(|r| r.pointer("/category/id").and_then(Value::as_str) == Some(*id))
                .cloned()
                .collect();
            let params = ListParams::parse(data, &s.list_rules(), &[], None)?;
            let (page, info) = params.apply(rows, None);
            Ok(ok(wire::list("subcategories", page, info)))
        }
        ("GET", [table]) if TABLES.iter().any(|(list, _)| list == table) => {
            let params = ListParams::parse(data, &s.list_rules(), &[], None)?;
            let (page, info) = params.apply(s.tables[*table].clone(), None);
            Ok(ok(wire::list(table, page, info)))
        }
        ("GET", [table, id]) if TABLES.iter().any(|(list, _)| list == table) => {
            let single = TABLES
                .iter()
                .find(|(list, _)| list == table)
                .map(|(_, one)| *one)
                .expect("known");
            let row = s.tables[*table]
                .iter()
                .find(|r| r["id"].as_str() == Some(*id));
            let row = row.cloned().ok_or_else(|| SdpError::not_found(single))?;
            Ok(ok(wire::single(single, row)))
        }
        _ => Err(SdpError::not_found("resource")),
    }
}

/// On-prem serves `/users`, Cloud `/requesters`; the other path is an invalid URL (§13.7).
fn serves_user_path(s: &State, kind: &str) -> bool {
    s.settings.both_user_paths
        || matches!(
            (s.profile, kind),
            (Profile::OnPrem, "users") | (Profile::Cloud, "requesters")
        )
}

fn list_requests(s: &mut State, data: Option<&Value>) -> Result<Outcome, SdpError> {
    let params = ListParams::parse(
        data,
        &s.list_rules(),
        state::REQUEST_KEYS,
        Some(("created_time", false)),
    )?;
    let selection = s.request_order(&params);
    let (page, info) = params.page(
        selection.ids(),
        |id| wire::request(s, &s.requests[id]),
        Some(wire::ABBREVIATED),
    );
    Ok(ok(wire::list("requests", page, info)))
}

fn note_answer(s: &State, rid: &str, nid: &str) -> Result<Outcome, SdpError> {
    let i = s.note_index(rid, nid)?;
    Ok(ok(wire::single(
        wire::note_key(s.profile),
        wire::note(s, &s.notes[i]),
    )))
}

fn resolution(s: &State, id: &str) -> Result<Value, SdpError> {
    let full = wire::request(s, s.request_ref(id)?);
    Ok(match &full["resolution"] {
        Value::Null => {
            json!({"content": null, "submitted_by": null, "submitted_on": null, "resolution_attachments": []})
        }
        other => other.clone(),
    })
}

fn upload(
    s: &mut State,
    id: &str,
    files: Vec<FilePart>,
    owner: AttachmentOwner,
) -> Result<Outcome, SdpError> {
    s.request_ref(id)?;
    let mut files: Vec<FilePart> = files
        .into_iter()
        .filter(|f| f.field == "input_file")
        .collect();
    if files.len() > 1 {
        return Err(SdpError::bad_input("one file per call (input_file)"));
    }
    let file = files
        .pop()
        .ok_or_else(|| SdpError::mandatory(vec!["input_file".into()]))?;
    let by = s.api_user();
    let aid = s.add_attachment(id, &file.name, &file.content_type, file.bytes, owner, &by)?;
    let stored = s
        .attachments
        .iter()
        .find(|a| a.id == aid)
        .expect("just added");
    Ok(ok(wire::single("attachment", wire::attachment(s, stored))))
}

fn download(
    s: &State,
    which: impl Fn(&&state::StoredAttachment) -> bool,
) -> Result<Outcome, SdpError> {
    let a = s
        .attachments
        .iter()
        .find(which)
        .ok_or_else(|| SdpError::not_found("attachment"))?;
    Ok(Outcome::File {
        name: a.name.clone(),
        content_type: a.content_type.clone(),
        bytes: a.bytes.clone(),
    })
}

/// Addresses given as strings or as `{"email_id"}` objects (both shapes are seen, §5, §13.4).
fn addresses(input: &Map<String, Value>, key: &str) -> Result<Vec<String>, SdpError> {
    let Some(items) = input.get(key).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or_else(|| SdpError::type_mismatch(key))?;
    items
        .iter()
        .map(|item| {
            item.as_str()
                .or_else(|| item.get("email_id").and_then(Value::as_str))
                .map(str::to_owned)
                .ok_or_else(|| SdpError::invalid_value(key))
        })
        .collect()
}

/// `POST /requests/{id}/notifications`: a mail from the API user ([U] shape, accepted leniently);
/// `is_public: false` hides it from the requester.
fn send_notification(s: &mut State, id: &str, data: Option<&Value>) -> Result<Outcome, SdpError> {
    const KEYS: &[&str] = &[
        "subject",
        "description",
        "to",
        "cc",
        "bcc",
        "type",
        "is_public",
        "in_reply_to",
        "mode",
        "content_type",
        "copied_from",
    ];
    let input = wrapped(data, &["notification"])?;
    if let Some(extra) = input.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(SdpError::extra_key(extra));
    }
    let description = input
        .get("description")
        .and_then(Value::as_str)
        .ok_or_else(|| SdpError::mandatory(vec!["description".into()]))?;
    let subject = input
        .get("subject")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let show_to_requester = match input.get("is_public") {
        None | Some(Value::Null) => true,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| SdpError::type_mismatch("is_public"))?,
    };
    let email = StoredEmail {
        id: String::new(),
        request_id: id.to_owned(),
        subject: subject.to_owned(),
        description: description.to_owned(),
        sender: s.api_user(),
        to: addresses(input, "to")?,
        cc: addresses(input, "cc")?,
        from_requester: false,
        show_to_requester,
        time_ms: 0,
        merged_request_id: None,
    };
    let nid = s.push_email(email, Vec::new())?;
    let email = s.emails.iter().find(|e| e.id == nid).expect("just added");
    Ok(ok(wire::single(
        "notification",
        wire::notification(s, email),
    )))
}

/// `POST /users` (`{"user": {…}}`, on-prem) or `POST /requesters` (`{"requester": {…}}`,
/// Cloud), §8: `name` is mandatory, an e-mail already known is 4008, unknown keys are refused.
/// Only `name` and `email_id` are kept.
fn create_user(s: &mut State, kind: &str, data: Option<&Value>) -> Result<Outcome, SdpError> {
    const KEYS: &[&str] = &[
        "name",
        "first_name",
        "middle_name",
        "last_name",
        "email_id",
        "login_name",
        "phone",
        "mobile",
        "employee_id",
        "jobtitle",
        "job_title",
        "description",
        "department",
        "site",
        "reporting_to",
        "is_vipuser",
        "is_vip_user",
    ];
    let single = if kind == "users" { "user" } else { "requester" };
    let input = wrapped(data, &[single])?;
    if let Some(extra) = input.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(SdpError::extra_key(extra));
    }
    let name = input
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| SdpError::mandatory(vec!["name".into()]))?;
    let email = input.get("email_id").and_then(Value::as_str);
    if let Some(email) = email
        && s.users.iter().any(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
    {
        return Err(SdpError::new(400, 4008, "Not unique").with_field("email_id"));
    }
    let person = s.new_requester(name, email);
    Ok(ok(wire::single(single, wire::person(s.profile, &person))))
}

fn metainfo(s: &State) -> Value {
    let mut udf = Map::new();
    let known: &[(&str, &str)] = match s.profile {
        Profile::OnPrem => &[
            ("udf_sline_301", "Single Line"),
            ("udf_pick_603", "Pick List"),
        ],
        Profile::Cloud => &[
            ("udf_char1", "Single Line"),
            ("txt_external_ref", "Single Line"),
        ],
    };
    for (key, kind) in known {
        udf.insert(
            (*key).to_owned(),
            json!({"type": kind, "display_name": key, "lookup_entity": null}),
        );
    }
    for r in s.requests.values() {
        for key in r.fields["udf_fields"]
            .as_object()
            .into_iter()
            .flat_map(Map::keys)
        {
            udf.entry(key.clone()).or_insert_with(
                || json!({"type": "Single Line", "display_name": key, "lookup_entity": null}),
            );
        }
    }
    wire::single(
        "metainfo",
        json!({"fields": {"udf_fields": {"fields": udf}}}),
    )
}
