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
fn plan() -> FaultPlanJson {
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
    let mut app = ctx.spawn(&args)?;
    app.wait(Duration::from_secs(ctx.size(60, 300)))?;
    ctx.collect(app)?;

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

#[cfg(test)]
mod tests {
    #[test]
    fn the_fault_plan_is_one_fake_ingest_accepts() {
        let plan = super::plan();

        let parsed = fake_ingest::FaultPlan::from_json(&plan.0.to_string());

        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
