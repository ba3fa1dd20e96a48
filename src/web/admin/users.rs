//! Accounts: the list (with each account's API tokens, each revocable), a new account, and per
//! account disable/enable, a new password, or an API token (shown once). The same use cases as
//! `/api/v1/admin/users[/{id}/actions|tokens]`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AdminPage;
use crate::domain::{Role, UserId};
use crate::error::{ApiError, ErrorCode};
use crate::service::AppState;
use crate::service::accounts::{self, AccountAction, NewAccount};
use crate::web::format::{self, When};
use crate::web::{FormErrors, Page, PageError, see_other};

type State = web::Data<AppState>;

pub(super) struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: &'static str,
    pub organization: String,
    pub disabled: bool,
    pub me: bool,
    pub tokens: Vec<TokenRow>,
}

/// An API token of the account: what it is called, when it was last used, when it expires.
pub(super) struct TokenRow {
    pub id: String,
    pub name: String,
    pub last_used: Option<When>,
    pub expires: When,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    page: &'a Page,
    rows: Vec<UserRow>,
    new_token: Option<(String, String)>,
    email: String,
    name: String,
    role: String,
    organization: String,
    /// Existing organisation names, offered as the field is typed.
    orgs: Vec<String>,
    errors: FormErrors,
}

fn users_page<'a>(admin: &'a AdminPage, state: &AppState) -> Result<UsersPage<'a>, PageError> {
    let page = &admin.page;
    let mut users = state.store.users().map_err(page.store())?;
    users.sort_by(|a, b| a.email.cmp(&b.email));
    let mut rows = Vec::with_capacity(users.len());
    for u in &users {
        let tokens = accounts::tokens(state, u.id)
            .map_err(page.api())?
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                last_used: t.last_used_at.map(format::when),
                expires: format::when(t.expires_at),
            })
            .collect();
        rows.push(UserRow {
            id: u.id.0.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role.as_str(),
            organization: u.organization.clone(),
            disabled: u.disabled,
            me: u.id == admin.admin().user.id,
            tokens,
        });
    }
    Ok(UsersPage {
        page,
        rows,
        new_token: None,
        email: String::new(),
        name: String::new(),
        role: Role::Customer.as_str().into(),
        organization: String::new(),
        orgs: state
            .store
            .orgs()
            .map_err(page.store())?
            .into_iter()
            .map(|o| o.name)
            .collect(),
        errors: FormErrors::default(),
    })
}

pub(super) async fn list(admin: AdminPage, state: State) -> Result<HttpResponse, PageError> {
    Ok(admin.page.render(&users_page(&admin, &state)?))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewUserForm {
    email: String,
    name: String,
    password: String,
    role: String,
    organization: String,
}

pub(super) async fn create(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let form: NewUserForm = page.submitted(&req, &body)?;
    let created = match Role::parse(&form.role) {
        Some(role) => {
            let account = NewAccount {
                email: form.email.clone(),
                name: form.name.clone(),
                password: form.password,
                role,
                organization: form.organization.clone(),
            };
            accounts::create_account(&state, admin.admin(), account).await
        }
        None => Err(ApiError::field(
            ErrorCode::InvalidField,
            "role",
            "must be customer, admin or integration",
        )),
    };
    match created {
        Ok(_) => Ok(see_other("/admin/users", Some("user-created"), &req)),
        Err(e) => {
            let mut body = users_page(&admin, &state)?;
            body.email = form.email;
            body.name = form.name;
            body.role = form.role;
            body.organization = form.organization;
            body.errors = FormErrors::from_api(page.tr, &e);
            Ok(page.render_status(e.status(), &body))
        }
    }
}

/// The buttons and fields of a user row.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum FormAction {
    Disable,
    Enable,
    Password,
    Token,
    Organization,
}

#[derive(Deserialize)]
struct UserActionForm {
    action: FormAction,
    #[serde(default)]
    password: String,
    #[serde(default)]
    organization: String,
}

pub(super) async fn change(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    let form: UserActionForm = page.submitted(&req, &body)?;
    let id = id
        .parse::<uuid::Uuid>()
        .map(UserId)
        .map_err(|_| PageError::not_found(page.tr))?;
    let (action, flash) = match form.action {
        FormAction::Disable => (AccountAction::Disable, "user-disabled"),
        FormAction::Enable => (AccountAction::Enable, "user-enabled"),
        FormAction::Password => (
            AccountAction::ResetPassword {
                password: form.password,
            },
            "password-reset",
        ),
        FormAction::Token => (AccountAction::IssueToken, "token-issued"),
        FormAction::Organization => (
            AccountAction::SetOrganization {
                organization: form.organization,
            },
            "user-moved",
        ),
    };
    let (user, issued) = match accounts::change_account(&state, admin.admin(), id, action).await {
        Ok(done) => done,
        Err(e) if e.code == ErrorCode::InvalidField => {
            let mut body = users_page(&admin, &state)?;
            body.errors = FormErrors::from_api(page.tr, &e);
            return Ok(page.render_status(StatusCode::UNPROCESSABLE_ENTITY, &body));
        }
        Err(e) if e.code == ErrorCode::UserNotFound => return Err(PageError::not_found(page.tr)),
        Err(e) => return Err(PageError::from_api(page.tr, &e)),
    };
    if let Some(issued) = issued {
        // The token is shown once, on this answer, and never stored in the clear.
        let mut body = users_page(&admin, &state)?;
        body.new_token = Some((user.email, issued.token));
        return Ok(page.render(&body));
    }
    Ok(see_other("/admin/users", Some(flash), &req))
}

/// Revokes one API token of an account (audited), from its row's list.
pub(super) async fn revoke_token(
    admin: AdminPage,
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let page = &admin.page;
    page.submitted::<serde::de::IgnoredAny>(&req, &body)?;
    let (id, token) = path.into_inner();
    let id = id
        .parse::<uuid::Uuid>()
        .map(UserId)
        .map_err(|_| PageError::not_found(page.tr))?;
    accounts::revoke_token(&state, admin.admin(), id, &token)
        .await
        .map_err(page.api())?;
    Ok(see_other("/admin/users", Some("token-revoked"), &req))
}
