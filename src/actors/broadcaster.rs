//! Publishes ticket changes to whoever listens (the live pages). Slow listeners miss events rather
//! than slow down writers: the channel is bounded and lagging receivers are told so.

use actix::{Actor, Context, Handler, Message, MessageResult};
use tokio::sync::broadcast;

use crate::domain::{Status, TicketId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketEventKind {
    Created,
    StatusChanged,
    Message,
    Attachment,
    Updated,
}

#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct TicketEvent {
    pub ticket: TicketId,
    pub number: String,
    pub requester: UserId,
    pub kind: TicketEventKind,
    pub status: Status,
}

pub struct Broadcaster {
    tx: broadcast::Sender<TicketEvent>,
}

impl Default for Broadcaster {
    fn default() -> Self {
        Broadcaster {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Actor for Broadcaster {
    type Context = Context<Self>;
}

impl Handler<TicketEvent> for Broadcaster {
    type Result = ();

    fn handle(&mut self, event: TicketEvent, _: &mut Context<Self>) {
        // No receivers is normal (nobody watching); the error only says so.
        let _ = self.tx.send(event);
    }
}

/// Asks for a receiver of every event published from now on.
#[derive(Message)]
#[rtype(result = "broadcast::Receiver<TicketEvent>")]
pub struct Subscribe;

impl Handler<Subscribe> for Broadcaster {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, _: Subscribe, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.tx.subscribe())
    }
}
