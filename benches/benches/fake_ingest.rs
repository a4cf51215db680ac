//! Group `fake_ingest`: requests and events per second fake-ingest takes over loopback, beside a bare axum handler
//! that only parses the JSON body; and the memory it holds per captured event.
//!
//! One client thread, one keep-alive connection (`ureq`, as flush-core), POSTing `/ingest` and waiting for each
//! answer; the server runs in the same process on its own runtime. One iteration is one request; throughput is in
//! events (requests/s = events/s for single-event batches).
//!
//! - `ours/{1,50}`: fake-ingest, faults off, dedupe on (always), every event new.
//! - `ours_duplicates/1`: the same single-event body sent again and again: every request after the first is a
//!   duplicate (the dedupe lookup, nothing stored).
//! - `floor_bare_axum/{1,50}`: the bare handler, same client, same bodies.
//!
//! The memory figure comes first (before anything else has allocated in this process) and is printed on a `MEMORY`
//! line: the growth of this process's resident set while fake-ingest stores N events (100 000; 2 000 in smoke mode)
//! sent in batches of 500, divided by N (`FAKE_INGEST_MEMORY_EVENTS=N` sets N). The client's share is small and constant; the allocator may keep or reuse
//! memory, so this is an estimate, not an exact count.

mod common;

use benches::floors::bare_axum::BareAxumServer;
use benches::floors::post_loop::PostLoop;
use benches::sample::{ingest_body, sample_event};
use benches::util::{print_load, resident_bytes, selected, size};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Events per request.
const BATCHES: [usize; 2] = [1, 50];

fn memory_per_event(_: &mut Criterion) {
    if !selected("fake_ingest/memory") {
        return;
    }
    // `FAKE_INGEST_MEMORY_EVENTS` stores more (docs/BENCHMARKS.md records a run with 10 million).
    let events = std::env::var("FAKE_INGEST_MEMORY_EVENTS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| size(100_000, 2_000));
    let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())
        .expect("start fake-ingest");
    let client = PostLoop::new(&server.url(), false);
    let batch = vec![sample_event(); 500];
    // Warm up the connection, the runtime and the allocator with one batch, then forget it.
    client.post(&batch).expect("post a batch");
    server.reset().expect("reset fake-ingest");
    let before = resident_bytes().unwrap_or(0);
    for _ in 0..events / 500 {
        client.post(&batch).expect("post a batch");
    }
    let after = resident_bytes().unwrap_or(0);
    let stored = server.stats().events_unique;
    let wire_bytes = sample_event().stamp_and_serialize().len();
    println!(
        "MEMORY fake_ingest events={stored} rss_growth_bytes={} per_event_bytes={:.0} wire_bytes_per_event={wire_bytes}",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / stored.max(1) as f64,
    );
    server.shutdown();
}

fn ours(c: &mut Criterion) {
    let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())
        .expect("start fake-ingest");
    let mut group = c.benchmark_group("fake_ingest");
    for batch in BATCHES {
        let client = PostLoop::new(&server.url(), false);
        let events = vec![sample_event(); batch];
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("ours", batch), &events, |b, events| {
            b.iter(|| client.post(events).expect("post a batch"));
        });
    }
    let client = PostLoop::new(&server.url(), false);
    let body = ingest_body(&[sample_event()]);
    group.throughput(Throughput::Elements(1));
    group.bench_with_input(BenchmarkId::new("ours_duplicates", 1), &body, |b, body| {
        b.iter(|| client.post_body(body).expect("post a batch"));
    });
    group.finish();
    server.shutdown();
}

fn floor_bare_axum(c: &mut Criterion) {
    let server = BareAxumServer::start().expect("start the bare axum server");
    let mut group = c.benchmark_group("fake_ingest");
    for batch in BATCHES {
        let client = PostLoop::new(&server.endpoint(), false);
        let events = vec![sample_event(); batch];
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(
            BenchmarkId::new("floor_bare_axum", batch),
            &events,
            |b, events| {
                b.iter(|| client.post(events).expect("post a batch"));
            },
        );
    }
    group.finish();
}

fn start(_: &mut Criterion) {
    print_load("fake_ingest start");
}

fn end(_: &mut Criterion) {
    print_load("fake_ingest end");
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = start, memory_per_event, ours, floor_bare_axum, end
}
criterion_main!(benches);
