//! The `/_fake/` control API: shapes (insta snapshots), paging and filters, faults replacement, reset.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fake_ingest::{CapturedEvent, Config, EventsPage, FaultPlan, Stats, app};
use serde_json::json;

use crate::support::{batch, event_with, get, ingest_request, oneshot};

const A: &str = "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0a";
const B: &str = "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0b";

fn plan() -> FaultPlan {
    FaultPlan::from_json(
        r#"{"rules": [
            {"when": {"nth": 2}, "then": {"status": 503, "retry_after_secs": 1}},
            {"when": {"batch_has_property": {"name": "poison"}}, "then": {"status": 400}},
            {"when": {"probability": 0.0}, "latency": {"lognormal": {"median_ms": 5, "sigma": 1.5, "cap_ms": 100}}}
        ]}"#,
    )
    .expect("valid plan")
}

#[tokio::test]
async fn the_api_shapes_are_stable() {
    let app = app(Config {
        faults: plan(),
        ..Config::default()
    })
    .expect("app");
    oneshot(&app, ingest_request(batch(&[A, B]))).await;
    let (_, _, injected) = oneshot(&app, ingest_request(batch(&[A]))).await;
    let (_, _, accepted) = oneshot(&app, ingest_request(batch(&[A]))).await;
    let bad = json!({ "batch": [event_with(A, json!({})), {"uuid": B}] }).to_string();
    let (_, _, rejected) = oneshot(&app, ingest_request(bad)).await;

    let (_, _, health) = oneshot(&app, get("/_fake/health")).await;
    let (_, _, stats) = oneshot(&app, get("/_fake/stats")).await;
    let (_, _, events) = oneshot(&app, get("/_fake/events?limit=1")).await;
    let (_, _, faults) = oneshot(&app, get("/_fake/faults")).await;

    insta::assert_json_snapshot!("ingest_accepted", accepted);
    insta::assert_json_snapshot!("ingest_injected_status", injected);
    insta::assert_json_snapshot!("ingest_rejected", rejected);
    insta::assert_json_snapshot!("health", health);
    insta::assert_json_snapshot!("stats", stats);
    insta::assert_json_snapshot!("events_page", events, { ".events[].received_at" => "[received_at]" });
    insta::assert_json_snapshot!("faults", faults);
}

#[tokio::test]
async fn stats_and_events_deserialize_into_the_library_types() {
    let app = app(Config::default()).expect("app");
    oneshot(&app, ingest_request(batch(&[A, B]))).await;

    let (_, _, stats) = oneshot(&app, get("/_fake/stats")).await;
    let (_, _, page) = oneshot(&app, get("/_fake/events")).await;

    let stats: Stats = serde_json::from_value(stats).expect("Stats");
    let page: EventsPage = serde_json::from_value(page).expect("EventsPage");
    assert_eq!(stats.events_unique, 2);
    let keys: Vec<&str> = page
        .events
        .iter()
        .map(|e: &CapturedEvent| e.event.dedupe_key.as_str())
        .collect();
    assert_eq!(keys, [A, B]);
}

#[tokio::test]
async fn events_are_paged_in_arrival_order_and_filtered_by_protocol() {
    let app = app(Config::default()).expect("app");
    let uuids: Vec<String> = (0..5).map(|_| crate::support::fresh_uuid()).collect();
    for uuid in &uuids {
        oneshot(&app, ingest_request(batch(&[uuid]))).await;
    }

    let (_, _, first) = oneshot(&app, get("/_fake/events?offset=0&limit=2")).await;
    let (_, _, last) = oneshot(&app, get("/_fake/events?offset=4&limit=2")).await;
    let (_, _, ingest) = oneshot(&app, get("/_fake/events?protocol=ingest")).await;
    let (_, _, otlp) = oneshot(&app, get("/_fake/events?protocol=otlp_logs")).await;
    let (bad_status, _, _) = oneshot(&app, get("/_fake/events?protocol=carrier_pigeon")).await;

    let first: EventsPage = serde_json::from_value(first).expect("page");
    let last: EventsPage = serde_json::from_value(last).expect("page");
    assert_eq!(
        (first.total, first.next_offset, first.events.len()),
        (5, Some(2), 2)
    );
    assert_eq!(first.events[0].event.dedupe_key, uuids[0]);
    assert_eq!((last.next_offset, last.events[0].seq), (None, 5));
    assert_eq!(ingest["total"], 5);
    assert_eq!(otlp["total"], 0);
    assert_eq!(bad_status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn faults_can_be_replaced_and_an_invalid_plan_is_refused_naming_the_rule() {
    let app = app(Config::default()).expect("app");
    let put = |body: &str| {
        Request::put("/_fake/faults")
            .body(Body::from(body.to_owned()))
            .expect("request")
    };

    let (ok, _, _) = oneshot(&app, put(r#"{"rules": [{"then": {"status": 429}}]}"#)).await;
    let (injected, _, _) = oneshot(&app, ingest_request(batch(&[A]))).await;
    let (bad, _, error) = oneshot(&app, put(r#"{"rules": [{"when": {"every": 0}}]}"#)).await;
    let (_, _, current) = oneshot(&app, get("/_fake/faults")).await;

    assert_eq!(
        (ok, injected, bad),
        (
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::BAD_REQUEST
        )
    );
    assert_eq!(error["error"], "rules[0]: when.every must be at least 1");
    assert_eq!(current, json!({"rules": [{"then": {"status": 429}}]}));
}

#[tokio::test]
async fn arrays_and_absurd_values_in_a_plan_are_refused_naming_the_problem_and_keep_the_plan() {
    let app = app(Config::default()).expect("app");
    let put = |body: String| {
        Request::put("/_fake/faults")
            .body(Body::from(body))
            .expect("request")
    };
    let (ok, _, _) = oneshot(&app, put(r#"{"rules": [{"then": "hang"}]}"#.to_owned())).await;
    assert_eq!(ok, StatusCode::OK);
    let many = format!(r#"{{"rules": [{}]}}"#, vec!["{}"; 100_000].join(","));
    for (body, message) in [
        (
            "[]".to_owned(),
            "the plan must be a JSON object, not an array".to_owned(),
        ),
        (
            r#"[[{"then": "store"}]]"#.to_owned(),
            "the plan must be a JSON object, not an array".to_owned(),
        ),
        (
            format!(
                r#"{{"rules": [{{"latency": {{"fixed_ms": {}}}}}]}}"#,
                u64::MAX
            ),
            format!(
                "rules[0]: latency.fixed_ms {} is more than a day (86400000 ms)",
                u64::MAX
            ),
        ),
        (
            format!(
                r#"{{"rules": [{{"then": {{"status": 503, "retry_after_secs": {}}}}}]}}"#,
                u64::MAX
            ),
            format!(
                "rules[0]: then.retry_after_secs {} is more than a day (86400)",
                u64::MAX
            ),
        ),
        (
            many,
            "rules: 100000 rules is more than the 1000 a plan may have".to_owned(),
        ),
    ] {
        let (status, _, error) = oneshot(&app, put(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
        assert_eq!(error["error"], message);
    }
    let (_, _, current) = oneshot(&app, get("/_fake/faults")).await;
    assert_eq!(
        current,
        json!({"rules": [{"then": "hang"}]}),
        "the plan in force is kept"
    );
}

#[tokio::test]
async fn reset_forgets_events_counters_and_dedupe_state() {
    let app = app(Config::default()).expect("app");
    oneshot(&app, ingest_request(batch(&[A]))).await;

    let reset = Request::post("/_fake/reset")
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = oneshot(&app, reset).await;
    let (_, _, again) = oneshot(&app, ingest_request(batch(&[A]))).await;

    assert_eq!((status, body), (StatusCode::OK, json!({"reset": true})));
    assert_eq!(again, json!({"accepted": 1, "duplicates": 0}));
    let (_, _, stats) = oneshot(&app, get("/_fake/stats")).await;
    assert_eq!(
        (
            stats["requests"].as_u64(),
            stats["events_received"].as_u64()
        ),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn requests_to_unknown_routes_are_counted_by_method_and_path_in_stats_and_metrics() {
    let app = app(Config::default()).expect("app");
    let post = |path: &str| Request::post(path).body(Body::from("{}")).expect("request");

    let (first, _, error) = oneshot(&app, post("/i/v1/logz?token=x")).await;
    let _ = oneshot(&app, post("/i/v1/logz")).await;
    let _ = oneshot(&app, get("/nope")).await;
    let (_, _, stats) = oneshot(&app, get("/_fake/stats")).await;
    let (_, _, metrics) = oneshot(&app, get("/metrics")).await;

    assert_eq!(first, StatusCode::NOT_FOUND);
    assert_eq!(error["error"], "no route for POST /i/v1/logz");
    assert_eq!(
        stats["unknown_routes"],
        json!({"POST /i/v1/logz": 2, "GET /nope": 1})
    );
    assert_eq!(stats["requests"], json!(0), "data-route requests only");
    let metrics = metrics.as_str().expect("Prometheus text");
    assert!(
        metrics.contains(
            "fake_ingest_unknown_route_requests_total{method=\"POST\",path=\"/i/v1/logz\"} 2"
        ),
        "{metrics}"
    );
}
