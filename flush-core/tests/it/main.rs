//! flush-core's integration tests: one test binary, one module per area.

mod faulty_fs;
mod reporter;
mod spool;
