//! Tickets, their discussion, attachments and history. A customer sees and touches only their own
//! tickets; someone else's answers 404 exactly like a missing one, so existence is not revealed.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::http::header::{
    self, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::resource;
use crate::actors::attachments::StoreAttachment;
use crate::actors::discussions::PostMessage;
use crate::actors::tickets::{CreateTicket, CustomerAction, NewTicket};
use crate::actors::{Created, Render};
use crate::domain::lifecycle::Action;
use crate::domain::validate::{self, SERVICE_MAX_CHARS, SUBJECT_MAX_CHARS, safe_filename};
use crate::domain::{AttachmentId, Kind, Priority, Status, Ticket, TicketId, Validation};
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::http::AppState;
use crate::http::extract::{Caller, IdempotencyKey, ValidJson};
use crate::http::views::{
    AttachmentView, EventView, Items, MessageView, TicketList, TicketView, json_string,
};
use crate::store::{BlobWriter, ListFilter, StagedBlob};

type State = web::Data<AppState>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/tickets")
            .route(web::get().to(list_tickets))
            .route(web::post().to(create_ticket)),
    )
    .service(resource("/tickets/{number}").route(web::get().to(get_ticket)))
    .service(resource("/tickets/{number}/events").route(web::get().to(list_events)))
    .service(
        resource("/tickets/{number}/messages")
            .route(web::get().to(list_messages))
            .route(web::post().to(create_message)),
    )
    .service(
        resource("/tickets/{number}/attachments")
            .route(web::get().to(list_attachments))
            .route(web::post().to(create_attachment)),
    )
    .service(
        resource("/tickets/{number}/attachments/{id}").route(web::get().to(download_attachment)),
    )
    .service(resource("/tickets/{number}/confirm").route(web::post().to(confirm_ticket)))
    .service(resource("/tickets/{number}/reopen").route(web::post().to(reopen_ticket)));
}

/// The ticket, if the caller may read it; otherwise the same 404 as a missing ticket.
pub(crate) fn readable(state: &AppState, caller: &Caller, number: &str) -> ApiResult<Ticket> {
    match state.store.ticket_by_number(number)? {
        Some(ticket) if caller.can_read(&ticket) => Ok(ticket),
        _ => Err(ApiError::ticket_not_found()),
    }
}

/// The ticket, if the caller may act on it. An admin who may read but not act gets 403.
pub(crate) fn writable(state: &AppState, caller: &Caller, number: &str) -> ApiResult<Ticket> {
    let ticket = readable(state, caller, number)?;
    if caller.can_write(&ticket) {
        Ok(ticket)
    } else {
        Err(ApiError::forbidden(
            "forbidden",
            "only the ticket's requester can change it",
        ))
    }
}

fn created(created: Created) -> HttpResponse {
    let mut response = HttpResponse::Created();
    response.content_type(mime::APPLICATION_JSON);
    if created.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.body(created.body)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketBody {
    pub kind: Kind,
    /// At most 250 characters.
    pub subject: String,
    /// At most 64 KiB.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub service: Option<String>,
}

/// Checks a submission's fields (the API's and the portal form's) and normalizes them.
pub(crate) fn new_ticket(b: CreateTicketBody) -> ApiResult<NewTicket> {
    let mut v = Validation::default();
    validate::required_line(&mut v, "subject", &b.subject, SUBJECT_MAX_CHARS);
    validate::text(&mut v, "description", &b.description, false);
    validate::optional_line(&mut v, "service", b.service.as_deref(), SERVICE_MAX_CHARS);
    v.into_result()?;
    Ok(NewTicket {
        kind: b.kind,
        subject: b.subject.trim().to_owned(),
        description: b.description,
        priority: b.priority.unwrap_or_default(),
        service: b
            .service
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    })
}

#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", request_body = CreateTicketBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried POST return the same ticket")),
    responses((status = 201, body = TicketView), (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn create_ticket(
    state: State,
    caller: Caller,
    idem: IdempotencyKey,
    body: ValidJson<CreateTicketBody>,
) -> ApiResult<HttpResponse> {
    let input = new_ticket(body.value)?;
    let render: Render<Ticket> =
        Box::new(|t| json_string(&TicketView::new(t, OffsetDateTime::now_utc())));
    let msg = CreateTicket {
        requester: caller.user.clone(),
        actor: caller.actor.clone(),
        input,
        idempotency: idem.scoped(&caller, "tickets", &body.fingerprint),
        render,
    };
    Ok(created(state.actors.tickets.send(msg).await??))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// new | assigned | `in_progress` | pending | resolved | closed
    pub status: Option<String>,
    /// `information_request` | `problem_report`
    pub kind: Option<String>,
    /// Searches subject, description and number.
    pub q: Option<String>,
    /// 1-based, default 1.
    pub page: Option<String>,
    /// 1 to 100, default 20.
    pub per_page: Option<String>,
}

fn number_param(v: &mut Validation, field: &str, raw: Option<&str>, default: u64, max: u64) -> u64 {
    match raw.filter(|s| !s.is_empty()) {
        None => default,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                v.add(field, format!("must be a whole number from 1 to {max}"));
                default
            }
        },
    }
}

/// The list filter for a query (the API's and the dashboard's); a customer sees only their own.
pub(crate) fn list_filter(caller: &Caller, query: &ListQuery) -> ApiResult<ListFilter> {
    let mut v = Validation::default();
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| {
            let parsed = Status::parse(s);
            if parsed.is_none() {
                v.add(
                    "status",
                    "must be one of new, assigned, in_progress, pending, resolved, closed",
                );
            }
            parsed
        });
    let kind = query
        .kind
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| {
            let parsed =
                serde_json::from_value::<Kind>(serde_json::Value::String(s.to_owned())).ok();
            if parsed.is_none() {
                v.add("kind", "must be information_request or problem_report");
            }
            parsed
        });
    let page = number_param(&mut v, "page", query.page.as_deref(), 1, 1_000_000);
    let per_page = number_param(&mut v, "per_page", query.per_page.as_deref(), 20, 100);
    let q = query
        .q
        .clone()
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.len() > 200) {
        v.add("q", "must be at most 200 bytes");
    }
    v.into_result()?;
    let filter = ListFilter {
        requester: (!caller.is_admin()).then_some(caller.user.id),
        status,
        kind,
        q,
        page,
        per_page,
    };
    Ok(filter)
}

#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(ListQuery),
    responses((status = 200, body = TicketList), (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list_tickets(
    state: State,
    caller: Caller,
    req: HttpRequest,
) -> ApiResult<web::Json<TicketList>> {
    let query = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                format!("the query string is malformed: {e}"),
            )
        })?
        .into_inner();
    let filter = list_filter(&caller, &query)?;
    let (page, per_page) = (filter.page, filter.per_page);
    let store = state.store.clone();
    let found = web::block(move || store.list_tickets(&filter))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    let now = OffsetDateTime::now_utc();
    let items = found
        .items
        .iter()
        .map(|t| TicketView::new(t, now))
        .collect();
    Ok(web::Json(TicketList {
        items,
        total: found.total,
        page,
        per_page,
    }))
}

#[utoipa::path(get, path = "/api/v1/tickets/{number}", tag = "tickets", params(("number" = String, Path)),
    responses((status = 200, body = TicketView), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn get_ticket(
    state: State,
    caller: Caller,
    number: web::Path<String>,
) -> ApiResult<web::Json<TicketView>> {
    let ticket = readable(&state, &caller, &number)?;
    Ok(web::Json(TicketView::new(
        &ticket,
        OffsetDateTime::now_utc(),
    )))
}

#[utoipa::path(get, path = "/api/v1/tickets/{number}/events", tag = "tickets", params(("number" = String, Path)),
    responses((status = 200, body = Items<EventView>), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list_events(
    state: State,
    caller: Caller,
    number: web::Path<String>,
) -> ApiResult<web::Json<Items<EventView>>> {
    let ticket = readable(&state, &caller, &number)?;
    let items = state
        .store
        .events(ticket.id)?
        .iter()
        .map(EventView::from)
        .collect();
    Ok(web::Json(Items { items }))
}

#[utoipa::path(get, path = "/api/v1/tickets/{number}/messages", tag = "tickets", params(("number" = String, Path)),
    responses((status = 200, body = Items<MessageView>), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list_messages(
    state: State,
    caller: Caller,
    number: web::Path<String>,
) -> ApiResult<web::Json<Items<MessageView>>> {
    let ticket = readable(&state, &caller, &number)?;
    let items = state
        .store
        .messages(ticket.id)?
        .iter()
        .map(MessageView::from)
        .collect();
    Ok(web::Json(Items { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    /// At most 64 KiB.
    pub body: String,
}

#[utoipa::path(post, path = "/api/v1/tickets/{number}/messages", tag = "tickets", request_body = MessageBody,
    params(("number" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = MessageView), (status = 409, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn create_message(
    state: State,
    caller: Caller,
    idem: IdempotencyKey,
    number: web::Path<String>,
    body: ValidJson<MessageBody>,
) -> ApiResult<HttpResponse> {
    let ticket = writable(&state, &caller, &number)?;
    let idempotency = idem.scoped(
        &caller,
        &format!("messages:{}", ticket.id.0),
        &body.fingerprint,
    );
    let render = Box::new(|m: &crate::domain::Message| json_string(&MessageView::from(m)));
    Ok(created(
        post_message(
            &state,
            &caller,
            &ticket,
            body.value.body,
            idempotency,
            render,
        )
        .await?,
    ))
}

/// Checks and posts a customer's message (a reply on a resolved or closed ticket reopens it).
pub(crate) async fn post_message(
    state: &AppState,
    caller: &Caller,
    ticket: &Ticket,
    body: String,
    idempotency: Option<crate::actors::Idempotency>,
    render: Render<crate::domain::Message>,
) -> ApiResult<Created> {
    let mut v = Validation::default();
    validate::text(&mut v, "body", &body, true);
    v.into_result()?;
    let msg = PostMessage {
        ticket: ticket.id,
        actor: caller.actor.clone(),
        body,
        idempotency,
        render,
    };
    Ok(state.actors.discussions.send(msg).await??)
}

/// Confirms a resolution or reopens (with a reason) through the state machine.
pub(crate) async fn customer_action(
    state: &AppState,
    caller: &Caller,
    ticket: &Ticket,
    action: Action,
    reason: Option<String>,
) -> ApiResult<Ticket> {
    if let Some(reason) = &reason {
        let mut v = Validation::default();
        validate::text(&mut v, "reason", reason, true);
        v.into_result()?;
    }
    let msg = CustomerAction {
        ticket: ticket.id,
        actor: caller.actor.clone(),
        action,
        reason,
    };
    Ok(state.actors.tickets.send(msg).await??)
}

#[utoipa::path(get, path = "/api/v1/tickets/{number}/attachments", tag = "tickets", params(("number" = String, Path)),
    responses((status = 200, body = Items<AttachmentView>), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list_attachments(
    state: State,
    caller: Caller,
    number: web::Path<String>,
) -> ApiResult<web::Json<Items<AttachmentView>>> {
    let ticket = readable(&state, &caller, &number)?;
    let items = state
        .store
        .attachments(ticket.id)?
        .iter()
        .map(AttachmentView::from)
        .collect();
    Ok(web::Json(Items { items }))
}

#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "describes the multipart form for the OpenAPI document only"
)]
pub struct UploadForm {
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

pub(crate) fn malformed_multipart(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed-multipart",
        format!("the form could not be read: {e}"),
    )
}

/// Refuses an upload of up to `files` attachments before reading it when the client says it is
/// bigger than they may be.
pub(crate) fn refuse_declared_oversize(
    state: &AppState,
    req: &HttpRequest,
    files: u64,
) -> ApiResult<()> {
    let limit = state.config.portal.max_attachment_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let allowed = limit.saturating_mul(files).saturating_add(64 * 1024);
    if declared.is_some_and(|len| len > allowed) {
        return Err(crate::domain::DomainError::AttachmentTooLarge { limit }.into());
    }
    Ok(())
}

/// Reads and discards a form field.
pub(crate) async fn drain(field: &mut actix_multipart::Field) -> ApiResult<()> {
    while let Some(chunk) = field.next().await {
        chunk.map_err(malformed_multipart)?;
    }
    Ok(())
}

/// Streams a file field to a staged blob (capped, hashed) under its safe name.
pub(crate) async fn stage_file(
    state: &AppState,
    field: &mut actix_multipart::Field,
) -> ApiResult<(String, StagedBlob)> {
    let filename = safe_filename(
        field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .unwrap_or_default(),
    );
    let mut writer =
        BlobWriter::create(&state.store, state.config.portal.max_attachment_bytes).await?;
    while let Some(chunk) = field.next().await {
        writer.write(&chunk.map_err(malformed_multipart)?).await?;
    }
    Ok((filename, writer.finish().await?))
}

/// Records a staged file on the ticket through the attachment actor.
pub(crate) async fn attach(
    state: &AppState,
    caller: &Caller,
    ticket: TicketId,
    (filename, blob): (String, StagedBlob),
    idempotency: Option<crate::actors::Idempotency>,
    render: Render<crate::domain::Attachment>,
) -> ApiResult<Created> {
    let msg = StoreAttachment {
        ticket,
        actor: caller.actor.clone(),
        blob,
        filename,
        idempotency,
        render,
    };
    Ok(state.actors.attachments.send(msg).await??)
}

#[utoipa::path(post, path = "/api/v1/tickets/{number}/attachments", tag = "tickets",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(("number" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = AttachmentView), (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create_attachment(
    state: State,
    caller: Caller,
    idem: IdempotencyKey,
    number: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let ticket = writable(&state, &caller, &number)?;
    let is_multipart = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.type_() == mime::MULTIPART && m.subtype() == mime::FORM_DATA);
    if !is_multipart {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "upload the file as multipart/form-data in the field `file`",
        ));
    }
    refuse_declared_oversize(&state, &req, 1)?;
    let mut form = Multipart::new(req.headers(), payload);
    let mut staged = None;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(malformed_multipart)?;
        if field.name() != Some("file") || staged.is_some() {
            drain(&mut field).await?;
            continue;
        }
        staged = Some(stage_file(&state, &mut field).await?);
    }
    let Some((filename, blob)) = staged else {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "file",
            "is required",
        ));
    };
    let fingerprint = hex::encode(Sha256::digest(format!("{}\0{}", blob.sha256, filename)));
    let idempotency = idem.scoped(
        &caller,
        &format!("attachments:{}", ticket.id.0),
        &fingerprint,
    );
    let render = Box::new(|a: &crate::domain::Attachment| json_string(&AttachmentView::from(a)));
    Ok(created(
        attach(
            &state,
            &caller,
            ticket.id,
            (filename, blob),
            idempotency,
            render,
        )
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/tickets/{number}/attachments/{id}", tag = "tickets",
    params(("number" = String, Path), ("id" = u64, Path)),
    responses((status = 200, description = "The file, as an attachment download", content_type = "application/octet-stream"),
        (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn download_attachment(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (number, id) = path.into_inner();
    let ticket = readable(&state, &caller, &number)?;
    let not_found = || ApiError::not_found("attachment-not-found", "no such attachment");
    let id = id.parse::<u64>().map_err(|_| not_found())?;
    let attachment = state
        .store
        .attachment(ticket.id, AttachmentId(id))?
        .ok_or_else(not_found)?;
    let path = state.store.blob_path(&attachment.sha256);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let stream = tokio_util::io::ReaderStream::new(file);
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::FilenameExt(ExtendedValue {
            charset: header::Charset::Ext("UTF-8".into()),
            language_tag: None,
            value: attachment.filename.clone().into_bytes(),
        })],
    };
    Ok(HttpResponse::Ok()
        .content_type(attachment.content_type.as_str())
        .insert_header(disposition)
        .insert_header((header::CONTENT_LENGTH, attachment.size))
        .insert_header(("Content-Security-Policy", "sandbox; default-src 'none'"))
        .streaming(stream))
}

#[utoipa::path(post, path = "/api/v1/tickets/{number}/confirm", tag = "tickets", params(("number" = String, Path)),
    responses((status = 200, body = TicketView), (status = 409, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn confirm_ticket(
    state: State,
    caller: Caller,
    number: web::Path<String>,
) -> ApiResult<web::Json<TicketView>> {
    let ticket = writable(&state, &caller, &number)?;
    let ticket = customer_action(&state, &caller, &ticket, Action::Confirm, None).await?;
    Ok(web::Json(TicketView::new(
        &ticket,
        OffsetDateTime::now_utc(),
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenBody {
    /// Why the problem is not solved; at most 64 KiB.
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/tickets/{number}/reopen", tag = "tickets", request_body = ReopenBody,
    params(("number" = String, Path)),
    responses((status = 200, body = TicketView), (status = 409, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn reopen_ticket(
    state: State,
    caller: Caller,
    number: web::Path<String>,
    body: ValidJson<ReopenBody>,
) -> ApiResult<web::Json<TicketView>> {
    let ticket = writable(&state, &caller, &number)?;
    let reason = Some(body.value.reason);
    let ticket = customer_action(&state, &caller, &ticket, Action::Reopen, reason).await?;
    Ok(web::Json(TicketView::new(
        &ticket,
        OffsetDateTime::now_utc(),
    )))
}
