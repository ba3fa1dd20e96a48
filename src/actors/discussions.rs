//! The discussion actor: customer messages. A message on a resolved (or recently closed) ticket
//! reopens it, through the ticket state machine, in the same transaction.

use actix::{Actor, Context, Handler, Message as ActixMessage, ResponseFuture};

use super::{
    Contribution, Created, Ctx, Idempotency, Render, TicketEvent, TicketEventKind,
    commit_and_publish, contribute,
};
use crate::domain::{Actor as Who, Delivery, Message, MessageId, Origin, TicketId};
use crate::store::{OpError, OutboxOp};

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
        let result = contribute(
            &ctx,
            msg.ticket,
            &msg.actor,
            msg.idempotency.as_ref(),
            &msg.render,
            |tx, ticket, now| {
                let message = Message {
                    id: MessageId(tx.next_item()?),
                    ticket: ticket.id,
                    author: msg.actor.author(),
                    body: msg.body.clone(),
                    created_at: now,
                    origin: Origin::Portal,
                    delivery: Delivery::Pending,
                    sdp_id: None,
                };
                tx.message(&message)?;
                let outbox = OutboxOp::AddNote {
                    message: message.id,
                };
                Ok(Contribution {
                    item: message,
                    event: ("message_added", None),
                    outbox,
                })
            },
        );
        Box::pin(async move {
            let (created, ticket) = result?;
            let event = ticket.map(|t| TicketEvent::of(&t, TicketEventKind::Message));
            let fresh = event.is_some();
            commit_and_publish(&ctx, event).await?;
            if fresh {
                ctx.store.metrics.messages_created.inc();
            }
            Ok(created)
        })
    }
}
