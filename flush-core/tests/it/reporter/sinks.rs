//! Every built-in sink against the embedded fake-ingest on that sink's real route, for every outcome the delivery
//! loop knows: healthy, 503 with `Retry-After` in seconds and as an HTTP-date, a lost acknowledgement, a hanging
//! request, a poison event, 413, 401, and (OTLP) a partial success; `otlp_traces` sends these plain events as spans
//! of their own traces. What was stored is read back as fake-ingest
//! decoded it with the real `opentelemetry-proto` types and PostHog's field rules.
//!
//! Each outcome is one function taking the sink; `for_each_sink!` makes one test per sink of it, named
//! `<outcome>::<sink>`.

use std::path::Path;
use std::time::{Duration, Instant};

use fake_ingest::{FaultPlan, Server};
use flush_core::sink::{
    Batch, EncodeError, Ingest, OtlpEncoding, OtlpLogs, OtlpTraces, PostHog, Request, Response,
    SinkError, Url, Verdict,
};
use flush_core::{
    BreakerState, Config, ConfigBuilder, DEAD_LETTER_FILE, Event, FlushOutcome, MemoryLimits,
    RetryPolicy, ShutdownOutcome, Sink, Uuid,
};
use serde_json::{Value, json};

use super::{batch_size, fast, server, start, wait_until};

const FLUSH: Duration = Duration::from_secs(20);

/// The sinks under test (OTLP logs in both of its encodings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ingest,
    PostHog,
    OtlpProtobuf,
    OtlpJson,
    OtlpTraces,
}

impl Kind {
    /// A configuration of this sink against `server` (nothing about storage yet).
    fn config(self, server: &Server) -> ConfigBuilder {
        let base = server.url();
        let builder = match self {
            Kind::Ingest => Config::builder(format!("{base}/ingest")),
            Kind::PostHog => Config::builder(base).sink(PostHog::new("phc_test")),
            Kind::OtlpProtobuf => {
                Config::builder(base).sink(OtlpLogs::new().service_name("sink-tests"))
            }
            Kind::OtlpJson => Config::builder(base).sink(
                OtlpLogs::new()
                    .service_name("sink-tests")
                    .encoding(OtlpEncoding::Json),
            ),
            Kind::OtlpTraces => {
                Config::builder(base).sink(OtlpTraces::new().service_name("sink-tests"))
            }
        };
        fast(builder)
    }

    fn memory(self, server: &Server) -> ConfigBuilder {
        self.config(server)
            .memory_only(MemoryLimits::default())
            .distinct_id("test-install")
    }

    fn spool(self, server: &Server, dir: &Path) -> ConfigBuilder {
        self.config(server).spool_dir(dir)
    }

    /// The route the sink posts to.
    fn route(self) -> &'static str {
        match self {
            Kind::Ingest => "/ingest",
            Kind::PostHog => "/batch/",
            Kind::OtlpProtobuf | Kind::OtlpJson => "/v1/logs",
            Kind::OtlpTraces => "/v1/traces",
        }
    }

    /// The protocol fake-ingest files its events under.
    fn protocol(self) -> fake_ingest::Protocol {
        match self {
            Kind::Ingest => fake_ingest::Protocol::Ingest,
            Kind::PostHog => fake_ingest::Protocol::Posthog,
            Kind::OtlpProtobuf | Kind::OtlpJson => fake_ingest::Protocol::OtlpLogs,
            Kind::OtlpTraces => fake_ingest::Protocol::OtlpTraces,
        }
    }

    /// The idempotency key fake-ingest deduped `event` on: the key itself, or (a span) the key that is its trace
    /// id.
    fn idempotency_key(self, event: &fake_ingest::IncomingEvent) -> Uuid {
        match self {
            Kind::OtlpTraces => {
                let trace_id = event.dedupe_key.split(':').nth(1).unwrap();
                Uuid::parse_str(trace_id).unwrap()
            }
            _ => Uuid::parse_str(&event.dedupe_key).unwrap(),
        }
    }

    /// A fault rule narrowed to this sink's route.
    fn rule(self, when: Value, then: Value) -> Value {
        let mut when = when;
        when["route"] = json!(self.route());
        json!({ "when": when, "then": then })
    }
}

/// One test per sink for each outcome function.
macro_rules! for_each_sink {
    ($($outcome:ident),* $(,)?) => {
        $(
            mod $outcome {
                use super::Kind;

                #[test]
                fn ingest() {
                    super::$outcome(Kind::Ingest);
                }

                #[test]
                fn posthog() {
                    super::$outcome(Kind::PostHog);
                }

                #[test]
                fn otlp_logs_protobuf() {
                    super::$outcome(Kind::OtlpProtobuf);
                }

                #[test]
                fn otlp_logs_json() {
                    super::$outcome(Kind::OtlpJson);
                }

                #[test]
                fn otlp_traces() {
                    super::$outcome(Kind::OtlpTraces);
                }
            }
        )*
    };
}

for_each_sink!(
    a_healthy_server_stores_every_event_once_as_recorded,
    a_503_with_retry_after_in_seconds_is_waited_out_then_delivered,
    a_503_with_retry_after_as_an_http_date_is_waited_out_then_delivered,
    a_lost_acknowledgement_duplicates_on_the_wire_but_not_after_dedupe,
    a_hanging_request_times_out_and_is_sent_again,
    a_poison_event_is_bisected_dead_lettered_and_the_rest_delivered,
    a_413_splits_the_batch_until_it_fits,
    a_401_keeps_the_events_opens_the_breaker_and_delivers_once_it_is_fixed,
    an_empty_flush_sends_nothing_and_an_event_recorded_twice_is_sent_once,
    a_bounded_shutdown_returns_by_its_deadline_against_a_hanging_server,
);

/// A fake-ingest with these fault rules.
fn server_with(rules: &[Value]) -> Server {
    server(&Value::Array(rules.to_vec()).to_string())
}

fn last_error(reporter: &flush_core::Reporter) -> String {
    reporter.stats().last_error.unwrap_or_default()
}

fn a_healthy_server_stores_every_event_once_as_recorded(kind: Kind) {
    let server = server_with(&[]);
    let reporter = start(kind.memory(&server).batch_size(batch_size(10)));
    let key = Uuid::from_u128(0x0193_6f4e_8a2b_7c3d_9e4f_5a6b_7c8d_9e0f);

    // Each event's recording window on the wall clock, a little apart, to check the stored timestamps against.
    let windows: Vec<(jiff::Timestamp, jiff::Timestamp)> = (0..24)
        .map(|n| {
            let before = jiff::Timestamp::now();
            reporter.record(Event::new("tool_call").with("n", n).with("ok", true));
            let after = jiff::Timestamp::now();
            std::thread::sleep(Duration::from_millis(2));
            (before, after)
        })
        .collect();
    reporter.record(
        Event::new("order_paid")
            .with("amount", 12.5)
            .with("items", json!(["a", "b"]))
            .with_timestamp_rfc3339("2026-11-23T11:55:10.123+01:00")
            .unwrap()
            .with_idempotency_key(key)
            .with_distinct_id("user-7"),
    );
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    let stats = server.stats();
    assert_eq!((stats.events_unique, stats.duplicates), (25, 0));
    let events = server.events();
    assert!(
        events
            .iter()
            .all(|event| event.route == kind.route() && event.protocol == kind.protocol())
    );
    let first = &events[0].event;
    assert_eq!(first.name, "tool_call");
    assert_eq!(
        first.properties["n"], 0,
        "typed, not stringified: {first:?}"
    );
    assert_eq!(first.properties["ok"], true);
    assert_eq!(kind.idempotency_key(first).get_version_num(), 7);
    let millisecond = jiff::SignedDuration::from_millis(1);
    for event in events
        .iter()
        .filter(|event| event.event.name == "tool_call")
    {
        let n = event.event.properties["n"].as_u64().unwrap() as usize;
        let at: jiff::Timestamp = event.event.timestamp.as_deref().unwrap().parse().unwrap();
        let (before, after) = windows[n];
        assert!(
            at >= before - millisecond && at <= after + millisecond,
            "event {n} stored at {at}, recorded between {before} and {after}"
        );
    }
    let paid = events
        .iter()
        .find(|event| event.event.name == "order_paid")
        .unwrap();
    assert_eq!(kind.idempotency_key(&paid.event), key);
    let at: jiff::Timestamp = paid.event.timestamp.as_deref().unwrap().parse().unwrap();
    assert_eq!(at, "2026-11-23T10:55:10.123Z".parse().unwrap());
    assert_eq!(paid.event.properties["amount"], 12.5);
    assert_eq!(paid.event.properties["items"], json!(["a", "b"]));
    let distinct_id = match kind {
        Kind::OtlpProtobuf | Kind::OtlpJson | Kind::OtlpTraces => {
            paid.event.properties["distinct_id"].clone()
        }
        Kind::Ingest | Kind::PostHog => json!(paid.event.distinct_id),
    };
    assert_eq!(distinct_id, "user-7");
    let ours = reporter.stats();
    assert_eq!(ours.acknowledged, 25);
    assert!(ours.identity_holds(), "{ours:?}");
    server.shutdown();
}

/// Delivers 5 events against a server that answers the first request 503 with `Retry-After: 1` (as seconds or as
/// an HTTP-date); returns how long the flush took.
fn deliver_through_a_503_with_retry_after(kind: Kind, as_date: bool) -> Duration {
    let server = server_with(&[kind.rule(
        json!({"first": 1}),
        json!({"status": 503, "retry_after_secs": 1, "retry_after_as_date": as_date}),
    )]);
    let patient = RetryPolicy {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    };
    let reporter = start(kind.memory(&server).retry(patient));

    let started = Instant::now();
    (0..5).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    let outcome = reporter.flush(FLUSH);
    let took = started.elapsed();

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    let stats = server.stats();
    assert_eq!(
        (stats.events_unique, stats.responses.get(&503)),
        (5, Some(&1))
    );
    let error = last_error(&reporter);
    assert!(error.contains("HTTP 503"), "{error}");
    assert!(
        error.contains(&format!("{}{}", server.url(), kind.route())),
        "{error}"
    );
    server.shutdown();
    took
}

fn a_503_with_retry_after_in_seconds_is_waited_out_then_delivered(kind: Kind) {
    // The retry waits for the server's second, far longer than the 50 ms backoff ceiling.
    assert!(deliver_through_a_503_with_retry_after(kind, false) >= Duration::from_secs(1));
}

fn a_503_with_retry_after_as_an_http_date_is_waited_out_then_delivered(kind: Kind) {
    // The date is at least one second after the server answered, so the retry is at least a second after the start.
    assert!(deliver_through_a_503_with_retry_after(kind, true) >= Duration::from_secs(1));
}

fn a_lost_acknowledgement_duplicates_on_the_wire_but_not_after_dedupe(kind: Kind) {
    let server = server_with(&[kind.rule(json!({"nth": 1}), json!("reset_after_store"))]);
    let reporter = start(kind.memory(&server));

    (0..20).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    let stats = server.stats();
    assert_eq!(stats.faults.reset_after_store, 1);
    assert_eq!(
        (stats.events_received, stats.events_unique, stats.duplicates),
        (40, 20, 20)
    );
    let ours = reporter.stats();
    assert_eq!(ours.acknowledged, 20);
    assert!(ours.retried >= 20, "{ours:?}");
    assert!(ours.identity_holds(), "{ours:?}");
    server.shutdown();
}

fn a_hanging_request_times_out_and_is_sent_again(kind: Kind) {
    let server = server_with(&[kind.rule(json!({"nth": 1}), json!("hang"))]);
    let reporter = start(
        kind.memory(&server)
            .request_timeout(Duration::from_millis(500)),
    );

    (0..10).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    let stats = server.stats();
    assert_eq!((stats.faults.hang, stats.events_unique), (1, 10));
    let ours = reporter.stats();
    assert_eq!(ours.acknowledged, 10);
    assert!(ours.retried >= 10, "{ours:?}");
    let error = last_error(&reporter);
    assert!(error.contains("request failed"), "{error}");
    assert!(error.contains(kind.route()), "{error}");
    server.shutdown();
}

fn a_poison_event_is_bisected_dead_lettered_and_the_rest_delivered(kind: Kind) {
    let server = server_with(&[kind.rule(
        json!({"batch_has_property": {"name": "poison", "equals": true}}),
        json!({"status": 400}),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let reporter = start(kind.spool(&server, dir.path()));

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
    let dead_letters = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    let lines: Vec<Value> = dead_letters
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["status"], 400);
    assert_eq!(lines[0]["event"]["properties"]["n"], 11);
    // The reason is the server's, decoded from the sink's error shape (`{"error"}`, PostHog's `{"detail"}`, a
    // `google.rpc.Status` in protobuf or JSON), after the URL it was posted to.
    let reason = lines[0]["reason"].as_str().unwrap();
    let url = format!("{}{}", server.url(), kind.route());
    assert_eq!(reason, format!("POST {url}: HTTP 400: injected fault"));
    let _ = reporter.shutdown(Duration::from_secs(5));
    server.shutdown();
}

fn a_413_splits_the_batch_until_it_fits(kind: Kind) {
    let server = server_with(&[kind.rule(json!({"first": 1}), json!({"status": 413}))]);
    let reporter = start(kind.memory(&server));

    (0..12).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    let stats = server.stats();
    assert_eq!(
        (stats.events_unique, stats.responses.get(&413)),
        (12, Some(&1))
    );
    let ours = reporter.stats();
    assert_eq!((ours.acknowledged, ours.dead_lettered), (12, 0));
    assert!(ours.requests >= 3, "one refused, two halves: {ours:?}");
    server.shutdown();
}

fn a_401_keeps_the_events_opens_the_breaker_and_delivers_once_it_is_fixed(kind: Kind) {
    let server = server_with(&[kind.rule(json!({}), json!({"status": 401}))]);
    let reporter = start(kind.memory(&server));

    (0..10).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    reporter.idle();
    assert!(wait_until(Duration::from_secs(10), || reporter
        .stats()
        .breaker
        == BreakerState::Open));
    let stats = reporter.stats();
    assert_eq!(
        (
            stats.pending.total(),
            stats.dead_lettered,
            stats.dropped.total()
        ),
        (10, 0, 0)
    );
    let error = stats.last_error.unwrap_or_default();
    assert!(error.contains("HTTP 401"), "{error}");
    assert!(
        error.contains(&format!("{}{}", server.url(), kind.route())),
        "{error}"
    );
    assert_eq!(server.stats().events_unique, 0);

    server.set_faults(FaultPlan::none());
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    assert_eq!(server.stats().events_unique, 10);
    let stats = reporter.stats();
    assert_eq!(
        (stats.acknowledged, stats.breaker),
        (10, BreakerState::Closed)
    );
    assert!(stats.identity_holds(), "{stats:?}");
    server.shutdown();
}

fn an_empty_flush_sends_nothing_and_an_event_recorded_twice_is_sent_once(kind: Kind) {
    let server = server_with(&[]);
    let reporter = start(kind.memory(&server));

    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    assert_eq!(server.stats().requests, 0);

    let key = Uuid::from_u128(7);
    let fact = Event::new("order_paid").with_idempotency_key(key);
    reporter.record(fact.clone());
    reporter.record(fact);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);

    let stats = server.stats();
    assert_eq!(
        (stats.requests, stats.events_received, stats.events_unique),
        (1, 1, 1)
    );
    assert_eq!(reporter.stats().acknowledged, 2);
    server.shutdown();
}

fn a_bounded_shutdown_returns_by_its_deadline_against_a_hanging_server(kind: Kind) {
    let server = server_with(&[kind.rule(json!({}), json!("hang"))]);
    let dir = tempfile::tempdir().unwrap();
    let reporter = start(
        kind.spool(&server, dir.path())
            .request_timeout(Duration::from_secs(60)),
    );
    (0..10).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    reporter.idle();
    assert!(wait_until(Duration::from_secs(10), || server
        .stats()
        .faults
        .hang
        >= 1));

    let started = Instant::now();
    let outcome = reporter.shutdown_bounded(Duration::from_millis(500), 25);

    // The promise: a CLI exits by its deadline (plus the harness's slack), whatever the server does.
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500) + Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(outcome, ShutdownOutcome::DeadlineReached);
    let stats = reporter.stats();
    assert_eq!(
        (stats.pending.in_store, stats.acknowledged),
        (10, 0),
        "kept in the spool"
    );
    server.shutdown();
}

#[test]
fn an_otlp_partial_success_is_counted_dead_lettered_with_the_message_and_not_retried() {
    for kind in [Kind::OtlpProtobuf, Kind::OtlpJson, Kind::OtlpTraces] {
        let server = server_with(&[kind.rule(json!({"nth": 1}), json!("reject"))]);
        let dir = tempfile::tempdir().unwrap();
        let reporter = start(kind.spool(&server, dir.path()).batch_size(batch_size(10)));

        (0..20).for_each(|n| reporter.record(Event::new("e").with("n", n)));
        let outcome = reporter.flush(FLUSH);

        assert_eq!(outcome, FlushOutcome::Acknowledged, "{kind:?}");
        let served = server.stats();
        let stats = reporter.stats();
        assert_eq!(served.requests, stats.requests, "never retried: {kind:?}");
        assert_eq!(served.responses.keys().copied().collect::<Vec<_>>(), [200]);
        assert!(stats.partially_rejected > 0, "{stats:?}");
        assert_eq!(stats.partially_rejected, served.events_rejected);
        assert_eq!(stats.dead_lettered, stats.partially_rejected);
        assert_eq!(stats.acknowledged + stats.dead_lettered, 20);
        assert_eq!(served.events_unique, stats.acknowledged);
        assert!(stats.identity_holds(), "{stats:?}");
        let dead_letters = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
        let entry: Value = serde_json::from_str(dead_letters.lines().next().unwrap()).unwrap();
        assert_eq!(entry["rejected"], stats.partially_rejected);
        assert_eq!(
            entry["batch"].as_array().unwrap().len() as u64,
            stats.partially_rejected
        );
        let reason = entry["reason"].as_str().unwrap();
        let noun = match kind {
            Kind::OtlpTraces => "span",
            _ => "log records rejected",
        };
        assert!(reason.contains(noun), "{reason}");
        let _ = reporter.shutdown(Duration::from_secs(5));
        server.shutdown();
    }
}

#[test]
fn a_spool_written_under_one_sink_is_delivered_by_another_under_the_same_keys() {
    // PostHog stores every batch but its acknowledgements are lost, so the events stay in the spool...
    let server = server_with(&[Kind::PostHog.rule(json!({}), json!("reset_after_store"))]);
    let dir = tempfile::tempdir().unwrap();
    let first = start(Kind::PostHog.spool(&server, dir.path()));
    (0..5).for_each(|n| first.record(Event::new("e").with("n", n)));
    first.idle();
    assert!(wait_until(Duration::from_secs(10), || server
        .stats()
        .events_unique
        == 5));
    assert_eq!(
        first.shutdown(Duration::from_millis(200)),
        ShutdownOutcome::DeadlineReached
    );
    drop(first);

    // ...and the next run delivers them over OTLP: every one is a duplicate of what PostHog stored.
    let second = start(Kind::OtlpProtobuf.spool(&server, dir.path()));
    let outcome = second.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged);
    let stats = second.stats();
    assert_eq!((stats.recovered, stats.acknowledged), (5, 5));
    // The OTLP records were accepted, yet no event was added: each had the key of an event PostHog stored.
    let served = server.stats();
    assert_eq!(
        served.routes["/v1/logs"].responses.get(&200),
        Some(&1),
        "{served:?}"
    );
    assert_eq!(served.events_unique, 5);
    assert!(
        server
            .events()
            .iter()
            .all(|event| event.protocol == fake_ingest::Protocol::Posthog)
    );
    server.shutdown();
}

/// A sink of the application's own: today's protocol, but every 2xx is read as a partial success that rejected more
/// events than were sent (a broken server), to show that a user's sink drives the same loop and cannot unbalance it.
#[derive(Debug)]
struct Overclaiming;

impl Sink for Overclaiming {
    fn name(&self) -> &str {
        "overclaiming"
    }

    fn url(&self, endpoint: &Url) -> Result<Url, SinkError> {
        Ingest.url(endpoint)
    }

    fn encode(&self, batch: &Batch<'_>) -> Result<Request, EncodeError> {
        Ingest.encode(batch)
    }

    fn classify(&self, response: &Response<'_>) -> Verdict {
        match Ingest.classify(response) {
            Verdict::Accepted => Verdict::PartiallyAccepted {
                rejected: u64::MAX,
                message: "everything, and more".into(),
            },
            other => other,
        }
    }
}

#[test]
fn a_sink_of_your_own_drives_the_same_loop_and_an_overclaimed_rejection_still_balances() {
    let server = server_with(&[]);
    let reporter = start(
        fast(Config::builder(format!("{}/ingest", server.url())).sink(Overclaiming))
            .memory_only(MemoryLimits::default())
            .distinct_id("test-install"),
    );

    (0..7).for_each(|n| reporter.record(Event::new("e").with("n", n)));
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);

    let stats = reporter.stats();
    assert_eq!(
        (
            stats.acknowledged,
            stats.dead_lettered,
            stats.partially_rejected
        ),
        (0, 7, 7)
    );
    assert!(stats.identity_holds(), "{stats:?}");
    let error = stats.last_error.unwrap_or_default();
    assert!(error.contains("everything, and more"), "{error}");
    server.shutdown();
}

/// Records eight events through `kind`'s sink, the sixth changed by `poison` into one the sink cannot encode, and
/// checks that this one alone is dead-lettered (never sent, with a reason containing `reason`) and the seven others
/// delivered, the counts balancing.
fn an_unencodable_event_is_dead_lettered_alone(
    kind: Kind,
    poison: impl Fn(Event) -> Event,
    reason: &str,
) {
    let server = server_with(&[]);
    let dir = tempfile::tempdir().unwrap();
    let reporter = start(kind.spool(&server, dir.path()));

    for n in 0..8 {
        let event = Event::new("e").with("n", n);
        reporter.record(if n == 5 { poison(event) } else { event });
    }
    let outcome = reporter.flush(FLUSH);

    assert_eq!(outcome, FlushOutcome::Acknowledged, "{kind:?}");
    let stats = reporter.stats();
    assert_eq!(
        (stats.acknowledged, stats.dead_lettered),
        (7, 1),
        "{kind:?}"
    );
    assert_eq!(
        stats.requests,
        server.stats().requests,
        "only what was sent counts"
    );
    assert!(stats.identity_holds(), "{stats:?}");
    assert_eq!(server.events().len(), 7, "{kind:?}");
    let dead_letters = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    let entry: Value = serde_json::from_str(dead_letters.trim()).unwrap();
    assert_eq!(entry["status"], Value::Null);
    assert_eq!(entry["event"]["properties"]["n"], 5);
    assert!(
        entry["reason"].as_str().unwrap().contains(reason),
        "{kind:?}: {entry}"
    );
    let _ = reporter.shutdown(Duration::from_secs(5));
    server.shutdown();
}

#[test]
fn an_event_the_sink_cannot_encode_is_dead_lettered_alone_and_never_sent() {
    let before_1970 = std::time::UNIX_EPOCH - Duration::from_secs(86_400);
    for kind in [Kind::OtlpProtobuf, Kind::OtlpJson, Kind::OtlpTraces] {
        an_unencodable_event_is_dead_lettered_alone(
            kind,
            |event| event.with_timestamp(before_1970),
            "before 1970",
        );
    }
}

#[test]
fn an_event_whose_stored_opentelemetry_message_is_damaged_is_dead_lettered_alone() {
    let cases: [(Kind, &str, Value); 4] = [
        (Kind::OtlpProtobuf, "otel.log", json!("not a log record")),
        (Kind::OtlpJson, "otel.scope", json!([1, 2])),
        (Kind::OtlpTraces, "otel.span", json!({"traceId": 7})),
        (Kind::OtlpTraces, "otel.scope", json!(false)),
    ];
    for (kind, property, damaged) in cases {
        an_unencodable_event_is_dead_lettered_alone(
            kind,
            |event| event.with(property, damaged.clone()),
            "cannot encode the batch",
        );
    }
}
