//! The attachment store actor: owns the content files. Uploads arrive hashed and flushed (see
//! [`crate::store::BlobWriter`]); this actor moves them to their content address (equal files are
//! stored once) and records the metadata, history and outbox entry in one transaction.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message as ActixMessage, ResponseFuture};

use super::{
    Contribution, Created, Ctx, Idempotency, Render, TicketEvent, TicketEventKind,
    commit_and_publish, contribute,
};
use crate::domain::{
    Actor as Who, Attachment, AttachmentId, Delivery, DomainError, Origin, TicketId,
};
use crate::store::{OpError, OutboxOp, StagedBlob, StoreError};

pub struct AttachmentActor {
    pub(super) ctx: Ctx,
}

impl Actor for AttachmentActor {
    type Context = Context<Self>;
}

#[derive(ActixMessage)]
#[rtype(result = "Result<Created, OpError>")]
pub struct StoreAttachment {
    pub ticket: TicketId,
    pub actor: Who,
    pub blob: StagedBlob,
    /// Already reduced to a safe base name.
    pub filename: String,
    pub idempotency: Option<Idempotency>,
    pub render: Render<Attachment>,
}

/// Guesses the content type from the file's first bytes, never from what the client claimed.
pub fn sniff_content_type(head: &[u8]) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    // The head may end inside a multi-byte character; only an invalid sequence means binary.
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if text {
        "text/plain; charset=utf-8".into()
    } else {
        "application/octet-stream".into()
    }
}

impl Handler<StoreAttachment> for AttachmentActor {
    type Result = ResponseFuture<Result<Created, OpError>>;

    fn handle(&mut self, msg: StoreAttachment, _: &mut Context<Self>) -> Self::Result {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            // Refuse early, before the content is kept, when the ticket does not exist.
            if ctx.store.ticket(msg.ticket)?.is_none() {
                return Err(DomainError::TicketNotFound.into());
            }
            let content_type = sniff_content_type(&msg.blob.head);
            let size = msg.blob.size;
            let store = Arc::clone(&ctx.store);
            let blob = msg.blob;
            let sha256 = tokio::task::spawn_blocking(move || store.commit_blob(blob))
                .await
                .map_err(|e| StoreError::Durability(format!("blob commit task failed: {e}")))??;
            let result = contribute(
                &ctx,
                msg.ticket,
                &msg.actor,
                msg.idempotency.as_ref(),
                &msg.render,
                |tx, ticket, now| {
                    let attachment = Attachment {
                        id: AttachmentId(tx.next_item()?),
                        ticket: ticket.id,
                        filename: msg.filename.clone(),
                        size,
                        content_type: content_type.clone(),
                        sha256: sha256.clone(),
                        created_at: now,
                        origin: Origin::Portal,
                        delivery: Delivery::Pending,
                        uploaded_by: msg.actor.author(),
                        sdp_id: None,
                    };
                    tx.attachment(&attachment)?;
                    let event = ("attachment_added", Some(attachment.filename.clone()));
                    let outbox = OutboxOp::AddAttachment {
                        attachment: attachment.id,
                    };
                    Ok(Contribution {
                        item: attachment,
                        event,
                        outbox,
                    })
                },
            );
            let (created, ticket) = result?;
            let event = ticket.map(|t| TicketEvent::of(&t, TicketEventKind::Attachment));
            let fresh = event.is_some();
            commit_and_publish(&ctx, event).await?;
            if fresh {
                ctx.store.metrics.attachments_stored.inc();
            }
            Ok(created)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sniff_content_type;

    #[test]
    fn content_type_comes_from_the_bytes() {
        assert_eq!(
            sniff_content_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            "image/png"
        );
        assert_eq!(sniff_content_type(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff_content_type(b"hello"), "text/plain; charset=utf-8");
        assert_eq!(
            sniff_content_type(&[0xff, 0xfe, 0x00, 0x81]),
            "application/octet-stream"
        );
    }
}
