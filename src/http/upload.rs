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
use crate::store::{BlobWriter, StagedBlob};

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
    let limit = state.config.portal.max_attachment_bytes;
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
        writer.write(&chunk.map_err(malformed)?).await?;
    }
    Ok((filename, writer.finish().await?))
}
