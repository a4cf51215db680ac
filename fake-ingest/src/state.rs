//! [`AppState`]: what every handler shares — settings, the current fault plan, the store and what a crash does.

use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;

use crate::config::Config;
use crate::error::Error;
use crate::faults::FaultPlan;
use crate::proxy::Upstream;
use crate::store::Store;

/// The state behind every route.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) seed: u64,
    pub(crate) max_body_bytes: usize,
    faults: RwLock<Arc<FaultPlan>>,
    pub(crate) store: Store,
    pub(crate) crash: CrashBehavior,
    /// Proxy mode: where requests on their way to storage are forwarded.
    pub(crate) upstream: Option<Upstream>,
}

/// What an injected crash does, by how the server runs.
#[derive(Debug)]
pub(crate) enum CrashBehavior {
    /// `app()` without a server: answer `503` (there is nothing to stop).
    Respond,
    /// An embedded [`crate::Server`]: stop that server abruptly (its handle stays readable).
    StopServer(watch::Sender<bool>),
    /// The binary: abort the process.
    AbortProcess,
}

impl AppState {
    /// Builds the state from a validated config, replaying the batch log if there is one.
    pub(crate) fn new(config: &Config, crash: CrashBehavior) -> Result<Arc<Self>, Error> {
        Ok(Arc::new(Self {
            seed: config.seed,
            max_body_bytes: config.max_body_bytes,
            faults: RwLock::new(Arc::new(config.faults.clone())),
            store: Store::open(
                config.data_dir.as_deref(),
                config.max_requests_kept,
                config.max_events_kept,
            )?,
            crash,
            upstream: config
                .upstream
                .as_deref()
                .and_then(|url| Upstream::new(url, config.upstream_timeout, config.max_body_bytes)),
        }))
    }

    /// The current fault plan.
    pub(crate) fn faults(&self) -> Arc<FaultPlan> {
        self.faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the fault plan; requests already decided keep their decision.
    pub(crate) fn set_faults(&self, plan: FaultPlan) {
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(plan);
    }
}
