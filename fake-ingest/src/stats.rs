//! [`Stats`]: the counters served at `GET /_fake/stats` and by [`crate::Server::stats`].
//!
//! Event counts (`events_received`, `events_unique`, `duplicates`, `batches_stored`) are derived from what is stored,
//! so with `--data-dir` they survive restarts (the log replay recomputes them). Request, response and fault counts
//! describe the running process since start or the last reset.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fault_kinds::FaultCounts;

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

/// Requests and responses of one route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStats {
    /// Requests that reached the route.
    pub requests: u64,
    /// Responses sent, by status code.
    pub responses: BTreeMap<u16, u64>,
}
