//! Group `otel`: what instrumentation costs the application, flush-core's adapters beside the OpenTelemetry SDK's
//! batch processors and `tracing-appender`, measured in the same run.
//!
//! - `info/{ours_layer, ours_log_processor, sdk_batch_log_processor, tracing_appender_file}/{healthy,server_down}`:
//!   one `tracing::info!` with three fields and a message, through flush-core's `TracingLayer`; through
//!   `opentelemetry-appender-tracing` into flush-core's `OtelLogProcessor`; through the same bridge into the SDK's
//!   `BatchLogProcessor` with the OTLP/HTTP protobuf exporter; and through `tracing-subscriber`'s fmt layer into
//!   `tracing-appender`'s non-blocking file writer (no server: its `server_down` run is the same as `healthy`, and is
//!   not repeated).
//! - `span_end/{ours, sdk_batch}/{healthy,server_down}`: ending one span (started outside the timing, two
//!   attributes) with flush-core's `OtelSpanProcessor`, and with the SDK's `BatchSpanProcessor` and the OTLP/HTTP
//!   protobuf exporter.
//!
//! `healthy` is the embedded fake-ingest answering at once; `server_down` is a loopback port nothing listens on.
//! The state with a 1-million-event backlog is not measured here (the `record` group measures `record()` with one).
//! Calls are timed in chunks of [`CHUNK`]; between chunks, untimed, each pipeline is settled so the next chunk finds
//! room: flush-core's reporters `checkpoint` (the queue is in the spool), the SDK's providers `force_flush` (the
//! queue is exported or dropped), `tracing-appender`'s writer is left to drain on its own thread.

mod common;

use std::hint::black_box;
use std::net::TcpListener;
use std::time::Duration;

use benches::util::{print_load, selected, temp_dir, time_in_chunks};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flush_core::sink::{OtlpLogs, OtlpTraces};
use flush_core::{Config, OtelLogProcessor, OtelSpanProcessor, Reporter, Sink, TracingLayer};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tempfile::TempDir;
use tracing_subscriber::layer::SubscriberExt as _;

/// Calls per timed chunk: well under every queue's bound (the SDK's 2,048, flush-core's 8,192).
const CHUNK: usize = 256;

/// Where the pipelines send: the embedded fake-ingest, or a port nothing listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Healthy,
    Down,
}

impl Server {
    const ALL: [Self; 2] = [Self::Healthy, Self::Down];

    fn name(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Down => "server_down",
        }
    }
}

/// A server for one measurement: its base URL, and the fake-ingest behind it when healthy.
struct Endpoint {
    url: String,
    server: Option<fake_ingest::Server>,
}

impl Endpoint {
    fn start(state: Server) -> Self {
        match state {
            Server::Healthy => {
                let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())
                    .unwrap_or_else(|error| panic!("start fake-ingest: {error}"));
                Self {
                    url: server.url(),
                    server: Some(server),
                }
            }
            Server::Down => {
                let address = TcpListener::bind("127.0.0.1:0")
                    .and_then(|listener| listener.local_addr())
                    .unwrap_or_else(|error| panic!("a free port: {error}"));
                Self {
                    url: format!("http://{address}"),
                    server: None,
                }
            }
        }
    }

    fn stop(self) {
        if let Some(server) = self.server {
            server.shutdown();
        }
    }
}

/// A reporter with `sink` posting to `endpoint`, its spool (no fsync) in a fresh temporary directory.
fn reporter(endpoint: &Endpoint, sink: impl Sink) -> (Reporter, TempDir) {
    let dir = temp_dir("otel");
    let mut spool = flush_core::spool::SpoolConfig::new(dir.path().join("spool"));
    spool.sync = flush_core::SyncPolicy::Never;
    let config = Config::builder(endpoint.url.clone())
        .sink(sink)
        .spool(spool)
        .distinct_id("bench")
        .request_timeout(Duration::from_secs(1))
        .build()
        .unwrap_or_else(|error| panic!("reporter config: {error}"));
    let reporter =
        Reporter::start(config).unwrap_or_else(|error| panic!("start the reporter: {error}"));
    (reporter, dir)
}

fn checkpoint(reporter: &Reporter) {
    reporter
        .checkpoint()
        .unwrap_or_else(|error| panic!("checkpoint: {error}"));
}

/// The measured call: one event with three typed fields and a message.
fn info() {
    tracing::info!(tool = "grep", ok = true, n = 12_u64, "tool call finished");
}

/// Times `info()` under `dispatch`, settling with `settle` between chunks.
fn bench_info(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    dispatch: &tracing::Dispatch,
    settle: impl Fn(),
) {
    if !selected(&format!("otel/{name}")) {
        return;
    }
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            tracing::dispatcher::with_default(dispatch, || {
                time_in_chunks(
                    &mut (),
                    iters,
                    CHUNK,
                    |n| vec![(); n],
                    |_, _| info(),
                    |_| settle(),
                )
            })
        });
    });
}

fn info_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("otel");
    group.throughput(Throughput::Elements(1));
    for state in Server::ALL {
        let endpoint = Endpoint::start(state);

        let (ours, _dir) = reporter(&endpoint, flush_core::sink::Ingest);
        let layer = TracingLayer::new(ours.clone());
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        bench_info(
            &mut group,
            &format!("info/ours_layer/{}", state.name()),
            &dispatch,
            || checkpoint(&ours),
        );
        let _ = ours.shutdown(Duration::from_secs(1));

        let (ours, _dir) = reporter(&endpoint, OtlpLogs::new());
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(OtelLogProcessor::new(ours.clone()))
            .build();
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider)),
        );
        bench_info(
            &mut group,
            &format!("info/ours_log_processor/{}", state.name()),
            &dispatch,
            || checkpoint(&ours),
        );
        let _ = provider.shutdown_with_timeout(Duration::from_secs(1));

        let exporter = LogExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(Duration::from_secs(1))
            .with_endpoint(format!("{}/v1/logs", endpoint.url))
            .build()
            .unwrap_or_else(|error| panic!("the OTLP log exporter: {error}"));
        let provider = SdkLoggerProvider::builder()
            .with_batch_exporter(exporter)
            .build();
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider)),
        );
        bench_info(
            &mut group,
            &format!("info/sdk_batch_log_processor/{}", state.name()),
            &dispatch,
            || {
                let _ = provider.force_flush();
            },
        );
        let _ = provider.shutdown_with_timeout(Duration::from_secs(1));

        if state == Server::Healthy {
            let dir = temp_dir("tracing-appender");
            let file = tracing_appender::rolling::never(dir.path(), "app.log");
            let (writer, guard) = tracing_appender::non_blocking(file);
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false);
            let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
            bench_info(
                &mut group,
                "info/tracing_appender_file/healthy",
                &dispatch,
                || {},
            );
            drop(guard);
        }
        endpoint.stop();
    }
    group.finish();
}

/// Times ending spans of `provider`'s tracer, settling with `settle` between chunks.
fn bench_span_end(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    provider: &SdkTracerProvider,
    settle: impl Fn(),
) {
    if !selected(&format!("otel/{name}")) {
        return;
    }
    let tracer = provider.tracer("bench");
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            time_in_chunks(
                &mut (),
                iters,
                CHUNK,
                |n| {
                    (0..n)
                        .map(|_| {
                            let mut span = tracer.start("tool_call");
                            span.set_attribute(KeyValue::new("tool", "grep"));
                            span.set_attribute(KeyValue::new("n", 12_i64));
                            span
                        })
                        .collect()
                },
                |_, mut span: opentelemetry_sdk::trace::Span| {
                    span.end();
                    black_box(span);
                },
                |_| settle(),
            )
        });
    });
}

fn span_end_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("otel");
    group.throughput(Throughput::Elements(1));
    for state in Server::ALL {
        let endpoint = Endpoint::start(state);

        let (ours, _dir) = reporter(&endpoint, OtlpTraces::new());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(OtelSpanProcessor::new(ours.clone()))
            .build();
        bench_span_end(
            &mut group,
            &format!("span_end/ours/{}", state.name()),
            &provider,
            || checkpoint(&ours),
        );
        let _ = provider.shutdown_with_timeout(Duration::from_secs(1));

        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(Duration::from_secs(1))
            .with_endpoint(format!("{}/v1/traces", endpoint.url))
            .build()
            .unwrap_or_else(|error| panic!("the OTLP span exporter: {error}"));
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .build();
        bench_span_end(
            &mut group,
            &format!("span_end/sdk_batch/{}", state.name()),
            &provider,
            || {
                let _ = provider.force_flush();
            },
        );
        let _ = provider.shutdown_with_timeout(Duration::from_secs(1));
        endpoint.stop();
    }
    group.finish();
}

fn start(_: &mut Criterion) {
    print_load("otel start");
}

fn end(_: &mut Criterion) {
    print_load("otel end");
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = start, info_group, span_end_group, end
}
criterion_main!(benches);
