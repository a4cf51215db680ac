//! The `tracing` layer (feature `tracing`) end to end: `tracing` macros in, events at fake-ingest out.
//!
//! Most tests install the subscriber for the test thread only (`with_default`). One test must see what flush-core's
//! worker threads emit, which only a process-wide subscriber does: it is the only test in this binary that sets the
//! global subscriber (and the `log` bridge); the other tests' threads then report to it too, which only adds to what
//! it checks (none of their flush-core output may be recorded either).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fake_ingest::{CapturedEvent, Server};
use flush_core::{Event, FlushOutcome, Reporter, ShutdownOutcome, TracingLayer};
use tracing::Level;
use tracing::field::Empty;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

use super::{batch_size, memory_config, server, start, wait_until};

const FLUSH: Duration = Duration::from_secs(20);

/// Runs `emit` with `layer` installed on this thread, then flushes `reporter` and returns the stored events by name.
fn through_layer<T>(
    server: &Server,
    reporter: &Reporter,
    layer: TracingLayer,
    emit: impl FnOnce() -> T,
) -> (T, BTreeMap<String, CapturedEvent>) {
    let output =
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    (output, by_name(server.events()))
}

fn by_name(events: Vec<CapturedEvent>) -> BTreeMap<String, CapturedEvent> {
    let count = events.len();
    let named: BTreeMap<_, _> = events
        .into_iter()
        .map(|event| (event.event.name.clone(), event))
        .collect();
    assert_eq!(named.len(), count, "two events share a name: {named:#?}");
    named
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read the settings")]
struct SettingsError(#[source] std::io::Error);

#[test]
fn every_field_arrives_with_its_type_and_the_callsite_metadata() {
    let server = server("[]");
    let reporter = start(memory_config(&server));
    let error = SettingsError(std::io::Error::other("permission denied"));

    let (line, events) = through_layer(
        &server,
        &reporter,
        TracingLayer::new(reporter.clone()),
        || {
            let line = line!() + 1;
            tracing::info!(
                event.name = "typed",
                signed = -3_i64,
                unsigned = u64::MAX,
                wide = i128::MAX,
                small_wide = 7_u128,
                ratio = 0.25,
                not_a_number = f64::NAN,
                ok = true,
                tool = "grep",
                listed = ?vec![1, 2],
                shown = %"display",
                error = &error as &(dyn std::error::Error + 'static),
                "typed fields {}",
                1
            );
            line
        },
    );

    assert_eq!(events.len(), 1);
    let properties = &events["typed"].event.properties;
    assert!(properties["signed"].is_i64() && properties["signed"] == -3);
    assert_eq!(properties["unsigned"].as_u64(), Some(u64::MAX));
    assert_eq!(properties["wide"], i128::MAX.to_string());
    assert_eq!(properties["small_wide"].as_u64(), Some(7));
    assert!(properties["ratio"].is_f64() && properties["ratio"] == 0.25);
    assert_eq!(properties["not_a_number"], "NaN");
    assert_eq!(properties["ok"], true);
    assert_eq!(properties["tool"], "grep");
    assert_eq!(properties["listed"], "[1, 2]");
    assert_eq!(properties["shown"], "display");
    assert_eq!(
        properties["error"],
        "cannot read the settings: permission denied"
    );
    assert_eq!(properties["message"], "typed fields 1");
    assert_eq!(properties["tracing.level"], "INFO");
    assert_eq!(properties["tracing.target"], module_path!());
    assert_eq!(properties["tracing.module_path"], module_path!());
    assert_eq!(properties["tracing.file"], file!());
    assert_eq!(properties["tracing.line"], line);
    assert_eq!(properties["tracing.kind"], "event");
    assert!(!properties.contains_key("event.name"));
    assert!(!properties.keys().any(|key| key.starts_with("span.")));
    assert_eq!(properties.len(), 18, "{properties:#?}");
    server.shutdown();
}

#[test]
fn a_field_named_like_a_metadata_property_wins_and_the_other_metadata_is_kept() {
    let server = server("[]");
    let reporter = start(memory_config(&server));

    let (line, events) = through_layer(
        &server,
        &reporter,
        TracingLayer::new(reporter.clone()),
        || {
            let line = line!() + 1;
            tracing::warn!(event.name = "shadowing", tracing.level = "mine", n = 1_u64);
            tracing::warn!(event.name = "plain", n = 2_u64);
            line
        },
    );

    let shadowing = &events["shadowing"].event.properties;
    assert_eq!(
        shadowing["tracing.level"], "mine",
        "the field comes first and wins"
    );
    assert_eq!(shadowing["tracing.target"], module_path!());
    assert_eq!(shadowing["tracing.line"], line);
    assert_eq!(shadowing["tracing.kind"], "event");
    let plain = &events["plain"].event.properties;
    assert_eq!(plain["tracing.level"], "WARN");
    assert_eq!(plain["tracing.line"], line + 1);
    for properties in [shadowing, plain] {
        let metadata = properties
            .keys()
            .filter(|key| key.starts_with("tracing."))
            .count();
        assert_eq!(metadata, 6, "{properties:#?}");
    }
    server.shutdown();
}

#[test]
fn events_are_named_by_the_rule_and_filtered_by_level_and_target() {
    let server = server("[]");
    let reporter = start(memory_config(&server));
    let layer = TracingLayer::builder(reporter.clone())
        .min_level(Level::WARN)
        .exclude_target("noisy")
        .build()
        .unwrap();

    let ((), events) = through_layer(&server, &reporter, layer, || {
        tracing::info!("below the minimum level");
        tracing::warn!(free_bytes = 12, "disk almost full");
        tracing::warn!(free_bytes = 12);
        tracing::error!(target: "noisy", "excluded");
        tracing::error!(target: "noisy::inner", "excluded too");
        tracing::error!(target: "noisy_neighbour", "kept");
        tracing::error!(target: "flush_core::spool", "flush-core's own target");
        tracing::error!(target: "flush_core", "flush-core's own target");
    });

    let names: Vec<&str> = events.keys().map(String::as_str).collect();
    let here = module_path!();
    let mut expected = vec![
        format!("{here}: disk almost full"),
        here.to_owned(),
        "noisy_neighbour: kept".to_owned(),
    ];
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(events[here].event.properties["free_bytes"], 12);
    assert_eq!(events[here].event.properties["tracing.level"], "WARN");
    assert_eq!(reporter.stats().recorded, 3);
    server.shutdown();
}

#[test]
fn an_event_converted_from_a_log_record_is_named_filtered_and_described_by_the_record() {
    let server = server("[]");
    let reporter = start(memory_config(&server));
    let layer = TracingLayer::builder(reporter.clone())
        .exclude_target("legacy::noisy")
        .build()
        .unwrap();
    let log_record = |target: &'static str, message: std::fmt::Arguments<'_>| {
        let record = tracing_log::log::Record::builder()
            .level(tracing_log::log::Level::Warn)
            .target(target)
            .module_path_static(Some("legacy::db"))
            .file_static(Some("src/db.rs"))
            .line(Some(12))
            .args(message)
            .build();
        tracing_log::format_trace(&record).unwrap();
    };

    let ((), events) = through_layer(&server, &reporter, layer, || {
        log_record("legacy::db", format_args!("connection reset"));
        log_record(
            "legacy::noisy",
            format_args!("excluded by the record's target"),
        );
    });

    assert_eq!(events.len(), 1, "{events:#?}");
    let properties = &events["legacy::db: connection reset"].event.properties;
    assert_eq!(properties["message"], "connection reset");
    assert_eq!(properties["tracing.level"], "WARN");
    assert_eq!(properties["tracing.target"], "legacy::db");
    assert_eq!(properties["tracing.module_path"], "legacy::db");
    assert_eq!(properties["tracing.file"], "src/db.rs");
    assert_eq!(properties["tracing.line"], 12);
    assert!(
        !properties.keys().any(|key| key.starts_with("log.")),
        "{properties:#?}"
    );
    server.shutdown();
}

#[test]
fn events_carry_the_current_span_and_the_fields_of_its_scope_innermost_first() {
    let server = server("[]");
    let reporter = start(memory_config(&server));

    let ((), events) = through_layer(
        &server,
        &reporter,
        TracingLayer::new(reporter.clone()),
        || {
            let request =
                tracing::info_span!("request", request_id = 7, user = "a", attempt = Empty);
            let _request = request.enter();
            request.record("attempt", 2);
            let query = tracing::debug_span!("query", user = "b", table = "users");
            let in_query = query.enter();
            tracing::info!(event.name = "rows_read", rows = 3);
            drop(in_query);
            drop(_request);
            tracing::info!(event.name = "outside");
        },
    );

    // Spans do not become events unless asked for.
    assert_eq!(events.len(), 2, "{events:#?}");
    let properties = &events["rows_read"].event.properties;
    assert_eq!(properties["rows"], 3);
    assert_eq!(properties["span.name"], "query");
    assert_eq!(properties["span.user"], "b");
    assert_eq!(properties["span.table"], "users");
    assert_eq!(properties["span.request_id"], 7);
    assert_eq!(properties["span.attempt"], 2);
    let outside = &events["outside"].event.properties;
    assert!(
        !outside.keys().any(|key| key.starts_with("span.")),
        "{outside:#?}"
    );
    server.shutdown();
}

#[test]
fn closed_spans_become_events_with_their_durations_fields_and_parents() {
    let server = server("[]");
    let reporter = start(memory_config(&server));
    let layer = TracingLayer::builder(reporter.clone())
        .span_events(true)
        .build()
        .unwrap();

    let ((), events) = through_layer(&server, &reporter, layer, || {
        let job = tracing::info_span!("job", job_id = 1);
        let in_job = job.enter();
        let work = tracing::info_span!("work", event.name = "work_done", items = 2, result = Empty);
        work.in_scope(|| work.record("result", "ok"));
        work.in_scope(|| tracing::info!(event.name = "working"));
        drop(work);
        drop(tracing::info_span!("plain"));
        drop(tracing::debug_span!("below_the_minimum_level"));
        drop(in_job);
    });

    let here = module_path!();
    let names: Vec<&str> = events.keys().map(String::as_str).collect();
    let mut expected = vec![
        "work_done".to_owned(),
        "working".to_owned(),
        format!("{here}: plain"),
        format!("{here}: job"),
    ];
    expected.sort();
    assert_eq!(names, expected);

    let work = &events["work_done"].event.properties;
    assert_eq!(work["items"], 2);
    assert_eq!(work["result"], "ok");
    assert_eq!(work["tracing.kind"], "span");
    assert_eq!(work["tracing.level"], "INFO");
    assert_eq!(work["tracing.target"], here);
    assert_eq!(work["span.name"], "job");
    assert_eq!(work["span.job_id"], 1);
    let duration = work["duration_ms"].as_f64().expect("a number");
    let busy = work["busy_ms"].as_f64().expect("a number");
    assert!(busy >= 0.0 && duration >= busy, "{duration} {busy}");

    let job = &events[&format!("{here}: job")].event.properties;
    assert_eq!(job["job_id"], 1);
    assert!(job["duration_ms"].as_f64().expect("a number") >= duration);
    assert!(!job.contains_key("span.name"), "a root span has no parent");
    server.shutdown();
}

#[test]
fn a_hanging_server_never_blocks_info() {
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

    // The sender is stuck in a request that is never answered; every call still returns (the test ending is the
    // proof), and each one reached `record`, which counts what it cannot keep.
    let subscriber = tracing_subscriber::registry().with(TracingLayer::new(reporter.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for n in 0..20_000 {
            tracing::info!(n, "while the server hangs");
        }
    });

    reporter.checkpoint().unwrap();
    let stats = reporter.stats();
    assert_eq!(stats.recorded, 20_001);
    assert!(stats.dropped.total() > 0, "{stats:?}");
    assert!(stats.identity_holds(), "{stats:?}");
    assert_eq!(
        reporter.shutdown(Duration::from_millis(200)),
        ShutdownOutcome::DeadlineReached
    );
    server.shutdown();
}

/// Counts, beside the layer under test, what the subscriber saw that the layer must not record.
#[derive(Default)]
struct Unrecordable {
    /// flush-core's own events, on any thread.
    flush_core_targets: AtomicU64,
    /// Other events on flush-core's worker threads (the HTTP client's logging, through the `log` bridge).
    others_on_worker_threads: AtomicU64,
}

struct CountUnrecordable(Arc<Unrecordable>);

impl<S: tracing::Subscriber> Layer<S> for CountUnrecordable {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let on_worker = std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with("flush-core-"));
        if event.metadata().target().starts_with("flush_core") {
            self.0.flush_core_targets.fetch_add(1, Ordering::Relaxed);
        } else if on_worker {
            self.0
                .others_on_worker_threads
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn flush_cores_own_output_is_never_recorded_even_at_trace_level() {
    // 503s make flush-core log its delivery problems; the `log` bridge turns the HTTP client's logging on the sender
    // thread into `tracing` events too.
    let server =
        server(r#"[{"when": {"first": 3}, "then": {"status": 503, "retry_after_secs": 0}}]"#);
    let reporter = start(memory_config(&server));
    let layer = TracingLayer::builder(reporter.clone())
        .min_level(Level::TRACE)
        .build()
        .unwrap();
    let unrecordable = Arc::new(Unrecordable::default());
    tracing_log::LogTracer::init().expect("only this test installs the log bridge");
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(layer)
            .with(CountUnrecordable(Arc::clone(&unrecordable))),
    )
    .expect("only this test sets the global subscriber");

    for n in 0..10 {
        tracing::info!(event.name = "app_event", n);
    }
    // The first flush goes through the 503s; whatever a leak recorded while it sent goes out with the second.
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);

    let stats = reporter.stats();
    assert!(stats.retried > 0, "{stats:?}");
    assert!(unrecordable.flush_core_targets.load(Ordering::Relaxed) > 0);
    assert!(
        unrecordable
            .others_on_worker_threads
            .load(Ordering::Relaxed)
            > 0
    );
    let events = server.events();
    let app_events = events
        .iter()
        .filter(|event| event.event.name == "app_event")
        .count();
    assert_eq!(app_events, 10);
    // Other tests of this binary may log through the global subscriber meanwhile; flush-core and its HTTP client
    // must not appear, whoever emitted them.
    let leaked: Vec<_> = events
        .iter()
        .filter(|event| {
            let target = event.event.properties.get("tracing.target");
            let target = target
                .and_then(|target| target.as_str())
                .unwrap_or_default();
            target.starts_with("flush_core") || target.starts_with("ureq")
        })
        .collect();
    assert!(leaked.is_empty(), "recorded: {leaked:#?}");
    let _ = reporter.shutdown(Duration::from_secs(1));
    server.shutdown();
}
