//! Flush modes: the background dual trigger and idle-only sending; sessions.

use std::num::NonZeroUsize;
use std::time::Duration;

use flush_core::{Event, FlushMode, FlushOutcome};

use super::{batch_size, memory_config, server, start, wait_for_sender_ticks, wait_until};

#[test]
fn background_mode_sends_a_full_batch_without_being_asked() {
    let server = server("[]");
    let config = memory_config(&server)
        .batch_size(batch_size(10))
        .batch_delay(Duration::from_secs(3600));
    let reporter = start(config);

    (0..10).for_each(|n| reporter.record(Event::new("e").with("n", n)));

    assert!(wait_until(Duration::from_secs(10), || server
        .stats()
        .events_unique
        == 10));
    server.shutdown();
}

#[test]
fn background_mode_sends_a_partial_batch_after_the_batch_delay() {
    let server = server("[]");
    let config = memory_config(&server)
        .batch_size(batch_size(1000))
        .batch_delay(Duration::from_millis(100));
    let reporter = start(config);

    (0..3).for_each(|n| reporter.record(Event::new("e").with("n", n)));

    assert!(wait_until(Duration::from_secs(10), || server
        .stats()
        .events_unique
        == 3));
    server.shutdown();
}

#[test]
fn idle_only_mode_sends_nothing_between_idle_signals() {
    let server = server("[]");
    let mode = FlushMode::IdleOnly {
        high_water: NonZeroUsize::new(10_000).unwrap(),
        max_delay: Duration::from_secs(3600),
    };
    let config = memory_config(&server)
        .flush_mode(mode)
        .batch_size(batch_size(5))
        .batch_delay(Duration::from_millis(1));
    let reporter = start(config);

    (0..20).for_each(|n| reporter.record(Event::new("streamed").with("n", n)));
    reporter.checkpoint().unwrap();
    wait_for_sender_ticks(&reporter, 10);
    assert_eq!(server.stats().requests, 0, "nothing while busy");

    reporter.idle();
    assert!(wait_until(Duration::from_secs(10), || server
        .stats()
        .events_unique
        == 20));

    (0..7).for_each(|n| reporter.record(Event::new("streamed").with("n", n)));
    reporter.checkpoint().unwrap();
    wait_for_sender_ticks(&reporter, 10);
    assert_eq!(
        server.stats().events_unique,
        20,
        "nothing until the next idle signal"
    );

    assert_eq!(
        reporter.flush(Duration::from_secs(20)),
        FlushOutcome::Acknowledged
    );
    assert_eq!(server.stats().events_unique, 27);
    server.shutdown();
}

#[test]
fn idle_only_mode_sends_anyway_past_the_high_water_mark() {
    let server = server("[]");
    let mode = FlushMode::IdleOnly {
        high_water: NonZeroUsize::new(10).unwrap(),
        max_delay: Duration::from_secs(3600),
    };
    let reporter = start(memory_config(&server).flush_mode(mode));

    (0..12).for_each(|n| reporter.record(Event::new("e").with("n", n)));

    assert!(wait_until(Duration::from_secs(10), || server
        .stats()
        .events_unique
        == 12));
    server.shutdown();
}

#[test]
fn sessions_record_start_and_end_with_the_duration() {
    let server = server("[]");
    let reporter = start(memory_config(&server));

    let session = reporter.session_started("s-1");
    assert_eq!(session.id(), "s-1");
    std::thread::sleep(Duration::from_millis(20));
    reporter.session_ended(session);
    assert_eq!(
        reporter.flush(Duration::from_secs(20)),
        FlushOutcome::Acknowledged
    );

    let events = server.events();
    let names: Vec<&str> = events
        .iter()
        .map(|event| event.event.name.as_str())
        .collect();
    assert_eq!(names, ["session_started", "session_ended"]);
    assert_eq!(events[1].event.properties["session_id"], "s-1");
    assert!(events[1].event.properties["duration_ms"].as_u64().unwrap() >= 20);
    server.shutdown();
}

#[test]
fn flush_works_from_async_code_without_blocking_the_runtime() {
    let server = server("[]");
    let reporter = start(memory_config(&server));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let outcome = runtime.block_on(async {
        reporter.record(Event::new("from_async"));
        reporter.flush_async(Duration::from_secs(20)).await
    });

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    assert_eq!(server.stats().events_unique, 1);
    server.shutdown();
}

#[test]
fn idle_only_mode_sends_anyway_once_the_oldest_event_is_too_old() {
    let server = server("[]");
    let mode = FlushMode::IdleOnly {
        high_water: NonZeroUsize::new(10_000).unwrap(),
        max_delay: Duration::from_millis(150),
    };
    let reporter = start(memory_config(&server).flush_mode(mode));

    reporter.record(Event::new("lonely"));

    assert!(wait_until(Duration::from_secs(10), || server
        .stats()
        .events_unique
        == 1));
    server.shutdown();
}
