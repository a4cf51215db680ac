//! server-crash: fake-ingest aborts at random requests, some before storing the batch and some after (then the
//! acknowledgement is lost too), and the harness restarts it on the same port and data directory. The client
//! retries through connection errors; nothing is lost and nothing is stored twice.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;
use crate::verdict::Promise;

/// The fault plan of the `start`-th server process: after a few good requests, each request may crash it.
/// The plan is the same for every start; the seed changes per start, so the crash points move.
pub(super) fn plan() -> FaultPlanJson {
    FaultPlanJson::rules(vec![
        json!({ "when": { "after": 3, "probability": 0.06 }, "then": "crash_before_store" }),
        json!({ "when": { "after": 3, "probability": 0.06 }, "then": "crash_after_store" }),
    ])
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ingest = ctx.start_ingest(&plan())?;
    let spool = ctx.path("spool");
    let max_crashes = ctx.size(10_u32, 60);
    let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
    args.events = ctx.size(5_000, 60_000);
    args.rate = ctx.size(2_000, 4_000);
    args.checkpoint_every = 100;
    args.batch_delay_ms = 50;
    let mut app = ctx.spawn(&args)?;
    let deadline = Instant::now() + Duration::from_secs(ctx.size(90, 600));
    let mut crashes = 0;
    while app.poll().is_none() {
        if !ingest.is_running() {
            crashes += 1;
            // After enough crashes the server heals, so the run ends.
            let next = if crashes >= max_crashes {
                FaultPlanJson::healthy()
            } else {
                plan()
            };
            ctx.step(format!("fake-ingest crashed ({crashes}); restarting"));
            ingest.restart(ctx.seed.wrapping_add(u64::from(crashes)), &next)?;
        }
        if Instant::now() >= deadline {
            app.kill();
            anyhow::bail!("the app did not finish within its bounded wait");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ctx.collect(app)?;
    ingest.restart(ctx.seed.wrapping_add(1_000), &FaultPlanJson::healthy())?;

    ctx.drain_and_judge(&ingest, &spool)?;
    ctx.require_everything_delivered();
    ctx.note(format!(
        "fake-ingest crashed {crashes} times and was restarted"
    ));
    if crashes == 0 {
        ctx.violate(Promise::FaultExercised, "fake-ingest never crashed");
    }
    Ok(())
}
