//! [`CompactEvent`]: how the store keeps a captured event in memory, at a small fixed overhead beyond its own bytes.
//!
//! A decoded event ([`CapturedEvent`]) is a tree of allocations: a string per field, a map node per few properties,
//! a string per property name and value. Kept that way, a 290-byte event took about 1.2 KB. The store keeps
//! instead, per event, its own fields written once as compact JSON (`[dedupe_key, name, timestamp, distinct_id,
//! properties]`), a few numbers, and pointers to what it shares: the batch it came in (route, arrival time,
//! request and, in proxy mode, the upstream's answer, held once per batch) and, for OTLP, the resource and the
//! shared properties (held once per request). The own fields of a batch's events are written one after another into
//! one buffer that the batch holds ([`BatchBuilder`]): one allocation per batch, not per event, and each event keeps
//! only where its fields are in the buffer. A batch's buffer lives as long as one of its events is kept. A reader
//! gets a [`CapturedEvent`] back with [`CompactEvent::decode`]; filters on the protocol, the route, the request or
//! the upstream's answer look at the compact form only.
//!
//! With a batch log (`--data-dir`) the event's own fields, resource and shared properties are not kept at all: the
//! batch remembers where its record is in the log ([`Location`]) and the event its index in that record, and an
//! [`EventReader`] reads the record back when the event is read (a few dozen bytes per event in memory, whatever the
//! event's size). A reader that goes through the events in order reads each record once.
//!
//! Invariant: `decode(compact(event)) == event`: every field survives (a JSON number is read back as the same
//! number, a string as the same string; a float keeps its value as `serde_json` writes and reads it, as the batch
//! log already relies on).

use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, error_chain};
use crate::event::{CapturedEvent, IncomingEvent, Protocol, SharedProperties};
use crate::log::{BatchLog, BatchRecord, Location};

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
    /// Where the batch's record is in the batch log, when its events are read back from there.
    pub(crate) location: Option<Location>,
    /// The own fields of the batch's events kept in memory, one after another (each event knows its span).
    own: Box<[u8]>,
}

/// One captured event as the store keeps it.
#[derive(Debug)]
pub(crate) struct CompactEvent {
    pub(crate) seq: u64,
    pub(crate) resent: u32,
    pub(crate) protocol: Protocol,
    has_idempotency_key: bool,
    pub(crate) batch: Arc<BatchOrigin>,
    body: Body,
}

/// Where an event's own fields are.
#[derive(Debug)]
enum Body {
    /// In memory.
    Kept {
        /// Where `[dedupe_key, name, timestamp, distinct_id, properties]`, as JSON, is in the batch's buffer.
        own: Range<usize>,
        resource: Option<Arc<Map<String, Value>>>,
        shared: Option<Arc<SharedProperties>>,
    },
    /// In the batch log: the event at this index of its batch's record.
    Logged { index: u32 },
}

/// The room a batch's buffer starts with per event: enough for a typical event, so that writing a batch seldom
/// grows the buffer.
const OWN_CAPACITY: usize = 320;

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

/// The property that stands in for an event's properties if its fields could not be written or read back: the
/// event is still there, with the reason in this property, rather than dropped from a read. For an event kept in
/// memory this cannot happen (`serde_json` writes every [`Value`] and reads back what it wrote); for one in the
/// batch log it happens when the file was changed under the running server.
const DECODE_ERROR: &str = "fake_ingest.compact_error";

fn error_properties(error: &dyn std::error::Error) -> Map<String, Value> {
    Map::from_iter([(DECODE_ERROR.to_owned(), Value::String(error_chain(error)))])
}

/// An event with no fields but the reason they could not be read.
fn unreadable(error: &dyn std::error::Error) -> IncomingEvent {
    IncomingEvent {
        dedupe_key: String::new(),
        has_idempotency_key: false,
        name: String::new(),
        timestamp: None,
        distinct_id: None,
        resource: None,
        shared: None,
        properties: error_properties(error),
    }
}

/// The compact forms of one batch's events, built event by event: [`BatchBuilder::push`] writes a kept event's own
/// fields into the batch's buffer, and [`BatchBuilder::finish`] hands the batch its buffer and gives the events.
#[derive(Debug)]
pub(crate) struct BatchBuilder {
    origin: BatchOrigin,
    protocol: Protocol,
    /// The own fields written so far, of every event pushed to be kept in memory.
    own: Vec<u8>,
    /// The events pushed, in order, each with its `seq`.
    events: Vec<(u64, Pending)>,
}

/// An event pushed to a [`BatchBuilder`], before its batch is shared.
#[derive(Debug)]
struct Pending {
    has_idempotency_key: bool,
    body: Body,
}

impl BatchBuilder {
    /// A builder of the compact forms of up to `events` events that came through `protocol` in the batch
    /// `request_id` etc. describe; with a `location`, the events are read back from the batch log.
    pub(crate) fn new(
        protocol: Protocol,
        request_id: u64,
        route: String,
        received_at: String,
        upstream: Option<String>,
        location: Option<Location>,
        events: usize,
    ) -> Self {
        let own_capacity = if location.is_some() {
            0
        } else {
            events.saturating_mul(OWN_CAPACITY)
        };
        Self {
            origin: BatchOrigin {
                request_id,
                route,
                received_at,
                upstream,
                location,
                own: Box::default(),
            },
            protocol,
            own: Vec::with_capacity(own_capacity),
            events: Vec::with_capacity(events),
        }
    }

    /// Adds `event`, at `index` of the batch's record, under `seq`: kept in memory (its own fields written into
    /// the batch's buffer), or, when the batch is in the log, as its index there.
    pub(crate) fn push(&mut self, seq: u64, index: usize, event: &IncomingEvent) {
        let body = match (self.origin.location, u32::try_from(index)) {
            (Some(_), Ok(index)) => Body::Logged { index },
            // More than 4 billion events in one record cannot be indexed: such an event is kept in memory.
            _ => Body::Kept {
                own: write_own(event, &mut self.own),
                resource: event.resource.clone(),
                shared: event.shared.clone(),
            },
        };
        let pending = Pending {
            has_idempotency_key: event.has_idempotency_key,
            body,
        };
        self.events.push((seq, pending));
    }

    /// The events pushed, in order, sharing their batch.
    pub(crate) fn finish(self) -> impl Iterator<Item = CompactEvent> {
        let Self {
            mut origin,
            protocol,
            own,
            events,
        } = self;
        origin.own = own.into_boxed_slice();
        let batch = Arc::new(origin);
        events.into_iter().map(move |(seq, pending)| CompactEvent {
            seq,
            resent: 0,
            protocol,
            has_idempotency_key: pending.has_idempotency_key,
            batch: Arc::clone(&batch),
            body: pending.body,
        })
    }
}

/// Writes the own fields of `event` at the end of `buffer`, and gives where they are. If they cannot be written
/// (see [`DECODE_ERROR`]), the reason stands in for the properties.
fn write_own(event: &IncomingEvent, buffer: &mut Vec<u8>) -> Range<usize> {
    let start = buffer.len();
    let mut write = |properties: &Map<String, Value>| {
        buffer.truncate(start);
        serde_json::to_writer(
            &mut *buffer,
            &OwnRef(
                &event.dedupe_key,
                &event.name,
                &event.timestamp,
                &event.distinct_id,
                properties,
            ),
        )
    };
    if write(&event.properties)
        .or_else(|error| write(&error_properties(&error)))
        .is_err()
    {
        // Nothing written: the event reads back with the reason it could not be read.
        buffer.truncate(start);
    }
    start..buffer.len()
}

impl CompactEvent {
    /// The own fields of a kept event, read back.
    fn decode_kept(
        &self,
        own: &[u8],
        resource: &Option<Arc<Map<String, Value>>>,
        shared: &Option<Arc<SharedProperties>>,
    ) -> IncomingEvent {
        let Own(dedupe_key, name, timestamp, distinct_id, properties) = serde_json::from_slice(own)
            .unwrap_or_else(|error| {
                Own(
                    String::new(),
                    String::new(),
                    None,
                    None,
                    error_properties(&error),
                )
            });
        IncomingEvent {
            dedupe_key,
            has_idempotency_key: self.has_idempotency_key,
            name,
            timestamp,
            distinct_id,
            resource: resource.clone(),
            shared: shared.clone(),
            properties,
        }
    }

    /// `event` with what the store knows about it.
    fn captured(&self, event: IncomingEvent) -> CapturedEvent {
        CapturedEvent {
            seq: self.seq,
            resent: u64::from(self.resent),
            request_id: self.batch.request_id,
            protocol: self.protocol,
            route: self.batch.route.clone(),
            received_at: self.batch.received_at.clone(),
            upstream: self.batch.upstream.clone(),
            event,
        }
    }
}

/// Reads captured events, the kept ones from memory and the logged ones from the batch log, keeping the last
/// record read so that events read in order read each record once.
#[derive(Debug)]
pub(crate) struct EventReader<'a> {
    log: Option<&'a BatchLog>,
    last: Option<LastRecord>,
}

/// The last record an [`EventReader`] read.
#[derive(Debug)]
struct LastRecord {
    /// The batch whose record it is.
    batch: Arc<BatchOrigin>,
    /// The record, or why it could not be read.
    record: Result<BatchRecord, Error>,
}

impl<'a> EventReader<'a> {
    /// A reader of events whose logged ones are in `log`.
    pub(crate) fn new(log: Option<&'a BatchLog>) -> Self {
        Self { log, last: None }
    }

    /// The event as readers see it. If its record cannot be read back (the log was changed or removed under the
    /// server), the event is still there, its properties holding the reason (`fake_ingest.compact_error`), rather
    /// than silently dropped from the read; the error is logged once per record.
    pub(crate) fn read(&mut self, event: &CompactEvent) -> CapturedEvent {
        let index = match &event.body {
            Body::Kept {
                own,
                resource,
                shared,
            } => {
                let own = event.batch.own.get(own.clone()).unwrap_or_default();
                return event.captured(event.decode_kept(own, resource, shared));
            }
            Body::Logged { index } => *index,
        };
        let not_in_log = || Error::NotInLog {
            offset: event.batch.location.map(|location| location.offset),
            index,
        };
        let is_cached = self
            .last
            .as_ref()
            .is_some_and(|last| Arc::ptr_eq(&last.batch, &event.batch));
        if !is_cached {
            let record = match (self.log, event.batch.location) {
                (Some(log), Some(location)) => log.read_at(location),
                _ => Err(not_in_log()),
            };
            if let Err(error) = &record {
                tracing::error!(error = %error_chain(error), "cannot read captured events back from the batch log");
            }
            self.last = Some(LastRecord {
                batch: Arc::clone(&event.batch),
                record,
            });
        }
        let incoming = match self.last.as_ref().map(|last| &last.record) {
            Some(Ok(record)) => match record.events.get(index as usize) {
                Some(incoming) => incoming.clone(),
                None => unreadable(&not_in_log()),
            },
            Some(Err(error)) => unreadable(error),
            None => unreadable(&not_in_log()),
        };
        event.captured(incoming)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_reads_back_as_it_was_stored() {
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
        let other = IncomingEvent {
            name: "other".to_owned(),
            ..event.clone()
        };
        let mut builder = BatchBuilder::new(
            Protocol::OtlpLogs,
            7,
            "/v1/logs".to_owned(),
            "2026-11-23T10:55:10.123456789Z".to_owned(),
            Some("200".to_owned()),
            None,
            2,
        );
        builder.push(3, 0, &event);
        builder.push(4, 1, &other);
        let compact: Vec<CompactEvent> = builder.finish().collect();
        assert!(Arc::ptr_eq(&compact[0].batch, &compact[1].batch));
        let mut reader = EventReader::new(None);
        assert_eq!(reader.read(&compact[1]).event, other);
        let back = reader.read(&compact[0]);
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
