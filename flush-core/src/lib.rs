//! flush-core: record telemetry events without blocking, keep them in a crash-safe on-disk spool (or,
//! if the application chooses, only in memory) and deliver them at least once, with a per-event
//! idempotency key, to an HTTP backend: our own `/ingest`, PostHog or an OpenTelemetry Collector (OTLP/HTTP logs
//! and traces),
//! chosen by a [`Sink`].
//!
//! Build a [`Config`], start a [`Reporter`], call [`Reporter::record`] from anywhere (it never
//! blocks, never fails, never panics), and tell the reporter about the program's natural
//! boundaries: [`idle`](Reporter::idle), [`checkpoint`](Reporter::checkpoint),
//! [`flush`](Reporter::flush), [`shutdown`](Reporter::shutdown). What happened is in
//! [`Reporter::stats`]; nothing is ever printed or thrown at the application.
//!
//! # Where unsent events wait: chosen, never defaulted
//!
//! [`ConfigBuilder::build`] fails with [`ConfigError::StorageNotChosen`] unless the configuration
//! says where events wait until the server acknowledges them:
//! - [`ConfigBuilder::spool_dir`] (or [`ConfigBuilder::spool`]): the crash-safe spool on disk. What
//!   a [`checkpoint`](Reporter::checkpoint) returned for survives a crash, and what a run does not
//!   send, the next run that opens the directory sends. The examples below use it.
//! - [`ConfigBuilder::memory_only`]: a bounded memory store, for programs that must not write to
//!   disk. Nothing survives the process: what is not acknowledged when it exits is lost (the final
//!   [`Stats::pending`] counts it), `checkpoint` only waits until events are in the store, and
//!   rejected events are counted without a dead-letter file.
//!
//! ```
//! use flush_core::{Config, ConfigError, MemoryLimits};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let undecided = Config::builder("https://telemetry.example.com").build();
//! assert!(matches!(undecided, Err(ConfigError::StorageNotChosen)));
//!
//! let config = Config::builder("https://telemetry.example.com")
//!     .memory_only(MemoryLimits::default())
//!     .distinct_id("user-7") // There is no directory to keep a generated installation id in.
//!     .build()?;
//! assert_eq!(config.spool_dir(), None);
//! # Ok(())
//! # }
//! ```
//!
//! # A chat REPL: send only while the user is typing
//!
//! ```
//! use std::time::Duration;
//! use flush_core::{Config, Event, FlushMode, Reporter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())?;
//! # let endpoint = format!("{}/ingest", server.url());
//! # let spool = tempfile::tempdir()?;
//! # let spool_dir = spool.path();
//! let config = Config::builder(endpoint)
//!     .spool_dir(spool_dir)
//!     .flush_mode(FlushMode::idle_only())
//!     .build()?;
//! let telemetry = Reporter::start(config)?;
//!
//! for message in ["hello", "what are the layers?", "exit"] {
//!     telemetry.idle(); // The prompt is about to show: send what the last turn recorded.
//!     // let message = prompt("You: ");   (the user types; the reporter sends meanwhile)
//!     telemetry.record(Event::new("chat_message").with("length", message.len()));
//!     // ... stream the answer: nothing goes to the network meanwhile ...
//! }
//! let _ = telemetry.shutdown(Duration::from_secs(2)); // The rest waits in the spool.
//! # assert_eq!(server.stats().events_unique, 3);
//! # Ok(())
//! # }
//! ```
//!
//! # A service: batches in the background, sessions
//!
//! ```
//! use std::time::Duration;
//! use flush_core::{Config, Event, Reporter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())?;
//! # let endpoint = format!("{}/ingest", server.url());
//! # let spool = tempfile::tempdir()?;
//! # let spool_dir = spool.path();
//! // Defaults: a batch goes out at 50 events or after 5 s, whichever comes first.
//! let config = Config::builder(endpoint).spool_dir(spool_dir).build()?;
//! let telemetry = Reporter::start(config)?;
//!
//! let session = telemetry.session_started("session-42");
//! for tool in ["search", "read_file", "edit"] {
//!     // In the tool call handler: costs a few hundred nanoseconds, whatever the server does.
//!     telemetry.record(Event::new("tool_call").with("tool", tool).with("ok", true));
//! }
//! telemetry.session_ended(session); // Records `session_ended` with `duration_ms`.
//!
//! let stats = telemetry.stats();
//! assert_eq!(stats.recorded, 5);
//! // On SIGTERM: drain within the deadline; the rest stays in the spool for the next start.
//! let _ = telemetry.shutdown(Duration::from_secs(5));
//! # assert_eq!(server.stats().events_unique, 5);
//! # Ok(())
//! # }
//! ```
//!
//! # A short CLI run: record, send a bounded batch of backlog, exit on time
//!
//! ```
//! use std::num::NonZeroUsize;
//! use std::time::Duration;
//! use flush_core::{Config, Event, Reporter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())?;
//! # let endpoint = format!("{}/ingest", server.url());
//! # let spool = tempfile::tempdir()?;
//! # let spool_dir = spool.path();
//! let config = Config::builder(endpoint)
//!     .spool_dir(spool_dir) // The installation id is kept here too (the `distinct_id`).
//!     .batch_size(NonZeroUsize::new(25).expect("25 is not zero"))
//!     .request_timeout(Duration::from_secs(5))
//!     .build()?;
//! let telemetry = Reporter::start(config)?;
//!
//! telemetry.record(Event::new("cli_invocation").with("command", "deploy").with("ok", true));
//!
//! // At exit: at most 25 events (this run's and older backlog), never more than 2 s.
//! let _ = telemetry.shutdown_bounded(Duration::from_secs(2), 25);
//! # assert_eq!(server.stats().events_unique, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Map of the crate
//! - [`Reporter`] (`reporter`): the application's handle, the two worker threads and what blocks.
//! - [`Config`] (`config`): every setting, validated once; [`ConfigError`] (`error`).
//! - [`Event`] (`event`): what is recorded, and its canonical stored form (docs/PROTOCOL.md).
//! - `queue`: the bounded in-memory queue (events and bytes) and the drop policies.
//! - `spooler`: the thread that drains the queue into the store and answers checkpoints.
//! - `delivery`: the thread that sends batches: retries, breaker, poison isolation, acks.
//! - [`sink`]: the seam between delivery and a backend (encode a batch, classify the answer) and the built-in
//!   sinks; `sender` (one HTTP request: gzip, timeout, `Retry-After`), `batch` (body helpers), `retry`
//!   (backoff), `breaker`, `dead_letter` (the dead-letter file).
//! - `OtelLogProcessor`, `OtelSpanProcessor` (`otel_processors`, cargo feature `opentelemetry`, off by default):
//!   the OpenTelemetry SDK's log and span processors, recording through a reporter in place of the batch processors.
//! - `otlp_form`: OpenTelemetry spans and log records as events (the reserved `otel.*` properties).
//! - `outcome` (how flush and shutdown ended) and `shared_store` (the store both threads lock): below the
//!   reporter, the spooler and the sender, so types flow one way between them.
//! - `store`: the seam between the pipeline and the [`spool`] (`disk_store`) or the bounded
//!   `memory_store`; `installation_id`: the generated `distinct_id`.
//! - [`stats`]: the counters and the accounting identity.
//! - `TracingLayer` (`tracing_layer`, cargo feature `tracing`, off by default): records `tracing` events and
//!   closed spans through a reporter, never its own output.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod sink;
pub mod spool;
pub mod stats;

mod batch;
mod breaker;
mod clock;
mod config;
mod dead_letter;
mod delivery;
mod disk_store;
mod error;
mod event;
mod installation_id;
mod memory_store;
#[cfg(feature = "opentelemetry")]
mod otel_processors;
mod otlp_form;
mod outcome;
#[cfg(any(feature = "tracing", feature = "opentelemetry"))]
mod own_output;
mod queue;
mod reporter;
mod resolver;
mod retry;
mod sender;
mod shared_store;
mod spooler;
mod store;
mod stored_view;
#[cfg(feature = "tracing")]
mod tracing_layer;

pub use config::{
    BreakerPolicy, Config, ConfigBuilder, DropPolicy, FlushMode, MemoryLimits, QueueLimits,
    RetryPolicy,
};
pub use dead_letter::DEAD_LETTER_FILE;
pub use error::{CheckpointError, ConfigError, EndpointError, StartError};
pub use event::{Event, TimestampError};
pub use installation_id::INSTALLATION_ID_FILE;
#[cfg(feature = "opentelemetry")]
pub use otel_processors::{OtelLogProcessor, OtelSpanProcessor};
pub use outcome::{FlushOutcome, ShutdownOutcome};
pub use reporter::{MAX_RESTARTS, Reporter, Session};
pub use serde_json::Value;
pub use sink::Sink;
pub use spool::SyncPolicy;
pub use stats::{AckHealth, BreakerState, Dropped, FlushTimings, Pending, Stats};
#[cfg(feature = "tracing")]
pub use tracing_layer::{TracingLayer, TracingLayerBuilder, TracingLayerError};
pub use uuid::Uuid;
