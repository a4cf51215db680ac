//! The one event every group measures: about 300 bytes on the wire, with a name, a `distinct_id` and three
//! properties, stamped with a UUID v7 and an RFC 3339 timestamp exactly as `docs/PROTOCOL.md` sends it.
//!
//! Every peer and floor serializes the same [`WireEvent`] with `serde_json`, so the groups differ only in what they
//! do with the bytes.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The event name of the sample event.
pub const SAMPLE_EVENT_NAME: &str = "cli_invocation";

/// The `distinct_id` of the sample event (an installation id, as the design documents use).
pub const SAMPLE_DISTINCT_ID: &str = "7d1c6a3e-1f0b-4c8e-9a51-3f2d4b6c8e90";

/// An event as the application hands it over: a name, a `distinct_id` and properties. No id, no timestamp yet.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleEvent {
    /// The event name.
    pub name: String,
    /// The user or installation the event belongs to.
    pub distinct_id: String,
    /// Three properties: a string, an integer and a boolean.
    pub properties: Map<String, Value>,
}

/// Builds the sample event: the same for every group, so every group compares the same work.
pub fn sample_event() -> SampleEvent {
    let mut properties = Map::new();
    properties.insert(
        "command".to_owned(),
        Value::from("deploy --environment production --region eu-west-1 --dry-run"),
    );
    properties.insert("duration_ms".to_owned(), Value::from(412_u64));
    properties.insert("success".to_owned(), Value::from(true));
    SampleEvent {
        name: SAMPLE_EVENT_NAME.to_owned(),
        distinct_id: SAMPLE_DISTINCT_ID.to_owned(),
        properties,
    }
}

/// The event as it goes to disk and over the wire (`docs/PROTOCOL.md`): the sample plus its idempotency key and
/// timestamp.
#[derive(Debug, Clone, Serialize)]
pub struct WireEvent<'a> {
    /// The idempotency key, a UUID v7.
    pub uuid: Uuid,
    /// The event name.
    pub event: &'a str,
    /// The user or installation.
    pub distinct_id: &'a str,
    /// RFC 3339 with a `Z` offset.
    pub timestamp: String,
    /// The properties.
    pub properties: &'a Map<String, Value>,
}

impl SampleEvent {
    /// Stamps the event the way `record()` does: a fresh UUID v7 and the current time.
    pub fn stamp(&self) -> WireEvent<'_> {
        WireEvent {
            uuid: Uuid::now_v7(),
            event: &self.name,
            distinct_id: &self.distinct_id,
            timestamp: jiff::Timestamp::now().to_string(),
            properties: &self.properties,
        }
    }

    /// Stamps the event and appends its JSON to `out` (the serialization every peer and floor pays per event).
    pub fn stamp_and_serialize_into(&self, out: &mut Vec<u8>) {
        // Invariant: serializing a struct of strings, a UUID and a map of JSON values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &self.stamp());
    }

    /// Stamps the event and returns its JSON.
    pub fn stamp_and_serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        self.stamp_and_serialize_into(&mut out);
        out
    }
}

/// Serializes `events` as one `/ingest` request body: `{"batch":[...]}`, each event freshly stamped.
pub fn ingest_body(events: &[SampleEvent]) -> Vec<u8> {
    let mut body = Vec::with_capacity(16 + events.len() * 320);
    body.extend_from_slice(b"{\"batch\":[");
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        event.stamp_and_serialize_into(&mut body);
    }
    body.extend_from_slice(b"]}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_event_is_about_300_bytes_on_the_wire() {
        let bytes = sample_event().stamp_and_serialize();
        assert!(
            (270..=330).contains(&bytes.len()),
            "{} bytes: {}",
            bytes.len(),
            String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn an_ingest_body_is_a_batch_of_distinct_events() {
        let events = vec![sample_event(); 3];
        let body: Value = serde_json::from_slice(&ingest_body(&events)).unwrap();
        let batch = body["batch"].as_array().unwrap();
        assert_eq!(batch.len(), 3);
        assert_ne!(batch[0]["uuid"], batch[1]["uuid"]);
        assert_eq!(batch[2]["properties"]["duration_ms"], 412);
    }
}
