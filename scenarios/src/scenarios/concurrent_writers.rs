//! concurrent-writers: several service processes record at once into one spool directory, in generations: every
//! generation but the last is SIGKILLed at seeded random moments, each writer on its own, and replaced; the last
//! generation finishes. Every checkpointed event is delivered exactly once.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;
use crate::process::POLL;

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
    let killed_generations = ctx.size(2, 45);
    for generation in 0..killed_generations {
        ctx.step(format!(
            "generation {}/{killed_generations}: {writers} writers on one spool, each killed at a random moment",
            generation + 1
        ));
        let mut apps = Vec::new();
        for _ in 0..writers {
            let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
            args.events = u64::MAX / 2;
            args.rate = 1_000;
            args.checkpoint_every = 100;
            args.session_every = 30;
            let alive = Duration::from_millis(ctx.rng.u64(200..1_200));
            apps.push((Instant::now() + alive, ctx.spawn(&args)?));
        }
        while !apps.is_empty() {
            let now = Instant::now();
            let mut index = 0;
            while index < apps.len() {
                if apps[index].0 > now {
                    index += 1;
                    continue;
                }
                let (_, mut app) = apps.swap_remove(index);
                app.kill();
                ctx.collect(app)?;
            }
            std::thread::sleep(POLL);
        }
    }
    ctx.step(format!(
        "the last generation: {writers} writers that finish"
    ));
    let mut apps = Vec::new();
    for _ in 0..writers {
        let mut args = ctx.app_args(Mode::Service, &ingest.url(), &spool);
        args.events = ctx.size(1_500, 5_000);
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
