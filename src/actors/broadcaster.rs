//! Publishes ticket changes to whoever listens (the live pages). Slow listeners miss events rather
//! than slow down writers: the channel is bounded and lagging receivers are told so.
//!
//! Every event gets an id `<epoch>-<seq>`: the epoch is random per process start, the sequence
//! counts up. The last [`HISTORY`] events are kept so a reconnecting page (`Last-Event-ID`) gets
//! what it missed; when the id is older than that, or from before a restart, it is told to refresh.

use std::collections::VecDeque;

use actix::{Actor, Context, Handler, Message, MessageResult};
use tokio::sync::broadcast;

pub use crate::tickets::{TicketEvent, TicketEventKind};

/// Events kept for resuming subscribers.
const HISTORY: usize = 1024;

/// Publishes a ticket change to every subscriber.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Publish(pub TicketEvent);

/// An event as subscribers see it, with its position in this process's sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub seq: u64,
    pub event: TicketEvent,
}

pub struct Broadcaster {
    tx: broadcast::Sender<Published>,
    epoch: String,
    seq: u64,
    history: VecDeque<Published>,
}

impl Default for Broadcaster {
    fn default() -> Self {
        let mut epoch = [0u8; 4];
        getrandom::fill(&mut epoch).expect("the OS random source is available");
        Broadcaster {
            tx: broadcast::channel(HISTORY).0,
            epoch: hex::encode(epoch),
            seq: 0,
            history: VecDeque::with_capacity(HISTORY),
        }
    }
}

impl Actor for Broadcaster {
    type Context = Context<Self>;
}

impl Handler<Publish> for Broadcaster {
    type Result = ();

    fn handle(&mut self, Publish(event): Publish, _: &mut Context<Self>) {
        self.seq += 1;
        let published = Published {
            seq: self.seq,
            event,
        };
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(published.clone());
        // No receivers is normal (nobody watching); the error only says so.
        let _ = self.tx.send(published);
    }
}

/// Asks for a receiver of every event published from now on. With `last_event_id`, also returns
/// the kept events after it, or `gap: true` when some of what followed it is no longer known.
#[derive(Message, Default)]
#[rtype(result = "Subscription")]
pub struct Subscribe {
    pub last_event_id: Option<String>,
}

pub struct Subscription {
    pub receiver: broadcast::Receiver<Published>,
    pub epoch: String,
    pub missed: Vec<Published>,
    pub gap: bool,
}

impl Subscription {
    /// The SSE id of an event.
    pub fn id_of(&self, published: &Published) -> String {
        format!("{}-{}", self.epoch, published.seq)
    }
}

impl Handler<Subscribe> for Broadcaster {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) -> Self::Result {
        let mut missed = Vec::new();
        let mut gap = false;
        if let Some(last) = msg.last_event_id {
            let after = last
                .split_once('-')
                .filter(|(epoch, _)| *epoch == self.epoch)
                .and_then(|(_, seq)| seq.parse::<u64>().ok());
            match after {
                Some(after) => {
                    let oldest_kept = self.history.front().map_or(self.seq + 1, |p| p.seq);
                    gap = after + 1 < oldest_kept;
                    missed.extend(self.history.iter().filter(|p| p.seq > after).cloned());
                }
                // From before a restart, or not an id of ours: anything may have changed.
                None => gap = true,
            }
        }
        MessageResult(Subscription {
            receiver: self.tx.subscribe(),
            epoch: self.epoch.clone(),
            missed,
            gap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Status, TicketId, UserId};

    fn event(n: u64) -> TicketEvent {
        TicketEvent {
            ticket: TicketId(n),
            number: format!("DB-{n:06}"),
            requester: UserId::new(),
            org: None,
            on: Vec::new(),
            kind: TicketEventKind::Message,
            status: Status::New,
        }
    }

    #[actix::test]
    async fn resume_returns_what_was_missed_or_says_there_is_a_gap() {
        let b = Broadcaster::default().start();
        let first = b.send(Subscribe::default()).await.unwrap();
        for n in 1..=3 {
            b.send(Publish(event(n))).await.unwrap();
        }
        let last = format!("{}-1", first.epoch);
        let resumed = b
            .send(Subscribe {
                last_event_id: Some(last),
            })
            .await
            .unwrap();
        assert!(!resumed.gap);
        let seqs: Vec<u64> = resumed.missed.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, [2, 3]);
        let foreign = b
            .send(Subscribe {
                last_event_id: Some("00000000-2".into()),
            })
            .await
            .unwrap();
        assert!(foreign.gap && foreign.missed.is_empty());
        for n in 4..(4 + HISTORY as u64) {
            b.send(Publish(event(n))).await.unwrap();
        }
        let stale = b
            .send(Subscribe {
                last_event_id: Some(format!("{}-1", first.epoch)),
            })
            .await
            .unwrap();
        assert!(stale.gap, "events 2 and 3 fell out of the kept history");
    }
}
