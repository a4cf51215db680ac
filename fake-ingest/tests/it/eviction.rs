//! `--max-events-kept`: memory bounded by a number of events, evictions counted, dedupe still exact.

use fake_ingest::{Config, EventsPage, Server};

use crate::support::{batch, client, fresh_uuid, get_json, post_ingest};

fn start(max_events_kept: usize, data_dir: Option<&std::path::Path>) -> Server {
    Server::start_blocking(Config {
        max_events_kept: Some(max_events_kept),
        data_dir: data_dir.map(ToOwned::to_owned),
        ..Config::default()
    })
    .expect("the server starts")
}

#[test]
fn the_oldest_events_are_evicted_and_counted_and_a_resent_evicted_event_is_still_a_duplicate() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let uuids: Vec<String> = (0..5).map(|_| fresh_uuid()).collect();
    let server = start(3, Some(dir.path()));
    let agent = client();
    for uuid in &uuids {
        post_ingest(&agent, &server.url(), &batch(&[uuid])).expect("answered");
    }

    let resent = post_ingest(&agent, &server.url(), &batch(&[&uuids[0]])).expect("answered");

    assert_eq!(resent.body, r#"{"accepted":0,"duplicates":1}"#);
    let stats = server.stats();
    assert_eq!(
        (stats.events_unique, stats.events_evicted, stats.duplicates),
        (5, 2, 1)
    );
    let kept: Vec<u64> = server.events().iter().map(|event| event.seq).collect();
    assert_eq!(kept, [3, 4, 5]);
    let page: EventsPage = get_json(&server.url(), "/_fake/events");
    assert_eq!(page.total, 3);
    assert_eq!(page.events[0].event.dedupe_key, uuids[2]);

    // A restart on the same data directory replays to the same state.
    server.shutdown();
    let restarted = start(3, Some(dir.path()));
    assert_eq!(restarted.stats().events_evicted, 2);
    let kept: Vec<u64> = restarted.events().iter().map(|event| event.seq).collect();
    assert_eq!(kept, [3, 4, 5]);
    let again = post_ingest(&agent, &restarted.url(), &batch(&[&uuids[1]])).expect("answered");
    assert_eq!(again.body, r#"{"accepted":0,"duplicates":1}"#);
}
