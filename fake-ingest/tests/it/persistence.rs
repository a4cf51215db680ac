//! `--data-dir`: stored batches are durable before the 2xx and replayed on start, even after a SIGKILL.

use fake_ingest::{Config, Server, Stats};

use crate::support::{Binary, batch, client, dedupe_keys, fresh_uuid, get_json, post_ingest};

#[test]
fn events_and_dedupe_state_survive_a_sigkill_of_the_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let uuids: Vec<String> = (0..3).map(|_| fresh_uuid()).collect();
    let binary = Binary::start_on(dir.path(), &[]);
    for uuid in &uuids {
        let answer = post_ingest(&client(), &binary.url, &batch(&[uuid, uuid])).expect("answered");
        assert_eq!(answer.status, 202);
    }

    binary.kill();
    let restarted = Binary::start_on(dir.path(), &[]);
    let resent = post_ingest(&client(), &restarted.url, &batch(&[&uuids[0]])).expect("answered");

    assert_eq!(resent.body, r#"{"accepted":0,"duplicates":1}"#);
    let stats: Stats = get_json(&restarted.url, "/_fake/stats");
    assert_eq!(
        (stats.events_received, stats.events_unique, stats.duplicates),
        (7, 3, 4)
    );
    let page: fake_ingest::EventsPage = get_json(&restarted.url, "/_fake/events");
    let keys = dedupe_keys(page.events);
    assert_eq!(keys, uuids);
}

#[test]
fn an_embedded_server_replays_its_log_and_reset_truncates_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        data_dir: Some(dir.path().to_owned()),
        ..Config::default()
    };
    let uuid = fresh_uuid();
    {
        let server = Server::start_blocking(config.clone()).expect("starts");
        post_ingest(&client(), &server.url(), &batch(&[&uuid])).expect("answered");
    }

    let replayed = Server::start_blocking(config.clone()).expect("restarts");
    let replayed_keys = dedupe_keys(replayed.events());
    replayed.reset().expect("reset");
    drop(replayed);
    let after_reset = Server::start_blocking(config).expect("restarts");

    assert_eq!(replayed_keys, [uuid]);
    assert!(after_reset.events().is_empty());
}
