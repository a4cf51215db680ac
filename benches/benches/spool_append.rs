//! Group `spool_append`: appending events durably or not, ours beside the floor and the peer designs.
//!
//! Every implementation stamps and serializes the same sample event (a UUID v7, a timestamp, `serde_json`), so the
//! figures include serialization. One iteration appends one batch; throughput is in events.
//!
//! - `ours_spool/{never,group_commit,always}/{1,50,100,1000}`: flush-core's spool, per sync policy, with
//!   `Spool::append` (every batch reaches the kernel before it returns).
//! - `ours_spool_write_behind/never/{1,50,1000}`: `Spool::append_buffered`, batches collected in the spool's 64 KiB
//!   write-behind buffer (like for like with `floor_framed/no_fsync`).
//! - `floor_framed/{no_fsync,write_per_batch,fsync_per_batch}/{1,50,100,1000}`: serialize + frame + buffered
//!   write to one file (64 KiB buffer); `no_fsync` leaves a batch in the buffer (the floor), `write_per_batch`
//!   hands every batch to the kernel as our spool does for every append (like for like), `fsync_per_batch` syncs it.
//! - `peer_json_files/{no_fsync,fsync}/1`: one JSON file per event (as a CLI that writes each event to its own file does), create, write,
//!   close.
//! - `peer_sqlite_wal/{autocommit,autocommit_full,tx}/{1,50}`: SQLite in WAL mode, one row per event.
//!
//! Our spool gets a size budget large enough that retention never runs during a sample, and its records are
//! serialized into reused buffers, as the floor's are.
//!
//! Every sample starts from a fresh temporary directory (so files do not grow without bound and the JSON-files peer
//! never lists a huge directory), built and removed outside the timing.

mod common;

use std::hint::black_box;
use std::time::Duration;

use benches::floors::framed_file::{BatchEnd, FramedFile};
use benches::flush::bench_spool_config;
use benches::peers::json_files::JsonFilesPeer;
use benches::peers::sqlite_wal::{SqliteWalPeer, Synchronous};
use benches::sample::{SampleEvent, sample_event};
use benches::util::{print_load, temp_dir};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flush_core::spool::{Spool, SyncPolicy};
use tempfile::TempDir;

/// Batch sizes appended without fsync.
const BATCHES: [usize; 3] = [1, 50, 1000];
/// Batch sizes appended with an fsync per batch (100: the group-commit target, at least 30× one fsync per event).
const DURABLE_BATCHES: [usize; 4] = [1, 50, 100, 1000];

/// The group-commit interval measured (the spool's default).
const GROUP_COMMIT: Duration = Duration::from_millis(200);

/// How a benchmark hands batches to the spool.
#[derive(Clone, Copy)]
enum Append {
    /// `Spool::append`: one `write` per batch.
    Eager,
    /// `Spool::append_buffered`: through the write-behind buffer.
    WriteBehind,
}

/// A spool in a fresh temporary directory, and reusable serialization buffers for one batch.
struct OurSpool {
    spool: Spool,
    records: Vec<Vec<u8>>,
    append: Append,
    _dir: TempDir,
}

impl OurSpool {
    fn open(sync: SyncPolicy, append: Append, batch: usize) -> Self {
        let dir = temp_dir("spool");
        // The size budget is raised so that no sample ever hits retention: this group measures appending.
        let config = bench_spool_config(&dir.path().join("spool"), sync);
        let spool = Spool::open(config).expect("open the spool");
        Self {
            spool,
            records: vec![Vec::with_capacity(512); batch],
            append,
            _dir: dir,
        }
    }

    /// Stamps and serializes the batch (into reused buffers, as the floor does) and appends it.
    fn append(&mut self, events: &[SampleEvent]) {
        for (record, event) in self.records.iter_mut().zip(events) {
            record.clear();
            event.stamp_and_serialize_into(record);
        }
        match self.append {
            Append::Eager => self.spool.append(&self.records),
            Append::WriteBehind => self.spool.append_buffered(&self.records),
        }
        .expect("append to the spool");
    }
}

fn ours_spool(c: &mut Criterion) {
    let mut group = c.benchmark_group("spool_append");
    for (name, sync, append, batches) in [
        (
            "ours_spool/never",
            SyncPolicy::Never,
            Append::Eager,
            &BATCHES[..],
        ),
        (
            "ours_spool_write_behind/never",
            SyncPolicy::Never,
            Append::WriteBehind,
            &BATCHES[..],
        ),
        (
            "ours_spool/group_commit_200ms",
            SyncPolicy::GroupCommit(GROUP_COMMIT),
            Append::Eager,
            &BATCHES[..],
        ),
        (
            "ours_spool/always",
            SyncPolicy::Always,
            Append::Eager,
            &DURABLE_BATCHES[..],
        ),
    ] {
        for &batch in batches {
            let events = vec![sample_event(); batch];
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::new(name, batch), &events, |b, events| {
                common::iter_fresh(
                    b,
                    || OurSpool::open(sync, append, batch),
                    |spool| spool.append(events),
                );
            });
        }
    }
    group.finish();
}

fn floor_framed(c: &mut Criterion) {
    let mut group = c.benchmark_group("spool_append");
    for (name, batch_end, batches) in [
        ("floor_framed/no_fsync", BatchEnd::Buffered, &BATCHES[..]),
        (
            "floor_framed/write_per_batch",
            BatchEnd::Write,
            &BATCHES[..],
        ),
        (
            "floor_framed/fsync_per_batch",
            BatchEnd::Fsync,
            &DURABLE_BATCHES[..],
        ),
    ] {
        for &batch in batches {
            let events = vec![sample_event(); batch];
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::new(name, batch), &events, |b, events| {
                common::iter_fresh(
                    b,
                    || {
                        let dir = temp_dir("framed");
                        let file = FramedFile::create(&dir.path().join("log"), batch_end)
                            .expect("create the framed file");
                        (file, dir)
                    },
                    |(file, _dir)| {
                        black_box(
                            file.append_batch(events)
                                .expect("append to the framed file"),
                        );
                    },
                );
            });
        }
    }
    group.finish();
}

fn peer_json_files(c: &mut Criterion) {
    let mut group = c.benchmark_group("spool_append");
    group.throughput(Throughput::Elements(1));
    for (name, fsync) in [
        ("peer_json_files/no_fsync", false),
        ("peer_json_files/fsync", true),
    ] {
        let event = sample_event();
        group.bench_with_input(BenchmarkId::new(name, 1), &event, |b, event| {
            common::iter_fresh(
                b,
                || {
                    let dir = temp_dir("json-files");
                    (JsonFilesPeer::new(dir.path(), fsync), dir)
                },
                |(peer, _dir): &mut (JsonFilesPeer, TempDir)| {
                    black_box(peer.write(event).expect("write a JSON file"));
                },
            );
        });
    }
    group.finish();
}

fn peer_sqlite_wal(c: &mut Criterion) {
    let mut group = c.benchmark_group("spool_append");
    let open = |synchronous| {
        move || {
            let dir = temp_dir("sqlite");
            let peer = SqliteWalPeer::open(&dir.path().join("events.db"), synchronous)
                .expect("open SQLite");
            (peer, dir)
        }
    };
    let event = sample_event();
    group.throughput(Throughput::Elements(1));
    for (name, synchronous) in [
        ("peer_sqlite_wal/autocommit", Synchronous::Normal),
        ("peer_sqlite_wal/autocommit_full", Synchronous::Full),
    ] {
        group.bench_with_input(BenchmarkId::new(name, 1), &event, |b, event| {
            common::iter_fresh(b, open(synchronous), |(peer, _dir)| {
                peer.insert_one(event).expect("insert a row")
            });
        });
    }
    let batch: Vec<SampleEvent> = vec![sample_event(); 50];
    group.throughput(Throughput::Elements(50));
    group.bench_with_input(
        BenchmarkId::new("peer_sqlite_wal/tx", 50),
        &batch,
        |b, batch| {
            common::iter_fresh(b, open(Synchronous::Normal), |(peer, _dir)| {
                peer.insert_batch(batch)
                    .expect("insert a transaction of rows");
            });
        },
    );
    group.finish();
}

fn start(_: &mut Criterion) {
    print_load("spool_append start");
    println!(
        "EVENT wire_bytes={}",
        sample_event().stamp_and_serialize().len()
    );
}

fn end(_: &mut Criterion) {
    print_load("spool_append end");
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = start, ours_spool, floor_framed, peer_json_files, peer_sqlite_wal, end
}
criterion_main!(benches);
