//! Wait and expect: `GET /_fake/wait` long-polls, the embedded handle waits (blocking and async) and checks
//! expectations whose failure message shows what was captured.

use std::time::Duration;

use fake_ingest::{Config, EventFilter, EventsPage, Expectation, Server, WaitOutcome};
use serde_json::json;

use crate::support::{PATIENCE, batch, client, event_with, fresh_uuid, get_json, post_ingest};

fn start() -> Server {
    Server::start_blocking(Config::default()).expect("the server starts")
}

#[test]
fn a_wait_over_http_returns_once_enough_matching_events_arrive() {
    let server = start();
    let url = server.url();
    let waiter = std::thread::spawn(move || -> WaitOutcome {
        get_json(
            &url,
            "/_fake/wait?min=2&name=cli_invocation&timeout_ms=30000",
        )
    });

    let agent = client();
    post_ingest(&agent, &server.url(), &batch(&[&fresh_uuid()])).expect("answered");
    post_ingest(&agent, &server.url(), &batch(&[&fresh_uuid()])).expect("answered");
    let outcome = waiter.join().expect("the waiter ends");

    assert!(outcome.satisfied, "{outcome:?}");
    assert_eq!(
        (outcome.matching, outcome.min, outcome.events.len()),
        (2, 2, 2)
    );
}

#[test]
fn a_wait_that_times_out_answers_what_was_there() {
    let server = start();
    let body = json!({"batch": [event_with(&fresh_uuid(), json!({"command": "deploy"}))]});
    post_ingest(&client(), &server.url(), &body.to_string()).expect("answered");

    let outcome: WaitOutcome = get_json(
        &server.url(),
        "/_fake/wait?min=5&property=command&equals=deploy&timeout_ms=20",
    );

    assert!(!outcome.satisfied);
    assert_eq!((outcome.matching, outcome.min), (1, 5));
    assert_eq!(
        outcome.events[0].event.properties["command"],
        json!("deploy")
    );
}

#[test]
fn events_can_be_searched_by_name_and_property() {
    let server = start();
    let body = json!({"batch": [
        event_with(&fresh_uuid(), json!({"command": "deploy", "ok": true})),
        event_with(&fresh_uuid(), json!({"command": "build", "ok": false})),
    ]});
    post_ingest(&client(), &server.url(), &body.to_string()).expect("answered");

    let deploys: EventsPage = get_json(
        &server.url(),
        "/_fake/events?property=command&equals=deploy",
    );
    let failed: EventsPage = get_json(&server.url(), "/_fake/events?property=ok&equals=false");
    let none: EventsPage = get_json(&server.url(), "/_fake/events?name=other");

    assert_eq!(deploys.total, 1);
    assert_eq!(failed.events[0].event.properties["command"], json!("build"));
    assert_eq!(none.total, 0);
}

#[test]
fn the_embedded_handle_waits_for_events_sent_from_another_thread() {
    let server = start();
    let url = server.url();
    let sender = std::thread::spawn(move || {
        post_ingest(&client(), &url, &batch(&[&fresh_uuid(), &fresh_uuid()])).expect("answered");
    });

    let outcome = server.wait_for_events(&EventFilter::named("cli_invocation"), 2, PATIENCE);

    sender.join().expect("the sender ends");
    assert!(outcome.satisfied, "{outcome:?}");
    server
        .expect_within(
            &Expectation::new()
                .exactly("cli_invocation", 2)
                .no_duplicates(),
            PATIENCE,
        )
        .expect("two events, no duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_handle_waits_in_async_code() {
    let server = Server::start(Config::default())
        .await
        .expect("the server starts");
    let url = server.url();
    let sender = tokio::task::spawn_blocking(move || {
        post_ingest(&client(), &url, &batch(&[&fresh_uuid()])).expect("answered");
    });

    let outcome = server
        .wait_for_events_async(&EventFilter::default(), 1, PATIENCE)
        .await;

    sender.await.expect("the sender ends");
    assert!(outcome.satisfied, "{outcome:?}");
    server
        .expect_within_async(&Expectation::new().at_least("cli_invocation", 1), PATIENCE)
        .await
        .expect("one event");
}

#[test]
fn a_failed_expectation_says_what_failed_and_what_was_captured() {
    let server = start();
    let agent = client();
    let body = batch(&[&fresh_uuid()]);
    post_ingest(&agent, &server.url(), &body).expect("answered");
    post_ingest(&agent, &server.url(), &body).expect("answered");

    let failure = server
        .expect_within(
            &Expectation::new()
                .exactly("cli_invocation", 2)
                .none_named("cli_invocation")
                .at_most("cli_invocation", 0)
                .no_duplicates(),
            Duration::from_millis(10),
        )
        .expect_err("the expectation fails");
    let message = failure.to_string();

    for part in [
        "expected exactly 2 events named \"cli_invocation\", captured 1",
        "expected no events named \"cli_invocation\", captured 1",
        "expected no duplicates, 1 events arrived again",
        "captured 1 unique events (2 received, 1 duplicates), by name:",
        "\"cli_invocation\": 1",
        "#1 \"cli_invocation\" via /ingest",
    ] {
        assert!(message.contains(part), "missing {part:?} in:\n{message}");
    }
    assert!(
        server
            .check(&Expectation::new().at_least("cli_invocation", 1))
            .is_ok()
    );
}
