//! outage: the server answers 503 for a while, then is gone altogether (no listener), while the app records at a
//! steady rate; then it comes back. The breaker opens, the app's memory stays under its configured bound (the
//! events go to the spool, which grows), and after recovery everything is delivered.
//!
//! The memory bound: the resident set measured after the reporter started (`baseline`), plus twice the configured
//! in-memory queue bytes, plus a fixed allowance ([`RSS_ALLOWANCE_KIB`]) for buffers, batches and the HTTP client.
//! The app offers many times that bound in event bytes during the outage, so a reporter that kept its backlog in
//! memory would exceed it.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;
use crate::verdict::Promise;

/// The fixed allowance over the queue bound, KiB.
const RSS_ALLOWANCE_KIB: u64 = 8 << 10;

/// The configured in-memory queue bound, bytes.
const QUEUE_BYTES: usize = 1 << 20;

/// The fault plan: 503 with `Retry-After: 1` for the first `failing_ms` milliseconds.
pub(super) fn plan(failing_ms: u64) -> FaultPlanJson {
    FaultPlanJson::rules(vec![
        json!({ "when": { "between_ms": [0, failing_ms] }, "then": { "status": 503, "retry_after_secs": 1 } }),
    ])
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let failing_ms = ctx.size(2_000, 10_000);
    let down_ms = ctx.size(4_000, 20_000);
    let after_ms = ctx.size(1_000, 5_000);
    let mut ingest = ctx.start_ingest(&plan(failing_ms))?;
    let spool = ctx.path("spool");
    let rate = ctx.size(3_000, 5_000);
    let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
    args.rate = rate;
    args.events = rate * (failing_ms + down_ms + after_ms) / 1_000;
    args.padding = 512;
    args.queue_events = 4_096;
    args.queue_bytes = QUEUE_BYTES;
    args.batch_size = 500;
    args.checkpoint_every = 500;
    args.breaker_failures = 3;
    args.breaker_cooldown_ms = 200;
    args.max_backoff_ms = 500;
    args.request_timeout_ms = 1_000;
    args.flush_ms = 90_000;
    let offered_mib = args.events * (args.padding as u64 + 150) / (1 << 20);

    let mut app = ctx.spawn(&args)?;
    let started = Instant::now();
    let mut max_spool_bytes = 0_u64;
    let mut phase = 0;
    let deadline = started + Duration::from_secs(ctx.size(150, 900));
    while app.poll().is_none() {
        let elapsed = started.elapsed().as_millis() as u64;
        if phase == 0 {
            ctx.step(format!("503s for {failing_ms} ms"));
            phase = 1;
        }
        if phase == 1 && elapsed >= failing_ms {
            ctx.step(format!("no listener for {down_ms} ms"));
            ingest.kill();
            phase = 2;
        }
        if phase == 2 && elapsed >= failing_ms + down_ms {
            ctx.step("server back; delivering the backlog");
            ingest.restart(ctx.seed.wrapping_add(1), &FaultPlanJson::healthy())?;
            phase = 3;
        }
        if phase < 3 {
            max_spool_bytes = max_spool_bytes.max(dir_bytes(&spool));
        }
        app.sample_memory();
        anyhow::ensure!(
            Instant::now() < deadline,
            "the app did not finish within its bounded wait"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    if phase < 3 {
        ingest.restart(ctx.seed.wrapping_add(1), &FaultPlanJson::healthy())?;
    }
    ctx.collect(app)?;
    ctx.drain_and_judge(&ingest, &spool)?;
    ctx.require_everything_delivered();

    let exit = ctx
        .runs()
        .first()
        .and_then(|run| run.ledger.exit().cloned());
    let peak = ctx.report.peak_rss_kib;
    match exit.as_ref().and_then(|exit| exit.baseline_rss_kib) {
        Some(baseline) => {
            let bound = baseline + 2 * (QUEUE_BYTES as u64 >> 10) + RSS_ALLOWANCE_KIB;
            ctx.report.rss_bound_kib = Some(bound);
            if let Some(peak) = peak.filter(|peak| *peak > bound) {
                ctx.violate(
                    Promise::MemoryBounded,
                    format!(
                        "peak RSS {peak} KiB over the bound {bound} KiB (baseline {baseline} KiB)"
                    ),
                );
            }
        }
        None => ctx.violate(
            Promise::ScenarioCompleted,
            "the app reported no baseline memory",
        ),
    }
    if exit
        .as_ref()
        .and_then(|exit| exit.stats.breaker_opened)
        .unwrap_or(0)
        == 0
    {
        ctx.violate(
            Promise::FaultExercised,
            "the breaker was never seen open during the outage",
        );
    }
    ctx.note(format!(
        "offered ~{offered_mib} MiB of events; the spool grew to {:.1} MiB during the outage",
        max_spool_bytes as f64 / f64::from(1 << 20)
    ));
    Ok(())
}

/// The total size of the files directly in `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| if metadata.is_dir() { 0 } else { metadata.len() })
        .sum()
}
