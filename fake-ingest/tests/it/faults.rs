//! One test per fault action, through a real server and a real HTTP client.

use std::time::{Duration, Instant};

use fake_ingest::{Config, FaultPlan, Server};

use crate::support::{
    Binary, batch, client, client_with_timeout, dedupe_keys, fresh_uuid, get_json,
    is_connection_reset, post_ingest,
};

fn server_with(plan: &str) -> Server {
    let faults = FaultPlan::from_json(plan).expect("valid plan");
    Server::start_blocking(Config {
        faults,
        ..Config::default()
    })
    .expect("server starts")
}

fn stored_keys(server: &Server) -> Vec<String> {
    dedupe_keys(server.events())
}

#[test]
fn fixed_latency_delays_the_response_by_at_least_its_value_and_still_stores() {
    let server = server_with(r#"{"rules": [{"latency": {"fixed_ms": 200}}]}"#);
    let uuid = fresh_uuid();

    let started = Instant::now();
    let answer = post_ingest(&client(), &server.url(), &batch(&[&uuid])).expect("answered");

    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(answer.status, 202);
    assert_eq!(stored_keys(&server), [uuid]);
    assert_eq!(server.stats().faults.latency, 1);
}

#[test]
fn uniform_and_lognormal_latency_combine_with_other_actions() {
    let server = server_with(
        r#"{"rules": [
            {"when": {"nth": 1}, "latency": {"uniform_ms": [50, 60]}, "then": {"status": 500}},
            {"latency": {"lognormal": {"median_ms": 20, "sigma": 0.5, "cap_ms": 40}}}
        ]}"#,
    );
    let agent = client();

    let started = Instant::now();
    let first = post_ingest(&agent, &server.url(), &batch(&[&fresh_uuid()])).expect("answered");
    let first_took = started.elapsed();
    let second = post_ingest(&agent, &server.url(), &batch(&[&fresh_uuid()])).expect("answered");

    assert!(first_took >= Duration::from_millis(50));
    assert_eq!((first.status, second.status), (500, 202));
    let stats = server.stats();
    assert_eq!((stats.faults.latency, stats.faults.status), (2, 1));
}

#[test]
fn an_injected_status_stores_nothing_and_sends_retry_after() {
    let server = server_with(r#"{"rules": [{"then": {"status": 503, "retry_after_secs": 7}}]}"#);

    let answer = post_ingest(&client(), &server.url(), &batch(&[&fresh_uuid()])).expect("answered");

    assert_eq!(
        (answer.status, answer.retry_after.as_deref()),
        (503, Some("7"))
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer.body).expect("json")["error"],
        "injected fault"
    );
    assert!(server.events().is_empty());
    assert_eq!(server.stats().responses.get(&503), Some(&1));
}

#[test]
fn retry_after_can_be_an_http_date_at_least_that_many_seconds_ahead() {
    let server = server_with(
        r#"{"rules": [{"then": {"status": 429, "retry_after_secs": 30, "retry_after_as_date": true}}]}"#,
    );

    let before = jiff::Timestamp::now();
    let answer = post_ingest(&client(), &server.url(), &batch(&[&fresh_uuid()])).expect("answered");
    let after = jiff::Timestamp::now();

    assert_eq!(answer.status, 429);
    let date = answer.retry_after.expect("a Retry-After header");
    assert!(date.ends_with(" GMT"), "{date}");
    let at = jiff::fmt::rfc2822::parse(&date)
        .expect("an HTTP-date")
        .timestamp();
    // The server's clock read is between ours; the date is 30 s after it, rounded up to a whole second.
    let seconds = jiff::SignedDuration::from_secs;
    assert!(
        before + seconds(30) <= at && at <= after + seconds(31),
        "{date}"
    );
    let plan = serde_json::to_value(server.faults()).expect("json");
    assert_eq!(plan["rules"][0]["then"]["retry_after_as_date"], true);
}

#[test]
fn reset_before_store_drops_the_connection_with_a_rst_and_stores_nothing() {
    let server = server_with(r#"{"rules": [{"when": {"nth": 1}, "then": "reset_before_store"}]}"#);
    let uuid = fresh_uuid();

    let error = post_ingest(&client(), &server.url(), &batch(&[&uuid])).expect_err("no response");
    let retried = post_ingest(&client(), &server.url(), &batch(&[&uuid])).expect("answered");

    assert!(
        is_connection_reset(&error),
        "expected a connection reset, got {error:?}"
    );
    assert_eq!(
        retried.body, r#"{"accepted":1,"duplicates":0}"#,
        "the retry is the first store"
    );
    assert_eq!(server.stats().faults.reset_before_store, 1);
}

#[test]
fn reset_after_store_stores_the_batch_then_drops_the_connection_so_the_retry_is_a_duplicate() {
    let server = server_with(r#"{"rules": [{"when": {"nth": 1}, "then": "reset_after_store"}]}"#);
    let uuid = fresh_uuid();

    let error = post_ingest(&client(), &server.url(), &batch(&[&uuid])).expect_err("no response");
    let stored_before_retry = stored_keys(&server);
    let retried = post_ingest(&client(), &server.url(), &batch(&[&uuid])).expect("answered");

    assert!(
        is_connection_reset(&error),
        "expected a connection reset, got {error:?}"
    );
    assert_eq!(stored_before_retry, std::slice::from_ref(&uuid));
    assert_eq!(
        retried.body, r#"{"accepted":0,"duplicates":1}"#,
        "the lost acknowledgement makes a duplicate"
    );
    let stats = server.stats();
    assert_eq!(
        (
            stats.faults.reset_after_store,
            stats.events_unique,
            stats.duplicates
        ),
        (1, 1, 1)
    );
}

#[test]
fn hang_reads_the_request_and_never_answers_until_the_client_gives_up() {
    let server = server_with(r#"{"rules": [{"then": "hang"}]}"#);

    let error = post_ingest(
        &client_with_timeout(Duration::from_millis(300)),
        &server.url(),
        &batch(&[&fresh_uuid()]),
    )
    .expect_err("no response");

    assert!(
        matches!(error, ureq::Error::Timeout(_)),
        "expected a timeout, got {error:?}"
    );
    assert!(server.events().is_empty());
    assert_eq!(server.stats().faults.hang, 1);
}

#[test]
fn a_poison_event_matcher_and_a_count_trigger_pick_their_requests() {
    let server = server_with(
        r#"{"rules": [
            {"when": {"batch_has_property": {"name": "poison", "equals": true}}, "then": {"status": 422}},
            {"when": {"every": 2}, "then": {"status": 429}}
        ]}"#,
    );
    let agent = client();
    let poison = serde_json::json!({"batch": [crate::support::event_with(&fresh_uuid(), serde_json::json!({"poison": true}))]});

    let statuses: Vec<u16> = [
        batch(&[&fresh_uuid()]),
        batch(&[&fresh_uuid()]),
        poison.to_string(),
        batch(&[&fresh_uuid()]),
    ]
    .iter()
    .map(|body| {
        post_ingest(&agent, &server.url(), body)
            .expect("answered")
            .status
    })
    .collect();

    assert_eq!(statuses, [202, 429, 422, 429]);
}

#[test]
fn a_count_trigger_with_a_route_counts_only_that_routes_requests_under_mixed_traffic() {
    let server = server_with(
        r#"{"rules": [
            {"when": {"route": "/batch/", "every": 3}, "then": {"status": 503}},
            {"when": {"protocol": "ingest", "nth": 2}, "then": {"status": 429}}
        ]}"#,
    );
    let agent = client();
    let posthog = |uuid: &str| {
        serde_json::json!({"api_key": "phc_test", "batch": [{"event": "e", "distinct_id": "d", "uuid": uuid}]})
            .to_string()
    };
    let mut batch_statuses = Vec::new();
    let mut ingest_statuses = Vec::new();
    // Six /batch/ requests, each followed by an /ingest one.
    for _ in 0..6 {
        let status = agent
            .post(format!("{}/batch/", server.url()))
            .header("content-type", "application/json")
            .send(&posthog(&fresh_uuid()))
            .expect("answered")
            .status()
            .as_u16();
        batch_statuses.push(status);
        let ingest =
            post_ingest(&agent, &server.url(), &batch(&[&fresh_uuid()])).expect("answered");
        ingest_statuses.push(ingest.status);
    }

    assert_eq!(batch_statuses, [200, 200, 503, 200, 200, 503]);
    assert_eq!(ingest_statuses, [202, 429, 202, 202, 202, 202]);
}

#[test]
fn a_crash_of_an_embedded_server_stops_it_but_keeps_its_handle_readable() {
    let server = server_with(r#"{"rules": [{"then": "crash_after_store"}]}"#);
    let uuid = fresh_uuid();

    let error = post_ingest(&client(), &server.url(), &batch(&[&uuid])).expect_err("no response");

    assert!(
        matches!(error, ureq::Error::Io(_)),
        "the connection is dropped: {error:?}"
    );
    assert_eq!(stored_keys(&server), [uuid]);
    assert_eq!(server.stats().faults.crash_after_store, 1);
}

fn crash_the_binary(then: &str) -> (String, String, fake_ingest::EventsPage) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let plan = data_dir.path().join("plan.json");
    std::fs::write(
        &plan,
        format!(r#"{{"rules": [{{"when": {{"nth": 2}}, "then": "{then}"}}]}}"#),
    )
    .expect("plan");
    let store_dir = data_dir.path().join("data");
    let (first, second) = (fresh_uuid(), fresh_uuid());
    let mut binary = Binary::start_on(&store_dir, &["--faults", plan.to_str().expect("UTF-8")]);

    post_ingest(&client(), &binary.url, &batch(&[&first])).expect("the first request is stored");
    let error =
        post_ingest(&client(), &binary.url, &batch(&[&second])).expect_err("the process dies");
    let status = binary.wait_for_exit();

    assert!(matches!(error, ureq::Error::Io(_)), "{error:?}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(6),
        "aborted (SIGABRT), not a graceful exit: {status:?}"
    );
    let restarted = Binary::start_on(&store_dir, &[]);
    let page = get_json(&restarted.url, "/_fake/events");
    (first, second, page)
}

#[test]
fn crash_before_store_aborts_the_process_and_the_batch_is_not_stored() {
    let (first, _, page) = crash_the_binary("crash_before_store");

    let keys = dedupe_keys(page.events);
    assert_eq!(keys, [first]);
}

#[test]
fn crash_after_store_aborts_the_process_after_the_batch_is_durable() {
    let (first, second, page) = crash_the_binary("crash_after_store");

    let keys = dedupe_keys(page.events);
    assert_eq!(keys, [first, second]);
}

#[tokio::test]
async fn without_a_socket_resets_and_crashes_answer_503_naming_the_fault_and_after_store_still_stores()
 {
    let plan = r#"{"rules": [
        {"when": {"nth": 1}, "then": "reset_before_store"},
        {"when": {"nth": 2}, "then": "reset_after_store"},
        {"when": {"nth": 3}, "then": "crash_before_store"},
        {"when": {"nth": 4}, "then": "crash_after_store"}
    ]}"#;
    let config = Config {
        faults: FaultPlan::from_json(plan).expect("plan"),
        ..Config::default()
    };
    let app = fake_ingest::app(config).expect("app");
    let uuids: Vec<String> = (0..4).map(|_| fresh_uuid()).collect();

    let mut faults = Vec::new();
    for uuid in &uuids {
        let request = crate::support::ingest_request(batch(&[uuid]));
        let (status, headers, _) = crate::support::oneshot(&app, request).await;
        assert_eq!(status, 503);
        faults.push(
            headers["x-fake-ingest-fault"]
                .to_str()
                .expect("text")
                .to_owned(),
        );
    }
    let (_, _, page) = crate::support::oneshot(&app, crate::support::get("/_fake/events")).await;

    assert_eq!(
        faults,
        [
            "reset_before_store",
            "reset_after_store",
            "crash_before_store",
            "crash_after_store"
        ]
    );
    let stored: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["dedupe_key"].as_str().expect("key"))
        .collect();
    assert_eq!(stored, [uuids[1].as_str(), uuids[3].as_str()]);
}
