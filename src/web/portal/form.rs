//! Forms with files (a new ticket, a reply): a multipart body whose text fields are read into
//! memory (capped) and whose files are staged like API uploads, under the same field names as the
//! API (`body`, `file`), so an error names the field the form shows.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::domain::validate::TEXT_MAX_BYTES;
use crate::domain::{Attachment, DomainError, Ticket};
use crate::error::{ApiError, ErrorCode};
use crate::http::upload;
use crate::service::{AppState, Caller, tickets};
use crate::store::{OpError, StagedBlob, keys};
use crate::tickets::Idempotency;
use crate::web::{FormErrors, Page, PageError};

/// Files one form may carry.
pub(super) const MAX_FILES: usize = 10;
/// Text fields one form may carry: the portal's forms have a handful.
const MAX_TEXT_FIELDS: usize = 32;
/// All text fields together: a subject and a 64 KiB text, with room for what escaping adds.
const MAX_TEXT_BYTES: usize = 4 * TEXT_MAX_BYTES;

fn too_much_text(what: &str) -> FormFailure {
    ApiError::field(
        ErrorCode::PayloadTooLarge,
        "form",
        format!("the form has too {what}: at most {MAX_TEXT_FIELDS} fields and {MAX_TEXT_BYTES} bytes of text"),
    )
    .into()
}

/// A multipart form from a page: its text fields and its staged files. The CSRF token must come
/// before any file, so nothing is written for a forged form.
pub(in crate::web) struct PageForm {
    text: HashMap<String, String>,
    pub files: Vec<(String, StagedBlob)>,
}

impl PageForm {
    pub(in crate::web) fn get(&self, name: &str) -> &str {
        self.text.get(name).map_or("", String::as_str)
    }
}

pub(in crate::web) enum FormFailure {
    /// The form is refused as a whole (forged): an error page.
    Page(PageError),
    /// The upload broke (too large, malformed): the form comes back with the error, and with what
    /// was typed before the break once the form's CSRF token checked out.
    Api(ApiError, Option<PageForm>),
}

impl From<ApiError> for FormFailure {
    fn from(e: ApiError) -> Self {
        FormFailure::Api(e, None)
    }
}

/// Which files a form takes: how many, how big each, and how a too large one is refused.
pub(in crate::web) struct FileRule {
    pub count: usize,
    pub bytes: u64,
    pub too_large: fn(OpError) -> ApiError,
}

impl FileRule {
    /// A ticket's attachments: [`MAX_FILES`], each within `portal.max_attachment_bytes`.
    fn attachments(state: &AppState) -> FileRule {
        FileRule {
            count: MAX_FILES,
            bytes: state.config.portal.max_attachment_bytes,
            too_large: ApiError::from,
        }
    }
}

/// A ticket form: its files are attachments.
pub(super) async fn read_ticket_form(
    page: &Page,
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<PageForm, FormFailure> {
    read(page, req, state, payload, &FileRule::attachments(state)).await
}

pub(in crate::web) async fn read(
    page: &Page,
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
    rule: &FileRule,
) -> Result<PageForm, FormFailure> {
    // A body declared too large is refused at its first file, unread: the text before it is
    // still read (capped), so the form comes back with it.
    let declared_over = upload::refuse_declared_over(req, rule.bytes, rule.count as u64)
        .err()
        .map(|_| (rule.too_large)(DomainError::AttachmentTooLarge { limit: rule.bytes }.into()));
    let mut form = PageForm {
        text: HashMap::new(),
        files: Vec::new(),
    };
    let mut checked = false;
    let read = fill(
        &mut form,
        &mut checked,
        page,
        req,
        state,
        payload,
        (rule, declared_over),
    );
    match read.await {
        Ok(()) => Ok(form),
        // The text typed before a file broke is shown back only on a form that is not forged.
        Err(FormFailure::Api(e, None)) if checked => Err(FormFailure::Api(e, Some(form))),
        Err(e) => Err(e),
    }
}

/// Reads the form's fields into `form`, checking its CSRF token before the first file (`checked`).
async fn fill(
    form: &mut PageForm,
    checked: &mut bool,
    page: &Page,
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
    (rule, mut declared_over): (&FileRule, Option<ApiError>),
) -> Result<(), FormFailure> {
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut text_bytes = 0;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(upload::malformed)?;
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field
            .content_disposition()
            .is_some_and(|cd| cd.get_filename().is_some());
        if !is_file {
            if form.text.len() >= MAX_TEXT_FIELDS {
                return Err(too_much_text("many fields"));
            }
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(upload::malformed)?;
                text_bytes += chunk.len();
                // Refused as soon as it is too long: a chunked body has no length to check first.
                if text_bytes > MAX_TEXT_BYTES {
                    return Err(too_much_text("much text"));
                }
                // Text fields are small; a larger one is cut and then refused by validation.
                if value.len() < TEXT_MAX_BYTES * 2 {
                    value.extend_from_slice(&chunk);
                }
            }
            form.text
                .insert(name, String::from_utf8_lossy(&value).replace("\r\n", "\n"));
            continue;
        }
        if !*checked {
            page.check_form(req, form.get("csrf"))
                .map_err(FormFailure::Page)?;
            *checked = true;
        }
        let empty_choice = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .is_none_or(str::is_empty);
        if empty_choice {
            // A file input left empty still sends an empty part.
            upload::drain(&mut field).await?;
            continue;
        }
        if let Some(e) = declared_over.take() {
            return Err(e.into());
        }
        if form.files.len() == rule.count {
            upload::drain(&mut field).await?;
            return Err(ApiError::field(
                ErrorCode::TooManyFiles,
                &name,
                format!("at most {} files at once", rule.count),
            )
            .into());
        }
        form.files
            .push(upload::stage_file(&state.store, &mut field, rule.bytes, rule.too_large).await?);
    }
    if !*checked {
        page.check_form(req, form.get("csrf"))
            .map_err(FormFailure::Page)?;
        *checked = true;
    }
    Ok(())
}

/// An idempotency key for a page form, from the random id it was rendered with: a double-click
/// or a reload of the POST creates nothing twice.
pub(super) fn key(
    caller: &Caller,
    scope: &str,
    form: &PageForm,
    parts: &[&str],
) -> Option<Idempotency> {
    let id = form.get("form_id");
    if id.is_empty() || id.len() > 64 {
        return None;
    }
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    Some(Idempotency {
        key: keys::idempotency(caller.user.id, scope, id),
        fingerprint: hex::encode(hasher.finalize()),
    })
}

pub(super) fn new_id() -> String {
    crate::auth::new_secret("")[..32].to_owned()
}

/// Attaches a form's files, each once per form id.
pub(super) async fn attach_all(
    state: &AppState,
    caller: &Caller,
    ticket: &Ticket,
    files: Vec<(String, StagedBlob)>,
    form_id: &str,
) -> Result<(), ApiError> {
    for (i, (name, blob)) in files.into_iter().enumerate() {
        let idempotency = (!form_id.is_empty()).then(|| Idempotency {
            key: keys::idempotency(caller.user.id, &format!("page-file:{i}"), form_id),
            fingerprint: blob.sha256.clone(),
        });
        let render = Box::new(|a: &Attachment| a.id.0.to_string());
        tickets::attach(state, caller, ticket, (name, blob), idempotency, render).await?;
    }
    Ok(())
}

/// Field messages in the page's language: validation writes them in English for the API, so each
/// field the portal's forms have gets its own translated message (what a valid value looks like).
pub(super) fn localized(page: &Page, mut errors: FormErrors, max_size: &str) -> FormErrors {
    for (field, message) in &mut errors.fields {
        let key = format!("form-error-{field}");
        if page.tr.has(&key) {
            *message = page.t1(&key, "size", max_size);
        }
    }
    errors
}

/// The status a form comes back with: the error's, unless it is not the client's.
pub(in crate::web) fn form_status(e: &ApiError) -> actix_web::http::StatusCode {
    let status = e.status();
    if status.is_client_error() {
        status
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    }
}
