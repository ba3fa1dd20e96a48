//! Organisations as admins manage them (console and API), and how an account finds its own: by
//! the name it is given (an admin's form, the portal's header, a sign-in claim), else by the
//! domain of its e-mail.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, Caller};
use crate::domain::org::email_domain;
use crate::domain::validate::{self, ORGANIZATION_MAX_CHARS};
use crate::domain::{DomainError, OrgId, Organization, Sharing, User, Validation};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::store::OpError;

/// At most this many e-mail domains per organisation.
pub const MAX_DOMAINS: usize = 20;

/// An organisation as an admin types it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgInput {
    pub name: String,
    /// E-mail domains whose new customers join it, e.g. `["acme.example"]`.
    #[serde(default)]
    pub domains: Vec<String>,
    /// off (default) | participants | organization
    #[serde(default)]
    pub sharing: Sharing,
}

/// An organisation as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub domains: Vec<String>,
    pub sharing: Sharing,
    pub members: usize,
}

impl OrgInput {
    fn check(&self) -> ApiResult<(String, Vec<String>)> {
        let mut v = Validation::default();
        validate::required_line(&mut v, "name", &self.name, ORGANIZATION_MAX_CHARS);
        let mut domains: Vec<String> = self
            .domains
            .iter()
            .map(|d| d.trim().trim_start_matches('@').to_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        domains.sort();
        domains.dedup();
        if domains.len() > MAX_DOMAINS {
            v.add(
                "domains",
                format!("must list at most {MAX_DOMAINS} domains"),
            );
        }
        if let Some(bad) = domains.iter().find(|d| !is_domain(d)) {
            v.add("domains", format!("{bad} is not a domain name"));
        }
        v.into_result()?;
        Ok((self.name.trim().to_owned(), domains))
    }
}

/// A plain host name check: labels of letters, digits and hyphens, at least two of them.
fn is_domain(d: &str) -> bool {
    d.len() <= 253
        && d.split('.').count() >= 2
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl OrgView {
    fn new(o: Organization, members: usize) -> OrgView {
        OrgView {
            id: o.id.to_string(),
            members,
            name: o.name,
            domains: o.domains,
            sharing: o.sharing,
        }
    }
}

/// Every organisation with its member count (one pass over the accounts).
pub fn views(state: &AppState) -> ApiResult<Vec<OrgView>> {
    let users = state.store.users()?;
    Ok(state
        .store
        .orgs()?
        .into_iter()
        .map(|o| {
            let members = users.iter().filter(|u| u.org == Some(o.id)).count();
            OrgView::new(o, members)
        })
        .collect())
}

pub fn view(state: &AppState, id: OrgId) -> ApiResult<OrgView> {
    let org = get(state, id)?;
    let members = state.store.members(id)?.len();
    Ok(OrgView::new(org, members))
}

pub fn parse_id(raw: &str) -> ApiResult<OrgId> {
    raw.parse::<uuid::Uuid>()
        .map(OrgId)
        .map_err(|_| not_found())
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::OrganizationNotFound, "no such organisation")
}

pub fn get(state: &AppState, id: OrgId) -> ApiResult<Organization> {
    state.store.org(id)?.ok_or_else(not_found)
}

/// Creates (`id` none) or changes an organisation, audited.
pub async fn save(
    state: &AppState,
    admin: &Caller,
    id: Option<OrgId>,
    input: OrgInput,
) -> ApiResult<Organization> {
    let (name, domains) = input.check()?;
    let mut org = match id {
        Some(id) => get(state, id)?,
        None => Organization::new(&name),
    };
    let listed_before = org.sharing == Sharing::Organization;
    org.name = name;
    org.domains = domains;
    org.sharing = input.sharing;
    if org.sharing == Sharing::Organization && !listed_before && id.is_some() {
        list_tickets_under(state, &org).await?;
    }
    if let Err(e) = state.store.save_org(&org) {
        state.store.list_org(org.id, listed_before);
        return Err(e.into());
    }
    let what = if id.is_some() {
        "org.changed"
    } else {
        "org.created"
    };
    state.store.audit(
        &admin.user.email,
        what,
        &format!("{} (sharing {})", org.name, org.sharing.as_str()),
    )?;
    state.store.durable().await?;
    tracing::info!(admin = %admin.user.email, org = %org.name, sharing = org.sharing.as_str(), "organisation saved");
    Ok(org)
}

/// Lists an organisation's tickets under it before its members are shown that list: they were not
/// while its members saw only their own. New ticket changes are listed from here on, then every
/// earlier ticket is (a scan of all tickets, off the async thread; the admin waits for it). Done
/// before the sharing is saved, so a stop midway leaves the old sharing, not a half list.
async fn list_tickets_under(state: &AppState, org: &Organization) -> ApiResult<()> {
    state.store.list_org(org.id, true);
    let (store, id) = (std::sync::Arc::clone(&state.store), org.id);
    let listed =
        tokio::task::spawn_blocking(move || crate::tickets::list_under_organization(&store, id))
            .await
            .map_err(|e| ApiError::internal(&e))?;
    match listed {
        Ok(n) => {
            tracing::info!(org = %org.name, tickets = n, "organisation's tickets listed under it");
            Ok(())
        }
        Err(e) => {
            state.store.list_org(org.id, false);
            Err(e.into())
        }
    }
}

/// Places an account in an organisation: the one named (found case-insensitively, or created with
/// sharing off), or, when no name is given, the one claiming its e-mail's domain. An empty name
/// with no matching domain leaves it in none.
pub fn place(state: &AppState, user: &mut User, name: Option<&str>) -> ApiResult<()> {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let org = match name {
        Some(name) => Some(find_or_create(state, name)?),
        None => match email_domain(&user.email) {
            Some(domain) => state.store.org_by_domain(domain)?,
            None => None,
        },
    };
    user.org = org.as_ref().map(|o| o.id);
    user.organization = org.map(|o| o.name).unwrap_or_default();
    Ok(())
}

fn find_or_create(state: &AppState, name: &str) -> ApiResult<Organization> {
    let mut v = Validation::default();
    validate::required_line(&mut v, "organization", name, ORGANIZATION_MAX_CHARS);
    v.into_result()?;
    if let Some(org) = state.store.org_by_name(name)? {
        return Ok(org);
    }
    let org = Organization::new(name);
    match state.store.save_org(&org) {
        Ok(()) => {
            tracing::info!(org = %org.name, "organisation created for an account");
            Ok(org)
        }
        // Two first uses raced: the other one created it.
        Err(OpError::Rule(DomainError::OrganizationNameTaken)) => {
            state.store.org_by_name(name)?.ok_or_else(not_found)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::is_domain;

    #[test]
    fn domains_are_plain_host_names() {
        for ok in ["acme.example", "mail.acme-corp.co.id", "x1.io"] {
            assert!(is_domain(ok), "{ok}");
        }
        for bad in [
            "acme",
            "-acme.example",
            "acme..example",
            "ac me.example",
            "acme.example/x",
            "@acme.example",
        ] {
            assert!(!is_domain(bad), "{bad}");
        }
    }
}
