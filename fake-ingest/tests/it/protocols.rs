//! The OTLP/HTTP and PostHog front doors, `GET /` and `GET /metrics`, through `app()` and `oneshot`: every answer's
//! status, content type and body (snapshotted), dedupe, rejection counting, and fault rules narrowed by `route` and
//! `protocol`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use fake_ingest::{Config, FaultPlan, app};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use serde_json::{Value, json};

use crate::support::{POSTHOG_ROUTES, get, oneshot_bytes, runtime};

/// `google.rpc.Status`, as a client decodes it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// A response as the tests look at it.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or_default()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

fn new_app() -> Router {
    app(Config::default()).expect("the default config is valid")
}

fn app_with_faults(plan: Value) -> Router {
    let faults = FaultPlan::from_json(&plan.to_string()).expect("a valid plan");
    app(Config {
        faults,
        ..Config::default()
    })
    .expect("a valid config")
}

fn send(app: &Router, request: Request<Body>) -> Answer {
    let (status, headers, body) = runtime().block_on(oneshot_bytes(app, request));
    Answer {
        status,
        headers,
        body,
    }
}

fn post(path: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", content_type)
        .body(body.into())
        .expect("a request")
}

fn get_json(app: &Router, path: &str) -> Value {
    let answer = send(app, get(path));
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "GET {path}: {}",
        answer.text()
    );
    answer.json()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

fn string_value(text: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(text.to_owned())),
    })
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".to_owned(),
            value: string_value("checkout"),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn logs(bodies: &[&str], trace_id: Vec<u8>) -> ExportLogsServiceRequest {
    let records = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| LogRecord {
            time_unix_nano: 1_763_895_310_123_000_000 + index as u64,
            severity_number: 9,
            body: string_value(body),
            trace_id: trace_id.clone(),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn spans(names: &[&str]) -> ExportTraceServiceRequest {
    let spans = names
        .iter()
        .enumerate()
        .map(|(index, name)| Span {
            trace_id: vec![0x5b; 16],
            span_id: vec![index as u8 + 1; 8],
            name: (*name).to_owned(),
            start_time_unix_nano: 1_763_895_310_123_000_000,
            end_time_unix_nano: 1_763_895_310_124_000_000,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn posthog_batch(names: &[&str]) -> Value {
    let events: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            json!({"event": name, "distinct_id": "user-1", "uuid": format!("01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0{index}"),
                   "timestamp": "2026-11-23T10:55:10.123Z", "properties": {"plan": "pro"}})
        })
        .collect();
    json!({"api_key": "phc_test", "batch": events})
}

// ----- OTLP ------------------------------------------------------------------------------------------------------

#[test]
fn otlp_protobuf_logs_are_stored_and_answered_with_an_empty_protobuf_response() {
    let app = new_app();
    let body = logs(&["payment accepted", "payment refused"], Vec::new()).encode_to_vec();

    let answer = send(&app, post("/v1/logs", "application/x-protobuf", body));

    assert_eq!(
        (answer.status, answer.content_type(), answer.body.len()),
        (StatusCode::OK, "application/x-protobuf", 0)
    );
    let page = get_json(&app, "/_fake/events?protocol=otlp_logs");
    let names: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["name"].as_str())
        .collect();
    assert_eq!(names, ["payment accepted", "payment refused"]);
    assert_eq!(page["events"][0]["route"], json!("/v1/logs"));
    assert_eq!(
        page["events"][0]["resource"],
        json!({"service.name": "checkout"})
    );
}

#[test]
fn otlp_json_is_answered_in_json() {
    let app = new_app();
    let body = serde_json::to_string(&spans(&["GET /pay"])).expect("serializable");

    let answer = send(&app, post("/v1/traces", "application/json", body));

    assert_eq!(
        (answer.status, answer.content_type()),
        (StatusCode::OK, "application/json")
    );
    insta::assert_snapshot!("otlp_json_full_success", answer.text());
}

#[test]
fn resent_spans_are_counted_as_duplicates_and_stored_once() {
    let app = new_app();
    let body = spans(&["a", "b"]).encode_to_vec();

    send(
        &app,
        post("/v1/traces", "application/x-protobuf", body.clone()),
    );
    let answer = send(&app, post("/v1/traces", "application/x-protobuf", body));

    assert_eq!(answer.status, StatusCode::OK);
    let stats = get_json(&app, "/_fake/stats");
    assert_eq!(
        (
            stats["events_received"].clone(),
            stats["events_unique"].clone(),
            stats["duplicates"].clone()
        ),
        (json!(4), json!(2), json!(2))
    );
    let keys =
        get_json(&app, "/_fake/events?protocol=otlp_traces")["events"][0]["dedupe_key"].clone();
    assert_eq!(
        keys,
        json!("span:5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b:0101010101010101")
    );
}

#[test]
fn derived_otlp_keys_survive_a_restart_so_a_resend_after_it_is_a_duplicate() {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let config = || Config {
        data_dir: Some(data_dir.path().to_path_buf()),
        ..Config::default()
    };
    let logs_body =
        serde_json::to_string(&logs(&["kept across restarts"], Vec::new())).expect("JSON");
    let spans_body = spans(&["span"]).encode_to_vec();

    let first = app(config()).expect("a valid config");
    send(&first, post("/v1/logs", "application/json", logs_body));
    send(
        &first,
        post("/v1/traces", "application/x-protobuf", spans_body.clone()),
    );
    drop(first);
    let restarted = app(config()).expect("the log replays");
    // The same records again, the log record now in protobuf: the keys do not depend on the encoding.
    let logs_protobuf = logs(&["kept across restarts"], Vec::new()).encode_to_vec();
    send(
        &restarted,
        post("/v1/logs", "application/x-protobuf", logs_protobuf),
    );
    send(
        &restarted,
        post("/v1/traces", "application/x-protobuf", spans_body),
    );

    let stats = get_json(&restarted, "/_fake/stats");
    assert_eq!(
        (stats["events_unique"].clone(), stats["duplicates"].clone()),
        (json!(2), json!(2))
    );
}

#[test]
fn a_log_record_uid_is_the_dedupe_key_so_a_changed_resend_is_still_a_duplicate() {
    let app = new_app();
    let with_uid = |body: &str, uid: &str| {
        let mut request = logs(&[body], Vec::new());
        request.resource_logs[0].scope_logs[0].log_records[0]
            .attributes
            .push(KeyValue {
                key: "log.record.uid".to_owned(),
                value: string_value(uid),
                ..Default::default()
            });
        request.encode_to_vec()
    };
    let uid = "01936F4E-8A2B-7C3D-9E4F-5A6B7C8D9E0F";

    // The same uid with another body (another derived hash), then a record without one.
    send(
        &app,
        post("/v1/logs", "application/x-protobuf", with_uid("first", uid)),
    );
    send(
        &app,
        post(
            "/v1/logs",
            "application/x-protobuf",
            with_uid("second", uid),
        ),
    );
    let without = logs(&["no uid"], Vec::new()).encode_to_vec();
    send(&app, post("/v1/logs", "application/x-protobuf", without));

    let stats = get_json(&app, "/_fake/stats");
    assert_eq!(
        (stats["events_unique"].clone(), stats["duplicates"].clone()),
        (json!(2), json!(1))
    );
    let events = get_json(&app, "/_fake/events?protocol=otlp_logs")["events"].clone();
    assert_eq!(
        events[0]["dedupe_key"],
        "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f"
    );
    assert!(
        events[1]["dedupe_key"]
            .as_str()
            .is_some_and(|key| key.starts_with("log:")),
        "{events}"
    );
}

#[test]
fn log_records_with_an_invalid_trace_id_get_a_partial_success_and_count_as_rejected() {
    let app = new_app();
    let mut request = logs(&["kept"], Vec::new());
    let bad = logs(&["bad trace id"], vec![1, 2, 3]);
    request.resource_logs.extend(bad.resource_logs);

    let json_answer = send(
        &app,
        post(
            "/v1/logs",
            "application/json",
            serde_json::to_string(&request).expect("JSON"),
        ),
    );
    let protobuf_answer = send(
        &app,
        post(
            "/v1/logs",
            "application/x-protobuf",
            request.encode_to_vec(),
        ),
    );

    assert_eq!(json_answer.status, StatusCode::OK);
    insta::assert_snapshot!("otlp_json_partial_success", json_answer.text());
    let response = ExportLogsServiceResponse::decode(protobuf_answer.body.as_slice())
        .expect("a response message");
    assert_eq!(
        response
            .partial_success
            .map(|partial| partial.rejected_log_records),
        Some(1)
    );
    let stats = get_json(&app, "/_fake/stats");
    assert_eq!(
        stats["events_rejected"],
        json!(2),
        "one rejected record per request"
    );
    assert_eq!(stats["events_unique"], json!(1));
}

#[test]
fn undecodable_otlp_bodies_get_400_with_a_google_rpc_status_in_the_request_encoding() {
    let app = new_app();

    let json_answer = send(
        &app,
        post(
            "/v1/logs",
            "application/json",
            r#"{"resourceLogs": "not a list"}"#,
        ),
    );
    let protobuf_answer = send(
        &app,
        post(
            "/v1/metrics",
            "application/x-protobuf",
            &b"\xff\xff\xff"[..],
        ),
    );

    assert_eq!(
        (json_answer.status, json_answer.content_type()),
        (StatusCode::BAD_REQUEST, "application/json")
    );
    insta::assert_snapshot!("otlp_json_bad_request", json_answer.text());
    assert_eq!(
        (protobuf_answer.status, protobuf_answer.content_type()),
        (StatusCode::BAD_REQUEST, "application/x-protobuf")
    );
    let status = RpcStatus::decode(protobuf_answer.body.as_slice()).expect("a google.rpc.Status");
    assert_eq!(status.code, 3);
    assert!(
        status
            .message
            .starts_with("the body is not a valid protobuf ExportMetricsServiceRequest"),
        "{}",
        status.message
    );
    assert_eq!(get_json(&app, "/_fake/stats")["events_received"], json!(0));
}

#[test]
fn a_json_array_on_an_otlp_route_is_a_400_that_says_an_object_is_expected() {
    let app = new_app();
    for route in ["/v1/logs", "/v1/traces", "/v1/metrics"] {
        let answer = send(&app, post(route, "application/json", "[]"));
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{route}");
        let status: Value = serde_json::from_slice(&answer.body).expect("a JSON status");
        assert_eq!(status["code"], json!(3));
        let message = status["message"].as_str().expect("a message");
        assert!(
            message.ends_with("expected a JSON object, found an array"),
            "{route}: {message}"
        );
    }
    assert_eq!(get_json(&app, "/_fake/stats")["events_received"], json!(0));
}

#[test]
fn a_posthog_node_capture_log_request_is_stored_with_its_token_and_deduped() {
    // What posthog-node's captureLog() sends: OTLP/JSON, gzip, the project token in the query.
    let app = new_app();
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeLogs": [{"scope": {"name": "posthog-node"}, "logRecords": [{
            "timeUnixNano": "1763895310123000000", "severityNumber": 9, "severityText": "INFO",
            "body": {"stringValue": "checkout done"},
            "attributes": [{"key": "order", "value": {"intValue": "42"}}]
        }]}]
    }]});
    let request = || {
        Request::post("/i/v1/logs?token=phc_node")
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(Body::from(gzip(body.to_string().as_bytes())))
            .expect("a request")
    };

    let first = send(&app, request());
    let resent = send(&app, request());

    assert_eq!(
        (first.status, resent.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(first.json(), json!({}));
    let stats = get_json(&app, "/_fake/stats");
    assert_eq!(
        (stats["events_unique"].clone(), stats["duplicates"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(stats["routes"]["/i/v1/logs"]["requests"], json!(2));
    let page = get_json(&app, "/_fake/events?route=/i/v1/logs");
    let event = &page["events"][0];
    assert_eq!(event["protocol"], json!("otlp_logs"));
    assert_eq!(event["name"], json!("checkout done"));
    assert_eq!(event["properties"]["posthog.token"], json!("phc_node"));
    assert_eq!(
        event["properties"]["otel.scope.name"],
        json!("posthog-node")
    );
    assert_eq!(event["properties"]["order"], json!(42));
}

#[test]
fn posthog_otlp_routes_take_the_token_from_a_bearer_header_and_refuse_requests_without_one() {
    let app = new_app();
    let traces = spans(&["GET /"]);
    for route in ["/i/v1/traces", "/i/v1/metrics", "/i/v1/logs"] {
        let refused = send(
            &app,
            post(route, "application/x-protobuf", Vec::<u8>::new()),
        );
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{route}");
        let status = RpcStatus::decode(refused.body.as_slice()).expect("a google.rpc.Status");
        assert_eq!(status.code, 16, "{route}: UNAUTHENTICATED");
        assert!(status.message.contains("token"), "{}", status.message);
    }
    let with_header = Request::post("/i/v1/traces")
        .header("content-type", "application/x-protobuf")
        .header("authorization", "Bearer phc_header")
        .body(Body::from(traces.encode_to_vec()))
        .expect("a request");
    assert_eq!(send(&app, with_header).status, StatusCode::OK);
    let page = get_json(&app, "/_fake/events?route=/i/v1/traces");
    assert_eq!(
        page["events"][0]["properties"]["posthog.token"],
        json!("phc_header")
    );
    assert_eq!(get_json(&app, "/_fake/stats")["events_received"], json!(1));
}

#[test]
fn otlp_routes_refuse_other_content_types_and_methods_with_a_json_status() {
    let app = new_app();

    let unsupported = send(&app, post("/v1/traces", "text/plain", "hello"));
    let wrong_method = send(&app, get("/v1/traces"));

    assert_eq!(unsupported.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    insta::assert_snapshot!("otlp_unsupported_media_type", unsupported.text());
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    insta::assert_snapshot!("otlp_method_not_allowed", wrong_method.text());
}

#[test]
fn gzip_otlp_bodies_are_decompressed_and_the_limit_applies_after_decompression() {
    let app = app(Config {
        max_body_bytes: 4096,
        ..Config::default()
    })
    .expect("a valid config");
    let small = gzip(&logs(&["zipped"], Vec::new()).encode_to_vec());
    let bomb = gzip(&logs(&[&"x".repeat(10_000)], Vec::new()).encode_to_vec());
    let request = |body: Vec<u8>| {
        Request::post("/v1/logs")
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "gzip")
            .body(Body::from(body))
            .expect("a request")
    };

    let stored = send(&app, request(small));
    let too_large = send(&app, request(bomb));

    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    let status = RpcStatus::decode(too_large.body.as_slice()).expect("a google.rpc.Status");
    assert!(status.message.contains("4096 bytes"), "{}", status.message);
}

#[test]
fn injected_statuses_on_otlp_routes_are_google_rpc_statuses_with_retry_after() {
    let app = app_with_faults(
        json!({"rules": [{"when": {"route": "/v1/logs"}, "then": {"status": 503, "retry_after_secs": 2}}]}),
    );

    let answer = send(
        &app,
        post(
            "/v1/logs",
            "application/json",
            serde_json::to_string(&logs(&["x"], Vec::new())).expect("JSON"),
        ),
    );

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), Some("2"));
    insta::assert_snapshot!("otlp_injected_503", answer.text());
}

#[test]
fn the_reject_fault_answers_otlp_with_a_partial_success_rejecting_every_record() {
    let app = app_with_faults(
        json!({"rules": [{"when": {"protocol": "otlp_traces"}, "then": "reject"}]}),
    );

    let answer = send(
        &app,
        post(
            "/v1/traces",
            "application/json",
            serde_json::to_string(&spans(&["a", "b"])).expect("JSON"),
        ),
    );

    assert_eq!(answer.status, StatusCode::OK);
    insta::assert_snapshot!("otlp_injected_reject", answer.text());
    let stats = get_json(&app, "/_fake/stats");
    assert_eq!(
        (
            stats["events_rejected"].clone(),
            stats["events_unique"].clone(),
            stats["faults"]["reject"].clone()
        ),
        (json!(2), json!(0), json!(1))
    );
}

// ----- PostHog ---------------------------------------------------------------------------------------------------

#[test]
fn a_posthog_batch_is_answered_200_status_1_on_every_route_and_stored_once_by_uuid() {
    let app = new_app();
    for route in POSTHOG_ROUTES {
        let answer = send(
            &app,
            post(
                route,
                "application/json",
                posthog_batch(&["signed_up", "paid"]).to_string(),
            ),
        );
        assert_eq!(answer.status, StatusCode::OK, "{route}");
        insta::assert_snapshot!("posthog_success", answer.text());
    }
    let stats = get_json(&app, "/_fake/stats");
    assert_eq!(
        (stats["events_unique"].clone(), stats["duplicates"].clone()),
        (json!(2), json!(14))
    );
    let event = get_json(&app, "/_fake/events?protocol=posthog")["events"][0].clone();
    assert_eq!(
        (
            event["name"].clone(),
            event["dedupe_key"].clone(),
            event["distinct_id"].clone()
        ),
        (
            json!("signed_up"),
            json!("01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e00"),
            json!("user-1")
        )
    );
}

#[test]
fn a_single_posthog_event_without_uuid_is_stored_each_time_and_counted_without_a_key() {
    let app = new_app();
    let event = json!({"api_key": "phc_test", "event": "$pageview", "distinct_id": "u", "properties": {"$current_url": "/"}});

    for _ in 0..2 {
        let answer = send(&app, post("/e/", "text/plain", event.to_string()));
        assert_eq!(answer.status, StatusCode::OK);
    }

    let stats = get_json(&app, "/_fake/stats");
    assert_eq!(
        (
            stats["events_unique"].clone(),
            stats["events_without_key"].clone()
        ),
        (json!(2), json!(2))
    );
    let page = get_json(&app, "/_fake/events?protocol=posthog");
    assert_eq!(page["events"][0]["has_idempotency_key"], json!(false));
}

#[test]
fn posthog_errors_have_posthogs_shape_and_store_nothing() {
    let app = app(Config {
        max_body_bytes: 2048,
        ..Config::default()
    })
    .expect("a valid config");
    let no_key = json!({"batch": [{"event": "a", "distinct_id": "u"}]});
    let cases = [
        ("not_json", "{".to_owned()),
        ("empty_batch", json!({"api_key": "k", "batch": []}).to_string()),
        ("missing_event", json!({"api_key": "k", "batch": [{"distinct_id": "u"}]}).to_string()),
        ("missing_distinct_id", json!({"api_key": "k", "batch": [{"event": "a"}]}).to_string()),
        ("invalid_timestamp", json!({"api_key": "k", "batch": [{"event": "a", "distinct_id": "u", "timestamp": "noon"}]}).to_string()),
        ("missing_api_key", no_key.to_string()),
        ("too_large", json!({"api_key": "k", "batch": [{"event": "a", "distinct_id": "u", "properties": {"x": "y".repeat(4096)}}]}).to_string()),
    ];
    for (name, body) in cases {
        let answer = send(&app, post("/batch/", "application/json", body));
        insta::assert_snapshot!(
            format!("posthog_{name}"),
            format!("{}\n{}", answer.status.as_u16(), answer.text())
        );
    }
    assert_eq!(get_json(&app, "/_fake/stats")["events_received"], json!(0));
}

#[test]
fn posthog_routes_refuse_other_methods_in_posthogs_shape() {
    let answer = send(&new_app(), get("/i/v0/e/"));

    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.header("allow"), Some("POST"));
    insta::assert_snapshot!("posthog_method_not_allowed", answer.text());
}

#[test]
fn posthog_gzip_is_detected_by_the_magic_bytes_and_by_the_query() {
    let app = new_app();
    let compressed = gzip(posthog_batch(&["zipped"]).to_string().as_bytes());

    let by_magic = send(
        &app,
        post("/batch/", "application/json", compressed.clone()),
    );
    let by_query = send(
        &app,
        post(
            "/e/?compression=gzip-js&ver=1.200.0",
            "text/plain",
            compressed,
        ),
    );

    assert_eq!(
        (by_magic.status, by_query.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(get_json(&app, "/_fake/stats")["events_received"], json!(2));
}

#[test]
fn injected_statuses_on_posthog_routes_have_retry_after_and_posthogs_error_shape() {
    let app = app_with_faults(
        json!({"rules": [{"when": {"protocol": "posthog"}, "then": {"status": 503, "retry_after_secs": 1}}]}),
    );

    let answer = send(
        &app,
        post(
            "/batch/",
            "application/json",
            posthog_batch(&["a"]).to_string(),
        ),
    );

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), Some("1"));
    insta::assert_snapshot!("posthog_injected_503", answer.text());
}

// ----- Shared ----------------------------------------------------------------------------------------------------

#[test]
fn route_and_protocol_conditions_narrow_a_rule_to_one_front_door() {
    let app = app_with_faults(json!({"rules": [
        {"when": {"route": "/v1/logs"}, "then": {"status": 429}},
        {"when": {"protocol": "posthog"}, "then": {"status": 502}}
    ]}));
    let ingest = json!({"batch": [{"uuid": "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f", "event": "e", "distinct_id": "d", "timestamp": "2026-11-23T10:55:10Z"}]});

    let statuses = [
        send(
            &app,
            post(
                "/v1/logs",
                "application/x-protobuf",
                logs(&["x"], Vec::new()).encode_to_vec(),
            ),
        )
        .status,
        send(
            &app,
            post(
                "/v1/traces",
                "application/x-protobuf",
                spans(&["x"]).encode_to_vec(),
            ),
        )
        .status,
        send(
            &app,
            post(
                "/capture/",
                "application/json",
                posthog_batch(&["x"]).to_string(),
            ),
        )
        .status,
        send(
            &app,
            post("/ingest", "application/json", ingest.to_string()),
        )
        .status,
    ];

    assert_eq!(
        statuses,
        [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::OK,
            StatusCode::BAD_GATEWAY,
            StatusCode::ACCEPTED
        ]
    );
}

#[test]
fn the_events_api_filters_by_protocol() {
    let app = new_app();
    send(
        &app,
        post(
            "/v1/traces",
            "application/x-protobuf",
            spans(&["span"]).encode_to_vec(),
        ),
    );
    send(
        &app,
        post(
            "/batch/",
            "application/json",
            posthog_batch(&["click"]).to_string(),
        ),
    );

    let traces = get_json(&app, "/_fake/events?protocol=otlp_traces");
    let posthog = get_json(&app, "/_fake/events?protocol=posthog");
    let everything = get_json(&app, "/_fake/events");

    assert_eq!(
        (traces["total"].clone(), traces["events"][0]["name"].clone()),
        (json!(1), json!("span"))
    );
    assert_eq!(
        (
            posthog["total"].clone(),
            posthog["events"][0]["name"].clone()
        ),
        (json!(1), json!("click"))
    );
    assert_eq!(everything["total"], json!(2));
}

#[test]
fn the_page_is_served_at_the_root_as_one_self_contained_html_document() {
    let answer = send(&new_app(), get("/"));

    assert_eq!(
        (answer.status, answer.content_type()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    let page = answer.text();
    assert!(page.contains("<title>fake-ingest</title>") && page.contains("/_fake/stats"));
    assert!(
        !page.contains("<script src") && !page.contains("https://"),
        "no external resources"
    );
}

#[test]
fn metrics_are_prometheus_text_that_a_parser_reads() {
    let app = app_with_faults(json!({"rules": [{"when": {"nth": 3}, "then": {"status": 503}}]}));
    send(
        &app,
        post(
            "/v1/traces",
            "application/x-protobuf",
            spans(&["a", "b"]).encode_to_vec(),
        ),
    );
    send(
        &app,
        post(
            "/v1/traces",
            "application/x-protobuf",
            spans(&["a"]).encode_to_vec(),
        ),
    );
    send(
        &app,
        post(
            "/batch/",
            "application/json",
            posthog_batch(&["x"]).to_string(),
        ),
    );
    send(&app, post("/batch/", "application/json", "{"));

    let answer = send(&app, get("/metrics"));

    assert_eq!(
        (answer.status, answer.content_type()),
        (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8")
    );
    let text = answer.text();
    insta::assert_snapshot!("metrics", text);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .expect("valid exposition text");
    let value = |name: &str, label: &str, label_value: &str| {
        scrape
            .samples
            .iter()
            .find(|sample| sample.metric == name && sample.labels.get(label) == Some(label_value))
            .map(|sample| match sample.value {
                prometheus_parse::Value::Counter(value)
                | prometheus_parse::Value::Untyped(value) => value,
                ref other => panic!("{name} is not a counter: {other:?}"),
            })
    };
    assert_eq!(
        value("fake_ingest_events_total", "outcome", "unique"),
        Some(2.0)
    );
    assert_eq!(
        value("fake_ingest_events_total", "outcome", "duplicate"),
        Some(1.0)
    );
    assert_eq!(
        value("fake_ingest_faults_total", "kind", "status"),
        Some(1.0)
    );
    let requests = scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == "fake_ingest_requests_total")
        .count();
    assert_eq!(
        requests, 3,
        "(/v1/traces, 200), (/batch/, 503), (/batch/, 400)"
    );
}
