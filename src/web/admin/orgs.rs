//! Organisations: the list with members and sharing, a new one, and per organisation its name,
//! e-mail domains and sharing. The same use cases as `/api/v1/admin/organizations`.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminPage;
use crate::domain::{OrgId, Sharing};
use crate::error::{ApiError, ErrorCode};
use crate::service::AppState;
use crate::service::orgs::{self, OrgInput, OrgView};
use crate::web::{FormErrors, Page, PageError, see_other};

type State = web::Data<AppState>;

#[derive(Template)]
#[template(path = "admin_orgs.html")]
struct OrgsPage<'a> {
    page: &'a Page,
    rows: Vec<OrgView>,
    /// The organisation whose form came back with errors (`None`: the new one's).
    failed: Option<String>,
    name: String,
    domains: String,
    sharing: String,
    errors: FormErrors,
}

impl OrgsPage<'_> {
    fn modes(&self) -> Vec<(&'static str, String)> {
        Sharing::ALL
            .iter()
            .map(|m| (m.as_str(), self.page.t(&format!("sharing-{}", m.as_str()))))
            .collect()
    }
}

fn orgs_page<'a>(admin: &'a AdminPage, state: &AppState) -> Result<OrgsPage<'a>, PageError> {
    let page = &admin.page;
    Ok(OrgsPage {
        page,
        rows: orgs::views(state).map_err(page.api())?,
        failed: None,
        name: String::new(),
        domains: String::new(),
        sharing: Sharing::Off.as_str().into(),
        errors: FormErrors::default(),
    })
}

pub(super) async fn list(admin: AdminPage, state: State) -> Result<HttpResponse, PageError> {
    Ok(admin.page.render(&orgs_page(&admin, &state)?))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OrgForm {
    name: String,
    /// Comma- or space-separated.
    domains: String,
    sharing: String,
}

impl OrgForm {
    fn input(&self) -> Result<OrgInput, ApiError> {
        let sharing = Sharing::parse(&self.sharing).ok_or_else(|| {
            ApiError::field(
                ErrorCode::InvalidField,
                "sharing",
                "must be off, participants or organization",
            )
        })?;
        Ok(OrgInput {
            name: self.name.clone(),
            domains: self
                .domains
                .split([',', ' ', '\n'])
                .map(str::to_owned)
                .collect(),
            sharing,
        })
    }
}

pub(super) async fn create(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    save(admin, req, state, None, body).await
}

pub(super) async fn change(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let id = orgs::parse_id(&id).map_err(|_| PageError::not_found(admin.page.tr))?;
    save(admin, req, state, Some(id), body).await
}

async fn save(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    id: Option<OrgId>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let form: OrgForm = page.submitted(&req, &body)?;
    let saved = match form.input() {
        Ok(input) => orgs::save(&state, admin.admin(), id, input).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => Ok(see_other("/admin/organizations", Some("org-saved"), &req)),
        Err(e) if e.code == ErrorCode::OrganizationNotFound => Err(PageError::not_found(page.tr)),
        Err(e) if e.status().is_client_error() => {
            let mut body = orgs_page(&admin, &state)?;
            body.failed = id.map(|id| id.to_string());
            body.name = form.name;
            body.domains = form.domains;
            body.sharing = form.sharing;
            body.errors = FormErrors::from_api(page.tr, &e);
            Ok(page.render_status(e.status(), &body))
        }
        Err(e) => Err(PageError::from_api(page.tr, &e)),
    }
}
