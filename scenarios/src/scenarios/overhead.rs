//! overhead: the proportional-overhead check. One app process per server condition (healthy; slow: 300 ms per
//! request; down: no listener) runs a CPU-bound workload (units of about 20 µs, calibrated at the start of the
//! process) that records one event per unit of work, with and without telemetry, interleaved in chunks of 500 units
//! (bare, telemetry, telemetry, bare, ...), best of several rounds (more for the small size), at two sizes 1000×
//! apart. The report shows the ratio (time with telemetry / time without) for each. It is reported, not failed on:
//! it is a wall-clock measurement on a shared machine. The accounting identity must balance at every exit.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::{FakeIngest, FaultPlanJson};
use crate::verdict::Promise;

/// The slow server's plan: every request takes 300 ms.
fn slow_plan() -> FaultPlanJson {
    FaultPlanJson::rules(vec![json!({ "latency": { "fixed_ms": 300 } })])
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let healthy = ctx.start_ingest(&FaultPlanJson::healthy())?;
    let slow = FakeIngest::start(&ctx.exe, &ctx.path("ingest-slow"), ctx.seed, &slow_plan())?;
    let down = {
        // A port that was free a moment ago and has no listener now.
        let listener = TcpListener::bind("127.0.0.1:0")?;
        format!("http://{}", listener.local_addr()?)
    };
    let small = ctx.size(20, 1_000);
    for (label, endpoint) in [
        ("healthy", healthy.url()),
        ("slow", slow.url()),
        ("down", down),
    ] {
        let spool = ctx.path(&format!("spool-{label}"));
        let mut args = ctx.app_args(Mode::Overhead, &endpoint, &spool);
        args.units = vec![small, small * 1_000];
        args.rounds = ctx.size(2, 5);
        args.server_label = label.to_owned();
        args.flush_ms = 0;
        args.shutdown_ms = 1_000;
        args.queue_events = 1 << 16;
        ctx.step(format!("workload against a {label} server"));
        ctx.run_app(&args, Duration::from_secs(ctx.size(120, 900)))?;
    }
    let mut unbalanced = Vec::new();
    for run in ctx.runs() {
        match run.ledger.exit() {
            Some(exit) if exit.stats.identity_balances() => {}
            Some(exit) => unbalanced.push(format!("{}: {:?}", run.label, exit.stats)),
            None => unbalanced.push(format!("{}: no exit report", run.label)),
        }
    }
    for detail in unbalanced {
        ctx.violate(Promise::IdentityBalances, detail);
    }
    let ratios: Vec<String> = ctx
        .report
        .overhead
        .iter()
        .map(|sample| {
            format!(
                "{} × {}: {:.3}",
                sample.server,
                sample.units,
                sample.ratio()
            )
        })
        .collect();
    ctx.note(format!(
        "overhead ratios (reported, not asserted): {}",
        ratios.join("; ")
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_slow_fault_plan_is_one_fake_ingest_accepts() {
        let plan = super::slow_plan();

        let parsed = fake_ingest::FaultPlan::from_json(&plan.0.to_string());

        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
