//! Unit tests of the OTLP decoders and responses, with requests built from the published `opentelemetry-proto`
//! types and with hand-written OTLP/JSON.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;
use std::sync::Arc;

use serde_json::json;

use super::key::KeyHasher;
use super::response::RpcStatus;
use super::*;
use crate::web_body::gunzip_limited;
use crate::web_body::tests::gzip;

const TRACE_ID: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
const SPAN_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];
const TIME: u64 = 1_763_895_310_123_000_000;

fn string_value(text: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(text.to_owned())),
    })
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: string_value(value),
        ..Default::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![attribute("service.name", "checkout")],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "my.library".to_owned(),
        version: "1.0.0".to_owned(),
        ..Default::default()
    })
}

fn log_record(body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: TIME,
        observed_time_unix_nano: TIME + 1,
        severity_number: 9,
        severity_text: "INFO".to_owned(),
        body: string_value(body),
        attributes: vec![attribute("user", "ada")],
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        ..Default::default()
    }
}

fn logs_request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn span(span_id: [u8; 8], name: &str) -> Span {
    Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: span_id.to_vec(),
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: TIME,
        end_time_unix_nano: TIME + 5_000_000,
        attributes: vec![attribute("http.route", "/pay")],
        ..Default::default()
    }
}

fn traces_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn number_point(time_unix_nano: u64, value: Option<number_data_point::Value>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![attribute("host", "a")],
        start_time_unix_nano: TIME - 1_000,
        time_unix_nano,
        value,
        ..Default::default()
    }
}

fn metrics_request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_owned(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

fn decode_both<M: prost::Message + serde::Serialize>(
    signal: Signal,
    request: &M,
) -> (Decoded, Decoded) {
    let from_protobuf =
        decode(signal, Encoding::Protobuf, &request.encode_to_vec()).expect("valid protobuf");
    let json_body = serde_json::to_vec(request).expect("serializable");
    let from_json = decode(signal, Encoding::Json, &json_body).expect("valid JSON");
    (from_protobuf, from_json)
}

#[test]
fn the_fnv_1a_128_hash_matches_its_published_test_vector() {
    let mut hasher = KeyHasher::new();
    hasher.bytes(b"a");
    assert_eq!(hasher.finish_hex(), "d228cb696f1a8caf78912b704e4a8964");
}

#[test]
fn content_types_map_to_encodings_ignoring_parameters_and_case() {
    assert_eq!(
        Encoding::from_content_type("application/x-protobuf"),
        Some(Encoding::Protobuf)
    );
    assert_eq!(
        Encoding::from_content_type("Application/JSON; charset=utf-8"),
        Some(Encoding::Json)
    );
    assert_eq!(Encoding::from_content_type("text/plain"), None);
    assert_eq!(Encoding::from_content_type(""), None);
}

#[test]
fn log_records_decode_the_same_from_protobuf_and_json_with_a_stable_key() {
    let request = logs_request(vec![
        log_record("payment accepted"),
        log_record("payment refused"),
    ]);
    let (from_protobuf, from_json) = decode_both(Signal::Logs, &request);
    assert_eq!(from_protobuf, from_json);
    assert_eq!(from_protobuf.rejected, Rejections::default());

    let events = &from_protobuf.events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].name, "payment accepted");
    assert!(events[0].dedupe_key.starts_with("log:") && events[0].dedupe_key.len() == 4 + 32);
    assert_ne!(events[0].dedupe_key, events[1].dedupe_key);
    assert!(events[0].has_idempotency_key);
    assert_eq!(
        events[0].timestamp.as_deref(),
        Some("2025-11-23T10:55:10.123Z")
    );
    assert_eq!(
        events[0].resource.as_deref(),
        json!({"service.name": "checkout"}).as_object()
    );
    assert_eq!(events[0].properties["user"], json!("ada"));
    assert_eq!(events[0].properties["otel.severity_text"], json!("INFO"));
    assert_eq!(
        events[0].properties["otel.trace_id"],
        json!("5b8efff798038103d269b633813fc60c")
    );
    assert_eq!(
        events[0].property("otel.scope.name"),
        Some(&json!("my.library"))
    );
    assert!(
        Arc::ptr_eq(
            events[0].resource.as_ref().expect("a resource"),
            events[1].resource.as_ref().expect("a resource")
        ),
        "the records of one resource share it"
    );

    let (resent, _) = decode_both(Signal::Logs, &request);
    assert_eq!(resent.events[0].dedupe_key, events[0].dedupe_key);
}

#[test]
fn a_log_record_with_an_invalid_trace_id_length_is_rejected_alone() {
    let mut bad = log_record("bad");
    bad.trace_id = vec![1, 2, 3];
    let request = logs_request(vec![log_record("good"), bad]);
    let decoded =
        decode(Signal::Logs, Encoding::Protobuf, &request.encode_to_vec()).expect("valid protobuf");
    assert_eq!(decoded.events.len(), 1);
    assert_eq!(decoded.rejected.count, 1);
    let reason = decoded.rejected.first_reason.clone().expect("a reason");
    assert!(reason.contains("trace id of 3 bytes"), "{reason}");

    let response = success_response(Signal::Logs, Encoding::Protobuf, &decoded.rejected);
    assert_eq!(response.status, 200);
    let parsed =
        ExportLogsServiceResponse::decode(response.body.as_slice()).expect("a response message");
    let partial = parsed.partial_success.expect("partial success");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial.error_message.contains("1 log record rejected"),
        "{}",
        partial.error_message
    );

    let response = success_response(Signal::Logs, Encoding::Json, &decoded.rejected);
    let parsed: ExportLogsServiceResponse =
        serde_json::from_slice(&response.body).expect("opentelemetry-rust parses it");
    assert_eq!(
        parsed
            .partial_success
            .map(|partial| partial.rejected_log_records),
        Some(1)
    );
}

#[test]
fn full_success_is_an_empty_message_in_the_request_encoding() {
    for signal in Signal::ALL {
        let protobuf = success_response(signal, Encoding::Protobuf, &Rejections::default());
        assert_eq!(
            (protobuf.status, protobuf.content_type, protobuf.body.len()),
            (200, "application/x-protobuf", 0)
        );
        let json = success_response(signal, Encoding::Json, &Rejections::default());
        assert_eq!(
            (json.status, json.content_type, json.body.as_slice()),
            (200, "application/json", &b"{}"[..])
        );
    }
}

#[test]
fn partial_success_names_the_rejected_count_field_of_each_signal() {
    let rejected = Rejections {
        count: 2,
        first_reason: Some("why".to_owned()),
    };
    let traces = success_response(Signal::Traces, Encoding::Protobuf, &rejected);
    let parsed =
        ExportTraceServiceResponse::decode(traces.body.as_slice()).expect("a response message");
    assert_eq!(
        parsed.partial_success.map(|partial| partial.rejected_spans),
        Some(2)
    );
    let metrics = success_response(Signal::Metrics, Encoding::Json, &rejected);
    let parsed: ExportMetricsServiceResponse =
        serde_json::from_slice(&metrics.body).expect("valid JSON");
    assert_eq!(
        parsed
            .partial_success
            .map(|partial| partial.rejected_data_points),
        Some(2)
    );
    let body: serde_json::Value = serde_json::from_slice(&metrics.body).expect("valid JSON");
    assert_eq!(
        body,
        json!({"partialSuccess": {"rejectedDataPoints": 2, "errorMessage": "2 data points rejected: why"}})
    );
}

#[test]
fn errors_are_google_rpc_status_messages_in_the_request_encoding() {
    let protobuf = error_response(Encoding::Protobuf, 400, "bad body");
    let status = RpcStatus::decode(protobuf.body.as_slice()).expect("a Status message");
    assert_eq!(
        (protobuf.status, status.code, status.message.as_str()),
        (400, 3, "bad body")
    );
    let json = error_response(Encoding::Json, 503, "injected fault");
    let body: serde_json::Value = serde_json::from_slice(&json.body).expect("valid JSON");
    assert_eq!(body, json!({"code": 14, "message": "injected fault"}));
    assert_eq!(json.content_type, "application/json");
}

#[test]
fn spans_are_keyed_by_trace_id_and_span_id() {
    let request = traces_request(vec![
        span(SPAN_ID, "GET /pay"),
        span([1, 2, 3, 4, 5, 6, 7, 8], "SELECT"),
    ]);
    let (from_protobuf, from_json) = decode_both(Signal::Traces, &request);
    assert_eq!(from_protobuf, from_json);
    let events = &from_protobuf.events;
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].dedupe_key,
        "span:5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174"
    );
    assert_eq!(events[0].name, "GET /pay");
    assert_eq!(events[0].properties["otel.kind"], json!(2));
    assert_eq!(events[0].properties["http.route"], json!("/pay"));
    assert_eq!(
        events[1].dedupe_key,
        "span:5b8efff798038103d269b633813fc60c:0102030405060708"
    );
}

#[test]
fn spans_with_missing_or_zero_ids_are_rejected() {
    let mut no_trace_id = span(SPAN_ID, "a");
    no_trace_id.trace_id.clear();
    let zero_span_id = span([0; 8], "b");
    let request = traces_request(vec![no_trace_id, zero_span_id, span(SPAN_ID, "c")]);
    let decoded = decode(Signal::Traces, Encoding::Protobuf, &request.encode_to_vec())
        .expect("valid protobuf");
    assert_eq!(decoded.events.len(), 1);
    assert_eq!(decoded.rejected.count, 2);
    assert!(
        decoded
            .rejected
            .first_reason
            .expect("a reason")
            .contains("invalid trace id (0 bytes")
    );
}

#[test]
fn every_metric_data_point_is_an_event_keyed_by_resource_name_attributes_and_time() {
    let request = metrics_request(vec![
        gauge(
            "queue.depth",
            vec![
                number_point(TIME, Some(number_data_point::Value::AsInt(7))),
                number_point(TIME + 1, Some(number_data_point::Value::AsDouble(7.5))),
            ],
        ),
        Metric {
            name: "requests".to_owned(),
            unit: "1".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![number_point(TIME, Some(number_data_point::Value::AsInt(3)))],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "latency".to_owned(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: TIME,
                    count: 3,
                    sum: Some(1.5),
                    bucket_counts: vec![1, 2],
                    explicit_bounds: vec![0.5],
                    ..Default::default()
                }],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        },
    ]);
    let (from_protobuf, from_json) = decode_both(Signal::Metrics, &request);
    assert_eq!(from_protobuf, from_json);
    let events = &from_protobuf.events;
    assert_eq!(
        events
            .iter()
            .map(|event| event.name.as_str())
            .collect::<Vec<_>>(),
        ["queue.depth", "queue.depth", "requests", "latency"]
    );
    assert_eq!(events[0].properties["otel.value"], json!(7));
    assert_eq!(events[1].properties["otel.value"], json!(7.5));
    assert_eq!(events[2].property("otel.is_monotonic"), Some(&json!(true)));
    assert_eq!(events[3].properties["otel.count"], json!(3));
    assert_eq!(events[3].properties["otel.bucket_counts"], json!([1, 2]));
    let keys: std::collections::HashSet<&str> = events
        .iter()
        .map(|event| event.dedupe_key.as_str())
        .collect();
    assert_eq!(
        keys.len(),
        4,
        "different metrics or times give different keys"
    );
    assert!(
        events
            .iter()
            .all(|event| event.dedupe_key.starts_with("metric:"))
    );
}

#[test]
fn data_points_without_a_time_or_a_value_and_metrics_without_data_are_rejected() {
    let request = metrics_request(vec![
        gauge(
            "a",
            vec![
                number_point(0, Some(number_data_point::Value::AsInt(1))),
                number_point(TIME, None),
            ],
        ),
        Metric {
            name: "b".to_owned(),
            ..Default::default()
        },
        gauge(
            "c",
            vec![number_point(TIME, Some(number_data_point::Value::AsInt(1)))],
        ),
    ]);
    let decoded = decode(
        Signal::Metrics,
        Encoding::Protobuf,
        &request.encode_to_vec(),
    )
    .expect("valid protobuf");
    assert_eq!(decoded.events.len(), 1);
    assert_eq!(decoded.rejected.count, 3);
    assert!(
        decoded
            .rejected
            .first_reason
            .expect("a reason")
            .contains("no time_unix_nano")
    );
}

#[test]
fn hand_written_otlp_json_with_hex_ids_integer_enums_string_int64_unknown_fields_and_nulls_decodes()
{
    let body = json!({
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}], "futureField": 1},
            "scopeSpans": [{
                "scope": {"name": "manual", "version": null},
                "spans": [{
                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                    "spanId": "eee19b7ec3c1b174",
                    "parentSpanId": "",
                    "name": "GET /pay",
                    "kind": 2,
                    "startTimeUnixNano": "1763895310123000000",
                    "endTimeUnixNano": 1763895310128000000u64,
                    "attributes": [
                        {"key": "count", "value": {"intValue": "42"}},
                        {"key": "retries", "value": {"intValue": 3}},
                        {"key": "ratio", "value": {"doubleValue": 0.5}},
                        {"key": "blob", "value": {"bytesValue": "AQI="}}
                    ],
                    "events": null,
                    "status": {"code": 1},
                    "someUnknownField": {"nested": [1, 2, 3]}
                }]
            }]
        }]
    });
    let decoded = decode(Signal::Traces, Encoding::Json, body.to_string().as_bytes())
        .expect("valid OTLP/JSON");
    assert_eq!(decoded.rejected, Rejections::default());
    let event = &decoded.events[0];
    assert_eq!(
        event.dedupe_key,
        "span:5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174"
    );
    assert_eq!(event.properties["count"], json!(42));
    assert_eq!(event.properties["retries"], json!(3));
    assert_eq!(event.properties["ratio"], json!(0.5));
    assert_eq!(event.properties["blob"], json!("0102"));
    assert_eq!(
        event.properties["otel.end_time_unix_nano"],
        json!("1763895310128000000")
    );
    assert_eq!(event.properties["otel.status_code"], json!(1));
}

#[test]
fn hand_written_otlp_json_metrics_accept_int64_values_as_strings_and_numbers() {
    let body = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "name": "requests",
        "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [
            {"timeUnixNano": "1763895310123000000", "asInt": "9007199254740993"},
            {"timeUnixNano": 1763895310123000001u64, "asInt": 5},
            {"timeUnixNano": "1763895310123000002", "asDouble": 5},
            {"timeUnixNano": "1763895310123000003", "asDouble": "NaN"}
        ]}
    }]}]}]});
    let decoded = decode(Signal::Metrics, Encoding::Json, body.to_string().as_bytes())
        .expect("valid OTLP/JSON");
    let values: Vec<_> = decoded
        .events
        .iter()
        .map(|event| event.properties["otel.value"].clone())
        .collect();
    assert_eq!(
        values,
        [json!(9_007_199_254_740_993i64), json!(5), json!(5.0)]
    );
    // A known gap of opentelemetry-proto's JSON mapping: a non-finite `asDouble` reads as "no value", so the point
    // is rejected (partial success) rather than stored.
    assert_eq!(decoded.rejected.count, 1);
}

#[test]
fn undecodable_bodies_are_errors_that_say_what_was_expected() {
    let garbage =
        decode(Signal::Logs, Encoding::Protobuf, b"\xff\xff\xff\xff").expect_err("not protobuf");
    assert!(
        garbage
            .detail()
            .starts_with("the body is not a valid protobuf ExportLogsServiceRequest: "),
        "{}",
        garbage.detail()
    );
    let not_json = decode(Signal::Traces, Encoding::Json, b"{").expect_err("not JSON");
    assert!(matches!(not_json, DecodeError::Json { .. }));
    let bad_hex = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not hex", "spanId": "eee19b7ec3c1b174"}]}]}]});
    assert!(
        decode(
            Signal::Traces,
            Encoding::Json,
            bad_hex.to_string().as_bytes()
        )
        .is_err()
    );
    let wrong_shape = json!({"resourceLogs": "nope"});
    assert!(
        decode(
            Signal::Logs,
            Encoding::Json,
            wrong_shape.to_string().as_bytes()
        )
        .is_err()
    );
}

#[test]
fn an_empty_request_is_a_full_success_with_no_events() {
    for signal in Signal::ALL {
        assert_eq!(
            decode(signal, Encoding::Protobuf, b"").expect("empty is valid"),
            Decoded::default()
        );
        assert_eq!(
            decode(signal, Encoding::Json, b"{}").expect("empty is valid"),
            Decoded::default()
        );
    }
}

#[test]
fn a_gzipped_protobuf_body_decodes_after_bounded_decompression() {
    let request = logs_request(vec![log_record("zipped")]);
    let compressed = gzip(&request.encode_to_vec());
    let body = gunzip_limited(&compressed, 64 * 1024 * 1024).expect("valid gzip");
    let decoded = decode(Signal::Logs, Encoding::Protobuf, &body).expect("valid protobuf");
    assert_eq!(decoded.events[0].name, "zipped");
}

#[test]
fn a_log_body_that_is_not_a_string_is_named_by_its_json() {
    let mut record = log_record("");
    record.body = Some(AnyValue {
        value: Some(any_value::Value::IntValue(5)),
    });
    let mut named = log_record("ignored");
    named.event_name = "checkout.done".to_owned();
    let decoded = decode(
        Signal::Logs,
        Encoding::Protobuf,
        &logs_request(vec![record, named]).encode_to_vec(),
    )
    .expect("valid");
    assert_eq!(decoded.events[0].name, "5");
    assert_eq!(decoded.events[1].name, "checkout.done");
}

#[test]
fn the_points_of_a_metric_with_a_name_past_255_characters_are_rejected() {
    let long = "m".repeat(256);
    let request = metrics_request(vec![
        gauge(
            &long,
            vec![
                number_point(TIME, Some(number_data_point::Value::AsInt(1))),
                number_point(TIME + 1, Some(number_data_point::Value::AsInt(2))),
            ],
        ),
        gauge(
            &"m".repeat(255),
            vec![number_point(TIME, Some(number_data_point::Value::AsInt(1)))],
        ),
    ]);
    let decoded = decode(
        Signal::Metrics,
        Encoding::Protobuf,
        &request.encode_to_vec(),
    )
    .expect("valid protobuf");
    assert_eq!(decoded.events.len(), 1, "the 255-character name is kept");
    assert_eq!(decoded.rejected.count, 2);
    assert!(
        decoded
            .rejected
            .first_reason
            .as_deref()
            .is_some_and(
                |reason| reason.contains("longer than 255 characters") && !reason.contains(&long)
            ),
        "{:?}",
        decoded.rejected.first_reason
    );
}

#[test]
fn json_bodies_that_are_not_objects_or_nest_arrays_are_refused_by_name() {
    for signal in Signal::ALL {
        for body in ["[]", "[[{}]]", "3", "\"x\"", "null"] {
            let error = decode(signal, Encoding::Json, body.as_bytes()).expect_err(body);
            assert!(
                error.detail().contains("expected a JSON object"),
                "{body}: {}",
                error.detail()
            );
        }
    }
    let error = decode(Signal::Logs, Encoding::Json, br#"{"resourceLogs": [[]]}"#)
        .expect_err("a list of lists");
    assert!(
        error.detail().contains("an array inside an array"),
        "{}",
        error.detail()
    );
}

#[test]
fn a_resource_and_scope_are_converted_once_per_request_however_many_records_share_them() {
    let resource = Resource {
        attributes: (0..1000)
            .map(|i| attribute(&format!("attribute.{i}"), "value"))
            .collect(),
        ..Default::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: (0..2000).map(|i| log_record(&format!("r{i}"))).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let decoded =
        decode(Signal::Logs, Encoding::Protobuf, &request.encode_to_vec()).expect("valid protobuf");
    assert_eq!(decoded.events.len(), 2000);
    let first = decoded.events[0].resource.as_ref().expect("a resource");
    let first_scope = decoded.events[0].shared.as_ref().expect("a scope");
    for event in &decoded.events {
        assert!(Arc::ptr_eq(
            first,
            event.resource.as_ref().expect("a resource")
        ));
        assert!(Arc::ptr_eq(
            first_scope,
            event.shared.as_ref().expect("a scope")
        ));
    }
    // The key still covers the resource: another resource gives other keys.
    let mut other = request.clone();
    other.resource_logs[0].resource = None;
    let other = decode(Signal::Logs, Encoding::Protobuf, &other.encode_to_vec()).expect("valid");
    assert_ne!(other.events[0].dedupe_key, decoded.events[0].dedupe_key);
}
