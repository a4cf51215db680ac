//! Spans to events: one event per span, named by the span name, keyed by its trace id and span id.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;

use super::Decoded;
use super::values::{
    attributes_map, hex, insert_nonempty, insert_unix_nanos, rfc3339_from_unix_nanos,
};
use super::walk::{Origin, ResourceGroup, ScopeGroup, walk};
use crate::event::{IncomingEvent, SharedProperties};

pub(super) fn decode(
    request: ExportTraceServiceRequest,
    shared: Option<Arc<SharedProperties>>,
) -> Decoded {
    let groups = request
        .resource_spans
        .into_iter()
        .map(|resource_spans| ResourceGroup {
            resource: resource_spans.resource,
            scopes: resource_spans
                .scope_spans
                .into_iter()
                .map(|scope_spans| ScopeGroup {
                    scope: scope_spans.scope,
                    records: scope_spans.spans,
                })
                .collect(),
        });
    walk(groups, shared, |origin, index, span, decoded| {
        if span.trace_id.len() != 16 || span.trace_id.iter().all(|byte| *byte == 0) {
            decoded.rejected.reject(|| {
                format!(
                    "span at {} has an invalid trace id ({} bytes; must be 16, not all zero)",
                    origin.at(index),
                    span.trace_id.len()
                )
            });
            return;
        }
        if span.span_id.len() != 8 || span.span_id.iter().all(|byte| *byte == 0) {
            decoded.rejected.reject(|| {
                format!(
                    "span at {} has an invalid span id ({} bytes; must be 8, not all zero)",
                    origin.at(index),
                    span.span_id.len()
                )
            });
            return;
        }
        if !matches!(span.parent_span_id.len(), 0 | 8) {
            decoded.rejected.reject(|| {
                format!(
                    "span at {} has a parent span id of {} bytes (must be 8, or empty)",
                    origin.at(index),
                    span.parent_span_id.len()
                )
            });
            return;
        }
        decoded.events.push(span_event(origin, &span));
    })
}

fn span_event(origin: &Origin, span: &Span) -> IncomingEvent {
    let trace_id = hex(&span.trace_id);
    let span_id = hex(&span.span_id);
    let mut properties = attributes_map(&span.attributes);
    properties.insert("otel.trace_id".to_owned(), json!(trace_id));
    properties.insert("otel.span_id".to_owned(), json!(span_id));
    insert_nonempty(
        &mut properties,
        "otel.parent_span_id",
        &hex(&span.parent_span_id),
    );
    properties.insert("otel.kind".to_owned(), json!(span.kind));
    insert_unix_nanos(
        &mut properties,
        "otel.start_time_unix_nano",
        span.start_time_unix_nano,
    );
    insert_unix_nanos(
        &mut properties,
        "otel.end_time_unix_nano",
        span.end_time_unix_nano,
    );
    if let Some(status) = &span.status {
        properties.insert("otel.status_code".to_owned(), json!(status.code));
        insert_nonempty(&mut properties, "otel.status_message", &status.message);
    }
    if !span.events.is_empty() {
        let names: Vec<&str> = span
            .events
            .iter()
            .map(|event| event.name.as_str())
            .collect();
        properties.insert("otel.events".to_owned(), json!(names));
    }
    if !span.links.is_empty() {
        properties.insert("otel.links".to_owned(), json!(span.links.len()));
    }
    IncomingEvent {
        dedupe_key: format!("span:{trace_id}:{span_id}"),
        has_idempotency_key: true,
        name: span.name.clone(),
        timestamp: rfc3339_from_unix_nanos(span.start_time_unix_nano),
        distinct_id: None,
        resource: Some(Arc::clone(&origin.resource)),
        shared: Some(Arc::clone(&origin.scope)),
        properties,
    }
}
