//! Accounts: customers, admins and the Cloudeka portal's integration account.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{OrgId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
    /// The Cloudeka portal's backend: acts only on behalf of a customer.
    Integration,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Customer, Role::Admin, Role::Integration];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
            Role::Integration => "integration",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    /// Always lower-case; the unique login.
    pub email: String,
    pub name: String,
    pub role: Role,
    /// The organisation's name as shown (kept in step with the record when it is renamed).
    #[serde(default)]
    pub organization: String,
    #[serde(default)]
    pub org: Option<OrgId>,
    /// PHC string (argon2id). Empty for accounts that may not sign in (customers created on behalf).
    #[serde(default)]
    pub password_hash: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// E-mail addresses are compared case-insensitively everywhere; this is the one normal form.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
