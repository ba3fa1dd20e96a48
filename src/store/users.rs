//! Accounts and their credentials: browser sessions and API tokens are both stored as the sha256 of
//! the secret, so a copy of the store does not let anyone sign in.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use time::OffsetDateTime;

use super::{OpError, Store, StoreError, abort, decode, encode, keys, map_tx, names};
use crate::domain::{DomainError, User, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Session,
    Api,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub user: UserId,
    pub kind: TokenKind,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// What the owner called an API token, to tell them apart in the list.
    #[serde(default)]
    pub name: String,
    /// When it was last used, to the minute: a session idle longer than the timeout has ended.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// A browser session begun at the identity provider: signing out offers its sign-out too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub single_sign_on: bool,
}

impl Store {
    /// Creates the account; the e-mail must be free.
    pub fn create_user(&self, user: &User) -> Result<(), OpError> {
        let t = &self.trees;
        let _gate = self.write_gate();
        map_tx(
            (&t.users, &t.users_by_email).transaction(|(users, by_email)| {
                if by_email.get(user.email.as_bytes())?.is_some() {
                    return abort(DomainError::EmailTaken);
                }
                self.journal
                    .record(names::users_by_email, user.email.as_bytes());
                self.journal.record(names::users, &keys::user(user.id));
                by_email.insert(user.email.as_bytes(), &keys::user(user.id))?;
                users.insert(&keys::user(user.id), encode(user))?;
                Ok(())
            }),
        )
    }

    /// Saves an account that signs in through an identity provider, and links it to the provider's
    /// (issuer, subject): a new account, or an existing one whose e-mail the provider changed
    /// (`old_email`; the same as `user.email` when it did not). The new e-mail must be free.
    pub fn save_linked_user(
        &self,
        user: &User,
        old_email: Option<&str>,
        issuer: &str,
        subject: &str,
    ) -> Result<(), OpError> {
        let t = &self.trees;
        let id = keys::user(user.id);
        let identity = keys::identity(issuer, subject);
        let _gate = self.write_gate();
        map_tx(
            (&t.users, &t.users_by_email, &t.users_by_identity).transaction(
                |(users, by_email, by_identity)| {
                    if old_email != Some(user.email.as_str()) {
                        if by_email.get(user.email.as_bytes())?.is_some() {
                            return abort(DomainError::EmailTaken);
                        }
                        if let Some(old) = old_email {
                            self.journal.record(names::users_by_email, old.as_bytes());
                            by_email.remove(old.as_bytes())?;
                        }
                        self.journal
                            .record(names::users_by_email, user.email.as_bytes());
                        by_email.insert(user.email.as_bytes(), &id)?;
                    }
                    self.journal.record(names::users_by_identity, &identity);
                    self.journal.record(names::users, &id);
                    by_identity.insert(identity.as_slice(), &id)?;
                    users.insert(&id, encode(user))?;
                    Ok(())
                },
            ),
        )
    }

    /// The account linked to a provider's (issuer, subject), if any.
    pub fn user_by_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        let Some(id) = self
            .trees
            .users_by_identity
            .get(keys::identity(issuer, subject))?
        else {
            return Ok(None);
        };
        Store::get(&self.trees.users, names::users, &id)
    }

    /// Replaces an account record (the e-mail is immutable).
    pub fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let _gate = self.write_gate();
        self.journal.record(names::users, &keys::user(user.id));
        self.trees.users.insert(keys::user(user.id), encode(user))?;
        Ok(())
    }

    pub fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Store::get(&self.trees.users, names::users, &keys::user(id))
    }

    /// Looks an account up by its (already normalized) e-mail.
    pub fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let Some(id) = self.trees.users_by_email.get(email.as_bytes())? else {
            return Ok(None);
        };
        Store::get(&self.trees.users, names::users, &id)
    }

    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        Store::scan(&self.trees.users, names::users, &[])
    }

    pub fn any_admin(&self) -> Result<bool, StoreError> {
        for item in &self.trees.users {
            let (k, v) = item?;
            let user: User = decode(names::users, &k, &v)?;
            if user.role == crate::domain::Role::Admin && !user.disabled {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn insert_token(&self, hash: &[u8; 32], record: &TokenRecord) -> Result<(), StoreError> {
        let t = &self.trees;
        let mut by_user = keys::user(record.user).to_vec();
        by_user.extend_from_slice(hash);
        let _gate = self.write_gate();
        self.journal.record(names::tokens, hash);
        self.journal.record(names::tokens_by_user, &by_user);
        (&t.tokens, &t.tokens_by_user)
            .transaction(|(tokens, index)| {
                tokens.insert(&hash[..], encode(record))?;
                index.insert(by_user.as_slice(), &[])?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => {
                    unreachable!("the closure never aborts")
                }
            })
    }

    /// Every credential of the account, with its hash.
    pub fn tokens_of(&self, user: UserId) -> Result<Vec<([u8; 32], TokenRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees.tokens_by_user.scan_prefix(keys::user(user)) {
            let (key, _) = item?;
            let Ok(hash) = <[u8; 32]>::try_from(&key[16..]) else {
                continue;
            };
            if let Some(record) = self.token(&hash)? {
                out.push((hash, record));
            }
        }
        Ok(out)
    }

    /// Records a use of a credential. Swapped only if the record is unchanged, so a sign-out or
    /// a reset racing this use wins: a removed credential is never written back.
    pub fn touch_token(&self, hash: &[u8; 32], at: OffsetDateTime) -> Result<(), StoreError> {
        let _gate = self.write_gate();
        let Some(old) = self.trees.tokens.get(hash)? else {
            return Ok(());
        };
        let mut record: TokenRecord = decode(names::tokens, hash, &old)?;
        record.last_used_at = Some(at);
        self.journal.record(names::tokens, hash);
        // A lost race needs nothing more: the record changed or went, and that stands.
        let _swapped =
            self.trees
                .tokens
                .compare_and_swap(hash, Some(&old), Some(encode(&record)))?;
        Ok(())
    }

    pub fn token(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        Store::get(&self.trees.tokens, names::tokens, hash)
    }

    pub fn delete_token(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        let _gate = self.write_gate();
        if let Some(record) = self.token(hash)? {
            let mut by_user = keys::user(record.user).to_vec();
            by_user.extend_from_slice(hash);
            self.journal.record(names::tokens_by_user, &by_user);
            self.trees.tokens_by_user.remove(by_user)?;
        }
        self.journal.record(names::tokens, hash);
        self.trees.tokens.remove(hash)?;
        Ok(())
    }

    /// Signs the account out everywhere: every session and API token it holds.
    pub fn delete_tokens_of(&self, user: UserId) -> Result<usize, StoreError> {
        self.delete_tokens_where(user, |_| true)
    }

    /// Ends every browser session of the account (sign-out); its API tokens keep working.
    pub fn delete_sessions_of(&self, user: UserId) -> Result<usize, StoreError> {
        self.delete_tokens_where(user, |r| r.kind == TokenKind::Session)
    }

    fn delete_tokens_where(
        &self,
        user: UserId,
        which: impl Fn(&TokenRecord) -> bool,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        let _gate = self.write_gate();
        for item in self.trees.tokens_by_user.scan_prefix(keys::user(user)) {
            let (key, _) = item?;
            let hash: [u8; 32] = key[16..].try_into().unwrap_or([0; 32]);
            // An index entry whose record is gone is removed either way.
            if self.token(&hash)?.is_some_and(|r| !which(&r)) {
                continue;
            }
            self.journal.record(names::tokens, &key[16..]);
            self.journal.record(names::tokens_by_user, &key);
            self.trees.tokens.remove(&key[16..])?;
            self.trees.tokens_by_user.remove(&key)?;
            removed += 1;
        }
        Ok(removed)
    }
}
