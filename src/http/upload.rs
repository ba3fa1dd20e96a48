//! Files arriving in `multipart/form-data` (the API's upload and the pages' forms): each is
//! streamed to a staged blob, hashed and counted, refused past `portal.max_attachment_bytes`
//! without being kept, and named safely.

use actix_web::HttpRequest;
use actix_web::http::header;
use futures_util::StreamExt;

use crate::domain::DomainError;
use crate::domain::validate::safe_filename;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::service::AppState;
use crate::store::{BlobWriter, OpError, StagedBlob, Store};

pub(crate) fn malformed(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::MalformedMultipart,
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
    refuse_declared_over(req, state.config.portal.max_attachment_bytes, files)
}

/// Refuses a body declared bigger than `files` files of at most `limit` bytes and a form around them.
pub(crate) fn refuse_declared_over(req: &HttpRequest, limit: u64, files: u64) -> ApiResult<()> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let allowed = limit.saturating_mul(files).saturating_add(64 * 1024);
    if declared.is_some_and(|len| len > allowed) {
        return Err(DomainError::AttachmentTooLarge { limit }.into());
    }
    Ok(())
}

/// Reads and discards a form field.
pub(crate) async fn drain(field: &mut actix_multipart::Field) -> ApiResult<()> {
    while let Some(chunk) = field.next().await {
        chunk.map_err(malformed)?;
    }
    Ok(())
}

/// Streams a file field to a staged blob of at most `limit` bytes (hashed) under its safe name; a
/// larger file is refused as `too_large` words it.
pub(crate) async fn stage_file(
    store: &Store,
    field: &mut actix_multipart::Field,
    limit: u64,
    too_large: fn(OpError) -> ApiError,
) -> ApiResult<(String, StagedBlob)> {
    let filename = safe_filename(
        field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .unwrap_or_default(),
    );
    let mut writer = BlobWriter::create(store, limit).await?;
    while let Some(chunk) = field.next().await {
        writer
            .write(&chunk.map_err(malformed)?)
            .await
            .map_err(too_large)?;
    }
    Ok((filename, writer.finish().await?))
}
