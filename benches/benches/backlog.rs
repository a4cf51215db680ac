//! Group `backlog`: the spool's cost per delivered batch as the backlog grows, from 1 000 to 10 000 000 events.
//!
//! Each sample starts from a spool holding the backlog (built untimed once per size, in segments of 2 MiB, so
//! 10 000 000 events fill more than 1 000 of them). One iteration is one steady-state cycle of a delivering process
//! whose backlog neither grows nor shrinks: append [`BATCH`] new events (serialized once, outside the timing), hand out the oldest
//! [`BATCH`] (`next_batch`), acknowledge them (`ack`, fsyncs group-committed every 200 ms, the reporter's default), and
//! read the statistics after each step (as the reporter does to publish its counts). Throughput is in events
//! delivered; the HTTP request, whose cost does not depend on the backlog, is left out, so the ratios show the
//! spool's growth alone.
//!
//! - `ours_spool/cycle/{1000,100000,1000000,10000000}` (smoke mode: 1 000 and 20 000).

mod common;

use std::time::Duration;

use benches::flush::{bench_spool_config, fill_spool};
use benches::sample::sample_event;
use benches::util::{print_load, selected, smoke_mode, temp_dir};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flush_core::spool::{Spool, SpoolReader, SyncPolicy};

/// Events per batch (flush-core's default batch size).
const BATCH: usize = 50;

/// The largest batch size in bytes asked of the reader (flush-core's default `max_batch_bytes`).
const BATCH_BYTES: usize = 512 << 10;

/// Segments of 2 MiB: 10 000 000 sample events take more than 1 000 of them.
const SEGMENT_BYTES: u64 = 2 << 20;

fn backlogs() -> Vec<usize> {
    if smoke_mode() {
        vec![1_000, 20_000]
    } else {
        vec![1_000, 100_000, 1_000_000, 10_000_000]
    }
}

fn cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("backlog");
    group.throughput(Throughput::Elements(BATCH as u64));
    let event = sample_event();
    for backlog in backlogs() {
        let id = BenchmarkId::new("ours_spool/cycle", backlog);
        if !selected(&format!("backlog/ours_spool/cycle/{backlog}")) {
            continue;
        }
        let dir = temp_dir("backlog");
        let mut config = bench_spool_config(
            &dir.path().join("spool"),
            SyncPolicy::GroupCommit(Duration::from_millis(200)),
        );
        config.max_segment_bytes = SEGMENT_BYTES;
        let mut spool = Spool::open(config).expect("open the spool");
        fill_spool(&mut spool, backlog);
        spool.sync().expect("sync the backlog");
        let segments = spool.stats().segments;
        let mut reader: SpoolReader = spool
            .try_deliver()
            .expect("take the delivery lock")
            .expect("no other reader");
        // Serialized once: this group measures the spool, not serialization.
        let records: Vec<Vec<u8>> = (0..BATCH).map(|_| event.stamp_and_serialize()).collect();
        group.bench_function(id, |b| {
            b.iter(|| {
                spool.append(&records).expect("append");
                std::hint::black_box(spool.stats());
                let batch = reader
                    .next_batch(BATCH, BATCH_BYTES)
                    .expect("read a batch")
                    .expect("the backlog is never empty");
                std::hint::black_box(spool.stats());
                reader.ack(&batch.position).expect("acknowledge");
                std::hint::black_box(spool.stats());
            });
        });
        let stats = spool.stats();
        println!(
            "STATE backlog/ours_spool/cycle/{backlog} segments_at_start={segments} pending_at_end={} segments_at_end={}",
            stats.pending_events, stats.segments
        );
        drop(reader);
        drop(spool);
    }
    group.finish();
}

fn start(_: &mut Criterion) {
    print_load("backlog start");
}

fn end(_: &mut Criterion) {
    print_load("backlog end");
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = start, cycle, end
}
criterion_main!(benches);
