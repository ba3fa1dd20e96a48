//! Reading tickets and what hangs off them, outside any transaction (sled reads are consistent
//! and never block writers): lists with filters and paging, counts, one ticket's records.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use sled::IVec;
use time::OffsetDateTime;

use super::{Store, StoreError, encode, keys, names};
use crate::domain::{
    Attachment, AttachmentId, Event, Kind, Message, OrgId, Status, SyncState, Ticket, TicketId,
    UserId,
};

/// Whose tickets a list covers; the caller's use case decides it from who asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every ticket (admins).
    #[default]
    All,
    /// The tickets a customer requested, and, with `copied`, those their e-mail is copied on
    /// within their organisation.
    Mine {
        user: UserId,
        copied: Option<(String, OrgId)>,
    },
    /// Every ticket of an organisation.
    Org(OrgId),
}

/// An index entry of a scope; `org` is set when the ticket must still be checked to belong to it.
struct Entry {
    key: Vec<u8>,
    value: IVec,
    org: Option<OrgId>,
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub scope: Scope,
    pub status: Option<Status>,
    pub kind: Option<Kind>,
    /// Lower-cased search text.
    pub q: Option<String>,
    /// The narrower filters of the console, each read from the ticket record.
    pub more: MoreFilter,
    /// 1-based.
    pub page: u64,
    pub per_page: u64,
}

/// Filters the index cannot answer: each needs the ticket record.
#[derive(Debug, Clone, Default)]
pub struct MoreFilter {
    /// The requester's organisation, compared case-insensitively (lower-cased here).
    pub organization: Option<String>,
    /// The requester's e-mail, compared case-insensitively (lower-cased here).
    pub requester_email: Option<String>,
    pub sync_state: Option<SyncState>,
    /// Only tickets overdue at this instant.
    pub overdue_at: Option<OffsetDateTime>,
}

impl MoreFilter {
    fn is_empty(&self) -> bool {
        self.organization.is_none()
            && self.requester_email.is_none()
            && self.sync_state.is_none()
            && self.overdue_at.is_none()
    }

    fn keeps(&self, t: &Ticket) -> bool {
        self.organization
            .as_ref()
            .is_none_or(|o| t.requester.organization.to_lowercase() == *o)
            && self
                .requester_email
                .as_ref()
                .is_none_or(|e| t.requester.email.to_lowercase() == *e)
            && self.sync_state.is_none_or(|s| t.sdp.sync_state == s)
            && self.overdue_at.is_none_or(|now| t.overdue(now))
    }
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

    /// The index entries of a scope, newest first.
    fn entries(
        &self,
        scope: &Scope,
    ) -> Result<Box<dyn Iterator<Item = Result<Entry, StoreError>> + '_>, StoreError> {
        let plain = |tree: &sled::Tree, prefix: Vec<u8>| {
            tree.scan_prefix(prefix).map(|item| {
                let (key, value) = item?;
                Ok(Entry {
                    key: key.to_vec(),
                    value,
                    org: None,
                })
            })
        };
        Ok(match scope {
            Scope::All => Box::new(plain(&self.trees.tickets_by_activity, Vec::new())),
            Scope::Org(org) => Box::new(plain(
                &self.trees.tickets_by_party,
                keys::org_party(*org).to_vec(),
            )),
            Scope::Mine { user, copied: None } => Box::new(plain(
                &self.trees.tickets_by_requester,
                keys::user(*user).to_vec(),
            )),
            Scope::Mine {
                user,
                copied: Some((email, org)),
            } => {
                // Both indexes end in activity ++ ticket: merged on that, the order holds and a
                // ticket both requested and copied on appears once.
                let mut merged = BTreeMap::new();
                for item in self
                    .trees
                    .tickets_by_party
                    .scan_prefix(keys::cc_party(email))
                {
                    let (key, value) = item?;
                    merged.insert(key[16..].to_vec(), (value, Some(*org)));
                }
                for item in self
                    .trees
                    .tickets_by_requester
                    .scan_prefix(keys::user(*user))
                {
                    let (key, value) = item?;
                    merged.insert(key[16..].to_vec(), (value, None));
                }
                Box::new(
                    merged
                        .into_iter()
                        .map(|(key, (value, org))| Ok(Entry { key, value, org })),
                )
            }
        })
    }

    pub fn list_tickets(&self, filter: &ListFilter) -> Result<TicketPage, StoreError> {
        let skip = filter
            .page
            .saturating_sub(1)
            .saturating_mul(filter.per_page);
        let unfiltered = filter.status.is_none()
            && filter.kind.is_none()
            && filter.q.is_none()
            && filter.more.is_empty();
        let mut items = Vec::new();

        if unfiltered && filter.scope == Scope::All {
            // Every ticket: the count is kept, so only the requested page is read.
            for item in self
                .trees
                .tickets_by_activity
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
        for entry in self.entries(&filter.scope)? {
            let Entry { key, value, org } = entry?;
            if filter
                .status
                .is_some_and(|s| value.first() != Some(&s.code()))
                || filter.kind.is_some_and(|k| value.get(1) != Some(&k.code()))
            {
                continue;
            }
            let in_page = total >= skip && total < skip + filter.per_page;
            if filter.q.is_some() || !filter.more.is_empty() || org.is_some() {
                let Some(ticket) = self.indexed_ticket(&key)? else {
                    continue;
                };
                if filter.q.as_ref().is_some_and(|q| !ticket.matches(q))
                    || !filter.more.keeps(&ticket)
                    || org.is_some_and(|o| ticket.org() != Some(o))
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

    /// How many tickets of a scope are in each status (in `Status::ALL` order). Reads only the
    /// index, whose value starts with the status code (and a copied ticket, to check its
    /// organisation).
    pub fn status_counts(&self, scope: &Scope) -> Result<[u64; 6], StoreError> {
        let mut counts = [0u64; 6];
        for entry in self.entries(scope)? {
            let Entry { key, value, org } = entry?;
            if let Some(org) = org
                && self
                    .indexed_ticket(&key)?
                    .is_none_or(|t| t.org() != Some(org))
            {
                continue;
            }
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
