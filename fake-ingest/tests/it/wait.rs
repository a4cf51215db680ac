//! Wait and expect: `GET /_fake/wait` long-polls, the embedded handle waits (blocking and async) and checks
//! expectations whose failure message shows what was captured. Every test runs in memory and with a data dir (where
//! a wait reads the events back from the batch log).

use std::time::Duration;

use fake_ingest::{
    CapturedEvent, Config, EventFilter, EventsPage, Expectation, Server, WaitOutcome,
};
use serde_json::json;
use tempfile::TempDir;

use crate::support::{PATIENCE, batch, client, event_with, fresh_uuid, get_json, post_ingest};

/// The two ways a server keeps captured events.
const MODES: [Mode; 2] = [Mode::Memory, Mode::DataDir];

#[derive(Debug, Clone, Copy)]
enum Mode {
    Memory,
    DataDir,
}

impl Mode {
    /// A config in this mode (and the directory to keep alive while the server runs).
    fn config(self) -> (Config, Option<TempDir>) {
        match self {
            Mode::Memory => (Config::default(), None),
            Mode::DataDir => {
                let dir = tempfile::tempdir().expect("a temporary data dir");
                let config = Config {
                    data_dir: Some(dir.path().to_owned()),
                    ..Config::default()
                };
                (config, Some(dir))
            }
        }
    }

    fn start(self) -> (Server, Option<TempDir>) {
        let (config, dir) = self.config();
        (
            Server::start_blocking(config).expect("the server starts"),
            dir,
        )
    }
}

#[test]
fn a_wait_over_http_returns_once_enough_matching_events_arrive() {
    for mode in MODES {
        a_wait_over_http_returns_once_enough_matching_events_arrive_in(mode);
    }
}

fn a_wait_over_http_returns_once_enough_matching_events_arrive_in(mode: Mode) {
    let (server, _dir) = mode.start();
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

    assert!(outcome.satisfied, "{mode:?}: {outcome:?}");
    assert_eq!(
        (outcome.matching, outcome.min, outcome.events.len()),
        (2, 2, 2),
        "{mode:?}"
    );
}

#[test]
fn a_wait_that_times_out_answers_what_was_there() {
    for mode in MODES {
        a_wait_that_times_out_answers_what_was_there_in(mode);
    }
}

fn a_wait_that_times_out_answers_what_was_there_in(mode: Mode) {
    let (server, _dir) = mode.start();
    let body = json!({"batch": [event_with(&fresh_uuid(), json!({"command": "deploy"}))]});
    post_ingest(&client(), &server.url(), &body.to_string()).expect("answered");

    let outcome: WaitOutcome = get_json(
        &server.url(),
        "/_fake/wait?min=5&property=command&equals=deploy&timeout_ms=20",
    );

    assert!(!outcome.satisfied, "{mode:?}");
    assert_eq!((outcome.matching, outcome.min), (1, 5), "{mode:?}");
    assert_eq!(
        outcome.events[0].event.properties["command"],
        json!("deploy")
    );
}

#[test]
fn events_can_be_searched_by_name_and_property() {
    let (server, _dir) = Mode::Memory.start();
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
    for mode in MODES {
        the_embedded_handle_waits_for_events_sent_from_another_thread_in(mode);
    }
}

fn the_embedded_handle_waits_for_events_sent_from_another_thread_in(mode: Mode) {
    let (server, _dir) = mode.start();
    let url = server.url();
    let sender = std::thread::spawn(move || {
        post_ingest(&client(), &url, &batch(&[&fresh_uuid(), &fresh_uuid()])).expect("answered");
    });

    let outcome = server.wait_for_events(&EventFilter::named("cli_invocation"), 2, PATIENCE);

    sender.join().expect("the sender ends");
    assert!(outcome.satisfied, "{mode:?}: {outcome:?}");
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
    for mode in MODES {
        the_embedded_handle_waits_in_async_code_in(mode).await;
    }
}

async fn the_embedded_handle_waits_in_async_code_in(mode: Mode) {
    let (config, _dir) = mode.config();
    let server = Server::start(config).await.expect("the server starts");
    let url = server.url();
    let sender = tokio::task::spawn_blocking(move || {
        post_ingest(&client(), &url, &batch(&[&fresh_uuid()])).expect("answered");
    });

    let outcome = server
        .wait_for_events_async(&EventFilter::default(), 1, PATIENCE)
        .await;

    sender.await.expect("the sender ends");
    assert!(outcome.satisfied, "{mode:?}: {outcome:?}");
    server
        .expect_within_async(&Expectation::new().at_least("cli_invocation", 1), PATIENCE)
        .await
        .expect("one event");
}

#[test]
fn a_failed_expectation_says_what_failed_and_what_was_captured() {
    for mode in MODES {
        a_failed_expectation_says_what_failed_and_what_was_captured_in(mode);
    }
}

fn a_failed_expectation_says_what_failed_and_what_was_captured_in(mode: Mode) {
    let (server, _dir) = mode.start();
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
        assert!(
            message.contains(part),
            "{mode:?}: missing {part:?} in:\n{message}"
        );
    }
    assert!(
        server
            .check(&Expectation::new().at_least("cli_invocation", 1))
            .is_ok()
    );
}

/// What a wait for `min` events matching `filter` answers if it looks at `events` (the whole capture) at once.
fn expected_outcome(
    events: &[CapturedEvent],
    filter: &EventFilter,
    min: usize,
) -> (bool, usize, Vec<u64>) {
    let matching: Vec<u64> = events
        .iter()
        .filter(|event| filter.matches(event))
        .map(|event| event.seq)
        .collect();
    let shown = matching.iter().copied().take(100).collect();
    (matching.len() >= min, matching.len(), shown)
}

fn seqs(outcome: &WaitOutcome) -> Vec<u64> {
    outcome.events.iter().map(|event| event.seq).collect()
}

/// A wait looks only at what arrived since its last look; its answers must be those of a look at everything: while
/// batches arrive during the wait, after a reset that empties the store under it, and after evictions.
#[test]
fn a_wait_that_looks_at_new_events_only_answers_as_a_look_at_every_event() {
    for mode in MODES {
        for max_events_kept in [None, Some(7)] {
            let (mut config, _dir) = mode.config();
            config.max_events_kept = max_events_kept;
            let server = Server::start_blocking(config).expect("the server starts");
            let case = format!("{mode:?}, max_events_kept {max_events_kept:?}");
            let url = server.url();
            let agent = client();
            let send = |commands: &[&str]| {
                let events: Vec<_> = commands
                    .iter()
                    .map(|command| event_with(&fresh_uuid(), json!({ "command": command })))
                    .collect();
                post_ingest(&agent, &url, &json!({ "batch": events }).to_string())
                    .expect("answered");
            };
            let deploys = EventFilter {
                property: Some("command".to_owned()),
                equals: Some("deploy".to_owned()),
                ..EventFilter::default()
            };

            // A wait on a server that already holds events, then batches arriving while it waits, over HTTP. It
            // holds only with the last batch: in memory at 7 deploys; keeping 7 events, at 4 deploys among the
            // last 7 (the builds evict the first deploys: a wait that kept counting them would hold too early).
            let min = if max_events_kept.is_some() { 4 } else { 7 };
            send(&["deploy", "deploy", "deploy"]);
            let waiter = std::thread::spawn({
                let url = server.url();
                move || -> WaitOutcome {
                    let query = "property=command&equals=deploy&timeout_ms=30000";
                    get_json(&url, &format!("/_fake/wait?min={min}&{query}"))
                }
            });
            for commands in [
                &["build", "build"][..],
                &["build", "build"],
                &["build", "build"],
            ] {
                send(commands);
            }
            for _ in 0..4 {
                send(&["deploy"]);
            }
            let outcome = waiter.join().expect("the waiter ends");
            let expected = expected_outcome(&server.events(), &deploys, min);
            assert_eq!(
                (outcome.satisfied, outcome.matching, seqs(&outcome)),
                expected,
                "{case}: a wait over arriving batches"
            );
            assert!(outcome.satisfied, "{case}");

            // A reset under a waiting embedded wait: it starts over on what comes after (a wait that kept its
            // place would skip the new events, whose `seq`s start at 1 again, and time out).
            let releases = EventFilter {
                property: Some("command".to_owned()),
                equals: Some("release".to_owned()),
                ..EventFilter::default()
            };
            send(&["release"]);
            std::thread::scope(|scope| {
                let waiter = scope.spawn(|| server.wait_for_events(&releases, 2, PATIENCE));
                server.reset().expect("reset");
                send(&["release", "build"]);
                send(&["release"]);
                let outcome = waiter.join().expect("the waiter ends");
                let expected = expected_outcome(&server.events(), &releases, 2);
                assert_eq!(
                    (outcome.satisfied, outcome.matching, seqs(&outcome)),
                    expected,
                    "{case}: a wait across a reset"
                );
            });

            // Expectations count the same as a look at everything, and a failure lists the same events.
            send(&["build", "build", "deploy"]);
            let everything = server.events();
            let builds = everything
                .iter()
                .filter(|event| event.event.name == "cli_invocation")
                .count();
            server
                .expect_within(
                    &Expectation::new().exactly("cli_invocation", builds),
                    PATIENCE,
                )
                .unwrap_or_else(|failure| panic!("{case}: {failure}"));
            let failure = server
                .expect_within(
                    &Expectation::new().exactly("cli_invocation", builds + 1),
                    Duration::from_millis(10),
                )
                .expect_err("one more than captured");
            assert!(
                failure.to_string().contains(&format!(
                    "expected exactly {} events named \"cli_invocation\", captured {builds}",
                    builds + 1
                )),
                "{case}: {failure}"
            );
        }
    }
}
