//! Tickets and what hangs off them: the transaction every change goes through, and the reads.

use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;
use sled::{IVec, Transactional};
use time::OffsetDateTime;

use super::{
    Journal, OpError, OutboxEntry, OutboxOp, Store, TxResult, abort, decode, encode, keys, map_tx,
    meta, names, next_in,
};
use crate::domain::{
    Actor, Attachment, AttachmentId, DomainError, Event, EventId, EventKind, Message, MessageId,
    Ticket, TicketId,
};

/// What a request with an `Idempotency-Key` answered the first time, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotentReply {
    pub status: u16,
    pub body: String,
    /// Hex sha256 of the request body; the same key with another body is refused.
    pub fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The ticket created or added to (absent in replies stored by older versions).
    #[serde(default)]
    pub ticket: Option<TicketId>,
}

/// The trees a ticket change touches, in the order `Store::transact` passes them.
const TREES: usize = 15;
const META: usize = 0;
const TICKETS: usize = 1;
const BY_ACTIVITY: usize = 2;
const BY_REQUESTER: usize = 3;
const MESSAGES: usize = 4;
const ATTACHMENTS: usize = 5;
const EVENTS: usize = 6;
const OUTBOX: usize = 7;
const IDEMPOTENCY: usize = 8;
const DEAD_LETTERS: usize = 9;
const BY_SDP: usize = 10;
const SDP_SEEN: usize = 11;
const SYNC: usize = 12;
const DETAILS: usize = 13;
const BY_PARTY: usize = 14;
/// Tree names by index, for the snapshot journal.
const TREE_NAMES: [&str; TREES] = [
    names::meta,
    names::tickets,
    names::tickets_by_activity,
    names::tickets_by_requester,
    names::messages,
    names::attachments,
    names::events,
    names::outbox,
    names::idempotency,
    names::dead_letters,
    names::tickets_by_sdp,
    names::sdp_seen,
    names::sync,
    names::details_pending,
    names::tickets_by_party,
];

/// A view of the store inside one transaction. Everything written through it commits together or not
/// at all, which is what makes the outbox trustworthy: no change without its entry, no entry without
/// its change.
pub struct TicketTx<'a> {
    t: &'a [TransactionalTree],
    prefix: &'a str,
    journal: &'a Journal,
    /// [`Store::org_listed`], held for the transaction.
    org_listed: &'a std::collections::HashSet<crate::domain::OrgId>,
}

pub(super) fn index_value(ticket: &Ticket) -> [u8; 2] {
    [ticket.status.code(), ticket.kind.code()]
}

impl TicketTx<'_> {
    /// Every write goes through `put` or `del`, so a snapshot in progress learns which keys changed.
    fn put(&self, tree: usize, key: &[u8], value: impl Into<IVec>) -> TxResult<Option<IVec>> {
        self.journal.record(TREE_NAMES[tree], key);
        Ok(self.t[tree].insert(key, value)?)
    }

    fn del(&self, tree: usize, key: &[u8]) -> TxResult<Option<IVec>> {
        self.journal.record(TREE_NAMES[tree], key);
        Ok(self.t[tree].remove(key)?)
    }

    fn next_in(&self, key: &[u8]) -> TxResult<u64> {
        self.journal.record(names::meta, key);
        next_in(&self.t[META], key)
    }

    pub fn ticket(&self, id: TicketId) -> TxResult<Option<Ticket>> {
        let key = keys::u64_be(id.0);
        match self.t[TICKETS].get(key)? {
            None => Ok(None),
            Some(bytes) => decode(names::tickets, &key, &bytes)
                .map(Some)
                .or_else(abort),
        }
    }

    pub fn require(&self, id: TicketId) -> TxResult<Ticket> {
        self.ticket(id)?
            .map_or_else(|| abort(DomainError::TicketNotFound), Ok)
    }

    /// Hands out the next ticket id and its human number.
    pub fn next_ticket(&self) -> TxResult<(TicketId, String)> {
        let id = TicketId(self.next_in(meta::TICKET_SEQ)?);
        Ok((id, id.number(self.prefix)))
    }

    pub fn next_item(&self) -> TxResult<u64> {
        self.next_in(meta::ITEM_SEQ)
    }

    /// Writes the ticket and moves its index entries from `before`'s activity time to `after`'s.
    pub fn save(&self, before: Option<&Ticket>, after: &Ticket) -> TxResult<()> {
        if let Some(before) = before {
            self.del(
                BY_ACTIVITY,
                &keys::by_activity(before.updated_at, before.id),
            )?;
            self.del(
                BY_REQUESTER,
                &keys::by_requester(before.requester.id, before.updated_at, before.id),
            )?;
            for party in keys::parties(before) {
                self.del(
                    BY_PARTY,
                    &keys::by_party(&party, before.updated_at, before.id),
                )?;
            }
        }
        let value = index_value(after);
        self.put(
            BY_ACTIVITY,
            &keys::by_activity(after.updated_at, after.id),
            &value,
        )?;
        self.put(
            BY_REQUESTER,
            &keys::by_requester(after.requester.id, after.updated_at, after.id),
            &value,
        )?;
        let with_org = after.org().is_some_and(|o| self.org_listed.contains(&o));
        for party in keys::listed_parties(after, with_org) {
            self.put(
                BY_PARTY,
                &keys::by_party(&party, after.updated_at, after.id),
                &value,
            )?;
        }
        self.put(TICKETS, &keys::u64_be(after.id.0), encode(after))?;
        Ok(())
    }

    /// Lists ticket `id` under its organisation `org` (its current place in the activity order);
    /// false when it belongs to another. See `crate::tickets::list_under_organization`.
    pub fn list_under_org(&self, id: TicketId, org: crate::domain::OrgId) -> TxResult<bool> {
        let Some(ticket) = self.ticket(id)? else {
            return Ok(false);
        };
        if ticket.org() != Some(org) {
            return Ok(false);
        }
        self.put(
            BY_PARTY,
            &keys::by_party(&keys::org_party(org), ticket.updated_at, ticket.id),
            &index_value(&ticket),
        )?;
        Ok(true)
    }

    pub fn event(
        &self,
        ticket: &Ticket,
        kind: EventKind,
        actor: &Actor,
        from: Option<String>,
        to: Option<String>,
        detail: Option<String>,
    ) -> TxResult<Event> {
        let event = Event {
            id: EventId(self.next_item()?),
            ticket: ticket.id,
            at: ticket.updated_at,
            kind,
            actor: actor.clone(),
            from,
            to,
            detail,
        };
        self.put(EVENTS, &keys::child(ticket.id, event.id.0), encode(&event))?;
        Ok(event)
    }

    pub fn message(&self, message: &Message) -> TxResult<()> {
        self.put(
            MESSAGES,
            &keys::child(message.ticket, message.id.0),
            encode(message),
        )?;
        Ok(())
    }

    pub fn attachment(&self, attachment: &Attachment) -> TxResult<()> {
        self.put(
            ATTACHMENTS,
            &keys::child(attachment.ticket, attachment.id.0),
            encode(attachment),
        )?;
        Ok(())
    }

    /// Appends what SDP must hear about; entries are numbered in commit order.
    /// Also counts the change as pending on the ticket, which the caller saves in the same transaction.
    pub fn outbox(&self, ticket: &mut Ticket, op: OutboxOp, at: OffsetDateTime) -> TxResult<u64> {
        let seq = self.next_item()?;
        ticket.sdp_pending += 1;
        if ticket.sdp.sync_state == crate::domain::SyncState::Synced {
            ticket.sdp.sync_state = crate::domain::SyncState::Pending;
        }
        let entry = OutboxEntry {
            seq,
            ticket: ticket.id,
            op,
            at,
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
            outcome_unknown: false,
        };
        self.put_outbox(&entry)?;
        Ok(seq)
    }

    pub fn get_message(
        &self,
        ticket: TicketId,
        id: crate::domain::MessageId,
    ) -> TxResult<Option<Message>> {
        let key = keys::child(ticket, id.0);
        match self.t[MESSAGES].get(key)? {
            None => Ok(None),
            Some(bytes) => decode(names::messages, &key, &bytes)
                .map(Some)
                .or_else(abort),
        }
    }

    pub fn get_attachment(
        &self,
        ticket: TicketId,
        id: AttachmentId,
    ) -> TxResult<Option<Attachment>> {
        let key = keys::child(ticket, id.0);
        match self.t[ATTACHMENTS].get(key)? {
            None => Ok(None),
            Some(bytes) => decode(names::attachments, &key, &bytes)
                .map(Some)
                .or_else(abort),
        }
    }

    pub fn outbox_entry(&self, seq: u64) -> TxResult<Option<OutboxEntry>> {
        let key = keys::u64_be(seq);
        match self.t[OUTBOX].get(key)? {
            None => Ok(None),
            Some(bytes) => decode(names::outbox, &key, &bytes).map(Some).or_else(abort),
        }
    }

    /// Rewrites an entry (its delivery state) in place, keeping its position.
    pub fn put_outbox(&self, entry: &OutboxEntry) -> TxResult<()> {
        if self
            .put(OUTBOX, &keys::u64_be(entry.seq), encode(entry))?
            .is_none()
        {
            self.count_outbox(1)?;
        }
        Ok(())
    }

    /// Removes a delivered (or discarded) entry.
    pub fn remove_outbox(&self, seq: u64) -> TxResult<()> {
        if self.del(OUTBOX, &keys::u64_be(seq))?.is_some() {
            self.count_outbox(-1)?;
        }
        Ok(())
    }

    /// Moves an entry out of the queue into the dead letters; it keeps its number.
    pub fn bury(&self, entry: &OutboxEntry) -> TxResult<()> {
        self.remove_outbox(entry.seq)?;
        self.put(DEAD_LETTERS, &keys::u64_be(entry.seq), encode(entry))?;
        Ok(())
    }

    /// Keeps the queue length in `meta`, so reading it never walks the queue.
    fn count_outbox(&self, delta: i64) -> TxResult<()> {
        let now = self.t[META]
            .get(meta::OUTBOX_LEN)?
            .and_then(|v| keys::read_u64(&v))
            .unwrap_or(0);
        let next = now.saturating_add_signed(delta);
        self.put(META, meta::OUTBOX_LEN, &keys::u64_be(next))?;
        Ok(())
    }

    pub fn dead_letter(&self, seq: u64) -> TxResult<Option<OutboxEntry>> {
        let key = keys::u64_be(seq);
        match self.t[DEAD_LETTERS].get(key)? {
            None => Ok(None),
            Some(bytes) => decode(names::dead_letters, &key, &bytes)
                .map(Some)
                .or_else(abort),
        }
    }

    /// Takes an entry back from the dead letters (to retry it, or to drop it).
    pub fn unbury(&self, seq: u64) -> TxResult<()> {
        self.del(DEAD_LETTERS, &keys::u64_be(seq))?;
        Ok(())
    }

    /// Records which ticket an SDP request belongs to.
    pub fn link_sdp(&self, sdp_id: &str, ticket: TicketId) -> TxResult<()> {
        self.put(BY_SDP, sdp_id.as_bytes(), &keys::u64_be(ticket.0))?;
        Ok(())
    }

    pub fn ticket_by_sdp(&self, sdp_id: &str) -> TxResult<Option<TicketId>> {
        Ok(self.t[BY_SDP]
            .get(sdp_id.as_bytes())?
            .and_then(|v| keys::read_u64(&v))
            .map(TicketId))
    }

    /// Whether an SDP item (note, conversation, attachment) was already taken in or written by us.
    pub fn seen(&self, ticket: TicketId, item: &str) -> TxResult<bool> {
        Ok(self.t[SDP_SEEN].get(keys::seen(ticket, item))?.is_some())
    }

    pub fn mark_seen(&self, ticket: TicketId, item: &str) -> TxResult<()> {
        self.put(SDP_SEEN, &keys::seen(ticket, item), &[])?;
        Ok(())
    }

    /// Marks an SDP item seen at a version (its `last_updated_time`, ms), so a later edit shows.
    pub fn mark_seen_at(&self, ticket: TicketId, item: &str, version: i64) -> TxResult<()> {
        self.put(SDP_SEEN, &keys::seen(ticket, item), &version.to_be_bytes())?;
        Ok(())
    }

    /// Forgets an SDP item, so it is taken in again should it come back (a note made public again).
    pub fn unmark_seen(&self, ticket: TicketId, item: &str) -> TxResult<()> {
        self.del(SDP_SEEN, &keys::seen(ticket, item))?;
        Ok(())
    }

    /// Takes a message out of the discussion (the team deleted it in SDP, or made it private).
    pub fn remove_message(&self, ticket: TicketId, message: MessageId) -> TxResult<()> {
        self.del(MESSAGES, &keys::child(ticket, message.0))?;
        Ok(())
    }

    /// Writes a piece of sync state (a cursor, progress) with the changes it covers.
    pub fn put_sync<T: Serialize>(&self, key: &str, value: &T) -> TxResult<()> {
        self.put(SYNC, key.as_bytes(), encode(value))?;
        Ok(())
    }

    /// Marks an imported ticket whose details (description, messages, files) are still to be read
    /// from its SDP request.
    pub fn details_pending(&self, ticket: TicketId, sdp_id: &str) -> TxResult<()> {
        self.put(DETAILS, &keys::u64_be(ticket.0), sdp_id.as_bytes())?;
        Ok(())
    }

    /// Whether the ticket's details were still to be read; they are not any more.
    pub fn details_read(&self, ticket: TicketId) -> TxResult<bool> {
        Ok(self.del(DETAILS, &keys::u64_be(ticket.0))?.is_some())
    }

    /// The stored reply for this key, if any; a different request body under the same key is refused.
    pub fn idempotent(&self, key: &[u8], fingerprint: &str) -> TxResult<Option<IdempotentReply>> {
        let Some(bytes) = self.t[IDEMPOTENCY].get(key)? else {
            return Ok(None);
        };
        let reply: IdempotentReply = decode(names::idempotency, key, &bytes).or_else(abort)?;
        if reply.fingerprint != fingerprint {
            return abort(DomainError::IdempotencyKeyReused);
        }
        Ok(Some(reply))
    }

    pub fn remember(&self, key: &[u8], reply: &IdempotentReply) -> TxResult<()> {
        self.put(IDEMPOTENCY, key, encode(reply))?;
        Ok(())
    }

    /// Drops a stored reply; its key may be used afresh.
    pub fn forget_reply(&self, key: &[u8]) -> TxResult<()> {
        self.del(IDEMPOTENCY, key)?;
        Ok(())
    }
}

impl Store {
    /// Keys of up to `limit` stored replies from before `cutoff`.
    pub fn replies_before(
        &self,
        cutoff: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<IVec>, super::StoreError> {
        let mut out = Vec::new();
        for item in &self.trees.idempotency {
            let (key, value) = item?;
            let reply: IdempotentReply = decode(names::idempotency, &key, &value)?;
            if reply.at < cutoff {
                out.push(key);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

impl Store {
    /// Runs `f` as one transaction over every tree a ticket change touches. Only the ticket
    /// commands (`crate::tickets`) call it.
    pub(crate) fn transact<R>(
        &self,
        f: impl Fn(&TicketTx<'_>) -> TxResult<R>,
    ) -> Result<R, OpError> {
        let t = &self.trees;
        let trees: [&sled::Tree; TREES] = [
            &t.meta,
            &t.tickets,
            &t.tickets_by_activity,
            &t.tickets_by_requester,
            &t.messages,
            &t.attachments,
            &t.events,
            &t.outbox,
            &t.idempotency,
            &t.dead_letters,
            &t.tickets_by_sdp,
            &t.sdp_seen,
            &t.sync,
            &t.details_pending,
            &t.tickets_by_party,
        ];
        let prefix = self.ticket_prefix();
        let _gate = self.write_gate();
        let org_listed = self
            .org_listed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map_tx(trees[..].transaction(|view| {
            f(&TicketTx {
                t: view,
                prefix: &prefix,
                journal: &self.journal,
                org_listed: &org_listed,
            })
        }))
    }

    pub(crate) fn ticket_prefix(&self) -> String {
        self.prefix
            .read()
            .expect("prefix lock is never poisoned: writers do not panic")
            .clone()
    }
}
