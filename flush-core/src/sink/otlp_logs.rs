//! The `otlp_logs` sink: OTLP/HTTP logs, `POST {endpoint}/v1/logs`, as the OpenTelemetry protocol specification
//! defines it, with the messages of the `opentelemetry-proto` crate. What it shares with the other OTLP sinks
//! (settings, URL rule, status rules, typed values) is in `otlp`.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message as _;

use super::otlp::{self, OtlpSettings, Signal, otlp_builder_methods};
use super::{Batch, EncodeError, Request, Response, Sink, SinkError, Url, Verdict};
use crate::otlp_form::{self, LOG_PROPERTY, SCOPE_PROPERTY};
use crate::stored_view::StoredView;

/// The attribute that carries the idempotency key: the semantic convention for a log record's unique id.
pub(crate) const LOG_RECORD_UID: &str = "log.record.uid";
/// The attribute that carries the event's `distinct_id`.
pub(crate) const DISTINCT_ID: &str = "distinct_id";

const LOGS: Signal = Signal {
    path: "/v1/logs",
    rejected_field: "rejectedLogRecords",
    decode_partial_success: |body| {
        let partial = ExportLogsServiceResponse::decode(body)
            .ok()?
            .partial_success?;
        Some((partial.rejected_log_records, partial.error_message))
    },
};

/// Posts OTLP logs to `{endpoint}/v1/logs`, where the endpoint is the base URL an OpenTelemetry SDK takes as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (e.g. `http://localhost:4318` for a local Collector).
///
/// Each event becomes one `LogRecord`: the event name in `event_name`, its time in `time_unix_nano` (and
/// `observed_time_unix_nano`), its properties as typed attributes (strings, integers, doubles, booleans, arrays and
/// maps, never stringified), its idempotency key as the `log.record.uid` attribute and its `distinct_id` as the
/// `distinct_id` attribute (both win over a property of the same name). One `ResourceLogs` per request carries
/// `service.name`, `service.version` (when set), `service.instance.id` (the reporter's installation id) and any
/// further resource attributes; its scope is `flush-core` with the crate's version. An event stored twice under the
/// same key is sent once.
///
/// An event that carries an OpenTelemetry log record (recorded by
/// `OtelLogProcessor`, cargo feature `opentelemetry`) is sent as that record: its own
/// time, observed time, severity, body, attributes, event name and trace context, under its own instrumentation
/// scope, with `log.record.uid` and `distinct_id` added. A span (recorded by
/// `OtelSpanProcessor`) sent here is a log record carrying the span in its `otel.span`
/// attribute: nothing is dropped, but [`OtlpTraces`](super::OtlpTraces) is its sink.
///
/// | answer | verdict |
/// |---|---|
/// | 2xx | accepted; with `partialSuccess.rejected_log_records > 0`, partially accepted (not retried) |
/// | 429, 502, 503, 504 | retry (with `Retry-After`, seconds or HTTP date) |
/// | 400 | reject: isolate the poison event |
/// | 413 | too large: split |
/// | any other | misconfigured: keep the events, open the breaker |
///
/// Error bodies (`google.rpc.Status`, protobuf or JSON) are decoded into the reason `Stats::last_error` shows.
///
/// # Where it deliberately differs from OpenTelemetry's SDK exporters
/// The specification lists `429`, `502`, `503` and `504` as the only retryable statuses, and SDK exporters drop a
/// batch answered with anything else, and give up retrying at the export timeout. flush-core retries the retryable
/// statuses until the batch is stored (with backoff and the breaker); `400` is taken as a poison event (the batch is
/// halved until it stands alone, and it goes to the dead-letter file); `413` splits the batch; every other status
/// (`401`, `403`, `404`, `500`, ...) keeps the events and opens the breaker, so the half-open probe tries again after
/// the cooldown instead of dropping the data.
///
/// ```
/// use flush_core::{Config, sink::{OtlpEncoding, OtlpLogs}};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::builder("http://localhost:4318")
///     .sink(OtlpLogs::new().service_name("my-cli").service_version("1.4.2").encoding(OtlpEncoding::Json))
///     .distinct_id("install-1")
///     .spool_dir("/var/lib/my-app/telemetry")
///     .gzip(true)
///     .build()?;
/// assert_eq!(config.url().as_str(), "http://localhost:4318/v1/logs");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpLogs {
    settings: OtlpSettings,
}

impl Default for OtlpLogs {
    fn default() -> Self {
        Self::new()
    }
}

impl OtlpLogs {
    /// Protobuf, `service.name` `unknown_service` (the specification's default), no further attributes.
    pub fn new() -> Self {
        Self {
            settings: OtlpSettings::new(),
        }
    }

    otlp_builder_methods!();
}

impl Sink for OtlpLogs {
    fn name(&self) -> &str {
        "otlp_logs"
    }

    fn url(&self, endpoint: &Url) -> Result<Url, SinkError> {
        self.settings.url(endpoint, &LOGS)
    }

    fn encode(&self, batch: &Batch<'_>) -> Result<Request, EncodeError> {
        let records = batch
            .views()?
            .iter()
            .map(|event| {
                let scope = otlp_form::stored_scope(event).map_err(EncodeError::new)?;
                Ok((scope, log_record(event)?))
            })
            .collect::<Result<Vec<_>, EncodeError>>()?;
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.settings.resource(batch.installation_id())),
                scope_logs: otlp::group_by_scope(records)
                    .into_iter()
                    .map(|(scope, log_records)| ScopeLogs {
                        scope: Some(scope),
                        log_records,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            }],
        };
        self.settings.request(&request)
    }

    fn classify(&self, response: &Response<'_>) -> Verdict {
        otlp::classify(response, &LOGS)
    }
}

/// The stored log record with its identity added, or a new one from the event's name, time and properties.
fn log_record(event: &StoredView<'_>) -> Result<LogRecord, EncodeError> {
    const RESERVED: [&str; 4] = [LOG_RECORD_UID, DISTINCT_ID, LOG_PROPERTY, SCOPE_PROPERTY];
    let mut record = match otlp_form::stored_log(event).map_err(EncodeError::new)? {
        Some(mut record) => {
            record
                .attributes
                .extend(otlp::attributes(event, &RESERVED)?);
            record
        }
        None => {
            let time = otlp::unix_nanos(event)?;
            LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: time,
                event_name: event.name().to_owned(),
                attributes: otlp::attributes(event, &RESERVED)?,
                ..LogRecord::default()
            }
        }
    };
    otlp::set_string_attribute(&mut record.attributes, DISTINCT_ID, event.distinct_id());
    otlp::set_string_attribute(
        &mut record.attributes,
        LOG_RECORD_UID,
        &event.uuid().hyphenated().to_string(),
    );
    Ok(record)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};

    use super::super::otlp::{RpcStatus, any_value as typed};
    use super::*;
    use crate::event::Event;
    use crate::stored_view::stored_record;

    /// The log records of plain events as this sink built them from `Batch::decode`'s `Value` trees, before it read
    /// records in place.
    fn log_records_through_values(batch: &Batch<'_>) -> Vec<LogRecord> {
        const RESERVED: [&str; 4] = [LOG_RECORD_UID, DISTINCT_ID, LOG_PROPERTY, SCOPE_PROPERTY];
        batch
            .decode()
            .unwrap()
            .iter()
            .map(|event| {
                let time = event.unix_nanos().unwrap();
                let mut attributes: Vec<KeyValue> = event
                    .properties()
                    .iter()
                    .filter(|(key, _)| !RESERVED.contains(&key.as_str()))
                    .map(|(key, value)| KeyValue {
                        key: key.clone(),
                        value: Some(typed(value)),
                        ..KeyValue::default()
                    })
                    .collect();
                otlp::set_string_attribute(&mut attributes, DISTINCT_ID, event.distinct_id());
                otlp::set_string_attribute(
                    &mut attributes,
                    LOG_RECORD_UID,
                    &event.uuid().hyphenated().to_string(),
                );
                LogRecord {
                    time_unix_nano: time,
                    observed_time_unix_nano: time,
                    event_name: event.name().to_owned(),
                    attributes,
                    ..LogRecord::default()
                }
            })
            .collect()
    }

    #[test]
    fn records_read_in_place_are_the_records_decoding_built() {
        let mut records = records();
        records.push(stored_record(
            Event::new("second")
                .with("n", 1)
                .with(
                    "nested",
                    serde_json::json!({"z": [1, {"b": null}], "a": "x", "m": {"k": -2}}),
                )
                .with("n", 2.5)
                .with(DISTINCT_ID, "spoofed")
                .with_distinct_id("user-8"),
        ));
        let batch = Batch::new(&records, "install-1");
        let request = OtlpLogs::new().encode(&batch).unwrap();
        let decoded = ExportLogsServiceRequest::decode(request.body()).unwrap();
        assert_eq!(
            decoded.resource_logs[0].scope_logs[0].log_records,
            log_records_through_values(&batch)
        );
    }

    fn records() -> Vec<Vec<u8>> {
        vec![br#"{"uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","event":"tool_call","distinct_id":"user-7","timestamp":"2026-11-23T10:55:10.123456789Z","properties":{"tool":"grep","n":12,"big":18446744073709551615,"ratio":0.5,"ok":true,"args":["-n",1],"nested":{"a":null},"log.record.uid":"spoofed"}}"#.to_vec()]
    }

    fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .and_then(|attribute| attribute.value.as_ref())
            .and_then(|value| value.value.as_ref())
    }

    #[test]
    fn an_event_becomes_one_log_record_with_typed_attributes() {
        let records = records();
        let sink = OtlpLogs::new().service_name("svc").service_version("1.2");
        let request = sink.encode(&Batch::new(&records, "install-1")).unwrap();
        assert_eq!(request.content_type(), "application/x-protobuf");
        let decoded = ExportLogsServiceRequest::decode(request.body()).unwrap();
        let resource = decoded.resource_logs[0].resource.as_ref().unwrap();
        assert_eq!(
            attribute(&resource.attributes, "service.instance.id"),
            Some(&any_value::Value::StringValue("install-1".into()))
        );
        let record = &decoded.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.event_name, "tool_call");
        assert_eq!(record.time_unix_nano, 1_795_431_310_123_456_789);
        let attributes = &record.attributes;
        assert_eq!(
            attribute(attributes, "n"),
            Some(&any_value::Value::IntValue(12))
        );
        assert_eq!(
            attribute(attributes, "big"),
            Some(&any_value::Value::DoubleValue(18446744073709551615.0))
        );
        assert_eq!(
            attribute(attributes, "ok"),
            Some(&any_value::Value::BoolValue(true))
        );
        assert!(matches!(
            attribute(attributes, "args"),
            Some(any_value::Value::ArrayValue(_))
        ));
        assert!(matches!(
            attribute(attributes, "nested"),
            Some(any_value::Value::KvlistValue(_))
        ));
        assert_eq!(
            attribute(attributes, LOG_RECORD_UID),
            Some(&any_value::Value::StringValue(
                "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f".into()
            ))
        );
        assert_eq!(
            attributes
                .iter()
                .filter(|attribute| attribute.key == LOG_RECORD_UID)
                .count(),
            1
        );
    }

    #[test]
    fn a_partial_success_is_read_from_protobuf_and_json() {
        let sink = OtlpLogs::new();
        let body = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 2,
                error_message: "2 log records rejected: bad".into(),
            }),
        }
        .encode_to_vec();
        assert_eq!(
            sink.classify(&Response::new(200, &body).with_content_type("application/x-protobuf")),
            Verdict::PartiallyAccepted {
                rejected: 2,
                message: "2 log records rejected: bad".into()
            }
        );
        let json = br#"{"partialSuccess":{"rejectedLogRecords":"3","errorMessage":"no"}}"#;
        assert_eq!(
            sink.classify(&Response::new(200, json).with_content_type("application/json")),
            Verdict::PartiallyAccepted {
                rejected: 3,
                message: "no".into()
            }
        );
        assert_eq!(
            sink.classify(&Response::new(200, b"{}").with_content_type("application/json")),
            Verdict::Accepted
        );
        assert_eq!(sink.classify(&Response::new(200, b"")), Verdict::Accepted);
    }

    #[test]
    fn only_the_specifications_retryable_statuses_are_retried() {
        let sink = OtlpLogs::new();
        for status in [429, 502, 503, 504] {
            assert!(matches!(
                sink.classify(&Response::new(status, b"")),
                Verdict::Retry { .. }
            ));
        }
        for status in [401, 403, 404, 500, 501] {
            assert!(matches!(
                sink.classify(&Response::new(status, b"")),
                Verdict::Misconfigured { .. }
            ));
        }
        assert!(matches!(
            sink.classify(&Response::new(400, b"")),
            Verdict::Reject { status: 400, .. }
        ));
        assert!(matches!(
            sink.classify(&Response::new(413, b"")),
            Verdict::TooLarge { .. }
        ));
    }

    #[test]
    fn a_google_rpc_status_body_is_the_reason_in_either_encoding() {
        let sink = OtlpLogs::new();
        let body = RpcStatus {
            code: 3,
            message: "the body is not a valid protobuf".into(),
        }
        .encode_to_vec();
        assert_eq!(
            sink.classify(&Response::new(400, &body).with_content_type("application/x-protobuf")),
            Verdict::Reject {
                status: 400,
                reason: "HTTP 400: the body is not a valid protobuf".into()
            }
        );
        let json = br#"{"code":14,"message":"unavailable","details":[]}"#;
        assert_eq!(
            sink.classify(&Response::new(503, json).with_content_type("application/json")),
            Verdict::Retry {
                reason: "HTTP 503: unavailable".into(),
                retry_after: None
            }
        );
    }

    #[test]
    fn the_url_is_the_base_with_v1_logs() {
        let url = OtlpLogs::new()
            .url(&Url::parse("http://localhost:4318").unwrap())
            .unwrap();
        assert_eq!(url.as_str(), "http://localhost:4318/v1/logs");
        assert!(
            OtlpLogs::new()
                .url(&Url::parse("http://localhost:4318/v1/logs").unwrap())
                .is_err()
        );
    }
}
