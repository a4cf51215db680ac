//! The captured-event model: what every front door (`/ingest`, and later OTLP and PostHog) decodes into, and what
//! the store, dedupe, persistence, stats and the control API work on.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol a captured event arrived through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Our own batch protocol, `POST /ingest` (docs/PROTOCOL.md).
    Ingest,
    /// OTLP/HTTP logs, `POST /v1/logs`.
    OtlpLogs,
    /// OTLP/HTTP traces, `POST /v1/traces`.
    OtlpTraces,
    /// OTLP/HTTP metrics, `POST /v1/metrics`.
    OtlpMetrics,
    /// The PostHog capture API (`/batch`, `/capture`, `/e`, `/i/v0/e`).
    Posthog,
}

/// One event as it was decoded from a request, before the store assigns it a sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingEvent {
    /// The key the store dedupes on: the event's `uuid` where the protocol has one, a documented derived key
    /// otherwise (OTLP), or a fresh unique key when the client sent none (then `has_idempotency_key` is false).
    pub dedupe_key: String,
    /// Whether the client supplied the idempotency key (false: the key was synthesized and never matches another).
    pub has_idempotency_key: bool,
    /// The event name (`event` in /ingest and PostHog; the span name, log body or metric name in OTLP).
    pub name: String,
    /// The event's own timestamp, RFC 3339, when it has one.
    pub timestamp: Option<String>,
    /// The user or installation the event belongs to, when the protocol has one.
    pub distinct_id: Option<String>,
    /// Resource attributes (OTLP), when the protocol has them.
    pub resource: Option<Value>,
    /// The event's properties or attributes.
    pub properties: Map<String, Value>,
}

/// An event the store holds: the incoming event plus where and when it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturedEvent {
    /// Arrival order among stored (unique) events, starting at 1.
    pub seq: u64,
    /// The request that carried it (the server's request counter, starting at 1).
    pub request_id: u64,
    /// The protocol it came through.
    pub protocol: Protocol,
    /// The route it came through, e.g. `/ingest`.
    pub route: String,
    /// When the server stored it, RFC 3339.
    pub received_at: String,
    /// The decoded event.
    #[serde(flatten)]
    pub event: IncomingEvent,
}
