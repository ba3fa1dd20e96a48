//! The attachment store actor: owns the content files. Uploads arrive hashed and flushed (see
//! [`crate::store::BlobWriter`]); this actor moves them to their content address (equal files are
//! stored once), then records the metadata, history and outbox entry in one transaction.

use actix::{Actor, Context, Handler, Message as ActixMessage, ResponseFuture};

use super::{Ctx, commit_and_publish};
use crate::domain::{Actor as Who, Attachment, DomainError, TicketId};
use crate::store::{OpError, StagedBlob};
use crate::tickets::{self, Created, Idempotency, Render};

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

impl Handler<StoreAttachment> for AttachmentActor {
    type Result = ResponseFuture<Result<Created, OpError>>;

    fn handle(&mut self, msg: StoreAttachment, _: &mut Context<Self>) -> Self::Result {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            // Refuse early, before the content is kept, when the ticket does not exist.
            if ctx.store.ticket(msg.ticket)?.is_none() {
                return Err(DomainError::TicketNotFound.into());
            }
            let content = ctx.store.commit_blob(msg.blob).await?;
            let (created, events) = tickets::customer::attach(
                &ctx.store,
                msg.ticket,
                &msg.actor,
                &content,
                &msg.filename,
                ctx.window,
                msg.idempotency.as_ref(),
                &msg.render,
            )?;
            commit_and_publish(&ctx, events).await?;
            if !created.replayed {
                ctx.store.metrics.attachments_stored.inc();
            }
            Ok(created)
        })
    }
}
