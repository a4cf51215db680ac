//! Conformance with a real OTLP/gRPC client: the Rust `opentelemetry-otlp` exporter over tonic sends logs, spans and
//! metrics to an embedded server's `otlp_grpc_listen` port, with and without gzip. Every record arrives once;
//! injected `UNAVAILABLE`s (and `RESOURCE_EXHAUSTED` with `RetryInfo`) are retried and still stored once; a
//! non-retryable status is not retried; after a connection reset after storing, the resent request is deduped
//! (and the exporter itself, which sees the reset as `UNKNOWN`, does not resend it).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use fake_ingest::{CapturedEvent, Config, FaultPlan, RequestsQuery, Server};
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Compression, WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::json;

/// The method paths of the three services (restated here, not taken from the server, so the tests pin them).
const LOGS: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// The exporter's per-request timeout: loopback needs far less, and a bound keeps a test from hanging.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// An embedded server with an OTLP/gRPC listener on a free port, and the runtime the tonic exporters need.
struct Harness {
    server: Server,
    runtime: tokio::runtime::Runtime,
}

impl Harness {
    fn start(plan: &str) -> Harness {
        let server = Server::start_blocking(Config {
            faults: FaultPlan::from_json(plan).expect("a valid plan"),
            otlp_grpc_listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            ..Config::default()
        })
        .expect("the server starts");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        Harness { server, runtime }
    }

    fn endpoint(&self) -> String {
        self.server.otlp_grpc_url().expect("a gRPC listener")
    }

    fn logger_provider(&self, compression: Option<Compression>) -> SdkLoggerProvider {
        let _entered = self.runtime.enter();
        let mut builder = opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_timeout(EXPORT_TIMEOUT)
            .with_endpoint(self.endpoint());
        if let Some(compression) = compression {
            builder = builder.with_compression(compression);
        }
        let exporter = builder.build().expect("the log exporter builds");
        SdkLoggerProvider::builder()
            .with_resource(resource())
            .with_batch_exporter(exporter)
            .build()
    }

    fn tracer_provider(&self, compression: Option<Compression>) -> SdkTracerProvider {
        let _entered = self.runtime.enter();
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_timeout(EXPORT_TIMEOUT)
            .with_endpoint(self.endpoint());
        if let Some(compression) = compression {
            builder = builder.with_compression(compression);
        }
        let exporter = builder.build().expect("the span exporter builds");
        SdkTracerProvider::builder()
            .with_resource(resource())
            .with_batch_exporter(exporter)
            .build()
    }

    fn meter_provider(&self, compression: Option<Compression>) -> SdkMeterProvider {
        let _entered = self.runtime.enter();
        let mut builder = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_timeout(EXPORT_TIMEOUT)
            .with_endpoint(self.endpoint());
        if let Some(compression) = compression {
            builder = builder.with_compression(compression);
        }
        let exporter = builder.build().expect("the metric exporter builds");
        SdkMeterProvider::builder()
            .with_resource(resource())
            .with_periodic_exporter(exporter)
            .build()
    }

    /// Exports one span named `name` and returns what the exporter's shutdown reported.
    fn export_span(&self, name: &'static str) -> Result<(), String> {
        let tracers = self.tracer_provider(None);
        tracers.tracer("conformance").in_span(name, |_| {});
        tracers.shutdown().map_err(|error| error.to_string())
    }

    fn requests_to(&self, route: &str) -> Vec<fake_ingest::RequestRecord> {
        self.server
            .requests(&RequestsQuery {
                route: Some(route.to_owned()),
                ..RequestsQuery::default()
            })
            .requests
    }
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("conformance")
        .build()
}

fn names(events: &[CapturedEvent]) -> Vec<String> {
    let mut names: Vec<String> = events
        .iter()
        .map(|captured| captured.event.name.clone())
        .collect();
    names.sort();
    names
}

fn routed(events: &[CapturedEvent], route: &str) -> Vec<CapturedEvent> {
    events
        .iter()
        .filter(|captured| captured.route == route)
        .cloned()
        .collect()
}

#[test]
fn the_rust_grpc_exporter_delivers_logs_spans_and_metrics_once_with_and_without_gzip() {
    let harness = Harness::start(r#"{"rules": []}"#);
    for compression in [None, Some(Compression::Gzip)] {
        let case = format!("{compression:?}");
        harness.server.reset().expect("reset");

        let loggers = harness.logger_provider(compression);
        let logger = loggers.logger("conformance");
        for body in ["first log", "second log"] {
            let mut record = logger.create_log_record();
            record.set_body(body.to_owned().into());
            record.set_severity_number(Severity::Info);
            logger.emit(record);
        }
        loggers.shutdown().expect("the logs are exported");

        let tracers = harness.tracer_provider(compression);
        let tracer = tracers.tracer("conformance");
        tracer.in_span("parent", |_| tracer.in_span("child", |_| {}));
        tracers.shutdown().expect("the spans are exported");

        let meters = harness.meter_provider(compression);
        let counter = meters.meter("conformance").u64_counter("jobs.done").build();
        counter.add(2, &[opentelemetry::KeyValue::new("queue", "a")]);
        counter.add(5, &[opentelemetry::KeyValue::new("queue", "b")]);
        meters.shutdown().expect("the metrics are exported");

        let events = harness.server.events();
        assert_eq!(
            names(&routed(&events, LOGS)),
            ["first log", "second log"],
            "{case}"
        );
        assert_eq!(
            names(&routed(&events, TRACES)),
            ["child", "parent"],
            "{case}"
        );
        assert_eq!(
            names(&routed(&events, METRICS)),
            ["jobs.done", "jobs.done"],
            "{case}"
        );
        let service_names: Vec<_> = events
            .iter()
            .map(|captured| {
                captured
                    .event
                    .resource
                    .as_ref()
                    .map(|r| r["service.name"].clone())
            })
            .collect();
        assert!(
            service_names
                .iter()
                .all(|name| *name == Some(json!("conformance"))),
            "{case}: {service_names:?}"
        );
        let stats = harness.server.stats();
        assert_eq!((stats.events_unique, stats.duplicates), (6, 0), "{case}");
        for route in [LOGS, TRACES, METRICS] {
            let requests = harness.requests_to(route);
            assert!(!requests.is_empty(), "{case}: {route}");
            for request in &requests {
                assert_eq!(request.outcome, "OK", "{case}: {request:?}");
                assert_eq!(
                    request.content_encoding.as_deref(),
                    compression.map(|_| "gzip"),
                    "{case}: {request:?}"
                );
            }
        }
    }
}

#[test]
fn injected_unavailable_is_retried_by_the_exporter_and_the_span_is_stored_once() {
    let harness = Harness::start(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}", "first": 2}}, "then": {{"status": 503}}}}]}}"#
    ));

    harness
        .export_span("retried")
        .expect("the span is exported after the retries");

    assert_eq!(names(&harness.server.events()), ["retried"]);
    let outcomes: Vec<String> = harness
        .requests_to(TRACES)
        .into_iter()
        .map(|request| request.outcome)
        .collect();
    assert_eq!(outcomes, ["UNAVAILABLE", "UNAVAILABLE", "OK"]);
    let stats = harness.server.stats();
    assert_eq!(stats.faults.status, 2);
    assert_eq!(
        stats.routes[TRACES].responses,
        [(200, 1), (503, 2)].into_iter().collect()
    );
}

#[test]
fn resource_exhausted_is_retried_only_when_it_carries_retry_info() {
    // The first request gets RESOURCE_EXHAUSTED with RetryInfo (1 s), which the exporter waits for and retries.
    let with_retry_info = Harness::start(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}", "first": 1}}, "then": {{"status": 429, "retry_after_secs": 1}}}}]}}"#
    ));
    with_retry_info
        .export_span("throttled")
        .expect("the span is exported after the wait");
    assert_eq!(names(&with_retry_info.server.events()), ["throttled"]);
    let outcomes: Vec<String> = with_retry_info
        .requests_to(TRACES)
        .into_iter()
        .map(|request| request.outcome)
        .collect();
    assert_eq!(outcomes, ["RESOURCE_EXHAUSTED", "OK"]);

    // Without RetryInfo, RESOURCE_EXHAUSTED is final, as the specification says.
    let without = Harness::start(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}"}}, "then": {{"status": 429}}}}]}}"#
    ));
    // The batch processor logs a failed export and its shutdown still succeeds; the server saw every attempt
    // by the time it returns.
    without
        .export_span("dropped")
        .expect("the processor shuts down");
    let requests = without.requests_to(TRACES);
    assert_eq!(requests.len(), 1, "not retried: {requests:?}");
    assert_eq!(requests[0].outcome, "RESOURCE_EXHAUSTED");
    assert!(without.server.events().is_empty());
}

#[test]
fn a_non_retryable_status_is_not_retried() {
    let harness = Harness::start(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}"}}, "then": {{"status": 400}}}}]}}"#
    ));

    harness
        .export_span("refused")
        .expect("the processor shuts down");

    let requests = harness.requests_to(TRACES);
    assert_eq!(requests.len(), 1, "not retried: {requests:?}");
    assert_eq!(requests[0].outcome, "INVALID_ARGUMENT");
    assert!(harness.server.events().is_empty());
}

#[test]
fn a_partial_success_is_not_retried_and_its_records_are_counted_as_rejected() {
    let harness = Harness::start(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}"}}, "then": "reject"}}]}}"#
    ));

    harness
        .export_span("rejected")
        .expect("a partial success is a successful export");

    assert_eq!(harness.requests_to(TRACES).len(), 1, "not retried");
    let stats = harness.server.stats();
    assert_eq!((stats.events_rejected, stats.faults.reject), (1, 1));
    assert!(harness.server.events().is_empty());
}

#[test]
fn a_reset_after_store_loses_the_answer_and_the_resent_request_is_deduped() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    let harness = Harness::start(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}", "nth": 1}}, "then": "reset_after_store"}}]}}"#
    ));
    let span = Span {
        trace_id: vec![7; 16],
        span_id: vec![9; 8],
        name: "acknowledgement lost".to_owned(),
        start_time_unix_nano: 1_763_895_310_000_000_000,
        end_time_unix_nano: 1_763_895_310_500_000_000,
        ..Span::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };

    // A tonic client sends the same request twice, as a retrying exporter would after the lost answer.
    let (first, second) = harness.runtime.block_on(async {
        let mut client = TraceServiceClient::connect(harness.endpoint())
            .await
            .expect("connects");
        let first = client.export(request.clone()).await;
        let second = client.export(request).await;
        (first, second)
    });

    // tonic reports the reset of an in-flight call as UNKNOWN ("transport error").
    let lost = first.expect_err("the connection was reset");
    assert_eq!(lost.code(), tonic::Code::Unknown, "{lost:?}");
    second.expect("the resent request is answered");
    assert_eq!(names(&harness.server.events()), ["acknowledgement lost"]);
    let outcomes: Vec<String> = harness
        .requests_to(TRACES)
        .into_iter()
        .map(|request| request.outcome)
        .collect();
    assert_eq!(outcomes, ["reset", "OK"]);
    let stats = harness.server.stats();
    assert_eq!((stats.duplicates, stats.faults.reset_after_store), (1, 1));
}

#[test]
fn the_rust_exporter_does_not_retry_a_call_whose_connection_was_reset() {
    let harness = Harness::start(&format!(
        r#"{{"rules": [{{"when": {{"route": "{TRACES}", "nth": 1}}, "then": "reset_after_store"}}]}}"#
    ));

    harness
        .export_span("stored, answer lost")
        .expect("the processor shuts down");

    // opentelemetry-otlp 0.33 over tonic sees the reset as a non-retryable status: the span is stored, once, and
    // the exporter believes it was lost.
    assert_eq!(names(&harness.server.events()), ["stored, answer lost"]);
    let requests = harness.requests_to(TRACES);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].outcome, "reset");
}

#[test]
fn a_message_over_the_body_limit_is_refused_and_the_listener_keeps_serving() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    let server = Server::start_blocking(Config {
        otlp_grpc_listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        max_body_bytes: 300,
        ..Config::default()
    })
    .expect("the server starts");
    let request = |name: String| ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name,
                    start_time_unix_nano: 1,
                    end_time_unix_nano: 2,
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    let (too_large, small) = runtime.block_on(async {
        let endpoint = server.otlp_grpc_url().expect("a gRPC listener");
        let mut client = TraceServiceClient::connect(endpoint)
            .await
            .expect("connects");
        let too_large = client.export(request("x".repeat(1_000))).await;
        let small = client.export(request("small".to_owned())).await;
        (too_large, small)
    });

    let refused = too_large.expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::OutOfRange, "{refused:?}");
    small.expect("a message within the limit is stored");
    assert_eq!(names(&server.events()), ["small"]);
}
