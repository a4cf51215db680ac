//! [`Stats`]: the counters served at `GET /_fake/stats` and by [`crate::Server::stats`].
//!
//! Event counts (`events_received`, `events_unique`, `duplicates`, `batches_stored`) are derived from what is stored,
//! so with `--data-dir` they survive restarts (the log replay recomputes them). Request, response and fault counts
//! describe the running process since start or the last reset.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::faults::FaultKind;

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests that reached a data route (`/ingest`, ...), whatever their outcome.
    pub requests: u64,
    /// Responses sent from data routes, by status code. Resets, hangs and crashes send none.
    pub responses: BTreeMap<u16, u64>,
    /// Every event of every stored batch, duplicates included.
    pub events_received: u64,
    /// Events stored once: the number of distinct idempotency keys.
    pub events_unique: u64,
    /// Events that arrived in a stored batch but whose key was already stored.
    pub duplicates: u64,
    /// Events stored without an idempotency key from the client (PostHog events without `uuid`): each is stored
    /// every time it arrives. Counted in `events_unique` too.
    #[serde(default)]
    pub events_without_key: u64,
    /// Records refused on their own and never stored: OTLP records with invalid ids or no value (answered as a
    /// partial success) and the records of requests a `reject` rule matched. Not persisted: it describes the
    /// running process, like the request counts.
    #[serde(default)]
    pub events_rejected: u64,
    /// Batches stored (including those stored before an injected reset or crash).
    pub batches_stored: u64,
    /// Injected faults by kind.
    pub faults: FaultCounts,
    /// Requests and responses per route, e.g. `/ingest`.
    pub routes: BTreeMap<String, RouteStats>,
}

/// Injected faults by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// Requests delayed by a rule's `latency`.
    pub latency: u64,
    /// Injected status responses.
    pub status: u64,
    /// Connections reset before storing.
    pub reset_before_store: u64,
    /// Connections reset after storing.
    pub reset_after_store: u64,
    /// Requests left unanswered.
    pub hang: u64,
    /// Crashes before storing (seen only by an embedded server, or by the log line of the process that aborts).
    pub crash_before_store: u64,
    /// Crashes after storing.
    pub crash_after_store: u64,
    /// Requests whose records were all rejected by a `reject` rule.
    #[serde(default)]
    pub reject: u64,
}

/// Requests and responses of one route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStats {
    /// Requests that reached the route.
    pub requests: u64,
    /// Responses sent, by status code.
    pub responses: BTreeMap<u16, u64>,
}

impl FaultCounts {
    pub(crate) fn count(&mut self, kind: FaultKind) {
        let counter = match kind {
            FaultKind::Latency => &mut self.latency,
            FaultKind::Status => &mut self.status,
            FaultKind::ResetBeforeStore => &mut self.reset_before_store,
            FaultKind::ResetAfterStore => &mut self.reset_after_store,
            FaultKind::Hang => &mut self.hang,
            FaultKind::CrashBeforeStore => &mut self.crash_before_store,
            FaultKind::CrashAfterStore => &mut self.crash_after_store,
            FaultKind::Reject => &mut self.reject,
        };
        *counter += 1;
    }
}
