//! `POST /api/v1/hooks/sdp`: SDP's trigger calls this with a request id. The body is only a hint to
//! read that request now; nothing in it is trusted as data.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::resource;
use crate::auth::secrets_equal;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::service::AppState;

pub(crate) const SECRET_HEADER: &str = "X-Deskbridge-Secret";

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/hooks/sdp").route(web::post().to(sdp_webhook)));
}

/// The request id, as `request_id`, `id` or `request.id`, string or number.
fn request_id(body: &Value) -> Option<String> {
    let candidates = [
        body.get("request_id"),
        body.get("id"),
        body.pointer("/request/id"),
    ];
    candidates.into_iter().flatten().find_map(|v| match v {
        Value::String(s)
            if !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(s.clone())
        }
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    })
}

/// The body as JSON: a JSON body as is; a form body (what an SDP custom function may post) as an
/// object of its fields, `request.id` and `request[id]` as `request.id`, and a field holding JSON
/// (`input_data`) as that JSON.
fn body_value(body: &[u8]) -> Value {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        return json;
    }
    let Ok(fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for (name, value) in fields {
        match name.as_str() {
            "request.id" | "request[id]" => {
                out.insert("request".into(), serde_json::json!({ "id": value }));
            }
            "input_data" | "data" | "payload" => {
                if let Ok(Value::Object(inner)) = serde_json::from_str::<Value>(&value) {
                    for (k, v) in inner {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            _ => {
                out.insert(name, Value::String(value));
            }
        }
    }
    Value::Object(out)
}

fn query_secret(req: &HttpRequest) -> Option<String> {
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("secret").cloned())
}

#[utoipa::path(post, path = "/api/v1/hooks/sdp", tag = "sync",
    request_body(content = String, content_type = "application/json", description = "JSON with request_id, id or request.id; \
        or a form (application/x-www-form-urlencoded) with request_id, id, request.id or request[id]"),
    params(("X-Deskbridge-Secret" = Option<String>, Header, description = "The webhook secret (or ?secret=)")),
    responses((status = 202, description = "The request will be read shortly"), (status = 401, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub(crate) async fn sdp_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let sdp = state.sync.sdp();
    let expected = sdp.webhook_secret.expose();
    let given = req
        .headers()
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_secret(&req))
        .unwrap_or_default();
    if expected.is_empty() || !secrets_equal(expected, &given) {
        return Err(ApiError::new(
            ErrorCode::InvalidWebhookSecret,
            "the webhook secret is missing or wrong",
        ));
    }
    if !state.sync.is_running() {
        return Err(crate::service::sync::sync_off());
    }
    let parsed = body_value(&body);
    let Some(id) = request_id(&parsed) else {
        return Err(ApiError::field(
            ErrorCode::InvalidField,
            "request_id",
            "send the SDP request id as request_id, id or request.id",
        ));
    };
    if !state.sync.hint(crate::sdp::Lane::Hint, id) {
        return Err(crate::service::sync::sync_off());
    }
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status": "scheduled"})))
}

#[cfg(test)]
mod tests {
    use super::{body_value, request_id};
    use serde_json::json;

    #[test]
    fn form_bodies_name_the_request_as_json_ones_do() {
        for form in [
            "request_id=101",
            "id=101&event=updated",
            "request.id=101",
            "request%5Bid%5D=101",
            "input_data=%7B%22request%22%3A%7B%22id%22%3A101%7D%7D",
        ] {
            assert_eq!(
                request_id(&body_value(form.as_bytes())),
                Some("101".into()),
                "{form}"
            );
        }
        assert_eq!(request_id(&body_value(b"nothing=here")), None);
        assert_eq!(request_id(&body_value(b"\xff\xfe")), None);
    }

    #[test]
    fn the_id_is_found_in_any_documented_place() {
        assert_eq!(
            request_id(&json!({"request_id": "101"})),
            Some("101".into())
        );
        assert_eq!(
            request_id(&json!({"id": 123_640_000_000_240_013_u64})),
            Some("123640000000240013".into())
        );
        assert_eq!(
            request_id(&json!({"request": {"id": "7"}})),
            Some("7".into())
        );
        assert_eq!(request_id(&json!({"request_id": "../etc"})), None);
        assert_eq!(request_id(&json!({"other": 1})), None);
    }
}
