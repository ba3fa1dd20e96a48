//! What the sync spends of SDP's patience, counted in calls against the fake at its default budget
//! (60 calls a minute, like deskbridge's default): idle polls, changed and unchanged requests,
//! customers' changes while the poll has work queued, outages and the backfill.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::fake_sdp::{FakeSdp, Fault, Profile};
use crate::common::{Desk, eventually};

both_profiles!(
    an_idle_poll_spends_one_call_or_two,
    a_changed_request_is_read_once_and_an_unchanged_one_never,
);

fn api_calls(fake: &FakeSdp) -> Vec<String> {
    fake.calls()
        .iter()
        .filter(|c| c.is_api())
        .map(|c| c.endpoint.clone())
        .collect()
}

async fn an_idle_poll_spends_one_call_or_two(profile: Profile) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    desk.settled().await;
    desk.fake.reset_calls();
    desk.poll_once().await;
    // The changes since the cursor by `last_updated_time`, and the requests never edited by
    // `created_time` (their `last_updated_time` is null).
    assert_eq!(
        api_calls(&desk.fake),
        ["GET /requests", "GET /requests"],
        "an idle poll with imports on"
    );

    let desk = Desk::start_with(FakeSdp::start(profile).await, |c| {
        c.sdp.import_requester_requests = false;
    })
    .await;
    desk.settled().await;
    desk.fake.reset_calls();
    desk.poll_once().await;
    assert_eq!(
        api_calls(&desk.fake),
        ["GET /requests"],
        "an idle poll with imports off"
    );
}

async fn a_changed_request_is_read_once_and_an_unchanged_one_never(profile: Profile) {
    let desk = Desk::start_with(FakeSdp::start(profile).await, |_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    let a = alice.ticket("Changes in SDP").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = alice.ticket("Stays as it is").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let request_a = desk.synced(&alice, &a).await;
    let request_b = desk.synced(&alice, &b).await;
    desk.settled().await;
    desk.poll_once().await;
    desk.fake.set_status(&request_a, "On Hold", None);
    desk.fake.reset_calls();
    desk.poll_once().await;
    let calls = api_calls(&desk.fake);
    let reads = |id: &str| {
        desk.fake
            .calls()
            .iter()
            .filter(|c| c.method == "GET" && c.path.ends_with(&format!("/requests/{id}")))
            .count()
    };
    assert_eq!(reads(&request_a), 1, "{calls:?}");
    assert_eq!(reads(&request_b), 0, "{calls:?}");
    // A status change costs the two list calls of the poll and one read.
    assert!(calls.len() <= 3, "{calls:?}");
    let (_, t) = alice.get(&format!("/api/v1/tickets/{a}")).await;
    assert_eq!(t["status"], "pending");

    desk.fake.reset_calls();
    desk.poll_once().await;
    assert_eq!(
        reads(&request_a),
        0,
        "read already: {:?}",
        api_calls(&desk.fake)
    );
}

#[actix_web::test]
async fn a_customer_message_reaches_sdp_within_two_seconds_while_the_poll_has_100_to_read() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    // 100 of Alice's requests are in SDP already; the backfill takes them in.
    let ids: Vec<String> = (0..100)
        .map(|i| fake.raise_request(&format!("Raised {i}"), "alice@example.com"))
        .collect();
    let desk = Desk::start_with_customers(fake, &["alice@example.com"], |_| {}).await;
    let alice = desk
        .app
        .login("alice@example.com", crate::common::PASSWORD)
        .await;
    let mine = alice.ticket("Mine").await["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = desk.synced(&alice, &mine).await;
    desk.settled().await;
    // Every one of them changes: reading them all takes the poll minutes at this budget.
    for id in &ids {
        desk.fake.set_status(id, "In Progress", None);
    }
    let (status, _) = desk.admin.post("/api/v1/admin/sync/run", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    eventually(Duration::from_mins(1), || async {
        let health = desk.health().await;
        let in_window = health["budget"]["in_window"].as_u64().unwrap_or(0);
        (in_window >= 10).then_some(())
    })
    .await;
    let sent = Instant::now();
    let (status, body) = alice
        .post(
            &format!("/api/v1/tickets/{mine}/messages"),
            &json!({"body": "Any news?"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually(Duration::from_secs(10), || async {
        desk.fake
            .notes(&request)
            .iter()
            .any(|n| n.description.starts_with("Any news?"))
            .then_some(())
    })
    .await;
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(2), "the message took {took:?}");
    let health = desk.health().await;
    let waiting = &health["budget"]["waiting"];
    assert!(
        waiting
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["lane"] == "poll" && w["calls"].as_u64() > Some(0))
            || health["budget"]["in_window"].as_u64() >= Some(50),
        "the poll was still busy: {health}"
    );
}

#[actix_web::test]
async fn a_40_second_outage_costs_a_call_every_2_seconds_and_loses_nothing() {
    let desk = Desk::start(|_| {}).await;
    let alice = desk.app.customer("alice@example.com").await;
    desk.settled().await;
    desk.fake.set_fault(Fault::Down503);
    let down = Instant::now();
    for i in 0..20 {
        alice.ticket(&format!("Queued {i}")).await;
    }
    // The outage lasts 40 s; what the appliance sends meanwhile is counted.
    let up = down + Duration::from_secs(40);
    eventually(Duration::from_mins(1), || async {
        (Instant::now() >= up).then_some(())
    })
    .await;
    let during = desk.fake.calls_between(down, up).len();
    assert!(during <= 20, "{during} calls during a 40 s outage");
    let health = desk.health().await;
    assert_eq!(health["budget"]["sdp"]["state"], "unreachable", "{health}");
    desk.fake.clear_faults();
    // Within seconds of SDP's return, every ticket is in SDP once.
    eventually(Duration::from_secs(30), || async {
        (desk.fake.requests().len() == 20 && desk.health().await["queue_depth"] == 0).then_some(())
    })
    .await;
    assert_eq!(desk.fake.requests().len(), 20);
    let health = desk.health().await;
    assert_eq!(health["dead_letters"], json!([]), "{health}");
    assert_eq!(health["budget"]["sdp"]["state"], "reachable", "{health}");
}

#[actix_web::test]
async fn a_backfill_of_10000_requests_lists_every_ticket_before_reading_any_details() {
    const REQUESTS: usize = 10_000;
    let fake = FakeSdp::start(Profile::OnPrem).await;
    // Alice's history in SDP before deskbridge is connected.
    for i in 0..REQUESTS {
        fake.raise_request(&format!("History {i}"), "alice@example.com");
    }
    let desk = Desk::start_with_customers(fake, &["alice@example.com"], |_| {}).await;
    let alice = desk
        .app
        .login("alice@example.com", crate::common::PASSWORD)
        .await;
    let health = desk.settled().await;
    assert_eq!(health["backfill"]["tickets_created"], REQUESTS, "{health}");
    let (_, list) = alice.get("/api/v1/tickets?per_page=1").await;
    assert_eq!(list["total"], REQUESTS);
    // The first pass made every ticket from list rows alone: no request was read before its
    // last list call.
    let calls = desk.fake.calls();
    // The first pass's list calls ask for the fields a ticket needs, the request type among them.
    let first_pass = |c: &&crate::common::fake_sdp::CallRecord| {
        c.endpoint == "GET /requests"
            && c.input_data
                .as_deref()
                .is_some_and(|i| i.contains("request_type"))
    };
    let last_list = calls
        .iter()
        .filter(first_pass)
        .map(|c| c.seq)
        .max()
        .unwrap();
    let first_read = calls
        .iter()
        .filter(|c| c.endpoint == "GET /requests/{id}")
        .map(|c| c.seq)
        .min();
    assert!(
        first_read.is_none_or(|read| read > last_list),
        "a detail read (#{first_read:?}) came before the last list call (#{last_list})"
    );
    let lists = calls.iter().filter(first_pass).count();
    assert!(
        lists <= REQUESTS / 100 + 5,
        "{lists} list calls for {REQUESTS} requests"
    );
}

#[actix_web::test]
async fn a_ticket_a_customer_opens_gets_its_details_ahead_of_the_backfill() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let mut last = String::new();
    for i in 0..200 {
        last = fake.raise_request_with(json!({
            "subject": format!("History {i}"),
            "description": format!("<p>What happened, part {i}</p>"),
            "requester": {"email_id": "alice@example.com"},
        }));
    }
    fake.add_note(&last, "We looked into it", true);
    let desk = Desk::start_with_customers(fake, &["alice@example.com"], |_| {}).await;
    let alice = desk
        .app
        .login("alice@example.com", crate::common::PASSWORD)
        .await;
    desk.settled().await;
    let (_, list) = alice.get("/api/v1/tickets?q=history%20199").await;
    let number = list["items"][0]["number"].as_str().unwrap().to_owned();
    let (_, t) = alice.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(t["description"], "", "the list row carried no description");
    // Opening it asked for its details; the backfill would reach it only minutes from now.
    let opened = Instant::now();
    let t = eventually(Duration::from_secs(10), || async {
        let (_, t) = alice.get(&format!("/api/v1/tickets/{number}")).await;
        (t["description"] == "What happened, part 199").then_some(t)
    })
    .await;
    assert!(opened.elapsed() < Duration::from_secs(5), "{t}");
    let (_, messages) = alice
        .get(&format!("/api/v1/tickets/{number}/messages"))
        .await;
    assert_eq!(messages["items"][0]["body"], "We looked into it");
    let health = desk.health().await;
    assert!(
        health["backfill"]["details_fetched"].as_u64() < Some(150),
        "the backfill had not got there: {health}"
    );
}
