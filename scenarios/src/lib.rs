//! scenarios: the end-to-end proof of flush-core's promises with real processes, real kills and a misbehaving
//! server.
//!
//! One executable plays every part, so a run needs nothing but `cargo`:
//! - `scenarios run` (the default): the runner ([`runner`]), which runs the scenarios ([`scenarios`]);
//! - `scenarios app --mode ...`: the app under test ([`app`]), built on flush-core, writing its [`ledger`];
//! - `scenarios ingest ...`: fake-ingest, started by the harness as a separate process ([`ingest`]).
//!
//! # Map of the crate
//! - `harness`: [`Ctx`], the per-scenario context (work directory, seed, processes, report) and [`Profile`].
//! - `process`: app processes — spawn, exit times, SIGKILL, bounded waits, memory from `/proc`.
//! - `ingest`: fake-ingest as a process and its control API; the one place its command line is built.
//! - `ledger`: the ground truth each app writes, which survives SIGKILL (its module doc is the format).
//! - `verdict`: ledgers against the server: delivered, lost, loss window, dropped, duplicates; the [`Promise`]s.
//! - `report`: the tables, `report.json` and `junit.xml`.
//! - `runner`: runs scenarios, the progress display, the re-run command.
//! - `scenarios`: one file per scenario, and the registry.
//!
//! ```no_run
//! // Run one scenario at its CI size, as the integration tests do.
//! use scenarios::{Profile, run_one};
//! let report = run_one("steady", std::path::Path::new("target/debug/scenarios"), Profile::Ci, 1);
//! assert!(report.passed(), "{}", report.table());
//! ```

pub mod app;
mod harness;
pub mod ingest;
pub mod ledger;
pub mod process;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod verdict;

pub use harness::{Ctx, Profile};
pub use report::{ScenarioReport, SuiteReport};
pub use verdict::Promise;

/// Runs one scenario by name in a temporary work directory, without a progress display (for tests). The directory
/// is removed when the scenario passes and kept (its path in the report's notes) when it fails.
///
/// # Panics
/// When the name is unknown or no temporary directory can be created: both are mistakes in the test itself.
#[must_use]
pub fn run_one(
    name: &str,
    scenarios_exe: &std::path::Path,
    profile: Profile,
    seed: u64,
) -> ScenarioReport {
    #[allow(clippy::expect_used)]
    let scenario = scenarios::find(name).expect("a known scenario name");
    #[allow(clippy::expect_used)]
    let work = tempfile::Builder::new()
        .prefix("scenarios-")
        .tempdir()
        .expect("a temporary directory");
    let report = runner::run_scenario(
        scenario,
        scenarios_exe,
        work.path(),
        seed,
        profile,
        &indicatif::ProgressBar::hidden(),
    );
    if !report.passed() {
        let _ = work.keep();
    }
    report
}
