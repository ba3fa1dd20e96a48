//! The actors that own writes. Each handler runs its sled transaction synchronously (so changes to
//! one store are applied in the order the actor receives them), then returns a future that waits for
//! the shared group commit and publishes the change; the actor moves on to the next message while
//! the flush is in flight.

pub mod attachments;
pub mod broadcaster;
pub mod discussions;
pub mod sync;
pub mod tickets;

use std::sync::Arc;

use actix::{Actor, Addr};

pub use attachments::AttachmentActor;
pub use broadcaster::{Broadcaster, TicketEvent, TicketEventKind};
pub use discussions::DiscussionActor;
pub use tickets::TicketActor;

use crate::domain::Ticket;
use crate::domain::lifecycle::ReopenWindow;
use crate::store::{IdempotentReply, OpError, OutboxOp, Store, TicketTx, TxResult};

/// What every writer needs.
#[derive(Clone)]
pub struct Ctx {
    pub store: Arc<Store>,
    pub window: ReopenWindow,
    pub broadcaster: Addr<Broadcaster>,
}

/// The running actors, started on the current arbiter.
#[derive(Clone)]
pub struct Actors {
    pub tickets: Addr<TicketActor>,
    pub discussions: Addr<DiscussionActor>,
    pub attachments: Addr<AttachmentActor>,
    pub broadcaster: Addr<Broadcaster>,
}

impl Actors {
    pub fn start(store: Arc<Store>, window: ReopenWindow) -> Actors {
        let broadcaster = Broadcaster::default().start();
        let ctx = Ctx {
            store,
            window,
            broadcaster: broadcaster.clone(),
        };
        Actors {
            tickets: TicketActor { ctx: ctx.clone() }.start(),
            discussions: DiscussionActor { ctx: ctx.clone() }.start(),
            attachments: AttachmentActor { ctx }.start(),
            broadcaster,
        }
    }
}

/// A client's `Idempotency-Key`, scoped to the caller and the endpoint, with the body's fingerprint.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: Vec<u8>,
    pub fingerprint: String,
}

/// Renders the created resource as the JSON body the client receives (and a replay repeats).
pub type Render<T> = Box<dyn Fn(&T) -> String + Send>;

/// A creation's answer: the body, and whether it is a replay of an earlier identical request.
#[derive(Debug, Clone)]
pub struct Created {
    pub body: String,
    pub replayed: bool,
}

/// Runs a creating transaction with idempotency: a stored reply is returned as is; otherwise `work`
/// creates the item (and returns the ticket as changed), and the item's rendered body is remembered
/// under the key in the same transaction. The ticket comes back only when something was written.
pub(crate) fn create_once<T>(
    tx: &TicketTx<'_>,
    idem: Option<&Idempotency>,
    render: &Render<T>,
    work: impl FnOnce() -> TxResult<(T, Ticket)>,
) -> TxResult<(Created, Option<Ticket>)> {
    if let Some(idem) = idem
        && let Some(reply) = tx.idempotent(&idem.key, &idem.fingerprint)?
    {
        return Ok((
            Created {
                body: reply.body,
                replayed: true,
            },
            None,
        ));
    }
    let (value, ticket) = work()?;
    let body = render(&value);
    if let Some(idem) = idem {
        let reply = IdempotentReply {
            status: 201,
            body: body.clone(),
            fingerprint: idem.fingerprint.clone(),
            at: time::OffsetDateTime::now_utc(),
        };
        tx.remember(&idem.key, &reply)?;
    }
    Ok((
        Created {
            body,
            replayed: false,
        },
        Some(ticket),
    ))
}

impl TicketEvent {
    pub(crate) fn of(ticket: &Ticket, kind: TicketEventKind) -> TicketEvent {
        TicketEvent {
            ticket: ticket.id,
            number: ticket.number.clone(),
            requester: ticket.requester.id,
            kind,
            status: ticket.status,
        }
    }
}

/// What a customer adds to a ticket (a message, a file), as written by [`contribute`].
pub(crate) struct Contribution<T> {
    pub item: T,
    /// History event kind, and its detail.
    pub event: (&'static str, Option<String>),
    pub outbox: OutboxOp,
}

/// A customer adds something to a ticket, in one transaction and once per idempotency key: a reply
/// on a finished ticket reopens it through the state machine, `add` writes the item, and the
/// history event and outbox entry follow. Returns the answer and, when something was written, the
/// ticket to publish.
pub(crate) fn contribute<T>(
    ctx: &Ctx,
    ticket: crate::domain::TicketId,
    actor: &crate::domain::Actor,
    idempotency: Option<&Idempotency>,
    render: &Render<T>,
    add: impl Fn(&TicketTx<'_>, &Ticket, time::OffsetDateTime) -> TxResult<Contribution<T>>,
) -> Result<(Created, Option<Ticket>), OpError> {
    ctx.store.transact(|tx| {
        let before = tx.require(ticket)?;
        create_once(tx, idempotency, render, || {
            let now = time::OffsetDateTime::now_utc();
            let mut ticket = before.clone();
            tickets::transition(
                tx,
                &mut ticket,
                crate::domain::Action::Reply,
                actor,
                None,
                ctx.window,
                now,
            )?;
            let added = add(tx, &ticket, now)?;
            ticket.updated_at = now;
            let (kind, detail) = added.event;
            tx.event(&ticket, kind, actor, None, None, detail)?;
            tx.outbox(&mut ticket, added.outbox, now)?;
            tx.save(Some(&before), &ticket)?;
            Ok((added.item, ticket))
        })
    })
}

/// Waits for durability, then publishes: a 2xx is only sent for data that is on disk.
pub(crate) async fn commit_and_publish(
    ctx: &Ctx,
    event: Option<TicketEvent>,
) -> Result<(), OpError> {
    ctx.store.durable().await?;
    if let Some(event) = event {
        ctx.store.outbox_signal().notify_one();
        ctx.broadcaster.do_send(event);
    }
    Ok(())
}
