//! The service desk's promise: SDP's due times and overdue flags shown to the customer (API,
//! ticket page, dashboard column and "overdue" filter), and its response and resolution times
//! mirrored into the history once each.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::fake_sdp::{FakeSdp, Profile};
use crate::common::visitor::signed_in;
use crate::common::{Api, Desk, eventually};

both_profiles!(
    due_times_and_overdue_flags_from_sdp_reach_the_api_and_the_pages,
    the_response_and_resolution_times_are_mirrored_into_the_history_once,
    an_overdue_flag_sdp_raises_without_an_edit_is_found_by_the_sweep,
);

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// A portal time (RFC 3339) in ms, to compare with what SDP sent.
fn ms(v: &Value) -> i64 {
    let at = OffsetDateTime::parse(v.as_str().unwrap_or_else(|| panic!("{v}")), &Rfc3339).unwrap();
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap()
}

async fn new_ticket(desk: &Desk, customer: &Api, subject: &str) -> (String, String) {
    let t = customer.ticket(subject).await;
    let number = t["number"].as_str().unwrap().to_owned();
    let request = desk.synced(customer, &number).await;
    (number, request)
}

fn numbers(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|t| t["number"].as_str().unwrap().to_owned())
        .collect()
}

async fn due_times_and_overdue_flags_from_sdp_reach_the_api_and_the_pages(profile: Profile) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (late, late_request) = new_ticket(&desk, &alice, "Printer on fire").await;
    let (fine, fine_request) = new_ticket(&desk, &alice, "New mouse").await;
    // Both due later by the clock; SDP (which knows its business hours) flags one overdue.
    let respond = now_ms() + 3_600_000;
    let resolve = now_ms() + 86_400_000;
    desk.fake
        .set_due_times(&late_request, Some(respond), Some(resolve), (true, false));
    desk.fake
        .set_due_times(&fine_request, Some(respond), Some(resolve), (false, false));
    let t = desk
        .until(&alice, &late, &late_request, |t| {
            t["respond_overdue"] == true
        })
        .await;
    assert_eq!(ms(&t["respond_by"]), respond, "{t}");
    assert_eq!(ms(&t["due_by"]), resolve, "{t}");
    assert_eq!(t["resolve_overdue"], false, "{t}");
    assert_eq!(t["overdue"], true, "{t}");
    let f = desk
        .until(&alice, &fine, &fine_request, |t| !t["respond_by"].is_null())
        .await;
    assert_eq!(ms(&f["due_by"]), resolve, "{f}");
    assert_eq!(f["overdue"], false, "{f}");

    // The API's filter.
    let (status, list) = alice.get("/api/v1/tickets?overdue=true").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(numbers(&list), vec![late.clone()], "{list}");
    let (_, all) = alice.get("/api/v1/tickets?overdue=false").await;
    assert_eq!(numbers(&all).len(), 2, "{all}");
    let (status, body) = alice.get("/api/v1/tickets?overdue=maybe").await;
    assert!(status.is_client_error(), "{status} {body}");

    // The ticket page: both promises as localisable times, the late one marked.
    let mut page = signed_in(&desk.app, "alice@example.com").await;
    let html = page.get(&format!("/tickets/{late}")).await.body;
    let respond_iso = t["respond_by"].as_str().unwrap();
    let resolve_iso = t["due_by"].as_str().unwrap();
    for needle in [
        "We will respond by",
        "We aim to resolve by",
        &format!("<time datetime=\"{respond_iso}\">"),
        &format!("<time datetime=\"{resolve_iso}\">"),
        "data-overdue=\"respond\"",
    ] {
        assert!(html.contains(needle), "{needle}: {html}");
    }
    assert!(!html.contains("data-overdue=\"resolve\""), "{html}");
    let html = page.get(&format!("/tickets/{fine}")).await.body;
    assert!(html.contains("We will respond by"), "{html}");
    assert!(!html.contains("data-overdue"), "{html}");

    // The dashboard: the column, and the filter.
    let html = page.get("/tickets").await.body;
    assert!(
        html.contains(&format!("<time datetime=\"{respond_iso}\">")),
        "{html}"
    );
    assert_eq!(html.matches("class=\"tag overdue\"").count(), 1, "{html}");
    let html = page.get("/tickets?overdue=true").await.body;
    assert!(html.contains(&format!("/tickets/{late}\"")), "{html}");
    assert!(!html.contains(&format!("/tickets/{fine}\"")), "{html}");
    assert!(
        html.contains("name=\"overdue\" type=\"checkbox\" value=\"true\" checked"),
        "{html}"
    );
    let html = page
        .get(&format!("/tickets?overdue=true&q={}", "mouse"))
        .await
        .body;
    assert!(!html.contains(&format!("/tickets/{fine}\"")), "{html}");

    // The flag lowered in SDP (its due times moved on): the ticket is no longer listed.
    desk.fake
        .set_due_times(&late_request, Some(respond), Some(resolve), (false, false));
    desk.until(&alice, &late, &late_request, |t| t["overdue"] == false)
        .await;
    let (_, list) = alice.get("/api/v1/tickets?overdue=true").await;
    assert!(numbers(&list).is_empty(), "{list}");
}

async fn the_response_and_resolution_times_are_mirrored_into_the_history_once(profile: Profile) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (number, request) = new_ticket(&desk, &alice, "VPN down").await;
    let responded = now_ms() - 60_000;
    desk.fake.set_responded(&request, responded);
    let t = desk
        .until(&alice, &number, &request, |t| !t["responded_at"].is_null())
        .await;
    assert_eq!(ms(&t["responded_at"]), responded, "{t}");
    desk.fake.set_status(&request, "Resolved", None);
    desk.until(&alice, &number, &request, |t| t["status"] == "resolved")
        .await;
    // Later reads of the same times add nothing.
    desk.fake
        .edit_request(&request, json!({"subject": "VPN down again"}));
    desk.until(&alice, &number, &request, |t| {
        t["subject"] == "VPN down again"
    })
    .await;
    let events = eventually(Duration::from_secs(10), || async {
        let (_, e) = alice.get(&format!("/api/v1/tickets/{number}/events")).await;
        e["items"].as_array().cloned()
    })
    .await;
    let of = |kind: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect()
    };
    let mirrored = of("sdp_responded");
    assert_eq!(mirrored.len(), 1, "{events:?}");
    assert_eq!(ms(&mirrored[0]["to"]), responded, "{events:?}");
    let resolved = of("sdp_resolved");
    assert_eq!(resolved.len(), 1, "{events:?}");
    let sdp_resolved = desk.fake.request(&request).unwrap()["resolved_time"]["value"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    assert_eq!(ms(&resolved[0]["to"]), sdp_resolved, "{events:?}");

    // The page shows them at SDP's times, in both languages.
    let mut page = signed_in(&desk.app, "alice@example.com").await;
    let html = page.get(&format!("/tickets/{number}")).await.body;
    assert!(html.contains("The service desk responded"), "{html}");
    assert!(html.contains("Resolved by the service desk"), "{html}");
    let iso = mirrored[0]["to"].as_str().unwrap();
    assert!(
        html.contains(&format!("<time datetime=\"{iso}\">")),
        "{html}"
    );
}

async fn an_overdue_flag_sdp_raises_without_an_edit_is_found_by_the_sweep(profile: Profile) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let (number, request) = new_ticket(&desk, &alice, "Disk full").await;
    let resolve = now_ms() + 86_400_000;
    desk.fake
        .set_due_times(&request, None, Some(resolve), (false, false));
    desk.until(&alice, &number, &request, |t| !t["due_by"].is_null())
        .await;
    // SDP's scheduler: the flag goes up, `last_updated_time` stays.
    desk.fake.set_overdue_flags(&request, false, true);
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        desk.sweep().await;
        let next = Instant::now() + Duration::from_secs(5);
        while Instant::now() < next {
            let (_, t) = alice.get(&format!("/api/v1/tickets/{number}")).await;
            if t["resolve_overdue"] == true {
                assert_eq!(t["overdue"], true, "{t}");
                return;
            }
            assert!(Instant::now() < deadline, "never overdue: {t}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
