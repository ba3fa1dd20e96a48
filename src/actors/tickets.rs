//! The ticket actor: creates tickets and takes the customer's confirm and reopen, in arrival order.

use actix::{Actor, Context, Handler, Message, ResponseFuture};

use super::{Ctx, commit_and_publish};
use crate::domain::{Actor as Who, Ticket, TicketId, User};
use crate::store::OpError;
use crate::tickets::{self, Created, CustomerStep, Idempotency, NewTicket, Render};

pub struct TicketActor {
    pub(super) ctx: Ctx,
}

impl Actor for TicketActor {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "Result<Created, OpError>")]
pub struct CreateTicket {
    pub requester: User,
    pub actor: Who,
    pub input: NewTicket,
    pub idempotency: Option<Idempotency>,
    pub render: Render<Ticket>,
}

impl Handler<CreateTicket> for TicketActor {
    type Result = ResponseFuture<Result<Created, OpError>>;

    fn handle(&mut self, msg: CreateTicket, _: &mut Context<Self>) -> Self::Result {
        let ctx = self.ctx.clone();
        let result = tickets::customer::create(
            &ctx.store,
            &msg.requester,
            &msg.actor,
            &msg.input,
            msg.idempotency.as_ref(),
            &msg.render,
        );
        Box::pin(async move {
            let (created, events) = result?;
            commit_and_publish(&ctx, events).await?;
            if !created.replayed {
                ctx.store.metrics.tickets_created.inc();
            }
            Ok(created)
        })
    }
}

/// A customer's explicit step on a ticket: confirm the resolution, or reopen with a reason.
#[derive(Message)]
#[rtype(result = "Result<Ticket, OpError>")]
pub struct TakeStep {
    pub ticket: TicketId,
    pub actor: Who,
    pub step: CustomerStep,
}

/// Copies a colleague on a ticket, or stops copying them.
#[derive(Message)]
#[rtype(result = "Result<Ticket, OpError>")]
pub struct Copy {
    pub ticket: TicketId,
    pub actor: Who,
    /// Normalised e-mail.
    pub email: String,
    pub add: bool,
}

impl Handler<Copy> for TicketActor {
    type Result = ResponseFuture<Result<Ticket, OpError>>;

    fn handle(&mut self, msg: Copy, _: &mut Context<Self>) -> Self::Result {
        let ctx = self.ctx.clone();
        let result =
            tickets::customer::copy(&ctx.store, msg.ticket, &msg.actor, &msg.email, msg.add);
        Box::pin(async move {
            let (ticket, events) = result?;
            commit_and_publish(&ctx, events).await?;
            Ok(ticket)
        })
    }
}

impl Handler<TakeStep> for TicketActor {
    type Result = ResponseFuture<Result<Ticket, OpError>>;

    fn handle(&mut self, msg: TakeStep, _: &mut Context<Self>) -> Self::Result {
        let ctx = self.ctx.clone();
        let result =
            tickets::customer::step(&ctx.store, msg.ticket, &msg.actor, &msg.step, ctx.window);
        Box::pin(async move {
            let (ticket, events) = result?;
            commit_and_publish(&ctx, events).await?;
            Ok(ticket)
        })
    }
}
