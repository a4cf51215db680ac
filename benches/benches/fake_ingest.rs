//! Group `fake_ingest`: requests and events per second fake-ingest takes over loopback, in memory and with a data
//! dir, beside the same ingest handler storing into SQLite in WAL mode and a bare axum handler that only parses the
//! JSON body; and the memory it holds per captured event.
//!
//! One client thread, one keep-alive connection (`ureq`, as flush-core), POSTing `/ingest` and waiting for each
//! answer; the server runs in the same process on its own runtime. One iteration is one request; throughput is in
//! events (requests/s = events/s for single-event batches). The bodies are serialized before the timed loop (every
//! event with a fresh UUID v7, so every event is new), so only the server's work and the round trip are timed.
//!
//! - `ours/{1,50}`: fake-ingest in memory, faults off, dedupe on (always).
//! - `ours_data_dir/{1,50}`: fake-ingest with `--data-dir` (each batch appended to the batch log and `fdatasync`ed
//!   before the answer).
//! - `ours_duplicates/1`: the same single-event body sent again and again: every request after the first is a
//!   duplicate (the dedupe lookup, nothing stored).
//! - `peer_sqlite_wal/{full,normal}/{1,50}`: the ingest handler of `benches::peers::sqlite_ingest`, one SQLite
//!   transaction per request, the uuid unique (SQLite dedupes); `full` syncs the WAL at every commit (durable before
//!   the answer, like `ours_data_dir`), `normal` at checkpoints only.
//! - `floor_bare_axum/{1,50}`: the bare handler, same client, same bodies.
//!
//! The memory figure comes first (before anything else has allocated in this process) and is printed on a `MEMORY`
//! line: the growth of this process's resident set while fake-ingest stores N events (100 000; 2 000 in smoke mode)
//! sent in batches of 500, divided by N (`FAKE_INGEST_MEMORY_EVENTS=N` sets N). The client's share is small and
//! constant; the allocator may keep or reuse memory, so this is an estimate, not an exact count. `fake_ingest/memory`
//! measures the in-memory store; `fake_ingest/memory_data_dir` the store with a data dir, and only when it is the
//! one memory figure selected (`-- fake_ingest/memory_data_dir`): measured after the other in the same process it
//! would reuse the memory the other freed.

mod common;

use std::time::Instant;

use benches::floors::bare_axum::BareAxumServer;
use benches::floors::post_loop::PostLoop;
use benches::peers::sqlite_ingest::SqliteIngest;
use benches::peers::sqlite_wal::Synchronous;
use benches::sample::{ingest_body, sample_event};
use benches::util::{print_load, resident_bytes, selected, size, temp_dir};
use criterion::measurement::WallTime;
use criterion::{Bencher, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Events per request.
const BATCHES: [usize; 2] = [1, 50];

fn memory_per_event(_: &mut Criterion) {
    if selected("fake_ingest/memory") {
        measure_memory("fake_ingest", fake_ingest::Config::default());
    }
}

fn memory_per_event_data_dir(_: &mut Criterion) {
    // Selected alone only: a filter that selects `fake_ingest/memory` selects this one too.
    if selected("fake_ingest/memory_data_dir") && !selected("fake_ingest/memory") {
        let dir = temp_dir("fake-ingest-memory");
        let config = fake_ingest::Config {
            data_dir: Some(dir.path().to_owned()),
            ..fake_ingest::Config::default()
        };
        measure_memory("fake_ingest_data_dir", config);
    }
}

/// Prints the resident-set growth per event while a server with `config` stores N events.
fn measure_memory(label: &str, config: fake_ingest::Config) {
    // `FAKE_INGEST_MEMORY_EVENTS` stores more (docs/BENCHMARKS.md records a run with 10 million).
    let events = std::env::var("FAKE_INGEST_MEMORY_EVENTS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| size(100_000, 2_000));
    let server = fake_ingest::Server::start_blocking(config).expect("start fake-ingest");
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
        "MEMORY {label} events={stored} rss_growth_bytes={} per_event_bytes={:.0} wire_bytes_per_event={wire_bytes}",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / stored.max(1) as f64,
    );
    server.shutdown();
}

/// Times `iters` requests of `batch` fresh events each, their bodies serialized before the clock starts.
fn post_fresh(bencher: &mut Bencher<'_, WallTime>, client: &PostLoop, batch: usize) {
    let events = vec![sample_event(); batch];
    bencher.iter_custom(|iters| {
        let bodies: Vec<Vec<u8>> = (0..iters).map(|_| ingest_body(&events)).collect();
        let start = Instant::now();
        for body in &bodies {
            client.post_body(body).expect("post a batch");
        }
        start.elapsed()
    });
}

/// Benchmarks `{name}/{1,50}` against the server at `endpoint`.
fn each_batch(c: &mut Criterion, name: &str, endpoint: &str) {
    let mut group = c.benchmark_group("fake_ingest");
    for batch in BATCHES {
        let client = PostLoop::new(endpoint, false);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, batch| {
            post_fresh(b, &client, *batch);
        });
    }
    group.finish();
}

fn ours(c: &mut Criterion) {
    let server = fake_ingest::Server::start_blocking(fake_ingest::Config::default())
        .expect("start fake-ingest");
    each_batch(c, "ours", &server.url());
    let mut group = c.benchmark_group("fake_ingest");
    let client = PostLoop::new(&server.url(), false);
    let body = ingest_body(&[sample_event()]);
    group.throughput(Throughput::Elements(1));
    group.bench_with_input(BenchmarkId::new("ours_duplicates", 1), &body, |b, body| {
        b.iter(|| client.post_body(body).expect("post a batch"));
    });
    group.finish();
    server.shutdown();
}

fn ours_data_dir(c: &mut Criterion) {
    if !selected("fake_ingest/ours_data_dir") {
        return;
    }
    let dir = temp_dir("fake-ingest");
    let server = fake_ingest::Server::start_blocking(fake_ingest::Config {
        data_dir: Some(dir.path().to_owned()),
        ..fake_ingest::Config::default()
    })
    .expect("start fake-ingest");
    each_batch(c, "ours_data_dir", &server.url());
    server.shutdown();
}

fn peer_sqlite_wal(c: &mut Criterion) {
    for (name, synchronous) in [("full", Synchronous::Full), ("normal", Synchronous::Normal)] {
        let id = format!("peer_sqlite_wal/{name}");
        if !selected(&format!("fake_ingest/{id}")) {
            continue;
        }
        let dir = temp_dir("fake-ingest-sqlite");
        let store = SqliteIngest::open(&dir.path().join("events.db"), synchronous)
            .expect("open the SQLite database");
        let server = store.serve().expect("start the SQLite ingest server");
        each_batch(c, &id, &server.endpoint());
    }
}

fn floor_bare_axum(c: &mut Criterion) {
    let server = BareAxumServer::start().expect("start the bare axum server");
    each_batch(c, "floor_bare_axum", &server.endpoint());
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
    targets = start, memory_per_event, memory_per_event_data_dir, ours, ours_data_dir, peer_sqlite_wal, floor_bare_axum, end
}
criterion_main!(benches);
