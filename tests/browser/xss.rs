//! Hostile text as subject, description, message and file name, through the API and the forms:
//! the browser shows it as text, no element comes from it and no script runs.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::PASSWORD;
use crate::harness::{Browser, Session, Setup, run};

/// Each one sets `window.__xss` (or would render as markup) if it were not escaped.
const PAYLOADS: [&str; 7] = [
    "<script>window.__xss=1</script>",
    "<img src=x onerror=\"window.__xss=1\">",
    "\"><svg onload=window.__xss=1>",
    "javascript:alert(1)",
    "{{7*7}} ${7*7} {% raw %}",
    "</textarea><script>window.__xss=1</script>",
    "'\"><iframe src=\"javascript:window.__xss=1\"></iframe>",
];

/// Fails unless the page shows every text in `shown` literally and nothing ran or was injected.
async fn assert_inert(b: &Browser, shown: &[&str]) {
    let report = b
        .js(
            "const bad = ['img[src=\"x\"]', 'svg', 'iframe', 'object', 'embed', '[onerror]', \
              '[onload]', 'a[href^=\"javascript:\" i]', 'script:not([src])']\
               .filter(s => document.querySelector(s) !== null);\
             const scripts = Array.from(document.scripts).map(s => s.getAttribute('src'));\
             return {xss: typeof window.__xss, bad, scripts, text: document.body.innerText};",
            Vec::new(),
        )
        .await;
    let path = b.path().await;
    assert_eq!(report["xss"], "undefined", "a payload ran on {path}");
    assert_eq!(report["bad"], json!([]), "markup from a payload on {path}");
    assert_eq!(
        report["scripts"],
        json!(["/static/app.js"]),
        "only the page's own script on {path}"
    );
    let text = report["text"].as_str().unwrap_or_default();
    for expected in shown {
        assert!(
            text.contains(expected),
            "{path} does not show {expected:?} as text"
        );
    }
}

#[actix_web::test]
async fn hostile_text_stays_text() {
    run(
        "hostile_text_stays_text",
        Setup::Configured,
        async |s: &Session| {
            let alice = s
                .app
                .customer("mallory@example.com", "Mallory <b>Bold</b>")
                .await;
            let b = &s.browser;

            // Through the API: each payload as subject, description, message and file name.
            let mut tickets = Vec::new();
            for payload in PAYLOADS {
                let (status, t) = alice
                .post(
                    "/api/v1/tickets",
                    &json!({"kind": "problem_report", "subject": payload, "description": payload}),
                )
                .await;
                assert_eq!(status, StatusCode::CREATED, "{t}");
                let number = t["number"].as_str().unwrap().to_owned();
                let (status, m) = alice
                    .post(
                        &format!("/api/v1/tickets/{number}/messages"),
                        &json!({"body": payload}),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{m}");
                let (status, file) = alice
                    .upload(&number, &format!("{payload}.txt"), b"plain text".to_vec())
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{file}");
                // The stored name is reduced to a safe base name; that is what the page must show.
                let filename = file["filename"].as_str().unwrap().to_owned();
                tickets.push((number, payload, filename));
            }

            b.sign_in("mallory@example.com", PASSWORD).await;
            b.goto("/tickets").await;
            b.find("table.tickets").await;
            assert_inert(b, &PAYLOADS).await;
            assert_inert(b, &["Mallory <b>Bold</b>"]).await;
            b.screenshot("dashboard").await;
            for (number, payload, filename) in &tickets {
                b.goto(&format!("/tickets/{number}")).await;
                b.find(".chat .bubble.mine .text").await;
                assert_inert(b, &[payload, filename]).await;
                assert_eq!(
                    b.find("h1").await.text().await.unwrap(),
                    format!("{number} {payload}")
                );
            }
            b.goto(&format!("/tickets/{}", tickets[5].0)).await;
            b.screenshot("ticket").await;

            // Through the forms: a subject, a description and a file name that are all markup.
            let dir = tempfile::tempdir().unwrap();
            let hostile_name = "<img src=x onerror=window.__xss=1>.png";
            let file = dir.path().join(hostile_name);
            std::fs::write(&file, b"not really a picture").unwrap();
            b.goto("/tickets/new").await;
            b.click("#kind-problem_report").await;
            b.fill("#subject", PAYLOADS[2]).await;
            b.fill("#description", PAYLOADS[5]).await;
            b.find("#file")
                .await
                .send_keys(&file.display().to_string())
                .await
                .unwrap();
            b.click_and_load("form[action='/tickets/new'] button[type=submit]")
                .await;
            b.find(".flash").await;
            let path = b.path().await;
            let number = path.strip_prefix("/tickets/").expect("the ticket's page");
            let (_, files) = alice
                .get(&format!("/api/v1/tickets/{number}/attachments"))
                .await;
            let stored = files["items"][0]["filename"].as_str().unwrap().to_owned();
            assert!(stored.contains("onerror"), "{stored}");
            assert_inert(b, &[PAYLOADS[2], PAYLOADS[5], &stored]).await;
            b.fill("#body", PAYLOADS[0]).await;
            b.click_and_load("form.reply button[type=submit]").await;
            b.find(".chat .bubble.mine .text").await;
            assert_inert(b, &[PAYLOADS[0], PAYLOADS[2], &stored]).await;
            b.screenshot("form-ticket").await;

            // A form that comes back with errors keeps what was typed, as text.
            b.goto("/tickets/new").await;
            b.fill("#description", PAYLOADS[5]).await;
            b.fill("#service", PAYLOADS[1]).await;
            b.click_and_load("form[action='/tickets/new'] button[type=submit]")
                .await;
            b.find("#error-summary").await;
            let typed = b
                .js(
                    "return [document.getElementById('description').value, \
                         document.getElementById('service').value];",
                    Vec::new(),
                )
                .await;
            assert_eq!(typed, json!([PAYLOADS[5], PAYLOADS[1]]));
            assert_inert(b, &[]).await;
            b.screenshot("form-errors").await;

            // The API still holds the exact text (nothing was escaped twice or altered).
            let (_, list) = alice.get("/api/v1/tickets?per_page=50").await;
            let subjects: Vec<&Value> = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| &t["subject"])
                .collect();
            for payload in PAYLOADS {
                assert!(
                    subjects.contains(&&json!(payload)),
                    "{payload} in {subjects:?}"
                );
            }
        },
    )
    .await;
}
