//! The captured-event model: what every front door (`/ingest`, OTLP and PostHog) decodes into, and what the store,
//! dedupe, persistence, stats and the control API work on.
//!
//! Invariant: what many records of one request have in common (an OTLP resource, an instrumentation scope, a
//! metric's description) is held once, behind an [`Arc`], and every event of the request points at it. So the memory
//! an event takes grows with its own bytes, never with the size of what it shares: a request of 20 000 log records
//! under one resource of 1 000 attributes holds that resource once.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::ser::SerializeStruct as _;
use serde::{Deserialize, Serialize, Serializer};
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

/// Properties that several events of one request share, stored once: OTLP's instrumentation scope (`otel.scope.*`)
/// and, for metric data points, the metric's own (`otel.metric_type`, `otel.unit`, ...), whose `parent` is the scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SharedProperties {
    /// The properties at this level.
    pub properties: Map<String, Value>,
    /// The enclosing level, whose properties apply too unless a nearer level has the same key.
    pub parent: Option<Arc<SharedProperties>>,
}

impl SharedProperties {
    /// The value of `name` at this level or an enclosing one (the nearest wins).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.properties
            .get(name)
            .or_else(|| self.parent.as_ref()?.get(name))
    }

    /// The levels from this one outwards.
    pub(crate) fn levels(&self) -> impl Iterator<Item = &SharedProperties> {
        std::iter::successors(Some(self), |level| level.parent.as_deref())
    }
}

/// One event as it was decoded from a request, before the store assigns it a sequence number.
///
/// In JSON (`/_fake/events`, [`crate::Server::events`] callers who serialize) the shared properties are merged into
/// `properties`, so an event reads the same whatever is shared; in memory, read a property with
/// [`IncomingEvent::property`], which looks at both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// Resource attributes (OTLP), shared by every record of the same resource in a request.
    pub resource: Option<Arc<Map<String, Value>>>,
    /// Properties shared with other events of the same request (OTLP scope and metric), stored once.
    #[serde(skip)]
    pub shared: Option<Arc<SharedProperties>>,
    /// The event's own properties or attributes.
    pub properties: Map<String, Value>,
}

impl IncomingEvent {
    /// The value of property `name`: the event's own, else the nearest shared one.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties
            .get(name)
            .or_else(|| self.shared.as_ref()?.get(name))
    }

    /// Every property, own and shared, as JSON shows them (an own property hides a shared one of the same name).
    pub fn merged_properties(&self) -> BTreeMap<&str, &Value> {
        let mut merged = BTreeMap::new();
        if let Some(shared) = &self.shared {
            let levels: Vec<&SharedProperties> = shared.levels().collect();
            // Outermost first, so that nearer levels overwrite.
            for level in levels.into_iter().rev() {
                merged.extend(level.properties.iter().map(|(k, v)| (k.as_str(), v)));
            }
        }
        merged.extend(self.properties.iter().map(|(k, v)| (k.as_str(), v)));
        merged
    }
}

impl Serialize for IncomingEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut event = serializer.serialize_struct("IncomingEvent", 7)?;
        event.serialize_field("dedupe_key", &self.dedupe_key)?;
        event.serialize_field("has_idempotency_key", &self.has_idempotency_key)?;
        event.serialize_field("name", &self.name)?;
        event.serialize_field("timestamp", &self.timestamp)?;
        event.serialize_field("distinct_id", &self.distinct_id)?;
        event.serialize_field("resource", &self.resource)?;
        if self.shared.is_some() {
            event.serialize_field("properties", &self.merged_properties())?;
        } else {
            event.serialize_field("properties", &self.properties)?;
        }
        event.end()
    }
}

/// A captured event as readers get it (the store keeps it compact and decodes it): the incoming event plus where
/// and when it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturedEvent {
    /// Arrival order among stored (unique) events, starting at 1.
    pub seq: u64,
    /// How many times the event was received again in a stored batch (counted as a duplicate) while this server
    /// kept it, since start or the last reset (resends before a restart are not replayed). Absent from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resent: u64,
    /// The request that carried it (the server's request counter, starting at 1).
    pub request_id: u64,
    /// The protocol it came through.
    pub protocol: Protocol,
    /// The route it came through, e.g. `/ingest`.
    pub route: String,
    /// When the server stored it, RFC 3339.
    pub received_at: String,
    /// Proxy mode: what the upstream answered the request that carried it, as the request log's `upstream` says
    /// (its HTTP status code, a gRPC status name such as `OK` or `UNAVAILABLE`, or `refused`, `timeout` or
    /// `failed`). Absent from JSON when the request was not forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The decoded event.
    #[serde(flatten)]
    pub event: IncomingEvent,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn shared_properties_show_merged_in_json_with_the_nearest_level_winning() {
        let scope = Arc::new(SharedProperties {
            properties: Map::from_iter([
                ("otel.scope.name".to_owned(), json!("lib")),
                ("level".to_owned(), json!("scope")),
            ]),
            parent: None,
        });
        let metric = Arc::new(SharedProperties {
            properties: Map::from_iter([("level".to_owned(), json!("metric"))]),
            parent: Some(scope),
        });
        let event = IncomingEvent {
            dedupe_key: "k".to_owned(),
            has_idempotency_key: true,
            name: "n".to_owned(),
            timestamp: None,
            distinct_id: None,
            resource: None,
            shared: Some(metric),
            properties: Map::from_iter([("own".to_owned(), json!(1))]),
        };
        assert_eq!(event.property("level"), Some(&json!("metric")));
        assert_eq!(event.property("otel.scope.name"), Some(&json!("lib")));
        let shown = serde_json::to_value(&event).expect("serializes");
        assert_eq!(
            shown["properties"],
            json!({"level": "metric", "otel.scope.name": "lib", "own": 1})
        );
        let read_back: IncomingEvent = serde_json::from_value(shown).expect("deserializes");
        assert_eq!(read_back.property("otel.scope.name"), Some(&json!("lib")));
    }
}
