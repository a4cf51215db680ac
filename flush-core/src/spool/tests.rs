//! Unit tests of the spool as a whole (the byte layout is tested in `format`): framing through the public API,
//! rollover, acknowledgement persistence, retention, `keep_flushed`, fault injection, recovery, and a proptest model.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

/// Small segments (so rollover happens) and a small read-ahead (so refills happen), asked for explicitly.
fn config(dir: &Path) -> SpoolConfig {
    let mut config = SpoolConfig::new(dir);
    config.sync = SyncPolicy::Never;
    config.max_segment_bytes = 16 * 1024;
    config.read_ahead_bytes = 4096;
    config
}

/// The operation a planned fault applies to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Operation {
    Write,
    Sync,
    Create,
}

/// A file system that fails the next planned operations (a write first writes `written_first` bytes: a short
/// write), and is real otherwise.
#[derive(Debug, Default)]
struct PlannedFaults {
    plan: Mutex<Vec<(Operation, io::ErrorKind, usize)>>,
}

impl PlannedFaults {
    fn inject(&self, operation: Operation, kind: io::ErrorKind, written_first: usize) {
        self.plan
            .lock()
            .expect("plan")
            .push((operation, kind, written_first));
    }

    fn take(&self, operation: Operation) -> Option<(io::ErrorKind, usize)> {
        let mut plan = self.plan.lock().expect("plan");
        let position = plan.iter().position(|fault| fault.0 == operation)?;
        let (_, kind, written_first) = plan.remove(position);
        Some((kind, written_first))
    }
}

impl FileSystem for PlannedFaults {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<File> {
        if mode == OpenMode::CreateNew
            && let Some((kind, _)) = self.take(Operation::Create)
        {
            return Err(kind.into());
        }
        RealFileSystem.open(path, mode)
    }

    fn write_all_at(&self, file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
        match self.take(Operation::Write) {
            Some((kind, written_first)) => {
                file.write_all_at(&bytes[..written_first.min(bytes.len())], offset)?;
                Err(kind.into())
            }
            None => RealFileSystem.write_all_at(file, bytes, offset),
        }
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        match self.take(Operation::Sync) {
            Some((kind, _)) => Err(kind.into()),
            None => RealFileSystem.sync_data(file),
        }
    }
}

/// A configuration whose file operations go through `faults`.
fn faulty_config(dir: &Path, faults: &Arc<PlannedFaults>) -> SpoolConfig {
    config(dir).with_file_system(Arc::clone(faults) as Arc<dyn FileSystem>)
}

fn records(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range
        .map(|number| format!("record-{number:06}").into_bytes())
        .collect()
}

/// Delivers and acknowledges everything available; returns the records in the order handed out.
fn drain(spool: &Spool) -> Vec<Vec<u8>> {
    let mut reader = spool
        .try_deliver()
        .expect("try_deliver")
        .expect("the delivery lock is free");
    let mut out = Vec::new();
    while let Some(batch) = reader.next_batch(7, 1 << 20).expect("next_batch") {
        out.extend(batch.records);
        reader.ack(&batch.position).expect("ack");
    }
    out
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    files.sort();
    files
}

fn assert_identity(stats: &SpoolStats, recorded: u64) {
    assert_eq!(
        recorded + stats.recovered_events,
        stats.acknowledged_events
            + stats.dropped_for_size
            + stats.dropped_for_age
            + stats.corrupt_records
            + stats.settled_elsewhere
            + stats.dropped_unwritten
            + stats.pending_events
            + stats.buffered_events,
        "the accounting identity must balance: {stats:?}"
    );
}

#[test]
fn appended_records_are_delivered_in_order_and_acknowledged_ones_never_again() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    spool.append(&records(0..50)).expect("append");
    assert_eq!(spool.stats().pending_events, 50);

    let delivered = drain(&spool);

    assert_eq!(delivered, records(0..50));
    let stats = spool.stats();
    assert_eq!((stats.pending_events, stats.acknowledged_events), (0, 50));
    assert_identity(&stats, 50);
    drop(spool);
    let reopened = Spool::open(config(temporary.path())).expect("reopen");
    assert_eq!(reopened.stats().pending_events, 0);
    assert!(drain(&reopened).is_empty());
}

#[test]
fn unacknowledged_records_come_back_after_a_rewind_and_after_a_reopen() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    spool.append(&records(0..10)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    let first = reader.next_batch(4, 1 << 20).expect("next").expect("batch");
    reader.ack(&first.position).expect("ack");
    let second = reader.next_batch(4, 1 << 20).expect("next").expect("batch");
    assert_eq!(second.records, records(4..8));

    reader.rewind();
    let again = reader.next_batch(4, 1 << 20).expect("next").expect("batch");
    assert_eq!(again.records, records(4..8));
    drop(reader);
    drop(spool);

    let reopened = Spool::open(config(temporary.path())).expect("reopen");
    assert_eq!(reopened.stats().recovered_events, 6);
    assert_eq!(drain(&reopened), records(4..10));
}

#[test]
fn an_old_position_acknowledged_after_a_rewind_still_counts() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    spool.append(&records(0..6)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    let batch = reader.next_batch(3, 1 << 20).expect("next").expect("batch");
    reader.rewind();
    reader.ack(&batch.position).expect("ack");
    let rest = reader
        .next_batch(10, 1 << 20)
        .expect("next")
        .expect("batch");
    assert_eq!(rest.records, records(3..6));
    // The reader still holds the delivery lock.
    assert!(spool.try_deliver().expect("try_deliver").is_none());
}

#[test]
fn segments_roll_over_at_the_size_limit_and_settled_ones_are_deleted() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut config = config(temporary.path());
    config.max_segment_bytes = 1024;
    let mut spool = Spool::open(config).expect("open");
    for chunk in 0..20 {
        spool
            .append(&records(chunk * 10..chunk * 10 + 10))
            .expect("append");
    }
    let before = segment_files(temporary.path()).len();
    assert!(before > 5, "expected rollover, found {before} segments");
    assert_eq!(spool.stats().segments, before as u64);

    assert_eq!(drain(&spool), records(0..200));

    // Only the open segment stays.
    assert_eq!(segment_files(temporary.path()).len(), 1);
    assert_eq!(spool.stats().segments, 1);
}

#[test]
fn a_segment_acknowledged_while_open_is_removed_when_its_writer_rolls_over_while_delivering() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut config = config(temporary.path());
    config.max_segment_bytes = 1024;
    let mut spool = Spool::open(config).expect("open");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    let mut delivered = Vec::new();
    for chunk in 0..20 {
        spool
            .append(&records(chunk * 10..chunk * 10 + 10))
            .expect("append");
        // The reader keeps up: every segment is fully acknowledged while it is still the open one.
        while let Some(batch) = reader.next_batch(100, 1 << 20).expect("next_batch") {
            delivered.extend(batch.records);
            reader.ack(&batch.position).expect("ack");
        }
        assert_eq!(
            segment_files(temporary.path()).len(),
            1,
            "after chunk {chunk}"
        );
    }
    assert_eq!(delivered, records(0..200));
    assert_eq!(spool.stats().segments, 1);
}

#[test]
fn keep_flushed_moves_settled_segments_aside() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut config = config(temporary.path());
    config.max_segment_bytes = 512;
    config.keep_flushed = true;
    let mut spool = Spool::open(config).expect("open");
    for chunk in 0..10 {
        spool
            .append(&records(chunk * 5..chunk * 5 + 5))
            .expect("append");
    }
    assert_eq!(drain(&spool).len(), 50);
    let flushed = fs::read_dir(temporary.path().join("flushed"))
        .expect("flushed dir")
        .count();
    assert!(flushed >= 2, "expected kept segments, found {flushed}");
    assert_eq!(segment_files(temporary.path()).len(), 1);
}

#[test]
fn the_size_budget_drops_the_oldest_records_and_counts_them_exactly() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut config = config(temporary.path());
    config.max_segment_bytes = 1024;
    config.max_total_bytes = 4096;
    let mut spool = Spool::open(config).expect("open");
    for chunk in 0..40 {
        spool
            .append(&records(chunk * 5..chunk * 5 + 5))
            .expect("append");
    }
    let stats = spool.stats();
    assert!(stats.dropped_for_size > 0);
    let delivered = drain(&spool);
    let stats = spool.stats();
    assert_identity(&stats, 200);
    assert_eq!(delivered.len() as u64 + stats.dropped_for_size, 200);
    // What survives is the newest data, in order.
    assert_eq!(delivered, records(200 - delivered.len() as u32..200));
}

#[test]
fn records_older_than_max_age_are_dropped_and_counted() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut config = config(temporary.path());
    config.max_segment_bytes = 512;
    config.max_age = Duration::from_millis(20);
    let mut spool = Spool::open(config).expect("open");
    spool.append(&records(0..30)).expect("append");
    std::thread::sleep(Duration::from_millis(40));
    spool.append(&records(30..32)).expect("append");

    let delivered = drain(&spool);

    let stats = spool.stats();
    assert_eq!(delivered, records(30..32));
    assert_eq!(stats.dropped_for_age, 30);
    assert_identity(&stats, 32);
}

#[test]
fn the_directory_is_private_and_files_are_owner_only() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let dir = temporary.path().join("nested").join("spool");
    let mut spool = Spool::open(config(&dir)).expect("open");
    spool.append(&records(0..3)).expect("append");
    drain(&spool);
    assert_eq!(fs::metadata(&dir).expect("dir").mode() & 0o777, 0o700);
    for entry in fs::read_dir(&dir).expect("read_dir") {
        let metadata = entry.expect("entry").metadata().expect("metadata");
        if metadata.is_file() {
            assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        }
    }
}

#[test]
fn a_record_over_the_limit_rejects_the_whole_batch() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut config = config(temporary.path());
    config.max_record_bytes = 16;
    let mut spool = Spool::open(config).expect("open");
    let batch = vec![b"small".to_vec(), vec![b'x'; 17]];
    let error = spool.append(&batch).expect_err("too large");
    assert!(matches!(
        error,
        SpoolError::RecordTooLarge {
            index: 1,
            len: 17,
            max: 16
        }
    ));
    assert!(!error.is_retryable());
    assert_eq!(spool.stats().pending_events, 0);
}

#[test]
fn a_full_disk_during_a_write_keeps_nothing_of_the_batch_and_the_spool_goes_on() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(PlannedFaults::default());
    let mut spool = Spool::open(faulty_config(temporary.path(), &faults)).expect("open");
    spool.append(&records(0..3)).expect("append");
    faults.inject(Operation::Write, std::io::ErrorKind::StorageFull, 40);
    let error = spool.append(&records(3..6)).expect_err("disk full");
    assert!(matches!(error, SpoolError::DiskFull { .. }), "{error:?}");
    assert!(error.is_retryable());
    spool
        .append(&records(6..8))
        .expect("append after the disk has room");

    let mut expected = records(0..3);
    expected.extend(records(6..8));
    assert_eq!(drain(&spool), expected);
    drop(spool);
    let reopened = Spool::open(config(temporary.path())).expect("reopen");
    assert_eq!(reopened.stats().corrupt_bytes, 0);
}

#[test]
fn a_failed_fsync_with_always_keeps_nothing_of_the_batch() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(PlannedFaults::default());
    let mut config = faulty_config(temporary.path(), &faults);
    config.sync = SyncPolicy::Always;
    let mut spool = Spool::open(config).expect("open");
    spool.append(&records(0..2)).expect("append");
    faults.inject(Operation::Sync, std::io::ErrorKind::Other, 0);
    assert!(spool.append(&records(2..4)).is_err());
    assert_eq!(spool.stats().pending_events, 2);
    assert_eq!(drain(&spool), records(0..2));
}

#[test]
fn a_failed_segment_creation_is_a_typed_error_and_the_next_append_works() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(PlannedFaults::default());
    let mut spool = Spool::open(faulty_config(temporary.path(), &faults)).expect("open");
    faults.inject(Operation::Create, std::io::ErrorKind::ReadOnlyFilesystem, 0);
    assert!(matches!(
        spool.append(&records(0..1)),
        Err(SpoolError::ReadOnly { .. })
    ));
    faults.inject(Operation::Create, std::io::ErrorKind::PermissionDenied, 0);
    assert!(matches!(
        spool.append(&records(0..1)),
        Err(SpoolError::PermissionDenied { .. })
    ));
    spool.append(&records(1..2)).expect("append");
    assert_eq!(drain(&spool), records(1..2));
}

#[test]
fn a_failed_ack_acknowledges_nothing() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(PlannedFaults::default());
    let mut spool = Spool::open(faulty_config(temporary.path(), &faults)).expect("open");
    spool.append(&records(0..4)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    let batch = reader
        .next_batch(10, 1 << 20)
        .expect("next")
        .expect("batch");
    faults.inject(Operation::Write, std::io::ErrorKind::StorageFull, 10);
    assert!(matches!(
        reader.ack(&batch.position),
        Err(SpoolError::DiskFull { .. })
    ));
    assert_eq!(spool.stats().pending_events, 4);
    drop(reader);
    assert_eq!(drain(&spool), records(0..4));
}

#[test]
fn a_deleted_directory_is_reported_and_re_created() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let dir = temporary.path().join("spool");
    let mut spool = Spool::open(config(&dir)).expect("open");
    spool.append(&records(0..3)).expect("append");
    fs::remove_dir_all(&dir).expect("remove");
    assert!(matches!(
        spool.sync(),
        Err(SpoolError::DirectoryMissing { .. })
    ));
    spool
        .append(&records(3..5))
        .expect("append re-creates the directory");
    assert_eq!(drain(&spool), records(3..5));
    let stats = spool.stats();
    assert_eq!((stats.settled_elsewhere, stats.corrupt_records), (0, 3));
    assert_identity(&stats, 5);
}

#[test]
fn records_lost_with_a_deleted_directory_are_counted_once_when_the_reader_notices_first() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let dir = temporary.path().join("spool");
    let mut spool = Spool::open(config(&dir)).expect("open");
    let mut reader = spool
        .try_deliver()
        .expect("try_deliver")
        .expect("the delivery lock is free");
    // A missing directory is what a reader may answer while it notices.
    let next = |reader: &mut SpoolReader| match reader.next_batch(7, 1 << 20) {
        Ok(Some(batch)) => {
            reader.ack(&batch.position).expect("ack");
            Some(batch.records)
        }
        Ok(None) | Err(SpoolError::DirectoryMissing { .. }) => None,
        Err(error) => panic!("next_batch: {error:?}"),
    };
    spool.append(&records(0..3)).expect("append");
    fs::remove_dir_all(&dir).expect("remove");
    // The reader notices first: the open segment cannot be opened, its 3 records are written off.
    assert_eq!(next(&mut reader), None);
    // The writer still holds the deleted segment open and appends to it: 2 more records lost with it.
    spool
        .append(&records(3..5))
        .expect("append to the deleted segment");
    assert_eq!(next(&mut reader), None);
    assert!(matches!(
        spool.sync(),
        Err(SpoolError::DirectoryMissing { .. })
    ));
    spool
        .append(&records(5..7))
        .expect("append re-creates the directory");
    assert_eq!(next(&mut reader), Some(records(5..7)));
    let stats = spool.stats();
    assert_eq!((stats.settled_elsewhere, stats.corrupt_records), (0, 5));
    assert_identity(&stats, 7);
}

#[test]
fn a_dead_writers_torn_tail_is_cut_and_its_records_adopted() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    spool.append(&records(0..5)).expect("append");
    let (path, len) = spool.open_segment().expect("segment");
    drop(spool);
    // A torn write: half a frame.
    let mut file = OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open segment");
    std::io::Write::write_all(&mut file, &[7_u8, 0, 0, 0, 1, 2, 3]).expect("write garbage");
    drop(file);

    let reopened = Spool::open(config(temporary.path())).expect("reopen");

    assert_eq!(
        fs::metadata(&path).expect("segment").len(),
        len,
        "the torn tail is cut"
    );
    let stats = reopened.stats();
    assert_eq!((stats.recovered_events, stats.corrupt_bytes), (5, 7));
    assert_eq!(drain(&reopened), records(0..5));
}

#[test]
fn a_live_writers_incomplete_tail_is_not_yet_written_and_never_cut() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut writer = Spool::open(config(temporary.path())).expect("open");
    writer.append(&records(0..2)).expect("append");
    let (path, _) = writer.open_segment().expect("segment");
    let mut file = OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open segment");
    std::io::Write::write_all(&mut file, &[7_u8, 0, 0]).expect("write partial");
    drop(file);
    let deliverer = Spool::open(config(temporary.path())).expect("second process");
    let garbage_len = fs::metadata(&path).expect("segment").len();
    assert_eq!(drain(&deliverer), records(0..2));
    assert_eq!(fs::metadata(&path).expect("segment").len(), garbage_len);
    assert_eq!(deliverer.stats().corrupt_bytes, 0);
}

#[test]
fn mid_file_damage_loses_only_the_damaged_record() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    for number in 0..10 {
        spool.append(&records(number..number + 1)).expect("append");
    }
    let (path, _) = spool.open_segment().expect("segment");
    drop(spool);
    let mut bytes = fs::read(&path).expect("read");
    let frame_len = 16 + "record-000000".len();
    // Flip a payload byte of record 4.
    bytes[48 + 4 * frame_len + 20] ^= 0x01;
    fs::write(&path, &bytes).expect("write");

    let reopened = Spool::open(config(temporary.path())).expect("reopen");

    let mut expected = records(0..4);
    expected.extend(records(5..10));
    assert_eq!(drain(&reopened), expected);
    let stats = reopened.stats();
    assert_eq!(
        (stats.corrupt_records, stats.corrupt_bytes),
        (1, frame_len as u64)
    );
    assert_identity(&stats, 0);
}

#[test]
fn only_one_reader_at_a_time_and_the_lock_is_released_on_drop() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let first = Spool::open(config(temporary.path())).expect("open");
    let second = Spool::open(config(temporary.path())).expect("open");
    let reader = first.try_deliver().expect("try_deliver").expect("free");
    assert!(second.try_deliver().expect("try_deliver").is_none());
    assert!(first.try_deliver().expect("try_deliver").is_none());
    drop(reader);
    assert!(second.try_deliver().expect("try_deliver").is_some());
}

#[test]
fn acknowledgements_of_another_process_are_settled_elsewhere() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut writer = Spool::open(config(temporary.path())).expect("open");
    writer.append(&records(0..8)).expect("append");
    let deliverer = Spool::open(config(temporary.path())).expect("open");
    assert_eq!(drain(&deliverer), records(0..8));
    assert!(writer.try_deliver().expect("try_deliver").is_some());
    let stats = writer.stats();
    assert_eq!((stats.pending_events, stats.settled_elsewhere), (0, 8));
    assert_identity(&stats, 8);
    assert_identity(&deliverer.stats(), 0);
}

#[test]
fn a_position_of_another_reader_is_refused() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    spool.append(&records(0..2)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    let batch = reader
        .next_batch(10, 1 << 20)
        .expect("next")
        .expect("batch");
    drop(reader);
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    assert!(matches!(
        reader.ack(&batch.position),
        Err(SpoolError::ForeignPosition)
    ));
}

#[test]
fn a_batch_respects_max_bytes_but_always_holds_one_record() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    spool
        .append(&[vec![1_u8; 100], vec![2_u8; 100], vec![3_u8; 100]])
        .expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    let batch = reader.next_batch(10, 150).expect("next").expect("batch");
    assert_eq!(batch.records.len(), 1);
    let batch = reader.next_batch(10, 250).expect("next").expect("batch");
    assert_eq!(batch.records.len(), 2);
}

// The model test: random operations against a simple in-memory model.

#[derive(Clone, Debug)]
enum Op {
    Append {
        writer: usize,
        count: u8,
        buffered: bool,
    },
    Sync {
        writer: usize,
    },
    Read {
        max_records: u8,
    },
    AckLast,
    Rewind,
    RestartDeliverer,
    KillWriter {
        writer: usize,
    },
    Crash {
        cuts: [proptest::sample::Index; 2],
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2_usize, 1..6_u8, any::<bool>())
            .prop_map(|(writer, count, buffered)| Op::Append { writer, count, buffered }),
        1 => (0..2_usize).prop_map(|writer| Op::Sync { writer }),
        3 => (1..8_u8).prop_map(|max_records| Op::Read { max_records }),
        2 => Just(Op::AckLast),
        1 => Just(Op::Rewind),
        1 => Just(Op::RestartDeliverer),
        1 => (0..2_usize).prop_map(|writer| Op::KillWriter { writer }),
        1 => any::<[proptest::sample::Index; 2]>().prop_map(|cuts| Op::Crash { cuts }),
    ]
}

/// The model: what was appended (by writer slot and generation), what may have been lost to a crash, what is acked.
struct Model {
    dir: PathBuf,
    writers: [Option<Spool>; 2],
    generations: [u32; 2],
    next_sequence: [u32; 2],
    /// Per writer: records appended but not yet synced (lost if an OS crash comes first).
    unsynced: [Vec<String>; 2],
    appended: HashSet<String>,
    maybe_lost: HashSet<String>,
    acked: HashSet<String>,
    deliverer: Option<(Spool, Option<SpoolReader>)>,
    last_position: Option<Position>,
    handed_since_ack: Vec<String>,
    last_handed: HashMap<(usize, u32), u32>,
}

fn model_config(dir: &Path) -> SpoolConfig {
    let mut config = SpoolConfig::new(dir);
    // Rollover fsyncs the sealed segment, so only the open segment holds unsynced data.
    config.sync = SyncPolicy::GroupCommit(Duration::from_secs(3600));
    config.max_segment_bytes = 300;
    config
}

impl Model {
    fn writer(&mut self, slot: usize) -> &mut Spool {
        if self.writers[slot].is_none() {
            self.generations[slot] += 1;
            self.next_sequence[slot] = 0;
            self.writers[slot] = Some(Spool::open(model_config(&self.dir)).expect("open writer"));
        }
        self.writers[slot].as_mut().expect("just opened")
    }

    fn reader(&mut self) -> &mut SpoolReader {
        if self.deliverer.is_none() {
            self.deliverer = Some((
                Spool::open(model_config(&self.dir)).expect("open deliverer"),
                None,
            ));
            self.last_handed.clear();
        }
        let (spool, reader) = self.deliverer.as_mut().expect("just opened");
        if reader.is_none() {
            *reader = Some(
                spool
                    .try_deliver()
                    .expect("try_deliver")
                    .expect("the model has one deliverer"),
            );
        }
        reader.as_mut().expect("just taken")
    }

    fn check_handed(&mut self, record: &[u8]) {
        let text = String::from_utf8(record.to_vec()).expect("utf-8");
        assert!(self.appended.contains(&text), "invented record {text}");
        assert!(
            !self.acked.contains(&text),
            "acknowledged record {text} came back"
        );
        let mut parts = text
            .split(':')
            .map(|part| part.parse::<u32>().expect("number"));
        let (slot, generation, sequence) = (
            parts.next().expect("slot"),
            parts.next().expect("generation"),
            parts.next().expect("sequence"),
        );
        let last = self
            .last_handed
            .insert((slot as usize, generation), sequence);
        assert!(
            last.is_none_or(|last| last < sequence),
            "order broken at {text}"
        );
        self.handed_since_ack.push(text);
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Append {
                writer,
                count,
                buffered,
            } => {
                let generation =
                    self.generations[writer] + u32::from(self.writers[writer].is_none());
                let start = if self.writers[writer].is_none() {
                    0
                } else {
                    self.next_sequence[writer]
                };
                let batch: Vec<String> = (start..start + u32::from(count))
                    .map(|sequence| format!("{writer}:{generation}:{sequence}"))
                    .collect();
                // A buffered batch is as exposed as unsynced bytes: a drop writes it, an OS crash takes it.
                let spool = self.writer(writer);
                if buffered {
                    spool.append_buffered(&batch).expect("append_buffered");
                } else {
                    spool.append(&batch).expect("append");
                }
                self.next_sequence[writer] = start + u32::from(count);
                self.appended.extend(batch.iter().cloned());
                self.unsynced[writer].extend(batch);
            }
            Op::Sync { writer } => {
                if let Some(spool) = self.writers[writer].as_mut() {
                    spool.sync().expect("sync");
                    self.unsynced[writer].clear();
                }
            }
            Op::Read { max_records } => {
                let batch = self
                    .reader()
                    .next_batch(usize::from(max_records), 1 << 20)
                    .expect("next_batch");
                if let Some(batch) = batch {
                    for record in &batch.records {
                        self.check_handed(record);
                    }
                    self.last_position = Some(batch.position);
                }
            }
            Op::AckLast => {
                if let Some(position) = self.last_position.take() {
                    self.reader().ack(&position).expect("ack");
                    self.acked.extend(self.handed_since_ack.drain(..));
                }
            }
            Op::Rewind => {
                self.reader().rewind();
                self.handed_since_ack.clear();
                self.last_handed.clear();
                self.last_position = None;
            }
            Op::RestartDeliverer => {
                self.deliverer = None;
                self.handed_since_ack.clear();
                self.last_handed.clear();
                self.last_position = None;
            }
            Op::KillWriter { writer } => {
                // A process crash: the kernel has every appended byte.
                if let Some(spool) = self.writers[writer].take() {
                    drop(spool);
                    self.unsynced[writer].clear();
                }
            }
            Op::Crash { cuts } => {
                // An OS crash: every process dies; each writer's unsynced bytes are cut at an arbitrary byte.
                self.deliverer = None;
                self.handed_since_ack.clear();
                self.last_handed.clear();
                self.last_position = None;
                for (slot, cut) in cuts.iter().enumerate() {
                    let Some(spool) = self.writers[slot].take() else {
                        continue;
                    };
                    let open = spool.open_segment();
                    let synced = SYNCED.with(|synced| synced.borrow().get(&slot).cloned());
                    drop(spool);
                    if let Some((path, len)) = open {
                        let synced_len = synced
                            .filter(|(synced_path, _)| *synced_path == path)
                            .map_or(48, |(_, l)| l);
                        let cut = synced_len + cut.index((len - synced_len + 1) as usize) as u64;
                        OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .expect("open")
                            .set_len(cut)
                            .expect("cut");
                    }
                    self.maybe_lost.extend(self.unsynced[slot].drain(..));
                }
            }
        }
        // Track the synced length of each open segment for the crash simulation.
        for slot in 0..2 {
            if let Some(spool) = &self.writers[slot]
                && self.unsynced[slot].is_empty()
                && let Some(open) = spool.open_segment()
            {
                SYNCED.with(|synced| synced.borrow_mut().insert(slot, open));
            }
        }
    }
}

thread_local! {
    static SYNCED: std::cell::RefCell<HashMap<usize, (PathBuf, u64)>> = std::cell::RefCell::new(HashMap::new());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_spool_behaves_like_its_model(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        SYNCED.with(|synced| synced.borrow_mut().clear());
        let temporary = tempfile::tempdir().expect("tempdir");
        let mut model = Model {
            dir: temporary.path().to_path_buf(),
            writers: [None, None],
            generations: [0, 0],
            next_sequence: [0, 0],
            unsynced: [Vec::new(), Vec::new()],
            appended: HashSet::new(),
            maybe_lost: HashSet::new(),
            acked: HashSet::new(),
            deliverer: None,
            last_position: None,
            handed_since_ack: Vec::new(),
            last_handed: HashMap::new(),
        };
        for op in ops {
            model.apply(op);
        }
        // Everything stops cleanly; a new process delivers the rest.
        model.writers = [None, None];
        model.deliverer = None;
        model.handed_since_ack.clear();
        model.last_handed.clear();
        let final_spool = Spool::open(model_config(temporary.path())).expect("open");
        let mut rest: HashSet<String> = HashSet::new();
        for record in drain(&final_spool) {
            let text = String::from_utf8(record).expect("utf-8");
            prop_assert!(model.appended.contains(&text), "invented {}", text);
            prop_assert!(!model.acked.contains(&text), "acknowledged {} came back", text);
            prop_assert!(rest.insert(text.clone()), "{} handed out twice", text);
        }
        for record in &model.appended {
            prop_assert!(
                model.acked.contains(record) || rest.contains(record) || model.maybe_lost.contains(record),
                "{} was lost", record
            );
        }
        let stats = final_spool.stats();
        prop_assert_eq!(stats.pending_events, 0);
        // Nothing was damaged: records an OS crash took before they were synced are the documented loss window, never
        // a loss the spool can prove.
        prop_assert_eq!(stats.corrupt_records, 0, "{:?}", stats);
        prop_assert_eq!(stats.acknowledged_events, stats.recovered_events);
    }
}

#[test]
fn the_writer_and_the_reader_can_move_to_other_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Spool>();
    assert_send::<SpoolReader>();
    assert_send::<SpoolBatch>();
    assert_send::<SpoolError>();
}

#[test]
fn a_record_appended_while_delivering_is_found_by_the_same_reader() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    let mut other = Spool::open(config(temporary.path())).expect("second writer");
    spool.append(&records(0..2)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    let first = reader
        .next_batch(10, 1 << 20)
        .expect("next")
        .expect("batch");
    assert_eq!(first.records, records(0..2));
    assert!(reader.next_batch(10, 1 << 20).expect("next").is_none());
    spool.append(&records(2..3)).expect("append");
    other
        .append(&records(100..102))
        .expect("append by another writer");
    let mut rest = Vec::new();
    while let Some(batch) = reader.next_batch(10, 1 << 20).expect("next") {
        rest.extend(batch.records);
        reader.ack(&batch.position).expect("ack");
    }
    rest.sort();
    let mut expected = records(2..3);
    expected.extend(records(100..102));
    assert_eq!(rest, expected);
    let stats = spool.stats();
    assert_eq!((stats.pending_events, stats.recovered_events), (0, 2));
    assert_identity(&stats, 3);
}

#[test]
fn damage_after_a_scan_loses_only_counted_records() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut writer = Spool::open(config(temporary.path())).expect("open");
    writer.append(&records(0..10)).expect("append");
    let (path, _) = writer.open_segment().expect("segment");
    drop(writer);
    let spool = Spool::open(config(temporary.path())).expect("reopen");
    assert_eq!(spool.stats().recovered_events, 10);
    let mut bytes = fs::read(&path).expect("read");
    let frame_len = 16 + "record-000000".len();
    bytes[48 + 6 * frame_len + 20] ^= 0x01;
    fs::write(&path, &bytes).expect("write");

    let delivered = drain(&spool);

    assert_eq!(delivered, records(0..6));
    let stats = spool.stats();
    assert_eq!(stats.corrupt_records, 4);
    assert_identity(&stats, 0);
}

#[test]
fn the_oldest_pending_age_is_known_while_something_is_pending() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    assert_eq!(spool.stats().oldest_pending_age, None);
    spool.append(&records(0..3)).expect("append");
    let stats = spool.stats();
    assert!(stats.oldest_pending_age.is_some());
    assert_eq!(stats.pending_bytes, 3 * (16 + 13));
    drain(&spool);
    assert_eq!(spool.stats().oldest_pending_age, None);
}

#[test]
fn records_larger_than_a_read_chunk_are_scanned_and_read_whole() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let big: Vec<Vec<u8>> = (0..6_u8)
        .map(|number| vec![number; 3000 + 2500 * usize::from(number % 3)])
        .collect();
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    spool.append(&big).expect("append");
    drop(spool);
    let reopened = Spool::open(config(temporary.path())).expect("reopen");
    assert_eq!(reopened.stats().recovered_events, 6);
    let mut reader = reopened.try_deliver().expect("try_deliver").expect("free");
    let mut delivered = Vec::new();
    while let Some(batch) = reader.next_batch(2, 1 << 20).expect("next") {
        delivered.extend(batch.records);
        reader.ack(&batch.position).expect("ack");
    }
    assert_eq!(delivered, big);
}

#[test]
fn records_an_os_crash_took_before_their_fsync_are_the_loss_window_not_a_counted_loss() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let dir = temporary.path();
    let mut writer = Spool::open(model_config(dir)).expect("open writer");
    writer.append(&records(0..3)).expect("append");
    let (path, _) = writer.open_segment().expect("an open segment");
    // Another process delivers one of the three unsynced records and acknowledges it (the acks file is fsynced).
    let deliverer = Spool::open(model_config(dir)).expect("open deliverer");
    let mut reader = deliverer
        .try_deliver()
        .expect("try_deliver")
        .expect("the lock is free");
    let batch = reader
        .next_batch(1, 1 << 20)
        .expect("next_batch")
        .expect("a record");
    reader.ack(&batch.position).expect("ack");
    drop(reader);
    drop(deliverer);
    // An OS crash: every process dies, and the writer's segment keeps only what was fsynced (its header).
    drop(writer);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open segment")
        .set_len(format::SEGMENT_HEADER_LEN)
        .expect("cut");

    let spool = Spool::open(model_config(dir)).expect("open");
    let delivered = drain(&spool);
    let stats = spool.stats();

    assert!(delivered.is_empty(), "the unsynced records are gone");
    assert_eq!(
        stats.corrupt_records, 0,
        "nobody knew them durably: {stats:?}"
    );
    assert_identity(&stats, 0);
}

/// The acknowledgement file's format version and inode.
fn acks_file(dir: &Path) -> (u16, u64) {
    let path = dir.join("acks");
    let bytes = fs::read(&path).expect("read acks");
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    (version, fs::metadata(&path).expect("metadata").ino())
}

/// Hands out batches of `size` and acknowledges them, `batches` times.
fn ack_batches(reader: &mut SpoolReader, size: usize, batches: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..batches {
        let batch = reader
            .next_batch(size, 1 << 20)
            .expect("next")
            .expect("batch");
        out.extend(batch.records);
        reader.ack(&batch.position).expect("ack");
    }
    out
}

#[test]
fn acknowledgements_after_the_first_are_written_in_place() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut config = config(temporary.path());
    config.sync = SyncPolicy::Always;
    let mut spool = Spool::open(config).expect("open");
    spool.append(&records(0..20)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    ack_batches(&mut reader, 4, 1);
    let first = acks_file(temporary.path());
    assert_eq!(first.0, format::ACKS_VERSION);

    ack_batches(&mut reader, 4, 3);

    assert_eq!(
        acks_file(temporary.path()),
        first,
        "the same file, not a new one"
    );
    drop(reader);
    drop(spool);
    let reopened = Spool::open(config_always(temporary.path())).expect("reopen");
    assert_eq!(reopened.stats().pending_events, 4);
    assert_eq!(drain(&reopened), records(16..20));
}

fn config_always(dir: &Path) -> SpoolConfig {
    let mut config = config(dir);
    config.sync = SyncPolicy::Always;
    config
}

#[test]
fn a_torn_acknowledgement_slot_keeps_the_previous_state() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(PlannedFaults::default());
    let mut config = faulty_config(temporary.path(), &faults);
    config.sync = SyncPolicy::Always;
    let mut spool = Spool::open(config).expect("open");
    spool.append(&records(0..12)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    // The first acknowledgement writes the file whole, the second in place: both fsynced.
    ack_batches(&mut reader, 4, 2);
    let batch = reader.next_batch(4, 1 << 20).expect("next").expect("batch");
    // The third slot write is torn: a part of it reaches the file, then the write fails (as an OS crash would cut it).
    faults.inject(Operation::Write, io::ErrorKind::Other, 60);
    assert!(reader.ack(&batch.position).is_err());
    drop(reader);
    drop(spool);

    let reopened = Spool::open(config_always(temporary.path())).expect("reopen");
    let stats = reopened.stats();
    assert_eq!(
        (stats.pending_events, stats.damaged_acks),
        (4, 0),
        "{stats:?}"
    );
    assert_eq!(drain(&reopened), records(8..12));
}

#[test]
fn a_torn_write_never_overwrites_the_last_fsynced_state_within_a_group_commit_window() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(PlannedFaults::default());
    let mut config = faulty_config(temporary.path(), &faults);
    config.sync = SyncPolicy::GroupCommit(Duration::from_secs(3600));
    let mut spool = Spool::open(config).expect("open");
    spool.append(&records(0..12)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    // Written whole and fsynced; then in place, not fsynced (the window is an hour).
    ack_batches(&mut reader, 4, 2);
    let batch = reader.next_batch(4, 1 << 20).expect("next").expect("batch");
    faults.inject(Operation::Write, io::ErrorKind::Other, 60);
    assert!(reader.ack(&batch.position).is_err());
    // The process goes on: the acknowledgement is retried and goes through (the whole file is written again).
    reader.ack(&batch.position).expect("retried ack");
    drop(reader);
    drop(spool);
    let reopened = Spool::open(config_always(temporary.path())).expect("reopen");
    assert_eq!(drain(&reopened), Vec::<Vec<u8>>::new());

    // The same, with the torn write left as it is (an OS crash): the previous write of that slot was not fsynced,
    // so the state falls back to the last fsynced one, never further.
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut config = faulty_config(temporary.path(), &faults);
    config.sync = SyncPolicy::GroupCommit(Duration::from_secs(3600));
    let mut spool = Spool::open(config).expect("open");
    spool.append(&records(0..12)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    ack_batches(&mut reader, 4, 2);
    let batch = reader.next_batch(4, 1 << 20).expect("next").expect("batch");
    faults.inject(Operation::Write, io::ErrorKind::Other, 60);
    assert!(reader.ack(&batch.position).is_err());
    std::mem::forget(reader);
    std::mem::forget(spool);
    let copy = tempfile::tempdir().expect("tempdir");
    for entry in fs::read_dir(temporary.path()).expect("read_dir") {
        let entry = entry.expect("entry");
        if !entry.file_name().to_string_lossy().ends_with(".lock") {
            fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy");
        }
    }
    let reopened = Spool::open(config_always(copy.path())).expect("reopen");
    assert_eq!(drain(&reopened), records(4..12));
}

#[test]
fn a_version_2_acks_file_is_still_read_and_replaced_by_the_current_version() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    spool.append(&records(0..10)).expect("append");
    let (path, _) = spool.open_segment().expect("a segment");
    drop(spool);
    let key = format::SegmentKey::parse_file_name(
        path.file_name()
            .and_then(|name| name.to_str())
            .expect("name"),
    )
    .expect("a segment name");
    let frame = (format::FRAME_HEADER_LEN + records(0..1)[0].len()) as u64;
    let settled = format::SEGMENT_HEADER_LEN + 4 * frame;
    let entry = format::AckEntry {
        key,
        offset: settled,
        valid: 4,
        next_index: 4,
        last_delta_ms: 0,
        known_offset: format::SEGMENT_HEADER_LEN + 10 * frame,
        known_valid: 10,
        known_next_index: 10,
    };
    fs::write(
        temporary.path().join("acks"),
        format::encode_acks_block(&[entry]),
    )
    .expect("write a version 2 file");

    let reopened = Spool::open(config(temporary.path())).expect("reopen");
    assert_eq!(reopened.stats().pending_events, 6);
    assert_eq!(drain(&reopened), records(4..10));
    assert_eq!(acks_file(temporary.path()).0, format::ACKS_VERSION);
}

#[test]
fn damaged_acks_entries_are_counted_and_their_records_delivered_again() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config_always(temporary.path())).expect("open");
    spool.append(&records(0..12)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    ack_batches(&mut reader, 4, 2);
    drop(reader);
    drop(spool);
    // Both slots of the only pair damaged.
    let path = temporary.path().join("acks");
    let mut bytes = fs::read(&path).expect("read");
    let pair = format::ACKS_SLOTS_HEADER_LEN as usize;
    bytes[pair + 20] ^= 0xff;
    bytes[pair + format::ACK_SLOT_LEN + 20] ^= 0xff;
    fs::write(&path, &bytes).expect("write");

    let reopened = Spool::open(config_always(temporary.path())).expect("reopen");
    let stats = reopened.stats();
    assert_eq!(
        (stats.pending_events, stats.damaged_acks),
        (12, 1),
        "{stats:?}"
    );
    assert_eq!(drain(&reopened), records(0..12));

    // A damaged header: the whole file is unreadable.
    drop(reopened);
    let mut bytes = fs::read(&path).expect("read");
    bytes[3] ^= 0xff;
    fs::write(&path, &bytes).expect("write");
    let reopened = Spool::open(config_always(temporary.path())).expect("reopen");
    assert_eq!(reopened.stats().damaged_acks, 1);
}

#[test]
fn the_writer_with_the_oldest_readable_segment_is_delivered_first() {
    let temporary = tempfile::tempdir().expect("tempdir");
    // Writer ids sort by creation: `early` sorts first, but `late` creates its segment first.
    let mut early = Spool::open(config(temporary.path())).expect("open");
    let mut late = Spool::open(config(temporary.path())).expect("open");
    late.append(&[b"late-0"]).expect("append");
    let created = catalog::now_ms();
    while catalog::now_ms() == created {
        std::thread::yield_now();
    }
    early.append(&[b"early-0"]).expect("append");
    late.append(&[b"late-1"]).expect("append");

    let delivered = drain(&early);

    assert_eq!(
        delivered,
        vec![b"late-0".to_vec(), b"late-1".to_vec(), b"early-0".to_vec()]
    );
}

/// A file system whose fsyncs of the acknowledgement file wait until released, and say when one is waiting.
#[derive(Debug, Default)]
struct HeldAcksSync {
    state: Mutex<(bool, bool)>,
    changed: std::sync::Condvar,
}

impl FileSystem for HeldAcksSync {
    fn sync_data(&self, file: &File) -> io::Result<()> {
        let is_acks = fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(file)
        ))
        .is_ok_and(|path| path.file_name().is_some_and(|name| name == "acks"));
        if is_acks {
            let mut state = self.state.lock().expect("state");
            state.0 = true;
            self.changed.notify_all();
            while !state.1 {
                state = self.changed.wait(state).expect("state");
            }
        }
        RealFileSystem.sync_data(file)
    }
}

#[test]
fn appends_and_stats_go_on_while_an_acknowledgement_is_fsynced() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let held = Arc::new(HeldAcksSync::default());
    let mut config = config_always(temporary.path());
    config = config.with_file_system(Arc::clone(&held) as Arc<dyn FileSystem>);
    let mut spool = Spool::open(config).expect("open");
    spool.append(&records(0..8)).expect("append");
    let mut reader = spool.try_deliver().expect("try_deliver").expect("free");
    // The first acknowledgement creates the file (its fsync is of the temporary file); the second is in place.
    let first = reader.next_batch(4, 1 << 20).expect("next").expect("batch");
    held.state.lock().expect("state").1 = true;
    reader.ack(&first.position).expect("ack");
    *held.state.lock().expect("state") = (false, false);
    let second = reader.next_batch(4, 1 << 20).expect("next").expect("batch");
    let acking = std::thread::spawn(move || {
        reader.ack(&second.position).expect("ack");
        reader
    });
    let release = || {
        let mut state = held.state.lock().expect("state");
        state.1 = true;
        held.changed.notify_all();
    };
    let mut in_fsync = false;
    for _ in 0..300 {
        let state = held.state.lock().expect("state");
        let (state, _) = held
            .changed
            .wait_timeout(state, Duration::from_millis(100))
            .expect("state");
        if state.0 {
            in_fsync = true;
            break;
        }
    }
    assert!(in_fsync, "the acknowledgement never reached its fsync");

    // The acknowledgement is inside its fsync: the writer and the statistics do not wait for it.
    let (done, finished) = std::sync::mpsc::channel();
    let appending = std::thread::spawn(move || {
        spool.append(&records(8..10)).expect("append");
        let stats = spool.stats();
        let _ = done.send((stats.pending_events, stats.acknowledged_events));
        spool
    });
    let during = finished.recv_timeout(Duration::from_secs(30));
    release();
    assert_eq!(
        during,
        Ok((6, 4)),
        "an append waited for the fsync of an acknowledgement"
    );
    let spool = appending.join().expect("the append returns");
    let reader = acking.join().expect("the ack returns");
    assert_eq!(spool.stats().acknowledged_events, 8);
    drop(reader);
    assert_eq!(drain(&spool), records(8..10));
}

#[test]
fn buffered_records_are_written_at_the_next_append_sync_or_drop_and_read_in_order() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut spool = Spool::open(config(temporary.path())).expect("open");
    spool.append_buffered(&records(0..2)).expect("buffer");
    spool.append_buffered(&records(2..3)).expect("buffer");
    let stats = spool.stats();
    assert_eq!((stats.buffered_events, stats.pending_events), (3, 0));
    assert_identity(&stats, 3);
    assert!(
        drain(&spool).is_empty(),
        "buffered records are not readable"
    );

    // An eager append writes the buffer ahead of its own batch.
    spool.append(&records(3..4)).expect("append");
    assert_eq!(spool.stats().buffered_events, 0);
    assert_eq!(drain(&spool), records(0..4));

    spool.append_buffered(&records(4..6)).expect("buffer");
    spool.sync().expect("sync writes the buffer");
    assert_eq!(drain(&spool), records(4..6));

    spool.append_buffered(&records(6..9)).expect("buffer");
    drop(spool);
    let reopened = Spool::open(config(temporary.path())).expect("reopen");
    assert_eq!(drain(&reopened), records(6..9), "a drop writes the buffer");
    assert_identity(&reopened.stats(), 0);
}

#[test]
fn the_write_behind_buffer_is_written_when_it_fills_and_across_rollovers() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut config = config(temporary.path());
    config.max_segment_bytes = 4 * WRITE_BEHIND_BYTES as u64;
    let mut spool = Spool::open(config).expect("open");
    let record = vec![b'x'; 1000];
    let count = 1_000_u64;
    for _ in 0..count {
        spool.append_buffered(&[&record]).expect("buffer");
        let buffered = spool.stats().buffered_events;
        assert!(
            buffered * 1016 < WRITE_BEHIND_BYTES as u64 + 1016,
            "the buffer never holds more than its size: {buffered} records"
        );
    }
    let stats = spool.stats();
    assert!(
        stats.pending_events > 0 && stats.buffered_events > 0,
        "{stats:?}"
    );
    assert_identity(&stats, count);
    assert!(segment_files(temporary.path()).len() > 1, "rolled over");
    spool.write_out_buffered().expect("write out");
    let delivered = drain(&spool);
    assert_eq!(delivered.len() as u64, count);
    assert!(delivered.iter().all(|delivered| *delivered == record));
}

#[test]
fn a_failed_write_out_counts_the_buffered_records_it_lost_and_the_spool_goes_on() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(PlannedFaults::default());
    let mut spool = Spool::open(faulty_config(temporary.path(), &faults)).expect("open");
    spool.append_buffered(&records(0..3)).expect("buffer");
    faults.inject(Operation::Write, std::io::ErrorKind::StorageFull, 20);
    let error = spool.append(&records(3..5)).expect_err("disk full");
    assert!(matches!(error, SpoolError::DiskFull { .. }), "{error:?}");
    let stats = spool.stats();
    assert_eq!(
        (
            stats.dropped_unwritten,
            stats.buffered_events,
            stats.pending_events
        ),
        (3, 0, 0),
        "the earlier buffered records are counted, the failed batch is the caller's"
    );
    assert_identity(&stats, 3);

    spool.append_buffered(&records(5..7)).expect("buffer");
    faults.inject(Operation::Write, std::io::ErrorKind::StorageFull, 0);
    assert!(spool.write_out_buffered().is_err());
    assert_eq!(spool.stats().dropped_unwritten, 5);
    spool.append_buffered(&records(7..8)).expect("buffer");
    spool.write_out_buffered().expect("the disk has room again");
    assert_eq!(drain(&spool), records(7..8));
    assert_identity(&spool.stats(), 6);
}
