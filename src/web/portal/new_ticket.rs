//! The new-ticket form: what kind of request, subject, description, priority, service and files.
//! It submits through the same use case as `POST /api/v1/tickets`, with typed input.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::customer;
use super::form::{self, FormFailure, PageForm};
use crate::domain::{Kind, Priority, Sharing, Ticket};
use crate::error::{ApiError, ErrorCode};
use crate::service::AppState;
use crate::service::catalogue::{self, Choices};
use crate::service::tickets::{self, Submission};
use crate::web::format::{self, kind_key, priority_key};
use crate::web::{FormErrors, Page, PageError, see_other};

type State = web::Data<AppState>;

#[derive(Template)]
#[template(path = "new_ticket.html")]
struct NewTicketPage<'a> {
    page: &'a Page,
    kind: String,
    subject: String,
    description: String,
    priority: String,
    service: String,
    /// Offered when the customer's organisation shares tickets.
    for_colleague: bool,
    on_behalf_of: String,
    /// The chosen option (`<category>` or `<category>/<subcategory>`).
    category: String,
    /// SDP's categories offered, by category; empty keeps the free-text service.
    categories: Choices,
    form_id: String,
    max_size: String,
    /// `portal.max_attachment_bytes`, for the page's own check before an upload.
    max_bytes: u64,
    errors: FormErrors,
}

impl NewTicketPage<'_> {
    fn kinds(&self) -> Vec<(&'static str, String, String)> {
        [Kind::ProblemReport, Kind::InformationRequest]
            .iter()
            .map(|k| {
                let key = kind_key(*k);
                (
                    k.as_str(),
                    self.page.t(&key),
                    self.page.t(&format!("{key}-hint")),
                )
            })
            .collect()
    }

    fn priorities(&self) -> Vec<(&'static str, String)> {
        Priority::ALL
            .iter()
            .map(|p| (p.as_str(), self.page.t(&priority_key(*p))))
            .collect()
    }
}

pub(super) async fn form(page: Page, state: State) -> Result<HttpResponse, PageError> {
    customer(&page)?;
    Ok(page.render(&NewTicketPage {
        page: &page,
        kind: Kind::ProblemReport.as_str().into(),
        subject: String::new(),
        description: String::new(),
        priority: Priority::Medium.as_str().into(),
        service: String::new(),
        for_colleague: page.require()?.sharing() != Sharing::Off,
        on_behalf_of: String::new(),
        category: String::new(),
        categories: catalogue::choices(&state).map_err(|e| PageError::from_api(page.tr, &e))?,
        form_id: form::new_id(),
        max_size: format::size(state.config.portal.max_attachment_bytes),
        max_bytes: state.config.portal.max_attachment_bytes,
        errors: FormErrors::default(),
    }))
}

pub(super) async fn submit(
    page: Page,
    req: HttpRequest,
    state: State,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let caller = customer(&page)?;
    let form = match form::read_ticket_form(&page, &req, &state, payload).await {
        Ok(form) => form,
        Err(FormFailure::Page(e)) => return Err(e),
        // The text fields are lost only when the upload itself broke; say so.
        Err(FormFailure::Api(e, typed)) => return Ok(again(&page, &state, typed.as_ref(), &e)),
    };
    let Some(kind) = Kind::parse(form.get("kind")) else {
        let e = ApiError::field(
            ErrorCode::InvalidField,
            "kind",
            "choose what kind of request this is",
        );
        return Ok(again(&page, &state, Some(&form), &e));
    };
    let (category, subcategory) = match form.get("category").split_once('/') {
        Some((category, sub)) => (category, Some(sub)),
        None => (form.get("category"), None),
    };
    let submission = Submission {
        kind,
        subject: form.get("subject").to_owned(),
        description: form.get("description").to_owned(),
        priority: Priority::parse(form.get("priority")),
        service: Some(form.get("service").to_owned()),
        on_behalf_of: Some(form.get("on_behalf_of").to_owned()),
        category: Some(category.to_owned()),
        subcategory: subcategory.map(str::to_owned),
    };
    let idempotency = form::key(
        caller,
        "page-ticket",
        &form,
        &[
            form.get("kind"),
            form.get("subject").trim(),
            form.get("description"),
            form.get("priority"),
            form.get("service"),
            form.get("on_behalf_of").trim(),
            form.get("category"),
        ],
    );
    let render = Box::new(|t: &Ticket| t.number.clone());
    let created = match tickets::create(&state, caller, submission, idempotency, render).await {
        Ok(created) => created,
        Err(e) if e.status().is_client_error() => {
            return Ok(again(&page, &state, Some(&form), &e));
        }
        Err(e) => return Err(PageError::from_api(page.tr, &e)),
    };
    let ticket = created
        .ticket
        .map(|id| state.store.ticket(id))
        .transpose()
        .map_err(page.store())?
        .flatten();
    let Some(ticket) = ticket else {
        // A replay of a form sent before tickets were recorded with their replies.
        return Ok(see_other("/tickets", Some("ticket-created"), &req));
    };
    let form_id = form.get("form_id").to_owned();
    let flash = match form::attach_all(&state, caller, &ticket, form.files, &form_id).await {
        Ok(()) => "ticket-created",
        Err(e) => {
            tracing::warn!(error = %e, ticket = %ticket.number, "a file of a new ticket was not attached");
            "ticket-created-file-failed"
        }
    };
    Ok(see_other(
        &format!("/tickets/{}", ticket.number),
        Some(flash),
        &req,
    ))
}

/// The form again, with what was typed and what is wrong.
fn again(page: &Page, state: &AppState, form: Option<&PageForm>, e: &ApiError) -> HttpResponse {
    let max_size = format::size(state.config.portal.max_attachment_bytes);
    let mut errors = form::localized(page, FormErrors::from_api(page.tr, e), &max_size);
    // One select holds both: the subcategory's error shows on it.
    if let Some(message) = errors.fields.remove("subcategory") {
        errors.fields.entry("category".into()).or_insert(message);
    }
    if form.is_some_and(|f| !f.files.is_empty()) {
        errors
            .fields
            .entry("file".into())
            .or_insert_with(|| page.t("form-files-again"));
    }
    let get = |name: &str| form.map_or(String::new(), |f| f.get(name).to_owned());
    page.render_status(
        form::form_status(e),
        &NewTicketPage {
            page,
            kind: get("kind"),
            subject: get("subject"),
            description: get("description"),
            priority: get("priority"),
            service: get("service"),
            for_colleague: page
                .caller
                .as_ref()
                .is_some_and(|c| c.sharing() != Sharing::Off),
            on_behalf_of: get("on_behalf_of"),
            category: get("category"),
            categories: catalogue::choices(state).unwrap_or(Choices {
                groups: Vec::new(),
                required: false,
            }),
            form_id: form.map_or_else(form::new_id, |f| f.get("form_id").to_owned()),
            max_size,
            max_bytes: state.config.portal.max_attachment_bytes,
            errors,
        },
    )
}
