//! otel-app: a service instrumented only with `tracing` macros and the OpenTelemetry API ([`crate::otel_app`]), run
//! twice side by side against a server that answers some requests with 503 and is itself SIGKILLed and restarted
//! every few kills: once exporting through flush-core's OpenTelemetry processors (judged), once through the SDK's
//! own batch processors and OTLP/HTTP exporter (reported beside it, not judged). The harness SIGKILLs both at the
//! same seeded random moment and starts a new pair, many times, then lets a last pair finish.
//!
//! Judged, for flush-core's processors: every span and log record ended before a `force_flush` that returned (`Ok`,
//! or a timeout after its checkpoint) is stored, and none is stored twice after dedupe. Each arm has its own
//! fake-ingest with the same plan and seed, so neither sees the other's records.

use std::time::Duration;

use serde_json::json;

use crate::app::{AppArgs, Mode, SinkArg};
use crate::harness::{Ctx, capture};
use crate::ingest::{FakeIngest, FaultPlanJson};
use crate::otel_app::spools;
use crate::report::PeerReport;
use crate::verdict::{ProcessRun, Promise, judge};

/// What the peer arm is, in the report.
const PEER: &str = "OpenTelemetry SDK batch processors + OTLP/HTTP exporter";

/// The fault plan: one request in five answered 503, a little latency on every request.
pub(super) fn plan() -> FaultPlanJson {
    let latency = json!({ "uniform_ms": [0, 20] });
    FaultPlanJson::rules(vec![
        json!({ "when": { "probability": 0.2 }, "latency": latency, "then": { "status": 503 } }),
        json!({ "latency": latency }),
    ])
}

/// The app's arguments: requests at a steady rate, a `force_flush` every 30 requests (about every 100 ms).
fn app(ctx: &mut Ctx, mode: Mode, ingest: &FakeIngest, requests: u64) -> AppArgs {
    let spool = ctx.path(if mode == Mode::Otel {
        "spool"
    } else {
        "spool-unused"
    });
    let mut args = ctx.app_args(mode, &ingest.url(), &spool);
    args.events = requests;
    args.rate = 300;
    args.checkpoint_every = 30;
    args.batch_delay_ms = 50;
    args
}

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    if ctx.sink != SinkArg::Ingest {
        ctx.note(format!(
            "--sink {} does not apply: the app exports its logs and spans over OTLP",
            ctx.sink.label()
        ));
    }
    // The server note counts the requests on the logs route; the spans go to /v1/traces beside them.
    ctx.sink = SinkArg::OtlpLogs;
    ctx.report.sink = "otlp-logs + otlp-traces".to_owned();
    let mut ours = ctx.start_ingest(&plan())?;
    let mut theirs = FakeIngest::start(&ctx.exe, &ctx.path("ingest-sdk"), ctx.seed, &plan())?;
    let kills = ctx.size(8_u32, 200);
    let server_kill_every = ctx.size(4_u32, 25);
    let mut peer_runs: Vec<ProcessRun> = Vec::new();
    let mut server_kills = 0_u32;
    for killed in 1..=kills {
        let ours_args = app(ctx, Mode::Otel, &ours, u64::MAX / 2);
        let theirs_args = app(ctx, Mode::OtelSdk, &theirs, u64::MAX / 2);
        let mut pair = [ctx.spawn(&ours_args)?, ctx.spawn(&theirs_args)?];
        // The sleep picks the kill moment; nothing is inferred from its length.
        std::thread::sleep(Duration::from_millis(ctx.rng.u64(300..1_200)));
        for app in &mut pair {
            if app.poll().is_some() {
                let detail = format!("{} exited before it was killed", app.label());
                ctx.violate(Promise::ScenarioCompleted, detail);
            }
            app.kill();
        }
        let [ours_app, theirs_app] = pair;
        ctx.collect(ours_app)?;
        peer_runs.push(theirs_app.finish()?.0);
        ctx.step(format!(
            "{killed}/{kills} pairs killed, fake-ingest {server_kills} times"
        ));
        if killed.is_multiple_of(server_kill_every) {
            server_kills += 1;
            let seed = ctx.seed.wrapping_add(u64::from(server_kills));
            ours.restart(seed, &plan())?;
            theirs.restart(seed, &plan())?;
        }
    }

    ctx.step("a last pair that finishes");
    let ours_args = app(ctx, Mode::Otel, &ours, 300);
    let theirs_args = app(ctx, Mode::OtelSdk, &theirs, 300);
    let mut last = ctx.spawn(&theirs_args)?;
    ctx.run_app(&ours_args, Duration::from_secs(60))?;
    let exit = last.wait(Duration::from_secs(60))?;
    if !exit.status.success() {
        let detail = format!("{} exited with {}", last.label(), exit.status);
        ctx.violate(Promise::ScenarioCompleted, detail);
    }
    peer_runs.push(last.finish()?.0);

    for (sink, spool) in spools(&ctx.path("spool")) {
        ctx.drain_with(&ours, &spool, sink)?;
    }
    ctx.judge(&ours)?;
    ctx.require_everything_delivered();
    let (_, peer_capture) = capture(&theirs)?;
    ctx.report.peer = Some(PeerReport::from_tally(
        PEER,
        &judge(&peer_runs, &peer_capture).tally,
    ));
    if ctx.report.tally.kills == 0 || ctx.report.tally.checkpointed_in_killed == 0 {
        ctx.violate(
            Promise::FaultExercised,
            "no process was killed after a completed force_flush",
        );
    }
    if ours.stats()?.faults.status == 0 {
        ctx.violate(Promise::FaultExercised, "fake-ingest never answered 503");
    }
    if server_kills == 0 {
        ctx.violate(Promise::FaultExercised, "fake-ingest was never killed");
    }
    Ok(())
}
