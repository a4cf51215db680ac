//! Every scenario at its CI size, through the same code path as `scenarios run`, one `#[test]` each.
//!
//! The scenarios measure real processes on a shared machine, so they run one at a time (a lock), never in
//! parallel with each other. The seed is fixed (`SCENARIOS_SEED` overrides it) so a failure here re-runs the same
//! way with the command it prints.

use std::sync::Mutex;

use scenarios::{Profile, run_one};

/// Serializes the scenarios: each one owns the machine while it runs.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The seed of the test runs.
fn seed() -> u64 {
    std::env::var("SCENARIOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(20_261_123)
}

/// Runs one scenario at its CI size and fails with its table and re-run command if any promise broke.
fn scenario(name: &str) {
    let _guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let report = run_one(
        name,
        std::path::Path::new(env!("CARGO_BIN_EXE_scenarios")),
        Profile::Ci,
        seed(),
    );
    assert!(
        report.passed(),
        "{}\nbroken promises: {:?}\nre-run: {}",
        report.table(),
        report
            .violations
            .iter()
            .map(|violation| violation.promise)
            .collect::<Vec<_>>(),
        report.rerun
    );
}

#[test]
fn steady() {
    scenario("steady");
}

#[test]
fn chat_idle_flush() {
    scenario("chat-idle-flush");
}

#[test]
fn cli_burst() {
    scenario("cli-burst");
}

#[test]
fn crash_loop() {
    scenario("crash-loop");
}

#[test]
fn ack_lost() {
    scenario("ack-lost");
}

#[test]
fn server_crash() {
    scenario("server-crash");
}

#[test]
fn outage() {
    scenario("outage");
}

#[test]
fn poison() {
    scenario("poison");
}

#[test]
fn overflow() {
    scenario("overflow");
}

#[test]
fn concurrent_writers() {
    scenario("concurrent-writers");
}

#[test]
fn overhead() {
    scenario("overhead");
}
