//! The seam between the pipeline and where serialized events wait: the disk spool, or a bounded memory store.
//!
//! The spooler thread appends; the sender thread reads batches, acknowledges them and rewinds after a failure. Both
//! reach the store through one mutex, held only for a single store call (never across a network call).

use std::path::PathBuf;

use crate::spool::{PendingAck, SpoolError};

/// Where a batch ends in the store; acknowledging it settles every record up to there.
#[derive(Debug, Clone)]
pub(crate) enum StorePosition {
    /// The memory store: the absolute sequence number just past the batch.
    Memory(u64),
    /// The disk spool's own position.
    Spool(crate::spool::Position),
}

/// A batch read from the store: serialized events, oldest first.
#[derive(Debug)]
pub(crate) struct StoredBatch {
    pub(crate) records: Vec<Vec<u8>>,
    pub(crate) position: StorePosition,
}

/// What the store did with an append.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Appended {
    pub(crate) stored: usize,
    /// Records refused because the store is full (memory store only; the spool drops by its own rules).
    pub(crate) refused: usize,
}

/// The store's own counters, for [`Stats`](crate::Stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StoreCounts {
    /// Records not yet acknowledged, including a batch being delivered.
    pub(crate) pending: u64,
    pub(crate) dropped_for_size: u64,
    pub(crate) dropped_for_age: u64,
    /// Records lost to damage on disk (counted in `recovered` too).
    pub(crate) corrupt_records: u64,
    /// Records another process delivering from the same directory acknowledged or dropped.
    pub(crate) settled_elsewhere: u64,
    /// Records found in the store when it opened, or adopted later from another process's spool.
    pub(crate) recovered: u64,
    /// Files named like store files that the store cannot use (the spool's `foreign_files`).
    pub(crate) foreign_files: u64,
}

/// A store call failed: the spool's typed error, kept whole (its [`SpoolError::is_retryable`] says whether the call
/// can succeed later). The memory store fails only when given a position it did not hand out
/// ([`SpoolError::ForeignPosition`]).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub(crate) struct StoreError(#[from] pub(crate) SpoolError);

/// The operations the pipeline needs from a store.
pub(crate) trait Store: Send {
    /// Appends one record per serialized event, in order (taking them: the memory store keeps them as they are).
    fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Appended, StoreError>;
    /// Makes everything appended so far durable (a no-op for memory).
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Syncs if the group-commit interval has passed.
    fn sync_if_due(&mut self) -> Result<(), StoreError>;
    /// The next unread records, at most `max_records` and about `max_bytes` (always at least one record if any is
    /// unread). `None`: nothing unread, or another process holds the delivery lock.
    fn next_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Option<StoredBatch>, StoreError>;
    /// Settles everything up to `position`: it will never be read again.
    fn ack(&mut self, position: &StorePosition) -> Result<(), StoreError>;
    /// [`ack`](Self::ack) in two halves, so that an fsync runs without the store's lock: `Some` means the
    /// acknowledgement is written and its fsync is due; run it, then [`finish_ack`](Self::finish_ack) (nothing is
    /// settled before). By default, acknowledges at once.
    fn begin_ack(&mut self, position: &StorePosition) -> Result<Option<PendingAck>, StoreError> {
        self.ack(position).map(|()| None)
    }
    /// Settles `position` after the fsync [`begin_ack`](Self::begin_ack) asked for ran with `result`. By default
    /// (a store that never asks), acknowledges `position`.
    fn finish_ack(
        &mut self,
        position: &StorePosition,
        pending: PendingAck,
        result: std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let _ = (pending, result);
        self.ack(position)
    }
    /// Reads again from the first unacknowledged record.
    fn rewind(&mut self) -> Result<(), StoreError>;
    /// The store's counters.
    fn counts(&mut self) -> StoreCounts;
    /// The largest record the store accepts; the spooler drops larger events one by one (an oversized record
    /// would fail the whole append).
    fn max_record_bytes(&self) -> usize;
    /// Where the dead-letter file goes; `None` in memory-only mode.
    fn dead_letter_dir(&self) -> Option<PathBuf>;
}
