//! Organisations: the records, their unique names and domains, their members' shown name, and the
//! migration that turned the free-text organisation of earlier versions into records.

use std::collections::HashMap;

use sled::Transactional;

use super::{OpError, Store, StoreError, abort, decode, encode, keys, map_tx, names};
use crate::domain::{DomainError, OrgId, Organization, Sharing, Ticket, TicketId, User};

/// The unique key of a name: lower-case, trimmed.
fn name_key(name: &str) -> Vec<u8> {
    name.trim().to_lowercase().into_bytes()
}

impl Store {
    /// Creates or replaces an organisation. Names and domains stay unique; members keep the name
    /// shown in step when it changes.
    pub fn save_org(&self, org: &Organization) -> Result<(), OpError> {
        let t = &self.trees;
        let before: Option<Organization> = self.org(org.id)?;
        let gate = self.write_gate();
        map_tx((&t.orgs, &t.orgs_by_name, &t.orgs_by_domain).transaction(
            |(orgs, by_name, by_domain)| {
                let id = org.id.0.as_bytes();
                if by_name
                    .get(name_key(&org.name))?
                    .is_some_and(|owner| owner.as_ref() != id)
                {
                    return abort(DomainError::OrganizationNameTaken);
                }
                for domain in &org.domains {
                    if by_domain
                        .get(domain.as_bytes())?
                        .is_some_and(|owner| owner.as_ref() != id)
                    {
                        return abort(DomainError::DomainTaken(domain.clone()));
                    }
                }
                if let Some(before) = &before {
                    self.journal
                        .record(names::orgs_by_name, &name_key(&before.name));
                    by_name.remove(name_key(&before.name))?;
                    for domain in &before.domains {
                        self.journal
                            .record(names::orgs_by_domain, domain.as_bytes());
                        by_domain.remove(domain.as_bytes())?;
                    }
                }
                self.journal
                    .record(names::orgs_by_name, &name_key(&org.name));
                by_name.insert(name_key(&org.name), id)?;
                for domain in &org.domains {
                    self.journal
                        .record(names::orgs_by_domain, domain.as_bytes());
                    by_domain.insert(domain.as_bytes(), id)?;
                }
                self.journal.record(names::orgs, id);
                orgs.insert(id, encode(org))?;
                Ok(())
            },
        ))?;
        drop(gate);
        self.list_org(org.id, org.sharing == Sharing::Organization);
        if before.is_some_and(|b| b.name != org.name) {
            for mut user in self.members(org.id)? {
                user.organization.clone_from(&org.name);
                self.update_user(&user)?;
            }
        }
        Ok(())
    }

    /// Whether the tickets of `org` are listed under it from the next ticket transaction on; waits
    /// for the transactions in progress. `save_org` sets it from the sharing it saves.
    pub fn list_org(&self, org: OrgId, listed: bool) {
        let mut set = self
            .org_listed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if listed {
            set.insert(org);
        } else {
            set.remove(&org);
        }
    }

    /// Every ticket of the organisation (its requester's when it was raised), by a scan of all
    /// tickets: for the rare change of an organisation's sharing.
    pub fn tickets_of_org(&self, org: OrgId) -> Result<Vec<TicketId>, StoreError> {
        let mut out = Vec::new();
        for item in &self.trees.tickets {
            let (key, value) = item?;
            let ticket: Ticket = decode(names::tickets, &key, &value)?;
            if ticket.org() == Some(org) {
                out.push(ticket.id);
            }
        }
        Ok(out)
    }

    pub fn org(&self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        Store::get(&self.trees.orgs, names::orgs, id.0.as_bytes())
    }

    /// Every organisation, by name.
    pub fn orgs(&self) -> Result<Vec<Organization>, StoreError> {
        let mut out: Vec<Organization> = Store::scan(&self.trees.orgs, names::orgs, &[])?;
        out.sort_by_key(|o| o.name.to_lowercase());
        Ok(out)
    }

    /// The organisation of this name, compared case-insensitively.
    pub fn org_by_name(&self, name: &str) -> Result<Option<Organization>, StoreError> {
        self.org_by_index(&self.trees.orgs_by_name, &name_key(name))
    }

    /// The organisation that claims this (lower-case) e-mail domain.
    pub fn org_by_domain(&self, domain: &str) -> Result<Option<Organization>, StoreError> {
        self.org_by_index(&self.trees.orgs_by_domain, domain.as_bytes())
    }

    fn org_by_index(
        &self,
        index: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<Organization>, StoreError> {
        match index.get(key)? {
            Some(id) => Store::get(&self.trees.orgs, names::orgs, &id),
            None => Ok(None),
        }
    }

    /// The accounts that belong to the organisation.
    pub fn members(&self, org: OrgId) -> Result<Vec<User>, StoreError> {
        Ok(self
            .users()?
            .into_iter()
            .filter(|u| u.org == Some(org))
            .collect())
    }
}

/// Schema 2: each distinct free-text organisation of the accounts becomes a record (names compared
/// case-insensitively, the first spelling kept), accounts point at it, and each ticket belongs to
/// its requester's organisation, indexed for the organisation's list.
pub(crate) fn migrate_to_records(db: &sled::Db) -> Result<(), String> {
    let open = |name: &str| db.open_tree(name).map_err(|e| e.to_string());
    let (users, orgs, by_name) = (
        open(names::users)?,
        open(names::orgs)?,
        open(names::orgs_by_name)?,
    );
    let (tickets, by_party) = (open(names::tickets)?, open(names::tickets_by_party)?);
    let mut org_of_user = HashMap::new();
    let mut by_lower: HashMap<Vec<u8>, Organization> = HashMap::new();
    for item in &users {
        let (key, value) = item.map_err(|e| e.to_string())?;
        let mut user: User = decode(names::users, &key, &value).map_err(|e| e.to_string())?;
        if user.organization.trim().is_empty() || user.org.is_some() {
            continue;
        }
        let org = by_lower
            .entry(name_key(&user.organization))
            .or_insert_with(|| Organization::new(&user.organization));
        user.org = Some(org.id);
        user.organization.clone_from(&org.name);
        org_of_user.insert(user.id, org.id);
        users
            .insert(key, encode(&user))
            .map_err(|e| e.to_string())?;
    }
    for (lower, org) in &by_lower {
        orgs.insert(org.id.0.as_bytes(), encode(org))
            .map_err(|e| e.to_string())?;
        by_name
            .insert(lower, org.id.0.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    for item in &tickets {
        let (key, value) = item.map_err(|e| e.to_string())?;
        let mut ticket: Ticket = decode(names::tickets, &key, &value).map_err(|e| e.to_string())?;
        let Some(org) = org_of_user.get(&ticket.requester.id) else {
            continue;
        };
        ticket.requester.org = Some(*org);
        for party in keys::parties(&ticket) {
            by_party
                .insert(
                    keys::by_party(&party, ticket.updated_at, ticket.id),
                    &super::tickets::index_value(&ticket),
                )
                .map_err(|e| e.to_string())?;
        }
        tickets
            .insert(key, encode(&ticket))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Requester, Role, UserId};

    fn customer(email: &str, organization: &str) -> User {
        User {
            id: UserId::new(),
            email: email.into(),
            name: email.into(),
            role: Role::Customer,
            organization: organization.into(),
            org: None,
            password_hash: String::new(),
            disabled: false,
            created_at: time::OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn free_text_organisations_become_records_and_tickets_follow_their_requester() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .unwrap();
        let users = db.open_tree(names::users).unwrap();
        let tickets = db.open_tree(names::tickets).unwrap();
        let alice = customer("a@acme.example", "Acme");
        let bob = customer("b@acme.example", " acme");
        let solo = customer("s@example.com", "");
        for u in [&alice, &bob, &solo] {
            users.insert(keys::user(u.id), encode(u)).unwrap();
        }
        let mut ticket = crate::domain::ticket::sample(1);
        ticket.requester = Requester::of(&bob);
        tickets.insert(keys::u64_be(1), encode(&ticket)).unwrap();

        migrate_to_records(&db).unwrap();

        let read = |u: &User| -> User {
            decode(
                names::users,
                &[],
                &users.get(keys::user(u.id)).unwrap().unwrap(),
            )
            .unwrap()
        };
        let (a, b, s) = (read(&alice), read(&bob), read(&solo));
        assert!(
            a.org.is_some() && a.org == b.org,
            "one record for Acme and acme"
        );
        assert_eq!(
            (a.organization.as_str(), b.organization.as_str()),
            ("Acme", "Acme")
        );
        assert_eq!(s.org, None);
        assert_eq!(db.open_tree(names::orgs).unwrap().len(), 1);
        let t: Ticket = decode(
            names::tickets,
            &[],
            &tickets.get(keys::u64_be(1)).unwrap().unwrap(),
        )
        .unwrap();
        assert_eq!(t.org(), a.org);
        let party = keys::org_party(a.org.unwrap());
        assert_eq!(
            db.open_tree(names::tickets_by_party)
                .unwrap()
                .scan_prefix(party)
                .count(),
            1
        );
    }
}
