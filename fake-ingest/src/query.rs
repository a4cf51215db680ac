//! [`EventsQuery`] and [`EventsPage`]: which captured events a reader asks for and the page it gets back, shared by
//! the store (which answers it) and the control API (which serves it as `GET /_fake/events`).

use serde::{Deserialize, Serialize};

use crate::event::{CapturedEvent, Protocol};

/// The query of `GET /_fake/events`: which events, from where, how many.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// Skip this many matching events (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// Return at most this many (default and maximum 10 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only events that came through this protocol (`ingest`, `otlp_logs`, ..., `posthog`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Only events that came through this route, e.g. `/ingest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// One page of captured events, in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventsPage {
    /// How many events match the query in all.
    pub total: usize,
    /// The offset this page starts at.
    pub offset: usize,
    /// The offset of the next page, absent on the last page.
    pub next_offset: Option<usize>,
    /// The events of this page.
    pub events: Vec<CapturedEvent>,
}

/// One request to a data route, as the request log keeps it (`GET /_fake/requests`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The request's fault index (1-based, since start or the last reset); 0 for a request refused before fault
    /// evaluation (a wrong method).
    pub index: u64,
    /// When it arrived, RFC 3339.
    pub time: String,
    /// The HTTP method.
    pub method: String,
    /// The route, e.g. `/v1/logs`.
    pub route: String,
    /// The protocol of the route.
    pub protocol: Protocol,
    /// The `Content-Type` sent, if any.
    pub content_type: Option<String>,
    /// The `Content-Encoding` sent, if any.
    pub content_encoding: Option<String>,
    /// The body's size as sent, when it was read.
    pub body_bytes: Option<u64>,
    /// Events the request carried, when it was decoded.
    pub events: Option<u64>,
    /// Of those, how many were duplicates of stored events (when it was stored).
    pub duplicates: Option<u64>,
    /// The fault decided, by kind name (`status`, `reset_after_store`, ...); `latency` when only a delay applied.
    pub fault: Option<String>,
    /// The index of the plan rule that decided it.
    pub rule: Option<usize>,
    /// What the client got: the status sent, or `reset`, `hang` or `crash`.
    pub outcome: String,
    /// Milliseconds from arrival to the answer (absent for a hang).
    pub latency_ms: Option<f64>,
}

/// The query of `GET /_fake/requests`: which logged requests, how many.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestsQuery {
    /// Skip this many matching requests (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// Return at most this many (default and maximum 10 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only requests to this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Only requests with this outcome: a status (`503`) or `reset`, `hang`, `crash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only requests with this fault kind (`status`, `reset_after_store`, ..., `latency`), or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// One page of the request log, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestsPage {
    /// How many kept requests match the query in all.
    pub total: usize,
    /// How many requests were dropped from the log to stay within `--max-requests-kept` (since start or reset).
    pub evicted: u64,
    /// The offset this page starts at.
    pub offset: usize,
    /// The offset of the next page, absent on the last page.
    pub next_offset: Option<usize>,
    /// The requests of this page.
    pub requests: Vec<RequestRecord>,
}
