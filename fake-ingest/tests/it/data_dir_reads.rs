//! `--data-dir` serves captured events from the batch log: every query answers as the in-memory store does, after a
//! restart too; a record changed under the running server is reported in the events it held, not a panic; a torn
//! tail is kept aside, a file that is not a batch log stops the start and is left as it was.

use std::time::Duration;

use fake_ingest::{
    CapturedEvent, Config, EventFilter, EventsPage, EventsQuery, Expectation, Protocol, Server,
};
use serde_json::{Value, json};

use crate::support::{client, event_with, fresh_uuid, post_ingest};

/// Posts `body` to `path` and expects a 2xx.
fn post(server: &Server, path: &str, body: &str) {
    let response = client()
        .post(format!("{}{path}", server.url()))
        .header("content-type", "application/json")
        .send(body)
        .expect("answered");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

/// The same mixed traffic to `server`: `/ingest` batches with a resend and an in-batch duplicate, an OTLP/JSON logs
/// request whose records share a resource and a scope, and a PostHog batch.
fn send_traffic(server: &Server, uuids: &[String]) {
    let ingest = |events: Vec<Value>| json!({ "batch": events }).to_string();
    let first = ingest(vec![
        event_with(&uuids[0], json!({"command": "deploy", "ok": true})),
        event_with(&uuids[1], json!({"command": "build", "size": 42})),
        event_with(&uuids[1], json!({"command": "build", "size": 42})),
    ]);
    assert_eq!(
        post_ingest(&client(), &server.url(), &first)
            .expect("answered")
            .status,
        202
    );
    let resend = ingest(vec![
        event_with(&uuids[0], json!({"command": "deploy", "ok": true})),
        event_with(
            &uuids[2],
            json!({"command": "Deploy again", "nested": {"a": [1, null]}}),
        ),
    ]);
    assert_eq!(
        post_ingest(&client(), &server.url(), &resend)
            .expect("answered")
            .status,
        202
    );
    let logs = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeLogs": [{"scope": {"name": "checkout"}, "logRecords": [
            {"timeUnixNano": "1763895310123000001", "severityText": "INFO", "body": {"stringValue": "paid"},
             "attributes": [{"key": "order", "value": {"intValue": "42"}}]},
            {"timeUnixNano": "1763895310123000002", "severityText": "WARN", "body": {"stringValue": "slow"}}
        ]}]
    }]});
    post(server, "/v1/logs", &logs.to_string());
    let posthog = json!({"api_key": "phc_disk", "batch": [
        {"event": "signed_up", "distinct_id": "u1", "uuid": uuids[3], "properties": {"plan": "pro"}},
        {"event": "deploy", "distinct_id": "u2", "uuid": uuids[4]}
    ]});
    post(server, "/batch/", &posthog.to_string());
}

/// The events with their arrival time blanked (two servers store at different times).
fn without_times(mut events: Vec<CapturedEvent>) -> Vec<CapturedEvent> {
    for event in &mut events {
        event.received_at.clear();
    }
    events
}

/// What every read of the store answers, arrival times blanked: all events, pages with each kind of filter and
/// paging, a wait, an expectation, and the NDJSON and OTLP/JSON exports over HTTP.
fn answers(server: &Server) -> Vec<String> {
    let queries = [
        EventsQuery::default(),
        EventsQuery {
            offset: Some(2),
            limit: Some(3),
            ..EventsQuery::default()
        },
        EventsQuery {
            name: Some("cli_invocation".to_owned()),
            ..EventsQuery::default()
        },
        EventsQuery {
            protocol: Some(Protocol::OtlpLogs),
            ..EventsQuery::default()
        },
        EventsQuery {
            route: Some("/batch/".to_owned()),
            ..EventsQuery::default()
        },
        EventsQuery {
            property: Some("command".to_owned()),
            equals: Some("build".to_owned()),
            ..EventsQuery::default()
        },
        EventsQuery {
            property: Some("service.name".to_owned()),
            ..EventsQuery::default()
        },
        EventsQuery {
            search: Some("deploy".to_owned()),
            limit: Some(2),
            ..EventsQuery::default()
        },
        EventsQuery {
            request_id: Some(2),
            ..EventsQuery::default()
        },
    ];
    let mut answers = vec![format!("{:?}", without_times(server.events()))];
    for query in &queries {
        let EventsPage {
            total,
            offset,
            next_offset,
            events,
        } = server.events_page(query);
        answers.push(format!(
            "{query:?}: {total} {offset} {next_offset:?} {:?}",
            without_times(events)
        ));
    }
    let wait = server.wait_for_events(&EventFilter::named("deploy"), 1, Duration::ZERO);
    answers.push(format!(
        "wait: {} {} {:?}",
        wait.satisfied,
        wait.matching,
        without_times(wait.events)
    ));
    let expectation = Expectation::new()
        .exactly("cli_invocation", 3)
        .at_least("signed_up", 1)
        .none_named("refund");
    answers.push(format!("expect: {:?}", server.check(&expectation).is_ok()));
    for format in ["ndjson", "otlp-json"] {
        let mut response = client()
            .get(format!("{}/_fake/events?format={format}", server.url()))
            .call()
            .expect("answered");
        let text = response.body_mut().read_to_string().expect("a body");
        let lines: Vec<Value> = text
            .lines()
            .map(|line| {
                let mut value: Value = serde_json::from_str(line).expect("JSON lines");
                if let Some(object) = value.as_object_mut() {
                    object.remove("received_at");
                }
                value
            })
            .collect();
        answers.push(format!("{format}: {lines:?}"));
    }
    answers
}

#[test]
fn every_query_answers_the_same_from_the_data_dir_as_from_memory_and_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let on_disk = Config {
        data_dir: Some(dir.path().to_owned()),
        ..Config::default()
    };
    let uuids: Vec<String> = (0..5).map(|_| fresh_uuid()).collect();
    let in_memory = Server::start_blocking(Config::default()).expect("starts");
    let logged = Server::start_blocking(on_disk.clone()).expect("starts");

    send_traffic(&in_memory, &uuids);
    send_traffic(&logged, &uuids);
    let from_memory = answers(&in_memory);
    let from_disk = answers(&logged);
    let events_before_restart = logged.events();
    drop(logged);
    let restarted = Server::start_blocking(on_disk).expect("restarts");
    let after_restart = restarted.events();

    assert_eq!(from_disk, from_memory);
    assert_eq!(from_memory.len(), 14);
    assert_eq!(in_memory.events().len(), 7);
    // A resend is counted while the server runs; a restart replays the events, not their resends.
    let unsent = |events: Vec<CapturedEvent>| -> Vec<CapturedEvent> {
        events
            .into_iter()
            .map(|event| CapturedEvent { resent: 0, ..event })
            .collect()
    };
    assert_eq!(unsent(after_restart), unsent(events_before_restart));
}

#[test]
fn a_record_changed_under_the_running_server_is_reported_in_its_events_and_the_others_are_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_blocking(Config {
        data_dir: Some(dir.path().to_owned()),
        ..Config::default()
    })
    .expect("starts");
    let uuids: Vec<String> = (0..2).map(|_| fresh_uuid()).collect();
    for uuid in &uuids {
        let body = json!({ "batch": [event_with(uuid, json!({"n": 1}))] }).to_string();
        post_ingest(&client(), &server.url(), &body).expect("answered");
    }

    // Overwrite the first record's opening brace: its line no longer decodes.
    let log = dir.path().join("batches.jsonl");
    let mut bytes = std::fs::read(&log).expect("reads the log");
    bytes[0] = b'#';
    std::fs::write(&log, bytes).expect("writes the log");
    let events = server.events();

    assert_eq!(events.len(), 2);
    let reason = events[0]
        .event
        .property("fake_ingest.compact_error")
        .and_then(Value::as_str)
        .expect("the reason is in the event");
    assert!(reason.contains("is corrupt at byte 0"), "{reason}");
    assert_eq!(events[0].seq, 1);
    assert_eq!(events[1].event.dedupe_key, uuids[1]);
}

#[test]
fn a_torn_tail_is_kept_aside_and_the_events_before_and_after_it_are_served_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        data_dir: Some(dir.path().to_owned()),
        ..Config::default()
    };
    let uuids: Vec<String> = (0..3).map(|_| fresh_uuid()).collect();
    let body = |uuid: &str| json!({ "batch": [event_with(uuid, json!({"n": 1}))] }).to_string();
    {
        let server = Server::start_blocking(config.clone()).expect("starts");
        for uuid in &uuids[..2] {
            post_ingest(&client(), &server.url(), &body(uuid)).expect("answered");
        }
    }
    let log = dir.path().join("batches.jsonl");
    let valid_len = std::fs::metadata(&log).expect("the log").len();
    let mut torn = std::fs::read(&log).expect("reads the log");
    torn.extend_from_slice(b"{\"request_id\": 3, \"proto");
    std::fs::write(&log, torn).expect("writes the log");
    // A file of the user's beside the log.
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("writes a file");

    let restarted = Server::start_blocking(config).expect("recovers");
    post_ingest(&client(), &restarted.url(), &body(&uuids[2])).expect("answered");
    let keys: Vec<String> = restarted
        .events()
        .into_iter()
        .map(|event| event.event.dedupe_key)
        .collect();

    assert_eq!(keys, uuids);
    let kept = dir
        .path()
        .join(format!("batches.jsonl.torn-at-{valid_len}"));
    assert_eq!(
        std::fs::read(kept).expect("the torn tail is kept"),
        b"{\"request_id\": 3, \"proto"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).expect("reads"),
        "mine"
    );
}

#[test]
fn a_foreign_file_in_place_of_the_log_stops_the_start_with_a_clear_error_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let foreign =
        "{\"level\":\"info\",\"msg\":\"started\"}\n{\"level\":\"info\",\"msg\":\"stopped\"}\n";
    std::fs::write(dir.path().join("batches.jsonl"), foreign).expect("writes");

    let error = Server::start_blocking(Config {
        data_dir: Some(dir.path().to_owned()),
        ..Config::default()
    })
    .expect_err("not a batch log");

    assert!(
        matches!(error, fake_ingest::Error::CorruptLog { line: 1, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("is corrupt at line 1"),
        "{error}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("batches.jsonl")).expect("reads"),
        foreign
    );
}
