//! The per-scenario context: a work directory, the seed, fake-ingest and app processes, and the report being filled.
//!
//! A scenario is a function of a [`Ctx`]: it starts fake-ingest with its fault plan, spawns app processes (killing and
//! restarting them as it likes), hands every finished process back with [`Ctx::collect`], and ends with
//! [`Ctx::drain_and_judge`], which delivers what is left in the spool and compares the ledgers with the server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use crate::app::{AppArgs, Mode, SinkArg};
use crate::ingest::{FakeIngest, FaultPlanJson, match_key};
use crate::process::{AppProcess, ExitInfo};
use crate::report::ScenarioReport;
use crate::verdict::{Promise, ServerCapture, Violation, judge};

/// How a process's shutdown went, from its ledger and the harness's view of its exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownTiming {
    /// The deadline it passed to `shutdown`, milliseconds.
    pub deadline_ms: u64,
    /// From the `shutdown` call to its return, measured inside the process, microseconds.
    pub shutdown_us: u64,
    /// Of that, how long past the deadline it waited for the queue to reach the spool (as the library reports it),
    /// microseconds.
    pub store_overrun_us: u64,
    /// From its last ledger line (written right after `shutdown` returned) to the moment the harness saw it gone,
    /// milliseconds: process teardown plus the harness's own polling and scheduling, which no library controls.
    pub teardown_ms: u64,
}

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Sized for CI: the whole suite in a few minutes on 2 cores.
    Ci,
    /// Bigger and longer.
    Full,
}

impl Profile {
    /// `ci` or `full`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ci => "ci",
            Self::Full => "full",
        }
    }

    /// Picks the value for this profile.
    #[must_use]
    pub fn pick<T>(self, ci: T, full: T) -> T {
        match self {
            Self::Ci => ci,
            Self::Full => full,
        }
    }
}

/// How long the final drain may take to deliver the spool's backlog.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The context one scenario runs in.
#[derive(Debug)]
pub struct Ctx {
    /// The scenario's name.
    pub name: &'static str,
    /// The scenarios executable (every process of a run is this executable).
    pub exe: PathBuf,
    /// The scenario's work directory (spools, ledgers, logs, fake-ingest data).
    pub dir: PathBuf,
    /// The seed.
    pub seed: u64,
    /// The profile.
    pub profile: Profile,
    /// The backend every app of the scenario delivers to.
    pub sink: SinkArg,
    /// The harness's own seeded choices (kill moments, ...).
    pub rng: fastrand::Rng,
    /// The report being filled.
    pub report: ScenarioReport,
    instances: u32,
    runs: Vec<crate::verdict::ProcessRun>,
    histogram: Histogram<u64>,
    progress: ProgressBar,
}

impl Ctx {
    /// A context with a fresh work directory `dir`.
    ///
    /// # Errors
    /// When the work directory cannot be created.
    pub fn new(
        name: &'static str,
        exe: &Path,
        dir: &Path,
        seed: u64,
        profile: Profile,
        sink: SinkArg,
        progress: ProgressBar,
    ) -> anyhow::Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir.join("ledgers"))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::create_dir_all(dir.join("logs")).context("creating the log directory")?;
        Ok(Self {
            name,
            exe: exe.to_owned(),
            dir: dir.to_owned(),
            seed,
            profile,
            sink,
            rng: fastrand::Rng::with_seed(seed ^ fnv(name)),
            report: ScenarioReport {
                name: name.to_owned(),
                seed,
                profile: profile.name().to_owned(),
                sink: sink.label(),
                ..ScenarioReport::default()
            },
            instances: 0,
            runs: Vec::new(),
            histogram: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .context("creating the histogram")?,
            progress,
        })
    }

    /// Shows what the scenario is doing now on the progress display.
    pub fn step(&self, message: impl Into<String>) {
        self.progress
            .set_message(format!("{}: {}", self.name, message.into()));
    }

    /// Picks a size for the profile.
    #[must_use]
    pub fn size<T>(&self, ci: T, full: T) -> T {
        self.profile.pick(ci, full)
    }

    /// A path inside the work directory.
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts fake-ingest with `plan` (its data, plan and log under `<dir>/ingest`).
    ///
    /// # Errors
    /// When it does not start.
    pub fn start_ingest(&self, plan: &FaultPlanJson) -> anyhow::Result<FakeIngest> {
        self.step("starting fake-ingest");
        FakeIngest::start(&self.exe, &self.path("ingest"), self.seed, plan)
    }

    /// App arguments for a new process: a fresh instance label, ledger and id prefix, the given spool.
    pub fn app_args(&mut self, mode: Mode, endpoint: &str, spool: &Path) -> AppArgs {
        self.instances += 1;
        let instance = self.instances;
        let mut args = AppArgs::new(
            mode,
            spool.to_owned(),
            endpoint.to_owned(),
            self.dir
                .join("ledgers")
                .join(format!("app-{instance}.jsonl")),
            format!("{}-{instance}", self.name),
        );
        args.seed = self.seed.wrapping_add(u64::from(instance));
        args.sink = self.sink;
        args
    }

    /// Spawns an app process.
    ///
    /// # Errors
    /// When it cannot be spawned.
    pub fn spawn(&self, args: &AppArgs) -> anyhow::Result<AppProcess> {
        let label = args.ledger.file_stem().map_or_else(
            || "app".to_owned(),
            |stem| stem.to_string_lossy().into_owned(),
        );
        AppProcess::spawn(&self.exe, &label, args, &self.path("logs"))
    }

    /// Spawns an app process, waits for it to exit (at most `limit`) and takes it into the verdict.
    ///
    /// # Errors
    /// As [`Ctx::spawn`], [`AppProcess::wait`] and [`Ctx::collect`].
    pub(crate) fn run_app(&mut self, args: &AppArgs, limit: Duration) -> anyhow::Result<()> {
        let mut app = self.spawn(args)?;
        app.wait(limit)?;
        self.collect(app)?;
        Ok(())
    }

    /// Takes a finished (exited or killed) process into the verdict; returns its exit and, if it shut down cleanly,
    /// how long its `shutdown` took inside the process and how long its teardown took after that.
    ///
    /// # Errors
    /// When its ledger cannot be read.
    pub fn collect(
        &mut self,
        process: AppProcess,
    ) -> anyhow::Result<(Option<ExitInfo>, Option<ShutdownTiming>)> {
        let harness_peak = process.peak_rss_kib();
        let (run, exit) = process.finish()?;
        if let (Some(status), false) = (exit.map(|exit| exit.status), run.killed)
            && !status.success()
        {
            self.violate(
                Promise::ScenarioCompleted,
                format!(
                    "{} exited with {status} (see logs/{}.log)",
                    run.label, run.label
                ),
            );
        }
        let mut timing = None;
        if let (Some((_began_ms, deadline_ms)), Some(report), Some(exit), false) = (
            run.ledger.shutdown_begin(),
            run.ledger.exit(),
            exit,
            run.killed,
        ) {
            timing = Some(ShutdownTiming {
                deadline_ms,
                shutdown_us: report
                    .shutdown_us
                    .unwrap_or(report.shutdown_ms.saturating_mul(1_000)),
                store_overrun_us: report.store_overrun_us.unwrap_or(0),
                teardown_ms: exit.at_ms.saturating_sub(report.at_ms),
            });
        }
        if let Some(report) = run.ledger.exit() {
            for &(value, count) in &report.record_ns {
                let _ = self
                    .histogram
                    .record_n(value.clamp(1, self.histogram.high()), count);
            }
            self.report.peak_rss_kib = self.report.peak_rss_kib.max(report.peak_rss_kib);
            self.report.overhead.extend(report.overhead.iter().cloned());
        }
        self.report.peak_rss_kib = self.report.peak_rss_kib.max(harness_peak);
        self.runs.push(run);
        Ok((exit, timing))
    }

    /// The finished runs so far.
    #[must_use]
    pub fn runs(&self) -> &[crate::verdict::ProcessRun] {
        &self.runs
    }

    /// Records a broken promise.
    pub fn violate(&mut self, promise: Promise, detail: impl Into<String>) {
        self.report.violations.push(Violation::new(promise, detail));
    }

    /// Adds a note to the report.
    pub fn note(&mut self, note: impl Into<String>) {
        self.report.notes.push(note.into());
    }

    /// Runs a drain process on `spool` (delivers the backlog, records nothing) and collects it.
    ///
    /// # Errors
    /// When it cannot run or does not exit in time.
    pub fn drain(&mut self, ingest: &FakeIngest, spool: &Path) -> anyhow::Result<()> {
        self.drain_with(ingest, spool, self.sink)
    }

    /// [`Ctx::drain`] through `sink` rather than the scenario's (for a spool one sink of several filled).
    ///
    /// # Errors
    /// As [`Ctx::drain`].
    pub fn drain_with(
        &mut self,
        ingest: &FakeIngest,
        spool: &Path,
        sink: SinkArg,
    ) -> anyhow::Result<()> {
        self.step("draining the spool");
        let mut args = self.app_args(Mode::Drain, &ingest.url(), spool);
        args.sink = sink;
        args.events = 0;
        args.batch_size = 500;
        args.flush_ms = u64::try_from(DRAIN_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        let mut process = self.spawn(&args)?;
        process.wait(DRAIN_TIMEOUT + Duration::from_secs(20))?;
        self.collect(process)?;
        Ok(())
    }

    /// Compares every collected ledger with what the server stored and fills the report.
    ///
    /// # Errors
    /// When the server's control API does not answer.
    pub fn judge(&mut self, ingest: &FakeIngest) -> anyhow::Result<()> {
        self.step("reading what the server stored");
        let (stats, capture) = capture(ingest)?;
        let verdict = judge(&self.runs, &capture);
        if verdict.tally.recorded == 0 {
            self.violate(Promise::ScenarioCompleted, "no app recorded anything");
        }
        self.report.tally = verdict.tally;
        self.report.server_restarts = ingest.starts().saturating_sub(1);
        self.report.violations.extend(verdict.violations);
        if !self.histogram.is_empty() {
            self.report.record_p50_ns = Some(self.histogram.value_at_quantile(0.50));
            self.report.record_p99_ns = Some(self.histogram.value_at_quantile(0.99));
        }
        let faults = &stats.faults;
        let injected = [
            ("status", faults.status),
            ("reset_before_store", faults.reset_before_store),
            ("reset_after_store", faults.reset_after_store),
            ("hang", faults.hang),
            ("crash_before_store", faults.crash_before_store),
            ("crash_after_store", faults.crash_after_store),
            ("latency", faults.latency),
        ];
        let injected: Vec<String> = injected
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        self.note(format!(
            "server: {} data requests ({} on {}), {} events received, {} stored{}",
            stats.requests,
            stats
                .routes
                .get(self.sink.route())
                .map_or(0, |route| route.requests),
            self.sink.route(),
            stats.events_received,
            stats.events_unique,
            if injected.is_empty() {
                String::new()
            } else {
                format!("; injected: {}", injected.join(", "))
            }
        ));
        Ok(())
    }

    /// Drains `spool` and judges: the usual end of a scenario.
    ///
    /// # Errors
    /// As [`Ctx::drain`] and [`Ctx::judge`].
    pub fn drain_and_judge(&mut self, ingest: &FakeIngest, spool: &Path) -> anyhow::Result<()> {
        self.drain(ingest, spool)?;
        self.judge(ingest)
    }

    /// Fails the scenario if some recorded event was neither delivered nor counted; for scenarios where nothing
    /// may be dropped (a healthy server, generous limits).
    pub fn require_everything_delivered(&mut self) {
        if self.report.violations.iter().any(|violation| {
            matches!(
                violation.promise,
                Promise::EveryEventAccounted | Promise::ZeroLoss
            )
        }) {
            return;
        }
        let tally = &self.report.tally;
        let expected = tally.recorded - tally.poison;
        if tally.delivered + tally.loss_window != expected {
            let detail = format!(
                "{} of {expected} events delivered ({} in a kill's loss window, {} dropped)",
                tally.delivered,
                tally.loss_window,
                tally.dropped.values().sum::<u64>()
            );
            self.violate(Promise::EveryEventAccounted, detail);
        }
    }
}

/// What `ingest` stored, as the verdict reads it, and its counters.
///
/// # Errors
/// When the server's control API does not answer.
pub(crate) fn capture(ingest: &FakeIngest) -> anyhow::Result<(fake_ingest::Stats, ServerCapture)> {
    let stats = ingest.stats()?;
    let events = ingest.events()?;
    let capture = ServerCapture {
        stored_keys: events.iter().map(match_key).collect(),
        raw_duplicates: stats.duplicates,
    };
    Ok((stats, capture))
}

/// FNV-1a of a name: mixes the scenario name into its harness seed so scenarios do not share kill moments.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
