//! Reading tickets and what hangs off them, outside any transaction (sled reads are consistent
//! and never block writers): lists with filters and paging, counts, one ticket's records.

use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::{Store, StoreError, encode, keys, names};
use crate::domain::{
    Attachment, AttachmentId, Event, Kind, Message, Status, Ticket, TicketId, UserId,
};

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this requester's tickets; `None` lists every ticket (admins).
    pub requester: Option<UserId>,
    pub status: Option<Status>,
    pub kind: Option<Kind>,
    /// Lower-cased search text.
    pub q: Option<String>,
    /// Only tickets overdue at this time.
    pub overdue_at: Option<OffsetDateTime>,
    /// 1-based.
    pub page: u64,
    pub per_page: u64,
}

#[derive(Debug)]
pub struct TicketPage {
    pub items: Vec<Ticket>,
    pub total: u64,
}

/// An SDP item already taken in (or written by us).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeenItem {
    /// Its `last_updated_time` (ms) then; `None` when it has none, or an earlier version saw it.
    pub(crate) version: Option<i64>,
}

impl Store {
    pub fn ticket(&self, id: TicketId) -> Result<Option<Ticket>, StoreError> {
        Store::get(&self.trees.tickets, names::tickets, &keys::u64_be(id.0))
    }

    /// Finds a ticket by its human number (case-insensitive). Numbers keep the prefix they were given.
    pub fn ticket_by_number(&self, number: &str) -> Result<Option<Ticket>, StoreError> {
        let number = number.to_ascii_uppercase();
        let Some(id) = TicketId::parse_number(&number) else {
            return Ok(None);
        };
        Ok(self.ticket(id)?.filter(|t| t.number == number))
    }

    pub fn list_tickets(&self, filter: &ListFilter) -> Result<TicketPage, StoreError> {
        let (tree, prefix) = match filter.requester {
            Some(user) => (&self.trees.tickets_by_requester, keys::user(user).to_vec()),
            None => (&self.trees.tickets_by_activity, Vec::new()),
        };
        let skip = filter
            .page
            .saturating_sub(1)
            .saturating_mul(filter.per_page);
        let unfiltered = filter.status.is_none()
            && filter.kind.is_none()
            && filter.q.is_none()
            && filter.overdue_at.is_none();
        let mut items = Vec::new();

        if unfiltered && filter.requester.is_none() {
            // Every ticket: the count is kept, so only the requested page is read.
            for item in tree
                .iter()
                .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                .take(page_len(filter))
            {
                let (key, _) = item?;
                items.extend(self.indexed_ticket(&key)?);
            }
            return Ok(TicketPage {
                items,
                total: self.ticket_count()?,
            });
        }

        let mut total = 0u64;
        for item in tree.scan_prefix(&prefix) {
            let (key, value) = item?;
            if filter
                .status
                .is_some_and(|s| value.first() != Some(&s.code()))
                || filter.kind.is_some_and(|k| value.get(1) != Some(&k.code()))
            {
                continue;
            }
            let in_page = total >= skip && total < skip + filter.per_page;
            if filter.q.is_some() || filter.overdue_at.is_some() {
                let Some(ticket) = self.indexed_ticket(&key)? else {
                    continue;
                };
                if filter.q.as_ref().is_some_and(|q| !ticket.matches(q))
                    || filter.overdue_at.is_some_and(|now| !ticket.overdue(now))
                {
                    continue;
                }
                if in_page {
                    items.push(ticket);
                }
            } else if in_page {
                items.extend(self.indexed_ticket(&key)?);
            }
            total += 1;
        }
        Ok(TicketPage { items, total })
    }

    /// How many tickets are in each status (in `Status::ALL` order), for one requester or all. Reads
    /// only the index, whose value starts with the status code.
    pub fn status_counts(&self, requester: Option<UserId>) -> Result<[u64; 6], StoreError> {
        let (tree, prefix) = match requester {
            Some(user) => (&self.trees.tickets_by_requester, keys::user(user).to_vec()),
            None => (&self.trees.tickets_by_activity, Vec::new()),
        };
        let mut counts = [0u64; 6];
        for value in tree.scan_prefix(&prefix).values() {
            let value = value?;
            if let Some(i) = value
                .first()
                .and_then(|code| Status::ALL.iter().position(|s| s.code() == *code))
            {
                counts[i] += 1;
            }
        }
        Ok(counts)
    }

    fn indexed_ticket(&self, index_key: &[u8]) -> Result<Option<Ticket>, StoreError> {
        match keys::trailing_ticket(index_key) {
            Some(id) => self.ticket(id),
            None => Ok(None),
        }
    }

    pub fn messages(&self, ticket: TicketId) -> Result<Vec<Message>, StoreError> {
        Store::scan(
            &self.trees.messages,
            names::messages,
            &keys::u64_be(ticket.0),
        )
    }

    pub fn events(&self, ticket: TicketId) -> Result<Vec<Event>, StoreError> {
        Store::scan(&self.trees.events, names::events, &keys::u64_be(ticket.0))
    }

    pub fn attachments(&self, ticket: TicketId) -> Result<Vec<Attachment>, StoreError> {
        Store::scan(
            &self.trees.attachments,
            names::attachments,
            &keys::u64_be(ticket.0),
        )
    }

    pub fn attachment(
        &self,
        ticket: TicketId,
        id: AttachmentId,
    ) -> Result<Option<Attachment>, StoreError> {
        Store::get(
            &self.trees.attachments,
            names::attachments,
            &keys::child(ticket, id.0),
        )
    }

    pub fn ticket_by_sdp_id(&self, sdp_id: &str) -> Result<Option<TicketId>, StoreError> {
        Ok(self
            .trees
            .tickets_by_sdp
            .get(sdp_id.as_bytes())?
            .and_then(|v| keys::read_u64(&v))
            .map(TicketId))
    }

    pub fn message(
        &self,
        ticket: TicketId,
        id: crate::domain::MessageId,
    ) -> Result<Option<Message>, StoreError> {
        Store::get(
            &self.trees.messages,
            names::messages,
            &keys::child(ticket, id.0),
        )
    }

    pub fn sync_value<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        Store::get(&self.trees.sync, names::sync, key.as_bytes())
    }

    /// Writes pieces of sync state (watermark, import progress) together.
    pub fn put_sync_values(&self, values: &[(&str, serde_json::Value)]) -> Result<(), StoreError> {
        let _gate = self.write_gate();
        let mut batch = sled::Batch::default();
        for (key, value) in values {
            self.journal.record(names::sync, key.as_bytes());
            batch.insert(key.as_bytes(), encode(value));
        }
        self.trees.sync.apply_batch(batch)?;
        Ok(())
    }

    /// The next tickets whose details are still to be read, oldest first: ticket and SDP id.
    pub(crate) fn details_pending(
        &self,
        limit: usize,
    ) -> Result<Vec<(TicketId, String)>, StoreError> {
        self.trees
            .details_pending
            .iter()
            .take(limit)
            .map(|item| {
                let (k, v) = item?;
                let id = keys::read_u64(&k).map_or(TicketId(0), TicketId);
                Ok((id, String::from_utf8_lossy(&v).into_owned()))
            })
            .collect()
    }

    pub(crate) fn has_details_pending(&self, ticket: TicketId) -> Result<bool, StoreError> {
        Ok(self
            .trees
            .details_pending
            .contains_key(keys::u64_be(ticket.0))?)
    }

    /// Whether an SDP item (note, conversation, attachment) was already taken in or written by us.
    pub(crate) fn seen(&self, ticket: TicketId, item: &str) -> Result<bool, StoreError> {
        Ok(self.trees.sdp_seen.get(keys::seen(ticket, item))?.is_some())
    }

    /// How an SDP item was seen, if it was.
    pub(crate) fn seen_item(
        &self,
        ticket: TicketId,
        item: &str,
    ) -> Result<Option<SeenItem>, StoreError> {
        Ok(self
            .trees
            .sdp_seen
            .get(keys::seen(ticket, item))?
            .map(|v| SeenItem {
                version: <[u8; 8]>::try_from(v.as_ref()).ok().map(i64::from_be_bytes),
            }))
    }

    /// Every linked ticket: SDP request id and ticket id.
    pub fn sdp_links(&self) -> Result<Vec<(String, TicketId)>, StoreError> {
        self.trees
            .tickets_by_sdp
            .iter()
            .map(|item| {
                let (k, v) = item?;
                let id = keys::read_u64(&v).map_or(TicketId(0), TicketId);
                Ok((String::from_utf8_lossy(&k).into_owned(), id))
            })
            .collect()
    }
}

fn page_len(filter: &ListFilter) -> usize {
    usize::try_from(filter.per_page).unwrap_or(usize::MAX)
}
