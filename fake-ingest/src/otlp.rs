//! The OTLP/HTTP front door: decodes `Export{Logs,Trace,Metrics}ServiceRequest` bodies into [`IncomingEvent`]s and
//! encodes the responses, as the OpenTelemetry protocol specification defines them for OTLP/HTTP.
//!
//! # Encodings
//! A request is binary protobuf (`application/x-protobuf`) or proto3 JSON (`application/json`) with the OTLP/JSON
//! rules; the response is in the request's encoding. The JSON decoder is `opentelemetry-proto`'s `with-serde`
//! mapping, which already accepts: lowerCamelCase keys, trace and span ids as hex, enums as integers, 64-bit
//! integers as strings or numbers, `"NaN"`/`"Infinity"` doubles, base64 `bytesValue`, and unknown keys (ignored).
//! One gap is filled here: proto3 JSON allows `null` for any field (meaning "the default"), which the generated
//! serde code refuses for lists and messages, so `null` members are removed before decoding. A gap left open:
//! non-finite doubles written as strings (`"asDouble": "NaN"`) are accepted only in summary quantiles; elsewhere
//! a number point reads as "no value" (rejected, partial success) and other double fields fail the request (400).
//!
//! # One event per record
//! Every log record, every span and every metric **data point** becomes one [`IncomingEvent`] (`name` is the log's
//! event name or body, the span name, or the metric name; `resource` holds the resource attributes; `properties`
//! the record's attributes plus `otel.*` keys for the rest of the record).
//!
//! # Dedupe keys
//! OTLP records carry no idempotency key field, so one is read from the `log.record.uid` attribute or derived; a
//! resend of the same record gives the same key whatever the encoding (JSON and protobuf decode to the same message):
//!
//! | signal | key | derived from |
//! |---|---|---|
//! | spans | `span:<trace id hex>:<span id hex>` | the span's identity, which the specification makes unique |
//! | log records with a `log.record.uid` string attribute | the attribute's value (a UUID lowercase hyphenated) | the semantic convention for a log record's unique id, which flush-core's `otlp_logs` sink sets to the event's idempotency key |
//! | other log records | `log:<FNV-1a 128 hex>` | the resource, the instrumentation scope and the whole log record (time, observed time, severity, body, attributes, event name, trace context) |
//! | metric data points | `metric:<FNV-1a 128 hex>` | the resource, the instrumentation scope, the metric name, the point's attributes, start time and time |
//!
//! The hash is FNV-1a with 128 bits over the protobuf encoding of each part, each part prefixed with its length
//! (so the parts cannot run into each other); it is stable across processes, so the key survives a restart.
//!
//! # Rejected records
//! A record that cannot be stored is rejected, not the whole request: a span whose trace id is not 16 bytes or
//! whose span id is not 8 bytes (or either is all zeros), a log record whose trace id is neither empty nor 16
//! bytes or whose span id is neither empty nor 8 bytes, a data point without a time or (for gauges and sums)
//! without a value. The response is then `200` with `partialSuccess` counting them and the first reason, which a
//! spec-following client logs and does not retry.

use std::error::Error as _;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Map, Value, json};

use crate::event::{IncomingEvent, Protocol};

/// The three OTLP signals, one route each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// `POST /v1/logs`.
    Logs,
    /// `POST /v1/traces`.
    Traces,
    /// `POST /v1/metrics`.
    Metrics,
}

impl Signal {
    /// Every signal, in route order.
    pub(crate) const ALL: [Signal; 3] = [Signal::Logs, Signal::Traces, Signal::Metrics];

    /// The route the signal is posted to.
    pub(crate) fn route(self) -> &'static str {
        match self {
            Signal::Logs => "/v1/logs",
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }

    /// The protocol captured events of this signal are recorded under.
    pub(crate) fn protocol(self) -> Protocol {
        match self {
            Signal::Logs => Protocol::OtlpLogs,
            Signal::Traces => Protocol::OtlpTraces,
            Signal::Metrics => Protocol::OtlpMetrics,
        }
    }

    /// What `count` records of this signal are called, for messages.
    fn records_noun(self, count: u64) -> &'static str {
        match (self, count) {
            (Signal::Logs, 1) => "log record",
            (Signal::Logs, _) => "log records",
            (Signal::Traces, 1) => "span",
            (Signal::Traces, _) => "spans",
            (Signal::Metrics, 1) => "data point",
            (Signal::Metrics, _) => "data points",
        }
    }
}

/// The two OTLP/HTTP body encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Binary protobuf, `application/x-protobuf`.
    Protobuf,
    /// Proto3 JSON with the OTLP/JSON rules, `application/json`.
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` header names (parameters such as `charset` are ignored), or `None` for a
    /// content type OTLP/HTTP does not define.
    pub(crate) fn from_content_type(content_type: &str) -> Option<Encoding> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Encoding::Protobuf)
        } else if media_type.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    /// The `Content-Type` of a body in this encoding.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Records of a request that were not stored, and why (the first reason; the others are usually alike).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rejections {
    /// How many records were rejected.
    pub(crate) count: u64,
    /// Why the first one was.
    pub(crate) first_reason: Option<String>,
}

impl Rejections {
    /// Counts one rejected record; `reason` is only built for the first.
    pub(crate) fn reject(&mut self, reason: impl FnOnce() -> String) {
        if self.first_reason.is_none() {
            self.first_reason = Some(reason());
        }
        self.count += 1;
    }
}

/// A decoded request: the events to store and the records rejected.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Decoded {
    /// One event per accepted record, in request order.
    pub(crate) events: Vec<IncomingEvent>,
    /// The records that were not accepted.
    pub(crate) rejected: Rejections,
}

/// Why a body could not be decoded at all (the answer is `400`, and the client must not retry it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// The body is not a valid protobuf encoding of the signal's export request.
    #[error("the body is not a valid protobuf {message}")]
    Protobuf {
        /// The message expected.
        message: &'static str,
        /// What prost found.
        #[source]
        source: prost::DecodeError,
    },
    /// The body is not valid OTLP/JSON for the signal's export request.
    #[error("the body is not a valid OTLP/JSON {message}")]
    Json {
        /// The message expected.
        message: &'static str,
        /// What serde found.
        #[source]
        source: serde_json::Error,
    },
}

impl DecodeError {
    /// The message with its source chain, for the `google.rpc.Status` the client gets.
    pub(crate) fn detail(&self) -> String {
        let mut detail = self.to_string();
        let mut source = self.source();
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        detail
    }
}

/// Decodes an (already decompressed) export request body of `signal` in `encoding`.
///
/// # Errors
/// [`DecodeError`] when the body is not an export request of that signal in that encoding; records that decode
/// but cannot be stored are not errors but [`Decoded::rejected`].
pub(crate) fn decode(
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
) -> Result<Decoded, DecodeError> {
    match signal {
        Signal::Logs => {
            let request: ExportLogsServiceRequest =
                decode_message(encoding, body, "ExportLogsServiceRequest")?;
            Ok(logs_to_events(request))
        }
        Signal::Traces => {
            let request: ExportTraceServiceRequest =
                decode_message(encoding, body, "ExportTraceServiceRequest")?;
            Ok(spans_to_events(request))
        }
        Signal::Metrics => {
            let request: ExportMetricsServiceRequest =
                decode_message(encoding, body, "ExportMetricsServiceRequest")?;
            Ok(metrics_to_events(request))
        }
    }
}

/// Decodes one message in either encoding.
fn decode_message<M>(
    encoding: Encoding,
    body: &[u8],
    message: &'static str,
) -> Result<M, DecodeError>
where
    M: prost::Message + Default + serde::de::DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => {
            M::decode(body).map_err(|source| DecodeError::Protobuf { message, source })
        }
        Encoding::Json => {
            let json_error = |source| DecodeError::Json { message, source };
            let mut value: Value = serde_json::from_slice(body).map_err(json_error)?;
            remove_nulls(&mut value);
            serde_json::from_value(value).map_err(json_error)
        }
    }
}

/// Removes every `null` object member, recursively: proto3 JSON reads `null` as the field's default value.
fn remove_nulls(value: &mut Value) {
    match value {
        Value::Object(members) => {
            members.retain(|_, member| !member.is_null());
            members.values_mut().for_each(remove_nulls);
        }
        Value::Array(elements) => elements.iter_mut().for_each(remove_nulls),
        _ => {}
    }
}

/// A response to send: status, content type and body (headers such as `Retry-After` are the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The HTTP status.
    pub(crate) status: u16,
    /// The `Content-Type`.
    pub(crate) content_type: &'static str,
    /// The body.
    pub(crate) body: Vec<u8>,
}

/// The `200` answer to a request that was decoded: an empty `Export*ServiceResponse`, or one with
/// `partialSuccess` when records were rejected.
pub(crate) fn success_response(
    signal: Signal,
    encoding: Encoding,
    rejected: &Rejections,
) -> Response {
    let partial_success = (rejected.count > 0).then(|| {
        let message = format!(
            "{} {} rejected: {}",
            rejected.count,
            signal.records_noun(rejected.count),
            rejected.first_reason.as_deref().unwrap_or("rejected")
        );
        (i64::try_from(rejected.count).unwrap_or(i64::MAX), message)
    });
    let body = match encoding {
        Encoding::Protobuf => encode_success_protobuf(signal, partial_success),
        Encoding::Json => {
            // The counts are JSON numbers: proto3 JSON parsers accept numbers and strings for int64, and
            // opentelemetry-rust's exporter parses only numbers.
            let value = match partial_success {
                None => json!({}),
                Some((count, message)) => {
                    let count_field = match signal {
                        Signal::Logs => "rejectedLogRecords",
                        Signal::Traces => "rejectedSpans",
                        Signal::Metrics => "rejectedDataPoints",
                    };
                    json!({ "partialSuccess": { count_field: count, "errorMessage": message } })
                }
            };
            value.to_string().into_bytes()
        }
    };
    Response {
        status: 200,
        content_type: encoding.content_type(),
        body,
    }
}

/// The protobuf `Export*ServiceResponse` of a signal.
fn encode_success_protobuf(signal: Signal, partial_success: Option<(i64, String)>) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::{logs, metrics, trace};
    // The three responses differ only in their types and in the name of the rejected count.
    macro_rules! encode {
        ($module:ident, $response:ident, $partial_success:ident, $rejected:ident) => {
            $module::v1::$response {
                partial_success: partial_success.map(|($rejected, error_message)| {
                    $module::v1::$partial_success {
                        $rejected,
                        error_message,
                    }
                }),
            }
            .encode_to_vec()
        };
    }
    match signal {
        Signal::Logs => encode!(
            logs,
            ExportLogsServiceResponse,
            ExportLogsPartialSuccess,
            rejected_log_records
        ),
        Signal::Traces => encode!(
            trace,
            ExportTraceServiceResponse,
            ExportTracePartialSuccess,
            rejected_spans
        ),
        Signal::Metrics => encode!(
            metrics,
            ExportMetricsServiceResponse,
            ExportMetricsPartialSuccess,
            rejected_data_points
        ),
    }
}

/// `google.rpc.Status`, the body of every OTLP/HTTP error response (`opentelemetry-proto` does not ship it).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    /// The gRPC status code.
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    /// A developer-facing message.
    #[prost(string, tag = "2")]
    pub(crate) message: String,
}

/// The gRPC code that best matches an HTTP status, for `google.rpc.Status.code`.
fn grpc_code(http_status: u16) -> i32 {
    match http_status {
        400 | 413 | 415 | 422 => 3, // INVALID_ARGUMENT (413: the batch is too big for this server)
        401 => 16,                  // UNAUTHENTICATED
        403 => 7,                   // PERMISSION_DENIED
        404 => 5,                   // NOT_FOUND
        405 | 501 => 12,            // UNIMPLEMENTED
        408 | 504 => 4,             // DEADLINE_EXCEEDED
        409 => 10,                  // ABORTED
        429 => 8,                   // RESOURCE_EXHAUSTED
        502 | 503 => 14,            // UNAVAILABLE
        500 => 13,                  // INTERNAL
        _ => 2,                     // UNKNOWN
    }
}

/// An error answer: `status` with a `google.rpc.Status` body in `encoding` (JSON when the request's encoding is
/// unknown, as for `415` and `405`).
pub(crate) fn error_response(encoding: Encoding, status: u16, message: &str) -> Response {
    let rpc_status = RpcStatus {
        code: grpc_code(status),
        message: message.to_owned(),
    };
    let body = match encoding {
        Encoding::Protobuf => rpc_status.encode_to_vec(),
        Encoding::Json => json!({ "code": rpc_status.code, "message": rpc_status.message })
            .to_string()
            .into_bytes(),
    };
    Response {
        status,
        content_type: encoding.content_type(),
        body,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Records to events.

/// Where a record sits in the request, for rejection messages.
fn position(resource_index: usize, scope_index: usize, record_index: usize) -> String {
    format!("resource {resource_index}, scope {scope_index}, record {record_index}")
}

fn logs_to_events(request: ExportLogsServiceRequest) -> Decoded {
    let mut decoded = Decoded::default();
    for (resource_index, resource_logs) in request.resource_logs.into_iter().enumerate() {
        let resource = resource_logs.resource.unwrap_or_default();
        let resource_json = attributes_json(&resource.attributes);
        for (scope_index, scope_logs) in resource_logs.scope_logs.into_iter().enumerate() {
            let scope = scope_logs.scope.unwrap_or_default();
            for (record_index, record) in scope_logs.log_records.into_iter().enumerate() {
                let at = || position(resource_index, scope_index, record_index);
                if !matches!(record.trace_id.len(), 0 | 16) {
                    decoded.rejected.reject(|| {
                        format!(
                            "log record at {} has a trace id of {} bytes (must be 16, or empty)",
                            at(),
                            record.trace_id.len()
                        )
                    });
                    continue;
                }
                if !matches!(record.span_id.len(), 0 | 8) {
                    decoded.rejected.reject(|| {
                        format!(
                            "log record at {} has a span id of {} bytes (must be 8, or empty)",
                            at(),
                            record.span_id.len()
                        )
                    });
                    continue;
                }
                decoded
                    .events
                    .push(log_event(&resource, &resource_json, &scope, &record));
            }
        }
    }
    decoded
}

fn log_event(
    resource: &Resource,
    resource_json: &Value,
    scope: &InstrumentationScope,
    record: &LogRecord,
) -> IncomingEvent {
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
    insert_scope(&mut properties, scope);
    properties.insert("otel.body".to_owned(), body);
    insert_nonzero(
        &mut properties,
        "otel.time_unix_nano",
        record.time_unix_nano,
    );
    insert_nonzero(
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
        dedupe_key: log_dedupe_key(resource, scope, record),
        has_idempotency_key: true,
        name,
        timestamp: rfc3339_from_unix_nanos(time),
        distinct_id: None,
        resource: Some(resource_json.clone()),
        properties,
    }
}

/// A log record's dedupe key: its `log.record.uid` attribute when it has a non-empty string one (the semantic
/// convention for a log record's unique id; a UUID is normalized to lowercase hyphenated, as `/ingest` and PostHog
/// keys are), else `log:` and the hash of the resource, the scope and the whole record.
fn log_dedupe_key(resource: &Resource, scope: &InstrumentationScope, record: &LogRecord) -> String {
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
    let mut key = KeyHasher::new();
    key.part(&resource.encode_to_vec());
    key.part(&scope.encode_to_vec());
    key.part(&record.encode_to_vec());
    format!("log:{}", key.finish_hex())
}

fn spans_to_events(request: ExportTraceServiceRequest) -> Decoded {
    let mut decoded = Decoded::default();
    for (resource_index, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let resource = resource_spans.resource.unwrap_or_default();
        let resource_json = attributes_json(&resource.attributes);
        for (scope_index, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let scope = scope_spans.scope.unwrap_or_default();
            for (record_index, span) in scope_spans.spans.into_iter().enumerate() {
                let at = || position(resource_index, scope_index, record_index);
                if span.trace_id.len() != 16 || span.trace_id.iter().all(|byte| *byte == 0) {
                    decoded.rejected.reject(|| {
                        format!("span at {} has an invalid trace id ({} bytes; must be 16, not all zero)", at(), span.trace_id.len())
                    });
                    continue;
                }
                if span.span_id.len() != 8 || span.span_id.iter().all(|byte| *byte == 0) {
                    decoded.rejected.reject(|| {
                        format!(
                            "span at {} has an invalid span id ({} bytes; must be 8, not all zero)",
                            at(),
                            span.span_id.len()
                        )
                    });
                    continue;
                }
                if !matches!(span.parent_span_id.len(), 0 | 8) {
                    decoded.rejected.reject(|| {
                        format!(
                            "span at {} has a parent span id of {} bytes (must be 8, or empty)",
                            at(),
                            span.parent_span_id.len()
                        )
                    });
                    continue;
                }
                decoded
                    .events
                    .push(span_event(&resource_json, &scope, &span));
            }
        }
    }
    decoded
}

fn span_event(resource_json: &Value, scope: &InstrumentationScope, span: &Span) -> IncomingEvent {
    let trace_id = hex(&span.trace_id);
    let span_id = hex(&span.span_id);
    let mut properties = attributes_map(&span.attributes);
    insert_scope(&mut properties, scope);
    properties.insert("otel.trace_id".to_owned(), json!(trace_id));
    properties.insert("otel.span_id".to_owned(), json!(span_id));
    insert_nonempty(
        &mut properties,
        "otel.parent_span_id",
        &hex(&span.parent_span_id),
    );
    properties.insert("otel.kind".to_owned(), json!(span.kind));
    insert_nonzero(
        &mut properties,
        "otel.start_time_unix_nano",
        span.start_time_unix_nano,
    );
    insert_nonzero(
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
        resource: Some(resource_json.clone()),
        properties,
    }
}

/// What every data point of one metric shares.
struct MetricContext<'a> {
    resource_bytes: &'a [u8],
    resource_json: &'a Value,
    scope: &'a InstrumentationScope,
    scope_bytes: &'a [u8],
    metric: &'a Metric,
}

/// One data point of any kind, reduced to what the event and the key need.
struct PointView<'a> {
    attributes: &'a [KeyValue],
    start_time_unix_nano: u64,
    time_unix_nano: u64,
    /// The kind-specific properties (`otel.value`, `otel.count`, ...).
    values: Map<String, Value>,
}

fn metrics_to_events(request: ExportMetricsServiceRequest) -> Decoded {
    let mut decoded = Decoded::default();
    for (resource_index, resource_metrics) in request.resource_metrics.into_iter().enumerate() {
        let resource = resource_metrics.resource.unwrap_or_default();
        let resource_bytes = resource.encode_to_vec();
        let resource_json = attributes_json(&resource.attributes);
        for (scope_index, scope_metrics) in resource_metrics.scope_metrics.into_iter().enumerate() {
            let scope = scope_metrics.scope.unwrap_or_default();
            let scope_bytes = scope.encode_to_vec();
            for (metric_index, metric) in scope_metrics.metrics.iter().enumerate() {
                let context = MetricContext {
                    resource_bytes: &resource_bytes,
                    resource_json: &resource_json,
                    scope: &scope,
                    scope_bytes: &scope_bytes,
                    metric,
                };
                let at = || {
                    format!(
                        "{} (metric {:?})",
                        position(resource_index, scope_index, metric_index),
                        metric.name
                    )
                };
                let Some(data) = &metric.data else {
                    decoded
                        .rejected
                        .reject(|| format!("metric at {} has no data", at()));
                    continue;
                };
                let (kind, points) = metric_points(data);
                for point in points {
                    match point {
                        Ok(point) if point.time_unix_nano == 0 => {
                            decoded.rejected.reject(|| {
                                format!(
                                    "a data point of the metric at {} has no time_unix_nano",
                                    at()
                                )
                            });
                        }
                        Ok(point) => decoded
                            .events
                            .push(point_event(&context, kind, data, point)),
                        Err(reason) => decoded
                            .rejected
                            .reject(|| format!("a data point of the metric at {}: {reason}", at())),
                    }
                }
            }
        }
    }
    decoded
}

/// The kind name and the data points of a metric (an `Err` for a point that is invalid in itself).
fn metric_points(data: &metric::Data) -> (&'static str, Vec<Result<PointView<'_>, &'static str>>) {
    match data {
        metric::Data::Gauge(gauge) => (
            "gauge",
            gauge.data_points.iter().map(number_point).collect(),
        ),
        metric::Data::Sum(sum) => ("sum", sum.data_points.iter().map(number_point).collect()),
        metric::Data::Histogram(histogram) => (
            "histogram",
            histogram
                .data_points
                .iter()
                .map(|point| {
                    let mut values = Map::new();
                    values.insert("otel.count".to_owned(), json!(point.count));
                    insert_some(&mut values, "otel.sum", point.sum);
                    insert_some(&mut values, "otel.min", point.min);
                    insert_some(&mut values, "otel.max", point.max);
                    values.insert("otel.bucket_counts".to_owned(), json!(point.bucket_counts));
                    values.insert(
                        "otel.explicit_bounds".to_owned(),
                        json!(point.explicit_bounds),
                    );
                    Ok(PointView {
                        attributes: &point.attributes,
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        values,
                    })
                })
                .collect(),
        ),
        metric::Data::ExponentialHistogram(histogram) => (
            "exponential_histogram",
            histogram
                .data_points
                .iter()
                .map(|point| {
                    let mut values = Map::new();
                    values.insert("otel.count".to_owned(), json!(point.count));
                    insert_some(&mut values, "otel.sum", point.sum);
                    insert_some(&mut values, "otel.min", point.min);
                    insert_some(&mut values, "otel.max", point.max);
                    values.insert("otel.scale".to_owned(), json!(point.scale));
                    values.insert("otel.zero_count".to_owned(), json!(point.zero_count));
                    Ok(PointView {
                        attributes: &point.attributes,
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        values,
                    })
                })
                .collect(),
        ),
        metric::Data::Summary(summary) => (
            "summary",
            summary
                .data_points
                .iter()
                .map(|point| {
                    let mut values = Map::new();
                    values.insert("otel.count".to_owned(), json!(point.count));
                    values.insert("otel.sum".to_owned(), finite_or_string(point.sum));
                    let quantiles: Vec<Value> = point
                        .quantile_values
                        .iter()
                        .map(|quantile| {
                            json!([
                                finite_or_string(quantile.quantile),
                                finite_or_string(quantile.value)
                            ])
                        })
                        .collect();
                    values.insert("otel.quantiles".to_owned(), Value::Array(quantiles));
                    Ok(PointView {
                        attributes: &point.attributes,
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        values,
                    })
                })
                .collect(),
        ),
    }
}

fn number_point(
    point: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint,
) -> Result<PointView<'_>, &'static str> {
    let value = match point.value {
        Some(number_data_point::Value::AsDouble(double)) => finite_or_string(double),
        Some(number_data_point::Value::AsInt(int)) => json!(int),
        None => return Err("it has no value (neither asDouble nor asInt)"),
    };
    let mut values = Map::new();
    values.insert("otel.value".to_owned(), value);
    Ok(PointView {
        attributes: &point.attributes,
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        values,
    })
}

fn point_event(
    context: &MetricContext<'_>,
    kind: &str,
    data: &metric::Data,
    point: PointView<'_>,
) -> IncomingEvent {
    let mut key = KeyHasher::new();
    key.part(context.resource_bytes);
    key.part(context.scope_bytes);
    key.part(context.metric.name.as_bytes());
    for attribute in point.attributes {
        key.part(&attribute.encode_to_vec());
    }
    key.part(&point.start_time_unix_nano.to_le_bytes());
    key.part(&point.time_unix_nano.to_le_bytes());

    let mut properties = attributes_map(point.attributes);
    insert_scope(&mut properties, context.scope);
    properties.insert("otel.metric_type".to_owned(), json!(kind));
    insert_nonempty(&mut properties, "otel.unit", &context.metric.unit);
    insert_nonempty(
        &mut properties,
        "otel.description",
        &context.metric.description,
    );
    let temporality = match data {
        metric::Data::Sum(sum) => Some(sum.aggregation_temporality),
        metric::Data::Histogram(histogram) => Some(histogram.aggregation_temporality),
        metric::Data::ExponentialHistogram(histogram) => Some(histogram.aggregation_temporality),
        metric::Data::Gauge(_) | metric::Data::Summary(_) => None,
    };
    if let Some(temporality) = temporality {
        properties.insert(
            "otel.aggregation_temporality".to_owned(),
            json!(temporality),
        );
    }
    if let metric::Data::Sum(sum) = data {
        properties.insert("otel.is_monotonic".to_owned(), json!(sum.is_monotonic));
    }
    insert_nonzero(
        &mut properties,
        "otel.start_time_unix_nano",
        point.start_time_unix_nano,
    );
    insert_nonzero(&mut properties, "otel.time_unix_nano", point.time_unix_nano);
    properties.extend(point.values);

    IncomingEvent {
        dedupe_key: format!("metric:{}", key.finish_hex()),
        has_idempotency_key: true,
        name: context.metric.name.clone(),
        timestamp: rfc3339_from_unix_nanos(point.time_unix_nano),
        distinct_id: None,
        resource: Some(context.resource_json.clone()),
        properties,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers.

/// FNV-1a, 128 bits, over length-prefixed parts: the stable hash behind the derived dedupe keys.
struct KeyHasher {
    state: u128,
}

impl KeyHasher {
    const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    fn new() -> KeyHasher {
        KeyHasher {
            state: Self::OFFSET_BASIS,
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.state ^= u128::from(*byte);
            self.state = self.state.wrapping_mul(Self::PRIME);
        }
    }

    /// Hashes one part, prefixed by its length so that parts cannot run into each other.
    fn part(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u64).to_le_bytes());
        self.bytes(bytes);
    }

    fn finish_hex(&self) -> String {
        format!("{:032x}", self.state)
    }
}

/// Lowercase hex, as OTLP/JSON writes ids.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// RFC 3339 (UTC, nanoseconds as needed) of a Unix time in nanoseconds; `None` for 0, which OTLP uses for "unset".
fn rfc3339_from_unix_nanos(nanos: u64) -> Option<String> {
    if nanos == 0 {
        return None;
    }
    jiff::Timestamp::from_nanosecond(i128::from(nanos))
        .ok()
        .map(|timestamp| timestamp.to_string())
}

/// A double as JSON: a number when finite, else `"NaN"`/`"Infinity"`/`"-Infinity"` as proto3 JSON writes them.
fn finite_or_string(double: f64) -> Value {
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
fn any_value_json(value: &AnyValue) -> Value {
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

fn attributes_map(attributes: &[KeyValue]) -> Map<String, Value> {
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

fn attributes_json(attributes: &[KeyValue]) -> Value {
    Value::Object(attributes_map(attributes))
}

fn insert_scope(properties: &mut Map<String, Value>, scope: &InstrumentationScope) {
    insert_nonempty(properties, "otel.scope.name", &scope.name);
    insert_nonempty(properties, "otel.scope.version", &scope.version);
}

fn insert_nonempty(properties: &mut Map<String, Value>, key: &str, text: &str) {
    if !text.is_empty() {
        properties.insert(key.to_owned(), json!(text));
    }
}

fn insert_nonzero(properties: &mut Map<String, Value>, key: &str, number: u64) {
    if number != 0 {
        properties.insert(key.to_owned(), json!(number));
    }
}

fn insert_some(properties: &mut Map<String, Value>, key: &str, double: Option<f64>) {
    if let Some(double) = double {
        properties.insert(key.to_owned(), finite_or_string(double));
    }
}

pub(crate) mod http;

#[cfg(test)]
mod tests;
