//! The `otlp_logs` sink: OTLP/HTTP logs, `POST {endpoint}/v1/logs`, as the OpenTelemetry protocol specification
//! defines it, with the messages of the `opentelemetry-proto` crate.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde_json::Value;

use super::{
    Batch, DecodedEvent, EncodeError, Request, Response, Sink, SinkError, Url, Verdict,
    with_path_suffix,
};

/// The attribute that carries the idempotency key: the semantic convention for a log record's unique id.
pub(crate) const LOG_RECORD_UID: &str = "log.record.uid";
/// The attribute that carries the event's `distinct_id`.
pub(crate) const DISTINCT_ID: &str = "distinct_id";

/// How OTLP/HTTP bodies are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpEncoding {
    /// Binary protobuf, `application/x-protobuf` (the default, as in the specification).
    #[default]
    Protobuf,
    /// OTLP/JSON, `application/json`.
    Json,
}

impl OtlpEncoding {
    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

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
    encoding: OtlpEncoding,
    service_name: String,
    service_version: Option<String>,
    resource: Vec<(String, Value)>,
    headers: Vec<(String, String)>,
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
            encoding: OtlpEncoding::Protobuf,
            service_name: "unknown_service".to_owned(),
            service_version: None,
            resource: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// The `service.name` resource attribute.
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// The `service.version` resource attribute.
    #[must_use]
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// A further resource attribute (e.g. `deployment.environment.name`), typed like event properties.
    #[must_use]
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.resource.push((key.into(), value.into()));
        self
    }

    /// Protobuf (default) or JSON bodies.
    #[must_use]
    pub fn encoding(mut self, encoding: OtlpEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// A header sent with every request (e.g. a vendor's api key header).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn resource(&self, installation_id: &str) -> Resource {
        let mut attributes = vec![string_attribute("service.name", &self.service_name)];
        if let Some(version) = &self.service_version {
            attributes.push(string_attribute("service.version", version));
        }
        attributes.push(string_attribute("service.instance.id", installation_id));
        for (key, value) in &self.resource {
            attributes.retain(|attribute| &attribute.key != key);
            attributes.push(key_value(key.clone(), any_value(value)));
        }
        Resource {
            attributes,
            ..Resource::default()
        }
    }
}

impl Sink for OtlpLogs {
    fn name(&self) -> &str {
        "otlp_logs"
    }

    fn url(&self, endpoint: &Url) -> Result<Url, SinkError> {
        if self.service_name.is_empty() {
            return Err(SinkError::new("the otlp service.name is empty"));
        }
        if endpoint.path().trim_end_matches('/').ends_with("/v1/logs") {
            return Err(SinkError::new(
                "the otlp endpoint is the base url (e.g. http://localhost:4318); /v1/logs is added to it",
            ));
        }
        Ok(with_path_suffix(endpoint, "/v1/logs"))
    }

    fn encode(&self, batch: &Batch<'_>) -> Result<Request, EncodeError> {
        let log_records = batch
            .decode()?
            .iter()
            .map(log_record)
            .collect::<Result<Vec<_>, _>>()?;
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource(batch.installation_id())),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "flush-core".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let body = match self.encoding {
            OtlpEncoding::Protobuf => request.encode_to_vec(),
            OtlpEncoding::Json => serde_json::to_vec(&request).map_err(EncodeError::new)?,
        };
        let mut request = Request::new(self.encoding.content_type(), body);
        for (name, value) in &self.headers {
            request = request.header(name.clone(), value.clone());
        }
        Ok(request)
    }

    fn classify(&self, response: &Response<'_>) -> Verdict {
        let status = response.status();
        let is_json = response
            .content_type()
            .is_some_and(|content_type| content_type.starts_with("application/json"));
        if (200..300).contains(&status) {
            return match partial_success(response.body(), is_json) {
                Some((rejected, message)) if rejected > 0 => {
                    Verdict::PartiallyAccepted { rejected, message }
                }
                _ => Verdict::Accepted,
            };
        }
        let reason = || {
            let detail = rpc_status_message(response.body(), is_json)
                .unwrap_or_else(|| response.body_text());
            format!("HTTP {status}: {detail}")
        };
        match status {
            429 | 502 | 503 | 504 => Verdict::Retry {
                reason: reason(),
                retry_after: response.retry_after(),
            },
            400 => Verdict::Reject {
                status,
                reason: reason(),
            },
            413 => Verdict::TooLarge { reason: reason() },
            _ => Verdict::Misconfigured {
                status,
                reason: reason(),
            },
        }
    }
}

/// A time the protocol cannot carry (before 1970).
#[derive(Debug, thiserror::Error)]
#[error("event {uuid} has a time before 1970, which OTLP cannot carry")]
struct TimeBeforeEpoch {
    uuid: uuid::Uuid,
}

fn log_record(event: &DecodedEvent) -> Result<LogRecord, EncodeError> {
    let time = event
        .unix_nanos()
        .ok_or_else(|| EncodeError::new(TimeBeforeEpoch { uuid: event.uuid() }))?;
    let mut attributes: Vec<KeyValue> = event
        .properties()
        .iter()
        .filter(|(key, _)| key.as_str() != LOG_RECORD_UID && key.as_str() != DISTINCT_ID)
        .map(|(key, value)| key_value(key.clone(), any_value(value)))
        .collect();
    attributes.push(string_attribute(DISTINCT_ID, event.distinct_id()));
    attributes.push(string_attribute(
        LOG_RECORD_UID,
        &event.uuid().hyphenated().to_string(),
    ));
    Ok(LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: time,
        event_name: event.name().to_owned(),
        attributes,
        ..LogRecord::default()
    })
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    let value = AnyValue {
        value: Some(any_value::Value::StringValue(value.to_owned())),
    };
    key_value(key.to_owned(), value)
}

fn key_value(key: String, value: AnyValue) -> KeyValue {
    KeyValue {
        key,
        value: Some(value),
        ..KeyValue::default()
    }
}

/// A JSON value as a typed OTLP value: integers stay integers (an unsigned one past `i64::MAX` becomes a double),
/// arrays and objects stay arrays and maps, `null` is the empty value.
fn any_value(value: &Value) -> AnyValue {
    let value = match value {
        Value::Null => None,
        Value::Bool(flag) => Some(any_value::Value::BoolValue(*flag)),
        Value::Number(number) => Some(match (number.as_i64(), number.as_f64()) {
            (Some(integer), _) => any_value::Value::IntValue(integer),
            (None, Some(double)) => any_value::Value::DoubleValue(double),
            // serde_json's numbers are always one of the two without arbitrary precision.
            (None, None) => any_value::Value::StringValue(number.to_string()),
        }),
        Value::String(text) => Some(any_value::Value::StringValue(text.clone())),
        Value::Array(items) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(any_value).collect(),
        })),
        Value::Object(members) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: members
                .iter()
                .map(|(key, member)| key_value(key.clone(), any_value(member)))
                .collect(),
        })),
    };
    AnyValue { value }
}

/// `partialSuccess` of a 2xx body: the rejected count and the server's message. `None` when the body has none
/// (an empty body is a full success).
fn partial_success(body: &[u8], is_json: bool) -> Option<(u64, String)> {
    if body.is_empty() {
        return None;
    }
    if is_json {
        let value: Value = serde_json::from_slice(body).ok()?;
        let partial = value.get("partialSuccess")?;
        let rejected = match partial.get("rejectedLogRecords")? {
            Value::Number(number) => number.as_u64()?,
            Value::String(text) => text.parse().ok()?,
            _ => return None,
        };
        let message = partial
            .get("errorMessage")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        return Some((rejected, message));
    }
    let response = ExportLogsServiceResponse::decode(body).ok()?;
    let partial = response.partial_success?;
    Some((
        u64::try_from(partial.rejected_log_records).unwrap_or(0),
        partial.error_message,
    ))
}

/// `google.rpc.Status`, the body of OTLP/HTTP error answers (`opentelemetry-proto` does not ship it); only the
/// fields flush-core reads.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The `message` of a `google.rpc.Status` body, if the body is one with a message.
fn rpc_status_message(body: &[u8], is_json: bool) -> Option<String> {
    let message = if is_json {
        let value: Value = serde_json::from_slice(body).ok()?;
        value.get("message")?.as_str()?.to_owned()
    } else {
        RpcStatus::decode(body).ok()?.message
    };
    (!message.is_empty()).then_some(message)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;

    use super::*;

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
