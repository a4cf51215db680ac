//! The event an application records, and its wire form.
//!
//! An [`Event`] is cheap to build: a name (a `&'static str` costs nothing) and a small list of properties. The
//! reporter stamps it with a UUID v7 and the wall-clock time in `record()`; everything else — formatting the
//! timestamp, serializing to the JSON object of docs/PROTOCOL.md — happens on the worker thread, off the hot path.

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use uuid::Uuid;

/// One telemetry event: a name and properties. The reporter adds `uuid`, `timestamp` and `distinct_id`.
///
/// ```
/// use flush_core::Event;
/// let event = Event::new("tool_call").with("tool", "grep").with("duration_ms", 12).with("ok", true);
/// assert_eq!(event.name(), "tool_call");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    name: Cow<'static, str>,
    distinct_id: Option<String>,
    properties: Vec<(Cow<'static, str>, Value)>,
}

impl Event {
    /// An event with no properties.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            distinct_id: None,
            properties: Vec::new(),
        }
    }

    /// Adds a property (a later one with the same key wins on the wire).
    #[must_use]
    pub fn with(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// Sends this event under another `distinct_id` than the reporter's (e.g. a signed-in user).
    #[must_use]
    pub fn with_distinct_id(mut self, distinct_id: impl Into<String>) -> Self {
        self.distinct_id = Some(distinct_id.into());
        self
    }

    /// The event name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The properties, in the order they were added.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.properties
            .iter()
            .map(|(key, value)| (key.as_ref(), value))
    }

    /// A cheap estimate of the event's size in memory and on the wire, for the queue's byte bound. It looks one
    /// level into arrays and objects; it is not exact and does not need to be.
    pub(crate) fn estimated_bytes(&self) -> usize {
        const OVERHEAD: usize = 128;
        let properties: usize = self
            .properties
            .iter()
            .map(|(key, value)| key.len() + 4 + shallow_size(value))
            .sum();
        OVERHEAD + self.name.len() + self.distinct_id.as_ref().map_or(0, String::len) + properties
    }
}

fn shallow_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 12,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => 2 + items.len() * 16,
        Value::Object(map) => 2 + map.len() * 32,
    }
}

/// An event as `record()` queued it: stamped, not yet serialized.
#[derive(Debug)]
pub(crate) struct StampedEvent {
    pub(crate) uuid: Uuid,
    pub(crate) estimated_bytes: usize,
    pub(crate) event: Event,
}

impl StampedEvent {
    /// Stamps `event` with a fresh UUID v7 and the current time. This is the hot path's only real cost.
    pub(crate) fn stamp(event: Event) -> Self {
        let estimated_bytes = event.estimated_bytes();
        Self {
            uuid: new_v7(),
            estimated_bytes,
            event,
        }
    }

    /// Serializes the event as one JSON object of the protocol's `batch` array into `buffer` (cleared first).
    ///
    /// # Errors
    /// Only if a property cannot be serialized (serde_json's own values always can); the caller drops the event.
    pub(crate) fn serialize_into(
        &self,
        distinct_id: &str,
        buffer: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        buffer.clear();
        // The UUID v7 carries the recording time in milliseconds, the wire's precision: one clock read in `record()`.
        let timestamp = self
            .uuid
            .get_timestamp()
            .map(|at| at.to_unix())
            .and_then(|(seconds, nanos)| {
                jiff::Timestamp::new(i64::try_from(seconds).ok()?, i32::try_from(nanos).ok()?).ok()
            })
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let wire = WireEvent {
            uuid: self.uuid,
            event: &self.event.name,
            distinct_id: self.event.distinct_id.as_deref().unwrap_or(distinct_id),
            timestamp: format!("{timestamp:.3}"),
            properties: &self.event.properties,
        };
        serde_json::to_writer(buffer, &wire)
    }
}

thread_local! {
    /// A UUID v7 context per thread: `Uuid::now_v7()` shares one behind a global mutex, which producers on many
    /// threads would contend for on the hot path. Per thread, ids are ordered; across threads they are unique (a
    /// random 41-bit counter seed per millisecond plus random bits) and ordered to the millisecond.
    static UUID_CONTEXT: uuid::ContextV7 = const { uuid::ContextV7::new() };
}

/// A fresh UUID v7 from this thread's context (the shared one while the thread's locals are being destroyed, so
/// `record()` from a thread-local destructor does not panic).
fn new_v7() -> Uuid {
    UUID_CONTEXT
        .try_with(|context| Uuid::new_v7(uuid::Timestamp::now(context)))
        .unwrap_or_else(|_| Uuid::now_v7())
}

#[derive(serde::Serialize)]
struct WireEvent<'a> {
    uuid: Uuid,
    event: &'a str,
    distinct_id: &'a str,
    timestamp: String,
    #[serde(serialize_with = "serialize_properties")]
    properties: &'a [(Cow<'static, str>, Value)],
}

fn serialize_properties<S: Serializer>(
    properties: &&[(Cow<'static, str>, Value)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(properties.len()))?;
    for (key, value) in properties.iter() {
        map.serialize_entry(key.as_ref(), value)?;
    }
    map.end()
}

/// Reads the `uuid` field of a serialized event (for dead-letter records and tests); `None` if it has none.
pub(crate) fn uuid_of(record: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct OnlyUuid {
        uuid: String,
    }
    serde_json::from_slice::<OnlyUuid>(record)
        .ok()
        .map(|only| only.uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UUID v7 for the given Unix time in milliseconds.
    fn v7_at(unix_ms: u64) -> Uuid {
        let timestamp = uuid::Timestamp::from_unix(
            uuid::NoContext,
            unix_ms / 1000,
            (unix_ms % 1000) as u32 * 1_000_000,
        );
        Uuid::new_v7(timestamp)
    }

    #[test]
    fn the_wire_form_follows_the_protocol() {
        let event = Event::new("cli_invocation")
            .with("command", "deploy")
            .with("duration_ms", 412);
        let mut stamped = StampedEvent::stamp(event);
        stamped.uuid = v7_at(1_795_000_000_123);
        let mut buffer = Vec::new();
        stamped.serialize_into("install-1", &mut buffer).unwrap();
        let value: Value = serde_json::from_slice(&buffer).unwrap();
        assert_eq!(value["uuid"], stamped.uuid.to_string());
        assert_eq!(stamped.uuid.get_version_num(), 7);
        assert_eq!(value["event"], "cli_invocation");
        assert_eq!(value["distinct_id"], "install-1");
        assert_eq!(value["timestamp"], "2026-11-18T11:06:40.123Z");
        assert_eq!(
            value["properties"],
            serde_json::json!({"command": "deploy", "duration_ms": 412})
        );
        assert_eq!(uuid_of(&buffer), Some(stamped.uuid.to_string()));
    }

    #[test]
    fn an_event_level_distinct_id_wins() {
        let stamped = StampedEvent::stamp(Event::new("login").with_distinct_id("user-7"));
        let mut buffer = Vec::new();
        stamped.serialize_into("install-1", &mut buffer).unwrap();
        let value: Value = serde_json::from_slice(&buffer).unwrap();
        assert_eq!(value["distinct_id"], "user-7");
        assert_eq!(value["properties"], serde_json::json!({}));
    }

    #[test]
    fn the_size_estimate_grows_with_the_content() {
        let small = Event::new("a").estimated_bytes();
        let large = Event::new("a")
            .with("text", "x".repeat(1000))
            .estimated_bytes();
        assert!(large >= small + 1000);
    }

    #[test]
    fn ids_from_many_threads_are_unique_version_7() {
        let ids: Vec<Uuid> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..5000).map(|_| new_v7()).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|handle| handle.join().unwrap())
                .collect()
        });
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
    }

    #[test]
    fn the_wire_form_is_pinned() {
        let event = Event::new("tool_call")
            .with("tool", "grep")
            .with("duration_ms", 12)
            .with("ok", true)
            .with("args", serde_json::json!(["-n", "TODO"]));
        let stamped = StampedEvent {
            uuid: Uuid::parse_str("01a1ee56-5e7b-7c3d-9e4f-5a6b7c8d9e0f").unwrap(),
            estimated_bytes: event.estimated_bytes(),
            event,
        };
        let mut buffer = Vec::new();
        stamped
            .serialize_into("7d1c6a3e-1f0b-4c8e-9a51-3f2d4b6c8e90", &mut buffer)
            .unwrap();
        insta::assert_snapshot!(String::from_utf8(buffer).unwrap());
    }
}
