//! [`CompactEvent`]: how the store keeps a captured event in memory, at a small fixed overhead beyond its own bytes.
//!
//! A decoded event ([`CapturedEvent`]) is a tree of allocations: a string per field, a map node per few properties,
//! a string per property name and value. Kept that way, a 290-byte event took about 1.2 KB. The store keeps
//! instead, per event, its own fields written once as compact JSON (`[dedupe_key, name, timestamp, distinct_id,
//! properties]`, one allocation), a few numbers, and pointers to what it shares: the batch it came in (route,
//! arrival time, request and, in proxy mode, the upstream's answer, held once per batch) and, for OTLP, the resource and the shared properties (held once
//! per request). A reader gets a [`CapturedEvent`] back with [`CompactEvent::decode`]; filters on the protocol,
//! the route, the request or the upstream's answer look at the compact form only.
//!
//! Invariant: `decode(compact(event)) == event`: every field survives (a JSON number is read back as the same
//! number, a string as the same string; a float keeps its value as `serde_json` writes and reads it, as the batch
//! log already relies on).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::{CapturedEvent, IncomingEvent, Protocol, SharedProperties};

/// What the events of one stored batch share.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BatchOrigin {
    /// The request that carried the batch.
    pub(crate) request_id: u64,
    /// The route it came through.
    pub(crate) route: String,
    /// When the server stored it, RFC 3339.
    pub(crate) received_at: String,
    /// Proxy mode: what the upstream answered the request (as in the request log); `None` when not forwarded.
    pub(crate) upstream: Option<String>,
}

/// One captured event as the store keeps it.
#[derive(Debug)]
pub(crate) struct CompactEvent {
    pub(crate) seq: u64,
    pub(crate) resent: u32,
    pub(crate) protocol: Protocol,
    has_idempotency_key: bool,
    pub(crate) batch: Arc<BatchOrigin>,
    /// `[dedupe_key, name, timestamp, distinct_id, properties]` as JSON.
    own: Box<[u8]>,
    resource: Option<Arc<Map<String, Value>>>,
    shared: Option<Arc<SharedProperties>>,
}

/// The own fields, as written.
#[derive(Serialize)]
struct OwnRef<'a>(
    &'a str,
    &'a str,
    &'a Option<String>,
    &'a Option<String>,
    &'a Map<String, Value>,
);

/// The own fields, as read back.
#[derive(Deserialize)]
struct Own(
    String,
    String,
    Option<String>,
    Option<String>,
    Map<String, Value>,
);

/// The property that stands in for an event's properties if its fields could not be written or read back as JSON.
/// Neither can happen (`serde_json` writes every [`Value`] and reads back what it wrote), but if it did, the event
/// would still be there, with the reason in this property, rather than be dropped from a read.
const DECODE_ERROR: &str = "fake_ingest.compact_error";

fn error_properties(error: &serde_json::Error) -> Map<String, Value> {
    Map::from_iter([(DECODE_ERROR.to_owned(), Value::String(error.to_string()))])
}

impl CompactEvent {
    /// The compact form of `event` from `batch` (its `seq` is set when the store applies it).
    pub(crate) fn new(protocol: Protocol, batch: &Arc<BatchOrigin>, event: &IncomingEvent) -> Self {
        let own = |properties: &Map<String, Value>| {
            serde_json::to_vec(&OwnRef(
                &event.dedupe_key,
                &event.name,
                &event.timestamp,
                &event.distinct_id,
                properties,
            ))
        };
        let own = own(&event.properties)
            .or_else(|error| own(&error_properties(&error)))
            .unwrap_or_default();
        Self {
            seq: 0,
            resent: 0,
            protocol,
            has_idempotency_key: event.has_idempotency_key,
            batch: Arc::clone(batch),
            own: own.into_boxed_slice(),
            resource: event.resource.clone(),
            shared: event.shared.clone(),
        }
    }

    /// The event as readers see it.
    pub(crate) fn decode(&self) -> CapturedEvent {
        let Own(dedupe_key, name, timestamp, distinct_id, properties) =
            serde_json::from_slice(&self.own).unwrap_or_else(|error| {
                Own(
                    String::new(),
                    String::new(),
                    None,
                    None,
                    error_properties(&error),
                )
            });
        CapturedEvent {
            seq: self.seq,
            resent: u64::from(self.resent),
            request_id: self.batch.request_id,
            protocol: self.protocol,
            route: self.batch.route.clone(),
            received_at: self.batch.received_at.clone(),
            upstream: self.batch.upstream.clone(),
            event: IncomingEvent {
                dedupe_key,
                has_idempotency_key: self.has_idempotency_key,
                name,
                timestamp,
                distinct_id,
                resource: self.resource.clone(),
                shared: self.shared.clone(),
                properties,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_reads_back_as_it_was_stored() {
        let batch = Arc::new(BatchOrigin {
            request_id: 7,
            route: "/v1/logs".to_owned(),
            received_at: "2026-11-23T10:55:10.123456789Z".to_owned(),
            upstream: Some("200".to_owned()),
        });
        let shared = Arc::new(SharedProperties {
            properties: Map::from_iter([("otel.scope.name".to_owned(), json!("lib"))]),
            parent: None,
        });
        let event = IncomingEvent {
            dedupe_key: "log:0123".to_owned(),
            has_idempotency_key: true,
            name: "hello \"quoted\" \u{1F600}".to_owned(),
            timestamp: Some("2026-11-23T10:55:10Z".to_owned()),
            distinct_id: None,
            resource: Some(Arc::new(Map::from_iter([(
                "service.name".to_owned(),
                json!("web"),
            )]))),
            shared: Some(Arc::clone(&shared)),
            properties: Map::from_iter([
                ("big".to_owned(), json!(u64::MAX)),
                ("negative".to_owned(), json!(-9_007_199_254_740_993_i64)),
                ("ratio".to_owned(), json!(0.1)),
                ("nested".to_owned(), json!({"a": [1, null, true]})),
            ]),
        };
        let mut compact = CompactEvent::new(Protocol::OtlpLogs, &batch, &event);
        compact.seq = 3;
        let back = compact.decode();
        assert_eq!(back.event, event);
        assert!(Arc::ptr_eq(
            back.event.shared.as_ref().expect("shared"),
            &shared
        ));
        assert_eq!(
            (
                back.seq,
                back.request_id,
                back.route.as_str(),
                back.protocol,
                back.upstream.as_deref()
            ),
            (3, 7, "/v1/logs", Protocol::OtlpLogs, Some("200"))
        );
        assert!(std::mem::size_of::<CompactEvent>() <= 64);
    }
}
