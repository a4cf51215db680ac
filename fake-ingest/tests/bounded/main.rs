//! fake-ingest's memory and disk are bounded by what it was sent: on every data route, for adversarial requests
//! (large resources and scopes shared by many tiny records, long metric names and descriptions, duplicates), the
//! bytes a request leaves allocated in the server and the bytes it adds to the `--data-dir` log stay within a fixed
//! multiple of the request body's size; and a captured event of the benches' sample keeps at most 1.5 times its wire
//! size plus 64 bytes allocated.
//!
//! This is a test binary of its own, not a module of `tests/it`, because it installs a counting global allocator
//! (`stats_alloc`): the counts are process-wide, so the binary holds only these tests, which drive the router with
//! `oneshot` on a current-thread runtime, one test at a time. Nothing else allocates while a request is measured,
//! so the count is exact and the same on a loaded machine as on an idle one.

use std::alloc::System;
use std::path::Path;

use axum::body::{Body, Bytes};
use axum::http::Request;
use fake_ingest::{Config, app};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What a request may leave allocated in the server, per byte of (decompressed) body.
const MEMORY_PER_BODY_BYTE: usize = 24;
/// What a request may leave allocated per event it stored (the event's fixed overhead: its key twice, its
/// timestamps, a small properties map; a minimal OTLP record is 11 bytes of protobuf but one such event).
const MEMORY_PER_EVENT: usize = 2_560;
/// What a request may add to the batch log, per byte of body.
const DISK_PER_BODY_BYTE: usize = 4;
/// What a request may add to the batch log per event it stored (its key, name, time and `otel.*` keys in JSON).
const DISK_PER_EVENT: usize = 256;
/// A fixed allowance per request (the per-route counters, a log record's frame, vectors' spare capacity).
const PER_REQUEST: usize = 16 * 1024;

/// What one request cost.
#[derive(Debug)]
struct Cost {
    status: u16,
    body_len: usize,
    events_stored: usize,
    retained: isize,
    written: usize,
}

impl Cost {
    fn memory_limit(&self) -> isize {
        (MEMORY_PER_BODY_BYTE * self.body_len + MEMORY_PER_EVENT * self.events_stored + PER_REQUEST)
            as isize
    }

    fn disk_limit(&self) -> usize {
        DISK_PER_BODY_BYTE * self.body_len + DISK_PER_EVENT * self.events_stored + PER_REQUEST
    }
}

/// The data routes and how their bodies are encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    Ingest,
    OtlpLogs { json: bool, posthog: bool },
    OtlpTraces { json: bool, posthog: bool },
    OtlpMetrics { json: bool, posthog: bool },
    Posthog(&'static str),
}

const POSTHOG_ROUTES: [&str; 8] = [
    "/batch",
    "/batch/",
    "/capture",
    "/capture/",
    "/e",
    "/e/",
    "/i/v0/e",
    "/i/v0/e/",
];

fn routes() -> Vec<Route> {
    let mut routes = vec![Route::Ingest];
    for json in [false, true] {
        for posthog in [false, true] {
            routes.extend([
                Route::OtlpLogs { json, posthog },
                Route::OtlpTraces { json, posthog },
                Route::OtlpMetrics { json, posthog },
            ]);
        }
    }
    routes.extend(POSTHOG_ROUTES.map(Route::Posthog));
    routes
}

/// The shape of an adversarial request: what is shared, how big it is, and how many small records share it.
#[derive(Debug, Clone)]
struct Shape {
    resources: usize,
    resource_attributes: usize,
    value_len: usize,
    scopes: usize,
    scope_name_len: usize,
    records: usize,
    record_attributes: usize,
    text_len: usize,
    /// Whether the records differ (else they are duplicates of one another).
    distinct: bool,
    metric_name_len: usize,
}

fn shapes() -> impl Strategy<Value = Shape> {
    (
        1usize..3,
        0usize..300,
        0usize..200,
        1usize..3,
        0usize..3000,
        0usize..400,
        0usize..3,
        0usize..40,
        any::<bool>(),
        1usize..300,
    )
        .prop_map(
            |(
                resources,
                resource_attributes,
                value_len,
                scopes,
                scope_name_len,
                records,
                record_attributes,
                text_len,
                distinct,
                metric_name_len,
            )| Shape {
                resources,
                resource_attributes,
                value_len,
                scopes,
                scope_name_len,
                records,
                record_attributes,
                text_len,
                distinct,
                metric_name_len,
            },
        )
}

fn string_value(text: String) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(text)),
    })
}

fn attributes(count: usize, value_len: usize) -> Vec<KeyValue> {
    (0..count)
        .map(|i| KeyValue {
            key: format!("a{i}"),
            value: string_value("v".repeat(value_len)),
            ..Default::default()
        })
        .collect()
}

fn resource(shape: &Shape) -> Option<Resource> {
    Some(Resource {
        attributes: attributes(shape.resource_attributes, shape.value_len),
        ..Default::default()
    })
}

fn scope(shape: &Shape) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "s".repeat(shape.scope_name_len),
        ..Default::default()
    })
}

/// The n-th record's distinguishing number (all the same when the records are duplicates).
fn nth(shape: &Shape, index: usize) -> u64 {
    if shape.distinct { index as u64 + 1 } else { 1 }
}

fn logs(shape: &Shape) -> ExportLogsServiceRequest {
    let records = |_| {
        (0..shape.records)
            .map(|i| LogRecord {
                time_unix_nano: nth(shape, i),
                body: (shape.text_len > 0)
                    .then(|| string_value("b".repeat(shape.text_len)))
                    .flatten(),
                attributes: attributes(shape.record_attributes, shape.text_len),
                ..Default::default()
            })
            .collect()
    };
    ExportLogsServiceRequest {
        resource_logs: (0..shape.resources)
            .map(|_| ResourceLogs {
                resource: resource(shape),
                scope_logs: (0..shape.scopes)
                    .map(|s| ScopeLogs {
                        scope: scope(shape),
                        log_records: records(s),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

fn traces(shape: &Shape) -> ExportTraceServiceRequest {
    let spans = |scope_index: usize| {
        (0..shape.records)
            .map(|i| {
                let id = nth(shape, i) + 1_000_000 * scope_index as u64;
                Span {
                    trace_id: vec![7; 16],
                    span_id: id.to_be_bytes().to_vec(),
                    name: "n".repeat(shape.text_len),
                    attributes: attributes(shape.record_attributes, shape.text_len),
                    ..Default::default()
                }
            })
            .collect()
    };
    ExportTraceServiceRequest {
        resource_spans: (0..shape.resources)
            .map(|_| ResourceSpans {
                resource: resource(shape),
                scope_spans: (0..shape.scopes)
                    .map(|s| ScopeSpans {
                        scope: scope(shape),
                        spans: spans(s),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

fn metrics(shape: &Shape) -> ExportMetricsServiceRequest {
    let metric = || Metric {
        name: "m".repeat(shape.metric_name_len),
        description: "d".repeat(shape.scope_name_len),
        unit: "u".repeat(shape.text_len),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: (0..shape.records)
                .map(|i| NumberDataPoint {
                    time_unix_nano: nth(shape, i),
                    value: Some(number_data_point::Value::AsInt(1)),
                    attributes: attributes(shape.record_attributes, shape.text_len),
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: (0..shape.resources)
            .map(|_| ResourceMetrics {
                resource: resource(shape),
                scope_metrics: (0..shape.scopes)
                    .map(|_| ScopeMetrics {
                        scope: scope(shape),
                        metrics: vec![metric(), metric()],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

/// A batch of JSON events in `/ingest` and PostHog form (both need at least one event).
fn json_events(shape: &Shape) -> Vec<Value> {
    (0..shape.records.max(1))
        .map(|i| {
            let properties: serde_json::Map<String, Value> = (0..shape.record_attributes
                + shape.resource_attributes % 4)
                .map(|p| (format!("p{p}"), json!("v".repeat(shape.text_len))))
                .collect();
            json!({
                "uuid": uuid::Uuid::from_u128(u128::from(nth(shape, i))).to_string(),
                "event": "e",
                "distinct_id": "d",
                "timestamp": "2026-11-23T10:55:10Z",
                "properties": properties,
            })
        })
        .collect()
}

fn encode<M: prost::Message + serde::Serialize>(message: &M, json: bool) -> Vec<u8> {
    if json {
        serde_json::to_vec(message).expect("serializable")
    } else {
        message.encode_to_vec()
    }
}

/// An OTLP route: `/v1/<signal>`, or PostHog's `/i/v1/<signal>?token=...`.
fn otlp_path(signal: &str, posthog: bool) -> String {
    if posthog {
        format!("/i/v1/{signal}?token=phc_test")
    } else {
        format!("/v1/{signal}")
    }
}

/// The request for `route` carrying `shape`.
fn request(route: Route, shape: &Shape) -> (String, &'static str, Vec<u8>) {
    let otlp_type = |json| {
        if json {
            "application/json"
        } else {
            "application/x-protobuf"
        }
    };
    match route {
        Route::Ingest => (
            "/ingest".to_owned(),
            "application/json",
            json!({ "batch": json_events(shape) })
                .to_string()
                .into_bytes(),
        ),
        Route::OtlpLogs { json, posthog } => (
            otlp_path("logs", posthog),
            otlp_type(json),
            encode(&logs(shape), json),
        ),
        Route::OtlpTraces { json, posthog } => (
            otlp_path("traces", posthog),
            otlp_type(json),
            encode(&traces(shape), json),
        ),
        Route::OtlpMetrics { json, posthog } => (
            otlp_path("metrics", posthog),
            otlp_type(json),
            encode(&metrics(shape), json),
        ),
        Route::Posthog(path) => (
            path.to_owned(),
            "application/json",
            json!({ "api_key": "phc_test", "batch": json_events(shape) })
                .to_string()
                .into_bytes(),
        ),
    }
}

fn batch_log_len(dir: &Path) -> usize {
    std::fs::metadata(dir.join("batches.jsonl")).map_or(0, |metadata| metadata.len() as usize)
}

/// Sends one request through a fresh router; returns what it left allocated and what it added to the log.
fn measure(
    runtime: &tokio::runtime::Runtime,
    route: Route,
    shape: &Shape,
    data_dir: &Path,
) -> Cost {
    let (path, content_type, body) = request(route, shape);
    let body_len = body.len();
    let body = Bytes::from(body);
    let send = |router: &axum::Router, request: Request<Body>| {
        runtime.block_on(async move {
            let response = router.clone().oneshot(request).await.expect("infallible");
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("a body")
                .to_bytes();
            (status, bytes)
        })
    };
    let post = || {
        Request::post(path.as_str())
            .header("content-type", content_type)
            .body(Body::from(body.clone()))
            .expect("a request")
    };

    // Memory: an in-memory server, warmed up by the same request on another server so that lazy statics (tracing
    // call sites, ...) are in place before counting.
    let _ = send(&app(Config::default()).expect("a valid config"), post());
    let router = app(Config::default()).expect("a valid config");
    let request = post();
    let region = Region::new(GLOBAL);
    let (status, _) = send(&router, request);
    let change = region.change();
    let retained = change.bytes_allocated as isize - change.bytes_deallocated as isize
        + change.bytes_reallocated;
    let stats_request = Request::get("/_fake/stats")
        .body(Body::empty())
        .expect("a request");
    let (_, stats) = send(&router, stats_request);
    let stats: Value = serde_json::from_slice(&stats).expect("stats JSON");
    let events_stored = stats["events_unique"].as_u64().expect("a count") as usize;
    drop(router);

    // Disk: a server on a fresh data directory.
    let before = batch_log_len(data_dir);
    let router = app(Config {
        data_dir: Some(data_dir.to_owned()),
        ..Config::default()
    })
    .expect("a valid config");
    let _ = send(&router, post());
    drop(router);
    let written = batch_log_len(data_dir) - before;
    Cost {
        status,
        body_len,
        events_stored,
        retained,
        written,
    }
}

/// Held by each test for its whole run: the allocation counts are process-wide, so the tests take turns.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn what_a_request_leaves_in_memory_and_on_disk_is_bounded_by_its_body_on_every_data_route() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    let _serial = serial();
    let worst_memory = std::cell::Cell::new(0.0_f64);
    let worst_disk = std::cell::Cell::new(0.0_f64);
    let result = runner.run(
        &(proptest::sample::select(routes()), shapes()),
        |(route, shape)| {
            let dir = tempfile::tempdir().expect("a temp dir");
            let cost = measure(&runtime, route, &shape, dir.path());
            prop_assert!(cost.status < 300, "{route:?}: {cost:?}");
            worst_memory.set(
                worst_memory
                    .get()
                    .max(cost.retained as f64 / cost.body_len as f64),
            );
            worst_disk.set(
                worst_disk
                    .get()
                    .max(cost.written as f64 / cost.body_len as f64),
            );
            prop_assert!(
                cost.retained <= cost.memory_limit(),
                "{route:?}: {cost:?}, memory limit {}",
                cost.memory_limit()
            );
            prop_assert!(
                cost.written <= cost.disk_limit(),
                "{route:?}: {cost:?}, disk limit {}",
                cost.disk_limit()
            );
            Ok(())
        },
    );
    eprintln!(
        "worst ratios: memory {:.1} bytes per body byte, disk {:.1}",
        worst_memory.get(),
        worst_disk.get()
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn the_reported_amplification_a_thousand_resource_attributes_over_twenty_thousand_records_stays_linear()
 {
    // The request of the report: 1 000 resource attributes and 20 000 empty log records (about 55 KB), which used
    // to take 3 GB of memory and write 26 MB per 19 KB with --data-dir.
    let shape = Shape {
        resources: 1,
        resource_attributes: 1000,
        value_len: 10,
        scopes: 1,
        scope_name_len: 0,
        records: 20_000,
        record_attributes: 0,
        text_len: 0,
        distinct: true,
        metric_name_len: 1,
    };
    let _serial = serial();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let cost = measure(
        &runtime,
        Route::OtlpLogs {
            json: false,
            posthog: false,
        },
        &shape,
        dir.path(),
    );
    eprintln!("{cost:?}");
    assert_eq!(cost.status, 200);
    assert_eq!(cost.events_stored, 20_000);
    assert!(cost.retained <= cost.memory_limit(), "{cost:?}");
    assert!(cost.written <= cost.disk_limit(), "{cost:?}");
}

/// How many events the per-event measurement stores (`FAKE_INGEST_MEMORY_EVENTS` overrides it; docs/BENCHMARKS.md
/// records the larger runs).
const MEMORY_EVENTS: usize = 100_000;

/// How many events the per-event measurements store.
fn memory_events() -> usize {
    std::env::var("FAKE_INGEST_MEMORY_EVENTS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(MEMORY_EVENTS)
}

/// What a captured event may keep allocated with a data dir, whatever its size: its index (`seq`, protocol, resend
/// count, its batch and place in the batch's record) and its dedupe key, with the spare capacity of the queue and
/// the key set, which grow by doubling.
const INDEX_PER_EVENT: f64 = 256.0;

/// What a captured event may keep allocated: 1.5 times its bytes on the wire plus this much.
const OVERHEAD_PER_EVENT: f64 = 64.0;

/// The benches' sample event (about 300 bytes on the wire: a UUID v7, a name, an installation id, an RFC 3339
/// time and three properties), with the `n`-th key.
fn sample_event(n: usize) -> Value {
    json!({
        "uuid": uuid::Uuid::from_u128(0x0193_6f4e_8a2b_7c3d_9e4f_0000_0000_0000 | n as u128).hyphenated().to_string(),
        "event": "cli_invocation",
        "distinct_id": "7d1c6a3e-1f0b-4c8e-9a51-3f2d4b6c8e90",
        "timestamp": "2026-11-23T10:55:10.123456Z",
        "properties": {
            "command": "deploy --environment production --region eu-west-1 --dry-run",
            "duration_ms": 412 + n % 1000,
            "success": true,
        },
    })
}

#[test]
fn a_captured_event_keeps_at_most_one_and_a_half_times_its_wire_size_plus_64_bytes() {
    let (per_event, wire_per_event) =
        kept_per_event(Config::default(), memory_events(), 1_000, sample_event);

    let limit = 1.5 * wire_per_event + OVERHEAD_PER_EVENT;
    eprintln!(
        "{} events: {wire_per_event:.1} bytes each on the wire, {per_event:.1} bytes each kept \
         ({:.2}x the wire size; the limit is {limit:.1})",
        memory_events(),
        per_event / wire_per_event
    );
    assert!(
        per_event <= limit,
        "{per_event:.1} bytes per event kept, more than {limit:.1}"
    );
}

/// The sample event with a 4 KB property.
fn large_event(n: usize) -> Value {
    let mut event = sample_event(n);
    event["properties"]["stack"] = Value::String("at frame\n".repeat(455));
    event
}

#[test]
fn with_a_data_dir_a_captured_event_keeps_a_small_fixed_index_in_memory_whatever_its_size() {
    // Fewer large events, in smaller batches (a request body is at most 4 MiB).
    let measure = |events: usize, batch: usize, event: fn(usize) -> Value| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = Config {
            data_dir: Some(dir.path().to_owned()),
            ..Config::default()
        };
        kept_per_event(config, events, batch, event)
    };

    let (small, small_wire) = measure(memory_events(), 1_000, sample_event);
    let (large, large_wire) = measure(memory_events() / 5, 200, large_event);

    eprintln!(
        "with a data dir: {} events of {small_wire:.0} bytes on the wire keep {small:.1} bytes each, {} of \
         {large_wire:.0} keep {large:.1}",
        memory_events(),
        memory_events() / 5
    );
    assert!(large_wire > 10.0 * small_wire);
    for kept in [small, large] {
        assert!(
            kept <= INDEX_PER_EVENT,
            "{kept:.1} bytes per event kept, more than {INDEX_PER_EVENT}"
        );
    }
}

/// What each of `events` events built by `event` keeps allocated in a server with `config`, and its size on the
/// wire, in bytes (stored through `POST /ingest` in batches of `batch`, then read back).
fn kept_per_event(
    config: Config,
    events: usize,
    batch: usize,
    event: fn(usize) -> Value,
) -> (f64, f64) {
    let _serial = serial();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // Batches built before counting; the bytes on the wire are each event's JSON in its batch.
    let mut wire_bytes = 0;
    let bodies: Vec<Bytes> = (0..events)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(|chunk| {
            let batch: Vec<Value> = chunk.iter().map(|n| event(*n)).collect();
            wire_bytes += batch
                .iter()
                .map(|event| event.to_string().len())
                .sum::<usize>();
            Bytes::from(json!({ "batch": batch }).to_string())
        })
        .collect();
    let send = |router: &axum::Router, body: Bytes| {
        runtime.block_on(async {
            let request = Request::post("/ingest")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("a request");
            let response = router.clone().oneshot(request).await.expect("infallible");
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await.expect("a body");
            status
        })
    };
    // Warm up lazy statics on another server.
    let _ = send(
        &app(Config::default()).expect("a valid config"),
        bodies[0].clone(),
    );
    let router = app(config).expect("a valid config");

    // The bodies stay allocated until after the count (each request gets a reference), so that freeing them is
    // not subtracted from what the server kept.
    let region = Region::new(GLOBAL);
    for body in &bodies {
        assert_eq!(send(&router, body.clone()), 202);
    }
    let change = region.change();
    drop(bodies);
    // `bytes_allocated` and `bytes_deallocated` already include what reallocations grew and shrank.
    let retained = change.bytes_allocated as isize - change.bytes_deallocated as isize;

    let stats = runtime.block_on(async {
        let request = Request::get("/_fake/stats")
            .body(Body::empty())
            .expect("a request");
        let response = router.clone().oneshot(request).await.expect("infallible");
        response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes()
    });
    let stats: Value = serde_json::from_slice(&stats).expect("stats JSON");
    assert_eq!(
        stats["events_unique"], events,
        "every event was stored once"
    );
    let sample = runtime.block_on(async {
        let request = Request::get("/_fake/events?offset=0&limit=1")
            .body(Body::empty())
            .expect("a request");
        let response = router.clone().oneshot(request).await.expect("infallible");
        response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes()
    });
    let sample: Value = serde_json::from_slice(&sample).expect("a page");
    assert_eq!(
        sample["events"][0]["properties"]["command"],
        "deploy --environment production --region eu-west-1 --dry-run",
        "the event reads back whole"
    );

    drop(router);
    (
        retained as f64 / events as f64,
        wire_bytes as f64 / events as f64,
    )
}
