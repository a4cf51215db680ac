//! OTLP values as plain JSON: attributes, `AnyValue`s, ids, times and doubles, and the helpers that add `otel.*`
//! keys to an event's properties.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde_json::{Map, Value, json};

/// Lowercase hex, as OTLP/JSON writes ids.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// RFC 3339 (UTC, nanoseconds as needed) of a Unix time in nanoseconds; `None` for 0, which OTLP uses for "unset".
pub(super) fn rfc3339_from_unix_nanos(nanos: u64) -> Option<String> {
    if nanos == 0 {
        return None;
    }
    jiff::Timestamp::from_nanosecond(i128::from(nanos))
        .ok()
        .map(|timestamp| timestamp.to_string())
}

/// A double as JSON: a number when finite, else `"NaN"`/`"Infinity"`/`"-Infinity"` as proto3 JSON writes them.
pub(super) fn finite_or_string(double: f64) -> Value {
    if double.is_finite() {
        json!(double)
    } else if double.is_nan() {
        json!("NaN")
    } else if double > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

/// An `AnyValue` as plain JSON (ints as numbers, bytes as lowercase hex, key-value lists as objects).
pub(super) fn any_value_json(value: &AnyValue) -> Value {
    match &value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(text)) => json!(text),
        Some(any_value::Value::BoolValue(boolean)) => json!(boolean),
        Some(any_value::Value::IntValue(int)) => json!(int),
        Some(any_value::Value::DoubleValue(double)) => finite_or_string(*double),
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.iter().map(any_value_json).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => Value::Object(attributes_map(&list.values)),
        Some(any_value::Value::BytesValue(bytes)) => json!(hex(bytes)),
        // A profiling-only reference; other signals treat it as absent, as the specification asks.
        Some(any_value::Value::StringValueStrindex(_)) => Value::Null,
    }
}

/// Attributes as a JSON object.
pub(super) fn attributes_map(attributes: &[KeyValue]) -> Map<String, Value> {
    attributes
        .iter()
        .map(|attribute| {
            (
                attribute.key.clone(),
                attribute
                    .value
                    .as_ref()
                    .map(any_value_json)
                    .unwrap_or(Value::Null),
            )
        })
        .collect()
}

pub(super) fn insert_nonempty(properties: &mut Map<String, Value>, key: &str, text: &str) {
    if !text.is_empty() {
        properties.insert(key.to_owned(), json!(text));
    }
}

/// Inserts a Unix time in nanoseconds unless it is 0 (OTLP's "unset"), as a decimal string: as OTLP/JSON writes
/// 64-bit integers, so that no reader that holds numbers as doubles (JavaScript) rounds it.
pub(super) fn insert_unix_nanos(properties: &mut Map<String, Value>, key: &str, nanos: u64) {
    if nanos != 0 {
        properties.insert(key.to_owned(), Value::String(nanos.to_string()));
    }
}

pub(super) fn insert_some(properties: &mut Map<String, Value>, key: &str, double: Option<f64>) {
    if let Some(double) = double {
        properties.insert(key.to_owned(), finite_or_string(double));
    }
}
