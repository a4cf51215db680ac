//! benches: the criterion benchmarks of flush-core and fake-ingest, and the peers and floors they are
//! measured beside.
//!
//! Every claim about speed is a ratio to something measured in the same run on the same machine, because this
//! machine is shared and noisy. This library holds what the benchmark files in `benches/benches/` share:
//!
//! - [`sample`]: the one ~300-byte event every group uses (a name, a `distinct_id`, three properties).
//! - [`peers`]: the designs we compare the spool with: one JSON file per event, and SQLite in WAL mode.
//! - [`floors`]: the least work each job needs: a bare channel `try_send`, a framed append to one file, a bare
//!   axum handler, a plain "serialize and POST" loop.
//! - [`flush`]: flush-core set up for the benchmarks (a reporter in a given state, spool backlogs).
//! - [`util`]: smoke-mode detection, temporary directories, chunked timing, percentiles, memory.
//! - [`alternating`]: latencies of several pipelines measured in alternating blocks (the `otel` group).
//! - [`scaling_chart`]: the SVG chart of the cost per event as the backlog and the batch grow (`bench-report`).
//!
//! The groups (one file each in `benches/benches/`): `record`, `spool_append`, `spool_read`, `backlog`,
//! `end_to_end`, `fake_ingest`, `otel`. Run them with `just bench` (`cargo bench -p benches`); `cargo bench -p benches -- --test` runs
//! each once as a smoke test. Method and results: `docs/BENCHMARKS.md`.
//!
//! ```
//! let event = benches::sample::sample_event();
//! let bytes = event.stamp_and_serialize();
//! assert!(bytes.len() > 250);
//! ```

pub mod alternating;
pub mod floors;
pub mod flush;
pub mod peers;
pub mod sample;
pub mod scaling_chart;
pub mod util;
