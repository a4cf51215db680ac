//! [`SpoolReader`]: delivery of all writers' records, in order, with durable acknowledgements.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::acks::AcksSync;
use super::catalog::{Catalog, Settle, View, now_ms};
use super::error::SpoolError;
use super::format::{self, Parsed, SegmentKey};
use super::io::{FileSystem, OpenMode, read_at_most};
use super::segment::Frontier;
use super::segment_map::SegmentState;
use super::writer::{SharedCatalog, lock_catalog};

/// Numbers readers, so a position is only accepted by the reader that handed it out.
static NEXT_READER_ID: AtomicU64 = AtomicU64::new(1);

/// A batch of records handed out by [`SpoolReader::next_batch`].
#[derive(Debug)]
pub struct SpoolBatch {
    /// The records, in record order.
    pub records: Vec<Vec<u8>>,
    /// Acknowledging this position settles this batch and every batch handed out before it.
    pub position: Position,
}

/// Where a batch ends; opaque. Pass it to [`SpoolReader::ack`] once the batch is delivered.
#[derive(Clone, Debug)]
pub struct Position {
    reader_id: u64,
    /// The read cursors of every segment with handed-out, unacknowledged records when the batch was handed out.
    cursors: Vec<(SegmentKey, Frontier)>,
}

/// The delivery side of the spool: holds the cross-process delivery lock until dropped, and hands out the records of
/// every writer of the directory (this process's, live other processes', and dead ones', which it adopts).
///
/// Record order: per writer, records come in append order. Across writers, the writer with the oldest readable
/// segment comes first, so records of different writers interleave roughly in time.
#[derive(Debug)]
pub struct SpoolReader {
    shared: SharedCatalog,
    /// The flock on `delivery.lock`, released when the reader is dropped (or its process dies).
    _lock: File,
    reader_id: u64,
    open_file: Option<(SegmentKey, File)>,
    /// The read-ahead buffer: bytes of segment `cache_key` from offset `cache_start` (all within its frontier).
    buffer: Vec<u8>,
    cache_key: Option<SegmentKey>,
    cache_start: u64,
}

impl SpoolReader {
    pub(crate) fn new(shared: SharedCatalog, lock: File) -> Self {
        Self {
            shared,
            _lock: lock,
            reader_id: NEXT_READER_ID.fetch_add(1, Ordering::Relaxed),
            open_file: None,
            buffer: Vec::new(),
            cache_key: None,
            cache_start: 0,
        }
    }

    /// Hands out the next records after those already handed out: up to `max_records` records (at least one is
    /// asked for even if `max_records` is 0) and up to `max_bytes` bytes of records (a single larger record is
    /// handed out alone). `Ok(None)` when nothing more is available now; new appends (of any process) are found by
    /// later calls. Records older than `max_age` at the head of a segment are dropped instead of handed out.
    ///
    /// # Errors
    /// The I/O variants if a segment or the directory cannot be read, or a drop cannot be persisted.
    pub fn next_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Option<SpoolBatch>, SpoolError> {
        let max_records = max_records.max(1);
        let shared = std::sync::Arc::clone(&self.shared);
        let mut catalog = lock_catalog(&shared);
        let now = now_ms();
        catalog.enforce_retention(now)?;
        let cutoff = now.saturating_sub(catalog.config.max_age.as_millis() as u64);
        let mut out = Batch {
            records: Vec::new(),
            bytes: 0,
            max_records,
            max_bytes,
            age_drops: false,
        };
        for pass in 0..2 {
            // Writers oldest first (by their first readable segment), each writer's segments in sequence order. The
            // catalog is ordered by writer, then sequence: each writer's start is found from its first segments
            // (O(writers), not O(segments)), only writers are sorted, and each writer's segments are visited in place.
            let mut writers: Vec<(u64, format::WriterId)> = catalog
                .segments
                .writers()
                .filter_map(|writer| {
                    catalog
                        .segments
                        .of_writer(writer)
                        .map(|(_, state)| state)
                        .find(|state| readable(state))
                        .map(|state| (state.created_ms, writer))
                })
                .collect();
            writers.sort_unstable();
            for (_, writer) in writers {
                let mut from = SegmentKey { writer, seq: 0 };
                while !out.is_full() {
                    let Some(key) = catalog
                        .segments
                        .range(
                            from..=SegmentKey {
                                writer,
                                seq: u64::MAX,
                            },
                        )
                        .find(|(_, state)| readable(state))
                        .map(|(key, _)| *key)
                    else {
                        break;
                    };
                    self.read_segment(&mut catalog, key, &mut out, cutoff)?;
                    let Some(seq) = key.seq.checked_add(1) else {
                        break;
                    };
                    from = SegmentKey { writer, seq };
                }
                if out.is_full() {
                    break;
                }
            }
            if !out.records.is_empty() || pass == 1 {
                break;
            }
            catalog.refresh(View::Holding)?;
        }
        if out.age_drops {
            catalog.persist_acks(&[])?;
            catalog.remove_settled();
        }
        catalog.persist_write_offs();
        if out.records.is_empty() {
            return Ok(None);
        }
        let cursors = handed_out(&catalog);
        Ok(Some(SpoolBatch {
            records: out.records,
            position: Position {
                reader_id: self.reader_id,
                cursors,
            },
        }))
    }

    /// Durably acknowledges everything handed out up to and including the batch of `position`: after this returns,
    /// those records are never handed out again, by any process. Fully acknowledged, sealed segments are removed (or
    /// moved to `flushed/`). Acknowledging the same or an older position again does nothing.
    ///
    /// # Errors
    /// [`SpoolError::ForeignPosition`] for a position of another reader; the I/O variants if the acknowledgement
    /// file cannot be written (then nothing was acknowledged).
    pub fn ack(&mut self, position: &Position) -> Result<(), SpoolError> {
        match self.begin_ack(position)? {
            Some(pending) => {
                let result = pending.run();
                self.finish_ack(position, pending, result)
            }
            None => Ok(()),
        }
    }

    /// The first half of [`ack`](Self::ack): writes the acknowledgement and, unless its fsync is due now, settles it.
    /// `Some`: the fsync is due; the caller runs it without holding any lock the writer needs (the catalog's is not
    /// held), then calls [`finish_ack`](Self::finish_ack). Nothing is settled before.
    pub(crate) fn begin_ack(
        &mut self,
        position: &Position,
    ) -> Result<Option<PendingAck>, SpoolError> {
        if position.reader_id != self.reader_id {
            return Err(SpoolError::ForeignPosition);
        }
        let mut catalog = lock_catalog(&self.shared);
        let updates = updates(&catalog, position);
        if updates.is_empty() {
            return Ok(None);
        }
        // Invariant: the acknowledgement file is written (and fsynced, if the policy says so now) before anything it
        // settles is removed or counted.
        if let Some(sync) = catalog.write_acks(&updates)? {
            return Ok(Some(PendingAck {
                sync,
                fs: Arc::clone(&catalog.fs),
            }));
        }
        settle(&mut catalog, updates);
        Ok(None)
    }

    /// The second half of [`ack`](Self::ack), after the fsync `begin_ack` asked for ran with `result`: settles the
    /// acknowledgement if it succeeded.
    pub(crate) fn finish_ack(
        &mut self,
        position: &Position,
        pending: PendingAck,
        result: std::io::Result<()>,
    ) -> Result<(), SpoolError> {
        let mut catalog = lock_catalog(&self.shared);
        catalog.finish_acks_sync(pending.sync, result)?;
        let updates = updates(&catalog, position);
        settle(&mut catalog, updates);
        Ok(())
    }

    /// Forgets what was handed out and not acknowledged: the next [`next_batch`](Self::next_batch) starts again at
    /// the first unacknowledged record.
    pub fn rewind(&mut self) {
        let mut catalog = lock_catalog(&self.shared);
        catalog
            .segments
            .for_each_mut(|state| state.read = state.acked);
    }

    /// Reads records of one segment into `out`, from its read cursor up to its known frontier, through the
    /// read-ahead buffer (one `pread` of up to `read_ahead_bytes` serves many batches).
    fn read_segment(
        &mut self,
        catalog: &mut Catalog,
        key: SegmentKey,
        out: &mut Batch,
        cutoff_ms: u64,
    ) -> Result<(), SpoolError> {
        let max_record = catalog.config.max_record_bytes;
        let read_ahead = catalog.config.read_ahead_bytes;
        let fs = std::sync::Arc::clone(&catalog.fs);
        let path = catalog.dir.join(key.file_name());
        let mut min_fill = 0_usize;
        // The offset of the frame the buffer was last refilled for, big enough to hold it whole.
        let mut filled_for: Option<u64> = None;
        // Invariant: every iteration advances the read cursor, refills the buffer once for a frame it lacks, or
        // returns, so damaged data cannot loop.
        loop {
            let Catalog {
                segments,
                counters,
                acks_outdated,
                ..
            } = &mut *catalog;
            let Some(mut state) = segments.get_mut(&key) else {
                return Ok(());
            };
            // Invariant: a skip ends after it starts, so this loop ends.
            while let Some(&(_, end)) = state
                .skips
                .iter()
                .find(|(start, _)| *start == state.read.offset)
            {
                state.read.offset = end;
            }
            if state.read.offset >= state.frontier.offset || out.is_full() {
                return Ok(());
            }
            let next_skip = state
                .skips
                .iter()
                .map(|(start, _)| *start)
                .filter(|start| *start > state.read.offset)
                .min()
                .unwrap_or(u64::MAX);
            let limit = state.frontier.offset.min(next_skip);
            let cache_end = self.cache_start + self.buffer.len() as u64;
            let cached = self.cache_key == Some(key)
                && self.cache_start <= state.read.offset
                && state.read.offset < cache_end
                && min_fill == 0;
            if !cached {
                if self
                    .open_file
                    .as_ref()
                    .is_none_or(|(open_key, _)| *open_key != key)
                {
                    match fs.open(&path, OpenMode::Read) {
                        Ok(file) => self.open_file = Some((key, file)),
                        Err(error) => {
                            // Removed or made unreadable from outside: what was not handed out is lost.
                            let (lost, newly_known) = state.write_off_unread();
                            tracing::debug!(%error, segment = %key.file_name(), records = lost, "spool: a segment cannot be read");
                            counters.recovered += newly_known;
                            counters.corrupt_records += lost;
                            *acks_outdated = true;
                            return Ok(());
                        }
                    }
                }
                let Some((_, file)) = &self.open_file else {
                    return Ok(());
                };
                let available = usize::try_from(limit - state.read.offset).unwrap_or(usize::MAX);
                self.buffer
                    .resize(available.min(read_ahead.max(min_fill)), 0);
                let got = read_at_most(fs.as_ref(), file, &mut self.buffer, state.read.offset)
                    .map_err(|error| SpoolError::io(&path, error))?;
                self.buffer.truncate(got);
                self.cache_key = Some(key);
                self.cache_start = state.read.offset;
                min_fill = 0;
            }
            let from = usize::try_from(state.read.offset - self.cache_start).unwrap_or(usize::MAX);
            let end = usize::try_from(
                limit.min(self.cache_start + self.buffer.len() as u64) - self.cache_start,
            )
            .unwrap_or(0);
            let bytes = self.buffer.get(from..end).unwrap_or(&[]);
            let mut position = 0;
            let damaged = loop {
                if position == bytes.len() {
                    break bytes.is_empty();
                }
                match format::parse_frame(&bytes[position..], max_record) {
                    Parsed::Frame(frame) => {
                        let time_ms = state.created_ms + u64::from(frame.delta_ms);
                        let after = Frontier {
                            offset: state.read.offset + frame.encoded_len() as u64,
                            next_index: frame.index.saturating_add(1),
                            last_delta_ms: frame.delta_ms.max(state.read.last_delta_ms),
                            valid: state.read.valid + 1,
                        };
                        if state.read.offset == state.acked.offset && time_ms < cutoff_ms {
                            // Expired at the head of the segment: dropped, not handed out.
                            counters.dropped_for_age += 1;
                            state.acked = after;
                            state.read = after;
                            out.age_drops = true;
                        } else {
                            if out.is_full()
                                || (!out.records.is_empty()
                                    && out.bytes + frame.payload.len() > out.max_bytes)
                            {
                                out.bytes = out.max_bytes;
                                return Ok(());
                            }
                            out.bytes += frame.payload.len();
                            out.records.push(frame.payload.to_vec());
                            state.read = after;
                        }
                        position += frame.encoded_len();
                    }
                    Parsed::Incomplete { needed } => {
                        let fits = state.read.offset + needed as u64 <= limit;
                        if fits && filled_for != Some(state.read.offset) {
                            // The buffer ends inside a whole frame: refill from it, big enough (once: if the file
                            // still holds less, it changed after it was scanned).
                            min_fill = needed;
                            filled_for = Some(state.read.offset);
                            break false;
                        }
                        break true;
                    }
                    Parsed::Invalid => break true,
                }
            };
            if damaged {
                // The bytes changed after they were scanned (damage on disk while open): the records up to the
                // frontier are lost to this process.
                let (lost, newly_known) = state.write_off_unread();
                tracing::debug!(
                    segment = %key.file_name(),
                    records = lost,
                    "spool: a segment was damaged after it was scanned"
                );
                counters.recovered += newly_known;
                counters.corrupt_records += lost;
                *acks_outdated = true;
                return Ok(());
            }
        }
    }
}

/// An acknowledgement written whose fsync is due: see [`SpoolReader::begin_ack`].
#[derive(Debug)]
pub(crate) struct PendingAck {
    sync: AcksSync,
    fs: Arc<dyn FileSystem>,
}

impl PendingAck {
    /// Runs the fsync.
    pub(crate) fn run(&self) -> std::io::Result<()> {
        self.sync.run(self.fs.as_ref())
    }
}

/// The cursors of `position` that move a segment's acknowledged cursor forward.
fn updates(catalog: &Catalog, position: &Position) -> Vec<(SegmentKey, Frontier)> {
    position
        .cursors
        .iter()
        .filter(|(key, cursor)| {
            catalog
                .segments
                .get(key)
                .is_some_and(|state| cursor.offset > state.acked.offset)
        })
        .copied()
        .collect()
}

/// Settles acknowledged cursors (durable as the policy asks) and removes the segments that are settled (only those
/// the acknowledgement moved can have become so).
fn settle(catalog: &mut Catalog, updates: Vec<(SegmentKey, Frontier)>) {
    for &(key, cursor) in &updates {
        catalog.settle(key, cursor, Settle::Delivered);
    }
    catalog.remove_settled_among(updates.into_iter().map(|(key, _)| key));
}

/// The read cursors of the segments handed out and not yet acknowledged. A writer's segments are read in sequence
/// order, each to its frontier before the next, so those segments come before the first segment of the writer that
/// has unread records and none handed out: the walk stops there, and costs what was handed out (plus the settled
/// segments not yet removed) per writer, not O(segments).
fn handed_out(catalog: &Catalog) -> Vec<(SegmentKey, Frontier)> {
    let cursors: Vec<(SegmentKey, Frontier)> = catalog
        .segments
        .writers()
        .flat_map(|writer| {
            catalog
                .segments
                .of_writer(writer)
                .map(|(_, state)| state)
                .take_while(|state| !(state.read.offset == state.acked.offset && readable(state)))
                .filter(|state| state.read.offset > state.acked.offset)
                .map(|state| (state.key, state.read))
        })
        .collect();
    debug_assert_eq!(
        cursors,
        catalog
            .segments
            .values()
            .filter(|state| state.read.offset > state.acked.offset)
            .map(|state| (state.key, state.read))
            .collect::<Vec<_>>(),
        "a handed-out segment after an unread one"
    );
    cursors
}

/// Whether a segment has records not handed out yet.
fn readable(state: &SegmentState) -> bool {
    state.read.offset < state.frontier.offset
}

/// The batch being filled.
struct Batch {
    records: Vec<Vec<u8>>,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
    age_drops: bool,
}

impl Batch {
    fn is_full(&self) -> bool {
        self.records.len() >= self.max_records
            || (!self.records.is_empty() && self.bytes >= self.max_bytes)
    }
}

impl Drop for SpoolReader {
    fn drop(&mut self) {
        let mut catalog = lock_catalog(&self.shared);
        catalog.release_acks();
        catalog.delivering = false;
        catalog
            .segments
            .for_each_mut(|state| state.read = state.acked);
    }
}
