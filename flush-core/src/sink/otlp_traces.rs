//! The `otlp_traces` sink: OTLP/HTTP traces, `POST {endpoint}/v1/traces`, as the OpenTelemetry protocol
//! specification defines it, with the messages of the `opentelemetry-proto` crate. What it shares with the other
//! OTLP sinks (settings, URL rule, status rules, typed values) is in `otlp`.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use prost::Message as _;

use super::otlp::{self, OtlpSettings, Signal, otlp_builder_methods};
use super::otlp_logs::DISTINCT_ID;
use super::{Batch, EncodeError, Request, Response, Sink, SinkError, Url, Verdict};
use crate::otlp_form::{self, SCOPE_PROPERTY};
use crate::stored_view::StoredView;

const TRACES: Signal = Signal {
    path: "/v1/traces",
    rejected_field: "rejectedSpans",
    decode_partial_success: |body| {
        let partial = ExportTraceServiceResponse::decode(body)
            .ok()?
            .partial_success?;
        Some((partial.rejected_spans, partial.error_message))
    },
};

/// Posts OTLP traces to `{endpoint}/v1/traces`, where the endpoint is the base URL an OpenTelemetry SDK takes as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (e.g. `http://localhost:4318` for a local Collector).
///
/// An event that carries a span (recorded by `OtelSpanProcessor`, cargo feature
/// `opentelemetry`) is sent as that span, exactly as it ended: trace id, span id, parent span id, trace state,
/// flags, name, kind, start and end time, typed attributes, events, links, status and dropped counts, grouped under
/// its own instrumentation scope. The server dedupes spans on trace id + span id, and the span's idempotency key is
/// derived from the same two ids, so a span sent again (a retry, a restart after a crash) is stored once.
///
/// Any other event becomes a span of its own trace, so nothing in a spool is dropped when its sink changes: a
/// zero-length `INTERNAL` span named by the event, at the event's time, with its properties and `distinct_id` as
/// typed attributes, under the scope `flush-core`; its trace id is the event's idempotency key (16 bytes) and its span
/// id the key's last 8 bytes (its first 8 when those are zero), so it too is the same span on every resend.
///
/// One `ResourceSpans` per request carries `service.name`, `service.version` (when set), `service.instance.id` (the
/// reporter's installation id) and any further resource attributes: the resource is this sink's, not the tracer
/// provider's.
///
/// Status handling is the same as [`OtlpLogs`](super::OtlpLogs)'s (and deliberately differs from the SDK exporters
/// in the same ways): 2xx accepted (with `partialSuccess.rejected_spans > 0`, partially accepted, counted, not
/// retried); 429, 502, 503, 504 retried with `Retry-After`; 400 isolates the poison span; 413 splits the batch; any
/// other status keeps the spans and opens the breaker. Error bodies (`google.rpc.Status`) are decoded into the
/// reason.
///
/// ```
/// use flush_core::{Config, sink::{OtlpEncoding, OtlpTraces}};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::builder("http://localhost:4318")
///     .sink(OtlpTraces::new().service_name("checkout").encoding(OtlpEncoding::Json))
///     .distinct_id("install-1")
///     .spool_dir("/var/lib/my-app/telemetry")
///     .gzip(true)
///     .build()?;
/// assert_eq!(config.url().as_str(), "http://localhost:4318/v1/traces");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpTraces {
    settings: OtlpSettings,
}

impl Default for OtlpTraces {
    fn default() -> Self {
        Self::new()
    }
}

impl OtlpTraces {
    /// Protobuf, `service.name` `unknown_service` (the specification's default), no further attributes.
    pub fn new() -> Self {
        Self {
            settings: OtlpSettings::new(),
        }
    }

    otlp_builder_methods!();
}

impl Sink for OtlpTraces {
    fn name(&self) -> &str {
        "otlp_traces"
    }

    fn url(&self, endpoint: &Url) -> Result<Url, SinkError> {
        self.settings.url(endpoint, &TRACES)
    }

    fn encode(&self, batch: &Batch<'_>) -> Result<Request, EncodeError> {
        let spans = batch
            .views()?
            .iter()
            .map(|event| {
                let scope = otlp_form::stored_scope(event).map_err(EncodeError::new)?;
                Ok((scope, span_of(event)?))
            })
            .collect::<Result<Vec<_>, EncodeError>>()?;
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.settings.resource(batch.installation_id())),
                scope_spans: otlp::group_by_scope(spans)
                    .into_iter()
                    .map(|(scope, spans)| ScopeSpans {
                        scope: Some(scope),
                        spans,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            }],
        };
        self.settings.request(&request)
    }

    fn classify(&self, response: &Response<'_>) -> Verdict {
        otlp::classify(response, &TRACES)
    }
}

/// The stored span, or a zero-length span of the event's own trace.
fn span_of(event: &StoredView<'_>) -> Result<Span, EncodeError> {
    if let Some(span) = otlp_form::stored_span(event).map_err(EncodeError::new)? {
        return Ok(span);
    }
    let time = otlp::unix_nanos(event)?;
    let key = event.uuid().into_bytes();
    let (high, low) = key.split_at(8);
    let span_id = if low.iter().any(|byte| *byte != 0) {
        low
    } else {
        high
    };
    let mut attributes = otlp::attributes(event, &[DISTINCT_ID, SCOPE_PROPERTY])?;
    otlp::set_string_attribute(&mut attributes, DISTINCT_ID, event.distinct_id());
    Ok(Span {
        trace_id: key.to_vec(),
        span_id: span_id.to_vec(),
        name: event.name().to_owned(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: time,
        end_time_unix_nano: time,
        attributes,
        ..Span::default()
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
    use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, any_value};

    use super::*;
    use crate::event::Event;
    use crate::stored_view::stored_record;

    fn span(name: &str, span_id: u8) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![span_id; 8],
            name: name.to_owned(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 2_000,
            ..Span::default()
        }
    }

    fn scope(name: &str) -> InstrumentationScope {
        InstrumentationScope {
            name: name.to_owned(),
            ..InstrumentationScope::default()
        }
    }

    #[test]
    fn stored_spans_go_out_as_they_were_under_their_scopes() {
        let records = vec![
            stored_record(otlp_form::span_event(&span("a", 2), &scope("db"))),
            stored_record(otlp_form::span_event(&span("b", 3), &scope("http"))),
            stored_record(otlp_form::span_event(&span("c", 4), &scope("db"))),
        ];
        let request = OtlpTraces::new()
            .service_name("svc")
            .encode(&Batch::new(&records, "install-1"))
            .unwrap();
        assert_eq!(request.content_type(), "application/x-protobuf");
        let decoded = ExportTraceServiceRequest::decode(request.body()).unwrap();
        let scopes: Vec<(&str, Vec<&Span>)> = decoded.resource_spans[0]
            .scope_spans
            .iter()
            .map(|group| {
                let scope = group.scope.as_ref().unwrap().name.as_str();
                (scope, group.spans.iter().collect())
            })
            .collect();
        assert_eq!(
            scopes,
            [
                ("db", vec![&span("a", 2), &span("c", 4)]),
                ("http", vec![&span("b", 3)])
            ]
        );
    }

    #[test]
    fn the_same_span_recorded_twice_is_sent_once() {
        let record = stored_record(otlp_form::span_event(&span("a", 2), &scope("db")));
        let records = vec![record.clone(), record];
        let request = OtlpTraces::new()
            .encode(&Batch::new(&records, "install-1"))
            .unwrap();
        let decoded = ExportTraceServiceRequest::decode(request.body()).unwrap();
        assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 1);
    }

    #[test]
    fn a_plain_event_is_a_zero_length_span_of_its_own_trace() {
        let key = uuid::Uuid::from_u128(0x0193_6f4e_8a2b_7c3d_9e4f_5a6b_7c8d_9e0f);
        let records = vec![stored_record(
            Event::new("deploy")
                .with("n", 3)
                .with_idempotency_key(key)
                .with_timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(5)),
        )];
        let request = OtlpTraces::new()
            .encode(&Batch::new(&records, "install-1"))
            .unwrap();
        let decoded = ExportTraceServiceRequest::decode(request.body()).unwrap();
        let group = &decoded.resource_spans[0].scope_spans[0];
        assert_eq!(group.scope.as_ref().unwrap().name, "flush-core");
        let span = &group.spans[0];
        assert_eq!(span.trace_id, key.as_bytes().to_vec());
        assert_eq!(span.span_id, key.as_bytes()[8..].to_vec());
        assert_eq!((span.start_time_unix_nano, span.end_time_unix_nano), (5, 5));
        let n = span.attributes.iter().find(|kv| kv.key == "n").unwrap();
        assert_eq!(
            n.value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(3))
        );
    }

    #[test]
    fn a_partial_success_counts_rejected_spans_in_either_encoding() {
        let sink = OtlpTraces::new();
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "bad ids".into(),
            }),
        }
        .encode_to_vec();
        assert_eq!(
            sink.classify(&Response::new(200, &body)),
            Verdict::PartiallyAccepted {
                rejected: 2,
                message: "bad ids".into()
            }
        );
        let json = br#"{"partialSuccess":{"rejectedSpans":1,"errorMessage":"no"}}"#;
        assert_eq!(
            sink.classify(&Response::new(200, json).with_content_type("application/json")),
            Verdict::PartiallyAccepted {
                rejected: 1,
                message: "no".into()
            }
        );
        assert!(matches!(
            sink.classify(&Response::new(503, b"")),
            Verdict::Retry { .. }
        ));
    }

    #[test]
    fn the_url_is_the_base_with_v1_traces() {
        let sink = OtlpTraces::new();
        let url = sink
            .url(&Url::parse("http://localhost:4318/").unwrap())
            .unwrap();
        assert_eq!(url.as_str(), "http://localhost:4318/v1/traces");
        assert!(
            sink.url(&Url::parse("http://localhost:4318/v1/traces").unwrap())
                .is_err()
        );
    }
}
