//! No body on any OTLP or PostHog route makes the server panic or answer 5xx on its own (proptest over bodies,
//! content types and encodings, through `oneshot`).

use fake_ingest::{Config, app};
use proptest::prelude::*;
use prost::Message as _;

use crate::support::{POSTHOG_ROUTES, arbitrary_post, oneshot, runtime};

/// Every OTLP and PostHog route.
fn routes() -> Vec<&'static str> {
    ["/v1/logs", "/v1/traces", "/v1/metrics"]
        .into_iter()
        .chain(POSTHOG_ROUTES)
        .collect()
}

/// Near-valid bodies of every protocol (so the deep checks run), truncated or with bytes flipped, plus noise.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let log = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![opentelemetry_proto::tonic::logs::v1::ResourceLogs {
            scope_logs: vec![opentelemetry_proto::tonic::logs::v1::ScopeLogs {
                log_records: vec![opentelemetry_proto::tonic::logs::v1::LogRecord {
                    time_unix_nano: 1,
                    trace_id: vec![7; 16],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let seeds: Vec<Vec<u8>> = vec![
        log.encode_to_vec(),
        serde_json::to_vec(&log).expect("serializable"),
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x"}]}]}]}"#.to_vec(),
        br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"timeUnixNano":"1","asInt":"3"}]}}]}]}]}"#.to_vec(),
        br#"{"api_key":"k","batch":[{"event":"e","distinct_id":"d","uuid":"01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f","timestamp":"2026-11-23T10:55:10Z"}]}"#.to_vec(),
        br#"{"api_key":"k","event":"e","properties":{"distinct_id":7}}"#.to_vec(),
    ];
    let mutated = (
        proptest::sample::select(seeds),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(mut body, index, byte, truncate)| {
            if !body.is_empty() {
                let at = index.index(body.len());
                if truncate {
                    body.truncate(at);
                } else {
                    body[at] = byte;
                }
            }
            body
        });
    prop_oneof![
        mutated,
        proptest::collection::vec(any::<u8>(), 0..256),
        ".{0,64}".prop_map(String::into_bytes)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bodies_on_every_protocol_route_never_get_a_5xx_without_an_injected_fault(
        route in proptest::sample::select(routes()),
        body in bodies(),
        content_type in prop_oneof![
            Just("application/json".to_owned()),
            Just("application/x-protobuf".to_owned()),
            Just("text/plain".to_owned()),
            ".{0,20}",
        ],
        encoding in prop_oneof![Just(""), Just("gzip"), Just("identity"), Just("br")],
        query in prop_oneof![Just(""), Just("?compression=gzip-js"), Just("?compression=base64")],
    ) {
        let app = app(Config { max_body_bytes: 300, ..Config::default() }).expect("a valid config");
        let request = arbitrary_post(&format!("{route}{query}"), &content_type, encoding, body);

        let (status, _, answer) = runtime().block_on(oneshot(&app, request));

        prop_assert!(status.as_u16() < 500, "{route}: {status} {answer}");
    }
}
