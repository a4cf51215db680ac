//! Integration tests of fake-ingest, through its public interface only: the library API, HTTP and the binary.
//!
//! One test binary (one link step) with a module per area; `support` holds the shared helpers.

mod cli;
mod control;
mod determinism;
mod faults;
mod ingest;
mod persistence;
mod robustness;
mod server;
mod support;
