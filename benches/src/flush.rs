//! Setting up flush-core for the benchmarks: the sample event as a [`flush_core::Event`], a reporter in a given
//! state (idle, with a spooled backlog, against a slow or hanging server), and backlogs built with the spool API.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use flush_core::spool::{Spool, SpoolConfig, SyncPolicy};
use flush_core::{Config, Event, Reporter};
use tempfile::TempDir;

use crate::sample::{SAMPLE_DISTINCT_ID, SAMPLE_EVENT_NAME, sample_event};
use crate::util::temp_dir;

/// The sample event as flush-core's [`Event`]: the same name and three properties (the `distinct_id` is the
/// reporter's, set in its config, as an application would).
pub fn sample_flush_event() -> Event {
    let sample = sample_event();
    let mut event = Event::new(SAMPLE_EVENT_NAME);
    for (key, value) in sample.properties {
        event = event.with(key, value);
    }
    event
}

/// A spool configuration in `dir` for benchmarks: the given sync policy and a size budget (8 GiB) that a backlog
/// built here never exceeds, so retention never drops anything during a measurement.
pub fn bench_spool_config(dir: &Path, sync: SyncPolicy) -> SpoolConfig {
    let mut config = SpoolConfig::new(dir);
    config.sync = sync;
    config.max_total_bytes = 8 << 30;
    config
}

/// A benchmark spool configuration in `dir` (no fsync, [`bench_spool_config`]) whose spool already holds a backlog of
/// `events` pending sample events ([`fill_spool`]), written before any reporter opens it.
///
/// # Panics
/// If the spool cannot be opened or filled: a benchmark cannot run without its backlog.
pub fn spool_with_backlog(dir: &Path, events: usize) -> SpoolConfig {
    let spool = bench_spool_config(dir, SyncPolicy::Never);
    let mut writer =
        Spool::open(spool.clone()).unwrap_or_else(|error| panic!("open the spool: {error}"));
    fill_spool(&mut writer, events);
    spool
}

/// Appends `events` freshly stamped sample events (the reporter's wire form) to `spool`, 1000 per append.
///
/// # Panics
/// If the spool fails to append: a benchmark cannot run without its backlog.
pub fn fill_spool(spool: &mut Spool, events: usize) {
    let event = sample_event();
    let mut records: Vec<Vec<u8>> = Vec::with_capacity(1000);
    let mut remaining = events;
    while remaining > 0 {
        let n = remaining.min(1000);
        records.clear();
        records.extend((0..n).map(|_| event.stamp_and_serialize()));
        spool
            .append(&records)
            .unwrap_or_else(|error| panic!("append the backlog: {error}"));
        remaining -= n;
    }
}

/// The state the reporter is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReporterState {
    /// A fake-ingest that answers at once; the workers keep up.
    Idle,
    /// A backlog of pending events already in the spool, and no server (connections are refused), so the backlog
    /// stays for the whole measurement.
    Backlog {
        /// Events spooled before the reporter starts.
        events: usize,
    },
    /// A fake-ingest that answers every request after 500 ms.
    Slow500ms,
    /// A fake-ingest that reads every request and never answers.
    Hanging,
}

impl ReporterState {
    /// A short name for benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Backlog { .. } => "backlog_1m",
            Self::Slow500ms => "server_slow_500ms",
            Self::Hanging => "server_hanging",
        }
    }

    fn fault_plan(self) -> Option<&'static str> {
        match self {
            Self::Idle => Some(r#"{"rules": []}"#),
            Self::Slow500ms => Some(r#"{"rules": [{"latency": {"fixed_ms": 500}}]}"#),
            Self::Hanging => Some(r#"{"rules": [{"then": "hang"}]}"#),
            Self::Backlog { .. } => None,
        }
    }
}

/// A running reporter in a given state, with its server (if any) and its temporary spool directory.
#[derive(Debug)]
pub struct ReporterUnderTest {
    /// The reporter.
    pub reporter: Reporter,
    server: Option<fake_ingest::Server>,
    _dir: TempDir,
}

impl ReporterUnderTest {
    /// Starts a reporter (spool without fsync, 1 s request timeout, other settings default) in `state`. The
    /// `distinct_id` is the sample's.
    ///
    /// # Panics
    /// If the server, the backlog or the reporter cannot be set up.
    pub fn start(state: ReporterState) -> Self {
        let dir = temp_dir("reporter");
        let spool_dir = dir.path().join("spool");
        let spool = match state {
            ReporterState::Backlog { events } => spool_with_backlog(&spool_dir, events),
            _ => bench_spool_config(&spool_dir, SyncPolicy::Never),
        };
        let server = state.fault_plan().map(|plan| {
            let faults = fake_ingest::FaultPlan::from_json(plan)
                .unwrap_or_else(|error| panic!("fault plan: {error}"));
            fake_ingest::Server::start_blocking(fake_ingest::Config {
                faults,
                ..Default::default()
            })
            .unwrap_or_else(|error| panic!("start fake-ingest: {error}"))
        });
        let endpoint = match &server {
            Some(server) => format!("{}/ingest", server.url()),
            None => format!("http://{}/ingest", refused_address()),
        };
        let config = Config::builder(endpoint)
            .spool(spool)
            .distinct_id(SAMPLE_DISTINCT_ID)
            .request_timeout(Duration::from_secs(1))
            .build()
            .unwrap_or_else(|error| panic!("reporter config: {error}"));
        let reporter =
            Reporter::start(config).unwrap_or_else(|error| panic!("start the reporter: {error}"));
        Self {
            reporter,
            server,
            _dir: dir,
        }
    }

    /// Waits (blocking) until everything recorded is in the spool.
    ///
    /// # Panics
    /// If the spool fails.
    pub fn checkpoint(&self) {
        self.reporter
            .checkpoint()
            .unwrap_or_else(|error| panic!("checkpoint: {error}"));
    }

    /// Shuts the reporter down within a second, then the server.
    pub fn stop(self) {
        let _ = self.reporter.shutdown(Duration::from_secs(1));
        if let Some(server) = self.server {
            server.shutdown();
        }
    }
}

/// A loopback address nothing listens on (a port bound and released at once).
fn refused_address() -> String {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_or_else(|_| "127.0.0.1:9".to_owned(), |addr| addr.to_string())
}
