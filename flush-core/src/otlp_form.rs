//! OpenTelemetry spans and log records in the canonical stored form: the reserved properties that carry them
//! through the spool, written by the OpenTelemetry processors and read back by the OTLP sinks.
//!
//! The spool stays sink-independent: a span or a log record is an ordinary [`Event`], stored once in the canonical
//! form, whose properties hold the record itself in OTLP/JSON (the proto3 JSON mapping of the `opentelemetry-proto`
//! messages: ids in hex, 64-bit integers as strings, every attribute with its type), so nothing of its identity or
//! shape is lost through the spool or a crash:
//!
//! | property | holds |
//! |---|---|
//! | `otel.span` | the `Span` message: trace id, span id, parent span id, trace state, flags, name, kind, start and end time, typed attributes, events, links, status, dropped counts |
//! | `otel.log` | the `LogRecord` message: time, observed time, severity number and text, body, typed attributes, event name, trace id, span id, flags |
//! | `otel.scope` | the `InstrumentationScope` message the record was emitted under (name, version, attributes) |
//!
//! The message in `otel.span` or `otel.log` is authoritative; the event's name, time and key are derived from it so
//! that every sink names and times it sensibly:
//! - a span: named by the span name, timed at its start, its idempotency key [`span_key`] (a UUID v5 of the trace id
//!   and span id), so a span recorded again is stored once;
//! - a log record: named by its event name, else its scope's name (the target, for `tracing` bridges), else `log`;
//!   timed at its own time, else its observed time; a fresh UUID v7 key (a log record has no identity of its own).
//!
//! The OTLP sinks send the stored message as it is (adding `log.record.uid` and `distinct_id` to a log record);
//! `/ingest` and PostHog send these properties as nested JSON objects like any other. A record of one signal sent
//! through the other signal's sink is carried, never dropped: see [`OtlpTraces`](crate::sink::OtlpTraces) and
//! [`OtlpLogs`](crate::sink::OtlpLogs).

#[cfg(any(test, feature = "opentelemetry"))]
use std::borrow::Cow;
#[cfg(test)]
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
#[cfg(test)]
use serde_json::Value;
#[cfg(any(test, feature = "opentelemetry"))]
use serde_json::value::to_raw_value;
#[cfg(any(test, feature = "opentelemetry"))]
use uuid::Uuid;

#[cfg(any(test, feature = "opentelemetry"))]
use crate::event::DeferredValue;
#[cfg(test)]
use crate::event::Event;
use crate::stored_view::StoredView;

/// The property that holds a span (its `Span` message in OTLP/JSON).
pub(crate) const SPAN_PROPERTY: &str = "otel.span";
/// The property that holds a log record (its `LogRecord` message in OTLP/JSON).
pub(crate) const LOG_PROPERTY: &str = "otel.log";
/// The property that holds the record's instrumentation scope (its `InstrumentationScope` message in OTLP/JSON).
pub(crate) const SCOPE_PROPERTY: &str = "otel.scope";

/// The namespace of [`span_key`]'s UUID v5 (fixed forever: changing it would store every resent span twice).
#[cfg(any(test, feature = "opentelemetry"))]
const SPAN_KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c4e_8b3a_4f5e_9d7c_1a2b_3c4d_5e6f);

/// A log record's name when it has neither an event name nor a scope name.
#[cfg(any(test, feature = "opentelemetry"))]
const LOG_FALLBACK_NAME: &str = "log";

/// The idempotency key of the span `trace_id` + `span_id`: the UUID v5 (SHA-1, name-based) of the 16-byte trace
/// id followed by the 8-byte span id in a flush-core namespace. Deterministic, so a span recorded twice (say, again
/// after a crash) is stored once.
#[cfg(any(test, feature = "opentelemetry"))]
pub(crate) fn span_key(trace_id: &[u8], span_id: &[u8]) -> Uuid {
    let mut name = Vec::with_capacity(trace_id.len() + span_id.len());
    name.extend_from_slice(trace_id);
    name.extend_from_slice(span_id);
    Uuid::new_v5(&SPAN_KEY_NAMESPACE, &name)
}

/// The properties that carry `span`, emitted under `scope`, as JSON text.
///
/// # Errors
/// If the message cannot be put into JSON (the `opentelemetry-proto` serializers only fail on a custom error).
#[cfg(any(test, feature = "opentelemetry"))]
pub(crate) fn span_properties(
    span: &Span,
    scope: &InstrumentationScope,
) -> Result<Vec<(&'static str, DeferredValue)>, serde_json::Error> {
    Ok(vec![
        (SPAN_PROPERTY, DeferredValue::Json(to_raw_value(span)?)),
        (SCOPE_PROPERTY, DeferredValue::Json(to_raw_value(scope)?)),
    ])
}

/// The name of a log record's event: its event name, else its scope's name, else `log`. A `'static` event name
/// (the SDK's, a `tracing` callsite's) is moved, not copied.
#[cfg(any(test, feature = "opentelemetry"))]
pub(crate) fn log_event_name(event_name: Cow<'static, str>, scope_name: &str) -> Cow<'static, str> {
    if !event_name.is_empty() {
        event_name
    } else if !scope_name.is_empty() {
        Cow::Owned(scope_name.to_owned())
    } else {
        Cow::Borrowed(LOG_FALLBACK_NAME)
    }
}

/// The properties that carry `record`, emitted under `scope`, as JSON text.
///
/// # Errors
/// If the message cannot be put into JSON (the `opentelemetry-proto` serializers only fail on a custom error).
#[cfg(any(test, feature = "opentelemetry"))]
pub(crate) fn log_properties(
    record: &LogRecord,
    scope: &InstrumentationScope,
) -> Result<Vec<(&'static str, DeferredValue)>, serde_json::Error> {
    Ok(vec![
        (LOG_PROPERTY, DeferredValue::Json(to_raw_value(record)?)),
        (SCOPE_PROPERTY, DeferredValue::Json(to_raw_value(scope)?)),
    ])
}

/// The event that carries `span` (emitted under `scope`), its properties built at once.
#[cfg(test)]
pub(crate) fn span_event(span: &Span, scope: &InstrumentationScope) -> Event {
    // Named by the span, timed at its start, keyed by its ids (as the span processor's deferred properties do).
    let shell = Event::new(span.name.clone())
        .with_timestamp(from_unix_nanos(span.start_time_unix_nano))
        .with_idempotency_key(span_key(&span.trace_id, &span.span_id));
    span_properties(span, scope)
        .unwrap()
        .into_iter()
        .fold(shell, |event, (key, value)| event.with(key, parsed(&value)))
}

/// The event that carries `record` (emitted under `scope`), its properties built at once.
#[cfg(test)]
pub(crate) fn log_event(record: &LogRecord, scope: &InstrumentationScope) -> Event {
    let time = [record.time_unix_nano, record.observed_time_unix_nano]
        .into_iter()
        .find(|time| *time != 0)
        .map(from_unix_nanos);
    let name = log_event_name(Cow::Owned(record.event_name.clone()), &scope.name);
    let shell = match time {
        Some(time) => Event::new(name).with_timestamp(time),
        None => Event::new(name),
    };
    log_properties(record, scope)
        .unwrap()
        .into_iter()
        .fold(shell, |event, (key, value)| event.with(key, parsed(&value)))
}

/// A built property as a JSON value (test events carry their properties as ordinary ones).
#[cfg(test)]
fn parsed(value: &DeferredValue) -> Value {
    serde_json::to_value(value).unwrap()
}

/// The span `event` holds, if it holds one.
///
/// # Errors
/// If `otel.span` is there but is not a `Span` in OTLP/JSON.
pub(crate) fn stored_span(event: &StoredView<'_>) -> Result<Option<Span>, serde_json::Error> {
    stored(event, SPAN_PROPERTY)
}

/// The log record `event` holds, if it holds one.
///
/// # Errors
/// If `otel.log` is there but is not a `LogRecord` in OTLP/JSON.
pub(crate) fn stored_log(event: &StoredView<'_>) -> Result<Option<LogRecord>, serde_json::Error> {
    stored(event, LOG_PROPERTY)
}

/// The instrumentation scope `event` holds, if it holds one.
///
/// # Errors
/// If `otel.scope` is there but is not an `InstrumentationScope` in OTLP/JSON.
pub(crate) fn stored_scope(
    event: &StoredView<'_>,
) -> Result<Option<InstrumentationScope>, serde_json::Error> {
    stored(event, SCOPE_PROPERTY)
}

/// The message in the property `key`, read from its JSON text.
fn stored<T: serde::de::DeserializeOwned>(
    event: &StoredView<'_>,
    key: &str,
) -> Result<Option<T>, serde_json::Error> {
    event
        .property(key)
        .map(|text| serde_json::from_str(text.get()))
        .transpose()
}

#[cfg(test)]
fn from_unix_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{Status, span};

    use super::*;
    use crate::stored_view::stored_record;

    fn typed(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn sample_span() -> Span {
        Span {
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            parent_span_id: (9..=16).collect(),
            trace_state: "k=v".into(),
            flags: 0x301,
            name: "GET /items".into(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: 1_795_431_310_123_456_789,
            end_time_unix_nano: 1_795_431_310_223_456_789,
            attributes: vec![
                typed("n", any_value::Value::IntValue(i64::MAX)),
                typed("ratio", any_value::Value::DoubleValue(1.0)),
                typed("ok", any_value::Value::BoolValue(true)),
                typed("raw", any_value::Value::BytesValue(vec![0, 255])),
            ],
            dropped_attributes_count: 2,
            events: vec![span::Event {
                time_unix_nano: 1_795_431_310_200_000_000,
                name: "retry".into(),
                attributes: vec![typed("attempt", any_value::Value::IntValue(2))],
                dropped_attributes_count: 0,
            }],
            dropped_events_count: 0,
            links: vec![span::Link {
                trace_id: vec![7; 16],
                span_id: vec![8; 8],
                trace_state: String::new(),
                attributes: vec![typed("why", any_value::Value::StringValue("fan-in".into()))],
                dropped_attributes_count: 0,
                flags: 1,
            }],
            dropped_links_count: 0,
            status: Some(Status {
                message: "boom".into(),
                code: 2,
            }),
        }
    }

    #[test]
    fn a_span_survives_the_stored_form_exactly() {
        let span = sample_span();
        let scope = InstrumentationScope {
            name: "shop".into(),
            version: "2.0".into(),
            ..InstrumentationScope::default()
        };
        let record = stored_record(span_event(&span, &scope));
        let stored = StoredView::read(&record).unwrap();
        assert_eq!(stored.name(), "GET /items");
        assert_eq!(stored.uuid(), span_key(&span.trace_id, &span.span_id));
        assert_eq!(stored.timestamp_rfc3339(), "2026-11-23T10:55:10.123456789Z");
        assert_eq!(stored_span(&stored).unwrap(), Some(span));
        assert_eq!(stored_scope(&stored).unwrap(), Some(scope));
        assert_eq!(stored_log(&stored).unwrap(), None);
    }

    #[test]
    fn a_log_record_survives_the_stored_form_exactly() {
        let record = LogRecord {
            time_unix_nano: 0,
            observed_time_unix_nano: 1_795_431_310_000_000_001,
            severity_number: 13,
            severity_text: "WARN".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue("disk almost full".into())),
            }),
            attributes: vec![typed("free", any_value::Value::DoubleValue(0.5))],
            trace_id: vec![3; 16],
            span_id: vec![4; 8],
            flags: 1,
            ..LogRecord::default()
        };
        let scope = InstrumentationScope {
            name: "my_app::disk".into(),
            ..InstrumentationScope::default()
        };
        let stored_bytes = stored_record(log_event(&record, &scope));
        let stored = StoredView::read(&stored_bytes).unwrap();
        assert_eq!(stored.name(), "my_app::disk");
        assert_eq!(stored.timestamp_rfc3339(), "2026-11-23T10:55:10.000000001Z");
        assert_eq!(stored.uuid().get_version_num(), 7);
        assert_eq!(stored_log(&stored).unwrap(), Some(record));
    }

    #[test]
    fn the_span_key_depends_on_both_ids_and_nothing_else() {
        let key = span_key(&[1; 16], &[2; 8]);
        assert_eq!(key, span_key(&[1; 16], &[2; 8]));
        assert_eq!(key.get_version_num(), 5);
        assert_ne!(key, span_key(&[1; 16], &[3; 8]));
        assert_ne!(key, span_key(&[4; 16], &[2; 8]));
    }

    #[test]
    fn a_damaged_stored_span_is_an_error_not_a_missing_span() {
        let record = stored_record(Event::new("e").with(SPAN_PROPERTY, "not a span"));
        assert!(stored_span(&StoredView::read(&record).unwrap()).is_err());
    }
}
