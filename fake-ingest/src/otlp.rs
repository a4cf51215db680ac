//! The OTLP/HTTP front door: decodes `Export{Logs,Trace,Metrics}ServiceRequest` bodies into [`IncomingEvent`]s and
//! encodes the responses, as the OpenTelemetry protocol specification defines them for OTLP/HTTP.
//!
//! # Encodings
//! A request is binary protobuf (`application/x-protobuf`) or proto3 JSON (`application/json`) with the OTLP/JSON
//! rules; the response is in the request's encoding. The JSON decoder is `opentelemetry-proto`'s `with-serde`
//! mapping, which already accepts: lowerCamelCase keys, trace and span ids as hex, enums as integers, 64-bit
//! integers as strings or numbers, `"NaN"`/`"Infinity"` doubles, base64 `bytesValue`, and unknown keys (ignored).
//! One gap is filled here: proto3 JSON allows `null` for any field (meaning "the default"), which the generated
//! serde code refuses for lists and messages, so `null` members are removed before decoding. The derived serde
//! code also reads a JSON array as a message written positionally, which OTLP/JSON never does, so a body that is
//! not a JSON object, or that has an array directly inside an array, is refused (`400`). A gap left open:
//! non-finite doubles written as strings (`"asDouble": "NaN"`) are accepted only in summary quantiles; elsewhere
//! a number point reads as "no value" (rejected, partial success) and other double fields fail the request (400).
//!
//! # One event per record
//! Every log record, every span and every metric **data point** becomes one [`IncomingEvent`] (`name` is the log's
//! event name or body, the span name, or the metric name; `resource` holds the resource attributes; `properties`
//! the record's attributes plus `otel.*` keys for the rest of the record). What records share is held once per
//! request, not copied into each event: the resource attributes, the scope's `otel.scope.*` keys and a metric's
//! `otel.metric_type`, `otel.unit`, ... (see [`crate::SharedProperties`]).
//!
//! # Map of the module
//! `walk` is the one walk over resources and scopes every signal shares; `logs`, `traces` and `metrics` turn one
//! record into events; `key` is the dedupe-key hash, `values` the OTLP-to-JSON conversions, `response` the answers,
//! `http` the axum routes and `export` the way back out, captured records as OTLP/JSON.
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
//! without a value, the points of a metric whose name is longer than the specification's 255 characters. The response is then `200` with `partialSuccess` counting them and the first reason, which a
//! spec-following client logs and does not retry.

use std::error::Error as _;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::Value;

use crate::event::{IncomingEvent, Protocol, SharedProperties};

mod export;
pub(crate) mod http;
mod key;
mod logs;
mod metrics;
mod response;
mod traces;
mod values;
mod walk;

pub use export::otlp_json_requests;
pub(crate) use response::{Response, error_response, grpc_code, partial_success, success_response};

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

    /// The route PostHog's clients post the signal to (with the project token in `?token=` or a bearer header).
    pub(crate) fn posthog_route(self) -> &'static str {
        match self {
            Signal::Logs => "/i/v1/logs",
            Signal::Traces => "/i/v1/traces",
            Signal::Metrics => "/i/v1/metrics",
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
    /// The JSON body is not an object (e.g. `[]`): an export request is a JSON object.
    #[error("the body is not a valid OTLP/JSON {message}: expected a JSON object, found {found}")]
    NotAnObject {
        /// The message expected.
        message: &'static str,
        /// What the body is instead.
        found: &'static str,
    },
    /// The JSON body has an array directly inside an array, which no OTLP/JSON message has.
    #[error(
        "the body is not a valid OTLP/JSON {message}: an array inside an array (OTLP/JSON messages are objects)"
    )]
    NestedArray {
        /// The message expected.
        message: &'static str,
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
#[cfg(test)]
pub(crate) fn decode(
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
) -> Result<Decoded, DecodeError> {
    decode_for(signal, encoding, body, None)
}

/// Decodes an (already decompressed) export request body of `signal` in `encoding`; `request` (the properties of
/// the request itself, e.g. the PostHog token) becomes the outermost shared level of every event.
///
/// # Errors
/// [`DecodeError`] when the body is not an export request of that signal in that encoding; records that decode
/// but cannot be stored are not errors but [`Decoded::rejected`].
pub(crate) fn decode_for(
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
    request: Option<Arc<SharedProperties>>,
) -> Result<Decoded, DecodeError> {
    let message = match signal {
        Signal::Logs => {
            ExportRequest::Logs(decode_message(encoding, body, "ExportLogsServiceRequest")?)
        }
        Signal::Traces => {
            ExportRequest::Traces(decode_message(encoding, body, "ExportTraceServiceRequest")?)
        }
        Signal::Metrics => ExportRequest::Metrics(decode_message(
            encoding,
            body,
            "ExportMetricsServiceRequest",
        )?),
    };
    Ok(decode_request(message, request))
}

/// An export request of any signal, as decoded from an OTLP/HTTP body or received by the gRPC services.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExportRequest {
    /// `ExportLogsServiceRequest`.
    Logs(ExportLogsServiceRequest),
    /// `ExportTraceServiceRequest`.
    Traces(ExportTraceServiceRequest),
    /// `ExportMetricsServiceRequest`.
    Metrics(ExportMetricsServiceRequest),
}

/// Turns a decoded export request into the events to store and the records rejected: the one conversion OTLP/HTTP
/// and OTLP/gRPC share; `request` is as for [`decode_for`].
pub(crate) fn decode_request(
    message: ExportRequest,
    request: Option<Arc<SharedProperties>>,
) -> Decoded {
    match message {
        ExportRequest::Logs(message) => logs::decode(message, request),
        ExportRequest::Traces(message) => traces::decode(message, request),
        ExportRequest::Metrics(message) => metrics::decode(message, request),
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
            if !value.is_object() {
                return Err(DecodeError::NotAnObject {
                    message,
                    found: json_kind(&value),
                });
            }
            remove_nulls(&mut value).map_err(|()| DecodeError::NestedArray { message })?;
            serde_json::from_value(value).map_err(json_error)
        }
    }
}

/// Removes every `null` object member, recursively (proto3 JSON reads `null` as the field's default value), and
/// refuses an array directly inside an array: OTLP/JSON has no list of lists, and serde's derived decoders would
/// otherwise read such an array as a message written positionally.
fn remove_nulls(value: &mut Value) -> Result<(), ()> {
    match value {
        Value::Object(members) => {
            members.retain(|_, member| !member.is_null());
            members.values_mut().try_for_each(remove_nulls)
        }
        Value::Array(elements) => elements.iter_mut().try_for_each(|element| {
            if element.is_array() {
                return Err(());
            }
            remove_nulls(element)
        }),
        _ => Ok(()),
    }
}

/// What kind of JSON value this is, for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
