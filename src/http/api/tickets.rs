//! `/api/v1/tickets`: tickets, their discussion, attachments and history, as JSON. The rules
//! (who may see and do what, validation) are `service::tickets`'.

use actix_multipart::Multipart;
use actix_web::http::header::{
    self, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::resource;
use crate::domain::{AttachmentId, Kind, Priority};
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::http::extract::{IdempotencyKey, ValidJson};
use crate::http::upload;
use crate::http::views::{
    AttachmentView, EventView, Items, MessageView, TicketList, TicketView, json_string,
};
use crate::service::tickets::{self, ListQuery, Submission, readable, writable};
use crate::service::{AppState, Caller};
use crate::tickets::{Created, CustomerStep};

type State = web::Data<AppState>;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
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
    .service(resource("/tickets/{number}/reopen").route(web::post().to(reopen_ticket)))
    .service(resource("/tickets/{number}/cc").route(web::post().to(add_cc)))
    .service(resource("/tickets/{number}/cc/{email}").route(web::delete().to(remove_cc)));
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
pub(crate) struct CreateTicketBody {
    pub kind: Kind,
    /// At most 250 characters.
    pub subject: String,
    /// At most 64 KiB.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Free text, used when no SDP categories are offered.
    #[serde(default)]
    pub service: Option<String>,
    /// A colleague's e-mail (same organisation, which shares tickets): they become the requester
    /// and the caller its author, copied on it.
    #[serde(default)]
    pub on_behalf_of: Option<String>,
    /// The SDP id of an offered category (required when the console says so).
    #[serde(default)]
    pub category: Option<String>,
    /// The SDP id of an offered subcategory of `category`.
    #[serde(default)]
    pub subcategory: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", request_body = CreateTicketBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried POST return the same ticket")),
    responses((status = 201, body = TicketView), (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn create_ticket(
    state: State,
    caller: Caller,
    idem: IdempotencyKey,
    body: ValidJson<CreateTicketBody>,
) -> ApiResult<HttpResponse> {
    let b = body.value;
    let submission = Submission {
        kind: b.kind,
        subject: b.subject,
        description: b.description,
        priority: b.priority,
        service: b.service,
        on_behalf_of: b.on_behalf_of,
        category: b.category,
        subcategory: b.subcategory,
    };
    let idempotency = idem.scoped(&caller, "tickets", &body.fingerprint);
    let admin = caller.is_admin();
    let render = Box::new(move |t: &crate::domain::Ticket| {
        json_string(&TicketView::new(t, OffsetDateTime::now_utc(), admin))
    });
    let done = tickets::create(&state, &caller, submission, idempotency, render).await?;
    Ok(created(done))
}

#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(ListQuery),
    responses((status = 200, body = TicketList), (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn list_tickets(
    state: State,
    caller: Caller,
    req: HttpRequest,
) -> ApiResult<web::Json<TicketList>> {
    let query = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                format!("the query string is malformed: {e}"),
            )
        })?
        .into_inner();
    let filter = tickets::list_filter(&caller, &query)?;
    let (page, per_page) = (filter.page, filter.per_page);
    let store = state.store.clone();
    let found = web::block(move || store.list_tickets(&filter)).await??;
    let now = OffsetDateTime::now_utc();
    let items = found
        .items
        .iter()
        .map(|t| TicketView::new(t, now, caller.is_admin()))
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
#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(crate) async fn get_ticket(
    state: State,
    caller: Caller,
    number: web::Path<String>,
) -> ApiResult<web::Json<TicketView>> {
    let ticket = tickets::open(&state, &caller, &number)?;
    Ok(web::Json(TicketView::new(
        &ticket,
        OffsetDateTime::now_utc(),
        caller.is_admin(),
    )))
}

#[utoipa::path(get, path = "/api/v1/tickets/{number}/events", tag = "tickets", params(("number" = String, Path)),
    responses((status = 200, body = Items<EventView>), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(crate) async fn list_events(
    state: State,
    caller: Caller,
    number: web::Path<String>,
) -> ApiResult<web::Json<Items<EventView>>> {
    let ticket = readable(&state, &caller, &number)?;
    let items = state
        .store
        .events(ticket.id)?
        .iter()
        .map(|e| EventView::new(e, caller.is_admin()))
        .collect();
    Ok(web::Json(Items { items }))
}

#[utoipa::path(get, path = "/api/v1/tickets/{number}/messages", tag = "tickets", params(("number" = String, Path)),
    responses((status = 200, body = Items<MessageView>), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(crate) async fn list_messages(
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
pub(crate) struct MessageBody {
    /// At most 64 KiB.
    pub body: String,
}

#[utoipa::path(post, path = "/api/v1/tickets/{number}/messages", tag = "tickets", request_body = MessageBody,
    params(("number" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = MessageView), (status = 409, body = ErrorEnvelope)), security(("bearer" = [])))]
#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(crate) async fn create_message(
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
    let done = tickets::post_message(
        &state,
        &caller,
        &ticket,
        body.value.body,
        idempotency,
        render,
    )
    .await?;
    Ok(created(done))
}

#[utoipa::path(get, path = "/api/v1/tickets/{number}/attachments", tag = "tickets", params(("number" = String, Path)),
    responses((status = 200, body = Items<AttachmentView>), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(crate) async fn list_attachments(
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
pub(crate) struct UploadForm {
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

#[utoipa::path(post, path = "/api/v1/tickets/{number}/attachments", tag = "tickets",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(("number" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = AttachmentView), (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(crate) async fn create_attachment(
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
            ErrorCode::UnsupportedMediaType,
            "upload the file as multipart/form-data in the field `file`",
        ));
    }
    upload::refuse_declared_oversize(&state, &req, 1)?;
    let mut form = Multipart::new(req.headers(), payload);
    let mut staged = None;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(upload::malformed)?;
        if field.name() != Some("file") || staged.is_some() {
            upload::drain(&mut field).await?;
            continue;
        }
        staged = Some(
            upload::stage_file(
                &state.store,
                &mut field,
                state.config.portal.max_attachment_bytes,
                ApiError::from,
            )
            .await?,
        );
    }
    let Some((filename, blob)) = staged else {
        return Err(ApiError::field(
            ErrorCode::InvalidField,
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
    let done = tickets::attach(
        &state,
        &caller,
        &ticket,
        (filename, blob),
        idempotency,
        render,
    )
    .await?;
    Ok(created(done))
}

#[utoipa::path(get, path = "/api/v1/tickets/{number}/attachments/{id}", tag = "tickets",
    params(("number" = String, Path), ("id" = u64, Path)),
    responses((status = 200, description = "The file, as an attachment download, with the content type sniffed from its bytes", content_type = "*/*"),
        (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub(crate) async fn download_attachment(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (number, id) = path.into_inner();
    let ticket = readable(&state, &caller, &number)?;
    let not_found = || ApiError::new(ErrorCode::AttachmentNotFound, "no such attachment");
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
#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(crate) async fn confirm_ticket(
    state: State,
    caller: Caller,
    number: web::Path<String>,
) -> ApiResult<web::Json<TicketView>> {
    let ticket = writable(&state, &caller, &number)?;
    let ticket = tickets::take_step(&state, &caller, &ticket, CustomerStep::Confirm).await?;
    Ok(web::Json(TicketView::new(
        &ticket,
        OffsetDateTime::now_utc(),
        caller.is_admin(),
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReopenBody {
    /// Why the problem is not solved; at most 64 KiB.
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/tickets/{number}/reopen", tag = "tickets", request_body = ReopenBody,
    params(("number" = String, Path)),
    responses((status = 200, body = TicketView), (status = 409, body = ErrorEnvelope)), security(("bearer" = [])))]
#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(crate) async fn reopen_ticket(
    state: State,
    caller: Caller,
    number: web::Path<String>,
    body: ValidJson<ReopenBody>,
) -> ApiResult<web::Json<TicketView>> {
    let ticket = writable(&state, &caller, &number)?;
    let step = CustomerStep::Reopen {
        reason: body.value.reason,
    };
    let ticket = tickets::take_step(&state, &caller, &ticket, step).await?;
    Ok(web::Json(TicketView::new(
        &ticket,
        OffsetDateTime::now_utc(),
        caller.is_admin(),
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CcBody {
    /// A colleague's e-mail: a customer of the ticket's organisation, or an address at one of its
    /// domains.
    pub email: String,
}

#[utoipa::path(post, path = "/api/v1/tickets/{number}/cc", tag = "tickets", request_body = CcBody,
    params(("number" = String, Path)),
    responses((status = 200, body = TicketView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %number))]
pub(crate) async fn add_cc(
    state: State,
    caller: Caller,
    number: web::Path<String>,
    body: ValidJson<CcBody>,
) -> ApiResult<web::Json<TicketView>> {
    copy(&state, &caller, &number, &body.value.email, true).await
}

#[utoipa::path(delete, path = "/api/v1/tickets/{number}/cc/{email}", tag = "tickets",
    params(("number" = String, Path), ("email" = String, Path, description = "The colleague's e-mail")),
    responses((status = 200, body = TicketView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(name = "ticket", skip_all, fields(ticket = %path.0))]
pub(crate) async fn remove_cc(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<web::Json<TicketView>> {
    let (number, email) = path.into_inner();
    copy(&state, &caller, &number, &email, false).await
}

async fn copy(
    state: &AppState,
    caller: &Caller,
    number: &str,
    email: &str,
    add: bool,
) -> ApiResult<web::Json<TicketView>> {
    let ticket = readable(state, caller, number)?;
    let ticket = tickets::copy(state, caller, &ticket, email, add).await?;
    Ok(web::Json(TicketView::new(
        &ticket,
        OffsetDateTime::now_utc(),
        caller.is_admin(),
    )))
}
