//! Services from SDP: the admin fetches SDP's categories and subcategories into the catalogue and
//! offers some; the new-ticket form (and the API) take only those, and the request SDP receives
//! carries their ids. Without SDP the form keeps its free-text service.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::common::fake_sdp::{FakeSdp, Fault, Profile};
use crate::common::visitor::{Visitor, hidden, signed_in};
use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, Desk, TestApp, error_code, eventually};

both_profiles!(
    offered_categories_chosen_in_the_form_and_through_the_api_reach_sdp,
    a_failed_fetch_keeps_the_last_catalogue_and_says_when,
    the_sweep_refreshes_an_old_catalogue_once_categories_are_offered,
);

async fn admin_pages(app: &TestApp) -> Visitor {
    let mut admin = Visitor::new(app);
    let page = admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    admin
}

/// "Fetch from SDP" on the mapping page; returns the page after the redirect and the list calls
/// the fetch made (categories, subcategories).
async fn fetch(admin: &mut Visitor, fake: &FakeSdp) -> (String, (usize, usize)) {
    let csrf = admin.csrf("/admin/mapping").await;
    // The mapping page reads SDP's lists itself: count only the fetch's calls.
    fake.reset_calls();
    let page = admin
        .post("/admin/mapping/services/fetch", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let calls = category_calls(fake);
    (admin.get("/admin/mapping").await.body, calls)
}

/// The value of the checkbox whose label follows `legend` (a category) and reads `label`.
fn offer_value(page: &str, legend: &str, label: &str) -> String {
    let start = page
        .find(&format!("<legend>{legend}</legend>"))
        .unwrap_or_else(|| panic!("{legend} is listed: {page}"));
    let rest = &page[start..];
    let end = rest
        .find(&format!(">{label}</label>"))
        .unwrap_or_else(|| panic!("{legend}: {label} is listed: {page}"));
    let before = &rest[..end];
    let at = before.rfind("value=\"").expect("a checkbox value") + "value=\"".len();
    before[at..].split('"').next().expect("value").to_owned()
}

async fn offer(admin: &mut Visitor, values: &[&str], required: bool) {
    let csrf = admin.csrf("/admin/mapping").await;
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend(values.iter().map(|v| ("offer", *v)));
    if required {
        form.push(("required", "on"));
    }
    let page = admin.post("/admin/mapping/services", &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

fn new_ticket_form(csrf: &str, subject: &str, field: (&str, &str)) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("csrf", csrf.to_owned())
        .text("form_id", "f1")
        .text("kind", "problem_report")
        .text("subject", subject.to_owned())
        .text("description", "It broke.")
        .text("priority", "medium")
        .text(field.0.to_owned(), field.1.to_owned())
}

fn category_calls(fake: &FakeSdp) -> (usize, usize) {
    let calls = fake.calls();
    let lists = |end: &str| {
        calls
            .iter()
            .filter(|c| c.method == "GET" && c.path.ends_with(end))
            .count()
    };
    (lists("/categories"), lists("/subcategories"))
}

fn field_refused(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(body), "invalid-field", "{body}");
    assert!(body["error"]["fields"][field].is_string(), "{body}");
}

async fn offered_categories_chosen_in_the_form_and_through_the_api_reach_sdp(profile: Profile) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    let mut admin = admin_pages(&desk.app).await;
    let alice = desk.app.customer("alice@example.com").await;
    let mut alice_pages = signed_in(&desk.app, "alice@example.com").await;

    // Nothing offered yet: the form has its free-text service.
    let form = alice_pages.get("/tickets/new").await.body;
    assert!(form.contains("name=\"service\""), "{form}");
    assert!(!form.contains("id=\"category\""), "{form}");
    let page = admin.get("/admin/mapping").await.body;
    assert!(
        page.contains("Not fetched from ServiceDesk Plus yet."),
        "{page}"
    );

    // One call for the categories (one page), one per category for its subcategories.
    let (page, calls) = fetch(&mut admin, &desk.fake).await;
    assert_eq!(calls, (1, 4));
    assert!(page.contains("Fetched from ServiceDesk Plus at"), "{page}");
    let printer = offer_value(&page, "Hardware", "Printer");
    let laptop = offer_value(&page, "Hardware", "Laptop");
    let vpn = offer_value(&page, "Network", "VPN");
    let general = offer_value(&page, "General", "The category alone");
    offer(&mut admin, &[&printer, &vpn, &general], false).await;
    let page = admin.get("/admin/mapping").await.body;
    assert!(
        page.contains(&format!("value=\"{printer}\" checked")),
        "{page}"
    );
    assert!(
        !page.contains(&format!("value=\"{laptop}\" checked")),
        "{page}"
    );

    // The form offers only those, each under its category.
    let form = alice_pages.get("/tickets/new").await.body;
    assert!(
        form.contains("<select id=\"category\" name=\"category\""),
        "{form}"
    );
    assert!(form.contains("<optgroup label=\"Hardware\">"), "{form}");
    for shown in ["Hardware — Printer", "Network — VPN", ">General<"] {
        assert!(form.contains(shown), "{shown}: {form}");
    }
    assert!(!form.contains("Laptop"), "{form}");
    assert!(!form.contains("name=\"service\""), "{form}");

    // Chosen in the form: the ticket page shows it, and SDP's request carries both ids.
    let csrf = hidden(&form, "csrf");
    let page = alice_pages
        .post_multipart(
            "/tickets/new",
            new_ticket_form(&csrf, "Printer jams", ("category", &printer)),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let at = page.location.expect("the ticket page");
    let shown = alice_pages.get(&at).await.body;
    assert!(shown.contains("Hardware — Printer"), "{shown}");
    let number = at.trim_start_matches("/tickets/");
    let request = desk.synced(&alice, number).await;
    let sent = desk.fake.request(&request).expect("the request");
    let (hardware, printer_id) = printer.split_once('/').expect("category/subcategory");
    assert_eq!(sent["category"]["id"], hardware, "{sent}");
    assert_eq!(sent["subcategory"]["id"], printer_id, "{sent}");

    // Through the API, by ids.
    let (network, vpn_id) = vpn.split_once('/').expect("category/subcategory");
    let (status, t) = alice
        .post(
            "/api/v1/tickets",
            &json!({"kind": "problem_report", "subject": "VPN drops", "category": network, "subcategory": vpn_id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["category"]["category"]["name"], "Network", "{t}");
    assert_eq!(t["category"]["subcategory"]["name"], "VPN", "{t}");
    let request = desk
        .synced(&alice, t["number"].as_str().expect("number"))
        .await;
    let sent = desk.fake.request(&request).expect("the request");
    assert_eq!(sent["category"]["id"], network, "{sent}");
    assert_eq!(sent["subcategory"]["id"], vpn_id, "{sent}");

    refusals(&alice, &mut alice_pages, &laptop).await;

    // Required: a ticket without one is refused.
    offer(&mut admin, &[&printer], true).await;
    let (status, body) = alice
        .post(
            "/api/v1/tickets",
            &json!({"kind": "problem_report", "subject": "No category"}),
        )
        .await;
    field_refused(status, &body, "category");
}

/// What is not offered (Laptop) is refused, naming the field.
async fn refusals(alice: &Api, alice_pages: &mut Visitor, laptop: &str) {
    // What is not offered is refused, naming the field.
    let (hardware, laptop_id) = laptop.split_once('/').expect("category/subcategory");
    let refused = |category: &str, subcategory: Option<&str>| json!({"kind": "problem_report", "subject": "x", "category": category, "subcategory": subcategory});
    let (status, body) = alice
        .post("/api/v1/tickets", &refused(hardware, Some(laptop_id)))
        .await;
    field_refused(status, &body, "subcategory");
    let (status, body) = alice
        .post("/api/v1/tickets", &refused("424242", None))
        .await;
    field_refused(status, &body, "category");
    let form = alice_pages.get("/tickets/new").await.body;
    let page = alice_pages
        .post_multipart(
            "/tickets/new",
            new_ticket_form(&hidden(&form, "csrf"), "Laptop", ("category", laptop)),
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(page.body.contains("href=\"#category\""), "{}", page.body);
    assert!(page.body.contains("id=\"category-error\""), "{}", page.body);
}

async fn a_failed_fetch_keeps_the_last_catalogue_and_says_when(profile: Profile) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    let mut admin = admin_pages(&desk.app).await;
    let (page, _) = fetch(&mut admin, &desk.fake).await;
    let wifi = offer_value(&page, "Network", "Wi-Fi");
    offer(&mut admin, &[&wifi], false).await;

    desk.app.customer("alice@example.com").await;
    desk.fake.set_fault(Fault::Down503);
    let (page, _) = fetch(&mut admin, &desk.fake).await;
    assert!(page.contains("id=\"services-error\""), "{page}");
    assert!(page.contains("The last fetch failed at"), "{page}");
    assert!(page.contains("Fetched from ServiceDesk Plus at"), "{page}");
    assert!(
        page.contains(&format!("value=\"{wifi}\" checked")),
        "{page}"
    );
    let mut alice = signed_in(&desk.app, "alice@example.com").await;
    let form = alice.get("/tickets/new").await.body;
    assert!(form.contains("Network — Wi-Fi"), "{form}");
}

fn has_subcategory(desk: &Desk, name: &str) -> bool {
    let catalogue = desk.app.state().store.catalogue().expect("the catalogue");
    catalogue
        .categories
        .iter()
        .any(|c| c.subcategories.iter().any(|s| s.name == name))
}

/// Runs a reconciliation sweep and waits until it has finished.
async fn swept(desk: &Desk) {
    let before = desk.health().await["stats"]["last_sweep_ok"].clone();
    desk.sweep().await;
    eventually(Duration::from_mins(1), || async {
        let last = desk.health().await["stats"]["last_sweep_ok"].clone();
        (!last.is_null() && last != before).then_some(())
    })
    .await;
}

async fn the_sweep_refreshes_an_old_catalogue_once_categories_are_offered(profile: Profile) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    desk.settled().await;
    // Nothing offered: the sweep leaves SDP's categories alone.
    desk.fake.reset_calls();
    swept(&desk).await;
    assert_eq!(category_calls(&desk.fake), (0, 0));

    let mut admin = admin_pages(&desk.app).await;
    let (page, _) = fetch(&mut admin, &desk.fake).await;
    let vpn = offer_value(&page, "Network", "VPN");
    offer(&mut admin, &[&vpn], false).await;
    desk.fake.add_subcategory("Network", "Firewall");
    // Fresh: not read again.
    desk.fake.reset_calls();
    swept(&desk).await;
    assert_eq!(category_calls(&desk.fake), (0, 0));
    assert!(!has_subcategory(&desk, "Firewall"));

    // Older than a few hours: the sweep reads it again, every page once.
    let store = &desk.app.state().store;
    let mut old = store.catalogue().expect("the catalogue");
    old.fetched_at = Some(OffsetDateTime::now_utc() - Duration::from_hours(7));
    store.put_catalogue(&old).expect("stored");
    swept(&desk).await;
    assert_eq!(category_calls(&desk.fake), (1, 4));
    assert!(has_subcategory(&desk, "Firewall"));
}

#[actix_web::test]
async fn without_sdp_the_form_keeps_its_free_text_service() {
    let app = TestApp::start().await;
    let mut admin = admin_pages(&app).await;
    let page = admin.get("/admin/mapping").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("ServiceDesk Plus is not configured"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("id=\"services-fetch\""),
        "{}",
        page.body
    );

    let alice_api = app.customer("alice@example.com").await;
    let mut alice = signed_in(&app, "alice@example.com").await;
    let form = alice.get("/tickets/new").await.body;
    assert!(form.contains("name=\"service\""), "{form}");
    assert!(!form.contains("id=\"category\""), "{form}");
    let page = alice
        .post_multipart(
            "/tickets/new",
            new_ticket_form(&hidden(&form, "csrf"), "Mouse broken", ("service", "Desk")),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let at = page.location.expect("the ticket page");
    assert!(alice.get(&at).await.body.contains("Desk"));

    let (status, body) = alice_api
        .post(
            "/api/v1/tickets",
            &json!({"kind": "problem_report", "subject": "x", "category": "1"}),
        )
        .await;
    field_refused(status, &body, "category");

    // The API document says so.
    let (_, doc) = app.anonymous().get("/api/v1/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["ServiceChoice"].is_object(), "{doc}");
    for field in ["category", "subcategory"] {
        let property = &schemas["CreateTicketBody"]["properties"][field];
        assert!(property.is_object(), "{field}: {doc}");
    }
    assert!(
        schemas["TicketView"]["properties"]["category"].is_object(),
        "{doc}"
    );
}
