//! steady: a healthy server; a service records tool calls in sessions with background batching; everything is
//! delivered exactly once.

use std::time::Duration;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let ingest = ctx.start_ingest(&FaultPlanJson::healthy())?;
    let spool = ctx.path("spool");
    let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
    args.events = ctx.size(3_000, 100_000);
    args.rate = ctx.size(3_000, 10_000);
    args.session_every = 25;
    args.checkpoint_every = 200;

    ctx.step(format!("recording {} events", args.events));
    ctx.run_app(&args, Duration::from_secs(ctx.size(60, 300)))?;

    ctx.drain_and_judge(&ingest, &spool)?;
    ctx.require_everything_delivered();
    Ok(())
}
