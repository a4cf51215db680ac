//! crash-loop: a service records steadily and checkpoints every 50 events; the harness SIGKILLs it at seeded random
//! moments and restarts it on the same spool, many times, then lets a last run finish. No checkpointed event may be
//! lost, and no event may be stored twice after dedupe.

use std::time::Duration;

use serde_json::json;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;
use crate::verdict::Promise;

/// The fault plan: a little latency so kills also land while batches are on the wire.
pub(super) fn plan() -> FaultPlanJson {
    FaultPlanJson::rules(vec![json!({ "latency": { "uniform_ms": [0, 20] } })])
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let ingest = ctx.start_ingest(&plan())?;
    let spool = ctx.path("spool");
    let kills = ctx.size(12, 100);
    for kill in 0..kills {
        let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
        args.events = u64::MAX / 2;
        args.rate = 2_000;
        args.checkpoint_every = 50;
        args.session_every = 40;
        args.batch_delay_ms = 50;
        let alive_ms = ctx.rng.u64(150..900);
        ctx.step(format!("kill {}/{kills} after {alive_ms} ms", kill + 1));
        let mut app = ctx.spawn(&args)?;
        std::thread::sleep(Duration::from_millis(alive_ms));
        if app.poll().is_some() {
            ctx.violate(
                Promise::ScenarioCompleted,
                format!("{} exited before it was killed", app.label()),
            );
        }
        app.kill();
        ctx.collect(app)?;
    }

    ctx.step("a last run that finishes");
    let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
    args.events = 500;
    args.rate = 2_000;
    args.checkpoint_every = 50;
    ctx.run_app(&args, Duration::from_secs(60))?;

    ctx.drain_and_judge(&ingest, &spool)?;
    ctx.require_everything_delivered();
    let checkpointed: usize = ctx
        .runs()
        .iter()
        .filter(|run| run.killed)
        .map(|run| {
            run.ledger
                .records()
                .iter()
                .filter(|record| record.checkpointed)
                .count()
        })
        .sum();
    if ctx.report.tally.kills == 0 || checkpointed == 0 {
        ctx.violate(
            Promise::FaultExercised,
            "no process was killed after a completed checkpoint",
        );
    }
    ctx.note(format!(
        "{checkpointed} checkpointed events were recorded by processes that were later killed"
    ));
    Ok(())
}
