//! The runner: runs the chosen scenarios one after another with a progress display, prints a table per scenario,
//! writes `report.json` and `junit.xml`, and says which promises broke and how to re-run.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::app::SinkArg;
use crate::harness::{Ctx, Profile};
use crate::report::{ScenarioReport, SuiteReport};
use crate::scenarios::{ALL, Scenario, find};
use crate::verdict::Promise;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The profile.
    pub profile: Profile,
    /// Scenario names; empty means all.
    pub scenarios: Vec<String>,
    /// The seed; `None` picks one (and prints it).
    pub seed: Option<u64>,
    /// The sinks to run each scenario with; empty means the default: every scenario with the ingest sink, and the
    /// scenarios marked [`every_sink`](Scenario::every_sink) with each of the others too.
    pub sinks: Vec<SinkArg>,
    /// Where `report.json`, `junit.xml` and the work directories go.
    pub report_dir: PathBuf,
}

/// The command that re-runs one scenario with the same seed and profile.
#[must_use]
pub fn rerun_command(profile: Profile, name: &str, sink: SinkArg, seed: u64) -> String {
    format!(
        "cargo run --release -p scenarios -- run --profile {} --scenario {name} --sink {} --seed {seed}",
        profile.name(),
        sink.label()
    )
}

/// Runs the suite and writes the report files; the caller decides the exit code from `passed`.
///
/// # Errors
/// When a scenario name is unknown or the report cannot be written.
pub fn run_suite(scenarios_exe: &Path, options: &RunOptions) -> anyhow::Result<SuiteReport> {
    let chosen: Vec<&Scenario> = if options.scenarios.is_empty() {
        ALL.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for name in &options.scenarios {
            match find(name) {
                Some(scenario) => chosen.push(scenario),
                None => {
                    let known: Vec<&str> = ALL.iter().map(|scenario| scenario.name).collect();
                    bail!("unknown scenario {name:?}; known: {}", known.join(", "));
                }
            }
        }
        chosen
    };
    if options.sinks.contains(&SinkArg::OtlpTraces) {
        bail!("the otlp-traces sink carries spans only; the otel-app scenario uses it on its own");
    }
    let runs: Vec<(&Scenario, SinkArg)> = chosen
        .into_iter()
        .flat_map(|scenario| {
            let sinks: Vec<SinkArg> = if !options.sinks.is_empty() {
                options.sinks.clone()
            } else if scenario.every_sink {
                SinkArg::ALL.to_vec()
            } else {
                vec![SinkArg::Ingest]
            };
            sinks.into_iter().map(move |sink| (scenario, sink))
        })
        .collect();
    let seed = options.seed.unwrap_or_else(|| fastrand::u64(..1_000_000));
    eprintln!(
        "scenarios: profile {}, seed {seed}, {} scenario runs",
        options.profile.name(),
        runs.len()
    );
    let progress =
        ProgressBar::with_draw_target(Some(runs.len() as u64), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        progress.set_draw_target(ProgressDrawTarget::hidden());
    }
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let mut reports = Vec::new();
    for (scenario, sink) in runs {
        let report = run_scenario(
            scenario,
            sink,
            scenarios_exe,
            &options.report_dir.join("work"),
            seed,
            options.profile,
            &progress,
        );
        progress.suspend(|| println!("{}", report.table()));
        progress.inc(1);
        reports.push(report);
    }
    progress.finish_and_clear();
    let suite = SuiteReport::new(
        options.profile.name(),
        seed,
        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        reports,
    );
    suite.write(&options.report_dir)?;
    println!("{}", suite.summary());
    println!(
        "reports: {}, {}",
        options.report_dir.join("report.json").display(),
        options.report_dir.join("junit.xml").display()
    );
    Ok(suite)
}

/// Runs one scenario in `<work_root>/<name>`; a harness error becomes a broken
/// [`ScenarioCompleted`](Promise::ScenarioCompleted) promise, never a panic. The work directory is removed when the
/// scenario passes and kept (its path noted) when it fails.
#[must_use]
pub fn run_scenario(
    scenario: &Scenario,
    sink: SinkArg,
    scenarios_exe: &Path,
    work_root: &Path,
    seed: u64,
    profile: Profile,
    progress: &ProgressBar,
) -> ScenarioReport {
    let started = Instant::now();
    let dir = work_root.join(format!("{}-{}", scenario.name, sink.label()));
    let rerun = rerun_command(profile, scenario.name, sink, seed);
    let mut report = match Ctx::new(
        scenario.name,
        scenarios_exe,
        &dir,
        seed,
        profile,
        sink,
        progress.clone(),
    ) {
        Ok(mut ctx) => {
            if let Err(error) = (scenario.run)(&mut ctx) {
                ctx.violate(Promise::ScenarioCompleted, format!("{error:#}"));
            }
            ctx.report
        }
        Err(error) => {
            let mut report = ScenarioReport {
                name: scenario.name.to_owned(),
                seed,
                ..ScenarioReport::default()
            };
            report.violations.push(crate::verdict::Violation::new(
                Promise::ScenarioCompleted,
                format!("{error:#}"),
            ));
            report
        }
    };
    report.profile = profile.name().to_owned();
    report.rerun = rerun;
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if report.passed() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        report
            .notes
            .push(format!("work directory kept: {}", dir.display()));
    }
    report
}
