//! The `fake-ingest` command line: parses the flags, starts the server, prints `listening on http://HOST:PORT` on
//! stdout (then `otlp listening on http://HOST:PORT` with `--otlp-listen` and `otlp grpc listening on
//! http://HOST:PORT` with `--otlp-grpc-listen`) and serves until Ctrl-C or SIGTERM. Logs go to stderr (`RUST_LOG` filters them; default `info`).
//!
//! Exit codes: 0 after a clean stop, 2 for a bad flag or a bad fault-plan file, 1 for any other startup failure.
//!
//! `fake-ingest export --data-dir DIR` prints the events captured in a (stopped) server's data directory as NDJSON
//! (`--format otlp-json`: its OTLP records as OTLP/JSON export requests) instead of serving (exit code 1 when the directory cannot be read).
//!
//! It lives in the library, not only in `main.rs`, so that other binaries can run the very same server as a
//! separate process: the `scenarios` harness is one multi-call executable whose `ingest` subcommand calls [`run`].

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::{
    Action, Config, CrashMode, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_REQUESTS_KEPT,
    DEFAULT_UPSTREAM_TIMEOUT, FaultPlan, Latency, MAX_LATENCY_MS, MAX_RETRY_AFTER_SECS, Rule,
    Server, When,
};
use anyhow::Context;
use clap::Parser;

/// A fake telemetry ingest server: captures, dedupes and injects faults deterministically.
///
/// Protocol: docs/PROTOCOL.md. Fault plans and shorthands: docs/FAULTS.md. Control API: /_fake/.
#[derive(Debug, Parser)]
#[command(name = "fake-ingest", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Seed of every fault decision: the same seed and requests give the same decisions.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Fault plan file (JSON, docs/FAULTS.md); shorthand rules are appended after its rules.
    #[arg(long, value_name = "PLAN.json")]
    faults: Option<PathBuf>,
    /// Persist every stored batch here (fsynced before the 2xx) and replay it on start.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Largest request body in bytes, before and after decompression.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES, value_parser = parse_positive)]
    max_body_bytes: usize,
    /// Also serve every route on this address, for OTLP/HTTP exporters (conventionally 127.0.0.1:4318); prints a
    /// second line, `otlp listening on http://HOST:PORT`.
    #[arg(long, value_name = "ADDR")]
    otlp_listen: Option<SocketAddr>,
    /// Serve the OTLP/gRPC logs, traces and metrics services on this address (conventionally 127.0.0.1:4317); prints
    /// a line `otlp grpc listening on http://HOST:PORT`.
    #[arg(long, value_name = "ADDR")]
    otlp_grpc_listen: Option<SocketAddr>,
    /// Proxy mode: forward each data request the fault plan lets through to storage to this backend
    /// (http://HOST:PORT[/prefix]) and relay its answer; injected statuses, resets before storing and hangs never
    /// reach it.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// Proxy mode for --otlp-grpc-listen: forward its calls the fault plan lets through to storage to this
    /// OTLP/gRPC backend (http://HOST:PORT) and relay its answer.
    #[arg(long, value_name = "URL")]
    upstream_grpc: Option<String>,
    /// Proxy mode: how long to wait for the upstream's answer before answering 504.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_UPSTREAM_TIMEOUT.as_millis() as u64)]
    upstream_timeout_ms: u64,
    /// How many requests the request log (GET /_fake/requests) keeps; older ones are dropped and counted.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REQUESTS_KEPT)]
    max_requests_kept: usize,
    /// Keep at most N captured events in memory; older ones are evicted and counted (dedupe stays exact).
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    max_events_kept: Option<usize>,

    /// Shorthand: answer this status, optionally at a rate (e.g. 503 or 503@0.2).
    #[arg(long, value_name = "CODE[@RATE]", value_parser = parse_status, help_heading = "Fault shorthands")]
    status: Option<(u16, f64)>,
    /// Shorthand: the Retry-After seconds sent with --status and --outage-ms.
    #[arg(long, value_name = "SECS", value_parser = parse_retry_after, help_heading = "Fault shorthands")]
    retry_after: Option<u64>,
    /// Shorthand: store the batch, then reset the connection (lost acknowledgement), at this rate.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = "Fault shorthands")]
    reset_after_store: Option<f64>,
    /// Shorthand: reset the connection without storing, at this rate.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = "Fault shorthands")]
    reset_before_store: Option<f64>,
    /// Shorthand: read the request and never answer, at this rate.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = "Fault shorthands")]
    hang: Option<f64>,
    /// Shorthand: abort the process on the first request after the Nth (before storing it).
    #[arg(long, value_name = "N", help_heading = "Fault shorthands")]
    crash_after: Option<u64>,
    /// Shorthand: answer 503 to every request in this window since start (e.g. 0..5000).
    #[arg(long, value_name = "A..B", value_parser = parse_range, help_heading = "Fault shorthands")]
    outage_ms: Option<(u64, u64)>,
    /// Shorthand: delay responses by a fixed time or a uniform range in ms (e.g. 20 or 5..50).
    #[arg(long, value_name = "MS|A..B", value_parser = parse_latency, help_heading = "Fault shorthands")]
    latency_ms: Option<(u64, u64)>,
}

/// What to do instead of serving.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print every event captured in a data directory, one JSON object a line (as GET /_fake/events?format=ndjson),
    /// for a stopped server's data (the directory is only read: neither locked nor repaired).
    Export {
        /// The server's --data-dir.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// ndjson: one captured event a line; otlp-json: the OTLP records as OTLP/JSON export requests, one a line
        /// (as GET /_fake/events?format=otlp-json).
        #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
        format: ExportFormat,
    },
}

/// What `fake-ingest export` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    /// One captured event a line.
    Ndjson,
    /// The OTLP records as OTLP/JSON export requests, one a line.
    OtlpJson,
}

/// Runs the `fake-ingest` command line with these arguments (the first is the program name, as in
/// [`std::env::args_os`]) until Ctrl-C or SIGTERM, and returns the process exit code.
///
/// `--help` and `--version` print and exit the process with code 0; a bad flag exits it with code 2.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).unwrap_or_else(|error| error.exit());
    if let Some(Command::Export { data_dir, format }) = &cli.command {
        return match export(data_dir, *format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    init_logs();
    let config = match config_from(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn export(data_dir: &std::path::Path, format: ExportFormat) -> anyhow::Result<()> {
    /// As many events per OTLP/JSON line as the server's `format=otlp-json` stream puts in one.
    const CHUNK: usize = 1_000;
    let events = crate::store::Store::export(data_dir)
        .with_context(|| format!("cannot export {}", data_dir.display()))?;
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        ExportFormat::Ndjson => {
            for event in &events {
                serde_json::to_writer(&mut stdout, event).context("cannot encode an event")?;
                stdout.write_all(b"\n").context("cannot write to stdout")?;
            }
        }
        ExportFormat::OtlpJson => {
            for chunk in events.chunks(CHUNK) {
                for request in crate::otlp::otlp_json_requests(chunk) {
                    serde_json::to_writer(&mut stdout, &request)
                        .context("cannot encode an export request")?;
                    stdout.write_all(b"\n").context("cannot write to stdout")?;
                }
            }
        }
    }
    stdout.flush().context("cannot write to stdout")?;
    Ok(())
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colors = std::io::stderr().is_terminal();
    // A host binary may have installed its own subscriber already; then its choice stands.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colors)
        .try_init();
}

/// The config the flags describe; every error here is a usage error (exit code 2).
fn config_from(cli: &Cli) -> anyhow::Result<Config> {
    let mut plan = match &cli.faults {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("--faults {}: cannot read the fault plan", path.display())
            })?;
            FaultPlan::from_json(&text)
                .with_context(|| format!("--faults {}: invalid fault plan", path.display()))?
        }
        None => FaultPlan::none(),
    };
    plan.rules.extend(shorthand_rules(cli));
    let config = Config {
        listen: cli.listen,
        seed: cli.seed,
        faults: plan,
        data_dir: cli.data_dir.clone(),
        max_body_bytes: cli.max_body_bytes,
        otlp_listen: cli.otlp_listen,
        otlp_grpc_listen: cli.otlp_grpc_listen,
        upstream: cli.upstream.clone(),
        upstream_grpc: cli.upstream_grpc.clone(),
        upstream_timeout: std::time::Duration::from_millis(cli.upstream_timeout_ms),
        max_requests_kept: cli.max_requests_kept,
        max_events_kept: cli.max_events_kept,
    };
    config.validate().context("invalid flags")?;
    Ok(config)
}

/// The rules of the shorthand flags, in a fixed order; `--latency-ms` delays each of them and every other request.
fn shorthand_rules(cli: &Cli) -> Vec<Rule> {
    let rate = |p: f64| When {
        probability: (p < 1.0).then_some(p),
        ..When::default()
    };
    let mut rules = Vec::new();
    if let Some((a, b)) = cli.outage_ms {
        let when = When {
            between_ms: Some([a, b]),
            ..When::default()
        };
        let then = Action::Status {
            status: 503,
            retry_after_secs: cli.retry_after,
            retry_after_as_date: false,
        };
        rules.push(Rule {
            when,
            latency: None,
            then,
        });
    }
    if let Some(n) = cli.crash_after {
        rules.push(Rule {
            when: When {
                after: Some(n),
                ..When::default()
            },
            latency: None,
            then: Action::CrashBeforeStore,
        });
    }
    if let Some((status, p)) = cli.status {
        rules.push(Rule {
            when: rate(p),
            latency: None,
            then: Action::Status {
                status,
                retry_after_secs: cli.retry_after,
                retry_after_as_date: false,
            },
        });
    }
    for (flag, then) in [
        (cli.reset_before_store, Action::ResetBeforeStore),
        (cli.reset_after_store, Action::ResetAfterStore),
        (cli.hang, Action::Hang),
    ] {
        if let Some(p) = flag {
            rules.push(Rule {
                when: rate(p),
                latency: None,
                then,
            });
        }
    }
    if let Some((a, b)) = cli.latency_ms {
        let latency = if a == b {
            Latency::FixedMs(a)
        } else {
            Latency::UniformMs([a, b])
        };
        for rule in &mut rules {
            rule.latency = Some(latency.clone());
        }
        rules.push(Rule {
            when: When::default(),
            latency: Some(latency),
            then: Action::Store,
        });
    }
    rules
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let server = Server::start_with_crash_mode(config, CrashMode::AbortProcess)
            .await
            .context("cannot start")?;
        println!("listening on {}", server.url());
        if let Some(otlp_url) = server.otlp_url() {
            println!("otlp listening on {otlp_url}");
        }
        if let Some(grpc_url) = server.otlp_grpc_url() {
            println!("otlp grpc listening on {grpc_url}");
        }
        std::io::stdout()
            .flush()
            .context("cannot write the startup line")?;
        tracing::info!(url = %server.url(), "fake-ingest is serving; Ctrl-C stops it");
        wait_for_stop_signal().await;
        tracing::info!("stopping");
        server.shutdown();
        Ok(())
    })
}

async fn wait_for_stop_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(terminate) => {
                terminate.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

fn parse_positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(error) => Err(error.to_string()),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        Ok(p) => Err(format!("rate {p} is not in [0, 1]")),
        Err(error) => Err(format!("not a rate in [0, 1]: {error}")),
    }
}

fn parse_status(text: &str) -> Result<(u16, f64), String> {
    let (code, rate) = match text.split_once('@') {
        Some((code, rate)) => (code, parse_rate(rate)?),
        None => (text, 1.0),
    };
    match code.parse::<u16>() {
        Ok(code) if (400..=599).contains(&code) => Ok((code, rate)),
        _ => Err(format!("\"{code}\" is not a 4xx or 5xx status code")),
    }
}

fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("\"{text}\" is not a range A..B"))?;
    let parse = |n: &str| {
        n.trim()
            .parse::<u64>()
            .map_err(|error| format!("\"{n}\": {error}"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if a > b {
        return Err(format!("{a}..{b} is an empty range"));
    }
    Ok((a, b))
}

fn parse_latency(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = if text.contains("..") {
        parse_range(text)?
    } else {
        let ms = text
            .parse::<u64>()
            .map_err(|error| format!("\"{text}\": {error}"))?;
        (ms, ms)
    };
    if b > MAX_LATENCY_MS {
        return Err(format!("{b} ms is more than a day ({MAX_LATENCY_MS} ms)"));
    }
    Ok((a, b))
}

fn parse_retry_after(text: &str) -> Result<u64, String> {
    let secs = text
        .parse::<u64>()
        .map_err(|error| format!("\"{text}\": {error}"))?;
    if secs > MAX_RETRY_AFTER_SECS {
        return Err(format!(
            "{secs} s is more than a day ({MAX_RETRY_AFTER_SECS} s)"
        ));
    }
    Ok(secs)
}
