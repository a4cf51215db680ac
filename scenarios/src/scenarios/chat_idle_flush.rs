//! chat-idle-flush: a chat REPL in idle-only mode. Each message streams a few events (the busy phase), then
//! the app reaches its prompt: `checkpoint()`, `idle()`, and the user "types". The app samples the fake server's
//! `/ingest` request counter at every phase boundary and writes it to its ledger, so the harness can check that no
//! request arrived while it was streaming. The harness SIGKILLs it mid-conversation (during a busy phase), restarts
//! it on the same spool, and checks that every message finished before the kill is delivered exactly once.

use std::time::{Duration, Instant};

use crate::app::Mode;
use crate::harness::Ctx;
use crate::ingest::FaultPlanJson;
use crate::ledger::{Ledger, Phase};
use crate::verdict::{ProcessRun, Promise};

/// Runs the scenario.
///
/// # Errors
/// When a process cannot run or a bounded wait expires.
pub(super) fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let ingest = ctx.start_ingest(&FaultPlanJson::healthy())?;
    let spool = ctx.path("spool");
    let messages = ctx.size(30, 300);
    let chunks = 5;

    let mut args = ctx.app_args(Mode::Chat, &ingest.url(), &spool);
    args.events = messages * chunks;
    args.chunks = chunks;
    args.typing_ms = 300;
    args.probe_requests = true;
    let kill_after = ctx.rng.u64(messages / 3..messages * 2 / 3);
    ctx.step(format!(
        "chatting; SIGKILL while streaming message {}",
        kill_after + 1
    ));
    let mut app = ctx.spawn(&args)?;
    // Wait (bounded) until the app is streaming message `kill_after`, then kill it a few milliseconds in.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let busy = Ledger::read(&args.ledger)?
            .phases()
            .iter()
            .filter(|(phase, ..)| *phase == Phase::Busy)
            .count();
        if busy as u64 > kill_after {
            std::thread::sleep(Duration::from_millis(ctx.rng.u64(0..6)));
            break;
        }
        if app.poll().is_some() || Instant::now() >= deadline {
            ctx.violate(
                Promise::ScenarioCompleted,
                "the chat app finished or stalled before the planned kill",
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    app.kill();
    ctx.collect(app)?;

    ctx.step("restarted chat on the same spool");
    let mut args = ctx.app_args(Mode::Chat, &ingest.url(), &spool);
    args.events = ctx.size(8, 50) * chunks;
    args.chunks = chunks;
    args.typing_ms = 300;
    args.probe_requests = true;
    ctx.run_app(&args, Duration::from_secs(60))?;

    let busy_checks = check_no_send_while_busy(ctx);
    ctx.drain_and_judge(&ingest, &spool)?;
    ctx.require_everything_delivered();
    ctx.note(format!(
        "{busy_checks} streaming phases checked for delivery requests"
    ));
    if let Some(killed) = ctx.runs().iter().find(|run| run.killed) {
        let last = killed.ledger.phases().last().map(|(phase, ..)| *phase);
        if last != Some(Phase::Busy) {
            ctx.violate(
                Promise::FaultExercised,
                "the kill did not land while the app was streaming",
            );
        }
    }
    Ok(())
}

/// Compares the `/ingest` request counter at the start and the end of every busy phase; returns how many phases
/// were checked.
fn check_no_send_while_busy(ctx: &mut Ctx) -> usize {
    let mut checked = 0;
    let mut violations = Vec::new();
    let mut unprobed = 0;
    for run in ctx.runs() {
        for (phase_index, window) in busy_windows(run).into_iter().enumerate() {
            match window {
                (Some(before), Some(after)) => {
                    checked += 1;
                    if after != before {
                        violations.push(format!(
                            "{} streaming phase {}: {} delivery requests arrived",
                            run.label,
                            phase_index + 1,
                            after - before
                        ));
                    }
                }
                _ => unprobed += 1,
            }
        }
    }
    for detail in violations {
        ctx.violate(Promise::NoSendWhileBusy, detail);
    }
    if checked == 0 || unprobed > 0 {
        ctx.violate(
            Promise::ScenarioCompleted,
            format!("{unprobed} streaming phases could not be probed, {checked} were"),
        );
    }
    checked
}

/// The request counter at the start and end of each complete busy phase (a phase cut by the kill is left out).
fn busy_windows(run: &ProcessRun) -> Vec<(Option<u64>, Option<u64>)> {
    let phases = run.ledger.phases();
    phases
        .windows(2)
        .filter(|pair| pair[0].0 == Phase::Busy && pair[1].0 == Phase::Idle)
        .map(|pair| (pair[0].2, pair[1].2))
        .collect()
}
