//! The fake SDP answers raw calls shaped like the API doc's examples, in both profiles.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::eventually;
use crate::common::fake_sdp::{
    CallRecord, Email, EmailFrom, FakeSdp, Fault, Op, Profile, TrashRules,
};

const ACCEPT: &str = "application/vnd.manageengine.sdp.v3+json";

/// Margin past a computed window end: a call is admitted a little after the arrival time logged.
const SLACK: Duration = Duration::from_millis(50);

/// A bare SDP client: vnd Accept header, `input_data` in the query on GET and form-encoded otherwise.
struct Client {
    base: String,
    http: reqwest::Client,
    auth: (&'static str, String),
}

impl Client {
    async fn new(fake: &FakeSdp) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let auth = match fake.profile() {
            Profile::OnPrem => ("authtoken", fake.api_key()),
            Profile::Cloud => {
                let token = refresh(&http, fake).await["access_token"]
                    .as_str()
                    .expect("an access token")
                    .to_owned();
                ("Authorization", format!("Zoho-oauthtoken {token}"))
            }
        };
        Client {
            base: fake.base_url(),
            http,
            auth,
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        input: Option<&Value>,
    ) -> reqwest::RequestBuilder {
        let is_get = method == Method::GET;
        let mut req = self
            .http
            .request(method, format!("{}/api/v3{path}", self.base))
            .header("Accept", ACCEPT)
            .header(self.auth.0, &self.auth.1);
        if let Some(input) = input {
            let params = [("input_data", input.to_string())];
            req = if is_get {
                req.query(&params)
            } else {
                req.form(&params)
            };
        }
        req
    }

    async fn call(&self, method: Method, path: &str, input: Option<Value>) -> (StatusCode, Value) {
        send(self.request(method, path, input.as_ref())).await
    }

    async fn get(&self, path: &str, input: Option<Value>) -> (StatusCode, Value) {
        self.call(Method::GET, path, input).await
    }

    async fn create(&self, request: Value) -> Value {
        let (status, body) = self
            .call(Method::POST, "/requests", Some(json!({"request": request})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["response_status"]["status_code"], 2000, "{body}");
        body["request"].clone()
    }

    async fn upload(
        &self,
        method: Method,
        path: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
        let form = reqwest::multipart::Form::new().part("input_file", part);
        send(self.request(method, path, None).multipart(form)).await
    }
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = req.send().await.expect("the fake answers");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn refresh(http: &reqwest::Client, fake: &FakeSdp) -> Value {
    let oauth = fake.oauth();
    let response = http
        .post(format!("{}/oauth/v2/token", fake.accounts_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", oauth.refresh_token.as_str()),
            ("client_id", oauth.client_id.as_str()),
            ("client_secret", oauth.client_secret.as_str()),
        ])
        .send()
        .await
        .expect("the token endpoint answers");
    response.json().await.expect("json")
}

fn message_code(body: &Value) -> u64 {
    let status = &body["response_status"];
    let status = if status.is_array() {
        &status[0]
    } else {
        status
    };
    assert_eq!(status["status"], "failed", "{body}");
    status["messages"][0]["status_code"]
        .as_u64()
        .unwrap_or_else(|| panic!("a message code: {body}"))
}

fn ms(date: &Value) -> i64 {
    date["value"]
        .as_str()
        .unwrap_or_else(|| panic!("a date object: {date}"))
        .parse()
        .unwrap()
}

/// Waits for a computed instant (a budget window or an on-prem block ends then).
async fn until(deadline: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
}

fn ids(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("a {key} list: {body}"))
        .iter()
        .map(|row| row["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn fake_sdp_onprem_creates_gets_updates_and_validates_requests() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let sdp = Client::new(&fake).await;

    let created = sdp
        .create(json!({
            "subject": "VPN down for branch 12",
            "description": "<p>Users cannot connect since 09:00</p>",
            "requester": {"email_id": "alice@example.com"},
            "priority": {"name": "High"},
            "request_type": {"name": "Incident"},
            "group": {"name": "Network"},
            "template": {"name": "Default Request"},
            "udf_fields": {"udf_sline_301": "EXT-4711"}
        }))
        .await;
    let id = created["id"].as_str().expect("ids are strings").to_owned();
    assert_eq!(id, "101", "on-prem ids are small numbers");
    assert_eq!(created["status"]["name"], "Open");
    assert_eq!(created["status"]["in_progress"], true);
    assert_eq!(created["priority"]["name"], "High");
    assert_eq!(created["requester"]["email_id"], "alice@example.com");
    assert_eq!(created["udf_fields"]["udf_sline_301"], "EXT-4711");
    let created_at = ms(&created["created_time"]);
    assert!(created["created_time"]["display_value"].is_string());

    let (status, got) = sdp.get(&format!("/requests/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        got["response_status"]["status_code"], 2000,
        "an object on single calls"
    );
    assert_eq!(
        got["request"]["description"],
        "<p>Users cannot connect since 09:00</p>"
    );

    let (status, updated) = sdp
        .call(
            Method::PUT,
            &format!("/requests/{id}"),
            Some(json!({"request": {"status": {"name": "On Hold"}, "status_change_comments": "waiting for logs",
                                    "technician": {"name": "Tech One"}, "update_reason": "synced"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["request"]["status"]["internal_name"], "Onhold");
    assert_eq!(updated["request"]["status"]["stop_timer"], true);
    assert_eq!(updated["request"]["technician"]["name"], "Tech One");
    assert!(ms(&updated["request"]["last_updated_time"]) > created_at);
    let changes = fake.status_changes(&id);
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (
            changes[0].from.as_str(),
            changes[0].to.as_str(),
            changes[0].comments.as_deref()
        ),
        ("Open", "On Hold", Some("waiting for logs"))
    );

    // Errors.
    let (status, body) = sdp.get("/requests/999999", None).await;
    assert_eq!((status, message_code(&body)), (StatusCode::NOT_FOUND, 4007));
    let (status, body) = sdp
        .call(
            Method::POST,
            "/requests",
            Some(json!({"request": {"description": "no subject"}})),
        )
        .await;
    assert_eq!(
        (status, message_code(&body)),
        (StatusCode::BAD_REQUEST, 4012)
    );
    assert_eq!(
        body["response_status"]["messages"][0]["fields"],
        json!(["subject"])
    );
    let (status, body) = sdp
        .call(
            Method::POST,
            "/requests",
            Some(json!({"request": {"subject": "x", "priority": {"name": "Whenever"}}})),
        )
        .await;
    assert_eq!(
        (status, message_code(&body)),
        (StatusCode::BAD_REQUEST, 4001)
    );
    assert_eq!(body["response_status"]["messages"][0]["field"], "priority");
    let (status, body) = sdp
        .call(
            Method::POST,
            "/requests",
            Some(json!({"request": {"subject": "x", "colour": "red"}})),
        )
        .await;
    assert_eq!(
        (status, message_code(&body)),
        (StatusCode::BAD_REQUEST, 4000)
    );
    let (status, body) = send(
        sdp.request(Method::POST, "/requests", None)
            .form(&[("input_data", "{\"request\": {\"subject\": ")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["response_status"]["status_code"], 4000, "{body}");

    fake.set_fault(Fault::MandatoryFields(vec![
        "udf_fields.udf_sline_301".into(),
        "category".into(),
    ]));
    let (status, body) = sdp
        .call(
            Method::POST,
            "/requests",
            Some(json!({"request": {"subject": "x", "category": {"name": "Network"}}})),
        )
        .await;
    assert_eq!(
        (status, message_code(&body)),
        (StatusCode::BAD_REQUEST, 4012)
    );
    assert_eq!(
        body["response_status"]["messages"][0]["fields"],
        json!(["udf_fields.udf_sline_301"])
    );
    fake.set_fault(Fault::ForbiddenField("priority".into()));
    let (status, body) = sdp
        .call(
            Method::PUT,
            &format!("/requests/{id}"),
            Some(json!({"request": {"priority": {"name": "Low"}}})),
        )
        .await;
    assert_eq!((status, message_code(&body)), (StatusCode::FORBIDDEN, 4002));
    fake.clear_faults();

    // input_data in the query string works for POST too.
    let (status, body) = send(sdp.request(Method::POST, "/requests", None).query(&[(
        "input_data",
        json!({"request": {"subject": "via query"}}).to_string(),
    )]))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["request"]["requester"]["name"], "Deskbridge API",
        "the caller is the default requester"
    );
    assert_eq!(fake.call_count("POST /requests"), 7);
    assert_eq!(fake.call_count("GET /requests/{id}"), 2);
    let last = fake.calls().pop().unwrap();
    assert_eq!(last.accept.as_deref(), Some(ACCEPT));
    assert_eq!(last.status, Some(200));
    fake.stop().await;
}

#[actix_web::test]
async fn fake_sdp_lists_search_sort_and_page() {
    let fake = FakeSdp::start(Profile::Cloud).await;
    let sdp = Client::new(&fake).await;
    let mut created = Vec::new();
    for i in 0..7 {
        let email = if i % 2 == 0 {
            "even@example.com"
        } else {
            "odd@example.com"
        };
        let r = sdp
            .create(json!({"subject": format!("Printer {i} jammed"), "description": "<p>paper</p>",
                           "requester": {"email_id": email}, "udf_fields": {"udf_char1": format!("T-{i}")}}))
            .await;
        created.push(r);
    }
    let id0 = created[0]["id"].as_str().unwrap().to_owned();
    assert!(id0.len() >= 18, "cloud ids are long: {id0}");
    assert_eq!(created[0]["display_id"], "501");
    assert_ne!(created[0]["display_id"], created[0]["id"]);

    // Touch request 2 last, then ask for everything changed after request 6 was created: the
    // requests never edited have no last_updated_time and never match.
    let id2 = created[2]["id"].as_str().unwrap().to_owned();
    assert!(created[2]["last_updated_time"].is_null(), "never edited");
    fake.add_note(&id2, "checked the tray", false);
    let since = ms(&created[6]["created_time"]);
    let cursor = json!({"list_info": {"row_count": 100, "start_index": 1, "sort_field": "last_updated_time", "sort_order": "asc",
        "search_criteria": [{"field": "last_updated_time", "condition": "greater than", "value": since.to_string()}],
        "fields_required": ["id", "display_id", "subject", "status", "last_updated_time"]}});
    let (status, body) = sdp.get("/requests", Some(cursor)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["response_status"].is_array(), "an array on lists");
    assert_eq!(ids(&body, "requests"), vec![id2.clone()]);
    assert!(body["requests"][0]["last_updated_time"]["value"].is_string());
    assert!(body["requests"][0].get("description").is_none());

    // Paging: 1-based start_index, has_more_rows, total_count on request.
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let page = json!({"list_info": {"row_count": 3, "start_index": start, "sort_field": "created_time",
                                        "sort_order": "asc", "get_total_count": true}});
        let (_, body) = sdp.get("/requests", Some(page)).await;
        assert_eq!(body["list_info"]["total_count"], 7);
        assert!(
            body["requests"][0].get("description").is_none(),
            "list rows are abbreviated"
        );
        assert!(body["requests"][0].get("last_updated_time").is_none());
        assert!(body["requests"][0]["subject"].is_string());
        seen.extend(ids(&body, "requests"));
        if body["list_info"]["has_more_rows"] != true {
            break;
        }
        start += 3;
    }
    let all: Vec<String> = created
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, all);
    let (_, body) = sdp.get("/requests", None).await;
    assert!(body["list_info"].get("total_count").is_none());

    let search = |criteria: Value| json!({"list_info": {"row_count": 100, "sort_field": "created_time", "sort_order": "asc", "search_criteria": criteria}});
    let count = |body: &Value| body["requests"].as_array().unwrap().len();
    let (_, body) = sdp
        .get("/requests", Some(search(json!({"field": "requester.email_id", "condition": "is", "value": "odd@example.com"}))))
        .await;
    assert_eq!(count(&body), 3);
    let (_, body) = sdp
        .get("/requests", Some(search(json!([{"field": "udf_fields.udf_char1", "condition": "is", "values": ["T-1", "T-4"]},
                                           {"field": "subject", "condition": "starts with", "value": "printer 6", "logical_operator": "OR"}]))))
        .await;
    assert_eq!(count(&body), 3);
    let (_, body) = sdp
        .get("/requests", Some(search(json!([{"field": "subject", "condition": "contains", "value": "jammed"},
                                           {"field": "requester.email_id", "condition": "is not", "value": "even@example.com", "logical_operator": "AND"}]))))
        .await;
    assert_eq!(count(&body), 3);
    let from = ms(&created[1]["created_time"]).to_string();
    let to = ms(&created[3]["created_time"]).to_string();
    let (_, body) = sdp
        .get(
            "/requests",
            Some(search(
                json!({"field": "created_time", "condition": "between", "values": [from, to]}),
            )),
        )
        .await;
    assert_eq!(count(&body), 3);
    let (_, body) = sdp
        .get("/requests", Some(search(json!({"field": "created_time", "condition": "greater or equal", "value": ms(&created[5]["created_time"]).to_string()}))))
        .await;
    assert_eq!(count(&body), 2);
    let (_, body) = sdp
        .get("/requests", Some(search(json!({"field": "created_time", "condition": "lesser than", "value": ms(&created[1]["created_time"]).to_string()}))))
        .await;
    assert_eq!(ids(&body, "requests"), vec![id0.clone()]);
    let (_, body) = sdp
        .get("/requests", Some(json!({"list_info": {"row_count": 1, "sort_field": "created_time", "sort_order": "desc"}, "fields_required": ["subject", "description"]})))
        .await;
    assert_eq!(body["requests"][0]["subject"], "Printer 6 jammed");
    assert_eq!(
        body["requests"][0]["description"], "<p>paper</p>",
        "fields_required at the top level"
    );

    let (status, body) = sdp
        .get("/requests", Some(json!({"list_info": {"row_count": 101}})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = sdp
        .get(
            "/requests",
            Some(search(
                json!({"field": "subject", "condition": "sounds like", "value": "x"}),
            )),
        )
        .await;
    assert_eq!(
        (status, message_code(&body)),
        (StatusCode::BAD_REQUEST, 4001)
    );

    // Reference data.
    let (_, body) = sdp
        .get("/statuses", Some(json!({"list_info": {"row_count": 100}})))
        .await;
    let names: Vec<&str> = body["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for name in [
        "Open",
        "Assigned",
        "In Progress",
        "On Hold",
        "Resolved",
        "Closed",
        "Cancelled",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let resolved = body["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Resolved")
        .unwrap();
    assert_eq!(
        (
            resolved["in_progress"].as_bool(),
            resolved["internal_name"].as_str()
        ),
        (Some(false), Some("Resolved"))
    );
    for (path, key, name) in [
        ("/priorities", "priorities", "Urgent"),
        ("/request_types", "request_types", "Service Request"),
        ("/categories", "categories", "Network"),
        ("/request_templates", "request_templates", "Default Request"),
        ("/technicians", "technicians", "Tech One"),
    ] {
        let (status, body) = sdp.get(path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            body[key]
                .as_array()
                .unwrap()
                .iter()
                .any(|row| row["name"] == name),
            "{path}: {body}"
        );
    }
    fake.stop().await;
}

#[actix_web::test]
async fn fake_sdp_notes_use_the_profile_wrapper() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let request = sdp
            .create(json!({"subject": "Notes", "requester": {"email_id": "alice@example.com"}}))
            .await;
        let id = request["id"].as_str().unwrap().to_owned();
        assert!(request["last_updated_time"].is_null(), "never edited yet");
        let before = ms(&request["created_time"]);
        let (key, time_key) = match profile {
            Profile::OnPrem => ("note", "added_time"),
            Profile::Cloud => ("request_note", "created_time"),
        };
        let path = format!("/requests/{id}/notes");
        let (status, body) = sdp
            .call(
                Method::POST,
                &path,
                Some(json!({key: {"description": "<p>public</p>", "show_to_requester": true}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{profile:?}: {body}");
        let note_id = body[key]["id"].as_str().unwrap().to_owned();
        assert_eq!(body[key]["show_to_requester"], true);
        assert!(
            body[key][time_key]["value"].is_string(),
            "{profile:?}: {body}"
        );
        let (status, body) = sdp
            .call(
                Method::POST,
                &path,
                Some(json!({"request_note": {"description": "no flag"}})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "both profiles take request_note: {body}"
        );
        let stored = fake.notes(&id);
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[1].show_to_requester, None, "stored as given");

        let (status, body) = sdp
            .call(
                Method::POST,
                &path,
                Some(json!({"note": {"description": "x"}})),
            )
            .await;
        if profile == Profile::Cloud {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(
                body["response_status"]["messages"][0]["message"],
                "EXTRA_KEY_FOUND_IN_JSON"
            );
        } else {
            assert_eq!(status, StatusCode::OK, "{body}");
        }

        let (_, list) = sdp
            .get(&path, Some(json!({"list_info": {"row_count": 100}})))
            .await;
        assert_eq!(ids(&list, "notes")[0], note_id);
        let (status, body) = sdp
            .call(
                Method::PUT,
                &format!("{path}/{note_id}"),
                Some(json!({key: {"description": "<p>edited</p>"}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body[key]["description"], "<p>edited</p>");
        let (_, one) = sdp.get(&format!("{path}/{note_id}"), None).await;
        assert_eq!(one[key]["description"], "<p>edited</p>");
        let (status, _) = sdp
            .call(Method::DELETE, &format!("{path}/{note_id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = sdp.get(&format!("{path}/{note_id}"), None).await;
        assert_eq!((status, message_code(&body)), (StatusCode::NOT_FOUND, 4007));

        let after = ms(&fake.request(&id).unwrap()["last_updated_time"]);
        assert!(after > before, "notes bump last_updated_time");
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_conversations_list_metadata_and_serve_emails() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let sdp = Client::new(&fake).await;
    let id = fake.raise_request("Mail thread", "alice@example.com");
    let note = fake.add_note(&id, "private remark", false);
    let outgoing = fake.add_email(
        &id,
        EmailFrom::Technician("Tech Two".into()),
        "<p>Please reboot</p>",
    );
    let reply = fake.add_email_with_files(
        &id,
        EmailFrom::Requester,
        "<p>Done, log attached</p>",
        &[("boot.log", b"line 1\nline 2\n")],
    );

    let (status, body) = sdp
        .get(&format!("/requests/{id}/conversations"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        ids(&body, "conversations"),
        vec![note.clone(), outgoing, reply.clone()]
    );
    let rows = body["conversations"].as_array().unwrap();
    assert_eq!(rows[0]["type"], "NOTES");
    assert_eq!(rows[0]["show_to_requester"], false);
    assert_eq!(rows[2]["type"], "EMAIL");
    assert_eq!(rows[2]["has_attachments"], true);
    assert!(rows[2].get("description").is_none(), "metadata only");

    let url = format!(
        "{}{}",
        fake.root_url(),
        rows[2]["content_url"].as_str().unwrap()
    );
    let (status, detail) = send(
        sdp.http
            .get(url)
            .header("Accept", ACCEPT)
            .header(sdp.auth.0, &sdp.auth.1),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let mail = &detail["notification"];
    assert_eq!(mail["sender"]["email_id"], "alice@example.com");
    assert_eq!(mail["description"], "<p>Done, log attached</p>");
    assert!(
        mail["subject"]
            .as_str()
            .unwrap()
            .contains(&format!("##{id}##"))
    );
    let log_url = format!(
        "{}{}",
        fake.root_url(),
        mail["attachments"][0]["content_url"].as_str().unwrap()
    );
    let log = sdp
        .http
        .get(log_url)
        .header("authtoken", fake.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(log.bytes().await.unwrap().as_ref(), b"line 1\nline 2\n");

    let (_, full) = sdp.get(&format!("/requests/{id}"), None).await;
    assert_eq!(full["request"]["unreplied_count"], 1);
    assert_eq!(
        full["request"]["attachments"],
        json!([]),
        "mail files are not request attachments"
    );
    fake.stop().await;
}

#[actix_web::test]
async fn fake_sdp_uploads_download_byte_identical() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let id = sdp.create(json!({"subject": "Files"})).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let content: Vec<u8> = (0..300_000u32)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();

        let (status, direct) = sdp
            .upload(
                Method::PUT,
                &format!("/requests/{id}/upload"),
                "dump.bin",
                content.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{profile:?}: {direct}");
        assert_eq!(direct["attachment"]["size"]["value"], "300000");

        let (status, staged) = sdp
            .upload(
                Method::POST,
                &format!("/requests/{id}/_upload"),
                "notes.txt",
                b"hello".to_vec(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{staged}");
        let staged_id = staged["attachment"]["id"].as_str().unwrap().to_owned();
        let (_, list) = sdp.get(&format!("/requests/{id}/attachments"), None).await;
        assert_eq!(
            list["attachments"].as_array().unwrap().len(),
            1,
            "not attached until bound"
        );
        let (status, body) = sdp
            .call(
                Method::PUT,
                &format!("/requests/{id}"),
                Some(json!({"request": {"attachments": [{"id": staged_id}]}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, list) = sdp.get(&format!("/requests/{id}/attachments"), None).await;
        let rows = list["attachments"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        let dump = rows.iter().find(|a| a["name"] == "dump.bin").unwrap();
        assert_eq!(dump["size"]["value"], "300000");
        let url = format!(
            "{}{}",
            fake.root_url(),
            dump["content_url"].as_str().unwrap()
        );
        let response = sdp
            .http
            .get(&url)
            .header(sdp.auth.0, &sdp.auth.1)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.bytes().await.unwrap().as_ref(), content.as_slice());
        let response = sdp.http.get(&url).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "downloads need auth"
        );
        let stored = fake.attachments(&id);
        assert_eq!(
            &stored.iter().find(|a| a.name == "notes.txt").unwrap().bytes[..],
            b"hello"
        );

        fake.set_max_upload(1000);
        let (status, body) = sdp
            .upload(
                Method::PUT,
                &format!("/requests/{id}/upload"),
                "big.bin",
                vec![7; 5000],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["response_status"]["status_code"], 4000);
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_closes_assigns_and_resolves_per_profile() {
    for (profile, close, assign, wrong_close) in [
        (Profile::OnPrem, "close", "assign", "_close"),
        (Profile::Cloud, "_close", "_assign", "close"),
    ] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let id = sdp.create(json!({"subject": "Close me"})).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let body = json!({"request": {"closure_info": {"requester_ack_resolution": true, "requester_ack_comments": "thanks",
                                                        "closure_comments": "fixed", "closure_code": {"name": "Success"}}}});

        let (status, _) = sdp
            .call(
                Method::PUT,
                &format!("/requests/{id}/{wrong_close}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{profile:?} does not serve {wrong_close}"
        );

        let (status, res) = sdp
            .call(Method::PUT, &format!("/requests/{id}/{assign}"), Some(json!({"request": {"group": {"name": "Network"}, "technician": {"name": "Tech Two"}}})))
            .await;
        assert_eq!(status, StatusCode::OK, "{res}");
        assert_eq!(fake.request(&id).unwrap()["technician"]["name"], "Tech Two");

        fake.set_fault(Fault::ClosureRule(vec!["resolution".into()]));
        let (status, res) = sdp
            .call(
                Method::PUT,
                &format!("/requests/{id}/{close}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, message_code(&res)),
            (StatusCode::BAD_REQUEST, 4003)
        );
        let (status, res) = sdp
            .call(
                Method::POST,
                &format!("/requests/{id}/resolutions"),
                Some(json!({"resolution": {"content": "<p>Rebooted</p>"}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{res}");
        assert_eq!(res["resolution"]["content"], "<p>Rebooted</p>");
        let (_, res) = sdp.get(&format!("/requests/{id}/resolutions"), None).await;
        assert!(res["resolution"]["submitted_on"]["value"].is_string());

        let (status, res) = sdp
            .call(
                Method::PUT,
                &format!("/requests/{id}/{close}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{res}");
        assert_eq!(res["response_status"]["status_code"], 2000);
        let closed = fake.request(&id).unwrap();
        assert_eq!(closed["status"]["name"], "Closed");
        assert_eq!(closed["closure_info"]["requester_ack_resolution"], true);
        assert_eq!(closed["closure_info"]["closure_code"]["name"], "Success");
        assert!(closed["completed_time"]["value"].is_string());

        // Reopen through a plain status change.
        fake.set_status(&id, "Open", Some("customer replied"));
        assert_eq!(fake.request(&id).unwrap()["is_reopened"], true);
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_rate_limits_with_4015() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let sdp = Client::new(&fake).await;
    fake.set_fault(Fault::RateLimit {
        every_nth: 1,
        retry_after_secs: Some(2),
    });
    let response = sdp
        .request(Method::GET, "/requests", None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(message_code(&body), 4015);

    fake.set_fault(Fault::RateLimit {
        every_nth: 3,
        retry_after_secs: None,
    });
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(sdp.get("/statuses", None).await.0.as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 200, 200, 429]);

    fake.clear_faults();
    fake.set_fault(Fault::RateWindow {
        max: 2,
        per: Duration::from_mins(1),
        retry_after_secs: None,
    });
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(sdp.get("/statuses", None).await.0.as_u16());
    }
    assert_eq!(statuses[2], 429, "{statuses:?}");
    fake.clear_faults();
    assert_eq!(sdp.get("/statuses", None).await.0, StatusCode::OK);
    let times = fake.call_times();
    assert_eq!(times.len(), 11);
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    fake.stop().await;
}

#[actix_web::test]
async fn fake_sdp_checks_credentials_and_refreshes_tokens() {
    // On-prem: authtoken or TECHNICIAN_KEY, nothing else.
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let http = reqwest::Client::new();
    let url = fake.api_url("/requests");
    let ok = http
        .get(&url)
        .header("TECHNICIAN_KEY", fake.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let (status, body) = send(http.get(&url).header("authtoken", "wrong")).await;
    assert_eq!(
        (status, message_code(&body)),
        (StatusCode::UNAUTHORIZED, 4022)
    );
    let (status, _) = send(
        http.get(&url)
            .header("Authorization", format!("authtoken: {}", fake.api_key())),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let old = fake.api_key();
    fake.set_api_key("rotated");
    let (status, _) = send(http.get(&url).header("authtoken", old)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    fake.stop().await;

    // Cloud: Zoho OAuth.
    let fake = FakeSdp::start(Profile::Cloud).await;
    let url = fake.api_url("/requests");
    assert!(url.contains("/app/itdesk/api/v3/"), "{url}");
    let token = refresh(&http, &fake).await;
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    assert!(token["api_domain"].is_string());
    let access = token["access_token"].as_str().unwrap().to_owned();
    let auth = format!("Zoho-oauthtoken {access}");
    assert_eq!(
        http.get(&url)
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let bare_root = format!("{}/api/v3/requests", fake.root_url());
    assert_eq!(
        http.get(&bare_root)
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, _) = send(http.get(&url).header("authtoken", fake.api_key())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "cloud takes only OAuth");

    fake.expire_access_tokens();
    let (status, body) = send(http.get(&url).header("Authorization", &auth)).await;
    assert_eq!(
        (status, message_code(&body)),
        (StatusCode::UNAUTHORIZED, 4022)
    );
    let again = refresh(&http, &fake).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(again, access);
    let status = http
        .get(&url)
        .header("Authorization", format!("Zoho-oauthtoken {again}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.token_requests(), 2);

    // Query parameters work too; bad input gets `{"error": ...}`.
    let oauth = fake.oauth();
    let token_url = format!("{}/oauth/v2/token", fake.accounts_url());
    let by_query: Value = http
        .post(&token_url)
        .query(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &oauth.refresh_token),
            ("client_id", &oauth.client_id),
            ("client_secret", &oauth.client_secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(by_query["access_token"].is_string(), "{by_query}");
    let bad: Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "nope"),
            ("client_id", &oauth.client_id),
            ("client_secret", &oauth.client_secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bad, json!({"error": "invalid_code"}));
    let granted: Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &oauth.grant_code),
            ("client_id", &oauth.client_id),
            ("client_secret", &oauth.client_secret),
            ("redirect_uri", "https://www.zoho.com"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(granted["refresh_token"].is_string(), "{granted}");
    fake.revoke_refresh_token();
    assert_eq!(refresh(&http, &fake).await["error"], "invalid_code");
    assert_eq!(fake.token_requests(), 6);

    // Short-lived tokens really expire.
    let fake2 = FakeSdp::start(Profile::Cloud).await;
    fake2.set_token_lifetime(Duration::from_millis(200));
    let token = refresh(&http, &fake2).await;
    assert_eq!(token["expires_in"], 0);
    let auth = format!(
        "Zoho-oauthtoken {}",
        token["access_token"].as_str().unwrap()
    );
    let url2 = fake2.api_url("/statuses");
    eventually(Duration::from_secs(5), || async {
        let status = http
            .get(&url2)
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap()
            .status();
        (status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    fake.stop().await;
    fake2.stop().await;
}

#[actix_web::test]
async fn fake_sdp_commits_then_drops_the_connection() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let sdp = Client::new(&fake).await;
    fake.set_fault(Fault::CommitThenDrop {
        op: Op::CreateRequest,
        times: 1,
    });
    let input = json!({"request": {"subject": "Committed but unanswered"}});
    let err = sdp
        .request(Method::POST, "/requests", Some(&input))
        .send()
        .await
        .expect_err("the connection is dropped");
    assert!(!err.is_status(), "{err}");
    let stored = fake.requests();
    assert_eq!(stored.len(), 1, "the request was committed");
    assert_eq!(stored[0]["subject"], "Committed but unanswered");
    assert_eq!(fake.calls().last().unwrap().status, None);

    // One shot: the retry is answered (and creates a duplicate, which is the client's problem).
    let again = sdp
        .create(json!({"subject": "Committed but unanswered"}))
        .await;
    assert_eq!(fake.requests().len(), 2);

    let id = again["id"].as_str().unwrap().to_owned();
    fake.set_fault(Fault::CommitThenDrop {
        op: Op::AddNote,
        times: 2,
    });
    for _ in 0..2 {
        let note = json!({"note": {"description": "lost answer"}});
        assert!(
            sdp.request(Method::POST, &format!("/requests/{id}/notes"), Some(&note))
                .send()
                .await
                .is_err()
        );
    }
    assert_eq!(fake.notes(&id).len(), 2);
    fake.set_fault(Fault::CommitThenDrop {
        op: Op::Upload,
        times: 1,
    });
    let part = reqwest::multipart::Part::bytes(b"abc".to_vec()).file_name("a.txt");
    let upload = sdp
        .request(Method::PUT, &format!("/requests/{id}/upload"), None)
        .multipart(reqwest::multipart::Form::new().part("input_file", part));
    assert!(upload.send().await.is_err());
    assert_eq!(fake.attachments(&id).len(), 1);
    let (status, _) = sdp.get(&format!("/requests/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "reads are unaffected");
    fake.stop().await;
}

#[actix_web::test]
async fn fake_sdp_goes_down_and_comes_back() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let sdp = Client::new(&fake).await;
    let id = fake.raise_request("Still here", "bob@example.com");

    fake.set_fault(Fault::Down503);
    let (status, _) = sdp.get(&format!("/requests/{id}"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    fake.clear_faults();

    fake.refuse_connections().await;
    let path = format!("/requests/{id}");
    let pooled = sdp.request(Method::GET, &path, None).send().await;
    assert!(pooled.is_err(), "open connections are cut");
    let fresh = reqwest::Client::new()
        .get(fake.api_url(&path))
        .header("authtoken", fake.api_key())
        .send()
        .await
        .expect_err("refused");
    assert!(fresh.is_connect(), "new connections are refused: {fresh:?}");
    fake.accept_connections().await;
    let (status, body) = sdp.get(&format!("/requests/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "same port, same data: {body}");
    assert_eq!(body["request"]["subject"], "Still here");

    // A slow server: the client times out, but the call is still handled after the delay.
    fake.set_fault(Fault::Slow(Duration::from_millis(300)));
    let input = json!({"request": {"subject": "too slow"}});
    let err = sdp
        .request(Method::POST, "/requests", Some(&input))
        .timeout(Duration::from_millis(50))
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(fake.requests().len(), 1, "not handled yet");
    eventually(Duration::from_secs(5), || async {
        (fake.requests().len() == 2).then_some(())
    })
    .await;
    fake.clear_faults();
    fake.stop().await;
}

#[actix_web::test]
async fn fake_sdp_technician_changes_bump_last_updated_time() {
    let fake = FakeSdp::start(Profile::Cloud).await;
    let id = fake.raise_request_with(
        json!({"subject": "From the SDP side", "requester": {"email_id": "carol@example.com"},
                                            "priority": {"name": "Urgent"}}),
    );
    let raised = fake.request(&id).unwrap();
    assert!(
        raised["last_updated_time"].is_null(),
        "null until the first edit"
    );
    let mut last = ms(&raised["created_time"]);
    let mut bumped = |what: &str| {
        let now = ms(&fake.request(&id).unwrap()["last_updated_time"]);
        assert!(now > last, "{what} bumps last_updated_time");
        last = now;
    };
    fake.set_status(&id, "In Progress", None);
    bumped("status");
    fake.assign_technician(&id, "Tech One");
    bumped("assign");
    fake.add_note(&id, "public", true);
    bumped("note");
    fake.add_email(&id, EmailFrom::Requester, "any news?");
    bumped("email");
    fake.attach_file(&id, "shot.png", b"\x89PNG");
    bumped("attachment");
    fake.set_resolution(&id, "done");
    bumped("resolution");
    fake.edit_request(&id, json!({"udf_fields": {"udf_char1": "X"}}));
    bumped("edit");

    let full = fake.request(&id).unwrap();
    assert_eq!(full["status"]["name"], "In Progress");
    assert_eq!(full["technician"]["name"], "Tech One");
    assert_eq!(full["has_notes"], true);
    assert_eq!(full["attachments"][0]["name"], "shot.png");
    assert_eq!(fake.notes(&id)[0].show_to_requester, Some(true));
    assert_eq!(
        fake.emails(&id)[0].sender.email.as_deref(),
        Some("carol@example.com")
    );

    // The trigger: a POST carrying the request id (here to the fake itself, which answers 404).
    let status = fake
        .fire_webhook(&format!("{}/hooks/sdp", fake.root_url()), &id)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(fake.call_count("POST /hooks/sdp"), 1);
    fake.stop().await;
}

// ----- a live instance's strictness -----

/// What a profile answers to a call over its budget.
fn over_budget(profile: Profile) -> StatusCode {
    match profile {
        Profile::OnPrem => StatusCode::FORBIDDEN,
        Profile::Cloud => StatusCode::TOO_MANY_REQUESTS,
    }
}

#[actix_web::test]
async fn fake_sdp_budget_defaults_to_60_calls_a_minute() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        for i in 0..60 {
            let (status, body) = sdp.get("/statuses", None).await;
            assert_eq!(status, StatusCode::OK, "{profile:?}, call {i}: {body}");
        }
        let (status, _) = sdp.get("/statuses", None).await;
        assert_eq!(status, over_budget(profile), "{profile:?}: the 61st call");
        if profile == Profile::Cloud {
            // The token endpoint is not the API: neither counted nor refused.
            assert!(refresh(&sdp.http, &fake).await["access_token"].is_string());
        }
        let api: Vec<_> = fake
            .calls()
            .into_iter()
            .filter(CallRecord::is_api)
            .collect();
        assert_eq!(api.len(), 61, "{profile:?}");
        assert!(api[60].throttled && !api[59].throttled);
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_cloud_over_budget_answers_429_4015_and_counts_no_refusal() {
    let fake = FakeSdp::start(Profile::Cloud).await;
    let sdp = Client::new(&fake).await;
    let per = Duration::from_secs(2);
    fake.set_budget(Some((5, per)));
    fake.reset_calls();
    let t0 = Instant::now();
    for _ in 0..5 {
        assert_eq!(sdp.get("/statuses", None).await.0, StatusCode::OK);
    }
    let input = json!({"request": {"subject": "over budget"}});
    let response = sdp
        .request(Method::POST, "/requests", Some(&input))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        response.headers().get("retry-after").is_none(),
        "SDP documents no Retry-After"
    );
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["response_status"]["status_code"], 4000, "{body}");
    assert_eq!(message_code(&body), 4015);
    assert!(fake.requests().is_empty(), "a refused call changes nothing");
    for _ in 0..3 {
        assert_eq!(
            sdp.get("/statuses", None).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let calls = fake.calls();
    assert_eq!(calls.len(), 9, "{calls:?}");
    assert!(
        calls[..5]
            .iter()
            .all(|c| !c.throttled && c.status == Some(200))
    );
    assert!(
        calls[5..]
            .iter()
            .all(|c| c.throttled && c.status == Some(429))
    );
    assert_eq!(calls[5].input_data, None, "a refused call is not read");

    // Once the accepted calls have left the window a whole budget is back: the refusals, later
    // than them, were not counted.
    until(calls[4].at + per + SLACK).await;
    let resumed = Instant::now();
    for _ in 0..5 {
        assert_eq!(sdp.get("/statuses", None).await.0, StatusCode::OK);
    }
    assert_eq!(
        sdp.get("/statuses", None).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let now = Instant::now();
    assert_eq!(fake.calls_between(t0, now).len(), 15);
    let after = fake.calls_between(resumed, now);
    assert_eq!(after.len(), 6);
    assert_eq!(after.iter().filter(|c| c.throttled).count(), 1);
    assert!(fake.calls_between(now, Instant::now()).is_empty());

    // A Retry-After when a test wants one.
    fake.set_budget_retry_after(Some(7));
    let response = sdp
        .request(Method::GET, "/statuses", None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");

    // Unlimited, and a fresh call log.
    fake.set_budget(None);
    for _ in 0..70 {
        assert_eq!(sdp.get("/statuses", None).await.0, StatusCode::OK);
    }
    let last_seq = fake.calls().last().unwrap().seq;
    fake.reset_calls();
    assert!(fake.calls().is_empty());
    assert_eq!(sdp.get("/statuses", None).await.0, StatusCode::OK);
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].seq > last_seq);
    assert_eq!(calls[0].status, Some(200));
    fake.stop().await;
}

#[actix_web::test]
async fn fake_sdp_onprem_over_budget_blocks_every_call_for_a_while() {
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let sdp = Client::new(&fake).await;
    let id = fake.raise_request("Blocked", "bob@example.com");
    let per = Duration::from_millis(300);
    fake.set_budget(Some((5, per)));
    // The block outlasts the window by far, so the checks inside it have time on a busy machine.
    fake.set_block_period(Duration::from_secs(2));
    let path = format!("/requests/{id}");
    for _ in 0..5 {
        assert_eq!(sdp.get(&path, None).await.0, StatusCode::OK);
    }
    let note = json!({"note": {"description": "one burst too many"}});
    let response = sdp
        .request(Method::POST, &format!("{path}/notes"), Some(&note))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("retry-after").is_none());
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    assert!(
        page.contains("URL blocked as maximum access limit exceeded"),
        "{page}"
    );
    assert!(serde_json::from_str::<Value>(&page).is_err(), "not JSON");
    assert!(fake.notes(&id).is_empty(), "a refused call changes nothing");
    let blocked_until = fake.blocked_until().expect("a block is in force");

    // Well after the window has passed the block still refuses every call.
    let accepted = fake.calls()[4].at;
    until(accepted + per + SLACK).await;
    assert!(
        Instant::now() < blocked_until,
        "the block outlasts the window"
    );
    let (status, body) = sdp.get(&path, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let refused: Vec<_> = fake.calls().into_iter().filter(|c| c.throttled).collect();
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|c| c.status == Some(403)));

    // Then a whole budget again, and a new block after it.
    until(blocked_until).await;
    assert!(fake.blocked_until().is_none());
    for _ in 0..5 {
        assert_eq!(sdp.get(&path, None).await.0, StatusCode::OK);
    }
    assert_eq!(sdp.get(&path, None).await.0, StatusCode::FORBIDDEN);
    assert!(fake.blocked_until().is_some());

    // A zero block refuses only the calls over the budget, as Cloud does.
    fake.set_budget(Some((2, per)));
    fake.set_block_period(Duration::ZERO);
    fake.set_budget_retry_after(Some(60));
    for _ in 0..2 {
        assert_eq!(sdp.get(&path, None).await.0, StatusCode::OK);
    }
    let response = sdp.request(Method::GET, &path, None).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["retry-after"], "60");
    assert!(fake.blocked_until().is_none());
    let last_ok = fake.calls().iter().rev().find(|c| !c.throttled).unwrap().at;
    until(last_ok + per + SLACK).await;
    assert_eq!(sdp.get(&path, None).await.0, StatusCode::OK);
    fake.stop().await;
}

fn wire_note_key(profile: Profile) -> &'static str {
    match profile {
        Profile::OnPrem => "note",
        Profile::Cloud => "request_note",
    }
}

#[actix_web::test]
async fn fake_sdp_requests_read_as_a_live_instance_shows_them() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let fresh = fake.raise_request("Fresh", "alice@example.com");
        let (_, body) = sdp.get(&format!("/requests/{fresh}"), None).await;
        let r = &body["request"];
        assert!(r["last_updated_time"].is_null(), "{profile:?}: {r}");
        for flag in ["has_notes", "has_attachments", "has_conversation"] {
            assert_eq!(r[flag], false, "{flag}");
        }
        assert_eq!(r["unreplied_count"], 0);
        assert_eq!(r["attachments"], json!([]));

        // List rows are abbreviated.
        let (_, list) = sdp.get("/requests", None).await;
        let keys: BTreeSet<&str> = list["requests"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let abbreviated = BTreeSet::from([
            "id",
            "display_id",
            "subject",
            "requester",
            "technician",
            "status",
            "template",
            "group",
            "created_time",
            "due_by_time",
            "has_notes",
            "is_service_request",
            "cancellation_requested",
            "has_draft",
        ]);
        assert_eq!(keys, abbreviated, "{profile:?}");

        // Mail: a conversation, unreplied until the team answers.
        fake.add_email(&fresh, EmailFrom::Requester, "hello?");
        fake.add_email(&fresh, EmailFrom::Requester, "anyone?");
        let got = fake.request(&fresh).unwrap();
        assert_eq!(got["has_conversation"], true);
        assert_eq!(got["unreplied_count"], 2);
        fake.add_email(&fresh, EmailFrom::Technician("Tech One".into()), "yes");
        assert_eq!(fake.request(&fresh).unwrap()["unreplied_count"], 0);
        fake.attach_file(&fresh, "shot.png", b"\x89PNG");
        let (_, body) = sdp.get(&format!("/requests/{fresh}"), None).await;
        let r = &body["request"];
        assert_eq!(r["has_attachments"], true);
        let attachment = &r["attachments"][0];
        assert_eq!(attachment["name"], "shot.png");
        assert_eq!(
            attachment["size"]["value"], "4",
            "revised format: {attachment}"
        );
        assert!(attachment["content_url"].is_string());

        // Every change through the API is an edit.
        let raised: Vec<String> = (0..7)
            .map(|i| fake.raise_request(&format!("edit {i}"), "bob@example.com"))
            .collect();
        let assign = match profile {
            Profile::OnPrem => "assign",
            Profile::Cloud => "_assign",
        };
        let note_key = wire_note_key(profile);
        let edits = [
            (
                Method::PUT,
                String::new(),
                json!({"request": {"status": {"name": "On Hold"}}}),
            ),
            (
                Method::PUT,
                format!("/{assign}"),
                json!({"request": {"technician": {"name": "Tech Two"}}}),
            ),
            (
                Method::POST,
                "/notes".to_owned(),
                json!({note_key: {"description": "noted"}}),
            ),
            (
                Method::POST,
                "/resolutions".to_owned(),
                json!({"resolution": {"content": "fixed"}}),
            ),
            (
                Method::PUT,
                String::new(),
                json!({"request": {"requester": {"email_id": "carol@example.com"}}}),
            ),
        ];
        for ((method, sub, input), id) in edits.into_iter().zip(&raised) {
            let what = format!("{method} {sub}");
            let (status, body) = sdp
                .call(method, &format!("/requests/{id}{sub}"), Some(input))
                .await;
            assert_eq!(status, StatusCode::OK, "{what}: {body}");
            let r = fake.request(id).unwrap();
            assert!(
                ms(&r["last_updated_time"]) > ms(&r["created_time"]),
                "{profile:?} {what}: {r}"
            );
        }
        let (status, _) = sdp
            .upload(
                Method::PUT,
                &format!("/requests/{}/upload", raised[5]),
                "a.txt",
                b"a".to_vec(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(fake.request(&raised[5]).unwrap()["last_updated_time"].is_object());
        let (status, _) = sdp
            .upload(
                Method::POST,
                &format!("/requests/{}/_upload", raised[6]),
                "b.txt",
                b"b".to_vec(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            fake.request(&raised[6]).unwrap()["last_updated_time"].is_null(),
            "a staged upload is not bound yet"
        );

        fake.set_last_updated_null_until_edited(false);
        let r = fake.request(&raised[6]).unwrap();
        assert_eq!(r["last_updated_time"], r["created_time"]);
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_reads_fields_required_where_each_deployment_does() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let id = fake.raise_request_with(json!({"subject": "Fields", "description": "<p>body</p>",
                                                 "requester": {"email_id": "alice@example.com"}}));
        let wanted = json!(["subject", "description", "last_updated_time"]);
        let inside = json!({"list_info": {"row_count": 5, "fields_required": wanted}});
        let (status, body) = sdp.get("/requests", Some(inside.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let row = &body["requests"][0];
        match profile {
            Profile::OnPrem => {
                assert!(row.get("description").is_none(), "ignored inside: {row}");
                assert!(row["status"].is_object(), "the abbreviated row: {row}");
            }
            Profile::Cloud => {
                assert_eq!(row["description"], "<p>body</p>", "{row}");
                assert!(row.get("status").is_none(), "only what was asked: {row}");
            }
        }
        let top = json!({"fields_required": wanted, "list_info": {"row_count": 5}});
        let (_, body) = sdp.get("/requests", Some(top)).await;
        let row = &body["requests"][0];
        assert_eq!(row["description"], "<p>body</p>", "{profile:?}: {row}");
        assert!(row["last_updated_time"].is_null(), "asked for, and null");
        fake.set_fields_required_in_list_info(profile == Profile::OnPrem);
        let (_, body) = sdp.get("/requests", Some(inside)).await;
        assert_eq!(
            body["requests"][0].get("description").is_some(),
            profile == Profile::OnPrem,
            "the setter swaps it: {body}"
        );

        // Single-object GETs take no input_data at all.
        let note = fake.add_note(&id, "a note", false);
        let mail = fake.add_email(&id, EmailFrom::Requester, "a mail");
        let (_, statuses) = sdp.get("/statuses", None).await;
        let status_id = statuses["statuses"][0]["id"].as_str().unwrap().to_owned();
        let singles = [
            format!("/requests/{id}"),
            format!("/requests/{id}/notes/{note}"),
            format!("/requests/{id}/notifications/{mail}"),
            format!("/requests/{id}/resolutions"),
            format!("/statuses/{status_id}"),
        ];
        for path in &singles {
            let (status, body) = sdp.get(path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            let fields = json!({"fields_required": ["id"]});
            for input in [json!({}), fields] {
                let (status, body) = sdp.get(path, Some(input)).await;
                assert_eq!(
                    (status, message_code(&body)),
                    (StatusCode::BAD_REQUEST, 4000),
                    "{profile:?} {path}"
                );
            }
        }
        fake.set_reject_single_get_input(false);
        let (status, body) = sdp.get(&singles[0], Some(json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        fake.stop().await;
    }
}

/// Pages through `path` with the default row count; returns each page's size.
async fn page_sizes(sdp: &Client, path: &str, key: &str) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut start = 1;
    loop {
        let input = (start > 1).then(|| json!({"list_info": {"start_index": start}}));
        let (status, body) = sdp.get(path, input).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let rows = body[key].as_array().unwrap().len();
        assert_eq!(body["list_info"]["start_index"], start, "{path}");
        assert_eq!(body["list_info"]["row_count"], rows, "{path}");
        sizes.push(rows);
        if body["list_info"]["has_more_rows"] != true {
            return sizes;
        }
        start += rows;
    }
}

#[actix_web::test]
async fn fake_sdp_pages_every_list() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        // Cloud: the directory needs the users scope.
        fake.grant_scope("SDPOnDemand.users.ALL");
        let sdp = Client::new(&fake).await;
        let id = fake.raise_request("Long thread", "alice@example.com");
        let notes: Vec<String> = (0..25)
            .map(|i| fake.add_note(&id, &format!("<p>note {i}</p>"), i % 2 == 0))
            .collect();
        fake.add_email(&id, EmailFrom::Requester, "mail one");
        fake.add_email(&id, EmailFrom::Technician("Tech One".into()), "mail two");
        for i in 0..12 {
            fake.attach_file(&id, &format!("f{i}.txt"), b"x");
        }
        for i in 0..11 {
            fake.raise_request(&format!("r{i}"), &format!("user{i}@example.com"));
        }
        let notes_path = format!("/requests/{id}/notes");
        assert_eq!(
            page_sizes(&sdp, &notes_path, "notes").await,
            [10, 10, 5],
            "{profile:?}"
        );
        assert_eq!(
            page_sizes(
                &sdp,
                &format!("/requests/{id}/conversations"),
                "conversations"
            )
            .await,
            [10, 10, 7]
        );
        assert_eq!(
            page_sizes(&sdp, &format!("/requests/{id}/attachments"), "attachments").await,
            [10, 2]
        );
        assert_eq!(page_sizes(&sdp, "/requests", "requests").await, [10, 2]);
        let (people, other) = match profile {
            Profile::OnPrem => ("users", "requesters"),
            Profile::Cloud => ("requesters", "users"),
        };
        assert_eq!(
            page_sizes(&sdp, &format!("/{people}"), people).await,
            [10, 2]
        );
        let (status, body) = sdp.get(&format!("/{other}"), None).await;
        assert_eq!(
            (status, message_code(&body)),
            (StatusCode::NOT_FOUND, 4007),
            "{profile:?} has no /{other}"
        );
        fake.set_both_user_paths(true);
        assert_eq!(sdp.get(&format!("/{other}"), None).await.0, StatusCode::OK);
        for (path, key) in [
            ("/statuses", "statuses"),
            ("/priorities", "priorities"),
            ("/request_types", "request_types"),
            ("/categories", "categories"),
            ("/request_templates", "request_templates"),
        ] {
            let (_, body) = sdp
                .get(path, Some(json!({"list_info": {"row_count": 1}})))
                .await;
            assert_eq!(body[key].as_array().unwrap().len(), 1, "{path}");
            assert_eq!(body["list_info"]["has_more_rows"], true, "{path}");
        }

        // The notes list has no bodies; the note by id has.
        let (_, first) = sdp.get(&notes_path, None).await;
        assert_eq!(ids(&first, "notes"), notes[..10]);
        assert!(first["notes"][0].get("description").is_none(), "{first}");
        let (_, one) = sdp.get(&format!("{notes_path}/{}", notes[0]), None).await;
        assert_eq!(one[wire_note_key(profile)]["description"], "<p>note 0</p>");
        fake.set_note_list_descriptions(true);
        let (_, first) = sdp.get(&notes_path, None).await;
        assert_eq!(first["notes"][0]["description"], "<p>note 0</p>");

        // total_count on demand (get_total_count echoed as a string), start_index 0, limits.
        let (_, body) = sdp
            .get(&notes_path, Some(json!({"list_info": {"start_index": 0, "row_count": 100, "get_total_count": true}})))
            .await;
        assert_eq!(body["notes"].as_array().unwrap().len(), 25);
        assert_eq!(body["list_info"]["total_count"], 25);
        assert_eq!(body["list_info"]["get_total_count"], "true");
        assert_eq!(body["list_info"]["start_index"], 1);
        assert_eq!(body["list_info"]["has_more_rows"], false);
        let (status, body) = sdp
            .get(&notes_path, Some(json!({"list_info": {"row_count": 101}})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["response_status"][0]["status_code"], 4000);
        fake.set_default_row_count(25);
        assert_eq!(page_sizes(&sdp, &notes_path, "notes").await, [25]);
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_searches_what_the_sync_needs() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let a = fake.raise_request("A", "alice@example.com");
        let b = fake.raise_request("B", "alice@example.com");
        let c = fake.raise_request("C", "alice@example.com");
        fake.set_status(&b, "On Hold", None);
        let created = |id: &str| ms(&fake.request(id).unwrap()["created_time"]).to_string();
        let search = |criteria: Value| {
            json!({"list_info": {"row_count": 100, "sort_field": "created_time", "sort_order": "asc",
                                 "search_criteria": criteria}})
        };
        let find = async |criteria: Value| {
            let (status, body) = sdp.get("/requests", Some(search(criteria))).await;
            assert_eq!(status, StatusCode::OK, "{profile:?}: {body}");
            ids(&body, "requests")
        };

        let gt = |field: &str, value: String| json!({"field": field, "condition": "greater than", "value": value});
        let gte = |field: &str, value: String| json!({"field": field, "condition": "greater or equal", "value": value});
        assert_eq!(
            find(gt("created_time", created(&a))).await,
            [b.clone(), c.clone()]
        );
        assert_eq!(
            find(gte("created_time", created(&a))).await,
            [a.clone(), b.clone(), c.clone()]
        );
        assert_eq!(
            find(gte("last_updated_time", "0".into())).await,
            std::slice::from_ref(&b),
            "a null last_updated_time never matches"
        );
        assert_eq!(
            find(gt("last_updated_time", created(&a))).await,
            std::slice::from_ref(&b)
        );
        assert_eq!(
            find(json!({"field": "id", "condition": "is", "values": [a, c]})).await,
            [a.clone(), c.clone()]
        );
        let many: Vec<String> = (0..101).map(|i| format!("{}", 1000 + i)).collect();
        let (status, body) = sdp
            .get(
                "/requests",
                Some(search(
                    json!({"field": "id", "condition": "is", "values": many}),
                )),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "101 ids: {body}");

        // A date criterion with another: on-prem refuses, Cloud answers.
        let mixed = [
            json!([gt("created_time", created(&a)),
                   {"field": "status.name", "condition": "is", "value": "Open", "logical_operator": "AND"}]),
            json!([gt("created_time", created(&a)),
                   {"field": "last_updated_time", "condition": "greater than", "value": created(&a), "logical_operator": "OR"}]),
            json!({"field": "subject", "condition": "is", "value": "B",
                   "children": [gt("created_time", created(&a))]}),
        ];
        for criteria in &mixed {
            let (status, body) = sdp.get("/requests", Some(search(criteria.clone()))).await;
            match profile {
                Profile::OnPrem => assert_eq!(
                    (status, message_code(&body)),
                    (StatusCode::BAD_REQUEST, 4000),
                    "{criteria}"
                ),
                Profile::Cloud => assert_eq!(status, StatusCode::OK, "{criteria}: {body}"),
            }
        }
        let plain = json!([{"field": "subject", "condition": "is", "value": "B"},
                           {"field": "status.name", "condition": "is", "value": "Open", "logical_operator": "OR"}]);
        assert_eq!(find(plain).await, [a.clone(), b.clone(), c.clone()]);
        fake.set_mixed_date_criteria(profile == Profile::OnPrem);
        let (status, body) = sdp.get("/requests", Some(search(mixed[0].clone()))).await;
        assert_eq!(
            status == StatusCode::OK,
            profile == Profile::OnPrem,
            "the setter swaps it: {body}"
        );
        fake.stop().await;
    }
}

// ----- beyond the happy path -----

/// `messages[0]` of a failed answer.
fn first_message(body: &Value) -> &Value {
    let status = &body["response_status"];
    let status = if status.is_array() {
        &status[0]
    } else {
        status
    };
    &status["messages"][0]
}

/// Whether `GET /requests` (100 rows) lists `id`.
async fn listed(sdp: &Client, id: &str) -> bool {
    let (status, body) = sdp
        .get("/requests", Some(json!({"list_info": {"row_count": 100}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ids(&body, "requests").iter().any(|listed| listed == id)
}

#[actix_web::test]
async fn fake_sdp_trashes_restores_and_purges() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let id = sdp
            .create(json!({"subject": "Trash me", "requester": {"email_id": "alice@example.com"}}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/requests/{id}");
        let (_, body) = sdp.get(&path, None).await;
        assert_eq!(
            body["request"]["is_trashed"], false,
            "{profile:?}: on every request"
        );
        let created = ms(&body["request"]["created_time"]);

        // Purge is only for the trash; wrong verbs name themselves.
        let (status, body) = sdp.call(Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["response_status"]["status_code"], 4000);
        assert_eq!(
            first_message(&body)["status_code"],
            4017,
            "{profile:?}: {body}"
        );
        assert_eq!(first_message(&body)["message"], "Not in trash");
        let (status, body) = sdp
            .call(Method::PUT, &format!("{path}/move_to_trash"), None)
            .await;
        assert_eq!(
            (status, message_code(&body)),
            (StatusCode::BAD_REQUEST, 4021)
        );
        assert_eq!(first_message(&body)["field"], "PUT");
        let (status, body) = sdp
            .call(
                Method::PUT,
                &path,
                Some(json!({"request": {"is_trashed": true}})),
            )
            .await;
        assert_eq!(
            (status, message_code(&body)),
            (StatusCode::BAD_REQUEST, 4009)
        );
        assert_eq!(first_message(&body)["field"], "is_trashed");

        let (status, body) = sdp
            .call(Method::DELETE, &format!("{path}/move_to_trash"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{profile:?}: {body}");
        assert_eq!(body["response_status"]["status_code"], 2000);
        let trashed = &body["request"];
        assert_eq!(trashed["id"], id.as_str());
        assert_eq!(trashed["is_trashed"], true);
        assert_eq!(trashed["deleted_by"]["name"], "Deskbridge API");
        assert!(trashed["deleted_on"]["value"].is_string(), "{trashed}");
        let (status, body) = sdp
            .call(Method::DELETE, &format!("{path}/move_to_trash"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(first_message(&body)["status_code"], 4016, "{body}");

        // A trashed request still answers GET, edited, and leaves the lists; it is read-only.
        let (status, body) = sdp.get(&path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["request"]["is_trashed"], true);
        assert!(ms(&body["request"]["last_updated_time"]) > created);
        assert!(body["request"]["deleted_time"]["value"].is_string());
        assert!(
            !listed(&sdp, &id).await,
            "{profile:?}: trashed rows are not listed"
        );
        let (status, body) = sdp
            .call(
                Method::PUT,
                &path,
                Some(json!({"request": {"subject": "edited in the trash"}})),
            )
            .await;
        assert_eq!((status, message_code(&body)), (StatusCode::FORBIDDEN, 4002));
        let (status, _) = sdp.get(&format!("{path}/notes"), None).await;
        assert_eq!(status, StatusCode::OK, "its notes can be read");

        // Restore takes no input_data.
        let restore = format!("{path}/restore_from_trash");
        let (status, body) = sdp
            .call(Method::PUT, &restore, Some(json!({"request": {}})))
            .await;
        assert_eq!(
            (status, message_code(&body)),
            (StatusCode::BAD_REQUEST, 4000)
        );
        assert_eq!(fake.request(&id).unwrap()["is_trashed"], true);
        let (status, body) = sdp.call(Method::PUT, &restore, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, body) = sdp.get(&path, None).await;
        assert_eq!(body["request"]["is_trashed"], false);
        assert!(body["request"]["deleted_time"].is_null());
        assert!(listed(&sdp, &id).await);
        let (status, body) = sdp.call(Method::PUT, &restore, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(first_message(&body)["status_code"], 4017);

        // Trashed in SDP, then purged through the API: gone, a plain 404.
        let note = fake.add_note(&id, "goes with it", false);
        fake.trash(&id);
        let (status, body) = sdp.call(Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = sdp.get(&path, None).await;
        assert_eq!((status, message_code(&body)), (StatusCode::NOT_FOUND, 4007));
        assert!(first_message(&body)["message"].is_string());
        let (status, _) = sdp.get(&format!("{path}/notes/{note}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(fake.request(&id).is_none());

        // The [U] choices are switches.
        let other = fake.raise_request("Other", "bob@example.com");
        fake.set_trash_rules(TrashRules {
            in_lists: true,
            read_only: false,
            ..TrashRules::default()
        });
        fake.trash(&other);
        assert!(listed(&sdp, &other).await, "{profile:?}");
        let (status, body) = sdp
            .call(
                Method::PUT,
                &format!("/requests/{other}"),
                Some(json!({"request": {"subject": "edited in the trash"}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        fake.set_trash_rules(TrashRules {
            get_not_found: true,
            ..TrashRules::default()
        });
        let (status, body) = sdp.get(&format!("/requests/{other}"), None).await;
        assert_eq!((status, message_code(&body)), (StatusCode::NOT_FOUND, 4007));
        fake.restore(&other);
        assert_eq!(
            sdp.get(&format!("/requests/{other}"), None).await.0,
            StatusCode::OK
        );
        fake.trash(&other);
        fake.purge(&other);
        assert!(fake.request(&other).is_none());
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_merges_requests_into_a_parent() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let parent = fake.raise_request("Printer down", "alice@example.com");
        let child = fake.raise_request_with(json!({"subject": "Printer still down",
            "description": "<p>same printer</p>", "requester": {"email_id": "bob@example.com"}}));
        let second = fake.raise_request("Printer down again", "carol@example.com");
        let before = ms(&fake.request(&parent).unwrap()["created_time"]);

        fake.merge(&parent, &child);
        for path in [
            format!("/requests/{child}"),
            format!("/requests/{child}/notes"),
        ] {
            let (status, body) = sdp.get(&path, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{profile:?} {path}: {body}");
            let message = first_message(&body);
            assert_eq!(message["status_code"], 4007);
            assert_eq!(
                message["message"],
                json!({"parent_request": {"id": parent},
                       "message": format!("Request Id(s) {child} has been Merged with Parent Request {parent}.")}),
                "{profile:?}: an object"
            );
        }
        assert!(
            !listed(&sdp, &child).await,
            "{profile:?}: the child leaves the lists"
        );
        assert!(listed(&sdp, &parent).await);

        let (_, body) = sdp.get(&format!("/requests/{parent}"), None).await;
        assert!(ms(&body["request"]["last_updated_time"]) > before);
        assert_eq!(body["request"]["has_conversation"], true);
        let (_, body) = sdp
            .get(&format!("/requests/{parent}/conversations"), None)
            .await;
        let rows = body["conversations"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{body}");
        let url = format!(
            "{}{}",
            fake.root_url(),
            rows[0]["content_url"].as_str().unwrap()
        );
        let (status, detail) = send(
            sdp.http
                .get(url)
                .header("Accept", ACCEPT)
                .header(sdp.auth.0, &sdp.auth.1),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{detail}");
        let notification = &detail["notification"];
        assert_eq!(notification["notification_history"]["operation"], "MERGE");
        assert_eq!(notification["merged_request_id"], child.as_str());
        assert_eq!(notification["description"], "<p>same printer</p>");

        // Through the API, with its limits.
        let merge = format!("/requests/{parent}/merge_requests");
        let (status, body) = sdp
            .call(
                Method::PUT,
                &merge,
                Some(json!({"merge_requests": [{"id": parent}]})),
            )
            .await;
        assert_eq!(
            (status, message_code(&body)),
            (StatusCode::BAD_REQUEST, 4001)
        );
        let fifty: Vec<Value> = (0..50).map(|_| json!({"id": second})).collect();
        let (status, _) = sdp
            .call(Method::PUT, &merge, Some(json!({"merge_requests": fifty})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, body) = sdp
            .call(
                Method::PUT,
                &merge,
                Some(json!({"merge_requests": [{"id": second}]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = sdp.get(&format!("/requests/{second}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            first_message(&body)["message"]["parent_request"]["id"],
            parent.as_str()
        );
        let (_, body) = sdp
            .get(&format!("/requests/{parent}/conversations"), None)
            .await;
        assert_eq!(body["conversations"].as_array().unwrap().len(), 2);
        let (status, _) = sdp
            .call(
                Method::PUT,
                &format!("/requests/{child}"),
                Some(json!({"request": {"subject": "x"}})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a merge cannot be undone");
        fake.stop().await;
    }
}

/// GETs an absolute URL with no SDP credential at all.
async fn fetch_plain(url: &str) -> (StatusCode, Vec<u8>) {
    let response = reqwest::get(url).await.expect("the other origin answers");
    let status = response.status();
    (status, response.bytes().await.unwrap().to_vec())
}

#[actix_web::test]
async fn fake_sdp_serves_files_from_another_origin_without_credentials() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let id = fake.raise_request("Files elsewhere", "alice@example.com");
        fake.absolute_content_urls(true);
        fake.attach_file(&id, "shot.png", b"\x89PNG shot");
        let mail = fake.add_email_with_files(
            &id,
            EmailFrom::Requester,
            "<p>log attached</p>",
            &[("boot.log", b"boot log")],
        );
        fake.set_resolution_with_files(&id, "<p>patched</p>", &[("fix.txt", b"the fix")]);

        let (_, request) = sdp.get(&format!("/requests/{id}"), None).await;
        let (_, notification) = sdp
            .get(&format!("/requests/{id}/notifications/{mail}"), None)
            .await;
        let (_, resolution) = sdp.get(&format!("/requests/{id}/resolutions"), None).await;
        let files = [
            (
                &request["request"]["attachments"][0],
                b"\x89PNG shot".as_slice(),
            ),
            (&notification["notification"]["attachments"][0], b"boot log"),
            (
                &resolution["resolution"]["resolution_attachments"][0],
                b"the fix",
            ),
        ];
        for (attachment, bytes) in files {
            let url = attachment["content_url"]
                .as_str()
                .unwrap_or_else(|| panic!("{attachment}"));
            assert!(
                url.starts_with("http://127.0.0.1:"),
                "{profile:?}: absolute: {url}"
            );
            assert!(!url.starts_with(&fake.root_url()), "another origin: {url}");
            assert_eq!(fetch_plain(url).await, (StatusCode::OK, bytes.to_vec()));
        }
        let hits = fake.foreign_hits();
        assert_eq!(hits.len(), 3, "{hits:?}");
        assert!(hits.iter().all(|hit| !hit.had_credential));

        // The other origin tells when a client sends it the SDP credential.
        let url = files[0].0["content_url"].as_str().unwrap();
        let response = sdp
            .http
            .get(url)
            .header(sdp.auth.0, &sdp.auth.1)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let last = fake.foreign_hits().pop().unwrap();
        assert!(last.had_credential, "{last:?}");
        assert!(last.path.starts_with("/files/"), "{last:?}");

        fake.absolute_content_urls(false);
        let (_, request) = sdp.get(&format!("/requests/{id}"), None).await;
        let url = request["request"]["attachments"][0]["content_url"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/api/v3/"), "relative again: {url}");
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_resolution_files_and_both_download_paths() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let id = fake.raise_request("Resolved with a file", "alice@example.com");
        let shot = fake.attach_file(&id, "shot.png", b"\x89PNG");
        fake.set_resolution_with_files(
            &id,
            "<p>patched, see attached</p>",
            &[("fix.txt", b"the fix"), ("howto.pdf", b"%PDF")],
        );
        let (status, body) = sdp.get(&format!("/requests/{id}/resolutions"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let resolution = &body["resolution"];
        assert_eq!(resolution["content"], "<p>patched, see attached</p>");
        let files = resolution["resolution_attachments"].as_array().unwrap();
        assert_eq!(files.len(), 2, "{profile:?}: {resolution}");
        assert_eq!(files[0]["name"], "fix.txt");
        assert_eq!(files[0]["size"]["value"], "7");
        let url = format!(
            "{}{}",
            fake.root_url(),
            files[0]["content_url"].as_str().unwrap()
        );
        let response = sdp
            .http
            .get(url)
            .header(sdp.auth.0, &sdp.auth.1)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.bytes().await.unwrap().as_ref(), b"the fix");

        let (_, request) = sdp.get(&format!("/requests/{id}"), None).await;
        let request = &request["request"];
        assert_eq!(
            request["resolution"]["resolution_attachments"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            ids(request, "attachments"),
            std::slice::from_ref(&shot),
            "resolution files are its own"
        );

        for verb in ["download", "_download"] {
            let url = fake.api_url(&format!("/requests/{id}/attachments/{shot}/{verb}"));
            let response = sdp
                .http
                .get(url)
                .header(sdp.auth.0, &sdp.auth.1)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{verb}");
            assert_eq!(response.bytes().await.unwrap().as_ref(), b"\x89PNG");
        }

        // A new resolution replaces the old one, files and all.
        fake.set_resolution(&id, "<p>rewritten</p>");
        let (_, body) = sdp.get(&format!("/requests/{id}/resolutions"), None).await;
        assert_eq!(body["resolution"]["resolution_attachments"], json!([]));
        assert_eq!(fake.attachments(&id).len(), 1);
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_holds_a_48_mib_file_once() {
    const SIZE: usize = 48 * 1024 * 1024;
    let fake = FakeSdp::start(Profile::OnPrem).await;
    let sdp = Client::new(&fake).await;
    fake.set_max_upload(64 * 1024 * 1024);
    let id = sdp.create(json!({"subject": "Core dump"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let content: Vec<u8> = (0..SIZE).map(|i| u8::try_from(i % 253).unwrap()).collect();
    let (status, body) = sdp
        .upload(
            Method::PUT,
            &format!("/requests/{id}/upload"),
            "core.bin",
            content.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["attachment"]["size"]["value"], SIZE.to_string());
    let url = format!(
        "{}{}",
        fake.root_url(),
        body["attachment"]["content_url"].as_str().unwrap()
    );
    for _ in 0..2 {
        let response = sdp
            .http
            .get(&url)
            .header(sdp.auth.0, &sdp.auth.1)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.bytes().await.unwrap().as_ref() == content.as_slice());
    }
    // One stored copy, shared by every reader rather than copied for each.
    let first = fake.attachments(&id);
    let again = fake.attachments(&id);
    assert_eq!(first[0].bytes.as_ptr(), again[0].bytes.as_ptr());
    drop((first, again));

    let aid = fake.attach_file(&id, "core2.bin", &content);
    let url = fake.api_url(&format!("/requests/{id}/attachments/{aid}/_download"));
    let response = sdp
        .http
        .get(url)
        .header(sdp.auth.0, &sdp.auth.1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap().as_ref() == content.as_slice());
    fake.stop().await;
}

/// `GET` of a relative `content_url` with the client's credential.
async fn follow(fake: &FakeSdp, sdp: &Client, content_url: &str) -> Value {
    let (status, body) = send(
        sdp.http
            .get(format!("{}{content_url}", fake.root_url()))
            .header("Accept", ACCEPT)
            .header(sdp.auth.0, &sdp.auth.1),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{content_url}: {body}");
    body
}

#[actix_web::test]
async fn fake_sdp_emails_carry_recipients_and_visibility() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let id = fake.raise_request("Link down", "alice@example.com");
        let reply = fake.email_requester(&id, "Tech One", "<p>Please reboot</p>");
        let forward = fake.forward_to_vendor(
            &id,
            "Tech Two",
            "support@vendor.example",
            "<p>Vendor, please look</p>",
        );
        let internal = fake.email_team(
            &id,
            "Tech One",
            "network-team@example.com",
            "<p>Is the link up?</p>",
        );
        let inbound = fake.email_from_requester(&id, "<p>Rebooted, still down</p>");
        let copied = fake.add_email_with(
            &id,
            Email {
                cc: vec!["manager@example.com".into()],
                attachments: vec![("trace.txt".into(), b"hop 1".to_vec())],
                ..Email::new(EmailFrom::Technician("Tech One".into()), "<p>Escalated</p>")
            },
        );

        let (_, body) = sdp
            .get(&format!("/requests/{id}/conversations"), None)
            .await;
        assert_eq!(
            ids(&body, "conversations"),
            [&reply, &forward, &internal, &inbound, &copied].map(String::clone)
        );
        let rows = body["conversations"].as_array().unwrap();
        let shown: Vec<bool> = rows
            .iter()
            .map(|r| r["show_to_requester"].as_bool().unwrap())
            .collect();
        assert_eq!(shown, [true, false, false, true, true], "{profile:?}");
        for row in rows {
            assert_eq!(row["type"], "EMAIL");
            assert!(row["created_time"]["value"].is_string(), "{row}");
            assert!(row.get("description").is_none(), "metadata only: {row}");
        }
        assert_eq!(rows[1]["created_by"]["name"], "Tech Two");
        assert_eq!(rows[4]["has_attachments"], true);

        let mut details = Vec::new();
        for row in rows {
            let detail = follow(&fake, &sdp, row["content_url"].as_str().unwrap()).await;
            details.push(detail["notification"].clone());
        }
        let to: Vec<&Value> = details.iter().map(|d| &d["to"]).collect();
        assert_eq!(
            to,
            [
                &json!(["alice@example.com"]),
                &json!(["support@vendor.example"]),
                &json!(["network-team@example.com"]),
                &json!(["helpdesk@example.com"]),
                &json!(["alice@example.com"]),
            ],
            "{profile:?}"
        );
        assert_eq!(details[1]["sender"]["email_id"], "tech2@example.com");
        assert_eq!(details[1]["show_to_requester"], false);
        assert_eq!(details[1]["description"], "<p>Vendor, please look</p>");
        assert_eq!(details[3]["sender"]["email_id"], "alice@example.com");
        assert_eq!(details[0]["cc"], json!([]));
        assert_eq!(details[4]["cc"], json!(["manager@example.com"]));
        assert!(details[4]["time"]["value"].is_string());
        let file = follow(
            &fake,
            &sdp,
            details[4]["attachments"][0]["content_url"]
                .as_str()
                .unwrap(),
        )
        .await;
        assert_eq!(file, Value::String("hop 1".into()));

        // A forward or an internal mail answers nobody; a reply the requester sees does.
        let unreplied = |fake: &FakeSdp| fake.request(&id).unwrap()["unreplied_count"].clone();
        assert_eq!(unreplied(&fake), 0, "answered by the mail that followed");
        fake.email_from_requester(&id, "<p>Any news?</p>");
        fake.forward_to_vendor(&id, "Tech One", "support@vendor.example", "<p>Nudge</p>");
        assert_eq!(unreplied(&fake), 1);
        fake.email_requester(&id, "Tech One", "<p>Vendor is on it</p>");
        assert_eq!(unreplied(&fake), 0);

        // Recipients as objects, and a hidden mail sent through the API.
        fake.set_recipients_as_objects(true);
        let (_, body) = sdp
            .get(&format!("/requests/{id}/notifications/{forward}"), None)
            .await;
        assert_eq!(
            body["notification"]["to"],
            json!([{"email_id": "support@vendor.example", "name": null}])
        );
        let (_, body) = sdp
            .get(&format!("/requests/{id}/notifications/{reply}"), None)
            .await;
        assert_eq!(
            body["notification"]["to"],
            json!([{"email_id": "alice@example.com", "name": "alice"}])
        );
        let (status, body) = sdp
            .call(
                Method::POST,
                &format!("/requests/{id}/notifications"),
                Some(
                    json!({"notification": {"subject": "Internal", "description": "<p>fyi</p>",
                    "to": [{"email_id": "network-team@example.com"}], "cc": ["tech2@example.com"],
                    "is_public": false}}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["notification"]["show_to_requester"], false);
        assert_eq!(
            body["notification"]["cc"],
            json!([{"email_id": "tech2@example.com", "name": "Tech Two"}])
        );
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_notes_are_edited_rehidden_and_deleted() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let key = wire_note_key(profile);
        let id = fake.raise_request("Notes change", "alice@example.com");
        let notes = format!("/requests/{id}/notes");
        let (status, body) = sdp
            .call(
                Method::POST,
                &notes,
                Some(json!({key: {"description": "<p>first</p>", "show_to_requester": true}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let note = body[key]["id"].as_str().unwrap().to_owned();
        let kept = fake.add_note(&id, "<p>kept</p>", false);
        let updated = |body: &Value| ms(&body["last_updated_time"]);
        let request_updated = |fake: &FakeSdp| ms(&fake.request(&id).unwrap()["last_updated_time"]);
        let (_, one) = sdp.get(&format!("{notes}/{note}"), None).await;
        let mut note_at = updated(&one[key]);
        let mut request_at = request_updated(&fake);

        // Edited in SDP: the note's and the request's times move; the list shows the new time.
        fake.edit_note(&id, &note, "<p>first, corrected</p>");
        let (_, one) = sdp.get(&format!("{notes}/{note}"), None).await;
        assert_eq!(one[key]["description"], "<p>first, corrected</p>");
        assert_eq!(
            one[key]["last_updated_by"]["name"], "Tech One",
            "{profile:?}"
        );
        assert!(updated(&one[key]) > note_at);
        note_at = updated(&one[key]);
        assert!(request_updated(&fake) > request_at);
        request_at = request_updated(&fake);
        let (_, list) = sdp.get(&notes, None).await;
        let row = list["notes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == note.as_str())
            .unwrap();
        assert_eq!(updated(row), note_at, "{row}");

        // Re-hidden: private again, in the note and in the conversations.
        fake.set_note_public(&id, &note, false);
        let (_, one) = sdp.get(&format!("{notes}/{note}"), None).await;
        assert_eq!(one[key]["show_to_requester"], false);
        assert!(updated(&one[key]) > note_at);
        assert!(request_updated(&fake) > request_at);
        request_at = request_updated(&fake);
        let (_, conversations) = sdp
            .get(&format!("/requests/{id}/conversations"), None)
            .await;
        assert_eq!(
            conversations["conversations"][0]["show_to_requester"],
            false
        );

        // The API's edit names its own author.
        let (status, body) = sdp
            .call(
                Method::PUT,
                &format!("{notes}/{note}"),
                Some(json!({key: {"show_to_requester": true}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body[key]["last_updated_by"]["name"], "Deskbridge API");
        assert!(request_updated(&fake) > request_at);
        request_at = request_updated(&fake);

        // Deleted: gone from the list, the note path and the conversations; no tombstone.
        fake.delete_note(&id, &note);
        let (_, list) = sdp.get(&notes, None).await;
        assert_eq!(ids(&list, "notes"), std::slice::from_ref(&kept));
        let (status, body) = sdp.get(&format!("{notes}/{note}"), None).await;
        assert_eq!((status, message_code(&body)), (StatusCode::NOT_FOUND, 4007));
        let (_, conversations) = sdp
            .get(&format!("/requests/{id}/conversations"), None)
            .await;
        assert_eq!(
            ids(&conversations, "conversations"),
            std::slice::from_ref(&kept)
        );
        assert!(request_updated(&fake) > request_at);
        let (status, _) = sdp
            .call(Method::DELETE, &format!("{notes}/{kept}"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(fake.notes(&id).is_empty());
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_statuses_as_a_live_instance_has_them() {
    for (profile, assign) in [(Profile::OnPrem, "assign"), (Profile::Cloud, "_assign")] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        fake.use_default_statuses();
        fake.add_status("Awaiting Vendor", true, true);
        fake.add_status("Investigating", true, false);
        let (_, body) = sdp
            .get("/statuses", Some(json!({"list_info": {"row_count": 100}})))
            .await;
        let flags: Vec<(&str, bool, bool)> = body["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap(),
                    s["in_progress"].as_bool().unwrap(),
                    s["stop_timer"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            flags,
            [
                ("Open", true, false),
                ("On Hold", true, true),
                ("Resolved", false, false),
                ("Closed", false, false),
                ("Cancelled", false, false),
                ("Awaiting Vendor", true, true),
                ("Investigating", true, false),
            ],
            "{profile:?}"
        );
        let on_hold = body["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "On Hold")
            .unwrap();
        assert_eq!(on_hold["internal_name"], "Onhold");

        let id = sdp.create(json!({"subject": "Statuses"})).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/requests/{id}");
        for gone in ["Assigned", "In Progress"] {
            let (status, body) = sdp
                .call(
                    Method::PUT,
                    &path,
                    Some(json!({"request": {"status": {"name": gone}}})),
                )
                .await;
            assert_eq!(
                (status, message_code(&body)),
                (StatusCode::BAD_REQUEST, 4001),
                "{gone}"
            );
            assert_eq!(first_message(&body)["field"], "status");
        }
        let (status, _) = sdp
            .call(
                Method::PUT,
                &format!("/requests/{id}/{assign}"),
                Some(json!({"request": {"technician": {"name": "Tech Two"}}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        fake.assign_technician(&id, "Tech One");
        let (_, body) = sdp.get(&path, None).await;
        assert_eq!(body["request"]["technician"]["name"], "Tech One");
        assert_eq!(
            body["request"]["status"]["name"], "Open",
            "assigning keeps the status"
        );

        // On-prem 15100+ embeds only {id, name, color}: the flags come from /statuses.
        fake.embed_status_flags(false);
        let (status, body) = sdp
            .call(
                Method::PUT,
                &path,
                Some(json!({"request": {"status": {"name": "Awaiting Vendor"}}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let keys: BTreeSet<&str> = body["request"]["status"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["id", "name", "color"]), "{profile:?}");
        let (_, list) = sdp.get("/requests", None).await;
        assert!(list["requests"][0]["status"].get("stop_timer").is_none());
        let (_, statuses) = sdp.get("/statuses", None).await;
        assert!(statuses["statuses"][0]["in_progress"].is_boolean());
        fake.embed_status_flags(true);
        let (_, body) = sdp.get(&path, None).await;
        assert_eq!(body["request"]["status"]["stop_timer"], true);

        // Closing with comments.
        fake.close(&id, "Vendor replaced the card");
        let (_, body) = sdp.get(&path, None).await;
        let r = &body["request"];
        assert_eq!(r["status"]["name"], "Closed");
        assert_eq!(
            r["closure_info"]["closure_comments"],
            "Vendor replaced the card"
        );
        assert!(r["completed_time"]["value"].is_string());
        let last = fake.status_changes(&id).pop().unwrap();
        assert_eq!(
            (
                last.from.as_str(),
                last.to.as_str(),
                last.comments.as_deref()
            ),
            (
                "Awaiting Vendor",
                "Closed",
                Some("Vendor replaced the card")
            )
        );
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_changes_requesters_and_finds_them_by_email() {
    for (profile, people, one) in [
        (Profile::OnPrem, "users", "user"),
        (Profile::Cloud, "requesters", "requester"),
    ] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        if profile == Profile::Cloud {
            // The documented scopes (requests, setup) do not reach the directory (§2).
            let (status, _) = sdp.get(&format!("/{people}"), None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            fake.grant_scope("SDPOnDemand.users.ALL");
        }
        let id = fake.raise_request("Whose is it", "alice@example.com");
        let alice = fake.request(&id).unwrap()["requester"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/requests/{id}");
        let mut last = ms(&fake.request(&id).unwrap()["created_time"]);
        let mut requester_is = |email: &str, name: &str| {
            let r = fake.request(&id).unwrap();
            assert_eq!(r["requester"]["email_id"], email, "{profile:?}");
            assert_eq!(r["requester"]["name"], name);
            let now = ms(&r["last_updated_time"]);
            assert!(now > last, "a requester change is an edit");
            last = now;
        };

        fake.change_requester(&id, "dave@example.com", "Dave Example");
        requester_is("dave@example.com", "Dave Example");
        for (by, email, name) in [
            (json!({"id": alice}), "alice@example.com", "alice"),
            (
                json!({"name": "Dave Example"}),
                "dave@example.com",
                "Dave Example",
            ),
            (
                json!({"email_id": "erin@example.com"}),
                "erin@example.com",
                "erin",
            ),
        ] {
            let (status, body) = sdp
                .call(
                    Method::PUT,
                    &path,
                    Some(json!({"request": {"requester": by}})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            requester_is(email, name);
        }

        // Looked up by e-mail, paged.
        let list = format!("/{people}");
        let (status, body) = sdp
            .get(
                &list,
                Some(json!({"list_info": {"row_count": 10, "search_criteria":
                [{"field": "email_id", "condition": "is", "value": "DAVE@example.com"}]}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rows = body[people].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{profile:?}: {body}");
        assert_eq!(rows[0]["name"], "Dave Example");
        let (_, body) = sdp
            .get(
                &list,
                Some(json!({"list_info": {"search_fields": {"email_id": "erin@example.com"}}})),
            )
            .await;
        assert_eq!(body[people][0]["email_id"], "erin@example.com");
        let (_, body) = sdp
            .get(&list, Some(json!({"list_info": {"row_count": 2}})))
            .await;
        assert_eq!(body[people].as_array().unwrap().len(), 2);
        assert_eq!(body["list_info"]["has_more_rows"], true);

        // Created with the profile's wrapper.
        let frank =
            json!({one: {"name": "Frank", "email_id": "frank@example.com", "phone": "123"}});
        let (status, body) = sdp.call(Method::POST, &list, Some(frank.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body[one]["email_id"], "frank@example.com");
        assert!(body[one]["id"].is_string());
        let (status, body) = sdp.call(Method::POST, &list, Some(frank)).await;
        assert_eq!(
            (status, message_code(&body)),
            (StatusCode::BAD_REQUEST, 4008)
        );
        let other = if one == "user" { "requester" } else { "user" };
        let (status, body) = sdp
            .call(
                Method::POST,
                &list,
                Some(json!({other: {"name": "G", "email_id": "g@example.com"}})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, _) = sdp
            .call(
                Method::POST,
                &list,
                Some(json!({one: {"name": "G", "colour": "red"}})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Without auto-creation an unknown requester is refused, a known one is fine.
        fake.auto_create_requesters(false);
        let (status, body) = sdp
            .call(
                Method::POST,
                "/requests",
                Some(json!({"request": {"subject": "Ghost", "requester": {"email_id": "ghost@example.com"}}})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["response_status"]["status_code"], 4000);
        assert_eq!(first_message(&body)["status_code"], 4001);
        assert_eq!(first_message(&body)["field"], "requester");
        let (status, body) = sdp
            .call(
                Method::PUT,
                &path,
                Some(json!({"request": {"requester": {"name": "Nobody Known"}}})),
            )
            .await;
        assert_eq!(
            (status, message_code(&body)),
            (StatusCode::BAD_REQUEST, 4001)
        );
        sdp.create(json!({"subject": "Frank's", "requester": {"email_id": "frank@example.com"}}))
            .await;
        let raised = fake.raise_request("Raised in SDP", "henry@example.com");
        assert_eq!(
            fake.request(&raised).unwrap()["requester"]["email_id"],
            "henry@example.com",
            "someone in SDP may add a requester"
        );
        fake.stop().await;
    }
}

#[actix_web::test]
async fn fake_sdp_cloud_display_ids_differ_from_ids() {
    let fake = FakeSdp::start(Profile::Cloud).await;
    let sdp = Client::new(&fake).await;
    let plain = sdp.create(json!({"subject": "Plain"})).await;
    assert!(plain["display_id"].is_string());
    assert_ne!(plain["display_id"], plain["id"]);
    fake.set_display_id_object(true);
    let object = sdp.create(json!({"subject": "Object"})).await;
    let display = &object["display_id"];
    assert!(
        display["display_value"]
            .as_str()
            .unwrap()
            .starts_with("REQ-")
    );
    assert_ne!(display["value"], object["id"], "{object}");
    fake.stop().await;
}

#[actix_web::test]
async fn fake_sdp_fires_a_form_webhook() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Option<String>, String)>();
    let receiver = actix_web::HttpServer::new(move || {
        let tx = tx.clone();
        actix_web::App::new().default_service(actix_web::web::to(
            move |req: actix_web::HttpRequest, body: String| {
                let content_type = req
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                tx.send((content_type, body)).unwrap();
                async { actix_web::HttpResponse::Ok().finish() }
            },
        ))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}/hooks/sdp", receiver.addrs()[0]);
    let server = receiver.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let fake = FakeSdp::start(Profile::Cloud).await;
    let status = fake
        .fire_webhook_form(
            &url,
            &[
                ("request_id", "123640000000240013"),
                ("event", "request updated"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let (content_type, body) = rx.recv().await.unwrap();
    assert_eq!(
        content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(body, "request_id=123640000000240013&event=request+updated");
    handle.stop(false).await;
    fake.stop().await;
}

#[actix_web::test]
async fn fake_sdp_lists_subcategories_by_category_and_refuses_a_mismatch() {
    for profile in [Profile::OnPrem, Profile::Cloud] {
        let fake = FakeSdp::start(profile).await;
        let sdp = Client::new(&fake).await;
        let (status, body) = sdp.get("/categories", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let category = |name: &str| {
            body["categories"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .map_or_else(
                    || panic!("{name}: {body}"),
                    |c| c["id"].as_str().unwrap().to_owned(),
                )
        };
        let (hardware, network) = (category("Hardware"), category("Network"));
        let path = format!("/categories/{hardware}/subcategories");
        let (status, subs) = sdp.get(&path, None).await;
        assert_eq!(status, StatusCode::OK, "{subs}");
        let names: Vec<&str> = subs["subcategories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Laptop", "Printer"], "{subs}");
        // Paged as strictly as every list.
        let one = json!({"list_info": {"row_count": 1, "start_index": 2}});
        let (_, page) = sdp.get(&path, Some(one)).await;
        assert_eq!(ids(&page, "subcategories").len(), 1, "{page}");
        assert_eq!(page["subcategories"][0]["name"], "Printer", "{page}");
        assert_eq!(page["list_info"]["has_more_rows"], false, "{page}");
        let too_many = json!({"list_info": {"row_count": 101}});
        let (status, body) = sdp.get(&path, Some(too_many)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = sdp.get("/categories/424242/subcategories", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

        let printer = ids(&subs, "subcategories")[1].clone();
        let request = |category: &str| {
            json!({"request": {"subject": "Jam", "requester": {"email_id": "alice@example.com"},
                   "category": {"id": category}, "subcategory": {"id": printer}}})
        };
        let (status, body) = sdp
            .call(Method::POST, "/requests", Some(request(&network)))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(message_code(&body), 4001, "{body}");
        let (status, body) = sdp
            .call(Method::POST, "/requests", Some(request("424242")))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(message_code(&body), 4001, "{body}");
        let created = sdp.create(request(&hardware)["request"].clone()).await;
        let stored = fake.request(created["id"].as_str().unwrap()).unwrap();
        assert_eq!(stored["category"]["id"], hardware.as_str(), "{stored}");
        assert_eq!(stored["subcategory"]["id"], printer.as_str(), "{stored}");
    }
}
