//! `deskbridge demo` in the browser: the customer's ticket page stays open while, in another
//! window, a reply is typed on the demo's service desk page; it shows up on the customer's page
//! without a reload. The service desk pages are axe clean in both languages.

use std::time::Duration;

use serde_json::Value;

use crate::accessibility::audit;
use crate::common::demo::DemoRun;
use crate::common::eventually;
use crate::harness::{Browser, Driver, Tools, axe_source, turn};

/// The sync may wait for the simulated SDP's budget (60 calls a minute).
const SYNCED: Duration = Duration::from_secs(90);

#[actix_web::test]
#[allow(
    clippy::await_holding_lock,
    reason = "each test runs on its own thread and runtime: waiting for the turn blocks only it"
)]
async fn a_reply_typed_on_the_demo_service_desk_reaches_the_customers_page_live() {
    let test = "a_reply_typed_on_the_demo_service_desk_reaches_the_customers_page_live";
    let _turn = turn();
    let (Some(tools), Some(axe)) = (Tools::find(test), axe_source(test)) else {
        return;
    };
    let demo = DemoRun::start();
    let alice = demo.account("customer").clone();

    // The sample ticket, once the simulated SDP has it (the desk lists SDP's requests).
    let api = demo.api("customer").await;
    let (_, list) = api.get("/api/v1/tickets").await;
    let number = list["items"][0]["number"]
        .as_str()
        .expect("the demo's sample ticket")
        .to_owned();
    let request = eventually(SYNCED, || async {
        let (_, t) = api.get(&format!("/api/v1/tickets/{number}")).await;
        t["sdp"]["request_id"].as_str().map(str::to_owned)
    })
    .await;

    let driver = Driver::start(&tools);
    let b = Browser::open(&tools, &driver, &demo.portal, test).await;
    b.sign_in(&alice.email, &alice.password).await;
    b.goto(&format!("/tickets/{number}")).await;
    b.find("ol.chat").await;
    // Set on this page: still there later means the reply arrived without a reload.
    b.js("window.__customerPage = true;", Vec::new()).await;
    let portal = b.client.window().await.expect("the portal's window");

    let desk = b.client.new_window(false).await.expect("a second window");
    b.client
        .switch_to_window(desk.handle.clone())
        .await
        .expect("to the desk");
    let mut violations = Vec::new();
    desk_goto(&b, &demo, "/").await;
    b.find(&format!("tr[data-request='{request}']")).await;
    violations.extend(audit(&b, &axe, "desk requests en").await);
    b.click_and_load(&format!("a[href='/requests/{request}']"))
        .await;
    violations.extend(audit(&b, &axe, "desk request en").await);

    let reply = "We restarted the host of web-01; please try again.";
    b.fill("#reply-text", reply).await;
    b.click_and_load("form[action$='/reply'] button").await;
    b.find("p.flash[role=status]").await;
    b.screenshot("desk").await;

    b.client
        .switch_to_window(portal)
        .await
        .expect("back to the portal");
    let expected = serde_json::to_string(reply).expect("a string");
    b.until(
        &format!(
            "window.__customerPage === true && \
             [...document.querySelectorAll('ol.chat .bubble')].some(m => m.innerText.includes({expected}))"
        ),
        "the desk's reply on the customer's open ticket page",
    )
    .await;
    b.screenshot("customer").await;

    // The desk in Indonesian (the language cookie is the portal's too).
    b.client
        .switch_to_window(desk.handle)
        .await
        .expect("to the desk");
    b.switch_language("id").await;
    violations.extend(audit(&b, &axe, "desk request id").await);
    assert!(
        b.text().await.contains("Balas pemohon"),
        "the desk speaks Indonesian"
    );
    desk_goto(&b, &demo, "/").await;
    violations.extend(audit(&b, &axe, "desk requests id").await);
    assert!(violations.is_empty(), "axe:\n{}", violations.join("\n"));

    let _ = b.client.close().await;
    drop(driver);
    let status = demo.stop();
    assert!(status.success(), "the demo stops cleanly: {status}");
}

async fn desk_goto(b: &Browser, demo: &DemoRun, path: &str) {
    let url = format!("{}{path}", demo.desk);
    b.client
        .goto(&url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    let _: Value = b
        .until("document.readyState === 'complete'", "the desk page")
        .await;
}
