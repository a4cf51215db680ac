//! flush-core: record telemetry events without blocking, keep them in a crash-safe on-disk spool and deliver them
//! at least once, with a per-event idempotency key, to an HTTP ingest endpoint.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod spool;
