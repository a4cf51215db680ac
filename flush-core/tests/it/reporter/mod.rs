//! Reporter integration tests: the whole pipeline against the real fake-ingest server, over loopback.
//!
//! Every test owns its server (port 0) and its temporary directory. Timing assertions are generous correctness
//! bounds only; waits are bounded.

mod accounting;
mod delivery;
mod disk_faults;
mod durability;
mod modes;
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;
mod sink_wire;
mod sinks;
mod spooled;
#[cfg(feature = "tracing")]
mod tracing_layer;

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::Path;
use std::time::{Duration, Instant};

use fake_ingest::{Config as ServerConfig, FaultPlan, Server};
use flush_core::{BreakerPolicy, Config, ConfigBuilder, MemoryLimits, Reporter, RetryPolicy};

/// A fake-ingest server with the fault plan `rules` (a JSON array).
fn server(rules: &str) -> Server {
    let faults =
        FaultPlan::from_json(&format!(r#"{{"rules": {rules}}}"#)).expect("a valid fault plan");
    Server::start_blocking(ServerConfig {
        faults,
        ..ServerConfig::default()
    })
    .expect("the fake server starts")
}

/// Fast retries, a quick breaker and a short poll, so the tests run in milliseconds.
fn fast(builder: ConfigBuilder) -> ConfigBuilder {
    builder
        .retry(RetryPolicy {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_millis(100),
        })
        .breaker(BreakerPolicy {
            failure_threshold: NonZeroU32::new(50).unwrap(),
            cooldown: Duration::from_millis(200),
            max_cooldown: Duration::from_secs(1),
            probe_events: NonZeroUsize::new(1).unwrap(),
        })
        .poll_interval(Duration::from_millis(5))
        .request_timeout(Duration::from_secs(5))
}

/// A memory-only configuration against `server`.
fn memory_config(server: &Server) -> ConfigBuilder {
    fast(
        Config::builder(ingest_url(server))
            .memory_only(MemoryLimits::default())
            .distinct_id("test-install"),
    )
}

/// A spool configuration in `dir` against `server`.
fn spool_config(server: &Server, dir: &Path) -> ConfigBuilder {
    fast(Config::builder(ingest_url(server)).spool_dir(dir))
}

/// The server's `/ingest` route: the default sink posts to its endpoint as written.
fn ingest_url(server: &Server) -> String {
    format!("{}/ingest", server.url())
}

/// Starts a reporter with the configuration `builder` builds.
fn start(builder: ConfigBuilder) -> Reporter {
    Reporter::start(builder.build().unwrap()).unwrap()
}

/// Polls `condition` every 5 ms until it holds or `limit` passes; returns whether it held.
fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (bounded) until the sender thread has woken `ticks` more times, each time deciding whether to send: after
/// this, "nothing was sent" means it had its chances and chose not to.
fn wait_for_sender_ticks(reporter: &Reporter, ticks: u64) {
    let target = reporter.stats().sender_ticks + ticks;
    assert!(
        wait_until(Duration::from_secs(30), || reporter.stats().sender_ticks
            >= target),
        "the sender does not tick"
    );
}

fn batch_size(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}
