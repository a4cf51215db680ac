//! [`Config`]: everything a fake-ingest server is started with, validated once in [`Config::validate`].

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::faults::FaultPlan;
use crate::request_log::DEFAULT_MAX_REQUESTS_KEPT;

/// How long proxy mode waits for the upstream's answer by default.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// The default body limit (4 MiB), applied to the body as sent and again after decompression.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How a fake-ingest server is started.
///
/// `Config::default()` binds `127.0.0.1:0` (a free port: what tests want), seed 0, no faults, everything in memory,
/// a 4 MiB body limit, the last 10 000 requests kept in the request log. The `fake-ingest` binary defaults `listen` to `127.0.0.1:8090` instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The seed every fault decision derives its randomness from.
    pub seed: u64,
    /// The fault plan the server starts with (replaceable at run time).
    pub faults: FaultPlan,
    /// With a directory, every stored batch is appended to a durable log there and replayed on start.
    pub data_dir: Option<PathBuf>,
    /// The largest accepted request body in bytes, before and after decompression.
    pub max_body_bytes: usize,
    /// A second address serving the same routes and state, for OTLP/HTTP exporters (whose conventional port is
    /// 4318); `None`: only `listen`. Port 0 picks a free port.
    pub otlp_listen: Option<SocketAddr>,
    /// An address serving the OTLP/gRPC logs, traces and metrics services (conventionally 4317) with the same
    /// state; `None`: no gRPC. Port 0 picks a free port.
    pub otlp_grpc_listen: Option<SocketAddr>,
    /// Proxy mode: forward every data request the fault plan lets through to storage to this backend
    /// (`http://host:port`, optionally with a path prefix) and relay its answer; `None`: answer locally.
    pub upstream: Option<String>,
    /// Proxy mode for the OTLP/gRPC listener: forward its calls that the fault plan lets through to storage to this
    /// OTLP/gRPC backend (`http://host:port`) and relay its answer; `None`: answer them locally.
    pub upstream_grpc: Option<String>,
    /// Proxy mode: how long to wait for the upstream's answer before answering `504` (gRPC: `DEADLINE_EXCEEDED`).
    pub upstream_timeout: Duration,
    /// How many requests the request log (`GET /_fake/requests`) keeps; the oldest are dropped (and counted) past
    /// it. 0 keeps none.
    pub max_requests_kept: usize,
    /// How many captured events are kept in memory (`None`: all). Past it the oldest are evicted and counted in
    /// `events_evicted`; their dedupe keys are kept, so dedupe stays exact. At least 1.
    pub max_events_kept: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            seed: 0,
            faults: FaultPlan::none(),
            data_dir: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            otlp_listen: None,
            otlp_grpc_listen: None,
            upstream: None,
            upstream_grpc: None,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            max_requests_kept: DEFAULT_MAX_REQUESTS_KEPT,
            max_events_kept: None,
        }
    }
}

impl Config {
    /// Checks the config as a whole; every entry point calls this once.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero body limit or a zero `max_events_kept`, [`Error::Plan`] for an invalid fault plan.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_body_bytes == 0 {
            return Err(Error::InvalidConfig(
                "max_body_bytes must be at least 1".to_owned(),
            ));
        }
        if self.max_events_kept == Some(0) {
            return Err(Error::InvalidConfig(
                "max_events_kept must be at least 1".to_owned(),
            ));
        }
        for (name, url) in [
            ("upstream", &self.upstream),
            ("upstream_grpc", &self.upstream_grpc),
        ] {
            if let Some(url) = url
                && !crate::proxy::is_upstream_url(url)
            {
                return Err(Error::InvalidConfig(format!(
                    "{name} {url:?} is not an http://host:port URL (https is not supported)"
                )));
            }
        }
        self.faults.validate()?;
        Ok(())
    }
}
