//! The app under test: `scenarios app --mode ...`, a small program built on flush-core that plays the program kinds
//! of the design documents and writes its [ledger](crate::ledger).
//!
//! | mode | plays | flush mode | ends with |
//! |---|---|---|---|
//! | `service` | a service: tool calls in sessions | background (size + delay) | `flush`, `shutdown` |
//! | `chat` | a chat REPL: streaming (busy) phases, idle prompts | idle-only | `flush`, `shutdown` |
//! | `cli` | one short CLI invocation: 1–3 events, a bounded send | background | bounded `shutdown` |
//! | `drain` | a run that records nothing and delivers the spool's backlog | background | `flush`, `shutdown` |
//! | `overhead` | a CPU-bound workload, one event per unit, with and without telemetry | background | `shutdown` |
//! | `otel`, `otel-sdk` | a service instrumented with `tracing` and the OpenTelemetry API ([`crate::otel_app`]) | flush-core's processors, or the SDK's batch processors | `force_flush`, provider `shutdown` |
//! | `cli-baseline` | the same CLI invocation without telemetry: no reporter; a plain wait for the deadline stands in for `shutdown` | — | the wait |
//!
//! Every event but the overhead workload's carries its ledger id in the `ledger_id` property (the session helpers'
//! events are matched by `session_id` instead). The harness builds the command line with
//! [`AppArgs::to_args`], and the app parses it with clap: one struct for both sides.

use std::ffi::OsString;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ValueEnum;
use flush_core::sink::{OtlpLogs, OtlpTraces, PostHog};
use flush_core::spool::{SpoolConfig, SyncPolicy};
use flush_core::{
    BreakerPolicy, BreakerState, Config, DropPolicy, Event, FlushMode, QueueLimits, Reporter,
    RetryPolicy, Session, Stats,
};
use hdrhistogram::Histogram;
use serde_json::Value;

use crate::ledger::{
    AppStats, ExitReport, LEDGER_ID_PROPERTY, LedgerLine, LedgerWriter, OverheadSample,
    POISON_PROPERTY, Phase, now_ms,
};
use crate::process::Memory;

/// The program kind the app plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// A service recording tool calls in sessions, background flushing.
    Service,
    /// A chat REPL in idle-only mode.
    Chat,
    /// One short CLI invocation with a bounded send.
    Cli,
    /// Delivers the spool's backlog and records nothing.
    Drain,
    /// The proportional-overhead workload.
    Overhead,
    /// The otel-app service, instrumented with `tracing` and the OpenTelemetry API, exporting through flush-core's
    /// OpenTelemetry processors ([`crate::otel_app`]).
    Otel,
    /// The same service exporting through the OpenTelemetry SDK's batch processors and OTLP/HTTP exporter.
    OtelSdk,
    /// A CLI invocation without telemetry: the calibration baseline of the CLI deadline check. It starts no
    /// reporter, records nothing, and where a CLI invocation calls `shutdown` it waits for a reply that never comes
    /// until the same deadline, the way `shutdown` waits for its workers; how late that wait returns is what the
    /// machine's load alone adds to a deadline.
    CliBaseline,
}

/// The backend the app delivers to: which flush-core sink, and which fake-ingest route receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkArg {
    /// Our own protocol: `POST /ingest`.
    Ingest,
    /// PostHog's capture API: `POST /batch/`.
    Posthog,
    /// OTLP/HTTP logs (protobuf): `POST /v1/logs`.
    OtlpLogs,
    /// OTLP/HTTP traces (protobuf): `POST /v1/traces`; it carries spans only, so only the otel-app scenario uses
    /// it (to drain its spans' spool), and the runner refuses it on its command line.
    #[value(hide = true)]
    OtlpTraces,
}

impl SinkArg {
    /// Every sink that carries any event, in the order the runner uses them (`otlp-traces` carries spans only).
    pub const ALL: [Self; 3] = [Self::Ingest, Self::Posthog, Self::OtlpLogs];

    /// The fake-ingest route this sink posts to.
    #[must_use]
    pub fn route(self) -> &'static str {
        match self {
            Self::Ingest => "/ingest",
            Self::Posthog => "/batch/",
            Self::OtlpLogs => "/v1/logs",
            Self::OtlpTraces => "/v1/traces",
        }
    }

    /// The name on the command line and in reports (`otlp-logs`).
    #[must_use]
    pub fn label(self) -> String {
        self.name()
    }
}

/// The drop policy, as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DropArg {
    /// Drop the new event.
    Newest,
    /// Evict the oldest queued event.
    Oldest,
    /// Keep one in four while the queue is more than half full.
    Sample,
}

/// The app's command line.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct AppArgs {
    /// The program kind.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// The backend (flush-core sink) to deliver to.
    #[arg(long, value_enum, default_value = "ingest")]
    pub sink: SinkArg,
    /// The spool directory (shared between processes of one scenario).
    #[arg(long)]
    pub spool: PathBuf,
    /// The ingest endpoint base URL.
    #[arg(long)]
    pub endpoint: String,
    /// This process's ledger file.
    #[arg(long)]
    pub ledger: PathBuf,
    /// The prefix of every ledger id (`<run>-<instance>`), unique per process.
    #[arg(long)]
    pub id_prefix: String,
    /// Seed of the app's own choices (events per CLI run, pacing jitter).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Events to record (service: tool calls; chat: messages × chunks; cli: upper bound of 1–3).
    #[arg(long, default_value_t = 100)]
    pub events: u64,
    /// Events per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Call `checkpoint()` after every N events (0: never).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: u64,
    /// Mark every Nth event as poison (0: none).
    #[arg(long, default_value_t = 0)]
    pub poison_every: u64,
    /// Tool calls per session (service mode; 0: no sessions).
    #[arg(long, default_value_t = 0)]
    pub session_every: u64,
    /// Chat: events streamed per message (busy phase).
    #[arg(long, default_value_t = 5)]
    pub chunks: u64,
    /// Chat: the longest "user typing" pause at an idle prompt, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub typing_ms: u64,
    /// Chat: probe the fake server's `/ingest` request counter at phase boundaries.
    #[arg(long)]
    pub probe_requests: bool,
    /// Bytes of padding per event.
    #[arg(long, default_value_t = 0)]
    pub padding: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    /// Batch delay, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub batch_delay_ms: u64,
    /// In-memory queue limit, events.
    #[arg(long, default_value_t = 8192)]
    pub queue_events: usize,
    /// In-memory queue limit, bytes.
    #[arg(long, default_value_t = 16 << 20)]
    pub queue_bytes: usize,
    /// Spool size limit, bytes.
    #[arg(long)]
    pub spool_bytes: Option<u64>,
    /// The drop policy.
    #[arg(long, value_enum, default_value = "newest")]
    pub drop: DropArg,
    /// Request timeout, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub request_timeout_ms: u64,
    /// Breaker: consecutive failures before it opens.
    #[arg(long, default_value_t = 5)]
    pub breaker_failures: u32,
    /// Breaker: first cooldown, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub breaker_cooldown_ms: u64,
    /// Longest retry backoff, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub max_backoff_ms: u64,
    /// How long the final `flush` may take before `shutdown`, in milliseconds (0: no flush).
    #[arg(long, default_value_t = 30_000)]
    pub flush_ms: u64,
    /// The `shutdown` deadline, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub shutdown_ms: u64,
    /// Bounded shutdown: send at most this many events (cli mode).
    #[arg(long)]
    pub max_send: Option<usize>,
    /// Overhead: units of work per size, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,100000")]
    pub units: Vec<u64>,
    /// Overhead: rounds per size (best of).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Overhead: the server condition, for the report.
    #[arg(long, default_value = "healthy")]
    pub server_label: String,
}

impl AppArgs {
    /// The arguments that make clap parse back exactly this value.
    #[must_use]
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |name: &str, value: String| {
            args.push(format!("--{name}").into());
            args.push(value.into());
        };
        push("mode", self.mode.name());
        push("sink", self.sink.name());
        push("spool", self.spool.display().to_string());
        push("endpoint", self.endpoint.clone());
        push("ledger", self.ledger.display().to_string());
        push("id-prefix", self.id_prefix.clone());
        push("seed", self.seed.to_string());
        push("events", self.events.to_string());
        push("rate", self.rate.to_string());
        push("checkpoint-every", self.checkpoint_every.to_string());
        push("poison-every", self.poison_every.to_string());
        push("session-every", self.session_every.to_string());
        push("chunks", self.chunks.to_string());
        push("typing-ms", self.typing_ms.to_string());
        push("padding", self.padding.to_string());
        push("batch-size", self.batch_size.to_string());
        push("batch-delay-ms", self.batch_delay_ms.to_string());
        push("queue-events", self.queue_events.to_string());
        push("queue-bytes", self.queue_bytes.to_string());
        if let Some(bytes) = self.spool_bytes {
            push("spool-bytes", bytes.to_string());
        }
        push("drop", self.drop.name());
        push("request-timeout-ms", self.request_timeout_ms.to_string());
        push("breaker-failures", self.breaker_failures.to_string());
        push("breaker-cooldown-ms", self.breaker_cooldown_ms.to_string());
        push("max-backoff-ms", self.max_backoff_ms.to_string());
        push("flush-ms", self.flush_ms.to_string());
        push("shutdown-ms", self.shutdown_ms.to_string());
        if let Some(max_send) = self.max_send {
            push("max-send", max_send.to_string());
        }
        push(
            "units",
            self.units
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
        push("rounds", self.rounds.to_string());
        push("server-label", self.server_label.clone());
        if self.probe_requests {
            args.push("--probe-requests".into());
        }
        args
    }

    /// Defaults for `mode` with the four required paths and names.
    #[must_use]
    pub fn new(
        mode: Mode,
        spool: PathBuf,
        endpoint: String,
        ledger: PathBuf,
        id_prefix: String,
    ) -> Self {
        Self {
            mode,
            sink: SinkArg::Ingest,
            spool,
            endpoint,
            ledger,
            id_prefix,
            seed: 0,
            events: 100,
            rate: 0,
            checkpoint_every: 0,
            poison_every: 0,
            session_every: 0,
            chunks: 5,
            typing_ms: 200,
            probe_requests: false,
            padding: 0,
            batch_size: 50,
            batch_delay_ms: 200,
            queue_events: 8192,
            queue_bytes: 16 << 20,
            spool_bytes: None,
            drop: DropArg::Newest,
            request_timeout_ms: 2000,
            breaker_failures: 5,
            breaker_cooldown_ms: 300,
            max_backoff_ms: 1000,
            flush_ms: 30_000,
            shutdown_ms: 5_000,
            max_send: None,
            units: vec![100, 100_000],
            rounds: 3,
            server_label: "healthy".to_owned(),
        }
    }
}

/// Units of work per interleaved chunk of the overhead workload.
const OVERHEAD_CHUNK: u64 = 500;

/// The command-line spelling of a value-enum value.
trait ValueEnumName {
    fn name(&self) -> String;
}

impl<T: ValueEnum> ValueEnumName for T {
    fn name(&self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// Runs the app; the process exit code is 0 on a clean run.
///
/// # Errors
/// When the ledger cannot be written or the reporter cannot start (a harness problem: telemetry failures
/// themselves are never errors of the app).
pub fn run(args: &AppArgs) -> anyhow::Result<()> {
    let mut ledger = LedgerWriter::open(&args.ledger)?;
    ledger.write(&LedgerLine::Start {
        pid: std::process::id(),
        mode: args.mode.name(),
        at_ms: now_ms(),
    })?;
    match args.mode {
        Mode::CliBaseline => return cli_baseline(args, &mut ledger),
        Mode::Otel | Mode::OtelSdk => return crate::otel_app::run(args, &mut ledger),
        _ => {}
    }
    let reporter = Reporter::start(config(args)?).context("starting the reporter")?;
    let mut app = App {
        args,
        reporter,
        ledger,
        histogram: Histogram::new_with_bounds(1, 60_000_000_000, 3)
            .context("creating the histogram")?,
        counter: 0,
        rng: fastrand::Rng::with_seed(args.seed),
        breaker_opened: 0,
        agent: ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into(),
    };
    let baseline_rss_kib = Memory::of_self().map(|memory| memory.rss_kib);
    let overhead = match args.mode {
        Mode::Service => {
            app.service()?;
            Vec::new()
        }
        Mode::Chat => {
            app.chat()?;
            Vec::new()
        }
        Mode::Cli => {
            app.cli()?;
            Vec::new()
        }
        Mode::Drain | Mode::CliBaseline | Mode::Otel | Mode::OtelSdk => Vec::new(),
        Mode::Overhead => app.overhead()?,
    };
    app.finish(baseline_rss_kib, overhead)
}

/// The reporter's configuration for `args` (its sink, spool, limits and policies).
///
/// # Errors
/// When a limit is zero or the configuration does not build.
pub(crate) fn config(args: &AppArgs) -> anyhow::Result<Config> {
    let nonzero = |value: usize, name: &str| {
        NonZeroUsize::new(value).with_context(|| format!("{name} must be > 0"))
    };
    let flush_mode = match args.mode {
        Mode::Chat => FlushMode::IdleOnly {
            high_water: nonzero(1_000_000, "high water")?,
            max_delay: Duration::from_secs(600),
        },
        _ => FlushMode::Background,
    };
    let drop_policy = match args.drop {
        DropArg::Newest => DropPolicy::DropNewest,
        DropArg::Oldest => DropPolicy::DropOldest,
        DropArg::Sample => DropPolicy::Sample {
            keep_one_in: NonZeroU32::new(4).context("four")?,
        },
    };
    let breaker = BreakerPolicy {
        failure_threshold: NonZeroU32::new(args.breaker_failures.max(1))
            .context("breaker failures")?,
        cooldown: Duration::from_millis(args.breaker_cooldown_ms.max(1)),
        max_cooldown: Duration::from_millis(args.breaker_cooldown_ms.max(1) * 4),
        ..BreakerPolicy::default()
    };
    let retry = RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(args.max_backoff_ms.max(20)),
        max_retry_after: Duration::from_secs(2),
    };
    let mut spool = SpoolConfig::new(&args.spool);
    spool.sync = SyncPolicy::GroupCommit(Duration::from_millis(20));
    if let Some(bytes) = args.spool_bytes {
        spool.max_total_bytes = bytes;
        spool.max_segment_bytes = (bytes / 8).max(16 << 10);
    }
    let base = args.endpoint.trim_end_matches('/');
    let builder = match args.sink {
        // The default (ingest) sink posts to its endpoint as written: the server's `/ingest` route.
        SinkArg::Ingest => Config::builder(format!("{base}/ingest")),
        SinkArg::Posthog => Config::builder(base).sink(PostHog::new("phc_scenarios")),
        SinkArg::OtlpLogs => Config::builder(base).sink(OtlpLogs::new().service_name("scenarios")),
        SinkArg::OtlpTraces => {
            Config::builder(base).sink(OtlpTraces::new().service_name("scenarios"))
        }
    };
    builder
        .spool(spool)
        .distinct_id(format!("scenarios-{}", args.id_prefix))
        .batch_size(nonzero(args.batch_size, "batch size")?)
        .batch_delay(Duration::from_millis(args.batch_delay_ms.max(1)))
        .flush_mode(flush_mode)
        .queue_limits(QueueLimits {
            max_events: nonzero(args.queue_events, "queue events")?,
            max_bytes: nonzero(args.queue_bytes, "queue bytes")?,
        })
        .drop_policy(drop_policy)
        .retry(retry)
        .breaker(breaker)
        .request_timeout(Duration::from_millis(args.request_timeout_ms.max(1)))
        .build()
        .context("building the config")
}

struct App<'a> {
    args: &'a AppArgs,
    reporter: Reporter,
    ledger: LedgerWriter,
    histogram: Histogram<u64>,
    counter: u64,
    rng: fastrand::Rng,
    breaker_opened: u64,
    agent: ureq::Agent,
}

impl App<'_> {
    /// Ledgers, then records, one app event; times `record()`.
    fn record(
        &mut self,
        name: &'static str,
        extra: &[(&'static str, Value)],
    ) -> anyhow::Result<()> {
        self.counter += 1;
        let id = format!("{}-{}", self.args.id_prefix, self.counter);
        let poison =
            self.args.poison_every > 0 && self.counter.is_multiple_of(self.args.poison_every);
        self.ledger.write(&LedgerLine::Record {
            id: id.clone(),
            poison,
        })?;
        let mut event = Event::new(name)
            .with(LEDGER_ID_PROPERTY, id)
            .with("n", self.counter);
        for (key, value) in extra {
            event = event.with(*key, value.clone());
        }
        if poison {
            event = event.with(POISON_PROPERTY, true);
        }
        if self.args.padding > 0 {
            event = event.with("padding", "x".repeat(self.args.padding));
        }
        let started = Instant::now();
        self.reporter.record(event);
        self.observe(started.elapsed());
        Ok(())
    }

    fn observe(&mut self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        let _ = self.histogram.record(nanos.min(self.histogram.high()));
    }

    fn checkpoint(&mut self) -> anyhow::Result<()> {
        // A failed checkpoint covers nothing, so nothing is ledgered; the events stay uncheckpointed.
        if self.reporter.checkpoint().is_ok() {
            self.ledger.checkpoint()?;
        }
        Ok(())
    }

    fn watch_breaker(&mut self) {
        if self.reporter.stats().breaker != BreakerState::Closed {
            self.breaker_opened += 1;
        }
    }

    /// Sleeps until the `index`-th event is due at the configured rate.
    fn pace(&mut self, started: Instant, index: u64) {
        if self.args.rate == 0 {
            return;
        }
        let due = started + Duration::from_secs_f64(index as f64 / self.args.rate as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }

    fn service(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut session: Option<Session> = None;
        let mut last_watch = Instant::now();
        for index in 0..self.args.events {
            self.pace(started, index);
            if self.args.session_every > 0 && index.is_multiple_of(self.args.session_every) {
                self.end_session(&mut session)?;
                let id = format!("{}-s{index}", self.args.id_prefix);
                self.ledger.write(&LedgerLine::Record {
                    id: format!("session_started:{id}"),
                    poison: false,
                })?;
                session = Some(self.reporter.session_started(id));
            }
            let tool = ["read_file", "search", "edit", "run_tests"][self.rng.usize(..4)];
            let duration_ms = self.rng.u64(1..500);
            self.record(
                "tool_call",
                &[
                    ("tool", Value::from(tool)),
                    ("duration_ms", Value::from(duration_ms)),
                ],
            )?;
            if self.args.checkpoint_every > 0
                && self.counter.is_multiple_of(self.args.checkpoint_every)
            {
                self.checkpoint()?;
            }
            if last_watch.elapsed() >= Duration::from_millis(50) {
                self.watch_breaker();
                last_watch = Instant::now();
            }
        }
        self.end_session(&mut session)?;
        Ok(())
    }

    fn end_session(&mut self, session: &mut Option<Session>) -> anyhow::Result<()> {
        if let Some(session) = session.take() {
            self.ledger.write(&LedgerLine::Record {
                id: format!("session_ended:{}", session.id()),
                poison: false,
            })?;
            self.reporter.session_ended(session);
        }
        Ok(())
    }

    fn chat(&mut self) -> anyhow::Result<()> {
        let messages = (self.args.events / self.args.chunks.max(1)).max(1);
        for message in 0..messages {
            let requests = self.probe();
            self.ledger.write(&LedgerLine::Phase {
                phase: Phase::Busy,
                at_ms: now_ms(),
                ingest_requests: requests,
            })?;
            // Streaming a response: a few events with small gaps, as tokens and tool calls arrive.
            for chunk in 0..self.args.chunks {
                self.record(
                    "chat_chunk",
                    &[
                        ("message", Value::from(message)),
                        ("chunk", Value::from(chunk)),
                    ],
                )?;
                std::thread::sleep(Duration::from_millis(self.rng.u64(1..4)));
            }
            let requests = self.probe();
            self.ledger.write(&LedgerLine::Phase {
                phase: Phase::Idle,
                at_ms: now_ms(),
                ingest_requests: requests,
            })?;
            // At the prompt: make the message durable, tell the library the user is idle, then "type".
            self.checkpoint()?;
            self.reporter.idle();
            let typing_until = Instant::now() + Duration::from_millis(self.args.typing_ms);
            while Instant::now() < typing_until && self.reporter.stats().pending.total() > 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// The fake server's request counter of the sink's route (chat mode with `--probe-requests`).
    fn probe(&self) -> Option<u64> {
        if !self.args.probe_requests {
            return None;
        }
        let url = format!("{}/_fake/stats", self.args.endpoint);
        let body = self
            .agent
            .get(&url)
            .call()
            .ok()?
            .body_mut()
            .read_to_string()
            .ok()?;
        let stats: fake_ingest::Stats = serde_json::from_str(&body).ok()?;
        Some(
            stats
                .routes
                .get(self.args.sink.route())
                .map_or(stats.requests, |route| route.requests),
        )
    }

    fn cli(&mut self) -> anyhow::Result<()> {
        let count = self.rng.u64(1..=self.args.events.clamp(1, 3));
        for _ in 0..count {
            self.record("cli_invocation", &[("command", Value::from("deploy"))])?;
        }
        Ok(())
    }

    fn overhead(&mut self) -> anyhow::Result<Vec<OverheadSample>> {
        let iterations = calibrate_work(Duration::from_micros(20));
        let mut samples = Vec::new();
        for &units in &self.args.units {
            let mut best_bare = f64::INFINITY;
            let mut best_telemetry = f64::INFINITY;
            // A small size gets more rounds (at least ~2000 units per arm in all), so one stall cannot decide it.
            let rounds = u64::from(self.args.rounds).max((2_000 / units.max(1)).min(200));
            for round in 0..rounds {
                // The arms are interleaved in chunks (bare, telemetry, telemetry, bare, ...), so a busy moment on
                // the machine hits both alike; each round's time per arm is the sum of its chunks.
                let mut elapsed = [Duration::ZERO; 2];
                let mut done = 0;
                let mut chunk_index = round;
                while done < units {
                    let chunk = (units - done).min(OVERHEAD_CHUNK);
                    let order = if chunk_index % 2 == 0 {
                        [false, true]
                    } else {
                        [true, false]
                    };
                    for with_telemetry in order {
                        elapsed[usize::from(with_telemetry)] +=
                            self.work_chunk(iterations, done, chunk, with_telemetry);
                    }
                    done += chunk;
                    chunk_index += 1;
                }
                let per_unit = |time: Duration| time.as_nanos() as f64 / units.max(1) as f64;
                best_bare = best_bare.min(per_unit(elapsed[0]));
                best_telemetry = best_telemetry.min(per_unit(elapsed[1]));
            }
            samples.push(OverheadSample {
                server: self.args.server_label.clone(),
                units,
                bare_ns_per_unit: best_bare,
                telemetry_ns_per_unit: best_telemetry,
            });
        }
        Ok(samples)
    }

    /// Runs `count` units of work starting at unit `first`, recording one event per unit when `with_telemetry`.
    fn work_chunk(
        &self,
        iterations: u64,
        first: u64,
        count: u64,
        with_telemetry: bool,
    ) -> Duration {
        let started = Instant::now();
        let mut sink = 0_u64;
        for unit in first..first + count {
            sink = sink.wrapping_add(work(iterations, unit));
            if with_telemetry {
                self.reporter.record(
                    Event::new("work_unit")
                        .with("unit", unit)
                        .with("overhead", true),
                );
            }
        }
        std::hint::black_box(sink);
        started.elapsed()
    }

    fn finish(
        mut self,
        baseline_rss_kib: Option<u64>,
        overhead: Vec<OverheadSample>,
    ) -> anyhow::Result<()> {
        if self.args.flush_ms > 0 {
            let _outcome = self
                .reporter
                .flush(Duration::from_millis(self.args.flush_ms));
        }
        self.watch_breaker();
        self.ledger.write(&LedgerLine::ShutdownBegin {
            at_ms: now_ms(),
            deadline_ms: self.args.shutdown_ms,
        })?;
        let began = Instant::now();
        let deadline = Duration::from_millis(self.args.shutdown_ms);
        let _outcome = match self.args.max_send {
            Some(max_send) => self.reporter.shutdown_bounded(deadline, max_send),
            None => self.reporter.shutdown(deadline),
        };
        let took = began.elapsed();
        let stats = self.reporter.stats();
        let record_ns = self
            .histogram
            .iter_recorded()
            .map(|value| (value.value_iterated_to(), value.count_at_value()))
            .collect();
        let report = ExitReport {
            at_ms: now_ms(),
            stats: app_stats_of(&stats, self.breaker_opened),
            shutdown_ms: saturating_ms(took),
            shutdown_us: Some(saturating_us(took)),
            store_overrun_us: Some(saturating_us(stats.shutdown_store_overrun)),
            record_ns,
            peak_rss_kib: Memory::of_self().map(|memory| memory.peak_rss_kib),
            baseline_rss_kib,
            overhead,
        };
        self.ledger.write(&LedgerLine::Exit(Box::new(report)))
    }
}

/// `cli-baseline` mode: the shape of a CLI invocation's ledger, with a plain deadline wait where `shutdown` would be.
fn cli_baseline(args: &AppArgs, ledger: &mut LedgerWriter) -> anyhow::Result<()> {
    ledger.write(&LedgerLine::ShutdownBegin {
        at_ms: now_ms(),
        deadline_ms: args.shutdown_ms,
    })?;
    let began = Instant::now();
    let deadline = began + Duration::from_millis(args.shutdown_ms);
    // The reply that never comes: the sender stays alive, so only the deadline ends the wait.
    let (_never_replies, reply) = std::sync::mpsc::channel::<()>();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() || reply.recv_timeout(left).is_ok() {
            break;
        }
    }
    let took = began.elapsed();
    ledger.write(&LedgerLine::Exit(Box::new(ExitReport {
        at_ms: now_ms(),
        shutdown_ms: saturating_ms(took),
        shutdown_us: Some(saturating_us(took)),
        peak_rss_kib: Memory::of_self().map(|memory| memory.peak_rss_kib),
        ..ExitReport::default()
    })))
}

pub(crate) fn saturating_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn saturating_us(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Copies flush-core's counters into the ledger's shape.
pub(crate) fn app_stats_of(stats: &Stats, breaker_opened: u64) -> AppStats {
    AppStats {
        recorded: stats.recorded,
        recovered: stats.recovered,
        acknowledged: stats.acknowledged,
        dropped: stats
            .dropped
            .by_reason()
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(reason, count)| (reason.to_owned(), count))
            .collect(),
        dead_lettered: stats.dead_lettered,
        settled_elsewhere: stats.settled_elsewhere,
        pending: stats.pending.total(),
        breaker_opened: Some(breaker_opened),
    }
}

/// One unit of CPU-bound work: `iterations` rounds of an integer mix.
fn work(iterations: u64, seed: u64) -> u64 {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..iterations {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
    }
    std::hint::black_box(state)
}

/// How many iterations make one unit of work take about `target` in this build: the fastest of five trials of
/// about 20 ms each, so a busy moment during calibration does not shrink the unit.
fn calibrate_work(target: Duration) -> u64 {
    let probe = 1_000_u64;
    let mut rounds = 1_u64;
    // Grow the trial until it takes about 20 ms, so the clock's resolution does not matter.
    loop {
        let started = Instant::now();
        for unit in 0..rounds {
            std::hint::black_box(work(probe, unit));
        }
        if started.elapsed() >= Duration::from_millis(20) || rounds >= 1 << 20 {
            break;
        }
        rounds *= 2;
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        for unit in 0..rounds {
            std::hint::black_box(work(probe, unit));
        }
        best = best.min(started.elapsed().as_secs_f64() / (rounds * probe) as f64);
    }
    ((target.as_secs_f64() / best.max(1e-12)) as u64).clamp(10, 10_000_000)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: AppArgs,
    }

    #[test]
    fn the_command_line_the_harness_builds_parses_back_to_the_same_args() {
        let mut args = AppArgs::new(
            Mode::Chat,
            "/tmp/spool".into(),
            "http://127.0.0.1:1".into(),
            "/tmp/ledger".into(),
            "run-1".into(),
        );
        args.spool_bytes = Some(1 << 20);
        args.max_send = Some(25);
        args.probe_requests = true;
        args.drop = DropArg::Oldest;
        args.units = vec![10, 10_000];

        let mut argv: Vec<OsString> = vec!["app".into()];
        argv.extend(args.to_args());
        let parsed = Wrapper::try_parse_from(argv).unwrap();

        assert_eq!(parsed.args, args);
    }

    #[test]
    fn calibrated_work_is_at_least_the_minimum() {
        assert!(calibrate_work(Duration::from_nanos(1)) >= 10);
    }
}
