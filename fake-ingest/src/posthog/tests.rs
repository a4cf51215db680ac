//! Unit tests of the PostHog decoder: body forms, api keys, validation, gzip detection.

use serde_json::json;

use super::*;
use crate::web_body::tests::gzip;

const UUID: &str = "01936F4E-8A2B-7C3D-9E4F-5A6B7C8D9E0F";

fn event(name: &str) -> Value {
    json!({
        "event": name,
        "distinct_id": "user-1",
        "uuid": UUID,
        "timestamp": "2026-11-23T10:55:10.123+01:00",
        "properties": {"$lib": "posthog-python", "plan": "pro"}
    })
}

/// The error body the HTTP side sends for `error`.
fn body_of(error: &PosthogError) -> String {
    error_body_for(error.status(), &error.detail(), error.attr())
}

fn decode_json(body: &Value) -> Result<Batch, PosthogError> {
    decode(body.to_string().as_bytes())
}

fn invalid_event_reason(body: &Value) -> String {
    match decode_json(body) {
        Err(PosthogError::InvalidEvent { reason, .. }) => reason,
        other => panic!("expected an invalid event, got {other:?}"),
    }
}

#[test]
fn a_batch_decodes_with_its_api_key_sent_at_and_migration_flag() {
    let body = json!({
        "api_key": "phc_test",
        "batch": [event("signed_up"), event("paid")],
        "sent_at": "2026-11-23T10:55:11Z",
        "historical_migration": true
    });
    let batch = decode_json(&body).expect("valid batch");
    assert_eq!(batch.api_key, "phc_test");
    assert_eq!(batch.sent_at.as_deref(), Some("2026-11-23T10:55:11Z"));
    assert!(batch.historical_migration);
    assert_eq!(batch.events.len(), 2);
    let first = &batch.events[0];
    assert_eq!(first.name, "signed_up");
    assert_eq!(first.dedupe_key, "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f");
    assert!(first.has_idempotency_key);
    assert_eq!(first.distinct_id.as_deref(), Some("user-1"));
    assert_eq!(first.timestamp.as_deref(), Some("2026-11-23T09:55:10.123Z"));
    assert_eq!(first.properties["plan"], json!("pro"));
    assert_eq!(first.resource, None);
}

#[test]
fn the_api_key_may_be_token_or_dollar_token_or_inside_an_event() {
    for key in ["token", "$token"] {
        let body = json!({ key: "phc_x", "batch": [event("a")] });
        assert_eq!(decode_json(&body).expect("valid").api_key, "phc_x");
    }
    let mut single = event("pageview");
    single["api_key"] = json!("phc_single");
    assert_eq!(decode_json(&single).expect("valid").api_key, "phc_single");
    let mut posthog_js = event("pageview");
    posthog_js["properties"]["token"] = json!("phc_js");
    assert_eq!(
        decode_json(&json!([posthog_js])).expect("valid").api_key,
        "phc_js"
    );
}

#[test]
fn a_request_without_an_api_key_is_unauthorized() {
    let error = decode_json(&json!({"batch": [event("a")]})).expect_err("no key");
    assert!(matches!(error, PosthogError::MissingApiKey));
    assert_eq!(error.status(), 401);
    let body: Value = serde_json::from_str(&body_of(&error)).expect("JSON");
    assert_eq!(body["type"], json!("authentication_error"));
    let blank =
        decode_json(&json!({"api_key": " ", "batch": [event("a")]})).expect_err("blank key");
    assert!(matches!(blank, PosthogError::MissingApiKey));
}

#[test]
fn a_single_event_without_uuid_gets_a_fresh_key_and_no_idempotency_key() {
    let body = json!({"api_key": "k", "event": "pageview", "properties": {"distinct_id": 42}});
    let batch = decode_json(&body).expect("valid");
    let first = &batch.events[0];
    assert!(!first.has_idempotency_key);
    assert!(first.dedupe_key.starts_with("nokey:"));
    assert_eq!(first.distinct_id.as_deref(), Some("42"));
    assert_eq!(first.timestamp, None);
    let again = decode_json(&body).expect("valid");
    assert_ne!(
        again.events[0].dedupe_key, first.dedupe_key,
        "a key-less resend is never a duplicate"
    );
}

#[test]
fn an_empty_batch_is_a_bad_request() {
    let error = decode_json(&json!({"api_key": "k", "batch": []})).expect_err("empty");
    assert!(matches!(error, PosthogError::EmptyBatch));
    assert_eq!(error.status(), 400);
    assert!(matches!(
        decode_json(&json!([])),
        Err(PosthogError::EmptyBatch)
    ));
}

#[test]
fn events_without_a_name_or_distinct_id_are_bad_requests_naming_the_event() {
    let mut no_name = event("x");
    no_name.as_object_mut().expect("object").remove("event");
    let body = json!({"api_key": "k", "batch": [event("fine"), no_name]});
    match decode_json(&body) {
        Err(error @ PosthogError::InvalidEvent { index: 1, .. }) => {
            let body: Value = serde_json::from_str(&body_of(&error)).expect("JSON");
            assert_eq!(
                body,
                json!({"type": "validation_error", "code": "invalid_payload", "detail": "invalid payload: event 1: `event` is missing", "attr": 1})
            );
        }
        other => panic!("expected event 1 to be invalid, got {other:?}"),
    }
    let mut no_distinct_id = event("x");
    no_distinct_id
        .as_object_mut()
        .expect("object")
        .remove("distinct_id");
    assert_eq!(
        invalid_event_reason(&json!({"api_key": "k", "batch": [no_distinct_id]})),
        "`distinct_id` is missing"
    );
    let mut empty_name = event("");
    empty_name["api_key"] = json!("k");
    assert_eq!(invalid_event_reason(&empty_name), "`event` is empty");
}

#[test]
fn invalid_timestamps_and_uuids_are_bad_requests() {
    let mut bad_time = event("x");
    bad_time["timestamp"] = json!("yesterday");
    assert!(
        invalid_event_reason(&json!({"api_key": "k", "batch": [bad_time]}))
            .contains("not an ISO 8601")
    );
    let mut numeric_time = event("x");
    numeric_time["timestamp"] = json!(1_700_000_000);
    assert_eq!(
        invalid_event_reason(&json!({"api_key": "k", "batch": [numeric_time]})),
        "`timestamp` must be a string"
    );
    let mut bad_uuid = event("x");
    bad_uuid["uuid"] = json!("not-a-uuid");
    assert!(
        invalid_event_reason(&json!({"api_key": "k", "batch": [bad_uuid]}))
            .contains("is not a UUID")
    );
}

#[test]
fn a_timestamp_without_an_offset_is_read_as_utc() {
    let mut naive = event("x");
    naive["timestamp"] = json!("2026-11-23T10:55:10.123456");
    let batch = decode_json(&json!({"api_key": "k", "batch": [naive]})).expect("valid");
    assert_eq!(
        batch.events[0].timestamp.as_deref(),
        Some("2026-11-23T10:55:10.123456Z")
    );
}

#[test]
fn bodies_that_are_not_posthog_payloads_are_bad_requests() {
    for body in [
        &b"not json"[..],
        b"42",
        b"{\"batch\": {}}",
        b"{\"hello\": 1}",
        b"{\"api_key\":\"k\",\"batch\":[1]}",
    ] {
        let error = decode(body).expect_err("bad payload");
        assert_eq!(error.status(), 400, "{error}");
    }
}

#[test]
fn gzip_is_detected_by_header_query_or_magic_bytes() {
    let body = json!({"api_key": "k", "batch": [event("zipped")]}).to_string();
    let compressed = gzip(body.as_bytes());
    assert!(is_gzip(Some("gzip"), None, b"{}"));
    assert!(is_gzip(None, Some("ip=1&compression=gzip-js&ver=1"), b"{}"));
    assert!(is_gzip(None, None, &compressed));
    assert!(!is_gzip(
        Some("identity"),
        Some("compression=base64"),
        body.as_bytes()
    ));

    // The magic bytes win even when the headers say nothing.
    let plain = decompress(None, None, &compressed, 1 << 20).expect("valid gzip");
    assert_eq!(decode(&plain).expect("valid").events[0].name, "zipped");
    // A body that claims gzip but is not gzip is a bad request.
    let error = decompress(Some("gzip"), None, body.as_bytes(), 1 << 20).expect_err("not gzip");
    assert_eq!(error.status(), 400);
    assert!(body_of(&error).contains("not valid gzip"));
}

#[test]
fn bodies_over_the_limit_are_too_large_before_and_after_decompression() {
    let body = vec![b' '; 100];
    assert_eq!(
        decompress(None, None, &body, 99)
            .expect_err("too big")
            .status(),
        413
    );
    assert_eq!(
        decompress(None, None, &gzip(&body), 99)
            .expect_err("too big")
            .status(),
        413
    );
}

#[test]
fn injected_faults_have_posthogs_error_shape() {
    let body: Value =
        serde_json::from_str(&error_body_for(503, "injected fault", None)).expect("JSON");
    assert_eq!(
        body,
        json!({"type": "server_error", "code": "server_error", "detail": "injected fault", "attr": null})
    );
    let body: Value =
        serde_json::from_str(&error_body_for(429, "injected fault", None)).expect("JSON");
    assert_eq!(body["code"], json!("rate_limited"));
    assert_eq!(
        serde_json::from_str::<Value>(SUCCESS_BODY).expect("JSON"),
        json!({"status": 1})
    );
}
