//! Losses at the end of a segment and of whole segments are counted: once the acknowledgement file says how far a
//! segment extended, a segment cut short, emptied, with its last frame flipped, deleted or unreadable counts every
//! record it lost. Also: files that are not regular files never block the spool, and dead writers' lock files go.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flush_core::spool::{Spool, SpoolConfig, SpoolStats, SyncPolicy};

use super::{drain, spawn_child, test_config};
use crate::faulty_fs::{FaultyFs, Op};

/// Records written per scenario, and acknowledged before the damage.
const WRITTEN: usize = 400;
const ACKED: usize = 10;

fn records(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("{{\"n\":{n:05}}}")).collect()
}

/// The segment files of `dir`, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    files.sort();
    files
}

/// Writes `WRITTEN` records in several segments, delivers and acknowledges `ACKED` of them (so the acknowledgement
/// file records how far every segment extends), and closes the spool.
fn prepare(dir: &Path) {
    let mut spool = Spool::open(test_config(dir, SyncPolicy::Always)).unwrap();
    append_in_batches(&mut spool);
    let mut reader = spool
        .try_deliver()
        .unwrap()
        .expect("the delivery lock is free");
    let batch = reader.next_batch(ACKED, 1 << 20).unwrap().expect("a batch");
    assert_eq!(batch.records.len(), ACKED);
    reader.ack(&batch.position).unwrap();
    assert!(
        segments(dir).len() >= 3,
        "the records span several segments"
    );
}

/// Appends the `WRITTEN` records in batches of 20 (a batch never spans segments).
fn append_in_batches(spool: &mut Spool) {
    for start in (0..WRITTEN).step_by(20) {
        spool.append(&records(start..start + 20)).unwrap();
    }
}

/// Reopens the spool with `config`, delivers everything, and checks that every record is delivered or counted as
/// lost, exactly. Returns the statistics and how many were delivered.
fn reopen_and_drain(config: SpoolConfig) -> (SpoolStats, usize) {
    let spool = Spool::open(config).unwrap();
    let delivered = drain(&spool);
    let stats = spool.stats();
    assert_eq!(stats.pending_events, 0, "{stats:?}");
    assert_eq!(
        stats.recovered_events,
        stats.acknowledged_events + stats.corrupt_records,
        "{stats:?}"
    );
    assert_eq!(
        delivered.len() as u64 + stats.corrupt_records,
        (WRITTEN - ACKED) as u64,
        "every record not delivered is counted as lost: {stats:?}"
    );
    (stats, delivered.len())
}

/// The length of a segment after its header and its first `frames` frames (all frames of these records have the
/// same length).
fn after_frames(frames: u64) -> u64 {
    48 + frames * (16 + records(0..1)[0].len() as u64)
}

#[test]
fn a_segment_cut_short_counts_the_records_it_lost() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    prepare(dir);
    let last = segments(dir).pop().unwrap();
    let frames = (fs::metadata(&last).unwrap().len() - 48) / (16 + 11);
    assert!(frames > 5);
    // Cut in the middle of a frame: a torn tail, and the frames after it gone.
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(after_frames(3) + 5)
        .unwrap();

    let (stats, _) = reopen_and_drain(test_config(dir, SyncPolicy::Always));

    assert_eq!(stats.corrupt_records, frames - 3, "{stats:?}");
}

#[test]
fn a_zeroed_segment_counts_all_its_records() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    prepare(dir);
    let middle = segments(dir)[1].clone();
    let len = fs::metadata(&middle).unwrap().len();
    let frames = (len - 48) / (16 + 11);
    fs::write(&middle, vec![0_u8; len as usize]).unwrap();

    let (stats, _) = reopen_and_drain(test_config(dir, SyncPolicy::Always));

    assert_eq!(stats.corrupt_records, frames, "{stats:?}");
}

#[test]
fn a_flipped_last_frame_counts_one_record() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    prepare(dir);
    let last = segments(dir).pop().unwrap();
    let mut bytes = fs::read(&last).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    fs::write(&last, bytes).unwrap();

    let (stats, _) = reopen_and_drain(test_config(dir, SyncPolicy::Always));

    assert_eq!(stats.corrupt_records, 1, "{stats:?}");
}

#[test]
fn a_deleted_segment_counts_all_its_records() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    prepare(dir);
    let middle = segments(dir)[1].clone();
    let frames = (fs::metadata(&middle).unwrap().len() - 48) / (16 + 11);
    fs::remove_file(&middle).unwrap();

    let (stats, _) = reopen_and_drain(test_config(dir, SyncPolicy::Always));

    assert_eq!(stats.corrupt_records, frames, "{stats:?}");
    // Counted once: the next process finds nothing more to count.
    let again = Spool::open(test_config(dir, SyncPolicy::Always)).unwrap();
    assert_eq!(again.stats().corrupt_records, 0);
}

#[test]
fn an_unreadable_segment_counts_all_its_records_and_is_reported() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    prepare(dir);
    let middle = segments(dir)[1].clone();
    let frames = (fs::metadata(&middle).unwrap().len() - 48) / (16 + 11);
    let name = middle.file_name().unwrap().to_str().unwrap().to_owned();
    let faults = FaultyFs::default();
    faults.fail(Op::Open, &name, ErrorKind::PermissionDenied);
    let mut config = faults.config(dir);
    config.max_segment_bytes = 4096;
    config.sync = SyncPolicy::Always;

    let (stats, _) = reopen_and_drain(config);

    assert_eq!(stats.corrupt_records, frames, "{stats:?}");
    assert_eq!(stats.foreign_files, 1, "{stats:?}");
}

#[test]
fn a_segment_cut_short_while_open_counts_what_was_not_handed_out() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    let mut spool = Spool::open(test_config(dir, SyncPolicy::Always)).unwrap();
    append_in_batches(&mut spool);
    let mut reader = spool.try_deliver().unwrap().expect("free");
    let batch = reader.next_batch(ACKED, 1 << 20).unwrap().expect("a batch");
    reader.ack(&batch.position).unwrap();
    let middle = segments(dir)[1].clone();
    let frames = (fs::metadata(&middle).unwrap().len() - 48) / (16 + 11);
    fs::remove_file(&middle).unwrap();

    let mut delivered = 0;
    while let Some(batch) = reader.next_batch(50, 1 << 20).unwrap() {
        delivered += batch.records.len() as u64;
        reader.ack(&batch.position).unwrap();
    }

    let stats = spool.stats();
    assert_eq!(stats.pending_events, 0, "{stats:?}");
    assert_eq!(stats.corrupt_records, frames, "{stats:?}");
    assert_eq!(delivered + frames, (WRITTEN - ACKED) as u64);
}

#[test]
fn a_fifo_named_like_a_segment_never_blocks_opening_and_is_reported() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path().to_path_buf();
    prepare(&dir);
    let fifo = dir.join(format!("{}-{:016x}.seg", "0".repeat(32), 7));
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let lock_fifo = dir.join(format!("{}.lock", "1".repeat(32)));
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&lock_fifo)
            .status()
            .unwrap()
            .success()
    );

    let (done, opened) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let spool = Spool::open(test_config(&dir, SyncPolicy::Always)).unwrap();
        let delivered = drain(&spool).len();
        let _ = done.send((spool.stats(), delivered));
    });
    let (stats, delivered) = opened
        .recv_timeout(Duration::from_secs(60))
        .expect("opening the spool does not block on a FIFO");

    assert_eq!(stats.foreign_files, 2, "{stats:?}");
    assert_eq!(delivered, WRITTEN - ACKED);
    assert_eq!(stats.corrupt_records, 0);
}

/// The child of [`dead_writers_leave_no_lock_files_behind`]: opens a writer, appends, says so, and waits to be
/// killed.
pub(super) fn child(dir: &Path, tag: &str) {
    let mut spool = Spool::open(test_config(dir, SyncPolicy::Never)).expect("child open");
    spool.append(&[tag]).expect("child append");
    super::report("ready");
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn dead_writers_leave_no_lock_files_behind() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    // Writers killed at once, and writers killed while creating their lock file (a half-created one is left).
    let mut children: Vec<_> = (0..6)
        .map(|tag| spawn_child("locks", dir, &tag.to_string()))
        .collect();
    for child in &mut children {
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("ready") {
            line.clear();
            let read = std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            assert!(read > 0, "the child ended before it was ready");
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    for n in 0..3 {
        fs::write(dir.join(format!("{:032x}.lock.tmp", 0xabc0 + n)), b"").unwrap();
    }

    let spool = Spool::open(test_config(dir, SyncPolicy::Never)).unwrap();
    let delivered = drain(&spool);
    assert_eq!(delivered.len(), 6);
    drop(spool);

    let mut left: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert!(
        left.iter()
            .all(|name| !name.contains(".lock") || name == "delivery.lock"),
        "{left:?}"
    );
    assert!(
        left.len() <= 2,
        "only the delivery lock and the acks file stay: {left:?}"
    );
}
