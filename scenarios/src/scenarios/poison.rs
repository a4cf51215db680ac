//! poison: the server rejects (400) any batch carrying an event with the `poison` marker. The client splits the
//! batch, dead-letters the poison events alone with the server's reason, counts them, and delivers all others.

use std::time::Duration;

use serde_json::json;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;
use crate::ledger::POISON_PROPERTY;
use crate::verdict::Promise;

/// The fault plan: a batch with a poison event is answered 400.
pub(super) fn plan() -> FaultPlanJson {
    FaultPlanJson::rules(vec![json!({
        "when": { "batch_has_property": { "name": POISON_PROPERTY, "equals": true } },
        "then": { "status": 400 }
    })])
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let ingest = ctx.start_ingest(&plan())?;
    let spool = ctx.path("spool");
    let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
    args.events = ctx.size(2_000, 50_000);
    args.rate = ctx.size(4_000, 10_000);
    args.poison_every = 97;
    args.checkpoint_every = 100;

    ctx.step(format!(
        "recording {} events, every 97th poison",
        args.events
    ));
    ctx.run_app(&args, Duration::from_secs(ctx.size(60, 300)))?;

    ctx.drain_and_judge(&ingest, &spool)?;
    ctx.require_everything_delivered();
    let tally = &ctx.report.tally;
    if tally.poison == 0 || tally.dead_lettered == 0 {
        let detail = format!(
            "{} poison events recorded, {} dead-lettered",
            tally.poison, tally.dead_lettered
        );
        ctx.violate(Promise::FaultExercised, detail);
    }
    if let Ok(entries) = std::fs::read_dir(&spool) {
        let names: Vec<String> = entries
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        ctx.note(format!("spool directory holds: {}", names.join(", ")));
    }
    Ok(())
}
