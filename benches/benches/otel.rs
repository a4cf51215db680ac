//! Group `otel`: what instrumentation costs the application, flush-core's adapters beside the OpenTelemetry SDK's
//! batch processors and `tracing-appender`, measured in the same run.
//!
//! - `info/{ours_layer, ours_log_processor, sdk_batch_log_processor, tracing_appender_file}/{healthy,server_down}`:
//!   one `tracing::info!` with three fields and a message, through flush-core's `TracingLayer`; through
//!   `opentelemetry-appender-tracing` into flush-core's `OtelLogProcessor`; through the same bridge into the SDK's
//!   `BatchLogProcessor` with the OTLP/HTTP protobuf exporter; and through `tracing-subscriber`'s fmt layer into
//!   `tracing-appender`'s non-blocking file writer (no server: its `server_down` run is the same as `healthy`, and is
//!   not repeated); flush-core's two also `.../backlog_1m`.
//! - `span_end/{ours, sdk_batch}/{healthy,server_down}`: ending one span (started outside the timing, two
//!   attributes) with flush-core's `OtelSpanProcessor`, and with the SDK's `BatchSpanProcessor` and the OTLP/HTTP
//!   protobuf exporter; flush-core's also `span_end/ours/backlog_1m`.
//!
//! `healthy` is the embedded fake-ingest answering at once; `server_down` is a loopback port nothing listens on;
//! `backlog_1m` is the same port nothing listens on, with 1 million events (10 000 in smoke mode) already in
//! flush-core's spool when its reporter starts (`benches::flush::spool_with_backlog`, as in the `record` group), so the
//! backlog stays for the whole measurement. Only flush-core is measured with a backlog: the SDK's batch processors
//! hold at most 2,048 records in memory, drop what comes beyond, and drop a batch whose export failed, so with the
//! server down they never hold more than that (their `server_down` figure is their state with a backlog);
//! `tracing-appender` writes to a local file and has no server to fall behind.
//! Calls are timed in chunks of [`CHUNK`]; between chunks, untimed, each pipeline is settled so the next chunk finds
//! room and no work of an earlier chunk runs during it: the SDK's providers `force_flush` (the queue is exported, or
//! dropped when the export fails); flush-core's reporters `checkpoint` (the queue is in the spool) and, with a
//! healthy server, `flush` (it is delivered; with the server down nothing can be); `tracing-appender`'s writer is
//! left to drain on its own thread. Criterion reports the mean of its samples; a second loop times each of 20 000
//! calls (500 in smoke mode) alone, chunked and settled the same way, and prints its mean and percentiles on a
//! `PERCENTILES` line (the timer's own cost, `timer_overhead_ns`, included). `bench-report` takes the `otel` ratios
//! from those means: where settling takes long (the SDK's `force_flush` with the server down), criterion measures
//! only a few short chunks, whose first calls after a settle are cold. What is timed is the call on the application's thread, with each pipeline's own
//! threads (flush-core's spooler, woken at 50 queued events, keying and serializing) running beside it as they do.

mod common;

use std::hint::black_box;
use std::net::TcpListener;
use std::time::Duration;

use benches::flush::{bench_spool_config, spool_with_backlog};
use benches::util::{
    latency_histogram, print_load, print_percentiles, record_latencies, selected, size, temp_dir,
    time_in_chunks, timer_overhead_nanos,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flush_core::sink::{OtlpLogs, OtlpTraces};
use flush_core::{
    Config, FlushOutcome, OtelLogProcessor, OtelSpanProcessor, Reporter, Sink, TracingLayer,
};
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
/// How long settling waits for the healthy server to acknowledge a chunk (far more than it takes).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the pipelines send: the embedded fake-ingest, or a port nothing listens on (with or without a backlog).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Healthy,
    Down,
    /// Down, and flush-core's spool holds a backlog (the peers are not measured in this state).
    Backlog,
}

impl Server {
    const ALL: [Self; 3] = [Self::Healthy, Self::Down, Self::Backlog];

    fn name(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Down => "server_down",
            Self::Backlog => "backlog_1m",
        }
    }

    /// Whether the peers are measured in this state.
    fn has_peers(self) -> bool {
        self != Self::Backlog
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
            Server::Down | Server::Backlog => {
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

/// A reporter with `sink` posting to `url`, its spool (no fsync) in a fresh temporary directory, holding the backlog of
/// the `Backlog` state.
fn reporter(url: String, state: Server, sink: impl Sink) -> (Reporter, TempDir) {
    let dir = temp_dir("otel");
    let spool_dir = dir.path().join("spool");
    let spool = match state {
        Server::Backlog => spool_with_backlog(&spool_dir, size(1_000_000, 10_000)),
        Server::Healthy | Server::Down => {
            bench_spool_config(&spool_dir, flush_core::SyncPolicy::Never)
        }
    };
    let config = Config::builder(url)
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

/// Settles one of our reporters between chunks, as far as the SDK's `force_flush` settles its processors: everything
/// recorded is in the spool, and with a healthy server also delivered (so no delivery of an earlier chunk runs
/// during the next one, as none does for the SDK's processors); with the server down, nothing can be delivered and
/// the SDK's processors drop what failed to export.
fn settle(reporter: &Reporter, state: Server) {
    reporter
        .checkpoint()
        .unwrap_or_else(|error| panic!("checkpoint: {error}"));
    if state == Server::Healthy {
        let outcome = reporter.flush(SETTLE_TIMEOUT);
        assert!(
            outcome == FlushOutcome::Acknowledged,
            "the healthy server did not acknowledge a chunk within {SETTLE_TIMEOUT:?}"
        );
    }
}

/// Prints what `reporter` did during the measurement `name` (its backlog stays pending while the server is down).
fn print_state(name: &str, reporter: &Reporter) {
    let stats = reporter.stats();
    println!(
        "STATE otel/{name} recorded={} dropped={} pending_in_store={} acknowledged={}",
        stats.recorded,
        stats.dropped.total(),
        stats.pending.in_store,
        stats.acknowledged,
    );
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
    let mut histogram = latency_histogram();
    tracing::dispatcher::with_default(dispatch, || {
        record_latencies(
            &mut (),
            &mut histogram,
            percentile_calls(),
            CHUNK,
            |n| vec![(); n],
            |_, _| info(),
            |_| settle(),
        );
    });
    print_percentiles(&format!("otel/{name}"), &histogram);
}

/// Calls timed one by one for the `PERCENTILES` line of each measurement.
fn percentile_calls() -> u64 {
    size(20_000, 500) as u64
}

fn info_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("otel");
    group.throughput(Throughput::Elements(1));
    for state in Server::ALL {
        let endpoint = Endpoint::start(state);

        let name = format!("info/ours_layer/{}", state.name());
        if selected(&format!("otel/{name}")) {
            let (ours, _dir) = reporter(
                format!("{}/ingest", endpoint.url),
                state,
                flush_core::sink::Ingest,
            );
            let layer = TracingLayer::new(ours.clone());
            let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
            bench_info(&mut group, &name, &dispatch, || settle(&ours, state));
            print_state(&name, &ours);
            let _ = ours.shutdown(Duration::from_secs(1));
        }

        let name = format!("info/ours_log_processor/{}", state.name());
        if selected(&format!("otel/{name}")) {
            let (ours, _dir) = reporter(endpoint.url.clone(), state, OtlpLogs::new());
            let provider = SdkLoggerProvider::builder()
                .with_log_processor(OtelLogProcessor::new(ours.clone()))
                .build();
            let dispatch = tracing::Dispatch::new(
                tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider)),
            );
            bench_info(&mut group, &name, &dispatch, || settle(&ours, state));
            print_state(&name, &ours);
            let _ = provider.shutdown_with_timeout(Duration::from_secs(1));
        }

        if !state.has_peers() {
            endpoint.stop();
            continue;
        }

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
    let started = |n| {
        (0..n)
            .map(|_| {
                let mut span = tracer.start("tool_call");
                span.set_attribute(KeyValue::new("tool", "grep"));
                span.set_attribute(KeyValue::new("n", 12_i64));
                span
            })
            .collect()
    };
    let end = |_: &mut (), mut span: opentelemetry_sdk::trace::Span| {
        span.end();
        black_box(span);
    };
    group.bench_function(name, |b| {
        b.iter_custom(|iters| time_in_chunks(&mut (), iters, CHUNK, started, end, |_| settle()));
    });
    let mut histogram = latency_histogram();
    record_latencies(
        &mut (),
        &mut histogram,
        percentile_calls(),
        CHUNK,
        started,
        end,
        |_| settle(),
    );
    print_percentiles(&format!("otel/{name}"), &histogram);
}

fn span_end_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("otel");
    group.throughput(Throughput::Elements(1));
    for state in Server::ALL {
        let endpoint = Endpoint::start(state);

        let name = format!("span_end/ours/{}", state.name());
        if selected(&format!("otel/{name}")) {
            let (ours, _dir) = reporter(endpoint.url.clone(), state, OtlpTraces::new());
            let provider = SdkTracerProvider::builder()
                .with_span_processor(OtelSpanProcessor::new(ours.clone()))
                .build();
            bench_span_end(&mut group, &name, &provider, || settle(&ours, state));
            print_state(&name, &ours);
            let _ = provider.shutdown_with_timeout(Duration::from_secs(1));
        }

        if !state.has_peers() {
            endpoint.stop();
            continue;
        }

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
    println!("PERCENTILES timer_overhead_ns={}", timer_overhead_nanos());
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
