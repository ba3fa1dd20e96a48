//! Newtype ids so that a ticket key can never be passed where a message key is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The internal, dense key of a ticket; the human number `<prefix>-000123` is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketId(pub u64);

impl TicketId {
    /// Formats the human number, e.g. `DB-000123`. Six digits keep numbers sortable up to a million.
    pub fn number(self, prefix: &str) -> String {
        format!("{prefix}-{:06}", self.0)
    }

    /// Reads the key back from a human number. The prefix is not checked here: the caller compares
    /// the stored number, so tickets keep their numbers when an operator changes the prefix.
    pub fn parse_number(number: &str) -> Option<TicketId> {
        let (prefix, digits) = number.rsplit_once('-')?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(TicketId)
    }
}

macro_rules! uuid_id {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Time-ordered (v7), so records list in creation order.
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(UserId, "An account.");
uuid_id!(OrgId, "An organisation.");

macro_rules! item_id {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);
    };
}

item_id!(
    MessageId,
    "A discussion message; unique across the store, ordered by creation."
);
item_id!(
    AttachmentId,
    "An attachment's metadata record; the bytes are keyed by sha256."
);
item_id!(
    EventId,
    "A history event; unique across the store, ordered by creation."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_round_trips() {
        let id = TicketId(123);
        assert_eq!(id.number("DB"), "DB-000123");
        assert_eq!(TicketId::parse_number("DB-000123"), Some(id));
        assert_eq!(
            TicketId::parse_number("OPS-1234567"),
            Some(TicketId(1_234_567))
        );
    }

    #[test]
    fn bad_numbers_are_rejected() {
        for bad in [
            "",
            "DB",
            "DB-",
            "DB-12a",
            "DB--1",
            "DB-99999999999999999999",
            "DB-+1",
        ] {
            assert_eq!(TicketId::parse_number(bad), None, "{bad}");
        }
    }
}
