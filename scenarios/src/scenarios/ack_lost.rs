//! ack-lost: the server stores a share of the batches and then resets the connection without answering (the
//! lost acknowledgement). The client resends the same uuids: raw duplicates appear on the wire, none after dedupe,
//! and nothing is lost.

use std::time::Duration;

use serde_json::json;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;
use crate::verdict::Promise;

/// The fault plan: 30% of requests are stored, then reset.
pub(super) fn plan() -> FaultPlanJson {
    FaultPlanJson::rules(vec![
        json!({ "when": { "probability": 0.3 }, "then": "reset_after_store" }),
    ])
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let ingest = ctx.start_ingest(&plan())?;
    let spool = ctx.path("spool");
    let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
    args.events = ctx.size(3_000, 50_000);
    args.rate = ctx.size(3_000, 5_000);
    args.checkpoint_every = 100;
    args.batch_delay_ms = 50;

    ctx.step(format!(
        "recording {} events against lost acknowledgements",
        args.events
    ));
    ctx.run_app(&args, Duration::from_secs(ctx.size(60, 300)))?;

    ctx.drain_and_judge(&ingest, &spool)?;
    ctx.require_everything_delivered();
    if ctx.report.tally.raw_duplicates == 0 {
        ctx.violate(
            Promise::FaultExercised,
            "no raw duplicate reached the server: no acknowledgement was lost",
        );
    }
    Ok(())
}
