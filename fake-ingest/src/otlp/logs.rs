//! Log records to events: one event per record, named by its event name or body, keyed by its `log.record.uid`
//! attribute, or else by a hash of the resource, the scope and the whole record.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message as _;
use serde_json::{Value, json};

use super::Decoded;
use super::values::{
    any_value_json, attributes_map, hex, insert_nonempty, insert_unix_nanos,
    rfc3339_from_unix_nanos,
};
use super::walk::{Origin, ResourceGroup, ScopeGroup, walk};
use crate::event::{IncomingEvent, SharedProperties};

pub(super) fn decode(
    request: ExportLogsServiceRequest,
    shared: Option<Arc<SharedProperties>>,
) -> Decoded {
    let groups = request
        .resource_logs
        .into_iter()
        .map(|resource_logs| ResourceGroup {
            resource: resource_logs.resource,
            scopes: resource_logs
                .scope_logs
                .into_iter()
                .map(|scope_logs| ScopeGroup {
                    scope: scope_logs.scope,
                    records: scope_logs.log_records,
                })
                .collect(),
        });
    walk(groups, shared, |origin, index, record, decoded| {
        if !matches!(record.trace_id.len(), 0 | 16) {
            decoded.rejected.reject(|| {
                format!(
                    "log record at {} has a trace id of {} bytes (must be 16, or empty)",
                    origin.at(index),
                    record.trace_id.len()
                )
            });
            return;
        }
        if !matches!(record.span_id.len(), 0 | 8) {
            decoded.rejected.reject(|| {
                format!(
                    "log record at {} has a span id of {} bytes (must be 8, or empty)",
                    origin.at(index),
                    record.span_id.len()
                )
            });
            return;
        }
        decoded.events.push(log_event(origin, &record));
    })
}

fn log_event(origin: &Origin, record: &LogRecord) -> IncomingEvent {
    let body = record
        .body
        .as_ref()
        .map(any_value_json)
        .unwrap_or(Value::Null);
    let name = if !record.event_name.is_empty() {
        record.event_name.clone()
    } else {
        match &body {
            Value::String(text) => text.clone(),
            Value::Null => "log".to_owned(),
            other => other.to_string(),
        }
    };
    let time = if record.time_unix_nano != 0 {
        record.time_unix_nano
    } else {
        record.observed_time_unix_nano
    };

    let mut properties = attributes_map(&record.attributes);
    properties.insert("otel.body".to_owned(), body);
    insert_unix_nanos(
        &mut properties,
        "otel.time_unix_nano",
        record.time_unix_nano,
    );
    insert_unix_nanos(
        &mut properties,
        "otel.observed_time_unix_nano",
        record.observed_time_unix_nano,
    );
    if record.severity_number != 0 {
        properties.insert(
            "otel.severity_number".to_owned(),
            json!(record.severity_number),
        );
    }
    insert_nonempty(&mut properties, "otel.severity_text", &record.severity_text);
    insert_nonempty(&mut properties, "otel.event_name", &record.event_name);
    insert_nonempty(&mut properties, "otel.trace_id", &hex(&record.trace_id));
    insert_nonempty(&mut properties, "otel.span_id", &hex(&record.span_id));

    IncomingEvent {
        dedupe_key: log_dedupe_key(origin, record),
        has_idempotency_key: true,
        name,
        timestamp: rfc3339_from_unix_nanos(time),
        distinct_id: None,
        resource: Some(Arc::clone(&origin.resource)),
        shared: Some(Arc::clone(&origin.scope)),
        properties,
    }
}

/// A log record's dedupe key: its `log.record.uid` attribute when it has a non-empty string one (the semantic
/// convention for a log record's unique id; a UUID is normalized to lowercase hyphenated, as `/ingest` and PostHog
/// keys are), else `log:` and the hash of the resource, the scope and the whole record.
fn log_dedupe_key(origin: &Origin, record: &LogRecord) -> String {
    let uid = record
        .attributes
        .iter()
        .find(|attribute| attribute.key == "log.record.uid")
        .and_then(|attribute| attribute.value.as_ref()?.value.as_ref());
    if let Some(any_value::Value::StringValue(uid)) = uid
        && !uid.is_empty()
    {
        return match uuid::Uuid::parse_str(uid) {
            Ok(parsed) => parsed.hyphenated().to_string(),
            Err(_) => uid.clone(),
        };
    }
    let mut key = origin.key;
    key.part(&record.encode_to_vec());
    format!("log:{}", key.finish_hex())
}
