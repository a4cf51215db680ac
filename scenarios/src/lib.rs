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
//! - `otel_app`: the app of the otel-app scenario, instrumented with `tracing` and the OpenTelemetry API only.
//! - `ledger`: the ground truth each app writes, which survives SIGKILL (its module doc is the format).
//! - `verdict`: ledgers against the server: delivered, lost, loss window, dropped, duplicates; the [`Promise`]s.
//! - `report`: the tables, `report.json` and `junit.xml`.
//! - `runner`: runs scenarios, the progress display, the re-run command.
//! - `scenarios`: one file per scenario, and the registry.
//!
//! ```no_run
//! // Run one scenario at its CI size with the PostHog sink, as `scenarios run --scenario steady --sink posthog` does.
//! use scenarios::Profile;
//! use scenarios::app::SinkArg;
//! use scenarios::runner::{RunOptions, run_suite};
//! let options = RunOptions {
//!     profile: Profile::Ci,
//!     scenarios: vec!["steady".to_owned()],
//!     seed: Some(1),
//!     sinks: vec![SinkArg::Posthog],
//!     report_dir: "target/scenarios".into(),
//! };
//! let suite = run_suite(std::path::Path::new("target/release/scenarios"), &options)?;
//! assert!(suite.passed, "{}", suite.summary());
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod app;
mod harness;
pub mod ingest;
pub mod ledger;
pub mod otel_app;
pub mod process;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod verdict;

pub use harness::{Ctx, Profile};
pub use report::{ScenarioReport, SuiteReport};
pub use verdict::Promise;
