//! Group `record`: what recording one event costs the application, ours beside the floor.
//!
//! - `ours/{idle,backlog_1m,server_slow_500ms,server_hanging}`: flush-core's `Reporter::record` with the sample
//!   event, in the three states it must cost the same in (idle with delivery running, a large backlog, a slow or down
//!   server; the last split in two). Backlog: 1 million events (10 000
//!   in smoke mode) spooled before the reporter starts, no server (connections refused), so the backlog stays.
//! - `floor/std_sync_channel`, `floor/crossbeam_channel`: a bare `try_send` of the same event (the same
//!   `flush_core::Event` value) into a bounded channel of 8192 slots (flush-core's default queue bound) whose
//!   consumer thread drains it and otherwise waits 20 ms (flush-core's default poll interval) for a wake-up.
//! - `floor_with_wake/crossbeam_channel_wake_at_512`: the crossbeam floor whose producer also wakes the consumer
//!   when the queue reaches 512 events, as flush-core's queue does (its smallest wake-up fill): the price of that
//!   design.
//!
//! - `peer/posthog_rs_capture`, `peer/otel_batch_logs_emit`: what the clients a user would pick instead cost per
//!   call (`benches::peers`): posthog-rs's `capture` of a prepared event (its UUID v7 minted when the event is built,
//!   untimed) and the OpenTelemetry SDK's `emit` of a prepared log record into its batch log processor, both
//!   delivering to an in-process fake-ingest; between chunks, untimed, each flushes.
//! - `parts/system_time_now`: a wall-clock read, which `record()` takes only where the kernel does not keep time
//!   with the CPU's time-stamp counter (elsewhere it reads the counter; the spooler converts);
//!   `parts/uuid_v7_thread_context`: minting a UUID v7 from a per-thread context, which flush-core's spooler does per
//!   event, off the caller's thread.
//!
//! Every implementation is timed the same way: events are built outside the timing, then handed over in timed
//! chunks of [`CHUNK`] events; between chunks, untimed, the consumer drains (the floor's consumer is woken and
//! waited for; the reporter is asked for a `checkpoint`, which returns once everything recorded is in the spool). So
//! every timed call finds a queue with room, as in an application that records at a rate the pipeline sustains.
//! The reporter's spool does not fsync here (the sync policy only changes the worker's cost, not `record()`'s).
//!
//! Criterion reports the mean. A second, separate loop times each call alone into an HDR histogram and prints
//! p50 / p99 / p99.9 on `PERCENTILES` lines (1 million calls per implementation, 10 000 in smoke mode); the cost of
//! the timer itself is printed too (`timer_overhead_ns`), and is included in every percentile. The chunks of the
//! mean and of that loop (256 events) stay below flush-core's wake-up fill of 512 queued events, so the worker
//! drains between chunks (or at its 20 ms tick). A second percentile loop (`.../bursts_of_40`, 200 000 calls) hands
//! events over in bursts of 40; a third (`.../bursts_of_1024`, 1 million calls) in bursts of 1024, each of which
//! wakes the worker once, which then drains (and, in the idle state, the sender delivers) while the burst goes on:
//! the difference is what that concurrency costs the caller on this machine's two cores.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::floors::channels::{ChannelFloor, ChannelKind};
use benches::flush::{ReporterState, ReporterUnderTest, sample_flush_event};
use benches::peers::otel_batch_logs::OtelBatchLogsPeer;
use benches::peers::posthog_rs::PostHogRsPeer;
use benches::sample::sample_event;
use benches::util::{
    latency_histogram, print_load, print_percentiles, record_latencies, selected, size,
    time_in_chunks, timer_overhead_nanos,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flush_core::Event;

/// Events handed over per timed chunk: well under the queue's capacity, and under its smallest wake-up fill, so the
/// worker drains between chunks, untimed (or at its poll tick): the mean is what `record()` itself costs its caller.
const CHUNK: usize = 256;
/// A burst longer than [`WAKE_AT`], for the third percentile loop: each burst wakes the worker once, and it drains
/// while the burst goes on, as in a busy application's stream.
const LONG_BURST: usize = 1024;
/// The channel floor's capacity (flush-core's default queue bound).
const CAPACITY: usize = 8192;
/// How long the floor's consumer waits when it finds the channel empty (flush-core's default poll interval).
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// The queue length at which flush-core's `record()` wakes its worker (its smallest wake-up fill, above the default
/// batch size).
const WAKE_AT: usize = 512;
/// A burst shorter than [`WAKE_AT`], for the second percentile loop.
const SHORT_BURST: usize = 40;

fn events(template: &Event) -> impl FnMut(usize) -> Vec<Event> + '_ {
    move |n| vec![template.clone(); n]
}

/// The percentile loops: (chunk, calls, name suffix). Bursts of [`CHUNK`] events, the main figure; bursts of
/// [`SHORT_BURST`]; and bursts of [`LONG_BURST`], each of which wakes flush-core's worker, which then drains beside
/// the caller: what that concurrency costs the caller.
fn percentile_runs() -> [(usize, u64, &'static str); 3] {
    [
        (CHUNK, size(1_000_000, 10_000) as u64, ""),
        (SHORT_BURST, size(200_000, 2_000) as u64, "/bursts_of_40"),
        (
            LONG_BURST,
            size(1_000_000, 10_000) as u64,
            "/bursts_of_1024",
        ),
    ]
}

/// The channel floors: name and how to start each.
fn channel_floors() -> Vec<(&'static str, ChannelFloor<Event>)> {
    vec![
        (
            "floor/std_sync_channel",
            ChannelFloor::start(ChannelKind::StdSyncChannel, CAPACITY, POLL_INTERVAL),
        ),
        (
            "floor/crossbeam_channel",
            ChannelFloor::start(ChannelKind::Crossbeam, CAPACITY, POLL_INTERVAL),
        ),
        (
            "floor_with_wake/crossbeam_channel_wake_at_512",
            ChannelFloor::start(ChannelKind::Crossbeam, CAPACITY, POLL_INTERVAL)
                .with_wake_at(WAKE_AT),
        ),
    ]
}

fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    let template = sample_flush_event();
    for (name, mut channel) in channel_floors() {
        if !selected(&format!("record/{name}")) {
            continue;
        }
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                time_in_chunks(
                    &mut channel,
                    iters,
                    CHUNK,
                    events(&template),
                    |channel, event| {
                        black_box(channel.try_send(event));
                    },
                    |channel| channel.wait_drained(),
                )
            });
        });
        for (chunk, calls, suffix) in percentile_runs() {
            let mut histogram = latency_histogram();
            record_latencies(
                &mut channel,
                &mut histogram,
                calls,
                chunk,
                events(&template),
                |channel, event| {
                    black_box(channel.try_send(event));
                },
                |channel| channel.wait_drained(),
            );
            print_percentiles(&format!("record/{name}{suffix}"), &histogram);
        }
    }
    group.finish();
}

fn ours(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    let template = sample_flush_event();
    let states = [
        ReporterState::Idle,
        ReporterState::Backlog {
            events: size(1_000_000, 10_000),
        },
        ReporterState::Slow500ms,
        ReporterState::Hanging,
    ];
    for state in states {
        if !selected(&format!("record/ours/{}", state.name())) {
            continue;
        }
        let setup = Instant::now();
        let mut under_test = ReporterUnderTest::start(state);
        println!(
            "SETUP record/ours/{} seconds={:.1}",
            state.name(),
            setup.elapsed().as_secs_f64()
        );
        let name = format!("ours/{}", state.name());
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                time_in_chunks(
                    &mut under_test,
                    iters,
                    CHUNK,
                    events(&template),
                    |under_test, event| under_test.reporter.record(event),
                    |under_test| under_test.checkpoint(),
                )
            });
        });
        for (chunk, calls, suffix) in percentile_runs() {
            let mut histogram = latency_histogram();
            record_latencies(
                &mut under_test,
                &mut histogram,
                calls,
                chunk,
                events(&template),
                |under_test, event| under_test.reporter.record(event),
                |under_test| under_test.checkpoint(),
            );
            print_percentiles(&format!("record/{name}{suffix}"), &histogram);
        }
        let stats = under_test.reporter.stats();
        println!(
            "STATE record/{name} recorded={} dropped={} pending_in_store={} acknowledged={} requests={}",
            stats.recorded,
            stats.dropped.total(),
            stats.pending.in_store,
            stats.acknowledged,
            stats.requests,
        );
        under_test.stop();
    }
    group.finish();
}

/// The peers' in-memory queue bound: above what is recorded between two flushes, so that none is dropped.
const PEER_QUEUE: usize = 1 << 16;

fn peers(c: &mut Criterion) {
    let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())
        .expect("start fake-ingest");
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    let sample = sample_event();
    if selected("record/peer/posthog_rs_capture") {
        let mut peer = PostHogRsPeer::start(&server.url(), 50, PEER_QUEUE).expect("posthog-rs");
        group.bench_function("peer/posthog_rs_capture", |b| {
            b.iter_custom(|iters| {
                time_in_chunks(
                    &mut peer,
                    iters,
                    CHUNK,
                    |n| (0..n).map(|_| PostHogRsPeer::event(&sample)).collect(),
                    |peer, event| peer.capture(event),
                    |peer| peer.flush(),
                )
            });
        });
        peer.shutdown();
    }
    if selected("record/peer/otel_batch_logs_emit") {
        let mut peer = OtelBatchLogsPeer::start(&server.url(), 50, PEER_QUEUE).expect("otel");
        let records = peer.record_maker();
        group.bench_function("peer/otel_batch_logs_emit", |b| {
            b.iter_custom(|iters| {
                time_in_chunks(
                    &mut peer,
                    iters,
                    CHUNK,
                    |n| (0..n).map(|_| records.record(&sample)).collect(),
                    |peer, record| peer.emit(record),
                    |peer| peer.flush(),
                )
            });
        });
        peer.shutdown();
    }
    group.finish();
    server.shutdown();
}

/// The parts of stamping an event, measured alone: the clock read `record()` takes, and minting the UUID v7 key,
/// which the spooler does off the caller's thread.
fn parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    let context = uuid::ContextV7::new();
    group.bench_function("parts/uuid_v7_thread_context", |b| {
        b.iter(|| uuid::Uuid::new_v7(uuid::Timestamp::now(&context)))
    });
    group.bench_function("parts/system_time_now", |b| {
        b.iter(std::time::SystemTime::now)
    });
    group.finish();
}

fn start(_: &mut Criterion) {
    print_load("record start");
    println!("PERCENTILES timer_overhead_ns={}", timer_overhead_nanos());
}

fn end(_: &mut Criterion) {
    print_load("record end");
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = start, floor, ours, peers, parts, end
}
criterion_main!(benches);
