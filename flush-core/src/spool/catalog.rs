//! The in-memory catalog of the spool directory as seen by this process: every segment with its scan frontier,
//! acknowledged and read cursors, every writer's liveness, and the counters behind [`SpoolStats`]. One catalog per
//! open [`Spool`](super::Spool), shared (behind a mutex) with its [`SpoolReader`](super::SpoolReader).

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::acks::{AcksSync, AcksWriter};
use super::config::{SpoolConfig, SpoolStats};
use super::error::SpoolError;
use super::format::{self, AckEntry, SEGMENT_HEADER_LEN, SegmentHeader, SegmentKey, WriterId};
use super::io::{FileSystem, OpenMode, read_at_most, read_whole};
use super::lock::{Liveness, parse_any_lock_file_name, probe_writer, remove_dead_lock_file};
use super::segment::{self, Frontier};
use super::segment_map::{SegmentMap, SegmentState};

/// The acknowledgement file in the spool directory.
pub(crate) const ACKS_FILE: &str = "acks";
/// The directory fully delivered segments are moved to with `keep_flushed`.
pub(crate) const FLUSHED_DIR: &str = "flushed";
/// An acknowledgement file larger than this is damaged (it holds 256 bytes per segment).
const MAX_ACKS_BYTES: u64 = 64 << 20;

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// The counters behind [`SpoolStats`]; see there.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) dropped_for_size: u64,
    pub(crate) dropped_for_age: u64,
    pub(crate) corrupt_records: u64,
    pub(crate) corrupt_bytes: u64,
    pub(crate) recovered: u64,
    pub(crate) acknowledged: u64,
    pub(crate) settled_elsewhere: u64,
    /// Records of `append_buffered` calls lost when their deferred write failed.
    pub(crate) dropped_unwritten: u64,
    /// Files named like spool files that the spool cannot use, as of the last listing.
    pub(crate) foreign_files: u64,
    /// Damaged acknowledgement entries, as of the last read of the file.
    pub(crate) damaged_acks: u64,
}

/// Why an acknowledged cursor moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Delivered through this process's reader.
    Delivered,
    /// Dropped over the size budget.
    Size,
    /// Dropped past the age limit.
    Age,
}

/// How a [`Catalog::refresh`] stands to the delivery lock, which decides what the acknowledgement file proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// Without the delivery lock: the acknowledgement file is read, but another process may write it (and create,
    /// settle and remove segments) between this process's listing and its read, so a segment the file names that
    /// the listing lacks proves nothing to this process.
    Outside,
    /// Just after taking the delivery lock (or holding it for a moment): the acknowledgement file is read, and nobody
    /// else writes it or removes a segment while the lock is held, so it and the listing agree.
    Taking,
    /// Holding the delivery lock since an earlier refresh: the file is not read again (only this process writes it).
    Holding,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriterState {
    Alive,
    Dead,
}

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Catalog {
    pub(crate) dir: PathBuf,
    pub(crate) config: SpoolConfig,
    /// Every file operation goes through here.
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) own: WriterId,
    pub(crate) segments: SegmentMap,
    writers: HashMap<WriterId, WriterState>,
    pub(crate) counters: Counters,
    /// This process holds the delivery lock (its reader is alive).
    pub(crate) delivering: bool,
    flushed_bytes: u64,
    scratch: Vec<u8>,
    /// Segments of the acknowledgement file without a file, whose missing records this process already counted.
    written_off: BTreeSet<SegmentKey>,
    /// Losses were written off that the acknowledgement file still describes as existing: the delivering process
    /// rewrites it, so that later processes do not count them again.
    pub(crate) acks_outdated: bool,
    /// The acknowledgement file open for in-place writes, while this process delivers and since its first rewrite.
    acks: Option<AcksWriter>,
}

/// What a listing of the directory found.
#[derive(Default)]
struct Listing {
    segments: BTreeSet<SegmentKey>,
    /// Writer lock files, final and half created, by name.
    locks: Vec<(WriterId, String)>,
    /// Entries named like segments or locks that are not regular files.
    foreign: u64,
}

impl Catalog {
    pub(crate) fn new(config: SpoolConfig, own: WriterId) -> Self {
        Self {
            dir: config.dir.clone(),
            fs: Arc::clone(config.file_system()),
            config,
            own,
            segments: SegmentMap::default(),
            writers: HashMap::new(),
            counters: Counters::default(),
            delivering: false,
            flushed_bytes: 0,
            scratch: Vec::new(),
            written_off: BTreeSet::new(),
            acks_outdated: false,
            acks: None,
        }
    }

    fn io_error(&self, path: &Path, error: io::Error) -> SpoolError {
        if error.kind() == io::ErrorKind::NotFound && self.fs.symlink_metadata(&self.dir).is_err() {
            return SpoolError::io(&self.dir, error);
        }
        match error.kind() {
            io::ErrorKind::NotFound => SpoolError::Io {
                path: path.to_path_buf(),
                source: error,
            },
            _ => SpoolError::io(path, error),
        }
    }

    /// Brings the catalog up to date with the directory: new and vanished segments, new records of other writers,
    /// writers that died (their torn tails cut), and, unless [`View::Holding`], acknowledgements made by another
    /// process. A holder of the delivery lock ([`View::Holding`]) also removes settled segments and dead writers'
    /// lock files.
    pub(crate) fn refresh(&mut self, view: View) -> Result<(), SpoolError> {
        let holder = view == View::Holding;
        // Invariant: the listing comes before the read of the acknowledgement file. A segment is removed only after
        // an acknowledgement file settling it whole is written, so a segment missing from the listing is described
        // by the file read after it as settled (or not at all), unless it was removed from outside.
        let listing = self.list()?;
        let listed_segments = listing.segments;
        let mut foreign = listing.foreign;
        let acks = if holder {
            HashMap::new()
        } else {
            self.read_acks()
        };

        // Segments that vanished. While this process holds the delivery lock nobody else settles anything, so their
        // pending records are lost (deleted from outside). Otherwise the delivering process may have settled and
        // removed them: what the acknowledgement file says it settled is settled elsewhere (records appended after
        // this process last scanned included: they existed, and were found and settled at once), what it knew beyond
        // that is lost, and without an entry (already dropped from the file) the whole rest counts as settled
        // elsewhere.
        let vanished: Vec<SegmentKey> = self
            .segments
            .keys()
            .filter(|key| !listed_segments.contains(key) && **key != self.own_open_key())
            .copied()
            .collect();
        for key in vanished {
            let Some(mut state) = self.segments.remove(&key) else {
                continue;
            };
            let entry = acks.get(&key);
            if let Some(entry) = entry {
                state.learn(entry);
                self.written_off.insert(key);
            }
            let settled = match entry {
                _ if self.delivering => 0,
                Some(entry) => {
                    if entry.offset > state.frontier.offset {
                        // Settled by another process beyond what this one scanned: known now, and settled.
                        self.counters.recovered += entry.valid.saturating_sub(state.frontier.valid);
                        state.frontier = Frontier {
                            offset: entry.offset,
                            next_index: entry.next_index,
                            last_delta_ms: entry.last_delta_ms,
                            valid: entry.valid,
                        };
                    }
                    entry
                        .valid
                        .saturating_sub(state.acked.valid)
                        .min(state.pending())
                }
                None => {
                    // Ambiguous: what the file knew beyond this process's view was settled there too.
                    state.known = None;
                    state.pending()
                }
            };
            self.counters.settled_elsewhere += settled;
            state.acked.valid += settled;
            state.read.valid = state.read.valid.max(state.acked.valid);
            let in_flight = state.read.valid.saturating_sub(state.acked.valid);
            state.sealed = true;
            let (lost, newly_known) = state.write_off_unread();
            self.counters.recovered += newly_known;
            if lost > 0 {
                tracing::debug!(segment = %key.file_name(), records = lost, "spool: a segment vanished with records");
                self.counters.corrupt_records += lost;
                self.acks_outdated = true;
            }
            if in_flight > 0 {
                // Handed out and not acknowledged yet: kept until the acknowledgement (or a rewind) settles them.
                self.segments.insert(key, state);
            }
        }
        // Segments the acknowledgement file knew with records not settled, and whose file is gone: those records are
        // lost (found, and at once lost). Only a process that has just taken the delivery lock can tell: from outside,
        // the segment may have been created after the listing (and the file written since), so it is left to the
        // delivering process, which counts the loss once and drops the entry.
        self.written_off.retain(|key| acks.contains_key(key));
        for (key, entry) in &acks {
            if view != View::Taking
                || listed_segments.contains(key)
                || self.segments.contains_key(key)
                || self.written_off.contains(key)
            {
                continue;
            }
            let lost = entry.known_valid.saturating_sub(entry.valid);
            if lost > 0 {
                tracing::debug!(segment = %key.file_name(), records = lost, "spool: a known segment is missing");
                self.counters.recovered += lost;
                self.counters.corrupt_records += lost;
                // Rewritten without the entry, so that no other process counts the loss again (an entry settled
                // whole proves nothing and goes with the next acknowledgement).
                self.acks_outdated = true;
            }
            self.written_off.insert(*key);
        }
        // New segments. Invariant: this writer's own segments enter the catalog only through the writer (a refresh
        // racing with a segment creation must not take the new file for a sealed, settled one and remove it).
        for key in &listed_segments {
            if key.writer != self.own
                && !self.segments.contains_key(key)
                && !self.add_segment(*key, acks.get(key))
            {
                foreign += 1;
            }
        }
        self.counters.foreign_files = foreign;
        // Acknowledgements made by another delivering process.
        for (key, entry) in &acks {
            self.apply_foreign_ack(*key, *entry);
        }
        // Liveness: a live writer's older segments are sealed by its rollover; a dead writer's are all sealed.
        let writers: BTreeSet<WriterId> = self
            .segments
            .keys()
            .map(|key| key.writer)
            .filter(|writer| *writer != self.own)
            .collect();
        for writer in writers {
            if self.writers.get(&writer) == Some(&WriterState::Dead) {
                continue;
            }
            let last_seq = self
                .segments
                .range(writer_range(writer))
                .next_back()
                .map_or(0, |(key, _)| key.seq);
            self.segments
                .for_each_mut_in(writer_range(writer), |state| {
                    if state.key.seq < last_seq {
                        state.sealed = true;
                    }
                });
            let tail = SegmentKey {
                writer,
                seq: last_seq,
            };
            let needs_probe = match self.writers.get(&writer) {
                None => true,
                Some(_) => self.segments.get(&tail).is_some_and(|state| {
                    // Stalled on bytes that are not (yet) a valid frame, or fully delivered and waiting to be removed.
                    state.file_len > state.frontier.offset
                        || (holder && state.acked.offset >= state.frontier.offset)
                }),
            };
            if needs_probe {
                self.probe_and_adopt(writer);
            }
        }
        self.scan_all();
        if holder {
            self.collect_garbage(&listed_segments, &listing.locks);
        }
        Ok(())
    }

    /// The key this writer's open segment would have if it were in the catalog (vanishing own segments are the
    /// writer's business: it re-creates the directory).
    fn own_open_key(&self) -> SegmentKey {
        self.segments.values().find(|state| state.own_open).map_or(
            SegmentKey {
                writer: self.own,
                seq: u64::MAX,
            },
            |state| state.key,
        )
    }

    /// Lists the segment and lock files of the directory. Entries named like them that are not regular files are
    /// counted as foreign and never opened.
    fn list(&self) -> Result<Listing, SpoolError> {
        let entries = self
            .fs
            .read_dir(&self.dir)
            .map_err(|error| SpoolError::io(&self.dir, error))?;
        let mut listing = Listing::default();
        for entry in entries {
            let Some(name) = entry.name.to_str() else {
                continue;
            };
            let segment = SegmentKey::parse_file_name(name);
            let lock = parse_any_lock_file_name(name);
            if (segment.is_some() || lock.is_some()) && !entry.is_file {
                tracing::debug!(
                    name,
                    "spool: a file named like a spool file is not a regular file"
                );
                listing.foreign += 1;
            } else if let Some(key) = segment {
                listing.segments.insert(key);
            } else if let Some(writer) = lock {
                listing.locks.push((writer, name.to_owned()));
            }
        }
        Ok(listing)
    }

    /// Reads the acknowledgement file; a missing or damaged file means "nothing acknowledged" (at-least-once).
    pub(crate) fn read_acks(&mut self) -> HashMap<SegmentKey, AckEntry> {
        let path = self.dir.join(ACKS_FILE);
        let read = match self.fs.symlink_metadata(&path) {
            Ok(metadata) if metadata.len() > MAX_ACKS_BYTES => {
                Err(io::Error::other("the acks file is too large"))
            }
            Ok(_) => read_whole(self.fs.as_ref(), &path),
            Err(error) => Err(error),
        };
        match read {
            Ok(bytes) => match format::decode_acks(&bytes) {
                Some(decoded) => {
                    self.counters.damaged_acks = decoded.damaged_pairs;
                    if decoded.damaged_pairs > 0 {
                        tracing::debug!(path = %path.display(), entries = decoded.damaged_pairs, "spool: acks entries are damaged; redelivering their records");
                    }
                    decoded
                        .entries
                        .into_iter()
                        .map(|entry| (entry.key, entry))
                        .collect()
                }
                None => {
                    tracing::debug!(path = %path.display(), "spool: the acks file is damaged; redelivering");
                    self.counters.damaged_acks = 1;
                    HashMap::new()
                }
            },
            Err(error) => {
                self.counters.damaged_acks = u64::from(error.kind() != io::ErrorKind::NotFound);
                HashMap::new()
            }
        }
    }

    /// Adds a segment found in the directory; false if its file cannot be opened (it is then counted as foreign, and
    /// what the acknowledgement file knew of it beyond its settled cursor is written off as lost).
    fn add_segment(&mut self, key: SegmentKey, ack: Option<&AckEntry>) -> bool {
        let path = self.dir.join(key.file_name());
        let opened = self
            .fs
            .open(&path, OpenMode::Read)
            .and_then(|file| file.metadata().map(|metadata| (file, metadata)));
        let (file, metadata) = match opened {
            Ok(opened) => opened,
            // Removed since the listing: the next listing does not show it.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return true,
            Err(error) => {
                tracing::debug!(%error, path = %path.display(), "spool: cannot open a segment");
                if let Some(entry) = ack
                    && self.written_off.insert(key)
                {
                    let lost = entry.known_valid.saturating_sub(entry.valid);
                    self.counters.recovered += lost;
                    self.counters.corrupt_records += lost;
                    self.acks_outdated = true;
                }
                return false;
            }
        };
        let file_len = metadata.len();
        let mut header = [0_u8; SEGMENT_HEADER_LEN as usize];
        let header_len = read_at_most(self.fs.as_ref(), &file, &mut header, 0).unwrap_or(0);
        let created_ms = match SegmentHeader::decode(&header[..header_len]) {
            Some(decoded) if decoded.key == key => decoded.created_ms,
            _ if file_len < SEGMENT_HEADER_LEN => {
                // Being created by a live writer, or a dead writer's torn creation: looked at again by a later refresh
                // (a dead writer's is removed by the garbage collection).
                return true;
            }
            _ => {
                // A damaged header: the frames after it are still read; their times count from the file's mtime.
                tracing::debug!(path = %path.display(), "spool: a segment header is damaged");
                self.counters.corrupt_bytes += SEGMENT_HEADER_LEN;
                metadata
                    .modified()
                    .ok()
                    .and_then(|modified| modified.duration_since(UNIX_EPOCH).ok())
                    .map_or_else(now_ms, |elapsed| elapsed.as_millis() as u64)
            }
        };
        let mut state = SegmentState::new(key, created_ms, file_len);
        if let Some(entry) = ack {
            let cursor = Frontier {
                offset: entry.offset.max(SEGMENT_HEADER_LEN),
                next_index: entry.next_index,
                last_delta_ms: entry.last_delta_ms,
                valid: entry.valid,
            };
            state.frontier = cursor;
            state.acked = cursor;
            state.read = cursor;
            state.learn(entry);
        }
        if self.writers.get(&key.writer) == Some(&WriterState::Dead) {
            state.sealed = true;
        }
        self.segments.insert(key, state);
        true
    }

    fn apply_foreign_ack(&mut self, key: SegmentKey, entry: AckEntry) {
        let Some(mut state) = self.segments.get_mut(&key) else {
            return;
        };
        state.learn(&entry);
        if entry.offset <= state.acked.offset {
            return;
        }
        let beyond_frontier = entry.offset > state.frontier.offset;
        drop(state);
        if beyond_frontier {
            // Another process read further than this one scanned: catch up first, so the counts compare.
            self.scan_segment(key);
        }
        let Some(mut state) = self.segments.get_mut(&key) else {
            return;
        };
        let cursor = Frontier {
            offset: entry.offset,
            next_index: entry.next_index,
            last_delta_ms: entry.last_delta_ms,
            valid: entry.valid,
        };
        if cursor.offset > state.frontier.offset {
            // Still beyond what this process can see (a damaged region it cannot resync yet): jump.
            self.counters.recovered += cursor.valid.saturating_sub(state.frontier.valid);
            state.frontier = cursor;
        }
        let settled = cursor
            .valid
            .saturating_sub(state.acked.valid)
            .min(state.pending());
        self.counters.settled_elsewhere += settled;
        state.acked = cursor;
        if state.read.offset < cursor.offset {
            state.read = cursor;
        }
    }

    /// Probes a writer that is not known dead; if it is dead, seals its segments and cuts their torn tails while
    /// holding its lock, so two processes never cut the same file at once.
    fn probe_and_adopt(&mut self, writer: WriterId) {
        match probe_writer(self.fs.as_ref(), &self.dir, writer) {
            Liveness::Alive => {
                self.writers.insert(writer, WriterState::Alive);
            }
            Liveness::Dead(lock) => {
                self.writers.insert(writer, WriterState::Dead);
                let keys: Vec<SegmentKey> = self
                    .segments
                    .range(writer_range(writer))
                    .map(|(key, _)| *key)
                    .collect();
                for key in keys {
                    if let Some(mut state) = self.segments.get_mut(&key) {
                        state.sealed = true;
                    }
                    let torn_at = self.scan_segment(key);
                    if let (Some(torn_at), Some(_)) = (torn_at, &lock) {
                        self.cut_tail(key, torn_at);
                    }
                }
                tracing::debug!(%writer, "spool: adopted the segments of a dead writer");
                drop(lock);
            }
        }
    }

    fn cut_tail(&mut self, key: SegmentKey, torn_at: u64) {
        let path = self.dir.join(key.file_name());
        let fs = self.fs.as_ref();
        let result = fs.open(&path, OpenMode::ReadWrite).and_then(|file| {
            fs.set_len(&file, torn_at)?;
            fs.sync_data(&file)
        });
        match result {
            Ok(()) => {
                if let Some(mut state) = self.segments.get_mut(&key) {
                    state.file_len = torn_at;
                }
            }
            Err(error) => {
                tracing::debug!(%error, path = %path.display(), "spool: cannot cut a torn tail")
            }
        }
    }

    fn scan_all(&mut self) {
        let keys: Vec<SegmentKey> = self
            .segments
            .values()
            .filter(|state| !state.own_open && !state.complete)
            .map(|state| state.key)
            .collect();
        for key in keys {
            self.scan_segment(key);
        }
    }

    /// Scans one segment from its frontier; returns where its torn tail starts, if it has one. A sealed segment that
    /// cannot be opened any more, or whose complete scan ends before what was known of it, has lost those records.
    fn scan_segment(&mut self, key: SegmentKey) -> Option<u64> {
        let max_record = self.config.max_record_bytes;
        let chunk = self.config.read_ahead_bytes;
        let own = self.own;
        let path = self.dir.join(key.file_name());
        let mut state = self.segments.get_mut(&key)?;
        if state.own_open || state.complete {
            return None;
        }
        let file = match self.fs.open(&path, OpenMode::Read) {
            Ok(file) => file,
            Err(error) => {
                if state.sealed && error.kind() != io::ErrorKind::NotFound {
                    let (lost, newly_known) = state.write_off_unread();
                    tracing::debug!(%error, path = %path.display(), records = lost, "spool: a segment cannot be read");
                    self.counters.recovered += newly_known;
                    self.counters.corrupt_records += lost;
                    self.acks_outdated = true;
                }
                return None;
            }
        };
        let file_len = file.metadata().ok()?.len();
        state.file_len = file_len;
        if file_len <= state.frontier.offset && !state.sealed {
            return None;
        }
        let (mut frontier, sealed) = (state.frontier, state.sealed);
        let scanned = segment::scan(
            self.fs.as_ref(),
            &file,
            file_len,
            &mut frontier,
            sealed,
            max_record,
            chunk,
            &mut self.scratch,
        );
        state.frontier = frontier;
        let report = match scanned {
            Ok(report) => report,
            Err(error) => {
                tracing::debug!(%error, path = %path.display(), "spool: cannot scan a segment");
                return None;
            }
        };
        if key.writer != own {
            // Records lost in damaged regions were in the directory too: found, and at once lost.
            self.counters.recovered += report.new_valid + report.corrupt_records;
        }
        self.counters.corrupt_records += report.corrupt_records;
        self.counters.corrupt_bytes += report.corrupt_bytes;
        state.skips.extend(report.skips);
        state.complete = report.complete;
        if let Some(known) = state.known {
            if state.frontier.offset >= known.offset {
                state.known = None;
            } else if report.complete {
                // Invariant: record indexes are dense within a segment, so the records known to exist past the last
                // valid frame are exactly the missing indexes (a gap in the middle was counted by the scan).
                let lost = u64::from(known.next_index.saturating_sub(state.frontier.next_index));
                tracing::debug!(path = %path.display(), records = lost, "spool: a segment ends before what was known of it");
                if key.writer != own {
                    self.counters.recovered += lost;
                }
                self.counters.corrupt_records += lost;
                state.known = None;
                state.vouched = state.frontier;
                self.acks_outdated = true;
            }
        }
        report.torn_at
    }

    /// Removes settled segments (or moves them to `flushed/`) and the lock files of dead writers with no segments.
    /// Only a holder of the delivery lock calls this, after the acknowledgements that settled them are durable.
    fn collect_garbage(
        &mut self,
        listed_segments: &BTreeSet<SegmentKey>,
        listed_locks: &[(WriterId, String)],
    ) {
        // Segment files too short for a header, of dead writers: torn creations, holding no record.
        for key in listed_segments {
            if self.segments.contains_key(key) || key.writer == self.own {
                continue;
            }
            if let Liveness::Dead(lock) = probe_writer(self.fs.as_ref(), &self.dir, key.writer) {
                let path = self.dir.join(key.file_name());
                if let Ok(metadata) = self.fs.symlink_metadata(&path)
                    && metadata.is_file()
                    && metadata.len() < SEGMENT_HEADER_LEN
                    && self.fs.remove_file(&path).is_ok()
                {
                    self.counters.corrupt_bytes += metadata.len();
                }
                drop(lock);
            }
        }
        self.remove_settled();
        // Lock files (final or half created) of dead writers with no segment left: removed under their lock.
        for (writer, name) in listed_locks {
            if *writer == self.own
                || self.segments.range(writer_range(*writer)).next().is_some()
                || listed_segments
                    .range(writer_range(*writer))
                    .next()
                    .is_some()
            {
                continue;
            }
            if remove_dead_lock_file(self.fs.as_ref(), &self.dir, name) {
                self.writers.remove(writer);
            }
        }
        if self.config.keep_flushed {
            self.prune_flushed(now_ms(), u64::MAX);
        }
    }

    /// Removes the settled segments (after an acknowledgement made them so durably).
    pub(crate) fn remove_settled(&mut self) {
        let settled: Vec<SegmentKey> = self
            .segments
            .values()
            .filter(|state| state.settled())
            .map(|state| state.key)
            .collect();
        self.remove_settled_among(settled);
    }

    /// Removes those of `keys` that are settled (or moves them to `flushed/`).
    pub(crate) fn remove_settled_among(&mut self, keys: impl IntoIterator<Item = SegmentKey>) {
        for key in keys {
            if self.segments.get(&key).is_some_and(SegmentState::settled)
                && self.remove_segment_file(key, false).is_ok()
            {
                self.forget_segment(key);
            }
        }
    }

    /// Takes a removed segment out of the catalog, and its entry out of the acknowledgement file.
    fn forget_segment(&mut self, key: SegmentKey) {
        self.segments.remove(&key);
        if let Some(acks) = self.acks.as_mut() {
            acks.release(self.fs.as_ref(), key);
        }
    }

    /// Deletes a segment file, or moves it to `flushed/` (unless `dropped`: dropped data is not kept).
    fn remove_segment_file(&mut self, key: SegmentKey, dropped: bool) -> io::Result<()> {
        let path = self.dir.join(key.file_name());
        let result = if self.config.keep_flushed && !dropped {
            let flushed = self.dir.join(FLUSHED_DIR);
            self.fs.create_dir_all(&flushed).and_then(|()| {
                self.fs
                    .rename(&path, flushed.join(key.file_name()).as_path())
            })
        } else {
            self.fs.remove_file(&path)
        };
        match &result {
            Ok(()) => {
                if self.config.keep_flushed && !dropped {
                    self.flushed_bytes += self.segments.get(&key).map_or(0, |state| state.file_len);
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => {
                tracing::debug!(%error, path = %path.display(), "spool: cannot remove a settled segment")
            }
        }
        result
    }

    /// Removes kept flushed segments older than `max_age`, then the oldest ones while the directory is over `budget`.
    fn prune_flushed(&mut self, now: u64, budget: u64) {
        let flushed = self.dir.join(FLUSHED_DIR);
        let Ok(entries) = self.fs.read_dir(&flushed) else {
            self.flushed_bytes = 0;
            return;
        };
        let cutoff = now.saturating_sub(self.config.max_age.as_millis() as u64);
        let mut files: Vec<(u64, u64, PathBuf)> = entries
            .into_iter()
            .filter_map(|entry| {
                let path = flushed.join(&entry.name);
                let metadata = self.fs.symlink_metadata(&path).ok()?;
                let modified = metadata
                    .modified()
                    .ok()?
                    .duration_since(UNIX_EPOCH)
                    .ok()?
                    .as_millis() as u64;
                Some((modified, metadata.len(), path))
            })
            .collect();
        files.sort();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        let segments_bytes = self.segment_bytes();
        for (modified, len, path) in files {
            if modified >= cutoff && segments_bytes + total <= budget {
                break;
            }
            if self.fs.remove_file(&path).is_ok() {
                total -= len;
            }
        }
        self.flushed_bytes = total;
    }

    fn segment_bytes(&self) -> u64 {
        self.segments.totals().file_bytes
    }

    /// The directory's size as this process knows it.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.segment_bytes() + self.flushed_bytes
    }

    /// Moves the acknowledged cursor of `key` to `to` (if that is forward) and counts the records it settles.
    pub(crate) fn settle(&mut self, key: SegmentKey, to: Frontier, why: Settle) {
        let Some(mut state) = self.segments.get_mut(&key) else {
            return;
        };
        if to.offset <= state.acked.offset {
            return;
        }
        let count = to.valid.saturating_sub(state.acked.valid);
        match why {
            Settle::Delivered => self.counters.acknowledged += count,
            Settle::Size => self.counters.dropped_for_size += count,
            Settle::Age => self.counters.dropped_for_age += count,
        }
        state.acked = to;
        if state.read.offset < to.offset {
            state.read = to;
        }
    }

    /// The whole directory is gone (deleted from outside; no delivering process ever removes it): every known
    /// record is lost, except those handed out and not yet acknowledged, which their acknowledgement (or a rewind)
    /// settles.
    pub(crate) fn lose_directory(&mut self) {
        let keys: Vec<SegmentKey> = self.segments.keys().copied().collect();
        for key in keys {
            let Some(mut state) = self.segments.remove(&key) else {
                continue;
            };
            state.sealed = true;
            state.own_open = false;
            let in_flight = state.read.valid > state.acked.valid;
            let (lost, newly_known) = state.write_off_unread();
            self.counters.recovered += newly_known;
            self.counters.corrupt_records += lost;
            if in_flight {
                self.segments.insert(key, state);
            }
        }
        self.written_off.clear();
        // The file went with the directory: the next persist writes a new one.
        self.acks = None;
    }

    /// Persists the acknowledged cursors, with `overrides` in place of the current ones, and fsyncs them if that is
    /// due (under the catalog lock: the acknowledgement path uses [`write_acks`](Self::write_acks) and syncs outside
    /// it). Only a holder of the delivery lock calls this.
    pub(crate) fn persist_acks(
        &mut self,
        overrides: &[(SegmentKey, Frontier)],
    ) -> Result<(), SpoolError> {
        match self.write_acks(overrides)? {
            Some(sync) => {
                let result = sync.run(self.fs.as_ref());
                self.finish_acks_sync(sync, result)
            }
            None => Ok(()),
        }
    }

    /// Writes the acknowledged cursors, with `overrides` in place of the current ones. While this process delivers
    /// and has the file open, only the entries of `overrides` are rewritten, in place; otherwise (and for an empty
    /// `overrides`: a change to entries not listed) the whole file is rewritten atomically and, while delivering, kept
    /// open. Returns the fsync that is due per the sync policy, to run with the catalog unlocked, then hand to
    /// [`finish_acks_sync`](Self::finish_acks_sync). Only a holder of the delivery lock calls this.
    pub(crate) fn write_acks(
        &mut self,
        overrides: &[(SegmentKey, Frontier)],
    ) -> Result<Option<AcksSync>, SpoolError> {
        if !self.delivering || overrides.is_empty() || self.acks.is_none() {
            self.rewrite_acks(overrides)?;
            return Ok(None);
        }
        let fs = Arc::clone(&self.fs);
        let mut written = Ok(());
        for (index, (key, _)) in overrides.iter().enumerate() {
            if overrides[..index].iter().any(|(earlier, _)| earlier == key) {
                continue;
            }
            let Some(state) = self.segments.get(key) else {
                continue;
            };
            let entry = state.ack_entry(overridden(state, overrides));
            if let Some(acks) = self.acks.as_mut() {
                written = acks.write(fs.as_ref(), &entry);
            }
            if written.is_err() {
                break;
            }
        }
        match written {
            Ok(()) => Ok(self.acks.as_mut().and_then(|acks| acks.take_sync(false))),
            Err(error) => {
                // The next persist rewrites the whole file.
                self.acks = None;
                Err(self.io_error(&self.dir.join(ACKS_FILE), error))
            }
        }
    }

    /// Takes out the fsync of acknowledgements written in place that is due (any unsynced ones if `force`), to run
    /// with the catalog unlocked.
    pub(crate) fn take_acks_sync(&mut self, force: bool) -> Option<AcksSync> {
        self.acks.as_mut()?.take_sync(force)
    }

    /// Records the outcome of an fsync taken out by [`write_acks`](Self::write_acks) or
    /// [`take_acks_sync`](Self::take_acks_sync).
    pub(crate) fn finish_acks_sync(
        &mut self,
        sync: AcksSync,
        result: io::Result<()>,
    ) -> Result<(), SpoolError> {
        let path = sync.path().to_path_buf();
        if let Some(acks) = self.acks.as_mut() {
            acks.finish_sync(sync, &result);
        }
        result.map_err(|error| self.io_error(&path, error))
    }

    /// Stops writing the acknowledgement file in place (this process stops delivering), fsyncing what is unsynced
    /// (unless the policy is `Never`).
    pub(crate) fn release_acks(&mut self) {
        if let Some(sync) = self.take_acks_sync(true) {
            let result = sync.run(self.fs.as_ref());
            if let Err(error) = self.finish_acks_sync(sync, result) {
                tracing::debug!(%error, "spool: cannot fsync the acks file");
            }
        }
        self.acks = None;
    }

    /// Writes the whole acknowledgement file atomically (temporary file, fsync, rename, directory fsync; no fsync
    /// with [`SyncPolicy::Never`](super::SyncPolicy::Never)), with `overrides` in place of the current acknowledged
    /// cursors; while delivering, keeps it open for in-place writes.
    fn rewrite_acks(&mut self, overrides: &[(SegmentKey, Frontier)]) -> Result<(), SpoolError> {
        let mut entries: Vec<AckEntry> = Vec::with_capacity(self.segments.len());
        for state in self.segments.values() {
            let entry = state.ack_entry(overridden(state, overrides));
            if entry.known_offset > SEGMENT_HEADER_LEN {
                entries.push(entry);
            }
        }
        let temporary = self.dir.join(format!("{ACKS_FILE}.{}.tmp", self.own));
        let path = self.dir.join(ACKS_FILE);
        self.acks = None;
        match AcksWriter::create(
            self.fs.as_ref(),
            &self.dir,
            &path,
            &temporary,
            self.config.sync,
            &entries,
        ) {
            Ok(writer) => {
                self.acks_outdated = false;
                if self.delivering {
                    self.acks = Some(writer);
                }
                Ok(())
            }
            Err(error) => {
                let _ = self.fs.remove_file(&temporary);
                Err(self.io_error(&path, error))
            }
        }
    }

    /// Rewrites the acknowledgement file if it still describes losses this process wrote off (best effort: a failure
    /// only means that another process may count them again). Only a holder of the delivery lock calls this.
    pub(crate) fn persist_write_offs(&mut self) {
        if !self.acks_outdated {
            return;
        }
        if let Err(error) = self.persist_acks(&[]) {
            tracing::debug!(%error, "spool: cannot rewrite the acks file after a loss");
        }
    }

    /// Applies the size and age limits (whole segments; the reader drops single expired records). Only a holder of
    /// the delivery lock calls this. Records handed out and not yet acknowledged are never dropped.
    pub(crate) fn enforce_retention(&mut self, now: u64) -> Result<(), SpoolError> {
        let cutoff = now.saturating_sub(self.config.max_age.as_millis() as u64);
        let mut drops: Vec<(SegmentKey, Frontier, Settle)> = Vec::new();
        // A writer's segments are in time order: only its first ones can be past the age limit, so this visits the
        // expired segments and one more per writer, whatever the backlog.
        for writer in self.segments.writers() {
            for (_, state) in self.segments.of_writer(writer) {
                if state.last_time_ms() >= cutoff {
                    break;
                }
                if state.read.offset == state.acked.offset && state.pending() > 0 {
                    drops.push((state.key, state.frontier, Settle::Age));
                }
            }
        }
        let mut removals: Vec<SegmentKey> = Vec::new();
        if self.total_bytes() > self.config.max_total_bytes {
            if self.flushed_bytes > 0 {
                self.prune_flushed(now, self.config.max_total_bytes);
            }
            let mut excess = self
                .total_bytes()
                .saturating_sub(self.config.max_total_bytes);
            let mut oldest: Vec<&SegmentState> = self
                .segments
                .values()
                .filter(|state| state.sealed && state.complete && !state.own_open)
                .filter(|state| state.read.offset == state.acked.offset)
                .collect();
            oldest.sort_by_key(|state| (state.created_ms, state.key));
            for state in oldest {
                if excess == 0 {
                    break;
                }
                excess = excess.saturating_sub(state.file_len);
                if !drops.iter().any(|(key, _, _)| *key == state.key) {
                    drops.push((state.key, state.frontier, Settle::Size));
                }
                removals.push(state.key);
            }
        }
        if drops.is_empty() && removals.is_empty() {
            return Ok(());
        }
        let overrides: Vec<(SegmentKey, Frontier)> =
            drops.iter().map(|(key, to, _)| (*key, *to)).collect();
        self.persist_acks(&overrides)?;
        for (key, to, why) in drops {
            if why == Settle::Size || why == Settle::Age {
                let pending = self.segments.get(&key).map_or(0, SegmentState::pending);
                if pending > 0 {
                    tracing::debug!(segment = %key.file_name(), records = pending, reason = ?why, "spool: dropped records");
                }
            }
            self.settle(key, to, why);
        }
        for key in removals {
            if self.remove_segment_file(key, true).is_ok() {
                self.forget_segment(key);
            }
        }
        Ok(())
    }

    /// The statistics as of now.
    pub(crate) fn stats(&self) -> SpoolStats {
        let now = now_ms();
        let mut stats = SpoolStats {
            dropped_for_size: self.counters.dropped_for_size,
            dropped_for_age: self.counters.dropped_for_age,
            corrupt_records: self.counters.corrupt_records,
            corrupt_bytes: self.counters.corrupt_bytes,
            recovered_events: self.counters.recovered,
            acknowledged_events: self.counters.acknowledged,
            settled_elsewhere: self.counters.settled_elsewhere,
            dropped_unwritten: self.counters.dropped_unwritten,
            foreign_files: self.counters.foreign_files,
            damaged_acks: self.counters.damaged_acks,
            ..SpoolStats::default()
        };
        let totals = self.segments.totals();
        stats.segments = totals.segments;
        stats.pending_events = totals.pending_events;
        stats.pending_bytes = totals.pending_bytes;
        // A writer's oldest pending record is in its first segment with any: O(writers), not O(segments).
        let oldest = self
            .segments
            .writers()
            .filter_map(|writer| {
                self.segments
                    .of_writer(writer)
                    .map(|(_, state)| state)
                    .find(|state| state.pending() > 0)
                    .map(|state| state.created_ms + u64::from(state.acked.last_delta_ms))
            })
            .min();
        stats.oldest_pending_age =
            oldest.map(|since| Duration::from_millis(now.saturating_sub(since)));
        stats
    }
}

/// The acknowledged cursor of `state`, or the last cursor `overrides` gives it if that is further.
fn overridden(state: &SegmentState, overrides: &[(SegmentKey, Frontier)]) -> Frontier {
    match overrides.iter().rev().find(|(key, _)| *key == state.key) {
        Some((_, cursor)) if cursor.offset > state.acked.offset => *cursor,
        _ => state.acked,
    }
}

/// All segment keys of one writer.
fn writer_range(writer: WriterId) -> std::ops::RangeInclusive<SegmentKey> {
    SegmentKey { writer, seq: 0 }..=SegmentKey {
        writer,
        seq: u64::MAX,
    }
}
