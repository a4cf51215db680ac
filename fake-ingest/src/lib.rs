//! fake-ingest: a fake telemetry ingest server (`POST /ingest`) that captures, dedupes and injects faults.
//!
//! Being built in issue 3; nothing is exposed yet.
