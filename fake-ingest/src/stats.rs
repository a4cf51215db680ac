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
    /// Captured events no longer kept in memory because of `--max-events-kept` (oldest first; their keys are
    /// kept, so a resend is still a duplicate). Counted in `events_unique` too.
    #[serde(default)]
    pub events_evicted: u64,
    /// Batches stored (including those stored before an injected reset or crash).
    pub batches_stored: u64,
    /// Injected faults by kind.
    pub faults: FaultCounts,
    /// Proxy mode (`--upstream`): the upstream's answers to forwarded requests, by status code (`"200"`, `"503"`)
    /// or failure (`"refused"`, `"timeout"`, `"failed"`), counted apart from injected faults.
    #[serde(default)]
    pub upstream: BTreeMap<String, u64>,
    /// Requests and responses per route, e.g. `/ingest`.
    pub routes: BTreeMap<String, RouteStats>,
    /// Requests to routes fake-ingest does not serve (answered `404`), by method and path, e.g.
    /// `"POST /i/v1/logz"` (the query is left out). At most [`MAX_UNKNOWN_ROUTES`] distinct ones are kept; the
    /// requests of any further ones count under `"(other)"`.
    #[serde(default)]
    pub unknown_routes: BTreeMap<String, u64>,
}

/// The most distinct unknown routes [`Stats::unknown_routes`] keeps apart.
pub const MAX_UNKNOWN_ROUTES: usize = 100;

/// The key under which requests to unknown routes past [`MAX_UNKNOWN_ROUTES`] are counted.
pub const OTHER_UNKNOWN_ROUTES: &str = "(other)";

/// The longest path kept in an unknown route's key, in bytes (longer ones are cut at a character boundary).
const MAX_UNKNOWN_PATH_BYTES: usize = 200;

impl Stats {
    /// Counts a request to an unknown route.
    pub(crate) fn count_unknown_route(&mut self, method: &str, path: &str) {
        let mut end = path.len().min(MAX_UNKNOWN_PATH_BYTES);
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        let key = format!("{method} {}", &path[..end]);
        let key = if self.unknown_routes.contains_key(&key)
            || self.unknown_routes.len() < MAX_UNKNOWN_ROUTES
        {
            key
        } else {
            OTHER_UNKNOWN_ROUTES.to_owned()
        };
        *self.unknown_routes.entry(key).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_routes_are_counted_by_method_and_path_and_bounded() {
        let mut stats = Stats::default();
        stats.count_unknown_route("POST", "/i/v1/logz");
        stats.count_unknown_route("POST", "/i/v1/logz");
        for index in 0..MAX_UNKNOWN_ROUTES + 5 {
            stats.count_unknown_route("GET", &format!("/x{index}"));
        }
        stats.count_unknown_route("GET", &"é".repeat(300));
        assert_eq!(stats.unknown_routes["POST /i/v1/logz"], 2);
        assert_eq!(stats.unknown_routes.len(), MAX_UNKNOWN_ROUTES + 1);
        assert_eq!(stats.unknown_routes[OTHER_UNKNOWN_ROUTES], 7);
    }
}

/// Requests and responses of one route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStats {
    /// Requests that reached the route.
    pub requests: u64,
    /// Responses sent, by status code.
    pub responses: BTreeMap<u16, u64>,
}
