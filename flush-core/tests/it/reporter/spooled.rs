//! The reporter on the disk spool: installation id, restarts, checkpoints, the dead-letter file.

use std::time::Duration;

use flush_core::spool::{Spool, SpoolConfig};
use flush_core::{DEAD_LETTER_FILE, Event, FlushOutcome, INSTALLATION_ID_FILE, ShutdownOutcome};

use super::{batch_size, server, spool_config, start, wait_until};

const FLUSH: Duration = Duration::from_secs(20);

#[test]
fn events_go_through_the_spool_under_a_stable_installation_id() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    let reporter = start(spool_config(&server, dir.path()));
    let installation_id = std::fs::read_to_string(dir.path().join(INSTALLATION_ID_FILE)).unwrap();
    assert_eq!(reporter.distinct_id(), installation_id.trim());

    (0..75).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    assert_eq!(
        reporter.shutdown(Duration::from_secs(5)),
        ShutdownOutcome::Drained
    );

    assert_eq!(server.stats().events_unique, 75);
    assert!(
        server
            .events()
            .iter()
            .all(|event| event.event.distinct_id.as_deref() == Some(reporter.distinct_id()))
    );
    let stats = reporter.stats();
    assert_eq!(
        (stats.spooled, stats.acknowledged, stats.pending.total()),
        (75, 75, 0)
    );
    assert!(stats.identity_holds(), "{stats:?}");

    let again = start(spool_config(&server, dir.path()));
    assert_eq!(again.distinct_id(), reporter.distinct_id());
    let _ = again.shutdown(Duration::from_secs(1));
    server.shutdown();
}

#[test]
fn shutdown_with_no_time_left_still_leaves_every_queued_event_in_the_spool() {
    let hanging = server(r#"[{"then": "hang"}]"#);
    let dir = tempfile::tempdir().unwrap();
    let reporter = start(spool_config(&hanging, dir.path()));
    (0..500).for_each(|n| reporter.record(Event::new("e").with("n", n)));

    let outcome = reporter.shutdown(Duration::ZERO);

    assert_eq!(outcome, ShutdownOutcome::DeadlineReached);
    let stats = reporter.stats();
    assert_eq!(
        (stats.pending.in_memory, stats.spooled),
        (0, 500),
        "{stats:?}"
    );
    drop(reporter);
    let spool = Spool::open(SpoolConfig::new(dir.path())).unwrap();
    assert_eq!(spool.stats().pending_events, 500);
    hanging.shutdown();
}

#[test]
fn what_a_failing_server_did_not_take_is_sent_by_the_next_run() {
    let failing = server(r#"[{"then": {"status": 503}}]"#);
    let dir = tempfile::tempdir().unwrap();
    let reporter = start(spool_config(&failing, dir.path()));
    (0..10).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    assert_eq!(
        reporter.shutdown(Duration::from_millis(300)),
        ShutdownOutcome::DeadlineReached
    );
    let first = reporter.stats();
    assert_eq!((first.acknowledged, first.pending.in_store), (0, 10));
    assert!(first.identity_holds(), "{first:?}");
    drop(reporter);
    failing.shutdown();

    let healthy = server("[]");
    let next_run = start(spool_config(&healthy, dir.path()));
    assert_eq!(next_run.flush(FLUSH), FlushOutcome::Acknowledged);

    assert_eq!(healthy.stats().events_unique, 10);
    let stats = next_run.stats();
    assert_eq!(
        (stats.recovered, stats.acknowledged, stats.recorded),
        (10, 10, 0)
    );
    assert!(stats.identity_holds(), "{stats:?}");
    healthy.shutdown();
}

#[test]
fn a_checkpoint_puts_everything_recorded_so_far_in_the_spool() {
    let server = server(r#"[{"then": {"status": 503}}]"#);
    let dir = tempfile::tempdir().unwrap();
    let reporter = start(spool_config(&server, dir.path()));

    (0..5).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    reporter.checkpoint().unwrap();

    let stats = reporter.stats();
    assert_eq!(
        (
            stats.spooled,
            stats.pending.in_memory,
            stats.pending.in_store
        ),
        (5, 0, 5)
    );
    // Another writer on the same directory (as a new process would be) sees the five records.
    let observer = Spool::open(SpoolConfig::new(dir.path())).unwrap();
    assert_eq!(observer.stats().pending_events, 5);
    drop(observer);
    let _ = reporter.shutdown(Duration::from_millis(100));
    server.shutdown();
}

#[test]
fn a_rejected_event_lands_in_the_dead_letter_file_with_the_reason() {
    let server = server(
        r#"[{"when": {"batch_has_property": {"name": "poison"}}, "then": {"status": 400}}]"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let reporter = start(spool_config(&server, dir.path()));

    (0..6).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    reporter.record(Event::new("bad").with("poison", "yes"));
    (6..9).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);

    assert_eq!(server.stats().events_unique, 9);
    let text = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["event"]["event"], "bad");
    assert_eq!(lines[0]["status"], 400);
    assert!(
        lines[0]["reason"]
            .as_str()
            .unwrap()
            .contains("injected fault"),
        "{}",
        lines[0]
    );
    let stats = reporter.stats();
    assert_eq!(
        (
            stats.acknowledged,
            stats.dead_lettered,
            stats.pending.total()
        ),
        (9, 1, 0)
    );
    assert!(stats.identity_holds(), "{stats:?}");
    let _ = reporter.shutdown(Duration::from_secs(1));
    server.shutdown();
}

#[test]
fn the_sender_is_woken_when_records_are_stored_not_by_its_poll() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    // Both threads would sleep an hour between polls: only record() waking the spooler (the queue reaches its wake
    // fill: 512 events, more than a batch) and the spooler waking the sender (records stored) can deliver within the
    // wait below.
    let reporter = start(
        spool_config(&server, dir.path())
            .poll_interval(Duration::from_secs(3600))
            .batch_size(batch_size(10)),
    );

    (0..600).for_each(|n| reporter.record(Event::new("e").with("n", n)));

    assert!(
        wait_until(Duration::from_secs(30), || reporter.stats().acknowledged
            >= 510),
        "{:?}",
        reporter.stats()
    );
    assert!(server.stats().events_unique >= 510);
}
