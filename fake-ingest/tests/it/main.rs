//! Integration tests of fake-ingest, through its public interface only: the library API, HTTP and the binary.
//!
//! One test binary (one link step) with a module per area; `support` holds the shared helpers.

mod browser;
mod cli;
mod control;
mod data_dir_reads;
mod determinism;
mod eviction;
mod export;
mod export_otlp;
mod faults;
mod grpc_exporters;
mod ingest;
mod otlp_client;
mod otlp_grpc_client;
mod otlp_grpc_node;
mod otlp_grpc_python;
mod page_api;
mod persistence;
mod posthog_client;
mod protocols;
mod protocols_props;
mod proxy;
mod requests;
mod robustness;
mod server;
mod spawned;
mod support;
mod wait;
