//! Captured OTLP records back out as OTLP/JSON export requests (`GET /_fake/events?format=otlp-json`,
//! `fake-ingest export --format otlp-json`, [`otlp_json_requests`]).
//!
//! Events of one signal become one `Export{Logs,Trace,Metrics}ServiceRequest` in the OTLP/JSON encoding: records
//! grouped under their resource and instrumentation scope (consecutive events with an equal resource and scope share
//! a group, in arrival order), trace and span ids as lowercase hex, 64-bit integers (times in nanoseconds, `intValue`,
//! counts) as decimal strings, enums as integers. Events of other protocols are left out.
//!
//! It is rebuilt from what the store keeps of a record, so it carries what the event carries: attributes are the
//! event's properties except the `otel.*` keys the decoder derives and `posthog.token`, each typed from its JSON
//! value (a string, a boolean, an integer, a double, an array or a key-value list; bytes were kept as hex and come
//! back as strings); a span's events come back with their names only and its links are not kept; an exponential
//! histogram point comes back without its buckets. Everything else a decoder reads (times, ids, severities,
//! bodies, kinds, statuses, metric kinds, units, temporality, values, counts, bucket counts, bounds, quantiles)
//! comes back as sent.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::event::{CapturedEvent, Protocol};

/// The OTLP/JSON export requests (`ExportLogsServiceRequest`, `ExportTraceServiceRequest`,
/// `ExportMetricsServiceRequest`) for the OTLP records among `events`: one per signal that has records, logs first,
/// then traces, then metrics; events of other protocols are left out. What a request carries of each record is in
/// `docs/PROTOCOL.md` ("Export").
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())?;
/// // ... OTLP exporters send to server.url() ...
/// for request in fake_ingest::otlp_json_requests(&server.events()) {
///     println!("{request}"); // {"resourceLogs":[...]}, {"resourceSpans":[...]}, ...
/// }
/// server.shutdown();
/// # Ok(())
/// # }
/// ```
pub fn otlp_json_requests(events: &[CapturedEvent]) -> Vec<Value> {
    let mut requests = Vec::new();
    for (protocol, resources_key, scopes_key, records_key) in [
        (
            Protocol::OtlpLogs,
            "resourceLogs",
            "scopeLogs",
            "logRecords",
        ),
        (Protocol::OtlpTraces, "resourceSpans", "scopeSpans", "spans"),
        (
            Protocol::OtlpMetrics,
            "resourceMetrics",
            "scopeMetrics",
            "metrics",
        ),
    ] {
        let of_signal: Vec<&CapturedEvent> = events
            .iter()
            .filter(|event| event.protocol == protocol)
            .collect();
        if of_signal.is_empty() {
            continue;
        }
        let resources: Vec<Value> = group_by_origin(&of_signal)
            .into_iter()
            .map(|resource| {
                let scopes: Vec<Value> = resource
                    .scopes
                    .into_iter()
                    .map(|scope| {
                        let records = match protocol {
                            Protocol::OtlpLogs => scope.events.iter().map(|e| log_record(e)).collect(),
                            Protocol::OtlpTraces => scope.events.iter().map(|e| span(e)).collect(),
                            _ => metrics(&scope.events),
                        };
                        let mut scope_json = Map::new();
                        scope_json.insert("scope".to_owned(), scope.scope);
                        scope_json.insert(records_key.to_owned(), Value::Array(records));
                        Value::Object(scope_json)
                    })
                    .collect();
                let mut resource_json = Map::new();
                resource_json.insert(
                    "resource".to_owned(),
                    json!({ "attributes": key_values(resource.attributes.iter().map(|(k, v)| (k.as_str(), v))) }),
                );
                resource_json.insert(scopes_key.to_owned(), Value::Array(scopes));
                Value::Object(resource_json)
            })
            .collect();
        requests.push(json!({ resources_key: resources }));
    }
    requests
}

/// Events under one resource, by scope.
struct ResourceGroup<'a> {
    attributes: Map<String, Value>,
    scopes: Vec<ScopeGroup<'a>>,
}

struct ScopeGroup<'a> {
    /// The `InstrumentationScope` in OTLP/JSON.
    scope: Value,
    events: Vec<Merged<'a>>,
}

/// An event with its properties merged (own and shared), as the export reads it.
struct Merged<'a> {
    event: &'a CapturedEvent,
    properties: BTreeMap<&'a str, &'a Value>,
}

impl<'a> Merged<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.properties.get(key).copied()
    }

    /// The record's own attributes: every property but the derived ones.
    fn attributes(&self) -> Vec<Value> {
        key_values(
            self.properties
                .iter()
                .filter(|(key, _)| !key.starts_with("otel.") && **key != "posthog.token")
                .map(|(key, value)| (*key, *value)),
        )
    }
}

/// Groups consecutive events with an equal resource, then consecutive events with an equal scope.
fn group_by_origin<'a>(events: &[&'a CapturedEvent]) -> Vec<ResourceGroup<'a>> {
    let mut groups: Vec<ResourceGroup<'a>> = Vec::new();
    for event in events {
        let merged = Merged {
            event,
            properties: event.event.merged_properties(),
        };
        let attributes = event.event.resource.as_deref().cloned().unwrap_or_default();
        let scope = scope_json(&merged);
        match groups.last_mut() {
            Some(group) if group.attributes == attributes => match group.scopes.last_mut() {
                Some(last) if last.scope == scope => last.events.push(merged),
                _ => group.scopes.push(ScopeGroup {
                    scope,
                    events: vec![merged],
                }),
            },
            _ => groups.push(ResourceGroup {
                attributes,
                scopes: vec![ScopeGroup {
                    scope,
                    events: vec![merged],
                }],
            }),
        }
    }
    groups
}

fn scope_json(event: &Merged<'_>) -> Value {
    let mut scope = Map::new();
    for (from, to) in [
        ("otel.scope.name", "name"),
        ("otel.scope.version", "version"),
    ] {
        if let Some(value) = event.get(from) {
            scope.insert(to.to_owned(), value.clone());
        }
    }
    Value::Object(scope)
}

/// Copies `from` into `record` as `to`, if the event has it.
fn copy(record: &mut Map<String, Value>, event: &Merged<'_>, from: &str, to: &str) {
    if let Some(value) = event.get(from) {
        record.insert(to.to_owned(), value.clone());
    }
}

/// Copies a 64-bit integer property as a decimal string (logs written before times were kept as strings hold
/// numbers).
fn copy_u64(record: &mut Map<String, Value>, event: &Merged<'_>, from: &str, to: &str) {
    match event.get(from) {
        Some(Value::Number(number)) => {
            record.insert(to.to_owned(), Value::String(number.to_string()));
        }
        Some(Value::String(text)) => {
            record.insert(to.to_owned(), Value::String(text.clone()));
        }
        _ => {}
    }
}

fn log_record(event: &Merged<'_>) -> Value {
    let mut record = Map::new();
    copy_u64(&mut record, event, "otel.time_unix_nano", "timeUnixNano");
    copy_u64(
        &mut record,
        event,
        "otel.observed_time_unix_nano",
        "observedTimeUnixNano",
    );
    copy(&mut record, event, "otel.severity_number", "severityNumber");
    copy(&mut record, event, "otel.severity_text", "severityText");
    if let Some(body) = event.get("otel.body").filter(|body| !body.is_null()) {
        record.insert("body".to_owned(), any_value(body));
    }
    record.insert("attributes".to_owned(), Value::Array(event.attributes()));
    copy(&mut record, event, "otel.event_name", "eventName");
    copy(&mut record, event, "otel.trace_id", "traceId");
    copy(&mut record, event, "otel.span_id", "spanId");
    Value::Object(record)
}

fn span(event: &Merged<'_>) -> Value {
    let mut span = Map::new();
    copy(&mut span, event, "otel.trace_id", "traceId");
    copy(&mut span, event, "otel.span_id", "spanId");
    copy(&mut span, event, "otel.parent_span_id", "parentSpanId");
    span.insert("name".to_owned(), json!(event.event.event.name));
    copy(&mut span, event, "otel.kind", "kind");
    copy_u64(
        &mut span,
        event,
        "otel.start_time_unix_nano",
        "startTimeUnixNano",
    );
    copy_u64(
        &mut span,
        event,
        "otel.end_time_unix_nano",
        "endTimeUnixNano",
    );
    span.insert("attributes".to_owned(), Value::Array(event.attributes()));
    if let Some(Value::Array(names)) = event.get("otel.events") {
        let events: Vec<Value> = names.iter().map(|name| json!({ "name": name })).collect();
        span.insert("events".to_owned(), Value::Array(events));
    }
    if let Some(code) = event.get("otel.status_code") {
        let mut status = Map::new();
        status.insert("code".to_owned(), code.clone());
        copy(&mut status, event, "otel.status_message", "message");
        span.insert("status".to_owned(), Value::Object(status));
    }
    Value::Object(span)
}

/// Data points of one scope, as metrics: consecutive points of the same metric (name, kind, unit, description,
/// temporality, monotonicity) share one.
fn metrics(points: &[Merged<'_>]) -> Vec<Value> {
    let mut metrics: Vec<(Value, &'static str, Vec<Value>)> = Vec::new();
    for point in points {
        let kind = match point.get("otel.metric_type").and_then(Value::as_str) {
            Some("sum") => "sum",
            Some("histogram") => "histogram",
            Some("exponential_histogram") => "exponentialHistogram",
            Some("summary") => "summary",
            _ => "gauge",
        };
        let mut metric = Map::new();
        metric.insert("name".to_owned(), json!(point.event.event.name));
        copy(&mut metric, point, "otel.description", "description");
        copy(&mut metric, point, "otel.unit", "unit");
        let mut data = Map::new();
        copy(
            &mut data,
            point,
            "otel.aggregation_temporality",
            "aggregationTemporality",
        );
        copy(&mut data, point, "otel.is_monotonic", "isMonotonic");
        metric.insert(kind.to_owned(), Value::Object(data));
        let metric = Value::Object(metric);
        let data_point = data_point(point, kind);
        match metrics.last_mut() {
            Some((last, _, points)) if *last == metric => points.push(data_point),
            _ => metrics.push((metric, kind, vec![data_point])),
        }
    }
    metrics
        .into_iter()
        .map(|(mut metric, kind, points)| {
            if let Some(Value::Object(data)) = metric.get_mut(kind) {
                data.insert("dataPoints".to_owned(), Value::Array(points));
            }
            metric
        })
        .collect()
}

fn data_point(point: &Merged<'_>, kind: &str) -> Value {
    let mut data = Map::new();
    data.insert("attributes".to_owned(), Value::Array(point.attributes()));
    copy_u64(
        &mut data,
        point,
        "otel.start_time_unix_nano",
        "startTimeUnixNano",
    );
    copy_u64(&mut data, point, "otel.time_unix_nano", "timeUnixNano");
    match kind {
        "gauge" | "sum" => match point.get("otel.value") {
            Some(Value::Number(number)) if number.is_i64() => {
                data.insert("asInt".to_owned(), Value::String(number.to_string()));
            }
            Some(value) => {
                data.insert("asDouble".to_owned(), value.clone());
            }
            None => {}
        },
        "summary" => {
            copy_u64(&mut data, point, "otel.count", "count");
            copy(&mut data, point, "otel.sum", "sum");
            if let Some(Value::Array(quantiles)) = point.get("otel.quantiles") {
                let quantiles: Vec<Value> = quantiles
                    .iter()
                    .filter_map(|pair| {
                        let [quantile, value] = pair.as_array()?.as_slice() else {
                            return None;
                        };
                        Some(json!({ "quantile": quantile, "value": value }))
                    })
                    .collect();
                data.insert("quantileValues".to_owned(), Value::Array(quantiles));
            }
        }
        _ => {
            copy_u64(&mut data, point, "otel.count", "count");
            copy(&mut data, point, "otel.sum", "sum");
            copy(&mut data, point, "otel.min", "min");
            copy(&mut data, point, "otel.max", "max");
            if let Some(Value::Array(counts)) = point.get("otel.bucket_counts") {
                let counts: Vec<Value> = counts
                    .iter()
                    .map(|count| Value::String(count.to_string()))
                    .collect();
                data.insert("bucketCounts".to_owned(), Value::Array(counts));
            }
            copy(&mut data, point, "otel.explicit_bounds", "explicitBounds");
            copy(&mut data, point, "otel.scale", "scale");
            copy_u64(&mut data, point, "otel.zero_count", "zeroCount");
        }
    }
    Value::Object(data)
}

/// Attributes as OTLP/JSON `KeyValue`s.
fn key_values<'a>(attributes: impl Iterator<Item = (&'a str, &'a Value)>) -> Vec<Value> {
    attributes
        .map(|(key, value)| json!({ "key": key, "value": any_value(value) }))
        .collect()
}

/// A plain JSON value as an OTLP/JSON `AnyValue`.
fn any_value(value: &Value) -> Value {
    match value {
        Value::Null => json!({}),
        Value::Bool(boolean) => json!({ "boolValue": boolean }),
        Value::Number(number) if number.is_i64() => json!({ "intValue": number.to_string() }),
        Value::Number(number) => json!({ "doubleValue": number }),
        Value::String(text) => json!({ "stringValue": text }),
        Value::Array(values) => {
            json!({ "arrayValue": { "values": values.iter().map(any_value).collect::<Vec<_>>() } })
        }
        Value::Object(members) => json!({
            "kvlistValue": { "values": key_values(members.iter().map(|(k, v)| (k.as_str(), v))) }
        }),
    }
}
