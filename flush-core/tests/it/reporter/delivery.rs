//! Delivery against fake-ingest: acknowledgement, retries, lost acknowledgements, poison, breaker, shutdown.

use std::time::{Duration, Instant};

use fake_ingest::FaultPlan;
use flush_core::{BreakerPolicy, BreakerState, Event, FlushMode, FlushOutcome, ShutdownOutcome};

use super::{batch_size, fast, memory_config, server, start, wait_for_sender_ticks, wait_until};

const FLUSH: Duration = Duration::from_secs(20);

#[test]
fn recorded_events_reach_the_server_once_each_with_the_protocols_fields() {
    let server = server("[]");
    let reporter = start(memory_config(&server));

    (0..120).for_each(|n| reporter.record(Event::new("tool_call").with("n", n)));
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    let stats = server.stats();
    assert_eq!((stats.events_unique, stats.duplicates), (120, 0));
    let event = &server.events()[0];
    assert_eq!(event.event.name, "tool_call");
    assert_eq!(event.event.distinct_id.as_deref(), Some("test-install"));
    assert_eq!(
        uuid::Uuid::parse_str(&event.event.dedupe_key)
            .unwrap()
            .get_version_num(),
        7
    );
    let ours = reporter.stats();
    assert_eq!((ours.recorded, ours.acknowledged), (120, 120));
    assert!(ours.identity_holds(), "{ours:?}");
    server.shutdown();
}

#[test]
fn transient_failures_are_retried_with_the_same_uuids_until_stored() {
    let server =
        server(r#"[{"when": {"first": 3}, "then": {"status": 503, "retry_after_secs": 0}}]"#);
    let reporter = start(memory_config(&server));

    (0..30).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    assert_eq!(server.stats().events_unique, 30);
    assert_eq!(server.stats().responses.get(&503), Some(&3));
    let stats = reporter.stats();
    assert_eq!(stats.acknowledged, 30);
    assert!(stats.retried >= 30, "{stats:?}");
    assert!(
        stats
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("503"),
        "{stats:?}"
    );
    assert!(stats.identity_holds(), "{stats:?}");
    server.shutdown();
}

#[test]
fn a_lost_acknowledgement_duplicates_on_the_wire_but_not_after_dedupe() {
    let server = server(r#"[{"when": {"nth": 1}, "then": "reset_after_store"}]"#);
    let reporter = start(memory_config(&server));

    (0..20).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    let stats = server.stats();
    assert_eq!(stats.faults.reset_after_store, 1);
    assert_eq!(
        (stats.events_received, stats.events_unique, stats.duplicates),
        (40, 20, 20)
    );
    assert_eq!(reporter.stats().acknowledged, 20);
    server.shutdown();
}

#[test]
fn a_poison_event_is_dead_lettered_alone_and_the_others_go_through() {
    let server = server(
        r#"[{"when": {"batch_has_property": {"name": "poison", "equals": true}}, "then": {"status": 400}}]"#,
    );
    let reporter = start(memory_config(&server));

    for n in 0..16 {
        reporter.record(Event::new("e").with("n", n).with("poison", n == 11));
    }
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    assert_eq!(server.stats().events_unique, 15);
    assert!(
        server
            .events()
            .iter()
            .all(|event| event.event.properties["poison"] == false)
    );
    let stats = reporter.stats();
    assert_eq!((stats.acknowledged, stats.dead_lettered), (15, 1));
    assert!(stats.identity_holds(), "{stats:?}");
    server.shutdown();
}

#[test]
fn the_breaker_opens_after_consecutive_failures_probes_and_closes() {
    let server = server(r#"[{"then": {"status": 503}}]"#);
    let breaker = BreakerPolicy {
        failure_threshold: std::num::NonZeroU32::new(3).unwrap(),
        cooldown: Duration::from_secs(2),
        max_cooldown: Duration::from_secs(4),
        probe_events: batch_size(1),
    };
    let reporter = start(memory_config(&server).breaker(breaker));

    (0..10).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    reporter.idle();
    assert!(wait_until(Duration::from_secs(5), || reporter
        .stats()
        .breaker
        == BreakerState::Open));
    let requests_when_opened = server.stats().requests;
    wait_for_sender_ticks(&reporter, 5);
    assert_eq!(
        server.stats().requests,
        requests_when_opened,
        "no request while open"
    );

    server.set_faults(FaultPlan::none());
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    assert_eq!(reporter.stats().breaker, BreakerState::Closed);
    let events = server.events();
    assert_eq!(events.len(), 10);
    let first_request = events[0].request_id;
    assert_eq!(
        events
            .iter()
            .filter(|event| event.request_id == first_request)
            .count(),
        1,
        "a one-event probe"
    );
    server.shutdown();
}

#[test]
fn a_configuration_error_keeps_the_events_and_opens_the_breaker() {
    let server = server(r#"[{"then": {"status": 401}}]"#);
    let reporter = start(memory_config(&server));

    (0..5).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    reporter.idle();
    assert!(wait_until(Duration::from_secs(5), || reporter
        .stats()
        .breaker
        == BreakerState::Open));
    let stats = reporter.stats();
    assert!(
        stats
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("401"),
        "{stats:?}"
    );
    assert_eq!(
        (
            stats.pending.total(),
            stats.dead_lettered,
            stats.dropped.total()
        ),
        (5, 0, 0)
    );

    server.set_faults(FaultPlan::none());
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    assert_eq!(server.stats().events_unique, 5);
    server.shutdown();
}

#[test]
fn shutdown_returns_by_its_deadline_against_a_hanging_server() {
    let server = server(r#"[{"then": "hang"}]"#);
    let reporter = start(memory_config(&server).request_timeout(Duration::from_secs(60)));
    (0..10).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    reporter.idle();
    assert!(wait_until(Duration::from_secs(5), || server
        .stats()
        .faults
        .hang
        >= 1));

    let started = Instant::now();
    let outcome = reporter.shutdown(Duration::from_millis(500));

    assert!(
        started.elapsed() < Duration::from_millis(500) + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(outcome, ShutdownOutcome::DeadlineReached);
    assert_eq!(
        reporter.shutdown(Duration::ZERO),
        ShutdownOutcome::AlreadyShutDown
    );
    server.shutdown();
}

#[test]
fn a_bounded_shutdown_sends_at_most_its_limit() {
    let server = server("[]");
    // Idle-only mode: nothing is sent before the shutdown (the spooler would otherwise wake the sender for the
    // first full batch), so every event the server has was sent by the bounded shutdown.
    let reporter = start(
        memory_config(&server)
            .batch_size(batch_size(25))
            .flush_mode(FlushMode::idle_only()),
    );
    (0..60).for_each(|n| reporter.record(Event::new("bounded_shutdown").with("n", n)));

    let outcome = reporter.shutdown_bounded(Duration::from_secs(10), 25);

    assert_eq!(outcome, ShutdownOutcome::LimitReached);
    let stats = reporter.stats();
    assert_eq!(
        (stats.acknowledged, stats.pending.total()),
        (25, 35),
        "{stats:?}"
    );
    // Counted by name, with everything the server stored in the failure message: that tells an extra batch of ours
    // from events another sender in this test binary posted to the same port.
    let events = server.events();
    let ours = events
        .iter()
        .filter(|event| event.event.name == "bounded_shutdown")
        .count();
    let names: Vec<&str> = events
        .iter()
        .map(|event| event.event.name.as_str())
        .collect();
    assert_eq!(ours, 25, "stored: {names:?}; {stats:?}");
    assert!(stats.identity_holds(), "{stats:?}");
    // The queue reached the store long before the 10 s deadline: no wait past it.
    assert_eq!(stats.shutdown_store_overrun, Duration::ZERO);
    server.shutdown();
}

#[test]
fn a_too_large_batch_is_split_until_it_fits() {
    let faults = FaultPlan::none();
    let server = fake_ingest::Server::start_blocking(fake_ingest::Config {
        faults,
        max_body_bytes: 4096,
        ..fake_ingest::Config::default()
    })
    .unwrap();
    let builder = fast(flush_core::Config::builder(super::ingest_url(&server)))
        .memory_only(flush_core::MemoryLimits::default())
        .distinct_id("d");
    let reporter = start(builder);

    (0..40)
        .for_each(|n| reporter.record(Event::new("e").with("n", n).with("pad", "x".repeat(200))));
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    assert_eq!(server.stats().events_unique, 40);
    assert!(server.stats().responses.get(&413).copied().unwrap_or(0) >= 1);
    server.shutdown();
}

#[test]
fn record_keeps_returning_while_the_server_hangs_and_counts_what_it_drops() {
    let server = server(r#"[{"then": "hang"}]"#);
    let limits = flush_core::QueueLimits {
        max_events: batch_size(256),
        max_bytes: batch_size(1 << 20),
    };
    let config = memory_config(&server)
        .queue_limits(limits)
        .memory_only(flush_core::MemoryLimits {
            max_events: batch_size(1000),
            max_bytes: batch_size(1 << 20),
        })
        .request_timeout(Duration::from_secs(60));
    let reporter = start(config);
    reporter.record(Event::new("first"));
    reporter.idle();
    assert!(wait_until(Duration::from_secs(5), || server
        .stats()
        .faults
        .hang
        >= 1));

    let started = Instant::now();
    (0..50_000).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    let took = started.elapsed();

    // A generous bound: 50 000 calls that each blocked on the hanging request would take far longer.
    assert!(took < Duration::from_secs(20), "{took:?}");
    reporter.checkpoint().unwrap();
    let stats = reporter.stats();
    assert_eq!(stats.recorded, 50_001);
    assert!(stats.dropped.total() > 0, "{stats:?}");
    assert!(stats.identity_holds(), "{stats:?}");
    assert_eq!(
        reporter.shutdown(Duration::from_millis(200)),
        ShutdownOutcome::DeadlineReached
    );
    server.shutdown();
}

#[test]
fn events_recorded_after_shutdown_are_counted_as_dropped() {
    let server = server("[]");
    let reporter = start(memory_config(&server));
    reporter.record(Event::new("before"));
    assert_eq!(
        reporter.shutdown(Duration::from_secs(300)),
        ShutdownOutcome::Drained
    );

    reporter.record(Event::new("after"));

    let stats = reporter.stats();
    assert_eq!((stats.acknowledged, stats.dropped.after_shutdown), (1, 1));
    assert!(stats.identity_holds(), "{stats:?}");
    assert!(reporter.checkpoint().is_err());
    assert_eq!(
        reporter.flush(Duration::from_millis(100)),
        FlushOutcome::TimedOut
    );
    server.shutdown();
}

#[test]
fn gzip_batches_are_accepted_by_the_server() {
    let server = server("[]");
    let reporter = start(memory_config(&server).gzip(true));

    (0..30)
        .for_each(|n| reporter.record(Event::new("e").with("n", n).with("text", "abc".repeat(50))));

    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    assert_eq!(server.stats().events_unique, 30);
    server.shutdown();
}

#[test]
fn retry_after_is_honoured_up_to_its_cap() {
    let server =
        server(r#"[{"when": {"first": 1}, "then": {"status": 429, "retry_after_secs": 1}}]"#);
    let retry = flush_core::RetryPolicy {
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        max_retry_after: Duration::from_secs(30),
    };
    let reporter = start(memory_config(&server).retry(retry));

    let started = Instant::now();
    reporter.record(Event::new("e"));
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);

    // The jittered backoff alone would retry within 2 ms; the server asked for a second.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.stats().requests, 2);
    server.shutdown();
}

#[test]
fn a_flush_and_the_shutdown_are_answered_when_delivery_ends_not_at_the_next_poll() {
    let server = server("[]");
    // A poll interval longer than the test may take: an answer that waited for the next poll would come an hour late.
    let hour = Duration::from_secs(3600);
    let reporter = start(memory_config(&server).poll_interval(hour));
    let (answers, answered) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        for round in 0..3 {
            (0..5).for_each(|n| reporter.record(Event::new("e").with("round", round).with("n", n)));
            answers
                .send(format!("flush {:?}", reporter.flush(hour)))
                .expect("the test waits");
        }
        answers
            .send(format!("shutdown {:?}", reporter.shutdown(hour)))
            .expect("the test waits");
    });
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(
            answered
                .recv_timeout(Duration::from_secs(300))
                .unwrap_or_else(|_| panic!("no answer within 5 minutes after {outcomes:?}")),
        );
    }
    worker.join().expect("the worker ends");
    assert_eq!(
        outcomes,
        [
            "flush Acknowledged",
            "flush Acknowledged",
            "flush Acknowledged",
            "shutdown Drained"
        ]
    );
    assert_eq!(server.stats().events_unique, 15);
    server.shutdown();
}
