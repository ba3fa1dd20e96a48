//! Explicit key encoding. Integers are big-endian so that sled's byte order is numeric order, and
//! activity keys are inverted so that a forward scan yields the most recently active ticket first.

use time::OffsetDateTime;

use sha2::{Digest, Sha256};

use crate::domain::{OrgId, Ticket, TicketId, UserId};

pub fn u64_be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Newest first: later times give smaller keys.
pub fn activity(at: OffsetDateTime) -> [u8; 8] {
    let micros = u64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(0);
    u64_be(u64::MAX - micros)
}

pub fn user(id: UserId) -> [u8; 16] {
    *id.0.as_bytes()
}

/// `users_by_identity`: issuer ++ 0 ++ subject (an issuer is a URL, so it holds no zero byte).
pub fn identity(issuer: &str, subject: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(issuer.len() + 1 + subject.len());
    key.extend_from_slice(issuer.as_bytes());
    key.push(0);
    key.extend_from_slice(subject.as_bytes());
    key
}

/// `tickets_by_activity`: activity ++ ticket.
pub fn by_activity(at: OffsetDateTime, ticket: TicketId) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&activity(at));
    key[8..].copy_from_slice(&u64_be(ticket.0));
    key
}

/// `tickets_by_requester`: requester ++ activity ++ ticket.
pub fn by_requester(requester: UserId, at: OffsetDateTime, ticket: TicketId) -> [u8; 32] {
    let mut key = [0; 32];
    key[..16].copy_from_slice(&user(requester));
    key[16..].copy_from_slice(&by_activity(at, ticket));
    key
}

/// Who, beside its requester, a ticket is listed for: its organisation and each person copied on
/// it. A party is a digest of a labelled name, so the two kinds never collide.
fn party(label: &str, name: &[u8]) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(label.as_bytes())
        .chain_update([0])
        .chain_update(name)
        .finalize();
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

pub fn org_party(org: OrgId) -> [u8; 16] {
    party("org", org.0.as_bytes())
}

/// A person copied on tickets, by their (normalised) e-mail.
pub fn cc_party(email: &str) -> [u8; 16] {
    party("cc", email.as_bytes())
}

/// Every party a ticket may be listed under: its organisation and the people copied on it.
pub fn parties(ticket: &Ticket) -> Vec<[u8; 16]> {
    listed_parties(ticket, true)
}

/// The parties a ticket is listed under: the people copied on it, and its organisation when
/// `with_org` (its members see every ticket).
pub fn listed_parties(ticket: &Ticket, with_org: bool) -> Vec<[u8; 16]> {
    ticket
        .org()
        .filter(|_| with_org)
        .map(org_party)
        .into_iter()
        .chain(ticket.cc.iter().map(|e| cc_party(e)))
        .collect()
}

/// `tickets_by_party`: party ++ activity ++ ticket.
pub fn by_party(party: &[u8; 16], at: OffsetDateTime, ticket: TicketId) -> [u8; 32] {
    let mut key = [0; 32];
    key[..16].copy_from_slice(party);
    key[16..].copy_from_slice(&by_activity(at, ticket));
    key
}

/// Children of a ticket (messages, attachments, events): ticket ++ item id, so a prefix scan lists
/// one ticket's items in creation order.
pub fn child(ticket: TicketId, item: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&u64_be(ticket.0));
    key[8..].copy_from_slice(&u64_be(item));
    key
}

/// The ticket id at the end of an index key.
pub fn trailing_ticket(key: &[u8]) -> Option<TicketId> {
    key.len()
        .checked_sub(8)
        .and_then(|at| read_u64(&key[at..]))
        .map(TicketId)
}

/// `sdp_seen`: ticket ++ item, where item names an SDP note, conversation or attachment
/// (`note:123`, `conv:9`, `att:606`).
pub fn seen(ticket: TicketId, item: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + item.len());
    out.extend_from_slice(&u64_be(ticket.0));
    out.extend_from_slice(item.as_bytes());
    out
}

/// `idempotency`: user ++ scope ++ 0 ++ client key. The 0 byte keeps scopes from running together.
pub fn idempotency(user_id: UserId, scope: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + scope.len() + 1 + key.len());
    out.extend_from_slice(&user(user_id));
    out.extend_from_slice(scope.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn integers_sort_numerically() {
        let mut keys: Vec<_> = [300u64, 2, 1 << 40, 17]
            .iter()
            .map(|n| u64_be(*n))
            .collect();
        keys.sort_unstable();
        let back: Vec<_> = keys.iter().map(|k| read_u64(k).unwrap()).collect();
        assert_eq!(back, [2, 17, 300, 1 << 40]);
    }

    #[test]
    fn activity_sorts_newest_first() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let older = by_activity(t0, TicketId(9));
        let newer = by_activity(t0 + Duration::microseconds(1), TicketId(1));
        assert!(newer < older);
        assert_eq!(trailing_ticket(&older), Some(TicketId(9)));
    }

    #[test]
    fn children_group_by_ticket_then_item() {
        assert!(child(TicketId(1), u64::MAX) < child(TicketId(2), 0));
        assert!(child(TicketId(1), 5) < child(TicketId(1), 6));
    }
}
