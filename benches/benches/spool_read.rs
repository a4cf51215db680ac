//! Group `spool_read`: handing spooled events out and acknowledging them, and opening a spool with a large backlog.
//!
//! One iteration drains a backlog built (untimed) just before it, in batches of [`BATCH`] events, acknowledging each
//! batch; throughput is in events handed out and acknowledged.
//!
//! - `ours_spool/read_ack/{never,group_commit_200ms}`: `try_deliver`, then `next_batch(50)` and `ack` until the
//!   backlog is drained. The first `ack` writes the acknowledgement file whole (write, rename), every later one
//!   rewrites the slots of the segments it moves in place; with `group_commit_200ms` (the reporter's default) they
//!   are fsynced at most once per 200 ms, with `never` never.
//! - `floor_framed/read`: read one framed file sequentially and check every CRC (no acknowledgements at all).
//! - `peer_sqlite_wal/read_delete`: `SELECT` the oldest rows, then `DELETE` them (the SQLite WAL peer).
//! - `peer_json_files/read_delete`: list, parse, sort, then delete each file (the one-file-per-event peer). Its backlog is smaller
//!   (every read lists and parses the whole directory, so the cost grows with the square of the backlog).
//!
//! Opening a large backlog (throughput in bytes; 100 MiB, 2 MiB in smoke mode), with the page cache warm:
//!
//! - `ours_spool/open`: `Spool::open` on a directory whose writer is gone: the recovery scan of every segment.
//! - `ours_spool/open_first_batch`: the same, then `try_deliver` and the first batch (time to first delivery).
//! - `floor_framed/scan`: read the same bytes as one framed file and check every CRC.

mod common;

use std::hint::black_box;
use std::time::Duration;

use benches::floors::framed_file::{BatchEnd, FramedFile, read_frames};
use benches::flush::{bench_spool_config, fill_spool};
use benches::peers::json_files::JsonFilesPeer;
use benches::peers::sqlite_wal::{SqliteWalPeer, Synchronous};
use benches::sample::sample_event;
use benches::util::{print_load, selected, size, temp_dir};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flush_core::spool::{Spool, SyncPolicy};
use tempfile::TempDir;

/// Events per batch handed out (flush-core's default batch size).
const BATCH: usize = 50;

fn backlog() -> usize {
    size(10_000, 500)
}

fn json_backlog() -> usize {
    size(1_000, 100)
}

/// The largest batch size in bytes asked of the reader (flush-core's default `max_batch_bytes`).
const BATCH_BYTES: usize = 512 << 10;

fn ours_read_ack(c: &mut Criterion) {
    let mut group = c.benchmark_group("spool_read");
    let events = backlog();
    group.throughput(Throughput::Elements(events as u64));
    for (name, sync) in [
        ("ours_spool/read_ack/never", SyncPolicy::Never),
        (
            "ours_spool/read_ack/group_commit_200ms",
            SyncPolicy::GroupCommit(Duration::from_millis(200)),
        ),
    ] {
        group.bench_function(BenchmarkId::new(name, events), |b| {
            common::iter_each_fresh(
                b,
                || {
                    let dir = temp_dir("spool-read");
                    let config = bench_spool_config(&dir.path().join("spool"), sync);
                    let mut spool = Spool::open(config).expect("open the spool");
                    fill_spool(&mut spool, events);
                    spool.sync().expect("sync the backlog");
                    (spool, dir)
                },
                |(spool, _dir): &mut (Spool, TempDir)| {
                    let mut reader = spool
                        .try_deliver()
                        .expect("take the delivery lock")
                        .expect("no other reader");
                    let mut handed_out = 0;
                    while let Some(batch) =
                        reader.next_batch(BATCH, BATCH_BYTES).expect("read a batch")
                    {
                        handed_out += batch.records.len();
                        reader.ack(&batch.position).expect("acknowledge a batch");
                        black_box(batch.records);
                    }
                    assert_eq!(handed_out, events, "the spool hands out the whole backlog");
                },
            );
        });
    }
    group.finish();
}

/// Opening a spool with a large backlog left by a writer that is gone (the recovery scan), warm page cache.
fn ours_open_backlog(c: &mut Criterion) {
    let ids = [
        "spool_read/ours_spool/open/",
        "spool_read/ours_spool/open_first_batch/",
        "spool_read/floor_framed/scan/",
    ];
    if !ids.iter().any(|id| selected(id)) {
        return;
    }
    let mut group = c.benchmark_group("spool_read");
    group.sample_size(10);
    let backlog_mib = size(100, 2);
    let dir = temp_dir("spool-open");
    let config = bench_spool_config(&dir.path().join("spool"), SyncPolicy::Never);
    let backlog_bytes = {
        let mut spool = Spool::open(config.clone()).expect("open the spool");
        let event_bytes = sample_event().stamp_and_serialize().len() + 16;
        fill_spool(&mut spool, (backlog_mib << 20) / event_bytes);
        spool.stats().pending_bytes
    };
    // The same bytes as one framed file: the floor of a recovery scan (read everything, check every CRC).
    let floor_path = dir.path().join("floor.log");
    {
        let mut file =
            FramedFile::create(&floor_path, BatchEnd::Buffered).expect("create the framed file");
        let events = (backlog_mib << 20) / (sample_event().stamp_and_serialize().len() + 8);
        for _ in 0..events / 1000 {
            file.append_batch(&vec![sample_event(); 1000])
                .expect("append the floor backlog");
        }
        file.sync().expect("flush the floor backlog");
    }
    group.throughput(Throughput::Bytes(backlog_bytes));
    group.bench_function(
        BenchmarkId::new("ours_spool/open", format!("{backlog_mib}MiB")),
        |b| {
            b.iter(|| {
                let spool = Spool::open(config.clone()).expect("open the spool");
                black_box(spool.stats().pending_events)
            });
        },
    );
    group.bench_function(
        BenchmarkId::new("ours_spool/open_first_batch", format!("{backlog_mib}MiB")),
        |b| {
            b.iter(|| {
                let spool = Spool::open(config.clone()).expect("open the spool");
                let mut reader = spool
                    .try_deliver()
                    .expect("take the delivery lock")
                    .expect("no other reader");
                black_box(
                    reader
                        .next_batch(BATCH, BATCH_BYTES)
                        .expect("read a batch")
                        .map(|batch| batch.records.len()),
                )
            });
        },
    );
    group.bench_function(
        BenchmarkId::new("floor_framed/scan", format!("{backlog_mib}MiB")),
        |b| {
            b.iter(|| {
                read_frames(&floor_path, |payload| {
                    black_box(payload);
                })
                .expect("scan the framed file")
            });
        },
    );
    group.finish();
}

fn floor_framed(c: &mut Criterion) {
    let mut group = c.benchmark_group("spool_read");
    let events = backlog();
    group.throughput(Throughput::Elements(events as u64));
    group.bench_function(BenchmarkId::new("floor_framed/read", events), |b| {
        common::iter_each_fresh(
            b,
            || {
                let dir = temp_dir("framed-read");
                let path = dir.path().join("log");
                let mut file =
                    FramedFile::create(&path, BatchEnd::Buffered).expect("create the framed file");
                file.append_batch(&vec![sample_event(); events])
                    .expect("append the backlog");
                file.sync().expect("flush the backlog");
                (path, dir)
            },
            |(path, _dir)| {
                let read = read_frames(path, |payload| {
                    black_box(payload);
                })
                .expect("read the framed file");
                assert_eq!(read, events as u64, "the floor reads back every record");
            },
        );
    });
    group.finish();
}

fn peer_sqlite(c: &mut Criterion) {
    let mut group = c.benchmark_group("spool_read");
    let events = backlog();
    group.throughput(Throughput::Elements(events as u64));
    group.bench_function(
        BenchmarkId::new("peer_sqlite_wal/read_delete", events),
        |b| {
            common::iter_each_fresh(
                b,
                || {
                    let dir = temp_dir("sqlite-read");
                    let mut peer =
                        SqliteWalPeer::open(&dir.path().join("events.db"), Synchronous::Normal)
                            .expect("open SQLite");
                    for _ in 0..events / BATCH {
                        peer.insert_batch(&vec![sample_event(); BATCH])
                            .expect("insert the backlog");
                    }
                    (peer, dir)
                },
                |(peer, _dir)| loop {
                    let rows = peer.read_batch(BATCH).expect("read rows");
                    let Some(last) = rows.last() else { break };
                    peer.delete_through(last.seq).expect("delete rows");
                    black_box(rows);
                },
            );
        },
    );
    group.finish();
}

fn peer_json_files(c: &mut Criterion) {
    let mut group = c.benchmark_group("spool_read");
    let events = json_backlog();
    group.throughput(Throughput::Elements(events as u64));
    group.bench_function(
        BenchmarkId::new("peer_json_files/read_delete", events),
        |b| {
            common::iter_each_fresh(
                b,
                || {
                    let dir = temp_dir("json-read");
                    let peer = JsonFilesPeer::new(dir.path(), false);
                    let event = sample_event();
                    for _ in 0..events {
                        peer.write(&event).expect("write the backlog");
                    }
                    (peer, dir)
                },
                |(peer, _dir)| loop {
                    let files = peer.read_unflushed(BATCH).expect("read files");
                    if files.is_empty() {
                        break;
                    }
                    for file in &files {
                        peer.mark_flushed(file).expect("delete a file");
                    }
                },
            );
        },
    );
    group.finish();
}

fn start(_: &mut Criterion) {
    print_load("spool_read start");
}

fn end(_: &mut Criterion) {
    print_load("spool_read end");
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = start, ours_read_ack, floor_framed, peer_sqlite, peer_json_files, ours_open_backlog, end
}
criterion_main!(benches);
