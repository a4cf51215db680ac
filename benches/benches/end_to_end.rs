//! Group `end_to_end`: events per second from the application to acknowledged by an in-process fake-ingest over
//! loopback, batches of 1, 10, 50, 500 and 1000, with and without gzip. Throughput is in events.
//!
//! - `ours/{plain,gzip}/{1,10,50,500,1000}`: flush-core's reporter (spool with its default group commit, one keep-alive
//!   connection) with `batch_size` set. One iteration is one event: `record()` it; every 1000 events a
//!   `checkpoint()` (so the in-memory queue never overflows: a benchmark that dropped events would flatter us), and
//!   at the end of the sample a `flush()` that returns once the server has acknowledged everything. All timed.
//! - `ours_diag/{acks_not_fsynced,poll_1ms,acks_not_fsynced_poll_1ms}/50`: diagnostics, not targets: ours with
//!   batches of 50 and the spool's sync policy `Never` (so acknowledgements are not fsynced) and/or a 1 ms poll
//!   interval instead of 20 ms, to show where the end-to-end time goes.
//! - `floor_post_loop/{plain,gzip}/{1,10,50,500,1000}`: serialize each batch and POST it with the same HTTP client as
//!   flush-core (`ureq`, one keep-alive connection, the same gzip level), waiting for each answer. One iteration
//!   is one batch.
//! - `ours_sink/{posthog,otlp_logs}/{plain,gzip}/50` and `floor_sink_post/{posthog,otlp_logs}/{plain,gzip}/50`: the
//!   same pair through the PostHog sink (`/batch/`) and the OTLP logs sink (`/v1/logs`, protobuf); the floor encodes
//!   each batch with the same sink (`benches::floors::sink_post_loop`), so both sides pay the same encoding.
//!
//! - `peer_posthog_rs/plain/50` and `peer_otel_batch_logs/plain/50`: the clients a user would pick instead, delivering
//!   the same events to the same routes as `ours_sink/{posthog,otlp_logs}` in batches of 50 (`benches::peers`). One
//!   iteration is one event, captured or emitted; at the end of the sample a flush, timed. They keep events in memory
//!   only (queues sized so that none is dropped here); every sample checks that the server received every event.
//!
//! All talk to the same in-process fake-ingest (faults off, dedupe on), which shares the two cores with them.

mod common;

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use benches::floors::post_loop::PostLoop;
use benches::floors::sink_post_loop::SinkPostLoop;
use benches::flush::sample_flush_event;
use benches::peers::otel_batch_logs::OtelBatchLogsPeer;
use benches::peers::posthog_rs::PostHogRsPeer;
use benches::sample::{SAMPLE_DISTINCT_ID, sample_event};
use benches::util::{print_load, selected, temp_dir};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flush_core::sink::{Ingest, OtlpLogs, PostHog, Sink};
use flush_core::spool::SyncPolicy;
use flush_core::{Config, FlushOutcome, Reporter};

/// Events per request.
const BATCHES: [usize; 5] = [1, 10, 50, 500, 1000];
/// Events recorded between two checkpoints (well under the queue's 8192 slots).
const CHECKPOINT_EVERY: u64 = 1000;

fn transport(gzip: bool) -> &'static str {
    if gzip { "gzip" } else { "plain" }
}

/// A diagnostic change to the reporter's defaults, to show where end-to-end time goes.
#[derive(Clone, Copy)]
enum Tweak {
    /// The defaults.
    None,
    /// Spool sync policy `Never`: acknowledgements (and appends) are not fsynced.
    SyncNever,
    /// Poll interval 1 ms instead of 20 ms.
    Poll1ms,
    /// Both.
    SyncNeverPoll1ms,
}

/// The backends measured beside the default `/ingest`.
const OTHER_SINKS: [SinkChoice; 2] = [SinkChoice::PostHog, SinkChoice::OtlpLogs];

/// Which sink delivers.
#[derive(Clone, Copy)]
enum SinkChoice {
    Ingest,
    PostHog,
    OtlpLogs,
}

impl SinkChoice {
    fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::PostHog => "posthog",
            Self::OtlpLogs => "otlp_logs",
        }
    }

    fn sink(self) -> Box<dyn Sink> {
        match self {
            Self::Ingest => Box::new(Ingest),
            Self::PostHog => Box::new(PostHog::new("phc_bench")),
            Self::OtlpLogs => Box::new(OtlpLogs::new()),
        }
    }

    /// The endpoint the sink is configured with: `/ingest` is posted to as written, the others add their path.
    fn endpoint(self, server: &str) -> String {
        match self {
            Self::Ingest => format!("{server}/ingest"),
            Self::PostHog | Self::OtlpLogs => server.to_owned(),
        }
    }
}

/// One configuration of ours.
struct Variant {
    name: String,
    sink: SinkChoice,
    gzip: bool,
    batch: usize,
    tweak: Tweak,
}

fn ours(c: &mut Criterion) {
    let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())
        .expect("start fake-ingest");
    let mut group = c.benchmark_group("end_to_end");
    group.throughput(Throughput::Elements(1));
    let template = sample_flush_event();
    let mut variants: Vec<Variant> = Vec::new();
    for gzip in [false, true] {
        for batch in BATCHES {
            variants.push(Variant {
                name: format!("ours/{}", transport(gzip)),
                sink: SinkChoice::Ingest,
                gzip,
                batch,
                tweak: Tweak::None,
            });
        }
        for sink in OTHER_SINKS {
            variants.push(Variant {
                name: format!("ours_sink/{}/{}", sink.name(), transport(gzip)),
                sink,
                gzip,
                batch: 50,
                tweak: Tweak::None,
            });
        }
    }
    for (name, tweak) in [
        ("ours_diag/acks_not_fsynced", Tweak::SyncNever),
        ("ours_diag/poll_1ms", Tweak::Poll1ms),
        (
            "ours_diag/acks_not_fsynced_poll_1ms",
            Tweak::SyncNeverPoll1ms,
        ),
    ] {
        variants.push(Variant {
            name: name.to_owned(),
            sink: SinkChoice::Ingest,
            gzip: false,
            batch: 50,
            tweak,
        });
    }
    for Variant {
        name,
        sink,
        gzip,
        batch,
        tweak,
    } in variants
    {
        {
            if !selected(&format!("end_to_end/{name}/{batch}")) {
                continue;
            }
            let dir = temp_dir("end-to-end");
            let mut builder = Config::builder(sink.endpoint(&server.url()))
                .shared_sink(sink.sink().into())
                .spool_dir(dir.path().join("spool"))
                .distinct_id(SAMPLE_DISTINCT_ID)
                .batch_size(NonZeroUsize::new(batch).expect("a batch size is not zero"))
                .gzip(gzip);
            if matches!(tweak, Tweak::SyncNever | Tweak::SyncNeverPoll1ms) {
                builder = builder.sync_policy(SyncPolicy::Never);
            }
            if matches!(tweak, Tweak::Poll1ms | Tweak::SyncNeverPoll1ms) {
                builder = builder.poll_interval(Duration::from_millis(1));
            }
            let config = builder.build().expect("reporter config");
            let reporter = Reporter::start(config).expect("start the reporter");
            group.bench_function(BenchmarkId::new(name.as_str(), batch), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for index in 1..=iters {
                        reporter.record(template.clone());
                        if index % CHECKPOINT_EVERY == 0 {
                            reporter.checkpoint().expect("checkpoint");
                        }
                    }
                    let outcome = reporter.flush(Duration::from_secs(120));
                    let elapsed = start.elapsed();
                    assert_eq!(
                        outcome,
                        FlushOutcome::Acknowledged,
                        "every event is acknowledged"
                    );
                    elapsed
                });
            });
            let stats = reporter.stats();
            assert_eq!(stats.dropped.total(), 0, "no event was dropped: {stats:?}");
            println!(
                "STATE end_to_end/{name}/{batch} recorded={} acknowledged={} requests={} retried={}",
                stats.recorded, stats.acknowledged, stats.requests, stats.retried,
            );
            let _ = reporter.shutdown(Duration::from_secs(5));
        }
    }
    group.finish();
    server.shutdown();
}

fn floor_post_loop(c: &mut Criterion) {
    let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())
        .expect("start fake-ingest");
    let mut group = c.benchmark_group("end_to_end");
    for gzip in [false, true] {
        for batch in BATCHES {
            let client = PostLoop::new(&server.url(), gzip);
            let events = vec![sample_event(); batch];
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("floor_post_loop/{}", transport(gzip)), batch),
                &events,
                |b, events| {
                    b.iter(|| client.post(events).expect("post a batch"));
                },
            );
        }
        for sink in OTHER_SINKS {
            let client =
                SinkPostLoop::new(sink.sink(), &server.url(), gzip).expect("the sink's endpoint");
            let events = vec![sample_event(); 50];
            group.throughput(Throughput::Elements(50));
            group.bench_with_input(
                BenchmarkId::new(
                    format!("floor_sink_post/{}/{}", sink.name(), transport(gzip)),
                    50,
                ),
                &events,
                |b, events| {
                    b.iter(|| client.post(events).expect("post a batch"));
                },
            );
        }
    }
    group.finish();
    server.shutdown();
}

/// The peers' in-memory queue bound: far above what one sample records, so that no event is dropped.
const PEER_QUEUE: usize = 1 << 20;

fn peers(c: &mut Criterion) {
    let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())
        .expect("start fake-ingest");
    let mut group = c.benchmark_group("end_to_end");
    group.throughput(Throughput::Elements(1));
    let sample = sample_event();
    let received = || server.stats().events_received;
    if selected("end_to_end/peer_posthog_rs/plain/50") {
        let peer = PostHogRsPeer::start(&server.url(), 50, PEER_QUEUE).expect("posthog-rs");
        group.bench_function(BenchmarkId::new("peer_posthog_rs/plain", 50), |b| {
            b.iter_custom(|iters| {
                let before = received();
                let start = Instant::now();
                for _ in 0..iters {
                    peer.capture(PostHogRsPeer::event(&sample));
                }
                peer.flush();
                let elapsed = start.elapsed();
                assert!(
                    received() - before >= iters,
                    "posthog-rs delivered every event"
                );
                elapsed
            });
        });
        peer.shutdown();
    }
    if selected("end_to_end/peer_otel_batch_logs/plain/50") {
        let peer = OtelBatchLogsPeer::start(&server.url(), 50, PEER_QUEUE).expect("otel");
        let records = peer.record_maker();
        group.bench_function(BenchmarkId::new("peer_otel_batch_logs/plain", 50), |b| {
            b.iter_custom(|iters| {
                let before = received();
                let start = Instant::now();
                for _ in 0..iters {
                    peer.emit(records.record(&sample));
                }
                peer.flush();
                let elapsed = start.elapsed();
                assert!(
                    received() - before >= iters,
                    "the batch processor delivered every record"
                );
                elapsed
            });
        });
        peer.shutdown();
    }
    group.finish();
    server.shutdown();
}

fn start(_: &mut Criterion) {
    print_load("end_to_end start");
}

fn end(_: &mut Criterion) {
    print_load("end_to_end end");
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = start, ours, floor_post_loop, peers, end
}
criterion_main!(benches);
