//! `bench-report`: turns several full benchmark runs into the tables of `docs/BENCHMARKS.md` (median and spread of
//! every figure, and the ratios of the targets, each computed within one run) and a small SVG chart of the
//! ratios.
//!
//! Each run directory holds what one `cargo bench -p benches` left: `criterion/` (a copy of `target/criterion`)
//! and `bench.log` (its standard output, with the `PERCENTILES`, `STATE`, `MEMORY`, `EVENT` and `LOAD` lines).
//!
//! ```text
//! cargo run -p benches --release --bin bench-report -- [--svg docs/benchmarks-ratios.svg] \
//!     [--scaling-svg docs/benchmarks-scaling.svg] RUN_DIR...
//! ```

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use benches::scaling_chart::{self, Panel, Series};
use serde_json::Value;

/// One benchmark's result in one run.
#[derive(Debug, Clone)]
struct Measurement {
    /// Nanoseconds per iteration (criterion's slope estimate, or its mean).
    nanos_per_iteration: f64,
    /// Elements (events) per iteration, if the throughput is in elements.
    elements: Option<f64>,
    /// Bytes per iteration, if the throughput is in bytes.
    bytes: Option<f64>,
}

impl Measurement {
    /// Events per second, or bytes per second for byte throughputs.
    fn per_second(&self) -> f64 {
        self.elements.or(self.bytes).unwrap_or(1.0) * 1e9 / self.nanos_per_iteration
    }

    /// Nanoseconds per element (per byte for byte throughputs).
    fn nanos_per_element(&self) -> f64 {
        self.nanos_per_iteration / self.elements.or(self.bytes).unwrap_or(1.0)
    }
}

/// Everything read from one run.
#[derive(Debug, Default)]
struct Run {
    /// Full benchmark id (`group/function/parameter`) to its measurement.
    benchmarks: BTreeMap<String, Measurement>,
    /// `PERCENTILES` lines: name to (field to value).
    percentiles: BTreeMap<String, BTreeMap<String, f64>>,
    /// `MEMORY` lines: name to (field to value).
    memory: BTreeMap<String, BTreeMap<String, f64>>,
    /// `LOAD` lines, in order.
    loads: Vec<String>,
    /// The sample event's size on the wire, from the `EVENT` line.
    event_bytes: Option<f64>,
}

/// Whether a ratio must be at least or at most its target.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    /// ours ÷ reference in time per event, lower is better.
    TimeAtMost,
    /// ours ÷ reference in events per second, higher is better.
    ThroughputAtLeast,
}

/// A ratio for the chart: label, median ratio, target, goal.
type ChartRow = (String, f64, f64, Goal);

/// One target, as a ratio between two benchmarks of the same run (ids matched by prefix).
struct Target {
    label: &'static str,
    ours: &'static str,
    reference: &'static str,
    goal: Goal,
    target: f64,
}

const TARGETS: &[Target] = &[
    Target {
        label: "record() idle ÷ crossbeam try_send",
        ours: "record/ours/idle",
        reference: "record/floor/crossbeam_channel",
        goal: Goal::TimeAtMost,
        target: 3.0,
    },
    Target {
        label: "record() idle ÷ std sync_channel try_send",
        ours: "record/ours/idle",
        reference: "record/floor/std_sync_channel",
        goal: Goal::TimeAtMost,
        target: 3.0,
    },
    Target {
        label: "record() 1M backlog ÷ crossbeam try_send",
        ours: "record/ours/backlog_1m",
        reference: "record/floor/crossbeam_channel",
        goal: Goal::TimeAtMost,
        target: 3.0,
    },
    Target {
        label: "record() server slow 500 ms ÷ crossbeam try_send",
        ours: "record/ours/server_slow_500ms",
        reference: "record/floor/crossbeam_channel",
        goal: Goal::TimeAtMost,
        target: 3.0,
    },
    Target {
        label: "record() server hanging ÷ crossbeam try_send",
        ours: "record/ours/server_hanging",
        reference: "record/floor/crossbeam_channel",
        goal: Goal::TimeAtMost,
        target: 3.0,
    },
    Target {
        label: "spool never, write-behind, batch 1 ÷ buffered framed file, batch 1",
        ours: "spool_append/ours_spool_write_behind/never/1",
        reference: "spool_append/floor_framed/no_fsync/1",
        goal: Goal::ThroughputAtLeast,
        target: 0.5,
    },
    Target {
        label: "spool never, write-behind, batch 50 ÷ buffered framed file, batch 50",
        ours: "spool_append/ours_spool_write_behind/never/50",
        reference: "spool_append/floor_framed/no_fsync/50",
        goal: Goal::ThroughputAtLeast,
        target: 0.5,
    },
    Target {
        label: "spool never, write-behind, batch 1000 ÷ buffered framed file, batch 1000",
        ours: "spool_append/ours_spool_write_behind/never/1000",
        reference: "spool_append/floor_framed/no_fsync/1000",
        goal: Goal::ThroughputAtLeast,
        target: 0.5,
    },
    Target {
        label: "like for like: spool never, batch 1 ÷ framed file written per batch",
        ours: "spool_append/ours_spool/never/1",
        reference: "spool_append/floor_framed/write_per_batch/1",
        goal: Goal::ThroughputAtLeast,
        target: 0.5,
    },
    Target {
        label: "like for like: spool never, batch 50 ÷ framed file written per batch",
        ours: "spool_append/ours_spool/never/50",
        reference: "spool_append/floor_framed/write_per_batch/50",
        goal: Goal::ThroughputAtLeast,
        target: 0.5,
    },
    Target {
        label: "like for like: spool never, batch 1000 ÷ framed file written per batch",
        ours: "spool_append/ours_spool/never/1000",
        reference: "spool_append/floor_framed/write_per_batch/1000",
        goal: Goal::ThroughputAtLeast,
        target: 0.5,
    },
    Target {
        label: "spool never, batch 50 ÷ JSON file per event",
        ours: "spool_append/ours_spool/never/50",
        reference: "spool_append/peer_json_files/no_fsync/",
        goal: Goal::ThroughputAtLeast,
        target: 100.0,
    },
    Target {
        label: "spool never, batch 1 ÷ JSON file per event",
        ours: "spool_append/ours_spool/never/1",
        reference: "spool_append/peer_json_files/no_fsync/",
        goal: Goal::ThroughputAtLeast,
        target: 100.0,
    },
    Target {
        label: "spool never, batch 50 ÷ SQLite WAL autocommit",
        ours: "spool_append/ours_spool/never/50",
        reference: "spool_append/peer_sqlite_wal/autocommit/",
        goal: Goal::ThroughputAtLeast,
        target: 10.0,
    },
    Target {
        label: "spool never, batch 1 ÷ SQLite WAL autocommit",
        ours: "spool_append/ours_spool/never/1",
        reference: "spool_append/peer_sqlite_wal/autocommit/",
        goal: Goal::ThroughputAtLeast,
        target: 10.0,
    },
    Target {
        label: "spool never, batch 50 ÷ SQLite WAL tx of 50",
        ours: "spool_append/ours_spool/never/50",
        reference: "spool_append/peer_sqlite_wal/tx/50",
        goal: Goal::ThroughputAtLeast,
        target: 2.0,
    },
    Target {
        label: "spool fsync per 100 events ÷ fsync per event",
        ours: "spool_append/ours_spool/always/100",
        reference: "spool_append/ours_spool/always/1",
        goal: Goal::ThroughputAtLeast,
        target: 30.0,
    },
    Target {
        label: "spool cycle per batch, 10 M backlog ÷ 1 000 backlog",
        ours: "backlog/ours_spool/cycle/10000000",
        reference: "backlog/ours_spool/cycle/1000",
        goal: Goal::TimeAtMost,
        target: 1.2,
    },
    Target {
        label: "read + durable ack ÷ end to end (batches of 50)",
        ours: "spool_read/ours_spool/read_ack/group_commit_200ms/",
        reference: "end_to_end/ours/plain/50",
        goal: Goal::ThroughputAtLeast,
        target: 1.0,
    },
    Target {
        label: "end to end, batches of 50 ÷ POST loop",
        ours: "end_to_end/ours/plain/50",
        reference: "end_to_end/floor_post_loop/plain/50",
        goal: Goal::ThroughputAtLeast,
        target: 0.5,
    },
    Target {
        label: "end to end, batches of 50, gzip ÷ POST loop, gzip",
        ours: "end_to_end/ours/gzip/50",
        reference: "end_to_end/floor_post_loop/gzip/50",
        goal: Goal::ThroughputAtLeast,
        target: 0.5,
    },
    Target {
        label: "end to end through the PostHog sink ÷ POST loop with its encoding",
        ours: "end_to_end/ours_sink/posthog/plain/50",
        reference: "end_to_end/floor_sink_post/posthog/plain/50",
        goal: Goal::ThroughputAtLeast,
        target: 0.5,
    },
    Target {
        label: "end to end through the OTLP logs sink ÷ POST loop with its encoding",
        ours: "end_to_end/ours_sink/otlp_logs/plain/50",
        reference: "end_to_end/floor_sink_post/otlp_logs/plain/50",
        goal: Goal::ThroughputAtLeast,
        target: 0.5,
    },
    Target {
        label: "end to end through the PostHog sink ÷ posthog-rs (in memory)",
        ours: "end_to_end/ours_sink/posthog/plain/50",
        reference: "end_to_end/peer_posthog_rs/plain/50",
        goal: Goal::ThroughputAtLeast,
        target: 0.8,
    },
    Target {
        label: "end to end through the OTLP logs sink ÷ OpenTelemetry batch log processor (in memory)",
        ours: "end_to_end/ours_sink/otlp_logs/plain/50",
        reference: "end_to_end/peer_otel_batch_logs/plain/50",
        goal: Goal::ThroughputAtLeast,
        target: 0.8,
    },
    Target {
        label: "record() idle ÷ posthog-rs capture",
        ours: "record/ours/idle",
        reference: "record/peer/posthog_rs_capture",
        goal: Goal::TimeAtMost,
        target: 1.0,
    },
    Target {
        label: "record() idle ÷ OpenTelemetry SDK emit (batch log processor)",
        ours: "record/ours/idle",
        reference: "record/peer/otel_batch_logs_emit",
        goal: Goal::TimeAtMost,
        target: 1.0,
    },
    Target {
        label: "fake-ingest 1-event requests ÷ bare axum",
        ours: "fake_ingest/ours/1",
        reference: "fake_ingest/floor_bare_axum/1",
        goal: Goal::ThroughputAtLeast,
        target: 0.8,
    },
    Target {
        label: "fake-ingest 50-event requests ÷ bare axum",
        ours: "fake_ingest/ours/50",
        reference: "fake_ingest/floor_bare_axum/50",
        goal: Goal::ThroughputAtLeast,
        target: 0.8,
    },
];

/// A target in time per call against the fastest of several peers measured in the same run (the peers missing from
/// a run are left out of it). Each side is the mean of its `PERCENTILES` line when the run has one (every call timed
/// alone, the timer's own cost included on both sides), else criterion's estimate: where settling a pipeline between
/// chunks takes long (the SDK's `force_flush` against a server that is down), criterion runs only a few short chunks
/// of cold calls.
struct FastestPeerTarget {
    label: &'static str,
    ours: &'static str,
    peers: &'static [&'static str],
    target: f64,
}

/// The peers of one `info!` in each state: the SDK's batch log processor (through the bridge), and
/// `tracing-appender`'s file writer, which has no server (one figure for every state). With a backlog, the SDK's
/// `server_down` figure: it never holds more than its 2,048 records (see the `otel` group's doc).
const INFO_PEERS_HEALTHY: &[&str] = &[
    "otel/info/sdk_batch_log_processor/healthy",
    "otel/info/tracing_appender_file/healthy",
];
const INFO_PEERS_DOWN: &[&str] = &[
    "otel/info/sdk_batch_log_processor/server_down",
    "otel/info/tracing_appender_file/healthy",
];
/// The peer of span end in each state: the SDK's batch span processor (its `server_down` figure with a backlog).
const SPAN_PEERS_HEALTHY: &[&str] = &["otel/span_end/sdk_batch/healthy"];
const SPAN_PEERS_DOWN: &[&str] = &["otel/span_end/sdk_batch/server_down"];

/// The `otel` group's targets: ours within 1.5× of the fastest peer in every state.
const OTEL_TARGETS: &[FastestPeerTarget] = &[
    FastestPeerTarget {
        label: "info! through TracingLayer, healthy ÷ fastest peer",
        ours: "otel/info/ours_layer/healthy",
        peers: INFO_PEERS_HEALTHY,
        target: 1.5,
    },
    FastestPeerTarget {
        label: "info! through TracingLayer, server down ÷ fastest peer",
        ours: "otel/info/ours_layer/server_down",
        peers: INFO_PEERS_DOWN,
        target: 1.5,
    },
    FastestPeerTarget {
        label: "info! through TracingLayer, 1M backlog ÷ fastest peer",
        ours: "otel/info/ours_layer/backlog_1m",
        peers: INFO_PEERS_DOWN,
        target: 1.5,
    },
    FastestPeerTarget {
        label: "info! through the bridge and OtelLogProcessor, healthy ÷ fastest peer",
        ours: "otel/info/ours_log_processor/healthy",
        peers: INFO_PEERS_HEALTHY,
        target: 1.5,
    },
    FastestPeerTarget {
        label: "info! through the bridge and OtelLogProcessor, server down ÷ fastest peer",
        ours: "otel/info/ours_log_processor/server_down",
        peers: INFO_PEERS_DOWN,
        target: 1.5,
    },
    FastestPeerTarget {
        label: "info! through the bridge and OtelLogProcessor, 1M backlog ÷ fastest peer",
        ours: "otel/info/ours_log_processor/backlog_1m",
        peers: INFO_PEERS_DOWN,
        target: 1.5,
    },
    FastestPeerTarget {
        label: "span end with OtelSpanProcessor, healthy ÷ SDK batch span processor",
        ours: "otel/span_end/ours/healthy",
        peers: SPAN_PEERS_HEALTHY,
        target: 1.5,
    },
    FastestPeerTarget {
        label: "span end with OtelSpanProcessor, server down ÷ SDK batch span processor",
        ours: "otel/span_end/ours/server_down",
        peers: SPAN_PEERS_DOWN,
        target: 1.5,
    },
    FastestPeerTarget {
        label: "span end with OtelSpanProcessor, 1M backlog ÷ SDK batch span processor (server down)",
        ours: "otel/span_end/ours/backlog_1m",
        peers: SPAN_PEERS_DOWN,
        target: 1.5,
    },
];

/// One row of the targets table: what is compared, and the ratio in each run that has both sides.
struct TargetRow {
    label: &'static str,
    ours: &'static str,
    reference: String,
    goal: Goal,
    target: f64,
    ratios: Vec<f64>,
}

impl TargetRow {
    fn of(target: &Target, runs: &[Run]) -> Self {
        let ratios = runs
            .iter()
            .filter_map(|run| {
                let ours = find(run, target.ours)?;
                let reference = find(run, target.reference)?;
                Some(match target.goal {
                    Goal::TimeAtMost => ours.nanos_per_element() / reference.nanos_per_element(),
                    Goal::ThroughputAtLeast => ours.per_second() / reference.per_second(),
                })
            })
            .collect();
        Self {
            label: target.label,
            ours: target.ours,
            reference: format!("`{}`", target.reference),
            goal: target.goal,
            target: target.target,
            ratios,
        }
    }

    fn of_fastest(target: &FastestPeerTarget, runs: &[Run]) -> Self {
        let ratios = runs
            .iter()
            .filter_map(|run| {
                let ours = call_nanos(run, target.ours)?;
                let fastest = target
                    .peers
                    .iter()
                    .filter_map(|peer| call_nanos(run, peer))
                    .min_by(f64::total_cmp)?;
                Some(ours / fastest)
            })
            .collect();
        let peers: Vec<String> = target
            .peers
            .iter()
            .map(|peer| format!("`{peer}`"))
            .collect();
        Self {
            label: target.label,
            ours: target.ours,
            reference: format!("fastest of {}", peers.join(", ")),
            goal: Goal::TimeAtMost,
            target: target.target,
            ratios,
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut svg_path = None;
    let mut scaling_svg_path = None;
    let mut run_dirs = Vec::new();
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        if argument == "--svg" {
            svg_path = Some(PathBuf::from(arguments.next().ok_or("--svg needs a path")?));
        } else if argument == "--scaling-svg" {
            scaling_svg_path = Some(PathBuf::from(
                arguments.next().ok_or("--scaling-svg needs a path")?,
            ));
        } else {
            run_dirs.push(PathBuf::from(argument));
        }
    }
    if run_dirs.is_empty() {
        return Err("usage: bench-report [--svg PATH] [--scaling-svg PATH] RUN_DIR...".into());
    }
    let runs = run_dirs
        .iter()
        .map(|dir| read_run(dir))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = String::new();
    write_loads(&mut out, &run_dirs, &runs)?;
    let ratios = write_targets(&mut out, &runs)?;
    write_percentiles(&mut out, &runs)?;
    write_memory(&mut out, &runs)?;
    for group in [
        "record",
        "spool_append",
        "spool_read",
        "backlog",
        "end_to_end",
        "fake_ingest",
        "otel",
    ] {
        write_group(&mut out, &runs, group)?;
    }
    print!("{out}");
    if let Some(path) = svg_path {
        fs::write(path, svg_chart(&ratios))?;
    }
    if let Some(path) = scaling_svg_path {
        let chart = scaling_chart::svg(&scaling_panels(&runs))
            .ok_or("no backlog or end_to_end results to chart")?;
        fs::write(path, chart)?;
    }
    Ok(())
}

fn read_run(dir: &Path) -> Result<Run, Box<dyn Error>> {
    let mut run = Run::default();
    collect_benchmarks(&dir.join("criterion"), &mut run.benchmarks)?;
    let log = fs::read_to_string(dir.join("bench.log")).unwrap_or_default();
    for line in log.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some(kind @ ("PERCENTILES" | "MEMORY")) => {
                let rest: Vec<&str> = words.collect();
                let (name, fields) = match rest.first() {
                    Some(first) if !first.contains('=') => (first.to_string(), &rest[1..]),
                    _ => ("".to_owned(), &rest[..]),
                };
                let values = fields
                    .iter()
                    .filter_map(|field| field.split_once('='))
                    .filter_map(|(key, value)| Some((key.to_owned(), value.parse().ok()?)))
                    .collect();
                let target = if kind == "MEMORY" {
                    &mut run.memory
                } else {
                    &mut run.percentiles
                };
                target
                    .entry(name)
                    .or_insert_with(BTreeMap::new)
                    .extend::<BTreeMap<String, f64>>(values);
            }
            Some("LOAD") => run.loads.push(words.collect::<Vec<_>>().join(" ")),
            Some("EVENT") => {
                run.event_bytes = words
                    .filter_map(|field| field.strip_prefix("wire_bytes="))
                    .find_map(|value| value.parse().ok());
            }
            _ => {}
        }
    }
    Ok(run)
}

/// Walks a criterion directory for `new/benchmark.json` + `new/estimates.json` pairs.
fn collect_benchmarks(
    dir: &Path,
    into: &mut BTreeMap<String, Measurement>,
) -> Result<(), Box<dyn Error>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "new") {
            let (Ok(benchmark), Ok(estimates)) = (
                fs::read_to_string(path.join("benchmark.json")),
                fs::read_to_string(path.join("estimates.json")),
            ) else {
                continue;
            };
            let benchmark: Value = serde_json::from_str(&benchmark)?;
            let estimates: Value = serde_json::from_str(&estimates)?;
            let nanos = estimates["slope"]["point_estimate"]
                .as_f64()
                .or_else(|| estimates["mean"]["point_estimate"].as_f64())
                .ok_or("no estimate")?;
            let id = benchmark["full_id"]
                .as_str()
                .ok_or("no full_id")?
                .to_owned();
            into.insert(
                id,
                Measurement {
                    nanos_per_iteration: nanos,
                    elements: benchmark["throughput"]["Elements"].as_f64(),
                    bytes: benchmark["throughput"]["Bytes"].as_f64(),
                },
            );
        } else {
            collect_benchmarks(&path, into)?;
        }
    }
    Ok(())
}

/// The median and the extremes of some values.
fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    };
    Some((median, sorted[0], sorted[sorted.len() - 1]))
}

/// A number in a readable unit: `1.23 M`, `456 k`, `7.8`.
fn si(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("{:.2} G", value / 1e9)
    } else if magnitude >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if magnitude >= 1e4 {
        format!("{:.0} k", value / 1e3)
    } else if magnitude >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else if magnitude >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// The mean time of one call of benchmark `id`: from its `PERCENTILES` line if the run has one, else criterion's.
fn call_nanos(run: &Run, id: &str) -> Option<f64> {
    run.percentiles
        .get(id)
        .and_then(|fields| fields.get("mean_ns").copied())
        .or_else(|| find(run, id).map(Measurement::nanos_per_element))
}

fn find<'a>(run: &'a Run, prefix: &str) -> Option<&'a Measurement> {
    run.benchmarks
        .iter()
        .find(|(id, _)| id.starts_with(prefix))
        .map(|(_, measurement)| measurement)
}

fn write_loads(out: &mut String, dirs: &[PathBuf], runs: &[Run]) -> Result<(), Box<dyn Error>> {
    writeln!(
        out,
        "### Runs\n\n| run | load average (1 min) at the start and end of each group |\n|---|---|"
    )?;
    for (dir, run) in dirs.iter().zip(runs) {
        let loads: Vec<String> = run
            .loads
            .iter()
            .map(|load| load.replace("loadavg_1m=", ""))
            .collect();
        writeln!(out, "| `{}` | {} |", dir.display(), loads.join(" · "))?;
    }
    writeln!(out)?;
    Ok(())
}

/// Writes the targets table; returns (label, median ratio, target, goal) for the chart.
fn write_targets(out: &mut String, runs: &[Run]) -> Result<Vec<ChartRow>, Box<dyn Error>> {
    writeln!(
        out,
        "### Targets (ratios within each run; median and range over {} runs)\n",
        runs.len()
    )?;
    writeln!(
        out,
        "| ratio | ours | reference | target | median | range | met? |\n|---|---|---|---|---|---|---|"
    )?;
    let mut chart = Vec::new();
    let rows = TARGETS
        .iter()
        .map(|target| TargetRow::of(target, runs))
        .chain(
            OTEL_TARGETS
                .iter()
                .map(|target| TargetRow::of_fastest(target, runs)),
        );
    for target in rows {
        let ratios = &target.ratios;
        let (bound, comparison) = match target.goal {
            Goal::TimeAtMost => (format!("≤ {}×", target.target), "time"),
            Goal::ThroughputAtLeast => (format!("≥ {}×", target.target), "events/s"),
        };
        match spread(ratios) {
            Some((median, low, high)) => {
                let met = match target.goal {
                    Goal::TimeAtMost => median <= target.target,
                    Goal::ThroughputAtLeast => median >= target.target,
                };
                writeln!(
                    out,
                    "| {} ({comparison}) | `{}` | {} | {bound} | **{}×** | {}–{}× | {} |",
                    target.label,
                    target.ours,
                    target.reference,
                    ratio_text(median),
                    ratio_text(low),
                    ratio_text(high),
                    if met { "met" } else { "**not met**" },
                )?;
                chart.push((target.label.to_owned(), median, target.target, target.goal));
            }
            None => writeln!(
                out,
                "| {} | `{}` | {} | {bound} | – | – | not measured |",
                target.label, target.ours, target.reference
            )?,
        }
    }
    writeln!(out)?;
    Ok(chart)
}

fn ratio_text(ratio: f64) -> String {
    if ratio >= 100.0 {
        format!("{ratio:.0}")
    } else if ratio >= 10.0 {
        format!("{ratio:.1}")
    } else {
        format!("{ratio:.2}")
    }
}

fn write_percentiles(out: &mut String, runs: &[Run]) -> Result<(), Box<dyn Error>> {
    let names: Vec<String> = runs
        .iter()
        .flat_map(|run| run.percentiles.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    writeln!(
        out,
        "### `record()` latency percentiles (each call timed alone, timer included; median and range over runs)\n"
    )?;
    writeln!(
        out,
        "| implementation | mean | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|"
    )?;
    for name in names.iter().filter(|name| !name.is_empty()) {
        let cell = |field: &str| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|run| run.percentiles.get(name)?.get(field).copied())
                .collect();
            spread(&values).map_or_else(
                || "–".to_owned(),
                |(median, low, high)| format!("{median:.0} ns ({low:.0}–{high:.0})"),
            )
        };
        writeln!(
            out,
            "| `{name}` | {} | {} | {} | {} | {} |",
            cell("mean_ns"),
            cell("p50_ns"),
            cell("p99_ns"),
            cell("p999_ns"),
            cell("max_ns")
        )?;
    }
    let overhead: Vec<f64> = runs
        .iter()
        .filter_map(|run| run.percentiles.get("")?.get("timer_overhead_ns").copied())
        .collect();
    if let Some((median, _, _)) = spread(&overhead) {
        writeln!(
            out,
            "\nThe timer's own cost (an empty `Instant::now()`/`elapsed()` pair, median): {median:.0} ns."
        )?;
    }
    writeln!(out)?;
    Ok(())
}

fn write_memory(out: &mut String, runs: &[Run]) -> Result<(), Box<dyn Error>> {
    let values: Vec<f64> = runs
        .iter()
        .filter_map(|run| {
            run.memory
                .get("fake_ingest")?
                .get("per_event_bytes")
                .copied()
        })
        .collect();
    if let Some((median, low, high)) = spread(&values) {
        let events: Vec<f64> = runs
            .iter()
            .filter_map(|run| run.memory.get("fake_ingest")?.get("events").copied())
            .collect();
        let wire: Vec<f64> = runs
            .iter()
            .filter_map(|run| {
                run.memory
                    .get("fake_ingest")?
                    .get("wire_bytes_per_event")
                    .copied()
            })
            .collect();
        writeln!(
            out,
            "### fake-ingest memory per captured event\n\nResident-set growth over {} stored events: **{median:.0} bytes per event** (range {low:.0}–{high:.0}); the event is {} bytes on the wire.\n",
            spread(&events).map_or_else(|| "?".to_owned(), |(median, _, _)| si(median)),
            spread(&wire).map_or_else(|| "?".to_owned(), |(median, _, _)| format!("{median:.0}")),
        )?;
    }
    Ok(())
}

fn write_group(out: &mut String, runs: &[Run], group: &str) -> Result<(), Box<dyn Error>> {
    let prefix = format!("{group}/");
    let ids: Vec<String> = runs
        .iter()
        .flat_map(|run| {
            run.benchmarks
                .keys()
                .filter(|id| id.starts_with(&prefix))
                .cloned()
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let event_bytes = spread(
        &runs
            .iter()
            .filter_map(|run| run.event_bytes)
            .collect::<Vec<_>>(),
    )
    .map(|(median, _, _)| median);
    writeln!(
        out,
        "### Group `{group}` (median of {} runs, range in brackets)\n",
        runs.len()
    )?;
    let with_megabytes = group == "spool_append" && event_bytes.is_some();
    if with_megabytes {
        writeln!(
            out,
            "| benchmark | per second | time per event | payload MB/s |\n|---|---|---|---|"
        )?;
    } else {
        writeln!(
            out,
            "| benchmark | per second | time per event (per byte for byte throughputs) |\n|---|---|---|"
        )?;
    }
    for id in ids {
        let measurements: Vec<&Measurement> = runs
            .iter()
            .filter_map(|run| run.benchmarks.get(&id))
            .collect();
        let rates: Vec<f64> = measurements.iter().map(|m| m.per_second()).collect();
        let times: Vec<f64> = measurements.iter().map(|m| m.nanos_per_element()).collect();
        let unit = if measurements.first().is_some_and(|m| m.bytes.is_some()) {
            "B/s"
        } else {
            "events/s"
        };
        let (Some((rate, rate_low, rate_high)), Some((time, time_low, time_high))) =
            (spread(&rates), spread(&times))
        else {
            continue;
        };
        let short = id.strip_prefix(&prefix).unwrap_or(&id);
        write!(
            out,
            "| `{short}` | {} {unit} ({}–{}) | {}s ({}–{}) |",
            si(rate),
            si(rate_low),
            si(rate_high),
            seconds(time),
            seconds(time_low),
            seconds(time_high),
        )?;
        if let (true, Some(bytes)) = (with_megabytes, event_bytes) {
            write!(out, " {:.0} |", rate * bytes / 1e6)?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    Ok(())
}

/// Nanoseconds in a readable unit (the trailing `s` is added by the caller).
fn seconds(nanos: f64) -> String {
    if nanos >= 1e6 {
        format!("{:.2} m", nanos / 1e6)
    } else if nanos >= 1e3 {
        format!("{:.2} µ", nanos / 1e3)
    } else {
        format!("{nanos:.1} n")
    }
}

/// The backlogs of the `backlog` group and the batch sizes of the `end_to_end` group.
const BACKLOGS: [u32; 4] = [1_000, 100_000, 1_000_000, 10_000_000];
const BATCH_SIZES: [u32; 5] = [1, 10, 50, 500, 1000];

/// The median over the runs of the nanoseconds per event of exactly `id`.
fn median_nanos_per_event(runs: &[Run], id: &str) -> Option<f64> {
    let values: Vec<f64> = runs
        .iter()
        .filter_map(|run| run.benchmarks.get(id))
        .map(Measurement::nanos_per_element)
        .collect();
    spread(&values).map(|(median, _, _)| median)
}

/// One line: the points of `id_of(x)` for each x that was measured.
fn series(runs: &[Run], name: &str, xs: &[u32], id_of: impl Fn(u32) -> String) -> Series {
    Series {
        name: name.to_owned(),
        points: xs
            .iter()
            .filter_map(|&x| Some((f64::from(x), median_nanos_per_event(runs, &id_of(x))?)))
            .collect(),
    }
}

/// How the cost per event grows with the backlog and with the batch size, ours beside the floor.
fn scaling_panels(runs: &[Run]) -> Vec<Panel> {
    vec![
        Panel {
            title: "Spool cost per delivered event as the backlog grows".into(),
            x_label: "events of backlog (batches of 50: append, read, acknowledge)".into(),
            series: vec![series(runs, "ours: spool cycle", &BACKLOGS, |backlog| {
                format!("backlog/ours_spool/cycle/{backlog}")
            })],
        },
        Panel {
            title: "Delivery cost per event as the batch grows".into(),
            x_label: "events per batch (plain JSON, loopback fake-ingest)".into(),
            series: vec![
                series(
                    runs,
                    "ours: record to acknowledged",
                    &BATCH_SIZES,
                    |batch| format!("end_to_end/ours/plain/{batch}"),
                ),
                series(
                    runs,
                    "floor: serialize + POST loop",
                    &BATCH_SIZES,
                    |batch| format!("end_to_end/floor_post_loop/plain/{batch}"),
                ),
            ],
        },
    ]
}

/// A horizontal bar chart of the ratios (log scale), each with its target marked.
fn svg_chart(ratios: &[ChartRow]) -> String {
    let row = 26.0;
    let left = 440.0;
    let width = 880.0;
    let plot = width - left - 60.0;
    let height = 50.0 + row * ratios.len() as f64;
    let (min_log, max_log) = (-2.0_f64, 3.0_f64);
    let x = |value: f64| left + (value.max(1e-2).log10() - min_log) / (max_log - min_log) * plot;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="16" font-size="13">Ratios against the targets (median of runs; log scale; | = target)</text>"#
    );
    for power in -2..=3 {
        let value = 10_f64.powi(power);
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="26" x2="{0:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle" fill="#666">{3}×</text>"##,
            x(value),
            height - 18.0,
            height - 6.0,
            value
        );
    }
    for (index, (label, ratio, target, goal)) in ratios.iter().enumerate() {
        let y = 30.0 + row * index as f64;
        let met = match goal {
            Goal::TimeAtMost => ratio <= target,
            Goal::ThroughputAtLeast => ratio >= target,
        };
        let color = if met { "#3a7d44" } else { "#c0392b" };
        let label = label.replace('&', "&amp;").replace('<', "&lt;");
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
            left - 6.0,
            y + 13.0
        );
        let _ = writeln!(
            svg,
            r#"<rect x="{left:.1}" y="{:.1}" width="{:.1}" height="16" fill="{color}"/>"#,
            y + 2.0,
            (x(*ratio) - left).max(1.0)
        );
        let _ = writeln!(
            svg,
            r#"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="black" stroke-width="2"/>"#,
            x(*target),
            y,
            y + 20.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}×</text>"#,
            x(*ratio).max(x(*target)) + 4.0,
            y + 13.0,
            ratio_text(*ratio)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(nanos: f64) -> Measurement {
        Measurement {
            nanos_per_iteration: nanos,
            elements: Some(1.0),
            bytes: None,
        }
    }

    #[test]
    fn an_otel_ratio_is_ours_over_the_fastest_peer_from_the_percentile_means_else_criterion() {
        let target = FastestPeerTarget {
            label: "t",
            ours: "otel/ours/healthy",
            peers: &["otel/slow_peer/healthy", "otel/fast_peer/healthy"],
            target: 1.5,
        };
        let mut run = Run::default();
        for (id, criterion, mean) in [
            ("otel/ours/healthy", 900.0, 300.0),
            ("otel/slow_peer/healthy", 100.0, 400.0),
            ("otel/fast_peer/healthy", 100.0, 200.0),
        ] {
            run.benchmarks.insert(id.to_owned(), measured(criterion));
            run.percentiles.insert(
                id.to_owned(),
                BTreeMap::from([("mean_ns".to_owned(), mean)]),
            );
        }
        let mut without_percentiles = Run::default();
        without_percentiles
            .benchmarks
            .insert("otel/ours/healthy".to_owned(), measured(450.0));
        without_percentiles
            .benchmarks
            .insert("otel/slow_peer/healthy".to_owned(), measured(150.0));

        let row = TargetRow::of_fastest(&target, &[run, without_percentiles, Run::default()]);

        assert_eq!(row.ratios, [1.5, 3.0], "a run without ours has no ratio");
        assert_eq!(row.goal, Goal::TimeAtMost);
        assert!(row.reference.contains("`otel/fast_peer/healthy`"));
    }
}
