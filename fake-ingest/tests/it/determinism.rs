//! The same seed and the same request sequence give the same decisions; another seed gives others.

use axum::http::StatusCode;
use fake_ingest::{Config, FaultPlan, app};

use crate::support::{batch, ingest_request, oneshot};

const PLAN: &str = r#"{"rules": [
    {"when": {"probability": 0.3}, "then": {"status": 503}},
    {"when": {"probability": 0.2}, "then": "reset_after_store"},
    {"when": {"probability": 0.1}, "then": "reset_before_store"}
]}"#;

/// What each of 60 requests got (status and injected-fault header), and the stored keys, for a seed.
async fn run(seed: u64) -> (Vec<(StatusCode, String)>, Vec<String>) {
    let config = Config {
        seed,
        faults: FaultPlan::from_json(PLAN).expect("plan"),
        ..Config::default()
    };
    let app = app(config).expect("app");
    let mut outcomes = Vec::new();
    for i in 0..60 {
        let uuid = format!("01936f4e-8a2b-7c3d-9e4f-{i:012}");
        let (status, headers, _) = oneshot(&app, ingest_request(batch(&[&uuid]))).await;
        let fault = headers
            .get("x-fake-ingest-fault")
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        outcomes.push((status, fault.unwrap_or_default()));
    }
    let (_, _, page) = oneshot(&app, crate::support::get("/_fake/events")).await;
    let keys = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["dedupe_key"].to_string())
        .collect();
    (outcomes, keys)
}

#[tokio::test]
async fn the_same_seed_and_requests_give_the_same_decisions_and_stored_events() {
    let first = run(7).await;
    let second = run(7).await;
    let other = run(8).await;

    assert_eq!(first, second);
    assert_ne!(first.0, other.0);
    let faulted = first
        .0
        .iter()
        .filter(|(status, _)| *status != StatusCode::ACCEPTED)
        .count();
    assert!(
        faulted > 0 && faulted < 60,
        "the plan faults some requests, not all: {faulted}"
    );
}
