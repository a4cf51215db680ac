//! OTLP/JSON export: the OTLP records a server captured come back as OTLP/JSON export requests, through
//! `GET /_fake/events?format=otlp-json`, through `fake_ingest::otlp_json_requests` on the embedded handle's events,
//! and through `fake-ingest export --format otlp-json` for a stopped server's data directory. Each line is read
//! with the published OpenTelemetry types and compared with the request that was sent.

use assert_cmd::Command;
use fake_ingest::{Config, Server, otlp_json_requests};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;
use serde_json::Value;

use crate::support::{Binary, batch, client, fresh_uuid, post_ingest};

/// A time whose nanoseconds a double cannot hold (above 2^53).
const TIME: u64 = 1_763_895_310_123_456_789;

fn value(value: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

fn key_value(key: &str, value_of: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: value(value_of),
        ..Default::default()
    }
}

fn text(text: &str) -> any_value::Value {
    any_value::Value::StringValue(text.to_owned())
}

/// Attributes of every kind the export types back, in key order (the order the store keeps them in).
fn typed_attributes(tag: &str) -> Vec<KeyValue> {
    vec![
        key_value("big", any_value::Value::IntValue(9_007_199_254_740_993)),
        key_value("flag", any_value::Value::BoolValue(true)),
        key_value(
            "list",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(text("a")),
                    },
                    AnyValue {
                        value: Some(any_value::Value::IntValue(2)),
                    },
                ],
            }),
        ),
        key_value(
            "map",
            any_value::Value::KvlistValue(KeyValueList {
                values: vec![key_value("inner", text("x"))],
            }),
        ),
        key_value("ratio", any_value::Value::DoubleValue(0.25)),
        key_value("tag", text(tag)),
    ]
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![key_value("service.name", text(service))],
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_owned(),
        version: "1.2.3".to_owned(),
        ..Default::default()
    })
}

fn logs() -> ExportLogsServiceRequest {
    let record = |index: u64, body: &str| LogRecord {
        time_unix_nano: TIME + index,
        observed_time_unix_nano: TIME + index + 1,
        severity_number: 9,
        severity_text: "INFO".to_owned(),
        body: value(text(body)),
        attributes: typed_attributes(body),
        trace_id: vec![0x5b; 16],
        span_id: vec![0x1e; 8],
        event_name: String::new(),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: resource("checkout"),
                scope_logs: vec![
                    ScopeLogs {
                        scope: scope("http"),
                        log_records: vec![record(0, "first"), record(1, "second")],
                        ..Default::default()
                    },
                    ScopeLogs {
                        scope: scope("db"),
                        log_records: vec![record(2, "third")],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            ResourceLogs {
                resource: resource("billing"),
                scope_logs: vec![ScopeLogs {
                    scope: scope("http"),
                    log_records: vec![record(3, "fourth")],
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
    }
}

fn traces() -> ExportTraceServiceRequest {
    let span = |id: u8, parent: Option<u8>, name: &str| Span {
        trace_id: vec![0x5b; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|parent| vec![parent; 8]).unwrap_or_default(),
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: TIME,
        end_time_unix_nano: TIME + 5_000_000,
        attributes: typed_attributes(name),
        status: Some(Status {
            code: 2,
            message: "boom".to_owned(),
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("checkout"),
            scope_spans: vec![ScopeSpans {
                scope: scope("http"),
                spans: vec![span(1, None, "GET /cart"), span(2, Some(1), "SELECT cart")],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics() -> ExportMetricsServiceRequest {
    let number = |value: number_data_point::Value, at: u64| NumberDataPoint {
        attributes: vec![key_value("route", text("/cart"))],
        start_time_unix_nano: TIME,
        time_unix_nano: at,
        value: Some(value),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("checkout"),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("meter"),
                metrics: vec![
                    Metric {
                        name: "requests".to_owned(),
                        unit: "1".to_owned(),
                        description: "requests served".to_owned(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![
                                number(
                                    number_data_point::Value::AsInt(9_007_199_254_740_993),
                                    TIME + 1,
                                ),
                                number(number_data_point::Value::AsInt(7), TIME + 2),
                            ],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "load".to_owned(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![number(
                                number_data_point::Value::AsDouble(0.75),
                                TIME + 3,
                            )],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "latency".to_owned(),
                        unit: "ms".to_owned(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: vec![key_value("route", text("/cart"))],
                                start_time_unix_nano: TIME,
                                time_unix_nano: TIME + 4,
                                count: 3,
                                sum: Some(12.5),
                                bucket_counts: vec![1, 2, 0],
                                explicit_bounds: vec![5.0, 10.0],
                                min: Some(1.5),
                                max: Some(8.0),
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn post_protobuf(base: &str, path: &str, body: Vec<u8>) {
    let response = client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-protobuf")
        .send(&body[..])
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200, "{path}");
}

/// Sends the three requests (and a non-OTLP batch, which the export leaves out).
fn send_all(base: &str) {
    post_protobuf(base, "/v1/logs", logs().encode_to_vec());
    post_ingest(&client(), base, &batch(&[&fresh_uuid()])).expect("answered");
    post_protobuf(base, "/v1/traces", traces().encode_to_vec());
    post_protobuf(base, "/v1/metrics", metrics().encode_to_vec());
}

fn get_text(base: &str, path: &str) -> String {
    client()
        .get(format!("{base}{path}"))
        .call()
        .expect("answered")
        .body_mut()
        .read_to_string()
        .expect("a body")
}

/// Reads the three export requests back with the published types and compares them with what was sent.
fn assert_the_records_come_back(lines: &[Value]) {
    assert_eq!(lines.len(), 3, "one request per signal: {lines:?}");
    let logs_back: ExportLogsServiceRequest =
        serde_json::from_value(lines[0].clone()).expect("valid OTLP/JSON logs");
    let traces_back: ExportTraceServiceRequest =
        serde_json::from_value(lines[1].clone()).expect("valid OTLP/JSON traces");
    let metrics_back: ExportMetricsServiceRequest =
        serde_json::from_value(lines[2].clone()).expect("valid OTLP/JSON metrics");
    assert_eq!(logs_back, logs());
    assert_eq!(traces_back, traces());
    assert_eq!(metrics_back, metrics());
    // The encoding's own rules: ids as hex, 64-bit integers as strings.
    let span = &lines[1]["resourceSpans"][0]["scopeSpans"][0]["spans"][1];
    assert_eq!(span["traceId"], "5b".repeat(16));
    assert_eq!(span["parentSpanId"], "01".repeat(8));
    assert_eq!(span["startTimeUnixNano"], TIME.to_string());
    let point =
        &lines[2]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0];
    assert_eq!(point["asInt"], "9007199254740993");
}

#[test]
fn otlp_json_export_gives_back_the_records_sent_grouped_by_resource_and_scope() {
    let server = Server::start_blocking(Config::default()).expect("the server starts");
    send_all(&server.url());

    let served = get_text(&server.url(), "/_fake/events?format=otlp-json");
    let lines: Vec<Value> = served
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();

    assert_the_records_come_back(&lines);
    assert_eq!(
        otlp_json_requests(&server.events()),
        lines,
        "the embedded handle's events give the same requests"
    );
    let only_traces = get_text(
        &server.url(),
        "/_fake/events?format=otlp-json&protocol=otlp_traces",
    );
    assert_eq!(only_traces.lines().count(), 1);
    assert!(
        only_traces.starts_with(r#"{"resourceSpans""#),
        "{only_traces}"
    );
    let bad = client()
        .get(format!("{}/_fake/events?format=otlp", server.url()))
        .call()
        .expect("answered");
    assert_eq!(bad.status().as_u16(), 400);
    server.shutdown();
}

#[test]
fn otlp_json_export_of_a_stopped_servers_data_directory_matches_what_it_served() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let binary = Binary::start_on(dir.path(), &[]);
    send_all(&binary.url);
    let live = get_text(&binary.url, "/_fake/events?format=otlp-json");
    binary.kill();

    let output = Command::new(env!("CARGO_BIN_EXE_fake-ingest"))
        .args(["export", "--format", "otlp-json", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");

    assert!(output.status.success(), "{output:?}");
    let exported = String::from_utf8(output.stdout).expect("UTF-8");
    assert_eq!(exported, live);
    let lines: Vec<Value> = exported
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_the_records_come_back(&lines);
}
