//! The peers: what a user would pick instead, with the same sample event, so ours is measured beside them in the same
//! run.
//!
//! Designs for keeping events on disk, built as their design documents describe them:
//! - [`json_files`]: one JSON file per event in a directory, as a CLI that posts them later keeps them.
//! - [`sqlite_wal`]: a SQLite table in WAL mode, one row per event, as a service buffering in SQLite keeps them.
//! - [`sqlite_ingest`]: an ingest server that keeps what it captures in SQLite in WAL mode (fake-ingest's peer).
//!
//! Real clients, which keep events in memory only:
//! - [`posthog_rs`]: PostHog's Rust SDK, batching to `/batch/`.
//! - [`otel_batch_logs`]: the OpenTelemetry SDK's batch log processor with its OTLP/HTTP exporter.

pub mod json_files;
pub mod otel_batch_logs;
pub mod posthog_rs;
pub mod sqlite_ingest;
pub mod sqlite_wal;
