//! Disk faults under a running reporter, injected through the spool's file-system seam (the worker threads go
//! through it too): a full disk, `EIO` on a write and on an fsync, a directory made read-only or removed, an
//! acknowledgement file that cannot be written. Every event is delivered or counted by reason, `record()` never
//! blocks, nothing spins (operations are counted through the seam), and the pipeline recovers once the fault clears.

use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use flush_core::spool::SyncPolicy;
use flush_core::{Config, Event, FlushOutcome, QueueLimits, Reporter, Stats};

use super::{batch_size, fast, ingest_url, server, start, wait_until};
use crate::faulty_fs::{FaultyFs, Op};

const FLUSH: Duration = Duration::from_secs(20);
/// What the tests' configuration polls at (see `fast`).
const POLL: Duration = Duration::from_millis(5);

/// A reporter on a spool in `dir` whose file operations go through `fs`.
fn reporter(server: &fake_ingest::Server, dir: &Path, fs: &FaultyFs, sync: SyncPolicy) -> Reporter {
    start(
        fast(Config::builder(ingest_url(server)).spool(fs.config(dir)))
            .sync_policy(sync)
            .distinct_id("disk-faults")
            .batch_size(batch_size(10)),
    )
}

fn record(reporter: &Reporter, range: std::ops::Range<u32>) {
    range.for_each(|n| reporter.record(Event::new("e").with("n", n)));
}

/// Asserts the identity, and that nothing is unaccounted for.
fn assert_balanced(stats: &Stats) {
    assert!(stats.identity_holds(), "{stats:?}");
}

/// The number of times something retried may grow with the time that passed, never faster than once per poll
/// interval (plus a few for the edges): a busy loop would make thousands. A slow machine only makes fewer.
fn assert_no_busy_loop(attempts: u64, since: Instant) {
    let allowed = (since.elapsed().as_millis() / POLL.as_millis()) as u64 + 5;
    assert!(
        attempts <= allowed,
        "{attempts} attempts in {:?}: a busy loop",
        since.elapsed()
    );
}

#[test]
fn a_failing_ack_write_is_not_counted_as_acknowledged_and_recovers() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::default();
    let reporter = reporter(&server, dir.path(), &fs, SyncPolicy::Always);
    fs.fail(Op::Create, "acks", ErrorKind::StorageFull);

    let started = Instant::now();
    record(&reporter, 0..40);
    let outcome = reporter.flush(Duration::from_millis(500));

    assert_eq!(outcome, FlushOutcome::TimedOut, "the acks are not recorded");
    assert!(wait_until(Duration::from_secs(10), || server
        .stats()
        .events_unique
        >= 10));
    let stats = reporter.stats();
    assert_eq!(stats.acknowledged, 0, "{stats:?}");
    assert!(stats.acks.failed_writes >= 1, "{stats:?}");
    assert!(stats.acks.delivered_not_recorded >= 1, "{stats:?}");
    assert_eq!(stats.pending.in_store, 40, "{stats:?}");
    let ack_error = stats.acks.error.clone().expect("the ack error is shown");
    assert!(ack_error.contains("ack"), "{ack_error}");
    assert_balanced(&stats);
    assert_no_busy_loop(fs.failures(Op::Create), started);

    // Another error comes along: the ack error stays where it is.
    fs.fail(Op::Write, ".seg", ErrorKind::StorageFull);
    record(&reporter, 40..45);
    let _ = reporter.checkpoint();
    let stats = reporter.stats();
    assert!(stats.last_error.unwrap().contains("append"));
    assert_eq!(stats.acks.error.as_deref(), Some(ack_error.as_str()));
    assert_eq!(stats.dropped.store_error, 5);

    fs.heal();
    record(&reporter, 45..50);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    let stats = reporter.stats();
    assert_eq!(
        (
            stats.acknowledged,
            stats.acks.delivered_not_recorded,
            stats.pending.total()
        ),
        (45, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.acks.error, None);
    assert_balanced(&stats);
    assert_eq!(server.stats().events_unique, 45);
    server.shutdown();
}

#[test]
fn an_acks_file_replaced_by_a_directory_keeps_events_pending_until_it_is_fixed() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::default();
    let reporter = reporter(&server, dir.path(), &fs, SyncPolicy::Always);
    std::fs::create_dir(dir.path().join("acks")).unwrap();

    record(&reporter, 0..20);
    assert_eq!(
        reporter.flush(Duration::from_millis(300)),
        FlushOutcome::TimedOut
    );
    let stats = reporter.stats();
    assert_eq!(
        (stats.acknowledged, stats.pending.in_store),
        (0, 20),
        "{stats:?}"
    );
    assert!(stats.acks.error.is_some());
    assert_balanced(&stats);

    std::fs::remove_dir(dir.path().join("acks")).unwrap();
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    let stats = reporter.stats();
    assert_eq!((stats.acknowledged, stats.pending.total()), (20, 0));
    assert_balanced(&stats);
    let _ = reporter.shutdown(Duration::from_secs(5));

    // The next run has nothing to resend.
    let again = reporter_again(&server, dir.path());
    assert_eq!(again.stats().recovered, 0);
    let _ = again.shutdown(Duration::from_secs(5));
    assert_eq!(server.stats().events_unique, 20);
    server.shutdown();
}

fn reporter_again(server: &fake_ingest::Server, dir: &Path) -> Reporter {
    start(fast(Config::builder(ingest_url(server)).spool_dir(dir)).distinct_id("disk-faults"))
}

#[test]
fn a_full_disk_drops_what_cannot_be_stored_counts_it_and_recovers() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::default();
    let reporter = reporter(&server, dir.path(), &fs, SyncPolicy::Never);
    record(&reporter, 0..10);
    reporter.checkpoint().unwrap();

    fs.fail(Op::Write, ".seg", ErrorKind::StorageFull);
    fs.fail(Op::Create, ".seg", ErrorKind::StorageFull);
    record(&reporter, 10..30);
    let _ = reporter.checkpoint();
    let stats = reporter.stats();
    assert_eq!(stats.dropped.store_error, 20, "{stats:?}");
    assert_balanced(&stats);

    fs.heal();
    record(&reporter, 30..35);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    let stats = reporter.stats();
    assert_eq!(
        (
            stats.acknowledged,
            stats.dropped.total(),
            stats.pending.total()
        ),
        (15, 20, 0),
        "{stats:?}"
    );
    assert_balanced(&stats);
    assert_eq!(server.stats().events_unique, 15);
    server.shutdown();
}

#[test]
fn eio_on_fsync_drops_the_batch_counts_it_and_recovers() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::default();
    let reporter = reporter(&server, dir.path(), &fs, SyncPolicy::Always);

    fs.fail(Op::SyncData, ".seg", ErrorKind::Other);
    record(&reporter, 0..12);
    let _ = reporter.checkpoint();
    let stats = reporter.stats();
    assert_eq!(stats.dropped.store_error, 12, "{stats:?}");
    assert!(stats.last_error.is_some());
    assert_balanced(&stats);

    fs.heal();
    record(&reporter, 12..20);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    let stats = reporter.stats();
    assert_eq!((stats.acknowledged, stats.pending.total()), (8, 0));
    assert_balanced(&stats);
    server.shutdown();
}

#[test]
fn eio_on_write_drops_the_batch_and_the_next_one_goes_through() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::default();
    let reporter = reporter(&server, dir.path(), &fs, SyncPolicy::Never);

    fs.fail(Op::Write, ".seg", ErrorKind::Other);
    record(&reporter, 0..7);
    let _ = reporter.checkpoint();
    fs.heal();
    record(&reporter, 7..10);

    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    let stats = reporter.stats();
    assert_eq!(
        (stats.acknowledged, stats.dropped.store_error),
        (3, 7),
        "{stats:?}"
    );
    assert_balanced(&stats);
    server.shutdown();
}

#[test]
fn record_never_blocks_on_a_hung_disk() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::default();
    let queue = QueueLimits {
        max_events: std::num::NonZeroUsize::new(100).unwrap(),
        ..QueueLimits::default()
    };
    let reporter = start(
        fast(Config::builder(ingest_url(&server)).spool(fs.config(dir.path())))
            .distinct_id("hung-disk")
            .queue_limits(queue),
    );
    fs.hold_writes();
    let writes_before = fs.count(Op::Write);

    // The spooler is stuck in a write of the first batch; record() goes on, and drops what does not fit.
    record(&reporter, 0..1);
    assert!(wait_until(Duration::from_secs(10), || fs.count(Op::Write)
        > writes_before));
    record(&reporter, 1..1000);
    let stats = reporter.stats();
    assert_eq!(stats.recorded, 1000);
    assert!(stats.dropped.total() >= 1000 - 1 - 100, "{stats:?}");

    fs.heal();
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    let stats = reporter.stats();
    assert_eq!(stats.pending.total(), 0);
    assert_eq!(stats.acknowledged + stats.dropped.total(), 1000);
    assert_balanced(&stats);
    server.shutdown();
}

#[test]
fn a_directory_made_read_only_while_running_loses_nothing_silently_and_recovers() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::default();
    let reporter = reporter(&server, dir.path(), &fs, SyncPolicy::Always);
    record(&reporter, 0..10);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);

    // A read-only remount: no file can be created, renamed or removed, and the open acknowledgement file (written
    // in place) cannot be written either.
    fs.make_read_only();
    fs.fail(Op::Write, "acks", ErrorKind::PermissionDenied);
    let started = Instant::now();
    record(&reporter, 10..40);
    assert_eq!(
        reporter.flush(Duration::from_millis(300)),
        FlushOutcome::TimedOut
    );
    let stats = reporter.stats();
    // The open segment stays writable, so the events are stored and sent, but their acknowledgement cannot be
    // recorded: they stay pending.
    assert_eq!(stats.acknowledged, 10, "{stats:?}");
    assert!(stats.acks.error.is_some(), "{stats:?}");
    assert_balanced(&stats);
    assert_no_busy_loop(fs.failures(Op::Create), started);

    fs.heal();
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    let stats = reporter.stats();
    assert_eq!(
        (
            stats.acknowledged,
            stats.pending.total(),
            stats.acks.error.clone()
        ),
        (40, 0, None),
        "{stats:?}"
    );
    assert_balanced(&stats);
    assert_eq!(server.stats().events_unique, 40);
    server.shutdown();
}

#[test]
fn a_directory_removed_while_running_is_counted_and_re_created() {
    let server = server(r#"[{"then": {"status": 503}}]"#);
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let fs = FaultyFs::default();
    let reporter = reporter(&server, &spool_dir, &fs, SyncPolicy::Always);
    record(&reporter, 0..10);
    reporter.checkpoint().unwrap();

    // The workers may create a file while it is being removed (`rm -rf` meets the same race): try again, boundedly.
    let removed = (0..100).any(|_| match std::fs::remove_dir_all(&spool_dir) {
        Ok(()) => true,
        Err(error) if error.kind() == std::io::ErrorKind::DirectoryNotEmpty => false,
        Err(error) => panic!("cannot remove the spool directory: {error}"),
    });
    assert!(removed, "the spool directory could not be removed");
    record(&reporter, 10..20);
    let _ = reporter.checkpoint();
    server.set_faults(fake_ingest::FaultPlan::none());
    record(&reporter, 20..25);
    reporter.checkpoint().unwrap();
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);

    // What the removed directory held is lost, except a batch that was already on the wire; what came after went
    // to the re-created directory and was delivered.
    let stats = reporter.stats();
    assert_balanced(&stats);
    assert_eq!(stats.pending.total(), 0, "{stats:?}");
    assert_eq!(stats.acknowledged + stats.dropped.corrupt, 25, "{stats:?}");
    assert!(stats.dropped.corrupt >= 10, "{stats:?}");
    assert!(spool_dir.is_dir(), "the directory is re-created");
    assert_eq!(server.stats().events_unique, stats.acknowledged);
    let delivered: Vec<u64> = server
        .events()
        .iter()
        .map(|event| event.event.properties["n"].as_u64().unwrap())
        .collect();
    assert!((20..25).all(|n| delivered.contains(&n)), "{delivered:?}");
    server.shutdown();
}

#[test]
fn a_checkpoint_does_not_wait_for_the_fsync_of_an_acknowledgement() {
    let server = server("[]");
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::default();
    let reporter = reporter(&server, dir.path(), &fs, SyncPolicy::Always);
    // The first acknowledgement writes the acks file whole; later ones write it in place and fsync it.
    record(&reporter, 0..10);
    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    fs.hold_syncs("acks");
    record(&reporter, 10..20);
    assert!(
        wait_until(Duration::from_secs(30), || fs.syncs_waiting() > 0),
        "the sender never fsynced an acknowledgement"
    );

    // The sender is inside the fsync of an acknowledgement: recording and checkpointing (append, fsync of the
    // segment) go on without waiting for it.
    let (done, finished) = std::sync::mpsc::channel();
    let recorder = reporter.clone();
    let checkpointing = std::thread::spawn(move || {
        record(&recorder, 20..21);
        let _ = done.send(recorder.checkpoint().is_ok());
    });
    let during = finished.recv_timeout(Duration::from_secs(30));
    fs.heal();
    checkpointing.join().unwrap();
    assert_eq!(
        during,
        Ok(true),
        "a checkpoint waited for the fsync of an acknowledgement"
    );

    assert_eq!(reporter.flush(FLUSH), FlushOutcome::Acknowledged);
    let stats = reporter.stats();
    assert_eq!(
        (stats.acknowledged, stats.pending.total()),
        (21, 0),
        "{stats:?}"
    );
    assert_balanced(&stats);
    server.shutdown();
}
