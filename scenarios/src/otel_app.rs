//! The app of the otel-app scenario (`scenarios app --mode otel` and `--mode otel-sdk`): a service instrumented only
//! with `tracing` macros and the OpenTelemetry API, which differs between the two modes in its setup code alone.
//!
//! | mode | log records (`tracing::info!` through `opentelemetry-appender-tracing`) | spans (an OpenTelemetry tracer) |
//! |---|---|---|
//! | `otel` | flush-core's `OtelLogProcessor`, `otlp_logs` sink, spool `<spool>/logs` | flush-core's `OtelSpanProcessor`, `otlp_traces` sink, spool `<spool>/traces` |
//! | `otel-sdk` | the SDK's batch log processor, OTLP/HTTP protobuf exporter (blocking reqwest) | the SDK's batch span processor, the same exporter |
//!
//! Each request of the workload is a `handle_request` span with a `query` child span and one log record inside it,
//! each carrying its own ledger id (`ledger_id` attribute). Every `--checkpoint-every` requests the app calls
//! `force_flush` on both providers and, when both say the records are safe, writes a ledger `checkpoint` line: for
//! `otel`, `Ok` or the processor's `Timeout` (the checkpoint to disk succeeded, only the server was late); for
//! `otel-sdk`, `Ok` only (an error means the exporter dropped the batch). Both modes use the SDK processors'
//! documented defaults otherwise.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use flush_core::{OtelLogProcessor, OtelSpanProcessor, Reporter};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::app::{AppArgs, Mode, SinkArg, app_stats_of, config, saturating_ms, saturating_us};
use crate::ledger::{AppStats, ExitReport, LedgerLine, LedgerWriter, now_ms};
use crate::process::Memory;

/// The `tracing` target of the app's own log records: the only target the OpenTelemetry bridge forwards, as an
/// application keeps its exporters' own logs (HTTP clients, the SDK, flush-core) out of its telemetry.
const APP_TARGET: &str = "otel_app";

/// How long flush-core's processors' `force_flush` waits for the server once the checkpoint is done.
const FLUSH_TIMEOUT: Duration = Duration::from_millis(200);

/// The two providers of one mode, and for `otel` the reporters behind them (read only for the exit report).
struct Pipeline {
    tracer_provider: SdkTracerProvider,
    logger_provider: SdkLoggerProvider,
    reporters: Vec<Reporter>,
}

impl Pipeline {
    /// flush-core's processors, each on its own reporter and spool.
    fn ours(args: &AppArgs) -> anyhow::Result<Self> {
        let [logs, traces] = spools(&args.spool).map(|(sink, spool)| {
            let mut args = args.clone();
            args.sink = sink;
            args.spool = spool;
            Reporter::start(config(&args)?)
                .with_context(|| format!("starting the {} reporter", sink.label()))
        });
        let (logs, traces) = (logs?, traces?);
        let logger_provider = SdkLoggerProvider::builder()
            .with_log_processor(OtelLogProcessor::new(logs.clone()).flush_timeout(FLUSH_TIMEOUT))
            .build();
        let tracer_provider = SdkTracerProvider::builder()
            .with_span_processor(
                OtelSpanProcessor::new(traces.clone()).flush_timeout(FLUSH_TIMEOUT),
            )
            .build();
        Ok(Self {
            tracer_provider,
            logger_provider,
            reporters: vec![logs, traces],
        })
    }

    /// The SDK's batch processors with the OTLP/HTTP protobuf exporter, as its documentation sets them up.
    fn sdk(args: &AppArgs) -> anyhow::Result<Self> {
        let base = args.endpoint.trim_end_matches('/');
        let resource = Resource::builder().with_service_name("scenarios").build();
        let logs = LogExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{base}/v1/logs"))
            .build()
            .context("building the OTLP log exporter")?;
        let spans = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{base}/v1/traces"))
            .build()
            .context("building the OTLP span exporter")?;
        Ok(Self {
            logger_provider: SdkLoggerProvider::builder()
                .with_resource(resource.clone())
                .with_batch_exporter(logs)
                .build(),
            tracer_provider: SdkTracerProvider::builder()
                .with_resource(resource)
                .with_batch_exporter(spans)
                .build(),
            reporters: Vec::new(),
        })
    }

    /// Calls `force_flush` on both providers; whether every record ended before it is safe.
    fn force_flush(&self, mode: Mode) -> bool {
        let safe = |result: OTelSdkResult| match result {
            Ok(()) => true,
            // The providers wrap their processors' errors in a string: flush-core's processor times out only after
            // its checkpoint succeeded.
            Err(error) => mode == Mode::Otel && format!("{error:?}").contains("Timeout("),
        };
        let spans = safe(self.tracer_provider.force_flush());
        let logs = safe(self.logger_provider.force_flush());
        spans && logs
    }
}

/// Runs the app in `otel` or `otel-sdk` mode.
///
/// # Errors
/// When the ledger cannot be written or a pipeline cannot be built.
pub fn run(args: &AppArgs, ledger: &mut LedgerWriter) -> anyhow::Result<()> {
    let pipeline = match args.mode {
        Mode::OtelSdk => Pipeline::sdk(args)?,
        _ => Pipeline::ours(args)?,
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(tracing_subscriber::EnvFilter::from_default_env()),
        )
        .with(
            OpenTelemetryTracingBridge::new(&pipeline.logger_provider).with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target(APP_TARGET, tracing::Level::INFO),
            ),
        )
        .try_init()
        .context("installing the tracing subscriber")?;
    let baseline_rss_kib = Memory::of_self().map(|memory| memory.rss_kib);
    let tracer = pipeline.tracer_provider.tracer("otel-app");
    let started = Instant::now();
    for request in 0..args.events {
        if args.rate > 0 {
            let due = started + Duration::from_secs_f64(request as f64 / args.rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let ids =
            ["span", "query", "log"].map(|kind| format!("{}-{kind}-{request}", args.id_prefix));
        for id in &ids {
            ledger.write(&LedgerLine::Record {
                id: id.clone(),
                poison: false,
            })?;
        }
        let [span_id, query_id, log_id] = ids;
        tracer.in_span("handle_request", |cx| {
            cx.span().set_attribute(KeyValue::new("ledger_id", span_id));
            let mut query = tracer.start("query");
            query.set_attribute(KeyValue::new("ledger_id", query_id));
            query.set_attribute(KeyValue::new("rows", 3_i64));
            query.end();
            tracing::info!(target: APP_TARGET, ledger_id = %log_id, request, "request handled");
        });
        if args.checkpoint_every > 0
            && (request + 1).is_multiple_of(args.checkpoint_every)
            && pipeline.force_flush(args.mode)
        {
            ledger.checkpoint()?;
        }
    }
    if pipeline.force_flush(args.mode) {
        ledger.checkpoint()?;
    }
    ledger.write(&LedgerLine::ShutdownBegin {
        at_ms: now_ms(),
        deadline_ms: args.shutdown_ms,
    })?;
    let began = Instant::now();
    let deadline = Duration::from_millis(args.shutdown_ms);
    let _ = pipeline.tracer_provider.shutdown_with_timeout(deadline);
    let _ = pipeline.logger_provider.shutdown_with_timeout(deadline);
    let took = began.elapsed();
    ledger.write(&LedgerLine::Exit(Box::new(ExitReport {
        at_ms: now_ms(),
        stats: stats_of(&pipeline.reporters),
        shutdown_ms: saturating_ms(took),
        shutdown_us: Some(saturating_us(took)),
        peak_rss_kib: Memory::of_self().map(|memory| memory.peak_rss_kib),
        baseline_rss_kib,
        ..ExitReport::default()
    })))
}

/// flush-core's counters summed over the reporters (none for the SDK's pipeline: its counters stay empty).
fn stats_of(reporters: &[Reporter]) -> AppStats {
    let mut total = AppStats::default();
    for reporter in reporters {
        let stats = app_stats_of(&reporter.stats(), 0);
        total.recorded += stats.recorded;
        total.recovered += stats.recovered;
        total.acknowledged += stats.acknowledged;
        total.dead_lettered += stats.dead_lettered;
        total.settled_elsewhere += stats.settled_elsewhere;
        total.pending += stats.pending;
        for (reason, count) in stats.dropped {
            *total.dropped.entry(reason).or_default() += count;
        }
    }
    total
}

/// The spools of `otel` mode under a scenario's spool directory: each with the sink that drains it.
#[must_use]
pub fn spools(spool: &Path) -> [(SinkArg, PathBuf); 2] {
    [
        (SinkArg::OtlpLogs, spool.join("logs")),
        (SinkArg::OtlpTraces, spool.join("traces")),
    ]
}
