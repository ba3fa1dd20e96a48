//! `GET /api/v1/admin/backup`: a consistent backup of the running appliance, streamed as a tar
//! archive (see `crate::backup`).

use std::io::{self, Write};
use std::sync::Arc;

use actix_web::body::SizedStream;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::resource;
use crate::backup::archive;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::http::extract::{Admin, client_address};
use crate::service::AppState;

/// Bytes handed to the connection at a time.
const CHUNK: usize = 256 * 1024;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/admin/backup").route(web::get().to(download_backup)));
}

#[utoipa::path(get, path = "/api/v1/admin/backup", tag = "admin",
    description = "A tar archive of the appliance at one point in time: `manifest.json` (format, versions, \
        every entry's size and sha256), `manifest.json.sha256`, `store.export` (every record) and \
        `blobs/<aa>/<sha256>` (attachment content). Reads and writes go on while the store is copied; \
        writers wait only a moment at its end. Restore it with `deskbridge restore --from FILE --data-dir DIR`.",
    responses((status = 200, description = "The archive (Content-Length is exact)", content_type = "application/x-tar"),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 409, description = "Another backup is being taken", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub(crate) async fn download_backup(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(caller): Admin,
) -> ApiResult<HttpResponse> {
    let permit = state.store.try_snapshot_permit().ok_or_else(|| {
        ApiError::new(
            ErrorCode::BackupInProgress,
            "another backup is being taken; retry when it is done",
        )
    })?;
    let store = Arc::clone(&state.store);
    let prepared = web::block(move || archive::prepare(&store, permit))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    let size = prepared.size();
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::Filename(prepared.file_name())],
    };
    // A backup holds every record and password hash: who took one is on the audit log.
    state
        .store
        .audit(
            &caller.user.email,
            "backup.downloaded",
            &format!(
                "{}, {size} bytes, to {}",
                prepared.file_name(),
                client_address(&req).map_or_else(|| "an unknown address".into(), |a| a.to_string())
            ),
        )
        .map_err(|e| ApiError::internal(&e))?;
    state
        .store
        .durable()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tracing::info!(admin = %caller.user.email, bytes = size, "backup started");
    let (tx, mut rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx,
            buf: BytesMut::with_capacity(CHUNK),
        };
        match prepared.write_to(&mut out) {
            Ok(()) => tracing::info!(bytes = size, "backup sent"),
            Err(e) => {
                tracing::warn!(error = %e, "backup stopped before its end");
                let _ = out.tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .insert_header(disposition)
        .body(SizedStream::new(size, body)))
}

/// Hands the archive to the response in chunks; fails once the client has gone.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
