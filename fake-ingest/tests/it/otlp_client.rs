//! Conformance with a real OTLP/HTTP client: the Rust `opentelemetry-otlp` exporter (blocking reqwest client, no
//! async runtime) sends logs, spans and metrics to a real `fake-ingest` process on its `--otlp-listen` port, in
//! binary protobuf and JSON, with and without gzip. Every record arrives once; injected 503s are retried by the
//! exporter and still stored once; a partial success is not retried.

use std::time::Duration;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Value, json};

use crate::spawned::SpawnedServer;

/// The exporter's per-request timeout (the default is 10 s; loopback needs far less, and a bound keeps the test
/// from hanging if something goes wrong).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("conformance")
        .build()
}

fn logger_provider(
    server: &SpawnedServer,
    protocol: Protocol,
    compression: Option<Compression>,
) -> SdkLoggerProvider {
    let mut builder = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_timeout(EXPORT_TIMEOUT)
        .with_endpoint(format!("{}/v1/logs", server.otlp_url));
    if let Some(compression) = compression {
        builder = builder.with_compression(compression);
    }
    let exporter = builder.build().expect("the log exporter builds");
    SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_simple_exporter(exporter)
        .build()
}

fn tracer_provider(
    server: &SpawnedServer,
    protocol: Protocol,
    compression: Option<Compression>,
) -> SdkTracerProvider {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_timeout(EXPORT_TIMEOUT)
        .with_endpoint(format!("{}/v1/traces", server.otlp_url));
    if let Some(compression) = compression {
        builder = builder.with_compression(compression);
    }
    let exporter = builder.build().expect("the span exporter builds");
    SdkTracerProvider::builder()
        .with_resource(resource())
        .with_simple_exporter(exporter)
        .build()
}

fn meter_provider(
    server: &SpawnedServer,
    protocol: Protocol,
    compression: Option<Compression>,
) -> SdkMeterProvider {
    let mut builder = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_timeout(EXPORT_TIMEOUT)
        .with_endpoint(format!("{}/v1/metrics", server.otlp_url));
    if let Some(compression) = compression {
        builder = builder.with_compression(compression);
    }
    let exporter = builder.build().expect("the metric exporter builds");
    SdkMeterProvider::builder()
        .with_resource(resource())
        .with_periodic_exporter(exporter)
        .build()
}

fn emit_logs(provider: &SdkLoggerProvider, bodies: &[&str]) {
    let logger = provider.logger("conformance");
    for (index, body) in bodies.iter().enumerate() {
        let mut record = logger.create_log_record();
        record.set_body((*body).to_owned().into());
        record.set_severity_number(Severity::Info);
        record.add_attribute("index", index as i64);
        logger.emit(record);
    }
}

fn names(events: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = events
        .iter()
        .map(|event| event["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

fn route_responses(stats: &Value, route: &str) -> Value {
    stats["routes"][route]["responses"].clone()
}

#[test]
fn the_rust_exporter_delivers_logs_spans_and_metrics_once_in_every_encoding() {
    let server = SpawnedServer::start();
    let cases = [
        (Protocol::HttpBinary, None),
        (Protocol::HttpBinary, Some(Compression::Gzip)),
        (Protocol::HttpJson, None),
        (Protocol::HttpJson, Some(Compression::Gzip)),
    ];
    for (protocol, compression) in cases {
        let case = format!("{protocol:?} with {compression:?}");
        server.reset();

        let loggers = logger_provider(&server, protocol, compression);
        emit_logs(&loggers, &["first log", "second log", "third log"]);
        loggers.shutdown().expect("the logs are exported");

        let tracers = tracer_provider(&server, protocol, compression);
        let tracer = tracers.tracer("conformance");
        tracer.in_span("parent", |_| tracer.in_span("child", |_| {}));
        tracers.shutdown().expect("the spans are exported");

        let meters = meter_provider(&server, protocol, compression);
        let meter = meters.meter("conformance");
        let counter = meter.u64_counter("jobs.done").build();
        counter.add(2, &[opentelemetry::KeyValue::new("queue", "a")]);
        counter.add(5, &[opentelemetry::KeyValue::new("queue", "b")]);
        meters.shutdown().expect("the metrics are exported");

        let logs = server.events("otlp_logs");
        assert_eq!(
            names(&logs),
            ["first log", "second log", "third log"],
            "{case}"
        );
        assert!(
            logs.iter()
                .all(|event| event["resource"]["service.name"] == json!("conformance")),
            "{case}"
        );
        let spans = server.events("otlp_traces");
        assert_eq!(names(&spans), ["child", "parent"], "{case}");
        let points = server.events("otlp_metrics");
        let mut values: Vec<(String, i64)> = points
            .iter()
            .map(|event| {
                (
                    event["properties"]["queue"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    event["properties"]["otel.value"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        values.sort();
        assert_eq!(values, [("a".to_owned(), 2), ("b".to_owned(), 5)], "{case}");

        let stats = server.stats();
        assert_eq!(stats["duplicates"], json!(0), "{case}");
        assert_eq!(stats["events_unique"], json!(3 + 2 + 2), "{case}");
        assert_eq!(
            route_responses(&stats, "/v1/logs"),
            json!({"200": 3}),
            "{case}: one request per log record"
        );
        assert_eq!(
            route_responses(&stats, "/v1/traces"),
            json!({"200": 2}),
            "{case}"
        );
        assert_eq!(
            route_responses(&stats, "/v1/metrics"),
            json!({"200": 1}),
            "{case}"
        );
    }
}

#[test]
fn injected_503s_are_retried_by_the_exporter_and_the_spans_are_stored_once() {
    let server = SpawnedServer::start();
    // The first two trace requests fail with 503; the exporter's default policy retries up to three times.
    server.set_faults(
        &json!({"rules": [{"when": {"route": "/v1/traces", "first": 2}, "then": {"status": 503}}]}),
    );

    for (protocol, encoding) in [
        (Protocol::HttpBinary, "protobuf"),
        (Protocol::HttpJson, "json"),
    ] {
        server.reset();
        let tracers = tracer_provider(&server, protocol, None);
        tracers.tracer("conformance").in_span("retried", |_| {});
        tracers
            .shutdown()
            .expect("the span is exported after the retries");

        let spans = server.events("otlp_traces");
        assert_eq!(names(&spans), ["retried"], "{encoding}: stored once");
        let stats = server.stats();
        assert_eq!(
            route_responses(&stats, "/v1/traces"),
            json!({"200": 1, "503": 2}),
            "{encoding}"
        );
        assert_eq!(stats["faults"]["status"], json!(2), "{encoding}");
    }
}

#[test]
fn a_partial_success_is_not_retried_and_its_records_are_counted_as_rejected() {
    let server = SpawnedServer::start();
    // The first log request has all its records rejected (200 with partialSuccess); nothing else is faulted.
    server.set_faults(
        &json!({"rules": [{"when": {"route": "/v1/logs", "first": 1}, "then": "reject"}]}),
    );

    let loggers = logger_provider(&server, Protocol::HttpBinary, None);
    emit_logs(&loggers, &["rejected by the fault rule", "stored"]);
    loggers.shutdown().expect("both exports end");

    assert_eq!(names(&server.events("otlp_logs")), ["stored"]);
    let stats = server.stats();
    assert_eq!(
        stats["routes"]["/v1/logs"]["requests"],
        json!(2),
        "the partial success was not retried"
    );
    assert_eq!(route_responses(&stats, "/v1/logs"), json!({"200": 2}));
    assert_eq!(stats["events_rejected"], json!(1));
    assert_eq!(stats["faults"]["reject"], json!(1));
}
