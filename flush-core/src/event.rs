//! The event an application records, and its canonical stored form.
//!
//! An [`Event`] is cheap to build: a name (a `&'static str` costs nothing) and a small list of properties. The
//! reporter reads its recording clock in `record()` (unless the event brings its own time); everything else —
//! converting that reading to wall-clock time, minting its UUID v7 idempotency key (unless it brings its own),
//! formatting the timestamp, serializing — happens on the spooler's thread, off the hot path, before the event is
//! stored.
//!
//! # The canonical stored form
//! Every event is stored once, in one form whatever the sink: the JSON object of docs/PROTOCOL.md's `batch` array,
//! `{"uuid", "event", "distinct_id", "timestamp", "properties"}`, with `timestamp` in RFC 3339 in UTC (`Z`): to the
//! millisecond when it is read from the UUID v7, to the nanosecond when the event brought its own time or key.
//! Every flush-core version so far stored exactly this form (only the timestamp's precision and the key's UUID
//! version vary), so older spools are read as they are. Changing the form means bumping the spool's format version,
//! so that an older spool is read or refused, never misread. An adapter may leave properties to be built when the
//! event is serialized (an OpenTelemetry span converted to its OTLP message, on the spooler thread): they are
//! stored as ordinary properties, in the same form. Sinks read it back at send time and encode it for their
//! backend (the built-in ones in place, through `crate::stored_view`; a sink of the application's own through
//! [`decode_stored`], behind `Batch::decode`); the spool never knows the sink.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::clock::{RecordingClock, Tick, TickConverter};

/// One telemetry event: a name and properties. The reporter adds `uuid`, `timestamp` and `distinct_id`.
///
/// ```
/// use flush_core::Event;
/// let event = Event::new("tool_call").with("tool", "grep").with("duration_ms", 12).with("ok", true);
/// assert_eq!(event.name(), "tool_call");
/// ```
///
/// A fact recorded after it happened carries its own time (any UTC offset; it is sent as the same instant in UTC),
/// and an event derived from a business id can carry its own idempotency key, so that recording it again after a
/// crash stores it once:
///
/// ```
/// use flush_core::{Event, Uuid};
/// # fn main() -> Result<(), flush_core::TimestampError> {
/// let order_id = Uuid::from_u128(0x0193_6f4e_8a2b_7c3d_9e4f_5a6b_7c8d_9e0f);
/// let event = Event::new("order_paid")
///     .with_timestamp_rfc3339("2026-11-23T11:55:10.5+01:00")?
///     .with_idempotency_key(order_id);
/// assert_eq!(event.idempotency_key(), Some(order_id));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    name: Cow<'static, str>,
    properties: Vec<(Cow<'static, str>, Value)>,
    /// The event's own time, key and `distinct_id`: boxed, to keep the queue's slots small (most events bring none).
    own: Option<Box<OwnStamp>>,
    /// Properties an adapter leaves to be built on the spooler thread, with the time and key they carry: the
    /// adapter's one allocation per event.
    deferred: Option<Deferred>,
}

/// What an event brings of its own instead of the reporter's stamp.
#[derive(Debug, Clone, Default, PartialEq)]
struct OwnStamp {
    timestamp: Option<SystemTime>,
    idempotency_key: Option<Uuid>,
    distinct_id: Option<String>,
}

/// An event's deferred properties; two events hold the same ones when they share them.
#[derive(Debug, Clone)]
struct Deferred(Arc<dyn DeferredProperties>);

impl PartialEq for Deferred {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Properties that are expensive to build (an OpenTelemetry span converted to its OTLP message, say, or the five
/// strings of a `tracing` callsite's metadata), built on the spooler thread when the event is serialized instead of
/// in `record()`'s caller: the adapters' way to keep the application's thread to moving a value. Each property is
/// a [`DeferredValue`] (no `Value` tree in between), written into the stored form as it is.
pub(crate) trait DeferredProperties: Send + Sync + fmt::Debug {
    /// A cheap estimate of the built properties' size, for the queue's byte bound.
    fn estimated_bytes(&self) -> usize;

    /// The properties, after the event's own ones.
    ///
    /// # Errors
    /// If they cannot be built; the event is then dropped as unserializable, and counted.
    fn build(&self) -> Result<Vec<(&'static str, DeferredValue)>, serde_json::Error>;

    /// The event's idempotency key when it derives from what the properties hold (an OpenTelemetry span's trace
    /// and span ids), minted on the spooler thread like a UUID v7 key; `None`: the event's own key, else a UUID v7.
    /// It must depend on the properties alone, so that the same record recorded twice gets the same key.
    fn idempotency_key(&self) -> Option<Uuid> {
        None
    }

    /// The event's time when the properties carry it (a log record's time, a span's start), read in `record()`
    /// in place of the recording clock; `None`: the event's own time, else the recording instant. An own time
    /// ([`Event::with_timestamp`]) wins over it.
    fn timestamp(&self) -> Option<SystemTime> {
        None
    }
}

/// The value of a deferred property (the OpenTelemetry adapters build `Json`, the `tracing` layer the others).
#[cfg_attr(
    not(all(feature = "opentelemetry", feature = "tracing")),
    allow(dead_code)
)]
#[derive(Debug)]
pub(crate) enum DeferredValue {
    /// JSON text built beforehand (an OpenTelemetry message in OTLP/JSON).
    Json(Box<RawValue>),
    /// A string that lives as long as the program (a callsite's metadata), written as a JSON string when the event
    /// is serialized: no text of its own to allocate.
    StaticText(&'static str),
    /// An unsigned integer.
    Unsigned(u64),
}

impl serde::Serialize for DeferredValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Json(text) => text.serialize(serializer),
            Self::StaticText(text) => serializer.serialize_str(text),
            Self::Unsigned(number) => serializer.serialize_u64(*number),
        }
    }
}

/// An event time given as text was not RFC 3339 with an offset.
///
/// Not retryable: fix the text.
#[derive(Debug, thiserror::Error)]
#[error("event timestamp {text:?} is not an RFC 3339 timestamp with an offset")]
pub struct TimestampError {
    text: String,
    #[source]
    source: jiff::Error,
}

impl TimestampError {
    /// The text as given.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Event {
    /// An event with no properties.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            properties: Vec::new(),
            own: None,
            deferred: None,
        }
    }

    /// An event with `properties`, in their order, the vector moved in as it is (an adapter that gathers the
    /// properties first spares growing the event's own vector one property at a time).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn with_properties(
        name: impl Into<Cow<'static, str>>,
        properties: Vec<(Cow<'static, str>, Value)>,
    ) -> Self {
        Self {
            properties,
            ..Self::new(name)
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
        self.own.get_or_insert_default().distinct_id = Some(distinct_id.into());
        self
    }

    /// Sends this event with its own time instead of the recording instant (for facts recorded after they
    /// happened). Sent in UTC, to the nanosecond.
    #[must_use]
    pub fn with_timestamp(mut self, at: SystemTime) -> Self {
        self.own.get_or_insert_default().timestamp = Some(at);
        self
    }

    /// [`with_timestamp`](Self::with_timestamp) from RFC 3339 text with any offset (`Z`, `+01:00`, ...): the same
    /// instant is sent in UTC.
    ///
    /// # Errors
    /// [`TimestampError`] if the text is not RFC 3339 with an offset.
    pub fn with_timestamp_rfc3339(self, text: &str) -> Result<Self, TimestampError> {
        let at = text
            .parse::<jiff::Timestamp>()
            .map_err(|source| TimestampError {
                text: text.to_owned(),
                source,
            })?;
        Ok(self.with_timestamp(SystemTime::from(at)))
    }

    /// Sends this event under a caller-chosen idempotency key instead of a fresh UUID v7 (e.g. a UUID derived from a
    /// business id): the server stores one event per key, so recording the same fact again is stored once.
    #[must_use]
    pub fn with_idempotency_key(mut self, key: Uuid) -> Self {
        self.own.get_or_insert_default().idempotency_key = Some(key);
        self
    }

    /// The event's own time, if it was given one.
    pub fn timestamp(&self) -> Option<SystemTime> {
        self.own
            .as_ref()
            .and_then(|own| own.timestamp)
            .or_else(|| self.deferred().and_then(DeferredProperties::timestamp))
    }

    /// The caller-chosen idempotency key, if any.
    pub fn idempotency_key(&self) -> Option<Uuid> {
        self.own.as_ref().and_then(|own| own.idempotency_key)
    }

    /// The event's own `distinct_id`, if it was given one.
    fn distinct_id(&self) -> Option<&str> {
        self.own.as_ref().and_then(|own| own.distinct_id.as_deref())
    }

    /// The properties left to be built on the spooler thread, if any.
    fn deferred(&self) -> Option<&dyn DeferredProperties> {
        self.deferred.as_ref().map(|deferred| &*deferred.0)
    }

    /// Adds properties that are built on the spooler thread, when the event is serialized.
    #[cfg_attr(
        not(any(feature = "opentelemetry", feature = "tracing")),
        allow(dead_code)
    )]
    #[must_use]
    pub(crate) fn with_deferred(mut self, deferred: Arc<dyn DeferredProperties>) -> Self {
        self.deferred = Some(Deferred(deferred));
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
        let deferred = self
            .deferred()
            .map_or(0, |deferred| deferred.estimated_bytes());
        OVERHEAD + self.name.len() + self.distinct_id().map_or(0, str::len) + properties + deferred
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

/// An event as `record()` queued it: with its reading of the recording clock (or its own time), not yet converted
/// to wall-clock time, keyed nor serialized.
#[derive(Debug)]
pub(crate) struct QueuedEvent {
    recorded: Recorded,
    pub(crate) estimated_bytes: usize,
    pub(crate) event: Event,
}

/// When an event was recorded, as `record()` knows it.
#[derive(Debug, Clone, Copy)]
enum Recorded {
    /// The event brought its own time.
    Own(SystemTime),
    /// A reading of the reporter's recording clock.
    Read(Tick),
}

impl QueuedEvent {
    /// Stamps `event` with one reading of `clock`, unless it brings its own time. This is all the hot path does to
    /// an event; the spooler converts the reading to wall-clock time ([`Self::stamped`]) and mints the key.
    #[inline]
    pub(crate) fn new(event: Event, clock: &RecordingClock) -> Self {
        let estimated_bytes = event.estimated_bytes();
        let recorded = match event.timestamp() {
            Some(own) => Recorded::Own(own),
            None => Recorded::Read(clock.now()),
        };
        Self {
            recorded,
            estimated_bytes,
            event,
        }
    }

    /// The event with its recording instant in wall-clock time: its own, or its reading converted by `converter`
    /// (of the clock that stamped it).
    pub(crate) fn stamped(self, converter: &TickConverter) -> StampedEvent {
        let recorded_at = match self.recorded {
            Recorded::Own(own) => own,
            Recorded::Read(tick) => converter.wall_time(tick),
        };
        StampedEvent {
            recorded_at,
            estimated_bytes: self.estimated_bytes,
            event: self.event,
        }
    }
}

/// An event with its recording instant in wall-clock time, on the spooler's thread: not yet keyed nor serialized.
#[derive(Debug)]
pub(crate) struct StampedEvent {
    /// The event's own time, or the instant `record()` read from the clock.
    recorded_at: SystemTime,
    pub(crate) estimated_bytes: usize,
    pub(crate) event: Event,
}

impl StampedEvent {
    /// Stamps `event` with the wall clock's time now, unless it brings its own time (tests build stored forms
    /// with it; `record()` queues a [`QueuedEvent`]).
    #[cfg(test)]
    pub(crate) fn stamp(event: Event) -> Self {
        let estimated_bytes = event.estimated_bytes();
        let recorded_at = event.timestamp().unwrap_or_else(SystemTime::now);
        Self {
            recorded_at,
            estimated_bytes,
            event,
        }
    }

    /// The event's idempotency key: its own, else the one its deferred properties derive (an OpenTelemetry span's,
    /// from its ids), else a fresh UUID v7 minted on this thread for the recording instant. Called once per event,
    /// on the spooler's thread, before it is stored: the key is part of the stored record from then on.
    ///
    /// A minted id carries the recording instant in its time bits, except when events recorded on several threads
    /// reach the minting thread out of order within a millisecond or two: the id then carries the latest instant
    /// minted so far, so that the ids of one spooler stay ordered. The stored `timestamp` is always the recording
    /// instant itself.
    pub(crate) fn key(&self) -> Uuid {
        self.event
            .idempotency_key()
            .or_else(|| {
                self.event
                    .deferred()
                    .and_then(DeferredProperties::idempotency_key)
            })
            .unwrap_or_else(|| new_v7_at(self.recorded_at))
    }

    /// Serializes the event under `key` in the canonical stored form (one JSON object of the protocol's `batch`
    /// array) into `buffer` (cleared first). The timestamp is the recording instant to the millisecond, or to the
    /// nanosecond when the event brought its own time or key.
    ///
    /// # Errors
    /// If a property cannot be serialized (serde_json's own values always can) or the event's own time is outside
    /// the years -9999 to 9999; the caller drops the event (counted as unserializable).
    pub(crate) fn serialize_into(
        &self,
        key: Uuid,
        distinct_id: &str,
        buffer: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        buffer.clear();
        let at = jiff::Timestamp::try_from(self.recorded_at).map_err(serde::ser::Error::custom)?;
        let own_time_or_key =
            self.event.timestamp().is_some() || self.event.idempotency_key().is_some();
        let timestamp = if own_time_or_key {
            at.to_string()
        } else {
            format!("{at:.3}")
        };
        let deferred = match self.event.deferred() {
            Some(deferred) => deferred.build()?,
            None => Vec::new(),
        };
        let wire = WireEvent {
            uuid: key,
            event: &self.event.name,
            distinct_id: self.event.distinct_id().unwrap_or(distinct_id),
            timestamp,
            properties: WireProperties {
                own: &self.event.properties,
                deferred: &deferred,
            },
        };
        serde_json::to_writer(buffer, &wire)
    }
}

/// An event read back from its canonical stored form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredEvent {
    pub(crate) uuid: Uuid,
    pub(crate) name: String,
    pub(crate) distinct_id: String,
    /// RFC 3339, as stored (UTC).
    pub(crate) timestamp_text: String,
    pub(crate) timestamp: jiff::Timestamp,
    pub(crate) properties: serde_json::Map<String, Value>,
}

/// Why a stored record is not an event in the canonical form (damaged, or written by something else).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoredFormError {
    /// Not the JSON object of the canonical form.
    #[error("the stored record is not a canonical event object")]
    Json(#[source] serde_json::Error),
    /// The `timestamp` is not RFC 3339.
    #[error("the stored timestamp {text:?} is not RFC 3339")]
    Timestamp {
        text: String,
        #[source]
        source: jiff::Error,
    },
}

/// Reads a record of the canonical stored form.
///
/// # Errors
/// [`StoredFormError`] when the record is not one; the sender dead-letters such a record alone.
pub(crate) fn decode_stored(record: &[u8]) -> Result<StoredEvent, StoredFormError> {
    #[derive(serde::Deserialize)]
    struct Stored {
        uuid: Uuid,
        event: String,
        distinct_id: String,
        timestamp: String,
        #[serde(default)]
        properties: serde_json::Map<String, Value>,
    }
    let stored: Stored = serde_json::from_slice(record).map_err(StoredFormError::Json)?;
    let timestamp = stored
        .timestamp
        .parse::<jiff::Timestamp>()
        .map_err(|source| StoredFormError::Timestamp {
            text: stored.timestamp.clone(),
            source,
        })?;
    Ok(StoredEvent {
        uuid: stored.uuid,
        name: stored.event,
        distinct_id: stored.distinct_id,
        timestamp_text: stored.timestamp,
        timestamp,
        properties: stored.properties,
    })
}

thread_local! {
    /// A UUID v7 context per thread (in practice the spooler's, which mints every key): `Uuid::now_v7()` shares one
    /// behind a global mutex. Per thread, ids are ordered; across threads (several reporters in one process) they
    /// are unique (a random 41-bit counter seed per millisecond plus random bits) and ordered to the millisecond.
    static UUID_CONTEXT: uuid::ContextV7 = const { uuid::ContextV7::new() };
}

/// A fresh UUID v7 for the instant `at` (to the millisecond) from this thread's context, or from a context of its
/// own while the thread's locals are being destroyed.
fn new_v7_at(at: SystemTime) -> Uuid {
    let since_epoch = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let (seconds, millis_as_nanos) = (
        since_epoch.as_secs(),
        since_epoch.subsec_millis() * 1_000_000,
    );
    UUID_CONTEXT
        .try_with(|context| {
            Uuid::new_v7(uuid::Timestamp::from_unix(
                context,
                seconds,
                millis_as_nanos,
            ))
        })
        .unwrap_or_else(|_| {
            Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::ContextV7::new(),
                seconds,
                millis_as_nanos,
            ))
        })
}

#[derive(serde::Serialize)]
struct WireEvent<'a> {
    uuid: Uuid,
    event: &'a str,
    distinct_id: &'a str,
    timestamp: String,
    properties: WireProperties<'a>,
}

/// An event's own properties, then the deferred ones, as one JSON object.
struct WireProperties<'a> {
    own: &'a [(Cow<'static, str>, Value)],
    deferred: &'a [(&'static str, DeferredValue)],
}

impl serde::Serialize for WireProperties<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.own.len() + self.deferred.len()))?;
        for (key, value) in self.own {
            map.serialize_entry(key.as_ref(), value)?;
        }
        for (key, value) in self.deferred {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
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

    #[test]
    fn the_wire_form_follows_the_protocol() {
        let event = Event::new("cli_invocation")
            .with("command", "deploy")
            .with("duration_ms", 412);
        let mut stamped = StampedEvent::stamp(event);
        stamped.recorded_at =
            SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123);
        let key = stamped.key();
        assert_eq!(key.get_version_num(), 7);
        assert_eq!(
            key.get_timestamp().unwrap().to_unix(),
            (1_795_000_000, 123_000_000),
            "the id carries the recording instant"
        );
        let mut buffer = Vec::new();
        stamped
            .serialize_into(key, "install-1", &mut buffer)
            .unwrap();
        let value: Value = serde_json::from_slice(&buffer).unwrap();
        assert_eq!(value["uuid"], key.to_string());
        assert_eq!(value["event"], "cli_invocation");
        assert_eq!(value["distinct_id"], "install-1");
        assert_eq!(value["timestamp"], "2026-11-18T11:06:40.123Z");
        assert_eq!(
            value["properties"],
            serde_json::json!({"command": "deploy", "duration_ms": 412})
        );
        assert_eq!(uuid_of(&buffer), Some(key.to_string()));
    }

    #[test]
    fn an_event_keeps_what_most_events_lack_behind_one_pointer_so_a_queue_slot_stays_small() {
        // The name, the properties, the boxed own stamp and the deferred properties' pointer: every byte more is
        // copied by every `record()`.
        assert!(
            size_of::<Event>() <= 72,
            "Event is {} bytes",
            size_of::<Event>()
        );
        let event = Event::new("login").with_distinct_id("user-7");
        assert_eq!(event.distinct_id(), Some("user-7"));
        assert_eq!(event.timestamp(), None);
    }

    #[test]
    fn an_event_level_distinct_id_wins() {
        let stamped = StampedEvent::stamp(Event::new("login").with_distinct_id("user-7"));
        let mut buffer = Vec::new();
        stamped
            .serialize_into(stamped.key(), "install-1", &mut buffer)
            .unwrap();
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
                .map(|_| {
                    scope.spawn(|| {
                        (0..5000)
                            .map(|_| new_v7_at(SystemTime::now()))
                            .collect::<Vec<_>>()
                    })
                })
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
    fn an_own_time_in_any_offset_is_stored_as_the_same_instant_in_utc() {
        let event = Event::new("order_paid")
            .with_timestamp_rfc3339("2026-11-23T11:55:10.123456789+01:00")
            .unwrap();
        let mut buffer = Vec::new();
        let stamped = StampedEvent::stamp(event);
        stamped
            .serialize_into(stamped.key(), "install-1", &mut buffer)
            .unwrap();
        let stored = decode_stored(&buffer).unwrap();
        assert_eq!(stored.timestamp_text, "2026-11-23T10:55:10.123456789Z");
        assert_eq!(stored.uuid.get_version_num(), 7);
    }

    #[test]
    fn a_timestamp_without_an_offset_is_refused_with_the_text() {
        let error = Event::new("e")
            .with_timestamp_rfc3339("2026-11-23T10:55:10")
            .unwrap_err();
        assert_eq!(error.text(), "2026-11-23T10:55:10");
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn a_caller_chosen_key_is_the_uuid_and_the_recording_instant_is_stamped() {
        let key = Uuid::from_u128(42);
        let before = jiff::Timestamp::now();
        let stamped = StampedEvent::stamp(Event::new("e").with_idempotency_key(key));
        let after = jiff::Timestamp::now();
        assert_eq!(stamped.key(), key);
        let mut buffer = Vec::new();
        stamped
            .serialize_into(stamped.key(), "install-1", &mut buffer)
            .unwrap();
        let stored = decode_stored(&buffer).unwrap();
        assert_eq!(stored.uuid, key);
        assert!(before <= stored.timestamp && stored.timestamp <= after);
    }

    #[test]
    fn a_stored_event_decodes_back_to_its_fields() {
        let mut buffer = Vec::new();
        let stamped = StampedEvent::stamp(Event::new("e").with("n", 1).with_distinct_id("user-7"));
        stamped
            .serialize_into(stamped.key(), "install-1", &mut buffer)
            .unwrap();
        let stored = decode_stored(&buffer).unwrap();
        assert_eq!(stored.name, "e");
        assert_eq!(stored.distinct_id, "user-7");
        assert_eq!(stored.properties["n"], 1);
        assert!(decode_stored(b"{\"uuid\":\"x\"}").is_err());
    }

    #[derive(Debug)]
    struct Deferred(Option<i64>);

    impl DeferredProperties for Deferred {
        fn estimated_bytes(&self) -> usize {
            1000
        }

        fn build(&self) -> Result<Vec<(&'static str, DeferredValue)>, serde_json::Error> {
            match self.0 {
                Some(n) => Ok(vec![(
                    "built",
                    DeferredValue::Json(serde_json::value::to_raw_value(&n)?),
                )]),
                None => Err(serde::ser::Error::custom("cannot build")),
            }
        }
    }

    /// Deferred properties that derive the event's key.
    #[derive(Debug)]
    struct Keyed(Uuid);

    impl DeferredProperties for Keyed {
        fn estimated_bytes(&self) -> usize {
            0
        }

        fn build(&self) -> Result<Vec<(&'static str, DeferredValue)>, serde_json::Error> {
            Ok(Vec::new())
        }

        fn idempotency_key(&self) -> Option<Uuid> {
            Some(self.0)
        }
    }

    #[test]
    fn a_key_derived_by_deferred_properties_is_minted_at_keying_and_an_own_key_wins_over_it() {
        let derived = Uuid::from_u128(5);
        let event = Event::new("e").with_deferred(Arc::new(Keyed(derived)));
        assert_eq!(
            event.idempotency_key(),
            None,
            "nothing is keyed in record()'s caller"
        );
        assert_eq!(StampedEvent::stamp(event.clone()).key(), derived);
        assert_eq!(
            StampedEvent::stamp(event.clone()).key(),
            derived,
            "the same key again"
        );
        let own = Uuid::from_u128(6);
        assert_eq!(
            StampedEvent::stamp(event.with_idempotency_key(own)).key(),
            own
        );
    }

    #[test]
    fn deferred_properties_are_built_at_serialization_beside_the_own_ones_or_fail_it() {
        let event = Event::new("e")
            .with("own", 1)
            .with_deferred(Arc::new(Deferred(Some(2))));
        assert!(event.estimated_bytes() >= 1000);
        let mut buffer = Vec::new();
        {
            let stamped = StampedEvent::stamp(event);
            stamped.serialize_into(stamped.key(), "install-1", &mut buffer)
        }
        .unwrap();
        let stored = decode_stored(&buffer).unwrap();
        assert_eq!(stored.properties.len(), 2);
        assert_eq!(
            (&stored.properties["own"], &stored.properties["built"]),
            (&Value::from(1), &Value::from(2))
        );

        let failing = Event::new("e").with_deferred(Arc::new(Deferred(None)));
        assert!(
            {
                let stamped = StampedEvent::stamp(failing);
                stamped.serialize_into(stamped.key(), "install-1", &mut buffer)
            }
            .is_err()
        );
    }

    #[test]
    fn the_wire_form_is_pinned() {
        let event = Event::new("tool_call")
            .with("tool", "grep")
            .with("duration_ms", 12)
            .with("ok", true)
            .with("args", serde_json::json!(["-n", "TODO"]));
        let stamped = StampedEvent {
            recorded_at: SystemTime::UNIX_EPOCH
                + std::time::Duration::from_millis(1_795_000_000_123),
            estimated_bytes: event.estimated_bytes(),
            event,
        };
        let mut buffer = Vec::new();
        stamped
            .serialize_into(
                Uuid::parse_str("01a1ee56-5e7b-7c3d-9e4f-5a6b7c8d9e0f").unwrap(),
                "7d1c6a3e-1f0b-4c8e-9a51-3f2d4b6c8e90",
                &mut buffer,
            )
            .unwrap();
        insta::assert_snapshot!(String::from_utf8(buffer).unwrap());
    }
}
