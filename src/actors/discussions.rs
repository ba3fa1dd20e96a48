//! The discussion actor: customer messages, in arrival order. A message on a resolved (or recently
//! closed) ticket reopens it, in the same transaction.

use actix::{Actor, Context, Handler, Message as ActixMessage, ResponseFuture};

use super::{Ctx, commit_and_publish};
use crate::domain::{Actor as Who, Message, TicketId};
use crate::store::OpError;
use crate::tickets::{self, Created, Idempotency, Render};

pub struct DiscussionActor {
    pub(super) ctx: Ctx,
}

impl Actor for DiscussionActor {
    type Context = Context<Self>;
}

#[derive(ActixMessage)]
#[rtype(result = "Result<Created, OpError>")]
pub struct PostMessage {
    pub ticket: TicketId,
    pub actor: Who,
    pub body: String,
    pub idempotency: Option<Idempotency>,
    pub render: Render<Message>,
}

impl Handler<PostMessage> for DiscussionActor {
    type Result = ResponseFuture<Result<Created, OpError>>;

    fn handle(&mut self, msg: PostMessage, _: &mut Context<Self>) -> Self::Result {
        let ctx = self.ctx.clone();
        let result = tickets::customer::post_message(
            &ctx.store,
            msg.ticket,
            &msg.actor,
            &msg.body,
            ctx.window,
            msg.idempotency.as_ref(),
            &msg.render,
        );
        Box::pin(async move {
            let (created, events) = result?;
            commit_and_publish(&ctx, events).await?;
            if !created.replayed {
                ctx.store.metrics.messages_created.inc();
            }
            Ok(created)
        })
    }
}
