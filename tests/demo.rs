//! `deskbridge demo`: the binary starts with its simulated SDP, prints the sample accounts, and
//! what a technician does on its service desk page (over HTTP, as a browser posts the forms)
//! reaches the customer through the appliance's real sync. The simulator keeps SDP's default
//! call budget, so each step waits as long as it would against a live SDP.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;

use crate::common::demo::DemoRun;
use crate::common::{Api, eventually};

/// The sync may wait for SDP's budget (60 calls a minute) between steps.
const WAIT: Duration = Duration::from_secs(90);

/// A form posted on the service desk page; its status (303 on success).
async fn desk_post(
    desk: &reqwest::Client,
    demo: &DemoRun,
    path: &str,
    form: &[(&str, &str)],
) -> StatusCode {
    let response = desk
        .post(format!("{}{path}", demo.desk))
        .header("Origin", &demo.desk)
        .form(form)
        .send()
        .await
        .expect("the desk answers");
    response.status()
}

async fn ticket_until(customer: &Api, number: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(WAIT, || async {
        let (_, t) = customer.get(&format!("/api/v1/tickets/{number}")).await;
        check(&t).then_some(t)
    })
    .await
}

async fn messages(customer: &Api, number: &str) -> Vec<String> {
    let (_, list) = customer
        .get(&format!("/api/v1/tickets/{number}/messages"))
        .await;
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|m| m["body"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn the_demo_prints_its_accounts_and_its_service_desk_moves_the_customers_ticket() {
    let demo = DemoRun::start();
    for role in ["customer", "colleague", "admin"] {
        let account = demo.account(role);
        assert!(account.password.len() >= 10, "{role}: {}", demo.banner);
    }
    assert!(
        demo.banner.contains(&format!("{}/admin", demo.portal)),
        "{}",
        demo.banner
    );

    // The sample ticket reaches the simulated SDP through the outbox, like any other.
    let alice = demo.api("customer").await;
    let (_, list) = alice.get("/api/v1/tickets").await;
    let number = list["items"][0]["number"]
        .as_str()
        .expect("a sample ticket")
        .to_owned();
    let t = ticket_until(&alice, &number, |t| t["sdp"]["request_id"].is_string()).await;
    let request = t["sdp"]["request_id"].as_str().unwrap().to_owned();

    let desk = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let listing = desk
        .get(format!("{}/", demo.desk))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains(&format!("data-request=\"{request}\"")),
        "{listing}"
    );
    let at = |action: &str| format!("/requests/{request}/{action}");

    // A reply reaches the customer; a private note never does, a public one does.
    let reply = "We are looking at web-01 now.";
    assert_eq!(
        desk_post(&desk, &demo, &at("reply"), &[("text", reply)]).await,
        StatusCode::SEE_OTHER
    );
    let secret = "Internal: the hypervisor in rack 7 is flaky.";
    assert_eq!(
        desk_post(&desk, &demo, &at("note"), &[("text", secret)]).await,
        StatusCode::SEE_OTHER
    );
    let public = "Public note: a restart is planned.";
    let form = [("text", public), ("public", "on")];
    assert_eq!(
        desk_post(&desk, &demo, &at("note"), &form).await,
        StatusCode::SEE_OTHER
    );
    eventually(WAIT, || async {
        let seen = messages(&alice, &number).await;
        (seen.iter().any(|m| m == reply) && seen.iter().any(|m| m == public)).then_some(())
    })
    .await;
    assert!(
        !messages(&alice, &number)
            .await
            .iter()
            .any(|m| m.contains("hypervisor"))
    );

    // Assigning and a status change show on the ticket.
    let form = [("technician", "Tech Two")];
    assert_eq!(
        desk_post(&desk, &demo, &at("assign"), &form).await,
        StatusCode::SEE_OTHER
    );
    ticket_until(&alice, &number, |t| t["assignee"] == "Tech Two").await;
    let form = [("status", "In Progress")];
    assert_eq!(
        desk_post(&desk, &demo, &at("status"), &form).await,
        StatusCode::SEE_OTHER
    );
    ticket_until(&alice, &number, |t| t["status"] == "in_progress").await;

    // A file attached at the desk is the customer's to download.
    let part = reqwest::multipart::Part::bytes(b"boot log".to_vec()).file_name("../boot.log");
    let response = desk
        .post(format!("{}{}", demo.desk, at("attach")))
        .header("Origin", &demo.desk)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let file = eventually(WAIT, || async {
        let (_, files) = alice
            .get(&format!("/api/v1/tickets/{number}/attachments"))
            .await;
        files["items"]
            .as_array()
            .and_then(|items| items.iter().find(|f| f["filename"] == "boot.log").cloned())
    })
    .await;
    assert_eq!(alice.download(&number, &file["id"]).await, b"boot log");

    // Resolving asks the customer to confirm; the colleague sees it too (the organisation shares).
    let form = [("text", "The host was restarted.")];
    assert_eq!(
        desk_post(&desk, &demo, &at("resolve"), &form).await,
        StatusCode::SEE_OTHER
    );
    ticket_until(&alice, &number, |t| t["status"] == "resolved").await;
    let bima = demo.api("colleague").await;
    let (status, _) = bima.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(status, StatusCode::OK);

    // What the desk refuses: an empty reply, an unknown status, a form from another site, a
    // request it does not have.
    assert_eq!(
        desk_post(&desk, &demo, &at("reply"), &[("text", " ")]).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let form = [("status", "Nonexistent")];
    assert_eq!(
        desk_post(&desk, &demo, &at("status"), &form).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let response = desk
        .post(format!("{}{}", demo.desk, at("reply")))
        .header("Origin", "http://attacker.example")
        .form(&[("text", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        desk_post(&desk, &demo, "/requests/999999/reply", &[("text", "x")]).await,
        StatusCode::NOT_FOUND
    );
    assert!(
        !messages(&alice, &number)
            .await
            .iter()
            .any(|m| m == "forged")
    );

    let status = demo.stop();
    assert!(
        status.success(),
        "the demo stops cleanly on SIGTERM: {status}"
    );
}

#[test]
fn the_demo_refuses_a_service_desk_beyond_loopback() {
    let output = crate::common::deskbridge_command()
        .args(["demo", "--bind", "127.0.0.1:0", "--desk-bind", "0.0.0.0:0"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}
