//! Business types and rules. Nothing here does I/O, so every rule is unit-tested without actix or sled.

pub mod brand;
pub mod catalogue;
pub mod ids;
pub mod lifecycle;
pub mod org;
pub mod record;
pub mod ticket;
pub mod user;
pub mod validate;

pub use catalogue::{Catalogue, Offered, ServiceChoice};
pub use ids::{AttachmentId, EventId, MessageId, OrgId, TicketId, UserId};
pub use lifecycle::{Action, Status, TransitionError};
pub use org::{Organization, Sharing};
pub use record::{
    Actor, ActorKind, Attachment, Author, AuthorRole, Delivery, Event, EventKind, Message, Origin,
};
pub use ticket::{Kind, Priority, Promise, Requester, SdpFate, SdpLink, SyncState, Ticket};
pub use user::{Role, User};
pub use validate::{FieldError, Validation};

/// A rule the caller broke. Each variant maps to one stable API error code in `crate::error`.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("ticket not found")]
    TicketNotFound,
    #[error("attachment not found")]
    AttachmentNotFound,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Invalid(#[from] Validation),
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    #[error("an organisation with this name already exists")]
    OrganizationNameTaken,
    #[error("the domain {0} already belongs to another organisation")]
    DomainTaken(String),
    #[error("the file is larger than the limit of {limit} bytes")]
    AttachmentTooLarge { limit: u64 },
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    /// SDP cannot take changes to the ticket's request (trashed, deleted, merged).
    #[error("{0}")]
    Frozen(String),
}
