//! The ticket actor: creates tickets and applies every status change through the one state machine,
//! writing the history event and the outbox entry in the same transaction.

use actix::{Actor, Context, Handler, Message, ResponseFuture};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Created, Ctx, Idempotency, Render, TicketEvent, TicketEventKind, commit_and_publish,
    create_once,
};
use crate::domain::lifecycle::{self, Action, ReopenWindow};
use crate::domain::{
    Actor as Who, Kind, Priority, Requester, SdpLink, Status, Ticket, TicketId, User,
};
use crate::store::{OpError, OutboxOp, TicketTx, TxResult, abort};

pub struct TicketActor {
    pub(super) ctx: Ctx,
}

impl Actor for TicketActor {
    type Context = Context<Self>;
}

/// Validated input for a new ticket.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub kind: Kind,
    pub subject: String,
    pub description: String,
    pub priority: Priority,
    pub service: Option<String>,
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
        let result = ctx.store.transact(|tx| {
            create_once(tx, msg.idempotency.as_ref(), &msg.render, || {
                let now = OffsetDateTime::now_utc();
                let (id, number) = tx.next_ticket()?;
                let r = &msg.requester;
                let mut ticket = Ticket {
                    id,
                    uid: Uuid::now_v7(),
                    number,
                    kind: msg.input.kind,
                    subject: msg.input.subject.clone(),
                    description: msg.input.description.clone(),
                    priority: msg.input.priority,
                    service: msg.input.service.clone(),
                    status: Status::New,
                    requester: Requester {
                        id: r.id,
                        email: r.email.clone(),
                        name: r.name.clone(),
                        organization: r.organization.clone(),
                    },
                    created_at: now,
                    updated_at: now,
                    resolved_at: None,
                    closed_at: None,
                    assignee: None,
                    due_by: None,
                    sdp: SdpLink::default(),
                    sdp_status: None,
                    sdp_pending: 0,
                    sdp_updated_ms: None,
                };
                tx.event(
                    &ticket,
                    "created",
                    &msg.actor,
                    None,
                    Some(Status::New.to_string()),
                    None,
                )?;
                tx.outbox(&mut ticket, OutboxOp::CreateRequest, now)?;
                tx.save(None, &ticket)?;
                Ok((ticket.clone(), ticket))
            })
        });
        Box::pin(async move {
            let (created, ticket) = result?;
            let event = ticket
                .as_ref()
                .map(|t| TicketEvent::of(t, TicketEventKind::Created));
            commit_and_publish(&ctx, event).await?;
            if ticket.is_some() {
                ctx.store.metrics.tickets_created.inc();
            }
            Ok(created)
        })
    }
}

/// Applies `action` to the ticket inside a transaction: the state machine decides, the history
/// records it, and customer actions are queued for SDP. Returns the new status when it changed.
pub(crate) fn transition(
    tx: &TicketTx<'_>,
    ticket: &mut Ticket,
    action: Action,
    actor: &Who,
    reason: Option<&str>,
    window: ReopenWindow,
    now: OffsetDateTime,
) -> TxResult<Option<Status>> {
    let from = ticket.status;
    let to = match lifecycle::apply(from, ticket.closed_at, action, window, now) {
        Ok(Some(to)) => to,
        Ok(None) => return Ok(None),
        Err(e) => return abort(crate::domain::DomainError::from(e)),
    };
    ticket.set_status(to, now);
    ticket.updated_at = now;
    let kind = match action {
        Action::Confirm => "confirmed",
        Action::Reopen | Action::Reply => "reopened",
        Action::Team(_) => "status_changed",
    };
    tx.event(
        ticket,
        kind,
        actor,
        Some(from.to_string()),
        Some(to.to_string()),
        reason.map(str::to_owned),
    )?;
    match action {
        Action::Confirm => {
            tx.outbox(ticket, OutboxOp::Close, now)?;
        }
        Action::Reopen | Action::Reply => {
            let reason = reason.unwrap_or("The customer replied").to_owned();
            tx.outbox(ticket, OutboxOp::Reopen { reason }, now)?;
        }
        // The team's changes come from SDP; nothing to send back.
        Action::Team(_) => {}
    }
    Ok(Some(to))
}

/// A customer's explicit action on a ticket: confirm the resolution, or reopen with a reason.
#[derive(Message)]
#[rtype(result = "Result<Ticket, OpError>")]
pub struct CustomerAction {
    pub ticket: TicketId,
    pub actor: Who,
    pub action: Action,
    pub reason: Option<String>,
}

impl Handler<CustomerAction> for TicketActor {
    type Result = ResponseFuture<Result<Ticket, OpError>>;

    fn handle(&mut self, msg: CustomerAction, _: &mut Context<Self>) -> Self::Result {
        let ctx = self.ctx.clone();
        let result = ctx.store.transact(|tx| {
            let now = OffsetDateTime::now_utc();
            let before = tx.require(msg.ticket)?;
            let mut ticket = before.clone();
            transition(
                tx,
                &mut ticket,
                msg.action,
                &msg.actor,
                msg.reason.as_deref(),
                ctx.window,
                now,
            )?;
            tx.save(Some(&before), &ticket)?;
            Ok(ticket)
        });
        Box::pin(async move {
            let ticket = result?;
            commit_and_publish(
                &ctx,
                Some(TicketEvent::of(&ticket, TicketEventKind::StatusChanged)),
            )
            .await?;
            Ok(ticket)
        })
    }
}

/// A change made by the operations team (read from SDP): status and assignee. `None` leaves a field
/// as it is.
#[derive(Message)]
#[rtype(result = "Result<Ticket, OpError>")]
pub struct TeamUpdate {
    pub ticket: TicketId,
    pub actor: Who,
    pub status: Option<Status>,
    pub assignee: Option<Option<String>>,
}

impl Handler<TeamUpdate> for TicketActor {
    type Result = ResponseFuture<Result<Ticket, OpError>>;

    fn handle(&mut self, msg: TeamUpdate, _: &mut Context<Self>) -> Self::Result {
        let ctx = self.ctx.clone();
        let result = ctx.store.transact(|tx| {
            let now = OffsetDateTime::now_utc();
            let before = tx.require(msg.ticket)?;
            let mut ticket = before.clone();
            if let Some(assignee) = &msg.assignee
                && *assignee != ticket.assignee
            {
                ticket.updated_at = now;
                let from = std::mem::replace(&mut ticket.assignee, assignee.clone());
                tx.event(
                    &ticket,
                    "assigned",
                    &msg.actor,
                    from,
                    assignee.clone(),
                    None,
                )?;
            }
            if let Some(status) = msg.status {
                transition(
                    tx,
                    &mut ticket,
                    Action::Team(status),
                    &msg.actor,
                    None,
                    ctx.window,
                    now,
                )?;
            }
            if ticket != before {
                tx.save(Some(&before), &ticket)?;
            }
            Ok(ticket)
        });
        Box::pin(async move {
            let ticket = result?;
            commit_and_publish(
                &ctx,
                Some(TicketEvent::of(&ticket, TicketEventKind::Updated)),
            )
            .await?;
            Ok(ticket)
        })
    }
}
