//! The `POST /ingest` front door: the strict decoder of our own batch protocol (`docs/PROTOCOL.md`).
//!
//! Decoding checks, in order: the method (405), the content type (415), the content encoding (415), the body limit
//! before and after decompression (413), then the JSON shape and every field of every event (400, naming the field
//! and the event's index). Nothing is stored unless the whole batch is valid.
//!
//! Two decoders: the typed decode (`typed`) reads a valid body in one pass straight into events, the same events the
//! reference decoder ([`decode_batch_as_tree`]) gives; any body it does not take (an invalid one, or one with a
//! field given twice) is parsed again into a JSON tree by the reference decoder, which checks the shape and the
//! fields in the order above and words every rejection.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::connection::ConnectionHandle;
use crate::event::{IncomingEvent, Protocol};
use crate::front_door::{self, Answers, Intake, Rejection, RequestFacts};
use crate::state::AppState;
use crate::store::StoreOutcome;

mod typed;

/// The route of this front door.
pub(crate) const ROUTE: &str = "/ingest";

/// `POST /ingest`.
pub(crate) async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let ticket = state.store.begin_request(ROUTE, Protocol::Ingest);
    let (parts, body) = request.into_parts();
    let connection = parts.extensions.get::<ConnectionHandle>().cloned();
    let mut facts = RequestFacts::from_parts(&parts, state.upstream.is_some());
    let limit = state.max_body_bytes;
    let decoded = match front_door::require_content_type(&parts.headers, &["application/json"]) {
        Ok(()) => match front_door::read_body(&parts.headers, body, limit, &mut facts).await {
            Ok(bytes) => decode_batch(&bytes),
            Err(rejection) => Err(rejection),
        },
        Err(rejection) => Err(rejection),
    };
    let intake = Intake {
        route: ROUTE,
        protocol: Protocol::Ingest,
        ticket,
        rejected: 0,
    };
    front_door::serve_batch(&state, connection, intake, facts, decoded, &IngestAnswers).await
}

/// `/ingest` answers `202 {"accepted": N, "duplicates": D}`; errors are `{"error": ...}` (the defaults).
struct IngestAnswers;

impl Answers for IngestAnswers {
    fn stored(&self, outcome: StoreOutcome) -> Response {
        // Written directly (two numbers): the same bytes `Json(json!(...))` writes, without building a map.
        let body = format!(
            "{{\"accepted\":{},\"duplicates\":{}}}",
            outcome.accepted, outcome.duplicates
        );
        (
            StatusCode::ACCEPTED,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    }
}

/// Any other method on `/ingest`: `405` with `Allow: POST`.
pub(crate) async fn method_not_allowed(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Response {
    let method = request.method().as_str();
    front_door::method_not_allowed(&state, ROUTE, Protocol::Ingest, method, |message| {
        Rejection::new(StatusCode::METHOD_NOT_ALLOWED, message).into_response()
    })
}

/// Decodes and validates a whole `{"batch": [...]}` body.
///
/// A valid body takes the typed decode ([`typed::decode_valid_batch`]); any other is decoded again as a JSON tree
/// by [`decode_batch_as_tree`], the reference decoder, which words the rejection.
pub(crate) fn decode_batch(bytes: &[u8]) -> Result<Vec<IncomingEvent>, Rejection> {
    match typed::decode_valid_batch(bytes) {
        Some(events) => Ok(events),
        None => decode_batch_as_tree(bytes),
    }
}

/// The reference decoder: parses the body into a JSON tree, then checks its shape and every field of every event
/// in order, and names the first problem.
fn decode_batch_as_tree(bytes: &[u8]) -> Result<Vec<IncomingEvent>, Rejection> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|error| Rejection::bad_request(format!("the body is not valid JSON: {error}")))?;
    let Value::Object(mut top) = value else {
        return Err(Rejection::bad_request(
            "the body must be a JSON object with a \"batch\" array",
        ));
    };
    let batch = match top.remove("batch") {
        Some(Value::Array(batch)) => batch,
        Some(_) => {
            return Err(Rejection::bad_request(
                "\"batch\" must be an array of events",
            ));
        }
        None => return Err(Rejection::bad_request("missing field \"batch\"")),
    };
    if batch.is_empty() {
        return Err(Rejection::bad_request(
            "\"batch\" is empty; send at least one event",
        ));
    }
    // Sized up front: collecting into a `Result` cannot see the length, and would grow the vector (moving every
    // event decoded so far) a few times per batch.
    let mut events = Vec::with_capacity(batch.len());
    for (index, event) in batch.into_iter().enumerate() {
        let decoded = decode_event(event).map_err(|problem| {
            Rejection::bad_request(format!("batch[{index}]{problem}")).at(index)
        })?;
        events.push(decoded);
    }
    Ok(events)
}

/// Decodes one event; the error is the rest of a message that starts with `batch[i]`.
fn decode_event(event: Value) -> Result<IncomingEvent, String> {
    let Value::Object(mut fields) = event else {
        return Err(" must be an object".to_owned());
    };
    let uuid = required_string(&mut fields, "uuid")?;
    let dedupe_key = canonical_uuid_key(uuid)?;
    let name = required_string(&mut fields, "event")?;
    check_name(&name)?;
    let distinct_id = required_string(&mut fields, "distinct_id")?;
    check_distinct_id(&distinct_id)?;
    let timestamp = required_string(&mut fields, "timestamp")?;
    check_timestamp(&timestamp)?;
    let properties = match fields.remove("properties") {
        None => Map::new(),
        Some(Value::Object(properties)) => properties,
        Some(other) => {
            return Err(format!(
                ".properties must be an object, not {}",
                kind(&other)
            ));
        }
    };
    Ok(checked_event(
        dedupe_key,
        name,
        distinct_id,
        timestamp,
        properties,
    ))
}

/// The event of an `/ingest` body, its fields checked (both decoders build it here).
fn checked_event(
    dedupe_key: String,
    name: String,
    distinct_id: String,
    timestamp: String,
    properties: Map<String, Value>,
) -> IncomingEvent {
    IncomingEvent {
        dedupe_key,
        has_idempotency_key: true,
        name,
        timestamp: Some(timestamp),
        distinct_id: Some(distinct_id),
        resource: None,
        shared: None,
        properties,
    }
}

/// The dedupe key of an event's `uuid`: its canonical form (lowercase, hyphenated); the `uuid` must be a
/// hyphenated UUID. A `uuid` already in that form is the key itself.
fn canonical_uuid_key(uuid: String) -> Result<String, String> {
    let parsed = uuid::Uuid::try_parse(&uuid)
        .ok()
        .filter(|_| uuid.len() == 36)
        .ok_or_else(|| format!(".uuid \"{uuid}\" is not a hyphenated UUID"))?;
    let mut canonical = [0_u8; uuid::fmt::Hyphenated::LENGTH];
    if *parsed.hyphenated().encode_lower(&mut canonical) == *uuid {
        return Ok(uuid);
    }
    Ok(parsed.hyphenated().to_string())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(".event must not be empty".to_owned());
    }
    Ok(())
}

fn check_distinct_id(distinct_id: &str) -> Result<(), String> {
    if distinct_id.is_empty() {
        return Err(".distinct_id must not be empty".to_owned());
    }
    Ok(())
}

fn check_timestamp(timestamp: &str) -> Result<(), String> {
    match timestamp.parse::<jiff::Timestamp>() {
        Ok(_) => Ok(()),
        Err(error) => Err(format!(
            ".timestamp \"{timestamp}\" is not an RFC 3339 timestamp with an offset: {error}"
        )),
    }
}

fn required_string(fields: &mut Map<String, Value>, name: &str) -> Result<String, String> {
    match fields.remove(name) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(format!(".{name} must be a string, not {}", kind(&other))),
        None => Err(format!(": missing field \"{name}\"")),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"uuid": "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f", "event": "e", "distinct_id": "d",
        "timestamp": "2026-11-23T10:55:10.123Z", "properties": {"a": 1}}"#;

    fn error_of(body: &str) -> Rejection {
        decode_batch(body.as_bytes()).expect_err("rejected")
    }

    #[test]
    fn a_valid_batch_decodes_with_a_canonical_key() {
        let upper = GOOD.replace(
            "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f",
            "01936F4E-8A2B-7C3D-9E4F-5A6B7C8D9E0F",
        );
        let events = decode_batch(format!(r#"{{"batch": [{upper}], "extra": 1}}"#).as_bytes())
            .expect("valid");
        assert_eq!(events[0].dedupe_key, "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f");
        assert_eq!(events[0].properties["a"], 1);
    }

    #[test]
    fn each_bad_field_is_named_with_the_index_of_its_event() {
        let cases = [
            (
                "uuid",
                r#""not-a-uuid""#,
                "batch[1].uuid \"not-a-uuid\" is not a hyphenated UUID",
            ),
            ("event", r#""""#, "batch[1].event must not be empty"),
            (
                "distinct_id",
                "7",
                "batch[1].distinct_id must be a string, not a number",
            ),
            (
                "properties",
                "[]",
                "batch[1].properties must be an object, not an array",
            ),
        ];
        for (field, value, expected) in cases {
            let mut bad: Map<String, Value> = serde_json::from_str(GOOD).expect("json");
            bad.insert(field.to_owned(), serde_json::from_str(value).expect("json"));
            let body = format!(r#"{{"batch": [{GOOD}, {}]}}"#, Value::Object(bad));
            let rejection = error_of(&body);
            assert_eq!(
                (rejection.error.as_str(), rejection.index),
                (expected, Some(1))
            );
        }
    }

    #[test]
    fn a_timestamp_without_an_offset_is_rejected() {
        let body = format!(r#"{{"batch": [{}]}}"#, GOOD.replace("10.123Z", "10.123"));
        assert!(error_of(&body).error.starts_with("batch[0].timestamp"));
    }

    #[test]
    fn shapes_other_than_a_non_empty_batch_are_rejected_without_an_index() {
        for body in ["[]", "{}", r#"{"batch": {}}"#, r#"{"batch": []}"#, "{", ""] {
            let rejection = error_of(body);
            assert_eq!(
                (rejection.status, rejection.index),
                (StatusCode::BAD_REQUEST, None),
                "{body}"
            );
        }
    }
}
