//! The OpenTelemetry processors (feature `opentelemetry`) end to end: the SDK's tracer and logger providers in,
//! fake-ingest's real `/v1/traces` and `/v1/logs` routes out.
//!
//! What goes on the wire is read with the real `opentelemetry-proto` types (protobuf, and its serde JSON mapping),
//! not with flush-core's encoder: the reporter posts to a wiremock server that keeps every request and forwards it,
//! headers and body as they are, to the embedded fake-ingest, whose answer (and faults, and dedupe) it passes back.

use std::io::Read as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_ingest::Server;
use flush_core::sink::{OtlpEncoding, OtlpLogs, OtlpTraces};
use flush_core::{Config, ConfigBuilder, OtelLogProcessor, OtelSpanProcessor};
use opentelemetry::logs::{
    AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity,
};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, Value as OtelValue};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue as ProtoKeyValue, any_value,
};
use opentelemetry_proto::tonic::trace::v1::{Span as ProtoSpan, span, status};
use opentelemetry_sdk::logs::{LogProcessor as _, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor as _};
use prost::Message as _;
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use super::{fast, server, start, wait_until};

/// A wiremock server that keeps every request and forwards it to fake-ingest, on its own runtime (the reporter is
/// blocking).
struct Recorder {
    runtime: tokio::runtime::Runtime,
    mock: MockServer,
}

/// Forwards a request to fake-ingest with its `Content-Type` and `Content-Encoding`, and answers with fake-ingest's
/// status, `Content-Type`, `Retry-After` and body.
struct Forward {
    to: String,
}

impl Respond for Forward {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut forwarded = agent.post(format!("{}{}", self.to, request.url.path()));
        for name in ["content-type", "content-encoding"] {
            if let Some(value) = request.headers.get(name) {
                forwarded = forwarded.header(name, value.to_str().unwrap());
            }
        }
        let mut answer = forwarded.send(&request.body[..]).unwrap();
        let mut template = ResponseTemplate::new(answer.status().as_u16());
        for name in ["retry-after"] {
            if let Some(value) = answer.headers().get(name) {
                template = template.insert_header(name, value.to_str().unwrap());
            }
        }
        let content_type = answer
            .headers()
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let body = answer.body_mut().read_to_vec().unwrap();
        template.set_body_raw(body, &content_type)
    }
}

impl Recorder {
    fn forwarding_to(server: &Server) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mock = runtime.block_on(MockServer::start());
        let forward = Forward { to: server.url() };
        runtime.block_on(
            Mock::given(wiremock::matchers::method("POST"))
                .respond_with(forward)
                .mount(&mock),
        );
        Self { runtime, mock }
    }

    fn url(&self) -> String {
        self.mock.uri()
    }

    /// The bodies of every request on `route`, uncompressed, with whether each is JSON.
    fn bodies(&self, route: &str) -> Vec<(bool, Vec<u8>)> {
        let requests = self
            .runtime
            .block_on(self.mock.received_requests())
            .unwrap();
        requests
            .into_iter()
            .filter(|request| request.url.path() == route)
            .map(|request| {
                let header = |name: &str| {
                    request
                        .headers
                        .get(name)
                        .map(|value| value.to_str().unwrap().to_owned())
                };
                let body = if header("content-encoding").as_deref() == Some("gzip") {
                    let mut plain = Vec::new();
                    flate2::read::GzDecoder::new(&request.body[..])
                        .read_to_end(&mut plain)
                        .unwrap();
                    plain
                } else {
                    request.body.clone()
                };
                let json = header("content-type").as_deref() == Some("application/json");
                (json, body)
            })
            .collect()
    }

    /// Every span posted to `/v1/traces`, with its scope's name and version, in order.
    fn spans(&self) -> Vec<(String, String, ProtoSpan)> {
        self.bodies("/v1/traces")
            .into_iter()
            .flat_map(|(json, body)| {
                let request: ExportTraceServiceRequest = if json {
                    serde_json::from_slice(&body).unwrap()
                } else {
                    ExportTraceServiceRequest::decode(&body[..]).unwrap()
                };
                request.resource_spans.into_iter().flat_map(|resource| {
                    resource.scope_spans.into_iter().flat_map(|group| {
                        let scope = group.scope.unwrap_or_default();
                        group
                            .spans
                            .into_iter()
                            .map(move |span| (scope.name.clone(), scope.version.clone(), span))
                    })
                })
            })
            .collect()
    }

    /// Every log record posted to `/v1/logs`, with its scope's name, in order.
    fn log_records(&self) -> Vec<(String, opentelemetry_proto::tonic::logs::v1::LogRecord)> {
        self.bodies("/v1/logs")
            .into_iter()
            .flat_map(|(json, body)| {
                let request: ExportLogsServiceRequest = if json {
                    serde_json::from_slice(&body).unwrap()
                } else {
                    ExportLogsServiceRequest::decode(&body[..]).unwrap()
                };
                request.resource_logs.into_iter().flat_map(|resource| {
                    resource.scope_logs.into_iter().flat_map(|group| {
                        let scope = group.scope.unwrap_or_default().name;
                        group
                            .log_records
                            .into_iter()
                            .map(move |record| (scope.clone(), record))
                    })
                })
            })
            .collect()
    }
}

const FLUSH: Duration = Duration::from_secs(20);

fn traces_config(url: String, encoding: OtlpEncoding, dir: &std::path::Path) -> ConfigBuilder {
    fast(
        Config::builder(url)
            .sink(
                OtlpTraces::new()
                    .service_name("otel-tests")
                    .encoding(encoding),
            )
            .spool_dir(dir),
    )
}

fn logs_config(url: String, encoding: OtlpEncoding, dir: &std::path::Path) -> ConfigBuilder {
    fast(
        Config::builder(url)
            .sink(
                OtlpLogs::new()
                    .service_name("otel-tests")
                    .encoding(encoding),
            )
            .spool_dir(dir),
    )
}

fn at(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn typed(value: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

fn attribute<'a>(attributes: &'a [ProtoKeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn ints(values: &[i64]) -> any_value::Value {
    any_value::Value::ArrayValue(ArrayValue {
        values: values
            .iter()
            .map(|value| AnyValue {
                value: Some(any_value::Value::IntValue(*value)),
            })
            .collect(),
    })
}

/// The typed attributes every test span carries, as the API takes them.
fn span_attributes() -> Vec<KeyValue> {
    vec![
        KeyValue::new("text", "GET"),
        KeyValue::new("count", 42_i64),
        KeyValue::new("ratio", 1.0_f64),
        KeyValue::new("ok", true),
        KeyValue::new("ids", OtelValue::Array(Array::I64(vec![1, 2, 3]))),
        KeyValue::new(
            "tags",
            OtelValue::Array(Array::String(vec!["a".into(), "b".into()])),
        ),
    ]
}

#[test]
fn every_span_field_arrives_with_its_type_and_the_parent_child_link_survives() {
    for (encoding, gzip) in [(OtlpEncoding::Protobuf, false), (OtlpEncoding::Json, true)] {
        let server = server("[]");
        let recorder = Recorder::forwarding_to(&server);
        let dir = tempfile::tempdir().unwrap();
        let reporter = start(traces_config(recorder.url(), encoding, dir.path()).gzip(gzip));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(OtelSpanProcessor::new(reporter.clone()))
            .build();
        let tracer = provider.tracer_with_scope(
            InstrumentationScope::builder("shop")
                .with_version("2.1")
                .build(),
        );
        let linked = SpanContext::new(
            TraceId::from_bytes([7; 16]),
            SpanId::from_bytes([8; 8]),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );

        // Arrange: a server span with every attribute type, an event, a link and an error status, and a child.
        let mut parent = tracer
            .span_builder("GET /items")
            .with_kind(SpanKind::Server)
            .with_start_time(at(1_795_431_310_000_000_000))
            .with_attributes(span_attributes())
            .start(&tracer);
        parent.add_event_with_timestamp(
            "retry",
            at(1_795_431_310_000_000_500),
            vec![KeyValue::new("attempt", 2_i64)],
        );
        parent.add_link(linked.clone(), vec![KeyValue::new("why", "fan-in")]);
        parent.set_status(Status::error("boom"));
        let parent_context = parent.span_context().clone();
        let parent_cx = Context::current_with_span(parent);
        let mut child = tracer
            .span_builder("SELECT items")
            .with_kind(SpanKind::Client)
            .with_start_time(at(1_795_431_310_000_000_100))
            .start_with_context(&tracer, &parent_cx);
        let child_context = child.span_context().clone();

        // Act
        child.end_with_timestamp(at(1_795_431_310_000_000_900));
        parent_cx
            .span()
            .end_with_timestamp(at(1_795_431_310_000_001_000));
        provider.force_flush().unwrap();

        // Assert: what fake-ingest stored, and every field as the real OTLP types read it.
        assert_eq!(server.stats().events_unique, 2, "{encoding:?}");
        let spans = recorder.spans();
        assert_eq!(spans.len(), 2, "{encoding:?}");
        let (scope, version, child_span) = &spans[0];
        assert_eq!((scope.as_str(), version.as_str()), ("shop", "2.1"));
        assert_eq!(child_span.name, "SELECT items");
        assert_eq!(child_span.trace_id, parent_context.trace_id().to_bytes());
        assert_eq!(child_span.span_id, child_context.span_id().to_bytes());
        assert_eq!(
            child_span.parent_span_id,
            parent_context.span_id().to_bytes()
        );
        assert_eq!(child_span.kind, span::SpanKind::Client as i32);
        assert_eq!(
            (
                child_span.start_time_unix_nano,
                child_span.end_time_unix_nano
            ),
            (1_795_431_310_000_000_100, 1_795_431_310_000_000_900)
        );

        let (_, _, parent_span) = &spans[1];
        assert_eq!(parent_span.name, "GET /items");
        assert_eq!(parent_span.span_id, parent_context.span_id().to_bytes());
        assert!(parent_span.parent_span_id.is_empty());
        assert_eq!(parent_span.kind, span::SpanKind::Server as i32);
        assert_eq!(
            (
                parent_span.start_time_unix_nano,
                parent_span.end_time_unix_nano
            ),
            (1_795_431_310_000_000_000, 1_795_431_310_000_001_000)
        );
        let attributes = &parent_span.attributes;
        assert_eq!(
            attribute(attributes, "text"),
            Some(&any_value::Value::StringValue("GET".into()))
        );
        assert_eq!(
            attribute(attributes, "count"),
            Some(&any_value::Value::IntValue(42))
        );
        assert_eq!(
            attribute(attributes, "ratio"),
            Some(&any_value::Value::DoubleValue(1.0))
        );
        assert_eq!(
            attribute(attributes, "ok"),
            Some(&any_value::Value::BoolValue(true))
        );
        assert_eq!(attribute(attributes, "ids"), Some(&ints(&[1, 2, 3])));
        assert!(
            matches!(attribute(attributes, "tags"), Some(any_value::Value::ArrayValue(tags)) if tags.values.len() == 2)
        );
        assert_eq!(parent_span.events.len(), 1);
        let event = &parent_span.events[0];
        assert_eq!(
            (event.name.as_str(), event.time_unix_nano),
            ("retry", 1_795_431_310_000_000_500)
        );
        assert_eq!(
            attribute(&event.attributes, "attempt"),
            Some(&any_value::Value::IntValue(2))
        );
        assert_eq!(parent_span.links.len(), 1);
        let link = &parent_span.links[0];
        assert_eq!(
            (link.trace_id.as_slice(), link.span_id.as_slice()),
            (&[7; 16][..], &[8; 8][..])
        );
        assert_eq!(
            attribute(&link.attributes, "why"),
            Some(&any_value::Value::StringValue("fan-in".into()))
        );
        let span_status = parent_span.status.as_ref().unwrap();
        assert_eq!(
            (span_status.code, span_status.message.as_str()),
            (status::StatusCode::Error as i32, "boom")
        );

        let stats = reporter.stats();
        assert_eq!((stats.recorded, stats.acknowledged), (2, 2));
        assert!(stats.identity_holds(), "{stats:?}");
        provider.shutdown().unwrap();
        server.shutdown();
    }
}

#[test]
fn every_log_record_field_arrives_with_its_type() {
    for (encoding, gzip) in [(OtlpEncoding::Protobuf, true), (OtlpEncoding::Json, false)] {
        let server = server("[]");
        let recorder = Recorder::forwarding_to(&server);
        let dir = tempfile::tempdir().unwrap();
        let reporter = start(logs_config(recorder.url(), encoding, dir.path()).gzip(gzip));
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(OtelLogProcessor::new(reporter.clone()))
            .build();
        let logger = provider.logger("inventory");

        let mut record = logger.create_log_record();
        record.set_event_name("stock_low");
        record.set_timestamp(at(1_795_431_310_000_000_123));
        record.set_observed_timestamp(at(1_795_431_310_000_000_456));
        record.set_severity_number(Severity::Warn);
        record.set_severity_text("WARN");
        record.set_body(LogValue::String("stock is low".into()));
        record.add_attribute("sku", "A-1");
        record.add_attribute("left", 3_i64);
        record.add_attribute("ratio", 0.25_f64);
        record.add_attribute("urgent", true);
        record.add_attribute("raw", LogValue::Bytes(Box::new(vec![0, 255])));
        record.add_attribute(
            "sizes",
            LogValue::ListAny(Box::new(vec![LogValue::Int(1), LogValue::Int(2)])),
        );
        record.set_trace_context(
            TraceId::from_bytes([3; 16]),
            SpanId::from_bytes([4; 8]),
            Some(TraceFlags::SAMPLED),
        );
        logger.emit(record);
        provider.force_flush().unwrap();

        assert_eq!(server.stats().events_unique, 1, "{encoding:?}");
        let records = recorder.log_records();
        assert_eq!(records.len(), 1);
        let (scope, record) = &records[0];
        assert_eq!(scope, "inventory");
        assert_eq!(record.event_name, "stock_low");
        assert_eq!(record.time_unix_nano, 1_795_431_310_000_000_123);
        assert_eq!(record.observed_time_unix_nano, 1_795_431_310_000_000_456);
        assert_eq!(record.severity_number, Severity::Warn as i32);
        assert_eq!(record.severity_text, "WARN");
        assert_eq!(
            record.body,
            typed(any_value::Value::StringValue("stock is low".into()))
        );
        assert_eq!(
            (record.trace_id.as_slice(), record.span_id.as_slice()),
            (&[3; 16][..], &[4; 8][..])
        );
        assert_eq!(record.flags, 1);
        let attributes = &record.attributes;
        assert_eq!(
            attribute(attributes, "sku"),
            Some(&any_value::Value::StringValue("A-1".into()))
        );
        assert_eq!(
            attribute(attributes, "left"),
            Some(&any_value::Value::IntValue(3))
        );
        assert_eq!(
            attribute(attributes, "ratio"),
            Some(&any_value::Value::DoubleValue(0.25))
        );
        assert_eq!(
            attribute(attributes, "urgent"),
            Some(&any_value::Value::BoolValue(true))
        );
        assert_eq!(
            attribute(attributes, "raw"),
            Some(&any_value::Value::BytesValue(vec![0, 255]))
        );
        assert_eq!(attribute(attributes, "sizes"), Some(&ints(&[1, 2])));
        let uid = match attribute(attributes, "log.record.uid") {
            Some(any_value::Value::StringValue(uid)) => uid.clone(),
            other => panic!("no log.record.uid: {other:?}"),
        };
        assert_eq!(server.events()[0].event.dedupe_key, uid);
        provider.shutdown().unwrap();
        server.shutdown();
    }
}

#[test]
fn a_503_then_success_delivers_each_span_and_log_record_once() {
    let server = server(
        r#"[{"when": {"route": "/v1/traces", "nth": 1}, "then": {"status": 503}},
            {"when": {"route": "/v1/logs", "nth": 1}, "then": {"status": 503}}]"#,
    );
    let (traces_dir, logs_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let spans = start(traces_config(
        server.url(),
        OtlpEncoding::Protobuf,
        traces_dir.path(),
    ));
    let logs = start(logs_config(
        server.url(),
        OtlpEncoding::Protobuf,
        logs_dir.path(),
    ));
    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(OtelSpanProcessor::new(spans.clone()))
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_log_processor(OtelLogProcessor::new(logs.clone()))
        .build();
    let tracer = tracer_provider.tracer("app");
    let logger = logger_provider.logger("app");

    for n in 0..5_i64 {
        tracer.in_span(format!("step {n}"), |_cx| {
            let mut record = logger.create_log_record();
            record.set_body(LogValue::Int(n));
            logger.emit(record);
        });
    }
    tracer_provider.force_flush().unwrap();
    logger_provider.force_flush().unwrap();

    let stats = server.stats();
    assert_eq!((stats.events_unique, stats.duplicates), (10, 0));
    assert_eq!(stats.responses.get(&503), Some(&2));
    for reporter in [&spans, &logs] {
        let ours = reporter.stats();
        // The first request (however many of the 5 it held) was answered 503 and sent again.
        assert!(ours.acknowledged == 5 && ours.retried >= 1, "{ours:?}");
        assert!(ours.identity_holds(), "{ours:?}");
    }
    tracer_provider.shutdown().unwrap();
    logger_provider.shutdown().unwrap();
    server.shutdown();
}

/// A span processor that keeps what ended, to replay it.
#[derive(Debug, Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<SpanData>>>);

impl opentelemetry_sdk::trace::SpanProcessor for Capture {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.0.lock().unwrap().push(span);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

#[test]
fn a_span_recorded_again_is_stored_once() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    let reporter = start(traces_config(
        server.url(),
        OtlpEncoding::Protobuf,
        dir.path(),
    ));
    let processor = OtelSpanProcessor::new(reporter.clone());
    let ended = Capture::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(ended.clone())
        .build();
    provider.tracer("app").in_span("once", |_cx| {});
    let span = ended.0.lock().unwrap()[0].clone();

    // Recorded, sent, and recorded again (as an application replaying its spans after a crash would).
    processor.on_end(span.clone());
    processor.force_flush().unwrap();
    processor.on_end(span.clone());
    processor.on_end(span);
    processor.force_flush().unwrap();

    // On the wire once or twice (the sink sends a span once per batch), stored once.
    let stats = server.stats();
    assert_eq!(stats.events_unique, 1);
    assert!(matches!(stats.duplicates, 1 | 2), "{stats:?}");
    assert_eq!(reporter.stats().acknowledged, 3);
    let _ = processor.shutdown();
    server.shutdown();
}

#[test]
fn a_hanging_server_never_blocks_span_end_or_log_emit() {
    let server = server(r#"[{"when": {}, "then": "hang"}]"#);
    let (traces_dir, logs_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let hold = |builder: ConfigBuilder| {
        builder
            .request_timeout(Duration::from_secs(600))
            .batch_size(std::num::NonZeroUsize::new(1).unwrap())
    };
    let spans = start(hold(traces_config(
        server.url(),
        OtlpEncoding::Protobuf,
        traces_dir.path(),
    )));
    let logs = start(hold(logs_config(
        server.url(),
        OtlpEncoding::Protobuf,
        logs_dir.path(),
    )));
    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(OtelSpanProcessor::new(spans.clone()))
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_log_processor(OtelLogProcessor::new(logs.clone()))
        .build();
    let tracer = tracer_provider.tracer("app");
    let logger = logger_provider.logger("app");
    let emit = |n: i64| {
        tracer.in_span("work", |_cx| {
            let mut record = logger.create_log_record();
            record.set_body(LogValue::Int(n));
            logger.emit(record);
        });
    };

    // Arrange: the server holds a request of each reporter, and answers none.
    emit(0);
    assert!(
        wait_until(Duration::from_secs(30), || server.stats().faults.hang >= 2),
        "both reporters' first requests reach the server"
    );

    // Act: end spans and emit log records while the server holds both requests.
    for n in 1..=200 {
        emit(n);
    }

    // Assert: every call returned with both requests still held (none answered: their timeout is 600 s).
    let stats = server.stats();
    assert_eq!(stats.faults.hang, 2);
    assert!(stats.responses.is_empty(), "{stats:?}");
    assert_eq!((spans.stats().recorded, logs.stats().recorded), (201, 201));
    assert_eq!(spans.stats().acknowledged + logs.stats().acknowledged, 0);
    let _ = tracer_provider.shutdown_with_timeout(Duration::from_millis(200));
    let _ = logger_provider.shutdown_with_timeout(Duration::from_millis(200));
    server.shutdown();
}

#[test]
fn flush_cores_own_output_is_never_recorded_and_a_record_after_shutdown_is_counted() {
    let server = server("[]");
    let reporter = start(super::memory_config(&server));
    let processor = OtelLogProcessor::new(reporter.clone());
    let provider = SdkLoggerProvider::builder().build();
    let own = provider.logger("flush_core::sender");
    let mut record = own.create_log_record();
    record.set_body(LogValue::String("posting".into()));
    let scope = InstrumentationScope::builder("flush_core::sender").build();

    assert!(!processor.event_enabled(Severity::Debug, "flush_core::delivery", None));
    assert!(processor.event_enabled(Severity::Debug, "flush_core_extras", None));
    processor.emit(&mut record, &scope);
    std::thread::Builder::new()
        .name("flush-core-sender".into())
        .spawn({
            let processor = OtelLogProcessor::new(reporter.clone());
            let mut record = record.clone();
            move || processor.emit(&mut record, &InstrumentationScope::builder("app").build())
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(reporter.stats().recorded, 0);

    processor.shutdown().unwrap();
    processor.emit(&mut record, &InstrumentationScope::builder("app").build());
    let stats = reporter.stats();
    assert_eq!((stats.recorded, stats.dropped.after_shutdown), (1, 1));
    assert!(stats.identity_holds(), "{stats:?}");
    server.shutdown();
}

/// `force_flush` reports a server that is down as a timeout, and what it checkpointed is in the spool, delivered by
/// the next run.
#[test]
fn force_flush_against_a_server_that_is_down_times_out_and_the_next_run_delivers() {
    let server = server(r#"[{"when": {"route": "/v1/traces"}, "then": {"status": 503}}]"#);
    let dir = tempfile::tempdir().unwrap();
    let first = start(traces_config(
        server.url(),
        OtlpEncoding::Protobuf,
        dir.path(),
    ));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            OtelSpanProcessor::new(first.clone()).flush_timeout(Duration::from_millis(300)),
        )
        .build();
    provider.tracer("app").in_span("kept", |_cx| {});

    let flushed = provider.force_flush();

    // The provider wraps its processors' errors: the processor's own is `Timeout`.
    let error = format!("{:?}", flushed.unwrap_err());
    assert!(error.contains("Timeout(300ms)"), "{error}");
    assert_eq!(first.stats().pending.in_store, 1);
    let _ = provider.shutdown_with_timeout(Duration::from_millis(200));
    drop(provider);
    server.set_faults(fake_ingest::FaultPlan::default());
    let second = start(traces_config(
        server.url(),
        OtlpEncoding::Protobuf,
        dir.path(),
    ));
    assert_eq!(second.flush(FLUSH), flush_core::FlushOutcome::Acknowledged);
    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.name, "kept");
    let _ = second.shutdown(Duration::from_secs(5));
    drop(first);
    server.shutdown();
}

/// The crash child: ends spans carrying `ledger_id` = `<iteration>:<n>` in a loop, and every 20 spans calls
/// `force_flush`; once it returned `Ok` or a timeout (the checkpoint succeeded either way: only the server was late),
/// reports `F <n>`: every span up to `n` is in the spool. `tag` is `<iteration> <fake-ingest url>`.
pub(crate) fn crash_child(dir: &std::path::Path, tag: &str) {
    let (iteration, url) = tag.split_once(' ').expect("tag: iteration and url");
    let reporter = start(fast(
        Config::builder(url)
            .sink(OtlpTraces::new().service_name("crash"))
            .spool_dir(dir),
    ));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            OtelSpanProcessor::new(reporter).flush_timeout(Duration::from_millis(50)),
        )
        .build();
    let tracer = provider.tracer("crash");
    for n in 0_u64.. {
        tracer.in_span("work", |cx| {
            cx.span()
                .set_attribute(KeyValue::new("ledger_id", format!("{iteration}:{n}")));
        });
        if n % 20 == 19 {
            let flushed = match provider.force_flush() {
                Ok(()) => true,
                // The provider wraps the processor's error in its own; a timeout is the flush's, after the checkpoint.
                Err(error) => format!("{error:?}").contains("Timeout("),
            };
            if flushed {
                crate::spool::report(&format!("F {n}"));
            }
        }
    }
}

#[test]
fn spans_ended_before_a_force_flush_returned_survive_sigkill_exactly_once() {
    let server = server(r#"[{"when": {"probability": 0.3}, "then": {"status": 503}}]"#);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(0x07e1);
    let mut flushed = std::collections::BTreeSet::new();

    // Arrange and act: children ending spans on one spool, each SIGKILLed at a seeded random moment (the sleep
    // picks the moment; nothing is inferred from it).
    for iteration in 0..6 {
        let mut child =
            crate::spool::spawn_child("otel", dir.path(), &format!("{iteration} {}", server.url()));
        std::thread::sleep(Duration::from_millis(rng.u64(300..1200)));
        child.kill().unwrap();
        child.wait().unwrap();
        for line in crate::spool::read_protocol_lines(&mut child) {
            if let Some(last) = line.strip_prefix("F ") {
                let last: u64 = last.parse().unwrap();
                flushed.extend((0..=last).map(|n| format!("{iteration}:{n}")));
            }
        }
    }
    server.set_faults(fake_ingest::FaultPlan::none());
    let last_run = start(traces_config(
        server.url(),
        OtlpEncoding::Protobuf,
        dir.path(),
    ));
    assert_eq!(
        last_run.flush(FLUSH),
        flush_core::FlushOutcome::Acknowledged
    );

    // Assert: every span a force_flush covered is stored, each once.
    assert!(!flushed.is_empty(), "no child completed a force_flush");
    let stored: Vec<String> = server
        .events()
        .into_iter()
        .filter_map(|event| {
            event.event.properties["ledger_id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let unique: std::collections::BTreeSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a span stored twice");
    let missing: Vec<&String> = flushed.iter().filter(|id| !unique.contains(id)).collect();
    assert!(missing.is_empty(), "lost after force_flush: {missing:?}");
    let _ = last_run.shutdown(Duration::from_secs(5));
    server.shutdown();
}
