//! cli-burst (`003`): hundreds of short CLI invocations share one spool directory, a few at a time. Each records
//! 1–3 events and shuts down sending at most 25 events within a small deadline, against a slow, flaky server
//! (long-tailed latency and 503s). In the end every event is delivered exactly once, and no invocation's exit is
//! delayed past its deadline.
//!
//! The exit delay is measured from the moment the app ledgers the start of its shutdown to the moment the harness
//! sees the process gone (polled every millisecond), so process startup is not part of it. The allowed slack over
//! the deadline, [`EXIT_SLACK_MS`], covers process teardown and scheduling on a loaded 2-core machine.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;
use crate::process::POLL;
use crate::verdict::Promise;

/// The shutdown deadline each invocation passes.
const DEADLINE_MS: u64 = 300;

/// The slack allowed over the deadline for process teardown and scheduling.
pub(crate) const EXIT_SLACK_MS: u64 = 200;

/// The fault plan: 30% of requests answered 503 after a long-tailed delay; the rest stored after one.
pub(super) fn plan() -> FaultPlanJson {
    let latency = json!({ "lognormal": { "median_ms": 60, "sigma": 1.0, "cap_ms": 2000 } });
    FaultPlanJson::rules(vec![
        json!({ "when": { "probability": 0.3 }, "latency": latency, "then": { "status": 503 } }),
        json!({ "latency": latency }),
    ])
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let ingest = ctx.start_ingest(&plan())?;
    let spool = ctx.path("spool");
    let invocations = ctx.size(150_u32, 1_000);
    let parallel = 6;
    let mut running = Vec::new();
    let mut started = 0;
    let mut worst = 0_u64;
    let mut late = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(ctx.size(120, 900));
    while started < invocations || !running.is_empty() {
        while started < invocations && running.len() < parallel {
            let mut args = ctx.app_args(Mode::Cli, &ingest.url(), &spool);
            args.events = 3;
            args.max_send = Some(25);
            args.flush_ms = 0;
            args.shutdown_ms = DEADLINE_MS;
            args.batch_size = 25;
            args.request_timeout_ms = 5_000;
            running.push(ctx.spawn(&args)?);
            started += 1;
        }
        ctx.step(format!("{started}/{invocations} invocations started"));
        let mut index = 0;
        while index < running.len() {
            if running[index].poll().is_some() {
                let app = running.swap_remove(index);
                let label = app.label().to_owned();
                let (_, delay) = ctx.collect(app)?;
                match delay {
                    Some(delay) => {
                        worst = worst.max(delay);
                        if delay > DEADLINE_MS + EXIT_SLACK_MS {
                            late.push(format!("{label}: {delay} ms"));
                        }
                    }
                    None => late.push(format!("{label}: never began its shutdown")),
                }
            } else {
                index += 1;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "cli-burst did not finish within its bounded wait"
        );
        std::thread::sleep(POLL);
    }
    ctx.report.worst_cli_exit_delay_ms = Some(worst);
    ctx.report.cli_deadline_ms = Some(DEADLINE_MS);
    if !late.is_empty() {
        let detail = format!(
            "{} invocations exited later than {DEADLINE_MS} ms + {EXIT_SLACK_MS} ms slack after starting their shutdown: {}",
            late.len(),
            late.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        );
        ctx.violate(Promise::CliExitWithinDeadline, detail);
    }

    ctx.step("healing the server and draining");
    ingest.set_faults(&FaultPlanJson::healthy())?;
    ctx.drain_and_judge(&ingest, &spool)?;
    ctx.require_everything_delivered();
    Ok(())
}
