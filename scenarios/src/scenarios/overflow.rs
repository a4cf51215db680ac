//! overflow: load offered far above what the limits allow — a small in-memory queue, a small spool cap, a slow
//! server — with each drop policy in turn. Every drop is counted by reason, every undelivered event is a counted
//! drop, and the accounting identity balances at every exit.

use std::time::Duration;

use serde_json::json;

use crate::app::{DropArg, Mode};
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;
use crate::verdict::Promise;

/// The fault plan: every request takes 50 ms.
pub(super) fn plan() -> FaultPlanJson {
    FaultPlanJson::rules(vec![json!({ "latency": { "fixed_ms": 50 } })])
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let ingest = ctx.start_ingest(&plan())?;
    for (index, policy) in [DropArg::Newest, DropArg::Oldest, DropArg::Sample]
        .into_iter()
        .enumerate()
    {
        let spool = ctx.path(&format!("spool-{index}"));
        let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
        args.events = ctx.size(10_000, 200_000);
        args.rate = 0;
        args.padding = 200;
        args.queue_events = 256;
        args.queue_bytes = 64 << 10;
        args.spool_bytes = Some(ctx.size(512 << 10, 4 << 20));
        args.drop = policy;
        args.flush_ms = 1_000;
        args.shutdown_ms = 1_000;
        ctx.step(format!(
            "offering {} events with drop policy {policy:?}",
            args.events
        ));
        ctx.run_app(&args, Duration::from_secs(ctx.size(60, 300)))?;
        ctx.drain(&ingest, &spool)?;
    }
    ctx.judge(&ingest)?;
    let dropped: u64 = ctx.report.tally.dropped.values().sum();
    if dropped == 0 {
        ctx.violate(
            Promise::FaultExercised,
            "nothing was dropped: the load never exceeded the limits",
        );
    }
    Ok(())
}
