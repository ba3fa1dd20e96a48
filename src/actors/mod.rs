//! The actors that own customer writes. Each handler runs its ticket command (`crate::tickets`)
//! synchronously, so one store's changes are applied in the order the actor receives them, then
//! returns a future that waits for the shared group commit and publishes the change; the actor moves
//! on to the next message while the flush is in flight.

pub mod attachments;
pub mod broadcaster;
pub mod discussions;
pub mod sync;
pub mod tickets;

use std::sync::Arc;

use actix::{Actor, Addr};

pub use attachments::AttachmentActor;
pub use broadcaster::{Broadcaster, Publish, TicketEvent, TicketEventKind};
pub use discussions::DiscussionActor;
pub use tickets::TicketActor;

use crate::domain::lifecycle::ReopenWindow;
use crate::store::{OpError, Store};

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

    /// Publishes changes made outside the actors (by the sync).
    pub fn publisher(&self) -> impl Fn(TicketEvent) + Send + Sync + 'static {
        let broadcaster = self.broadcaster.clone();
        move |event| broadcaster.do_send(Publish(event))
    }
}

/// Waits for durability, then publishes: a 2xx is only sent for data that is on disk.
pub(crate) async fn commit_and_publish(ctx: &Ctx, events: Vec<TicketEvent>) -> Result<(), OpError> {
    ctx.store.durable().await?;
    if !events.is_empty() {
        ctx.store.outbox_signal().notify_one();
    }
    for event in events {
        ctx.broadcaster.do_send(Publish(event));
    }
    Ok(())
}
