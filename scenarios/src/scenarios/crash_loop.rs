//! crash-loop: services record steadily and checkpoint every 50 events, a few at a time on one spool; the harness
//! SIGKILLs each at a seeded random moment and starts another in its place, many times, and SIGKILLs fake-ingest
//! itself every so often (restarting it on the same data directory), then lets a last run finish. No checkpointed
//! event may be lost, and no event may be stored twice after dedupe.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;
use crate::process::POLL;
use crate::verdict::Promise;

/// The fault plan: a little latency, so kills land while requests are in flight.
pub(super) fn plan() -> FaultPlanJson {
    FaultPlanJson::rules(vec![json!({ "latency": { "uniform_ms": [0, 20] } })])
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ingest = ctx.start_ingest(&plan())?;
    let spool = ctx.path("spool");
    let kills = ctx.size(12_u32, 560);
    let parallel = ctx.size(2, 3);
    let server_kill_every = ctx.size(6_u32, 25);
    let mut running = Vec::new();
    let mut killed = 0_u32;
    let mut server_kills = 0_u32;
    let deadline = Instant::now() + Duration::from_secs(ctx.size(120, 1_800));
    while killed < kills {
        while running.len() < parallel && killed + u32::try_from(running.len())? < kills {
            let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
            args.events = u64::MAX / 2;
            args.rate = 2_000;
            args.checkpoint_every = 50;
            args.session_every = 40;
            args.batch_delay_ms = 50;
            let alive = Duration::from_millis(ctx.rng.u64(150..900));
            running.push((Instant::now() + alive, ctx.spawn(&args)?));
        }
        let now = Instant::now();
        let mut index = 0;
        while index < running.len() {
            if running[index].0 > now {
                index += 1;
                continue;
            }
            let (_, mut app) = running.swap_remove(index);
            if app.poll().is_some() {
                ctx.violate(
                    Promise::ScenarioCompleted,
                    format!("{} exited before it was killed", app.label()),
                );
            }
            app.kill();
            ctx.collect(app)?;
            killed += 1;
            ctx.step(format!(
                "{killed}/{kills} processes killed, fake-ingest {server_kills} times"
            ));
            if killed.is_multiple_of(server_kill_every) {
                server_kills += 1;
                ingest.restart(ctx.seed.wrapping_add(u64::from(server_kills)), &plan())?;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "crash-loop did not finish within its bounded wait"
        );
        std::thread::sleep(POLL);
    }

    ctx.step("a last run that finishes");
    let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
    args.events = 500;
    args.rate = 2_000;
    args.checkpoint_every = 50;
    ctx.run_app(&args, Duration::from_secs(60))?;

    ctx.drain_and_judge(&ingest, &spool)?;
    ctx.require_everything_delivered();
    if ctx.report.tally.kills == 0 || ctx.report.tally.checkpointed_in_killed == 0 {
        ctx.violate(
            Promise::FaultExercised,
            "no process was killed after a completed checkpoint",
        );
    }
    if server_kills == 0 {
        ctx.violate(Promise::FaultExercised, "fake-ingest was never killed");
    }
    Ok(())
}
