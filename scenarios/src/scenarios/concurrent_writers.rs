//! concurrent-writers: several service processes record at once into one spool directory; every event is delivered
//! exactly once.

use std::time::Duration;

use serde_json::json;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;

/// The fault plan: a little latency, so the writers overlap with deliveries.
pub(super) fn plan() -> FaultPlanJson {
    FaultPlanJson::rules(vec![json!({ "latency": { "uniform_ms": [0, 10] } })])
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let ingest = ctx.start_ingest(&plan())?;
    let spool = ctx.path("spool");
    let writers = ctx.size(4, 8);
    let mut apps = Vec::new();
    ctx.step(format!("{writers} writers on one spool"));
    for _ in 0..writers {
        let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
        args.events = ctx.size(1_500, 20_000);
        args.rate = 1_000;
        args.checkpoint_every = 100;
        args.session_every = 30;
        apps.push(ctx.spawn(&args)?);
    }
    for mut app in apps {
        app.wait(Duration::from_secs(ctx.size(90, 300)))?;
        ctx.collect(app)?;
    }

    ctx.drain_and_judge(&ingest, &spool)?;
    ctx.require_everything_delivered();
    Ok(())
}
