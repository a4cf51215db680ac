//! What the PostHog and OTLP sinks put on the wire, captured by wiremock and read with the real
//! `opentelemetry-proto` types (protobuf and its serde JSON mapping) and with PostHog's capture field rules, not
//! with flush-core's own code.

use std::io::Read as _;
use std::time::Duration;

use flush_core::sink::{OtlpEncoding, OtlpLogs, PostHog};
use flush_core::{Config, ConfigBuilder, Event, FlushOutcome, MemoryLimits, Uuid};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{fast, start};

const FLUSH: Duration = Duration::from_secs(20);

/// A wiremock server on its own runtime (the reporter is blocking).
fn mock_server() -> (tokio::runtime::Runtime, MockServer) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(MockServer::start());
    (runtime, server)
}

/// Answers `POST route` with `status` (the first `times` requests, when given).
fn answer(
    runtime: &tokio::runtime::Runtime,
    server: &MockServer,
    route: &str,
    status: u16,
    times: Option<u64>,
) {
    let mock = Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status));
    let mock = match times {
        Some(times) => mock.up_to_n_times(times),
        None => mock,
    };
    runtime.block_on(mock.mount(server));
}

fn memory(builder: ConfigBuilder) -> ConfigBuilder {
    fast(builder)
        .memory_only(MemoryLimits::default())
        .distinct_id("install-1")
}

/// The events every wire test records: typed properties, an event of another user, and an event with its own time
/// (at +01:00) and key.
fn record_the_sample(reporter: &flush_core::Reporter) -> Uuid {
    let key = Uuid::from_u128(0x0193_6f4e_8a2b_7c3d_9e4f_5a6b_7c8d_9e0f);
    reporter.record(
        Event::new("tool_call")
            .with("tool", "grep")
            .with("n", 12)
            .with("ratio", 0.5)
            .with("ok", true)
            .with("args", json!(["-n", 1]))
            .with("meta", json!({"depth": 2})),
    );
    reporter.record(Event::new("login").with_distinct_id("user-7"));
    reporter.record(
        Event::new("order_paid")
            .with_timestamp_rfc3339("2026-11-23T11:55:10.123456789+01:00")
            .unwrap()
            .with_idempotency_key(key),
    );
    key
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut decoded)
        .unwrap();
    decoded
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value: &AnyValue| value.value.as_ref())
}

fn text(value: &str) -> any_value::Value {
    any_value::Value::StringValue(value.to_owned())
}

/// The checks both OTLP encodings must pass, on the decoded request.
fn assert_otlp_request(request: &ExportLogsServiceRequest, key: Uuid) {
    assert_eq!(request.resource_logs.len(), 1);
    let resource_logs = &request.resource_logs[0];
    let resource = &resource_logs.resource.as_ref().unwrap().attributes;
    assert_eq!(
        attribute(resource, "service.name"),
        Some(&text("wire-test"))
    );
    assert_eq!(attribute(resource, "service.version"), Some(&text("1.2.3")));
    assert_eq!(
        attribute(resource, "service.instance.id"),
        Some(&text("install-1"))
    );
    assert_eq!(
        attribute(resource, "deployment.environment.name"),
        Some(&text("test"))
    );
    let scope_logs = &resource_logs.scope_logs[0];
    assert_eq!(scope_logs.scope.as_ref().unwrap().name, "flush-core");
    let records = &scope_logs.log_records;
    assert_eq!(records.len(), 3);

    let tool_call = &records[0];
    assert_eq!(tool_call.event_name, "tool_call");
    assert!(tool_call.time_unix_nano > 0);
    assert_eq!(tool_call.observed_time_unix_nano, tool_call.time_unix_nano);
    let attributes = &tool_call.attributes;
    assert_eq!(attribute(attributes, "tool"), Some(&text("grep")));
    assert_eq!(
        attribute(attributes, "n"),
        Some(&any_value::Value::IntValue(12))
    );
    assert_eq!(
        attribute(attributes, "ratio"),
        Some(&any_value::Value::DoubleValue(0.5))
    );
    assert_eq!(
        attribute(attributes, "ok"),
        Some(&any_value::Value::BoolValue(true))
    );
    let Some(any_value::Value::ArrayValue(args)) = attribute(attributes, "args") else {
        panic!("args is not an array: {attributes:?}")
    };
    assert_eq!(args.values[1].value, Some(any_value::Value::IntValue(1)));
    let Some(any_value::Value::KvlistValue(meta)) = attribute(attributes, "meta") else {
        panic!("meta is not a map: {attributes:?}")
    };
    assert_eq!(
        attribute(&meta.values, "depth"),
        Some(&any_value::Value::IntValue(2))
    );
    assert_eq!(
        attribute(attributes, "distinct_id"),
        Some(&text("install-1"))
    );
    let Some(any_value::Value::StringValue(uid)) = attribute(attributes, "log.record.uid") else {
        panic!("no log.record.uid: {attributes:?}")
    };
    assert_eq!(Uuid::parse_str(uid).unwrap().get_version_num(), 7);

    assert_eq!(
        attribute(&records[1].attributes, "distinct_id"),
        Some(&text("user-7"))
    );
    let paid = &records[2];
    assert_eq!(paid.time_unix_nano, 1_795_431_310_123_456_789);
    assert_eq!(
        attribute(&paid.attributes, "log.record.uid"),
        Some(&text(&key.hyphenated().to_string()))
    );
}

fn otlp_sink(encoding: OtlpEncoding) -> OtlpLogs {
    OtlpLogs::new()
        .service_name("wire-test")
        .service_version("1.2.3")
        .resource_attribute("deployment.environment.name", "test")
        .encoding(encoding)
        .header("x-api-key", "secret")
}

#[test]
fn otlp_protobuf_is_an_export_logs_request_the_real_types_decode() {
    let (runtime, server) = mock_server();
    answer(&runtime, &server, "/v1/logs", 200, None);
    let reporter = start(memory(
        Config::builder(server.uri()).sink(otlp_sink(OtlpEncoding::Protobuf)),
    ));

    let key = record_the_sample(&reporter);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);

    let requests = runtime.block_on(server.received_requests()).unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.headers["content-type"], "application/x-protobuf");
    assert_eq!(request.headers["x-api-key"], "secret");
    assert_otlp_request(
        &ExportLogsServiceRequest::decode(&request.body[..]).unwrap(),
        key,
    );
}

#[test]
fn otlp_json_with_gzip_follows_the_otlp_json_rules_and_decodes_with_the_real_types() {
    let (runtime, server) = mock_server();
    answer(&runtime, &server, "/v1/logs", 200, None);
    let reporter = start(memory(
        Config::builder(format!("{}/", server.uri()))
            .sink(otlp_sink(OtlpEncoding::Json))
            .gzip(true),
    ));

    let key = record_the_sample(&reporter);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);

    let requests = runtime.block_on(server.received_requests()).unwrap();
    let request = &requests[0];
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["content-encoding"], "gzip");
    let body = gunzip(&request.body);
    let json: Value = serde_json::from_slice(&body).unwrap();
    let record = &json["resourceLogs"][0]["scopeLogs"][0]["logRecords"][2];
    // OTLP/JSON: lowerCamelCase keys, 64-bit integers as decimal strings.
    assert_eq!(record["timeUnixNano"], "1795431310123456789");
    assert_eq!(record["eventName"], "order_paid");
    assert_otlp_request(&serde_json::from_slice(&body).unwrap(), key);
}

#[test]
fn posthog_batches_follow_posthogs_field_rules_and_a_resend_is_identical() {
    let (runtime, server) = mock_server();
    answer(&runtime, &server, "/batch/", 503, Some(1));
    answer(&runtime, &server, "/batch/", 200, None);
    let reporter = start(memory(
        Config::builder(server.uri()).sink(PostHog::new("phc_wire")),
    ));

    let key = record_the_sample(&reporter);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);

    let requests = runtime.block_on(server.received_requests()).unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body, requests[1].body,
        "the resend is the same batch"
    );
    assert_eq!(requests[0].headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(body["api_key"], "phc_wire");
    let batch = body["batch"].as_array().unwrap();
    assert_eq!(batch.len(), 3);
    for event in batch {
        // PostHog's capture rules: a non-empty event name, a string distinct_id, a UUID, an ISO 8601 timestamp.
        assert!(!event["event"].as_str().unwrap().is_empty(), "{event}");
        assert!(event["distinct_id"].is_string(), "{event}");
        Uuid::parse_str(event["uuid"].as_str().unwrap()).unwrap();
        event["timestamp"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap();
        assert_eq!(event["properties"]["$lib"], "flush-core", "{event}");
        assert_eq!(
            event["properties"]["$lib_version"],
            env!("CARGO_PKG_VERSION"),
            "{event}"
        );
    }
    let properties = &batch[0]["properties"];
    assert_eq!(
        (
            properties["tool"].clone(),
            properties["n"].clone(),
            properties["args"].clone()
        ),
        (json!("grep"), json!(12), json!(["-n", 1]))
    );
    assert_eq!(
        (
            batch[0]["distinct_id"].clone(),
            batch[1]["distinct_id"].clone()
        ),
        (json!("install-1"), json!("user-7"))
    );
    assert_eq!(batch[2]["uuid"], key.hyphenated().to_string());
    assert_eq!(batch[2]["timestamp"], "2026-11-23T10:55:10.123456789Z");
}
