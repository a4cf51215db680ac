//! flush-core's integration tests: one test binary, one module per area.

mod reporter;
mod spool;
