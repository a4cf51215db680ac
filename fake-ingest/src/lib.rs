//! fake-ingest: a fake telemetry ingest server that captures, dedupes and injects faults, deterministically.
//!
//! It is the stand-in for a real ingest service: strict about the protocols (`docs/PROTOCOL.md`: our own
//! `POST /ingest`, OTLP/HTTP, OTLP/gRPC and PostHog's capture API), honest about what it received (`/_fake/stats`,
//! `/_fake/events`, the live page at `/`, `/metrics`), and able to misbehave on purpose (`docs/FAULTS.md`), also in
//! front of a real backend (proxy mode, `Config::upstream`). Run it
//! as the `fake-ingest` binary, or embed it in tests:
//!
//! ```no_run
//! use fake_ingest::{Config, FaultPlan, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Port 0 (the library default) picks a free port.
//! let server = Server::start_blocking(Config::default())?;
//! let url = format!("{}/ingest", server.url());
//! // ... point a client at `url` ...
//! server.set_faults(FaultPlan::from_json(r#"{"rules": [{"when": {"nth": 1}, "then": "reset_after_store"}]}"#)?);
//! assert_eq!(server.stats().events_unique, 0);
//! server.shutdown();
//! # let _ = url;
//! # Ok(())
//! # }
//! ```
//!
//! Without a socket, drive [`app`] with `tower::ServiceExt::oneshot` (connection resets and crashes then degrade to
//! a `503` response, because there is no connection or server to drop).
//!
//! # Map of the crate
//! - [`cli`]: the `fake-ingest` command line, runnable from any binary.
//! - `config`: [`Config`], validated once.
//! - `event`: the captured-event model every front door decodes into ([`IncomingEvent`], [`CapturedEvent`],
//!   [`SharedProperties`]: what the records of one request share, held once).
//! - `fault_kinds`: the one list of fault kinds ([`FaultKind`], [`FaultCounts`], the plain action names).
//! - `faults`: the fault plan ([`FaultPlan`]) and the deterministic per-request decision ([`FaultPlan::decide`]).
//! - `dedupe_key`: the compact, exact form of a stored idempotency key.
//! - `compact_event`: how the store keeps a captured event (its own fields as JSON, what it shares by pointer; with
//!   `--data-dir`, only its place in the batch log, read back by an `EventReader`).
//! - `store`: capture, dedupe, persistence and counters shared by every front door.
//! - `log`: the on-disk batch log behind `--data-dir` (its module doc is the format spec).
//! - `stats`: the [`Stats`] shape served at `/_fake/stats`.
//! - `front_door`: the shared pipeline a data route runs (count, decide, delay, store, answer or misbehave).
//! - `ingest`: the strict `POST /ingest` decoder.
//! - `otlp`: the OTLP/HTTP front door (`/v1/logs`, `/v1/traces`, `/v1/metrics`, and PostHog's `/i/v1/...`): one walk
//!   over resources and scopes, a file per signal, the derived dedupe keys; [`otlp_json_requests`], captured records
//!   back out as OTLP/JSON.
//! - `grpc`: the OTLP/gRPC front door (`--otlp-grpc-listen`): `opentelemetry-proto`'s generated services on the
//!   shared pipeline, faults worded as gRPC statuses.
//! - `proxy`: proxy mode (`--upstream`): forwarding what the fault plan lets through to a real backend and
//!   relaying its answer.
//! - `posthog`: the PostHog capture front door (`/batch`, `/capture`, `/e`, `/i/v0/e`).
//! - `web_body`: bounded gzip decompression shared by the front doors.
//! - `web`: the live page at `GET /` and the Prometheus text at `GET /metrics` (rendered by `metrics`).
//! - `query`: which captured events and logged requests a reader asks for and gets ([`EventsQuery`],
//!   [`EventsPage`], [`RequestsQuery`], [`RequestsPage`]).
//! - `expect`: waiting for events (`GET /_fake/wait`, [`Server::wait_for_events`]) and [`Expectation`]s.
//! - `rate_history`: events and errors per interval since start, bounded ([`RateHistory`], the page's chart).
//! - `request_log`: the bounded log of requests to data routes (`GET /_fake/requests`, [`RequestRecord`]).
//! - `control`: the `/_fake/` control API.
//! - `connection`: the per-connection handle that lets a handler reset its TCP connection.
//! - `state`: what every handler shares (settings, the current plan, the store, what a crash does).
//! - `server`: [`app`], the accept loop and the embeddable [`Server`] handle.
//! - `error`: [`Error`], the library's error type.

pub mod cli;
mod compact_event;
mod config;
mod connection;
mod control;
mod dedupe_key;
mod error;
mod event;
mod expect;
mod fault_kinds;
mod faults;
mod front_door;
mod grpc;
mod ingest;
mod log;
mod metrics;
mod otlp;
mod posthog;
mod proxy;
mod query;
mod rate_history;
mod request_log;
mod server;
mod state;
mod stats;
mod store;
mod web;
mod web_body;

pub use config::{Config, DEFAULT_MAX_BODY_BYTES, DEFAULT_UPSTREAM_TIMEOUT};
pub use error::Error;
pub use event::{CapturedEvent, IncomingEvent, Protocol, SharedProperties};
pub use expect::{Expectation, ExpectationFailed};
pub use fault_kinds::{FaultCounts, FaultKind};
pub use faults::{
    Action, Decision, FaultContext, FaultPlan, Latency, MAX_LATENCY_MS, MAX_LOGNORMAL_SIGMA,
    MAX_NAME_BYTES, MAX_RETRY_AFTER_SECS, MAX_RULES, PlanError, PropertyMatch, Rule, When,
};
pub use otlp::otlp_json_requests;
pub use query::{
    EventFilter, EventsFormat, EventsPage, EventsQuery, RequestRecord, RequestsPage, RequestsQuery,
    WaitOutcome, WaitQuery,
};
pub use rate_history::{MAX_BUCKETS as MAX_RATE_BUCKETS, RateBucket, RateHistory};
pub use request_log::DEFAULT_MAX_REQUESTS_KEPT;
pub use server::{CrashMode, Server, app};
pub use stats::{MAX_UNKNOWN_ROUTES, OTHER_UNKNOWN_ROUTES, RouteStats, Stats};
