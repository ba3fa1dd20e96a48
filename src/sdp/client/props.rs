//! Property tests: whatever bytes or JSON SDP answers with, reading them never panics. The JSON is
//! generated around the field names SDP uses, so the wire types' own parsers (ids that are numbers
//! or strings, dates, sizes, addresses, `response_status` as an object or a list) are reached.

use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{Map, Value};

use super::{SdpClient, more_rows, take};
use crate::sdp::dto::{Conversation, Note, Notification, Request, ResponseStatus};

/// Field names SDP uses, for the generated objects' keys.
const FIELDS: &str = "id display_id value display_value name email_id subject description requester \
    technician group status priority request_type created_time last_updated_time due_by_time \
    resolution content submitted_on udf_fields attachments size file_name content_url attached_on \
    is_trashed has_notes has_attachments has_conversation show_to_requester added_time added_by \
    created_by type to cc to_addresses email_cc sender time response_status status_code messages \
    message fields list_info has_more_rows total_count requests request notes note conversations \
    notifications notification in_progress stop_timer internal_name";

/// The keys SDP wraps what it answers in.
const WRAPPERS: &str = "requests request notes note conversations notifications";

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "",
            "0",
            "-1",
            "1718000000000",
            "true",
            "failed",
            "4000",
            "73.78KB",
            " 12 "
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(FIELDS.split_whitespace().collect::<Vec<_>>()),
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Every reader of an SDP body, on one body.
fn read_everything(body: &Value) {
    for key in WRAPPERS.split_whitespace() {
        let _ = take::<Vec<Request>>(body, &[key]);
        let _ = take::<Request>(body, &[key]).map(|r| (r.updated_ms(), r.created_ms(), r.due_ms()));
        let _ = take::<Vec<Note>>(body, &[key]);
        let _ = take::<Note>(body, &[key]).map(|n| n.updated_ms());
        let _ = take::<Vec<Conversation>>(body, &[key]);
        let _ = take::<Notification>(body, &[key]);
    }
    if let Ok(request) = take::<Request>(body, &["request"]) {
        for file in request.attachments.iter().flatten() {
            let _ = file.size_bytes();
        }
    }
    if let Some(status) = ResponseStatus::from_body(body) {
        let _ = (status.failed(), status.code(), status.describe());
        let _ = (status.merged_into(), status.fields());
    }
    let _ = more_rows(body);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_json_is_read_without_a_panic(value in json()) {
        read_everything(&value);
        // Wrapped the way SDP wraps what it answers.
        for key in ["request", "requests", "response_status"] {
            let mut body = Map::new();
            body.insert(key.to_owned(), value.clone());
            read_everything(&Value::Object(body));
        }
    }

    #[test]
    fn any_bytes_and_status_are_checked_without_a_panic(
        body in prop_oneof![
            json().prop_map(|v| v.to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..256),
            Just(b"<html>URL blocked as maximum access limit exceeded</html>".to_vec()),
        ],
        status in prop::sample::select(vec![200u16, 201, 400, 401, 403, 404, 429, 500, 503]),
    ) {
        let status = StatusCode::from_u16(status).expect("a valid status");
        let _ = SdpClient::check(status, None, &body);
    }
}
