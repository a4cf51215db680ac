//! What the OTLP/HTTP sinks ([`OtlpLogs`](super::OtlpLogs), [`OtlpTraces`](super::OtlpTraces)) share: the
//! encoding choice, the settings every OTLP request carries (resource attributes, headers), the URL rule
//! (`{endpoint}/v1/{signal}`), typed attribute values, grouping records by instrumentation scope, and the
//! specification's status rules with partial success and `google.rpc.Status` error bodies. Each signal's sink
//! supplies only its record mapping and its `Export*ServiceRequest`/`Response` messages.

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::stored_view::{BorrowedText, StoredView, sort_by_key_last_wins};

use super::{
    EncodeError, Request, Response, SinkError, Url, Verdict, failure_verdict, with_path_suffix,
};

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

/// One OTLP signal as the shared code needs to know it.
pub(super) struct Signal {
    /// The path appended to the endpoint (`/v1/logs`).
    pub(super) path: &'static str,
    /// The JSON name of the rejected count in `partialSuccess` (`rejectedLogRecords`).
    pub(super) rejected_field: &'static str,
    /// The rejected count and message of a protobuf `Export*ServiceResponse`, if it has a `partial_success`.
    pub(super) decode_partial_success: fn(&[u8]) -> Option<(i64, String)>,
}

/// The settings of every OTLP sink: body encoding, resource attributes and extra headers.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OtlpSettings {
    pub(super) encoding: OtlpEncoding,
    pub(super) service_name: String,
    pub(super) service_version: Option<String>,
    pub(super) resource: Vec<(String, Value)>,
    pub(super) headers: Vec<(String, String)>,
}

impl OtlpSettings {
    /// Protobuf, `service.name` `unknown_service` (the specification's default), no further attributes.
    pub(super) fn new() -> Self {
        Self {
            encoding: OtlpEncoding::Protobuf,
            service_name: "unknown_service".to_owned(),
            service_version: None,
            resource: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// `{endpoint}/v1/{signal}`; the endpoint is the base URL, so one that already ends with the signal's path is
    /// refused (it would post to `/v1/logs/v1/logs`).
    pub(super) fn url(&self, endpoint: &Url, signal: &Signal) -> Result<Url, SinkError> {
        if self.service_name.is_empty() {
            return Err(SinkError::new("the otlp service.name is empty"));
        }
        if endpoint.path().trim_end_matches('/').ends_with(signal.path) {
            return Err(SinkError::new(format!(
                "the otlp endpoint is the base url (e.g. http://localhost:4318); {} is added to it",
                signal.path
            )));
        }
        Ok(with_path_suffix(endpoint, signal.path))
    }

    /// `service.name`, `service.version` (when set), `service.instance.id` (the reporter's installation id) and the
    /// further attributes (a further one replaces a standard one of the same key).
    pub(super) fn resource(&self, installation_id: &str) -> Resource {
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

    /// The request for an `Export*ServiceRequest` message, in the configured encoding, with the extra headers.
    pub(super) fn request<M>(&self, message: &M) -> Result<Request, EncodeError>
    where
        M: prost::Message + serde::Serialize,
    {
        let body = match self.encoding {
            OtlpEncoding::Protobuf => message.encode_to_vec(),
            OtlpEncoding::Json => serde_json::to_vec(message).map_err(EncodeError::new)?,
        };
        let mut request = Request::new(self.encoding.content_type(), body);
        for (name, value) in &self.headers {
            request = request.header(name.clone(), value.clone());
        }
        Ok(request)
    }
}

/// The builder methods of an OTLP sink whose settings are in its `settings` field: one definition for every
/// signal, so the sinks cannot drift apart.
macro_rules! otlp_builder_methods {
    () => {
        /// The `service.name` resource attribute.
        #[must_use]
        pub fn service_name(mut self, name: impl Into<String>) -> Self {
            self.settings.service_name = name.into();
            self
        }

        /// The `service.version` resource attribute.
        #[must_use]
        pub fn service_version(mut self, version: impl Into<String>) -> Self {
            self.settings.service_version = Some(version.into());
            self
        }

        /// A further resource attribute (e.g. `deployment.environment.name`), typed like event properties.
        #[must_use]
        pub fn resource_attribute(
            mut self,
            key: impl Into<String>,
            value: impl Into<serde_json::Value>,
        ) -> Self {
            self.settings.resource.push((key.into(), value.into()));
            self
        }

        /// Protobuf (default) or JSON bodies.
        #[must_use]
        pub fn encoding(mut self, encoding: $crate::sink::OtlpEncoding) -> Self {
            self.settings.encoding = encoding;
            self
        }

        /// A header sent with every request (e.g. a vendor's api key header).
        #[must_use]
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.settings.headers.push((name.into(), value.into()));
            self
        }
    };
}
pub(super) use otlp_builder_methods;

/// The scope of events that do not bring their own: flush-core with the crate's version.
pub(super) fn flush_core_scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "flush-core".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..InstrumentationScope::default()
    }
}

/// Records grouped by instrumentation scope, each group in the order its first record came, records in order
/// within a group; a record without a scope of its own is in flush-core's.
pub(super) fn group_by_scope<T>(
    records: impl IntoIterator<Item = (Option<InstrumentationScope>, T)>,
) -> Vec<(InstrumentationScope, Vec<T>)> {
    let mut groups: Vec<(InstrumentationScope, Vec<T>)> = Vec::new();
    for (scope, record) in records {
        let scope = scope.unwrap_or_else(flush_core_scope);
        match groups.iter_mut().find(|(existing, _)| *existing == scope) {
            Some((_, group)) => group.push(record),
            None => groups.push((scope, vec![record])),
        }
    }
    groups
}

/// The specification's status rules, for every signal:
///
/// | answer | verdict |
/// |---|---|
/// | 2xx | accepted; with a rejected count above zero in `partialSuccess`, partially accepted (not retried) |
/// | 429, 502, 503, 504 | retry (with `Retry-After`, seconds or HTTP date) |
/// | 400 | reject: isolate the poison event |
/// | 413 | too large: split |
/// | any other | misconfigured: keep the events, open the breaker |
///
/// Error bodies (`google.rpc.Status`, protobuf or JSON) are decoded into the reason.
pub(super) fn classify(response: &Response<'_>, signal: &Signal) -> Verdict {
    let status = response.status();
    let is_json = response
        .content_type()
        .is_some_and(|content_type| content_type.starts_with("application/json"));
    if (200..300).contains(&status) {
        return match partial_success(response.body(), is_json, signal) {
            Some((rejected, message)) if rejected > 0 => {
                Verdict::PartiallyAccepted { rejected, message }
            }
            _ => Verdict::Accepted,
        };
    }
    let reason = || {
        let detail =
            rpc_status_message(response.body(), is_json).unwrap_or_else(|| response.body_text());
        format!("HTTP {status}: {detail}")
    };
    failure_verdict(
        response,
        matches!(status, 429 | 502 | 503 | 504),
        status == 400,
        reason(),
    )
}

/// `partialSuccess` of a 2xx body: the rejected count and the server's message. `None` when the body has none
/// (an empty body is a full success).
fn partial_success(body: &[u8], is_json: bool, signal: &Signal) -> Option<(u64, String)> {
    if body.is_empty() {
        return None;
    }
    if is_json {
        let value: Value = serde_json::from_slice(body).ok()?;
        let partial = value.get("partialSuccess")?;
        let rejected = match partial.get(signal.rejected_field)? {
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
    let (rejected, message) = (signal.decode_partial_success)(body)?;
    Some((u64::try_from(rejected).unwrap_or(0), message))
}

/// `google.rpc.Status`, the body of OTLP/HTTP error answers (`opentelemetry-proto` does not ship it); only the
/// fields flush-core reads.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub(super) code: i32,
    #[prost(string, tag = "2")]
    pub(super) message: String,
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

/// A time the protocol cannot carry (before 1970).
#[derive(Debug, thiserror::Error)]
#[error("event {uuid} has a time before 1970, which OTLP cannot carry")]
struct TimeBeforeEpoch {
    uuid: uuid::Uuid,
}

/// The event's time in nanoseconds since the Unix epoch.
///
/// # Errors
/// [`EncodeError`] for a time before 1970.
pub(super) fn unix_nanos(event: &StoredView<'_>) -> Result<u64, EncodeError> {
    event
        .unix_nanos()
        .ok_or_else(|| EncodeError::new(TimeBeforeEpoch { uuid: event.uuid() }))
}

/// The event's properties as typed attributes (by [`any_value`]'s rules, read from their JSON text), except those
/// under `skip`.
///
/// # Errors
/// [`EncodeError`] if a property's text is not JSON (it always is, once the record was read).
pub(super) fn attributes(
    event: &StoredView<'_>,
    skip: &[&str],
) -> Result<Vec<KeyValue>, EncodeError> {
    event
        .properties()
        .iter()
        .filter(|(key, _)| !skip.contains(&&**key))
        .map(|(key, text)| {
            let TypedValue(value) = serde_json::from_str(text.get()).map_err(EncodeError::new)?;
            Ok(key_value(key.clone().into_owned(), value))
        })
        .collect()
}

/// Sets `key` to a string value, replacing any attribute of that key.
pub(super) fn set_string_attribute(attributes: &mut Vec<KeyValue>, key: &str, value: &str) {
    attributes.retain(|attribute| attribute.key != key);
    attributes.push(string_attribute(key, value));
}

pub(super) fn string_attribute(key: &str, value: &str) -> KeyValue {
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
pub(super) fn any_value(value: &Value) -> AnyValue {
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

/// A JSON text deserialized straight into the typed OTLP value [`any_value`] makes of its `Value`: no `Value` in
/// between. Integers stay integers (an unsigned one past `i64::MAX` becomes a double), arrays and objects stay
/// arrays and maps (an object's keys ordered, each once, a later one winning, as in a `serde_json::Map`), `null`
/// is the empty value.
pub(super) struct TypedValue(pub(super) AnyValue);

impl<'de> Deserialize<'de> for TypedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TypedValueVisitor)
    }
}

struct TypedValueVisitor;

impl TypedValueVisitor {
    fn typed(value: any_value::Value) -> TypedValue {
        TypedValue(AnyValue { value: Some(value) })
    }
}

impl<'de> Visitor<'de> for TypedValueVisitor {
    type Value = TypedValue;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<TypedValue, E> {
        Ok(TypedValue(AnyValue { value: None }))
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<TypedValue, E> {
        Ok(Self::typed(any_value::Value::BoolValue(flag)))
    }

    fn visit_i64<E: de::Error>(self, integer: i64) -> Result<TypedValue, E> {
        Ok(Self::typed(any_value::Value::IntValue(integer)))
    }

    fn visit_u64<E: de::Error>(self, integer: u64) -> Result<TypedValue, E> {
        Ok(Self::typed(match i64::try_from(integer) {
            Ok(integer) => any_value::Value::IntValue(integer),
            // Past `i64::MAX`: a double, as `serde_json::Number::as_f64` makes it.
            Err(_) => any_value::Value::DoubleValue(integer as f64),
        }))
    }

    fn visit_f64<E: de::Error>(self, double: f64) -> Result<TypedValue, E> {
        Ok(Self::typed(any_value::Value::DoubleValue(double)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<TypedValue, E> {
        Ok(Self::typed(any_value::Value::StringValue(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<TypedValue, E> {
        Ok(Self::typed(any_value::Value::StringValue(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<TypedValue, A::Error> {
        let mut values = Vec::with_capacity(items.size_hint().unwrap_or(4));
        while let Some(TypedValue(value)) = items.next_element()? {
            values.push(value);
        }
        Ok(Self::typed(any_value::Value::ArrayValue(ArrayValue {
            values,
        })))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<TypedValue, A::Error> {
        let mut entries = Vec::with_capacity(members.size_hint().unwrap_or(4));
        while let Some((BorrowedText(key), TypedValue(value))) = members.next_entry()? {
            entries.push((key, value));
        }
        sort_by_key_last_wins(&mut entries);
        let values = entries
            .into_iter()
            .map(|(key, value)| key_value(key.into_owned(), value))
            .collect();
        Ok(Self::typed(any_value::Value::KvlistValue(KeyValueList {
            values,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(name: &str) -> InstrumentationScope {
        InstrumentationScope {
            name: name.to_owned(),
            ..InstrumentationScope::default()
        }
    }

    #[test]
    fn records_are_grouped_by_scope_in_first_seen_order() {
        let groups = group_by_scope([
            (Some(scope("a")), 1),
            (None, 2),
            (Some(scope("a")), 3),
            (Some(scope("b")), 4),
            (None, 5),
        ]);
        let shape: Vec<(String, Vec<i32>)> = groups
            .into_iter()
            .map(|(scope, records)| (scope.name, records))
            .collect();
        assert_eq!(
            shape,
            [
                ("a".to_owned(), vec![1, 3]),
                ("flush-core".to_owned(), vec![2, 5]),
                ("b".to_owned(), vec![4]),
            ]
        );
    }

    #[test]
    fn a_json_text_is_typed_as_its_value_is() {
        for text in [
            "null",
            "true",
            "12",
            "-12",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "184467440737095516150",
            "0.5",
            "-1e300",
            "1e3",
            r#""caf\u00e9 \"quoted\"""#,
            r#"[1,"a",[null,false],{"k":1.5}]"#,
            r#"{"z":1,"a":{"y":[],"b":{}},"z":2,"":"empty"}"#,
        ] {
            let TypedValue(typed) = serde_json::from_str(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(typed, any_value(&value), "{text}");
        }
    }

    #[test]
    fn a_further_resource_attribute_replaces_a_standard_one() {
        let mut settings = OtlpSettings::new();
        settings
            .resource
            .push(("service.name".into(), "other".into()));
        let resource = settings.resource("install-1");
        let names: Vec<&str> = resource
            .attributes
            .iter()
            .map(|attribute| attribute.key.as_str())
            .collect();
        assert_eq!(names, ["service.instance.id", "service.name"]);
    }
}
