//! Export: `GET /_fake/events?format=ndjson` streams every captured event; `fake-ingest export --data-dir DIR`
//! prints a stopped server's events the same way.

use assert_cmd::Command;
use fake_ingest::{CapturedEvent, Config, Server};
use predicates::prelude::*;

use crate::support::{Binary, batch, client, fresh_uuid, post_ingest};

fn parse_lines(text: &str) -> Vec<CapturedEvent> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each line is one captured event"))
        .collect()
}

#[test]
fn ndjson_streams_every_matching_event_across_pages() {
    let server = Server::start_blocking(Config::default()).expect("the server starts");
    let uuids: Vec<String> = (0..1_100).map(|_| fresh_uuid()).collect();
    let refs: Vec<&str> = uuids.iter().map(String::as_str).collect();
    post_ingest(&client(), &server.url(), &batch(&refs)).expect("answered");

    let mut response = client()
        .get(format!(
            "{}/_fake/events?format=ndjson&limit=5",
            server.url()
        ))
        .call()
        .expect("answered");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let events = parse_lines(&response.body_mut().read_to_string().expect("a body"));

    assert_eq!(content_type.as_deref(), Some("application/x-ndjson"));
    assert_eq!(events.len(), 1_100, "every event, whatever the limit");
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(index, event)| event.seq == index as u64 + 1)
    );
    assert_eq!(events, server.events());
    let mut none = client()
        .get(format!(
            "{}/_fake/events?format=ndjson&name=nothing",
            server.url()
        ))
        .call()
        .expect("answered");
    assert_eq!(none.body_mut().read_to_string().expect("a body"), "");
}

#[test]
fn export_prints_a_stopped_servers_events_from_its_data_directory() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let binary = Binary::start_on(dir.path(), &[]);
    let body = batch(&[&fresh_uuid(), &fresh_uuid()]);
    post_ingest(&client(), &binary.url, &body).expect("answered");
    post_ingest(&client(), &binary.url, &body).expect("answered (duplicates)");
    let live = client()
        .get(format!("{}/_fake/events?format=ndjson", binary.url))
        .call()
        .expect("answered")
        .body_mut()
        .read_to_string()
        .expect("a body");
    binary.kill();

    let output = Command::new(env!("CARGO_BIN_EXE_fake-ingest"))
        .args(["export", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");

    assert!(output.status.success(), "{output:?}");
    let exported = String::from_utf8(output.stdout).expect("UTF-8");
    assert_eq!(parse_lines(&exported).len(), 2);
    // The live server counted the resends it answered; the log keeps the events, not that count.
    let forget_resends = |events: Vec<CapturedEvent>| -> Vec<CapturedEvent> {
        events
            .into_iter()
            .map(|event| CapturedEvent { resent: 0, ..event })
            .collect()
    };
    assert!(parse_lines(&live).iter().all(|event| event.resent == 1));
    assert_eq!(
        parse_lines(&exported),
        forget_resends(parse_lines(&live)),
        "the events the running server served"
    );
    Command::new(env!("CARGO_BIN_EXE_fake-ingest"))
        .args(["export", "--data-dir"])
        .arg(dir.path().join("missing"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read the batch log"));
}
