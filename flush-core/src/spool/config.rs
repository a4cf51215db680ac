//! The spool's configuration, sync policy and statistics.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::error::SpoolError;
use super::format::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::io::{FileSystem, RealFileSystem};

/// Where and how a [`Spool`](super::Spool) keeps its records. Build it with [`SpoolConfig::new`] and change fields.
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// The spool directory, created (mode 0700, with parents) if missing. Several processes may share it.
    pub dir: PathBuf,
    /// When appended records are fsynced.
    pub sync: SyncPolicy,
    /// A segment file is rolled over when the next batch would take it past this size (a single batch larger than
    /// this gets a segment of its own). Default 8 MiB.
    pub max_segment_bytes: u64,
    /// The size budget of the directory (segments and kept flushed segments). Over it, flushed segments and then the
    /// oldest sealed segments are removed, their undelivered records counted in
    /// [`SpoolStats::dropped_for_size`]. Default 256 MiB. Each live writer's open segment comes on top (it cannot be
    /// removed while written), so the directory can exceed the budget by up to `max_segment_bytes` per live writer.
    pub max_total_bytes: u64,
    /// Records older than this are dropped instead of delivered and counted in [`SpoolStats::dropped_for_age`];
    /// kept flushed segments are removed after this age too. Default 2 days.
    pub max_age: Duration,
    /// Move fully delivered segments to `flushed/` instead of deleting them (for inspection); they stay under
    /// `max_age` and `max_total_bytes`. Default false.
    pub keep_flushed: bool,
    /// The largest record accepted by [`append`](super::Spool::append), and the largest length a reader believes
    /// (so a corrupt length field cannot make it allocate more). Default 1 MiB. Readers should use the same value as
    /// writers: a record longer than the reader's limit is treated as damage.
    pub max_record_bytes: u32,
    /// How much a scan or a reader reads per system call (a single larger record is read whole). Default 1 MiB.
    pub read_ahead_bytes: usize,
    /// The file system every file operation goes through (see [`with_file_system`](Self::with_file_system)).
    file_system: Arc<dyn FileSystem>,
}

/// When appended records are fsynced (`fdatasync`).
///
/// Whatever the policy, [`append`](super::Spool::append) hands its batch to the kernel (one `write`) before it
/// returns, so a crash of the process loses nothing appended; the policy decides what an operating-system crash or a
/// power cut can lose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Never fsync: the fastest; an OS crash or power cut may lose the records the kernel had not written back yet
    /// (typically the last 30 seconds), and acknowledgements are not fsynced either (an OS crash can make the last
    /// acknowledged batches be delivered again).
    Never,
    /// Fsync at most once per interval: when [`sync_if_due`](super::Spool::sync_if_due) is called (the reporter calls
    /// it on a tick) or an append finds unsynced data older than the interval. An OS crash loses at most about one
    /// interval (plus the tick period) of records. Acknowledgements are group-committed the same way: written in
    /// place before `ack` returns (a process crash loses none), fsynced at most one interval (plus the tick period)
    /// later, so an OS crash can make at most that window of acknowledged batches be delivered again.
    GroupCommit(Duration),
    /// Fsync before every append returns: nothing `append` returned `Ok` for is ever lost; one fsync per batch.
    /// Acknowledgements are fsynced before `ack` returns.
    Always,
}

impl SpoolConfig {
    /// The default configuration for `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            sync: SyncPolicy::GroupCommit(Duration::from_millis(200)),
            max_segment_bytes: 8 * 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
            max_age: Duration::from_secs(2 * 24 * 60 * 60),
            keep_flushed: false,
            max_record_bytes: 1024 * 1024,
            read_ahead_bytes: 1024 * 1024,
            file_system: Arc::new(RealFileSystem),
        }
    }

    /// Makes every file operation of the spool (and of the reporter's worker threads using it) go through
    /// `file_system` instead of [`RealFileSystem`]: the seam where tests inject disk faults.
    pub fn with_file_system(mut self, file_system: Arc<dyn FileSystem>) -> Self {
        self.file_system = file_system;
        self
    }

    /// The file system the spool uses.
    pub fn file_system(&self) -> &Arc<dyn FileSystem> {
        &self.file_system
    }

    /// Checks the limits once, in one place.
    pub(crate) fn validate(&self) -> Result<(), SpoolError> {
        let smallest_segment = SEGMENT_HEADER_LEN + FRAME_HEADER_LEN as u64;
        if self.max_segment_bytes < smallest_segment {
            return Err(SpoolError::InvalidConfig {
                reason: "max_segment_bytes is smaller than one frame",
            });
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > u32::MAX - FRAME_HEADER_LEN as u32
        {
            return Err(SpoolError::InvalidConfig {
                reason: "max_record_bytes must be between 1 and 4 GiB",
            });
        }
        if self.max_total_bytes < self.max_segment_bytes {
            return Err(SpoolError::InvalidConfig {
                reason: "max_total_bytes is smaller than max_segment_bytes",
            });
        }
        if self.read_ahead_bytes < FRAME_HEADER_LEN {
            return Err(SpoolError::InvalidConfig {
                reason: "read_ahead_bytes is smaller than a frame header",
            });
        }
        if let SyncPolicy::GroupCommit(interval) = self.sync
            && interval.is_zero()
        {
            return Err(SpoolError::InvalidConfig {
                reason: "the group commit interval is zero; use Always",
            });
        }
        Ok(())
    }
}

/// A snapshot of the spool's counters, as seen by this process (see "Accounting" in the [module doc](super)).
///
/// All event counts are exact and in records. For this process, at any moment,
/// `recorded + recovered_events = acknowledged_events + dropped_for_size + dropped_for_age + corrupt_records +
/// settled_elsewhere + dropped_unwritten + pending_events + buffered_events`, where `recorded` is the number of
/// records of this process's [`append`](super::Spool::append) and
/// [`append_buffered`](super::Spool::append_buffered) calls that returned `Ok`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolStats {
    /// Records known to this process and not yet acknowledged or dropped, in the whole directory.
    pub pending_events: u64,
    /// Records of this process's [`append_buffered`](super::Spool::append_buffered) calls still in its write-behind
    /// buffer (not yet written, not in `pending_events`).
    pub buffered_events: u64,
    /// Records of this process's [`append_buffered`](super::Spool::append_buffered) calls that returned `Ok` and were
    /// lost when writing the buffer out failed later (a full disk, say).
    pub dropped_unwritten: u64,
    /// The on-disk bytes (frames, headers included) of the pending records.
    pub pending_bytes: u64,
    /// Segment files in the directory known to this process (kept flushed ones excluded).
    pub segments: u64,
    /// The age of the oldest pending record; an upper bound, exact to the last acknowledged record of its segment.
    pub oldest_pending_age: Option<std::time::Duration>,
    /// Records dropped (never delivered) because the directory was over `max_total_bytes`.
    pub dropped_for_size: u64,
    /// Records dropped (never delivered) because they were older than `max_age`.
    pub dropped_for_age: u64,
    /// Records lost on disk (see "Losses" in the [module doc](super)): those in damaged regions that the scan
    /// skipped (exactly, from the gap in record indexes around each region), those known to exist past the end of
    /// a segment that was cut short or emptied, those of a segment deleted or made unreadable, and pending records
    /// whose bytes were damaged after they were scanned. Records that another writer wrote count in
    /// `recovered_events` too. A torn tail (an incomplete last write, never known to exist) is counted in bytes only.
    pub corrupt_records: u64,
    /// Bytes skipped or cut as damaged, torn tails included.
    pub corrupt_bytes: u64,
    /// Records not appended by this process that it counted: those in the directory when it was opened, and those it
    /// found later (other live writers' new records, adopted dead writers' segments), damaged ones included.
    pub recovered_events: u64,
    /// Records acknowledged through this process's readers.
    pub acknowledged_events: u64,
    /// Records this process had counted as pending that left the spool without it: acknowledged or dropped by
    /// another process delivering from the directory (a segment that vanished while another process may have been
    /// delivering counts here too: only the delivering process can tell a removal from outside).
    pub settled_elsewhere: u64,
    /// Files named like segments or lock files that the spool cannot use, as of its last look at the directory:
    /// not regular files (a FIFO, a socket, a device, a symbolic link, a directory), and segments it cannot open. They
    /// are never read or written.
    pub foreign_files: u64,
    /// Damage in the acknowledgement file as of this process's last read of it: the entries found unreadable (both
    /// slots of a pair damaged), or 1 if the whole file was (a damaged header, or an older version's damaged block).
    /// What they acknowledged is delivered again (at-least-once), never lost.
    pub damaged_acks: u64,
}
