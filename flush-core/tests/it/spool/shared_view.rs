//! Several spools on one directory never count as lost what another one delivered: a process whose view of a
//! segment is older than the acknowledgement file (it scanned part of it, or missed it in its listing) counts the
//! records another process settled as settled elsewhere, not as `corrupt_records`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flush_core::spool::{
    DirEntry, FileSystem, RealFileSystem, Spool, SpoolReader, SpoolStats, SyncPolicy,
};

use super::test_config;

/// A job run once, in the middle of another spool's operation.
type Job = Box<dyn FnOnce() + Send>;

/// The real file system, with a job that runs once, right after the next listing of the spool directory: another
/// process's work landing between this process's listing and its read of the acknowledgement file.
#[derive(Clone)]
struct AfterListing {
    dir: PathBuf,
    job: Arc<Mutex<Option<Job>>>,
}

impl std::fmt::Debug for AfterListing {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AfterListing")
    }
}

impl FileSystem for AfterListing {
    fn read_dir(&self, dir: &Path) -> std::io::Result<Vec<DirEntry>> {
        let entries = RealFileSystem.read_dir(dir)?;
        if dir == self.dir {
            let job = self.job.lock().unwrap().take();
            if let Some(job) = job {
                job();
            }
        }
        Ok(entries)
    }
}

/// The segment files of `dir`.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect()
}

/// Takes the delivery lock, waiting while a child spawned by another test holds a copy of it for a moment.
fn deliver(spool: &Spool) -> SpoolReader {
    for _ in 0..200 {
        if let Some(reader) = spool.try_deliver().unwrap() {
            return reader;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the delivery lock stays taken");
}

/// Hands out and acknowledges everything available; returns how many records.
fn deliver_all(reader: &mut SpoolReader) -> usize {
    let mut delivered = 0;
    while let Some(batch) = reader.next_batch(64, 1 << 20).unwrap() {
        delivered += batch.records.len();
        reader.ack(&batch.position).unwrap();
    }
    delivered
}

fn assert_balances(stats: &SpoolStats, recorded: u64) {
    assert_eq!(
        recorded + stats.recovered_events,
        stats.acknowledged_events
            + stats.dropped_for_size
            + stats.dropped_for_age
            + stats.corrupt_records
            + stats.settled_elsewhere
            + stats.pending_events,
        "the identity: {stats:?}"
    );
}

#[test]
fn records_appended_after_another_process_scanned_and_delivered_by_the_writer_are_settled_elsewhere()
 {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    let mut writer = Spool::open(test_config(dir, SyncPolicy::Always)).unwrap();
    writer.append(&["a1"]).unwrap();
    // The other process scans the writer's open segment while it holds one record.
    let other = Spool::open(test_config(dir, SyncPolicy::Always)).unwrap();
    assert_eq!(other.stats().recovered_events, 1);
    // The writer appends two more, delivers all three and exits while delivering: its segment is settled and removed,
    // and its entry in the acknowledgement file is settled to its end (or freed with it).
    writer.append(&["a2", "a3"]).unwrap();
    let mut reader = deliver(&writer);
    assert_eq!(deliver_all(&mut reader), 3);
    drop(writer);
    drop(reader);
    assert!(
        segment_files(dir).is_empty(),
        "the delivered segment is removed"
    );

    // The other process looks again: the segment vanished, settled by another process.
    let _reader = other.try_deliver().unwrap();

    // Whatever it had seen of the segment (one record, or all three if the acknowledgement file still names the
    // removed segment), it counts as settled elsewhere, and nothing as lost.
    let stats = other.stats();
    assert_eq!(stats.corrupt_records, 0, "nothing was lost: {stats:?}");
    assert!(stats.recovered_events >= 1, "{stats:?}");
    assert_eq!(stats.settled_elsewhere, stats.recovered_events, "{stats:?}");
    assert_eq!(stats.pending_events, 0, "{stats:?}");
    assert_balances(&stats, 0);
}

#[test]
fn a_segment_created_and_acknowledged_between_a_listing_and_the_acks_read_is_not_counted_lost() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = temporary.path();
    // The writer holds the delivery lock throughout: the other process looks from outside.
    let writer = Arc::new(Mutex::new(
        Spool::open(test_config(dir, SyncPolicy::Always)).unwrap(),
    ));
    let reader = Arc::new(Mutex::new(deliver(&writer.lock().unwrap())));
    let job = Arc::new(Mutex::new(None));
    let mut config = test_config(dir, SyncPolicy::Always);
    config = config.with_file_system(Arc::new(AfterListing {
        dir: dir.to_path_buf(),
        job: Arc::clone(&job),
    }) as Arc<dyn FileSystem>);
    let other = Spool::open(config).unwrap();
    assert_eq!(other.stats().recovered_events, 0);

    // Right after the other process's next listing, the writer creates its first segment with three records and
    // acknowledges one: the acknowledgement file then names a segment the listing did not see.
    let (in_job_writer, in_job_reader) = (Arc::clone(&writer), Arc::clone(&reader));
    *job.lock().unwrap() = Some(Box::new(move || {
        in_job_writer
            .lock()
            .unwrap()
            .append(&["b1", "b2", "b3"])
            .unwrap();
        let mut reader = in_job_reader.lock().unwrap();
        let batch = reader.next_batch(1, 1 << 20).unwrap().expect("a record");
        reader.ack(&batch.position).unwrap();
    }) as Job);
    assert!(other.try_deliver().unwrap().is_none());
    assert!(job.lock().unwrap().is_none(), "the job ran");

    let stats = other.stats();
    assert_eq!(stats.corrupt_records, 0, "nothing was lost: {stats:?}");
    assert_balances(&stats, 0);
    // The next look finds the segment from its acknowledged cursor on (the record settled before this process saw
    // it is not its business): two records pending, none counted twice.
    assert!(other.try_deliver().unwrap().is_none());
    let stats = other.stats();
    assert_eq!(stats.corrupt_records, 0, "{stats:?}");
    assert_eq!(stats.recovered_events, 2, "{stats:?}");
    assert_eq!(stats.pending_events, 2, "{stats:?}");
    assert_balances(&stats, 0);

    // The writer delivers the rest and exits while delivering; the other process then settles everything elsewhere.
    let Ok(reader) = Arc::try_unwrap(reader) else {
        panic!("the job dropped its reader handle");
    };
    let mut reader = reader.into_inner().unwrap();
    assert_eq!(deliver_all(&mut reader), 2);
    drop(writer);
    drop(reader);
    let _reader = other.try_deliver().unwrap();
    let stats = other.stats();
    assert_eq!(stats.corrupt_records, 0, "{stats:?}");
    assert_eq!(stats.settled_elsewhere, 2, "{stats:?}");
    assert_eq!(stats.pending_events, 0, "{stats:?}");
    assert_balances(&stats, 0);
}
