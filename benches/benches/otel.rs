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
//! left to drain on its own thread. What is timed is the call on the application's thread, with each pipeline's own
//! threads running beside it as they do (flush-core's spooler polls every 20 ms; a chunk never queues the 512 events
//! that would wake it).
//!
//! Criterion times each pipeline in turn and reports the mean of its samples. The ratios come from a second loop:
//! every pipeline of a state is built first, then each of them times about 20 000 calls (500 in smoke mode) one by
//! one, the pipelines taking turns in blocks of [`CHUNKS_PER_BLOCK`] chunks ([`benches::alternating`]), so that
//! each meets the same machine conditions. Inside its block a pipeline runs alone, settled by its own settle; the
//! first chunk of a block, which follows another pipeline's settle, is not counted. Each pipeline's mean and
//! percentiles are printed on a `PERCENTILES` line (the timer's own cost, `timer_overhead_ns`, included), and
//! `bench-report` takes the `otel` ratios from those means. Criterion's means are not used for the ratios: where
//! settling takes long (the SDK's `force_flush` with the server down) it measures only a few short chunks, whose first
//! calls after a settle are cold, and its pipelines are measured minutes apart.

mod common;

use std::hint::black_box;
use std::net::TcpListener;
use std::time::Duration;

use benches::alternating::{Blocks, Contender, record_alternately, time_call};
use benches::flush::{bench_spool_config, spool_with_backlog};
use benches::util::{
    print_load, print_percentiles, selected, size, temp_dir, time_in_chunks, timer_overhead_nanos,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flush_core::sink::{OtlpLogs, OtlpTraces};
use flush_core::{
    Config, FlushOutcome, OtelLogProcessor, OtelSpanProcessor, Reporter, Sink, TracingLayer,
};
use hdrhistogram::Histogram;
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
/// Chunks per block of the alternating measurement (the first not counted).
const CHUNKS_PER_BLOCK: usize = 8;
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

/// One pipeline of a state: how its calls are made (a `tracing` dispatch, or a tracer provider), what settles it
/// between chunks, and what ends it.
struct Pipeline<C> {
    /// The measurement's name, e.g. `info/ours_layer/healthy`.
    name: String,
    calls: C,
    settle: Box<dyn Fn()>,
    /// Our reporter, whose state is printed after the measurement.
    ours: Option<Reporter>,
    /// Shuts the pipeline down, and drops what it kept alive (its spool directory, its writer's guard).
    end: Box<dyn FnOnce()>,
}

impl<C> Pipeline<C> {
    /// A pipeline of ours: `calls` record into `ours`, whose spool is in `dir`; settled by [`settle`], ended by
    /// `shutdown` (then the spool directory is removed).
    fn ours(
        name: String,
        calls: C,
        ours: Reporter,
        dir: TempDir,
        state: Server,
        shutdown: impl FnOnce() + 'static,
    ) -> Self {
        let settled = ours.clone();
        Self {
            name,
            calls,
            settle: Box::new(move || settle(&settled, state)),
            ours: Some(ours),
            end: Box::new(move || {
                shutdown();
                drop(dir);
            }),
        }
    }

    fn finish(self) {
        if let Some(ours) = &self.ours {
            print_state(&self.name, ours);
        }
        (self.end)();
    }
}

/// Times `info()` under the pipeline's dispatch with criterion, settling between chunks.
fn bench_info(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    pipeline: &Pipeline<tracing::Dispatch>,
) {
    group.bench_function(&pipeline.name, |b| {
        b.iter_custom(|iters| {
            tracing::dispatcher::with_default(&pipeline.calls, || {
                time_in_chunks(
                    &mut (),
                    iters,
                    CHUNK,
                    |n| vec![(); n],
                    |_, _| info(),
                    |_| (pipeline.settle)(),
                )
            })
        });
    });
}

/// Times each of [`percentile_calls`] calls of every pipeline of a state on its own, the pipelines alternating block
/// by block ([`record_alternately`]), and prints one `PERCENTILES` line per pipeline. `chunk` makes `n` calls of one
/// pipeline, timing each.
fn measure_alternately<C>(
    pipelines: &[Pipeline<C>],
    chunk: impl Fn(&Pipeline<C>, usize, &mut Histogram<u64>),
) {
    let chunk = &chunk;
    let mut contenders: Vec<Contender<'_>> = pipelines
        .iter()
        .map(|pipeline| Contender {
            chunk: Box::new(move |n, histogram: &mut Histogram<u64>| chunk(pipeline, n, histogram)),
            settle: Box::new(|| (pipeline.settle)()),
        })
        .collect();
    let blocks = Blocks {
        chunk: CHUNK,
        chunks_per_block: size(CHUNKS_PER_BLOCK, 2),
        calls: percentile_calls(),
    };
    let histograms = record_alternately(&mut contenders, blocks);
    for (pipeline, histogram) in pipelines.iter().zip(&histograms) {
        print_percentiles(&format!("otel/{}", pipeline.name), histogram);
    }
}

/// Calls timed one by one for the `PERCENTILES` line of each measurement.
fn percentile_calls() -> u64 {
    size(20_000, 500) as u64
}

/// The `info` pipelines of `state` that the command line selects: flush-core's layer and log processor, and (with
/// a server) the SDK's batch log processor and (healthy) `tracing-appender`.
fn info_pipelines(endpoint: &Endpoint, state: Server) -> Vec<Pipeline<tracing::Dispatch>> {
    let mut pipelines = Vec::new();
    let name = format!("info/ours_layer/{}", state.name());
    if selected(&format!("otel/{name}")) {
        let (ours, dir) = reporter(
            format!("{}/ingest", endpoint.url),
            state,
            flush_core::sink::Ingest,
        );
        let layer = TracingLayer::new(ours.clone());
        let ended = ours.clone();
        pipelines.push(Pipeline::ours(
            name,
            tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
            ours,
            dir,
            state,
            move || {
                let _ = ended.shutdown(Duration::from_secs(1));
            },
        ));
    }

    let name = format!("info/ours_log_processor/{}", state.name());
    if selected(&format!("otel/{name}")) {
        let (ours, dir) = reporter(endpoint.url.clone(), state, OtlpLogs::new());
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(OtelLogProcessor::new(ours.clone()))
            .build();
        pipelines.push(Pipeline::ours(
            name,
            tracing::Dispatch::new(
                tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider)),
            ),
            ours,
            dir,
            state,
            move || {
                let _ = provider.shutdown_with_timeout(Duration::from_secs(1));
            },
        ));
    }

    let name = format!("info/sdk_batch_log_processor/{}", state.name());
    if state.has_peers() && selected(&format!("otel/{name}")) {
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
        let flushed = provider.clone();
        pipelines.push(Pipeline {
            name,
            calls: tracing::Dispatch::new(
                tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider)),
            ),
            settle: Box::new(move || {
                let _ = flushed.force_flush();
            }),
            ours: None,
            end: Box::new(move || {
                let _ = provider.shutdown_with_timeout(Duration::from_secs(1));
            }),
        });
    }

    let name = "info/tracing_appender_file/healthy".to_owned();
    if state == Server::Healthy && selected(&format!("otel/{name}")) {
        let dir = temp_dir("tracing-appender");
        let file = tracing_appender::rolling::never(dir.path(), "app.log");
        let (writer, guard) = tracing_appender::non_blocking(file);
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false);
        pipelines.push(Pipeline {
            name,
            calls: tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
            settle: Box::new(|| {}),
            ours: None,
            end: Box::new(move || {
                drop(guard);
                drop(dir);
            }),
        });
    }
    pipelines
}

/// For each state: builds its pipelines with `build`, measures each with criterion (`bench`), then all of them in
/// alternating blocks (`chunk` makes `n` timed calls of one pipeline), and ends them.
fn measure_states<C>(
    c: &mut Criterion,
    build: impl Fn(&Endpoint, Server) -> Vec<Pipeline<C>>,
    bench: impl Fn(&mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, &Pipeline<C>),
    chunk: impl Fn(&Pipeline<C>, usize, &mut Histogram<u64>),
) {
    let mut group = c.benchmark_group("otel");
    group.throughput(Throughput::Elements(1));
    for state in Server::ALL {
        let endpoint = Endpoint::start(state);
        let pipelines = build(&endpoint, state);
        for pipeline in &pipelines {
            bench(&mut group, pipeline);
        }
        measure_alternately(&pipelines, &chunk);
        pipelines.into_iter().for_each(Pipeline::finish);
        endpoint.stop();
    }
    group.finish();
}

fn info_group(c: &mut Criterion) {
    measure_states(c, info_pipelines, bench_info, |pipeline, n, histogram| {
        tracing::dispatcher::with_default(&pipeline.calls, || {
            for _ in 0..n {
                time_call(histogram, info);
            }
        });
    });
}

/// `n` spans of `provider`'s tracer, started (two attributes each) and not yet ended.
fn started_spans(provider: &SdkTracerProvider, n: usize) -> Vec<opentelemetry_sdk::trace::Span> {
    let tracer = provider.tracer("bench");
    (0..n)
        .map(|_| {
            let mut span = tracer.start("tool_call");
            span.set_attribute(KeyValue::new("tool", "grep"));
            span.set_attribute(KeyValue::new("n", 12_i64));
            span
        })
        .collect()
}

fn end_span(mut span: opentelemetry_sdk::trace::Span) {
    span.end();
    black_box(span);
}

/// Times ending spans of the pipeline's tracer with criterion, settling between chunks.
fn bench_span_end(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    pipeline: &Pipeline<SdkTracerProvider>,
) {
    group.bench_function(&pipeline.name, |b| {
        b.iter_custom(|iters| {
            time_in_chunks(
                &mut (),
                iters,
                CHUNK,
                |n| started_spans(&pipeline.calls, n),
                |_, span| end_span(span),
                |_| (pipeline.settle)(),
            )
        });
    });
}

/// The `span_end` pipelines of `state` that the command line selects: flush-core's span processor and (with a
/// server) the SDK's batch span processor.
fn span_pipelines(endpoint: &Endpoint, state: Server) -> Vec<Pipeline<SdkTracerProvider>> {
    let mut pipelines = Vec::new();
    let name = format!("span_end/ours/{}", state.name());
    if selected(&format!("otel/{name}")) {
        let (ours, dir) = reporter(endpoint.url.clone(), state, OtlpTraces::new());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(OtelSpanProcessor::new(ours.clone()))
            .build();
        let ended = provider.clone();
        pipelines.push(Pipeline::ours(
            name,
            provider,
            ours,
            dir,
            state,
            move || {
                let _ = ended.shutdown_with_timeout(Duration::from_secs(1));
            },
        ));
    }

    let name = format!("span_end/sdk_batch/{}", state.name());
    if state.has_peers() && selected(&format!("otel/{name}")) {
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
        let flushed = provider.clone();
        let ended = provider.clone();
        pipelines.push(Pipeline {
            name,
            calls: provider,
            settle: Box::new(move || {
                let _ = flushed.force_flush();
            }),
            ours: None,
            end: Box::new(move || {
                let _ = ended.shutdown_with_timeout(Duration::from_secs(1));
            }),
        });
    }
    pipelines
}

fn span_end_group(c: &mut Criterion) {
    measure_states(
        c,
        span_pipelines,
        bench_span_end,
        |pipeline, n, histogram| {
            for span in started_spans(&pipeline.calls, n) {
                time_call(histogram, || end_span(span));
            }
        },
    );
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
