//! `scenarios`: the end-to-end scenario runner, and every other process of a run (the app under test, fake-ingest).
//!
//! `scenarios [run] [--profile ci|full] [--scenario NAME]... [--seed N] [--report-dir DIR]` runs the suite;
//! `scenarios app ...` is the app under test; `scenarios ingest ...` is fake-ingest. See the crate docs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use scenarios::Profile;
use scenarios::app::{AppArgs, Mode, SinkArg};
use scenarios::runner::{RunOptions, run_suite};

#[derive(Debug, Parser)]
#[command(
    name = "scenarios",
    about = "End-to-end scenarios: crash resilience, overhead, zero loss, zero duplicates"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scenario suite (the default).
    Run(RunArgs),
    /// The app under test (spawned by the harness).
    App(Box<AppArgs>),
    /// fake-ingest (spawned by the harness); the arguments are fake-ingest's own.
    Ingest {
        /// fake-ingest's command-line arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// The profile: `ci` (a few minutes on 2 cores) or `full` (bigger and longer).
    #[arg(long, value_enum, default_value = "ci")]
    profile: Profile,
    /// Run only this scenario (repeatable); all when absent.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Run each scenario with this sink (repeatable); by default every scenario runs with `ingest`, and steady,
    /// crash-loop, ack-lost and cli-burst with every sink.
    #[arg(long = "sink", value_enum)]
    sinks: Vec<SinkArg>,
    /// The seed (printed when chosen at random).
    #[arg(long)]
    seed: Option<u64>,
    /// Where report.json, junit.xml and the work directories go.
    #[arg(long, default_value = "target/scenarios")]
    report_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::App(args)) => {
            // flush-core reports through `tracing`; `RUST_LOG=flush_core=debug` shows it in the app's log file. The
            // OpenTelemetry modes install their own subscriber (the same output, plus the bridge to their logs).
            if !matches!(args.mode, Mode::Otel | Mode::OtelSdk) {
                tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                    .with_writer(std::io::stderr)
                    .init();
            }
            scenarios::app::run(&args).map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Ingest { args }) => run_ingest(args),
        Some(Command::Run(run)) => run_the_suite(&run),
        None => run_the_suite(&cli.run),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("scenarios: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run_the_suite(run: &RunArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("locating the scenarios executable")?;
    let options = RunOptions {
        profile: run.profile,
        scenarios: run.scenarios.clone(),
        seed: run.seed,
        sinks: run.sinks.clone(),
        report_dir: run.report_dir.clone(),
    };
    let suite = run_suite(&exe, &options)?;
    Ok(if suite.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_ingest(args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let mut argv = vec![OsString::from("fake-ingest")];
    argv.extend(args);
    Ok(fake_ingest::cli::run(argv))
}
