//! The outbox: what `ServiceDesk` Plus must hear about, written in the same transaction as the change.
//! The sync supervisor drains it in order per ticket.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{Store, StoreError, keys, names};
use crate::domain::{AttachmentId, MessageId, TicketId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OutboxOp {
    /// Create the SDP request for a new portal ticket.
    CreateRequest,
    /// Post a customer message as a public note.
    AddNote {
        #[schema(value_type = u64)]
        message: MessageId,
    },
    /// Upload an attachment.
    AddAttachment {
        #[schema(value_type = u64)]
        attachment: AttachmentId,
    },
    /// The customer accepted the resolution: close the request.
    Close,
    /// The customer reopened the ticket (explicitly or by replying).
    Reopen { reason: String },
    /// The colleagues copied on the ticket changed: send SDP the list as it is at delivery.
    UpdateCc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OutboxEntry {
    pub seq: u64,
    #[schema(value_type = u64)]
    pub ticket: TicketId,
    #[serde(flatten)]
    pub op: OutboxOp,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// Delivery attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (backoff).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The last attempt got no answer: SDP may have applied it, so look before repeating.
    #[serde(default)]
    pub outcome_unknown: bool,
}

impl Store {
    /// Entries after `after`, oldest first, at most `limit`.
    pub fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.trees
            .outbox
            .range(keys::u64_be(after.saturating_add(1))..)
            .take(limit)
            .map(|item| {
                let (k, v) = item?;
                super::decode(names::outbox, &k, &v)
            })
            .collect()
    }

    /// Entries waiting in the outbox (a kept count: no walk).
    pub fn outbox_len(&self) -> usize {
        let len = self
            .trees
            .meta
            .get(super::meta::OUTBOX_LEN)
            .ok()
            .flatten()
            .and_then(|v| keys::read_u64(&v))
            .unwrap_or(0);
        usize::try_from(len).unwrap_or(usize::MAX)
    }

    /// One ticket's waiting entries, oldest first (a walk of the outbox: for the console's sync log).
    pub fn outbox_of(&self, ticket: TicketId) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut entries = Vec::new();
        for item in &self.trees.outbox {
            let (k, v) = item?;
            let entry: OutboxEntry = super::decode(names::outbox, &k, &v)?;
            if entry.ticket == ticket {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    pub fn dead_letters(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        Store::scan(&self.trees.dead_letters, names::dead_letters, &[])
    }
}
