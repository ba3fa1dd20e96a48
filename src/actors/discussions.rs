//! The discussion actor: customer messages. A message on a resolved (or recently closed) ticket
//! reopens it, through the ticket state machine, in the same transaction.

use actix::{Actor, Context, Handler, Message as ActixMessage, ResponseFuture};
use time::OffsetDateTime;

use super::tickets::transition;
use super::{
    Created, Ctx, Idempotency, Render, TicketEvent, TicketEventKind, commit_and_publish,
    create_once,
};
use crate::domain::lifecycle::Action;
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
        let result = ctx.store.transact(|tx| {
            let before = tx.require(msg.ticket)?;
            create_once(tx, msg.idempotency.as_ref(), &msg.render, || {
                let now = OffsetDateTime::now_utc();
                let mut ticket = before.clone();
                transition(
                    tx,
                    &mut ticket,
                    Action::Reply,
                    &msg.actor,
                    None,
                    ctx.window,
                    now,
                )?;
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
                ticket.updated_at = now;
                tx.event(&ticket, "message_added", &msg.actor, None, None, None)?;
                tx.outbox(
                    &mut ticket,
                    OutboxOp::AddNote {
                        message: message.id,
                    },
                    now,
                )?;
                tx.save(Some(&before), &ticket)?;
                Ok((message, ticket))
            })
        });
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
