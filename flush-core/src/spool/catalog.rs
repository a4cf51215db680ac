//! The in-memory catalog of the spool directory as seen by this process: every segment with its scan frontier,
//! acknowledged and read cursors, every writer's liveness, and the counters behind [`SpoolStats`]. One catalog per
//! open [`Spool`](super::Spool), shared (behind a mutex) with its [`SpoolReader`](super::SpoolReader).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::config::{SpoolConfig, SpoolStats, SyncPolicy};
use super::error::SpoolError;
use super::format::{
    self, AckEntry, SEGMENT_HEADER_LEN, SegmentHeader, SegmentKey, WriterId, parse_lock_file_name,
};
use super::io::{
    create_dir_private, open_or_create, read_at_most, sync_data, sync_dir, write_all_at,
};
use super::lock::{Liveness, probe_writer};
use super::segment::{self, Frontier};

/// The acknowledgement file in the spool directory.
pub(crate) const ACKS_FILE: &str = "acks";
/// The directory fully delivered segments are moved to with `keep_flushed`.
pub(crate) const FLUSHED_DIR: &str = "flushed";

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// One segment as this process knows it.
#[derive(Debug)]
pub(crate) struct SegmentState {
    /// Its name.
    pub(crate) key: SegmentKey,
    /// Its creation time (from the header), milliseconds since the epoch.
    pub(crate) created_ms: u64,
    /// Its length when last looked at.
    pub(crate) file_len: u64,
    /// How far its valid frames are known.
    pub(crate) frontier: Frontier,
    /// No byte will ever be added: its writer rolled over to a later segment or is dead.
    pub(crate) sealed: bool,
    /// Sealed and scanned to its end.
    pub(crate) complete: bool,
    /// The segment this process's writer is appending to (its frontier is kept by the writer, never scanned).
    pub(crate) own_open: bool,
    /// Everything before this cursor is acknowledged or dropped (durably, in the acks file, once persisted).
    pub(crate) acked: Frontier,
    /// Everything before this cursor was handed out by this process's reader. Invariant: `acked <= read <= frontier`.
    pub(crate) read: Frontier,
    /// Damaged regions to jump over, sorted.
    pub(crate) skips: Vec<(u64, u64)>,
}

impl SegmentState {
    fn new(key: SegmentKey, created_ms: u64, file_len: u64) -> Self {
        let start = Frontier {
            offset: SEGMENT_HEADER_LEN,
            next_index: 0,
            last_delta_ms: 0,
            valid: 0,
        };
        Self {
            key,
            created_ms,
            file_len,
            frontier: start,
            sealed: false,
            complete: false,
            own_open: false,
            acked: start,
            read: start,
            skips: Vec::new(),
        }
    }

    /// A segment this process's writer just created.
    pub(crate) fn new_own(key: SegmentKey, created_ms: u64) -> Self {
        let mut state = Self::new(key, created_ms, SEGMENT_HEADER_LEN);
        state.own_open = true;
        state
    }

    /// Known records not yet acknowledged or dropped.
    pub(crate) fn pending(&self) -> u64 {
        self.frontier.valid.saturating_sub(self.acked.valid)
    }

    /// The append time of the last known record.
    pub(crate) fn last_time_ms(&self) -> u64 {
        self.created_ms + u64::from(self.frontier.last_delta_ms)
    }

    /// Fully acknowledged and sealed: the file can go.
    fn settled(&self) -> bool {
        self.sealed && self.complete && !self.own_open && self.acked.offset >= self.frontier.offset
    }

    fn ack_entry(&self) -> AckEntry {
        AckEntry {
            key: self.key,
            offset: self.acked.offset,
            valid: self.acked.valid,
            next_index: self.acked.next_index,
            last_delta_ms: self.acked.last_delta_ms,
        }
    }
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
    pub(crate) own: WriterId,
    pub(crate) segments: BTreeMap<SegmentKey, SegmentState>,
    writers: HashMap<WriterId, WriterState>,
    pub(crate) counters: Counters,
    /// This process holds the delivery lock (its reader is alive).
    pub(crate) delivering: bool,
    flushed_bytes: u64,
    scratch: Vec<u8>,
}

impl Catalog {
    pub(crate) fn new(config: SpoolConfig, own: WriterId) -> Self {
        Self {
            dir: config.dir.clone(),
            config,
            own,
            segments: BTreeMap::new(),
            writers: HashMap::new(),
            counters: Counters::default(),
            delivering: false,
            flushed_bytes: 0,
            scratch: Vec::new(),
        }
    }

    fn io_error(&self, path: &Path, error: io::Error) -> SpoolError {
        if error.kind() == io::ErrorKind::NotFound && !self.dir.exists() {
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
    /// writers that died (their torn tails cut), and, unless `holder`, acknowledgements made by another process.
    /// A holder of the delivery lock also removes settled segments and dead writers' lock files.
    pub(crate) fn refresh(&mut self, holder: bool) -> Result<(), SpoolError> {
        let (listed_segments, listed_locks) = self.list()?;
        let acks = if holder {
            HashMap::new()
        } else {
            self.read_acks()
        };

        // Segments that vanished: removed by another process's delivery, or from outside.
        let vanished: Vec<SegmentKey> = self
            .segments
            .keys()
            .filter(|key| !listed_segments.contains(key))
            .copied()
            .collect();
        for key in vanished {
            if let Some(state) = self.segments.remove(&key) {
                self.counters.settled_elsewhere += state.pending();
            }
        }
        // New segments. Invariant: this writer's own segments enter the catalog only through the writer (a refresh
        // racing with a segment creation must not take the new file for a sealed, settled one and remove it).
        for key in &listed_segments {
            if key.writer != self.own && !self.segments.contains_key(key) {
                self.add_segment(*key, acks.get(key));
            }
        }
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
            for (_, state) in self.segments.range_mut(writer_range(writer)) {
                if state.key.seq < last_seq {
                    state.sealed = true;
                }
            }
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
            self.collect_garbage(&listed_segments, &listed_locks);
        }
        Ok(())
    }

    /// Lists the segment and lock files of the directory.
    fn list(&self) -> Result<(BTreeSet<SegmentKey>, Vec<WriterId>), SpoolError> {
        let entries = fs::read_dir(&self.dir).map_err(|error| SpoolError::io(&self.dir, error))?;
        let mut segments = BTreeSet::new();
        let mut locks = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| SpoolError::io(&self.dir, error))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(key) = SegmentKey::parse_file_name(name) {
                segments.insert(key);
            } else if let Some(writer) = parse_lock_file_name(name) {
                locks.push(writer);
            }
        }
        Ok((segments, locks))
    }

    /// Reads the acknowledgement file; a missing or damaged file means "nothing acknowledged" (at-least-once).
    pub(crate) fn read_acks(&self) -> HashMap<SegmentKey, AckEntry> {
        let path = self.dir.join(ACKS_FILE);
        match fs::read(&path) {
            Ok(bytes) => match format::decode_acks(&bytes) {
                Some(entries) => entries
                    .into_iter()
                    .map(|entry| (entry.key, entry))
                    .collect(),
                None => {
                    tracing::debug!(path = %path.display(), "spool: the acks file is damaged; redelivering");
                    HashMap::new()
                }
            },
            Err(_) => HashMap::new(),
        }
    }

    fn add_segment(&mut self, key: SegmentKey, ack: Option<&AckEntry>) {
        let path = self.dir.join(key.file_name());
        let Ok(file) = File::open(&path) else { return };
        let Ok(metadata) = file.metadata() else {
            return;
        };
        let file_len = metadata.len();
        let mut header = [0_u8; SEGMENT_HEADER_LEN as usize];
        let header_len = read_at_most(&file, &mut header, 0).unwrap_or(0);
        let created_ms = match SegmentHeader::decode(&header[..header_len]) {
            Some(decoded) if decoded.key == key => decoded.created_ms,
            _ if file_len < SEGMENT_HEADER_LEN => {
                // Being created by a live writer, or a dead writer's torn creation: looked at again by a later refresh
                // (a dead writer's is removed by the garbage collection).
                return;
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
        }
        if self.writers.get(&key.writer) == Some(&WriterState::Dead) {
            state.sealed = true;
        }
        self.segments.insert(key, state);
    }

    fn apply_foreign_ack(&mut self, key: SegmentKey, entry: AckEntry) {
        let Some(state) = self.segments.get(&key) else {
            return;
        };
        if entry.offset <= state.acked.offset {
            return;
        }
        if entry.offset > state.frontier.offset {
            // Another process read further than this one scanned: catch up first, so the counts compare.
            self.scan_segment(key);
        }
        let Some(state) = self.segments.get_mut(&key) else {
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
        match probe_writer(&self.dir, writer) {
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
                    if let Some(state) = self.segments.get_mut(&key) {
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
        let result = OpenOptions::new().write(true).open(&path).and_then(|file| {
            file.set_len(torn_at)?;
            sync_data(&file)
        });
        match result {
            Ok(()) => {
                if let Some(state) = self.segments.get_mut(&key) {
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

    /// Scans one segment from its frontier; returns where its torn tail starts, if it has one.
    fn scan_segment(&mut self, key: SegmentKey) -> Option<u64> {
        let max_record = self.config.max_record_bytes;
        let own = self.own;
        let path = self.dir.join(key.file_name());
        let state = self.segments.get_mut(&key)?;
        if state.own_open || state.complete {
            return None;
        }
        let file = File::open(&path).ok()?;
        let file_len = file.metadata().ok()?.len();
        state.file_len = file_len;
        if file_len <= state.frontier.offset && !state.sealed {
            return None;
        }
        let report = match segment::scan(
            &file,
            file_len,
            &mut state.frontier,
            state.sealed,
            max_record,
            &mut self.scratch,
        ) {
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
        report.torn_at
    }

    /// Removes settled segments (or moves them to `flushed/`) and the lock files of dead writers with no segments.
    /// Only a holder of the delivery lock calls this, after the acknowledgements that settled them are durable.
    fn collect_garbage(
        &mut self,
        listed_segments: &BTreeSet<SegmentKey>,
        listed_locks: &[WriterId],
    ) {
        // Segment files too short for a header, of dead writers: torn creations, holding no record.
        for key in listed_segments {
            if self.segments.contains_key(key) || key.writer == self.own {
                continue;
            }
            if let Liveness::Dead(lock) = probe_writer(&self.dir, key.writer) {
                let path = self.dir.join(key.file_name());
                if let Ok(metadata) = fs::metadata(&path)
                    && metadata.len() < SEGMENT_HEADER_LEN
                    && fs::remove_file(&path).is_ok()
                {
                    self.counters.corrupt_bytes += metadata.len();
                }
                drop(lock);
            }
        }
        self.remove_settled();
        for writer in listed_locks {
            if *writer == self.own || self.segments.range(writer_range(*writer)).next().is_some() {
                continue;
            }
            if let Liveness::Dead(Some(lock)) = probe_writer(&self.dir, *writer) {
                let _ = fs::remove_file(self.dir.join(format::lock_file_name(*writer)));
                drop(lock);
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
        for key in settled {
            if self.remove_segment_file(key, false).is_ok() {
                self.segments.remove(&key);
            }
        }
    }

    /// Deletes a segment file, or moves it to `flushed/` (unless `dropped`: dropped data is not kept).
    fn remove_segment_file(&mut self, key: SegmentKey, dropped: bool) -> io::Result<()> {
        let path = self.dir.join(key.file_name());
        let result = if self.config.keep_flushed && !dropped {
            let flushed = self.dir.join(FLUSHED_DIR);
            create_dir_private(&flushed)
                .and_then(|()| fs::rename(&path, flushed.join(key.file_name())))
        } else {
            fs::remove_file(&path)
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
        let Ok(entries) = fs::read_dir(&flushed) else {
            self.flushed_bytes = 0;
            return;
        };
        let cutoff = now.saturating_sub(self.config.max_age.as_millis() as u64);
        let mut files: Vec<(u64, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let metadata = entry.metadata().ok()?;
                let modified = metadata
                    .modified()
                    .ok()?
                    .duration_since(UNIX_EPOCH)
                    .ok()?
                    .as_millis() as u64;
                Some((modified, metadata.len(), entry.path()))
            })
            .collect();
        files.sort();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        let segments_bytes = self.segment_bytes();
        for (modified, len, path) in files {
            if modified >= cutoff && segments_bytes + total <= budget {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
        self.flushed_bytes = total;
    }

    fn segment_bytes(&self) -> u64 {
        self.segments.values().map(|state| state.file_len).sum()
    }

    /// The directory's size as this process knows it.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.segment_bytes() + self.flushed_bytes
    }

    /// Moves the acknowledged cursor of `key` to `to` (if that is forward) and counts the records it settles.
    pub(crate) fn settle(&mut self, key: SegmentKey, to: Frontier, why: Settle) {
        let Some(state) = self.segments.get_mut(&key) else {
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

    /// Writes the acknowledgement file atomically (temporary file, fsync, rename, directory fsync; no fsync with
    /// [`SyncPolicy::Never`]), with `overrides` in place of the current acknowledged cursors. Only a holder of the
    /// delivery lock calls this.
    pub(crate) fn persist_acks(
        &self,
        overrides: &[(SegmentKey, Frontier)],
    ) -> Result<(), SpoolError> {
        let mut entries: Vec<AckEntry> = Vec::with_capacity(self.segments.len());
        for state in self.segments.values() {
            let mut entry = state.ack_entry();
            if let Some((_, cursor)) = overrides.iter().rev().find(|(key, _)| *key == state.key)
                && cursor.offset > entry.offset
            {
                entry = AckEntry {
                    key: state.key,
                    offset: cursor.offset,
                    valid: cursor.valid,
                    next_index: cursor.next_index,
                    last_delta_ms: cursor.last_delta_ms,
                };
            }
            if entry.offset > SEGMENT_HEADER_LEN {
                entries.push(entry);
            }
        }
        let bytes = format::encode_acks(&entries);
        let temporary = self.dir.join(format!("{ACKS_FILE}.{}.tmp", self.own));
        // With `SyncPolicy::Never` nothing is fsynced, acknowledgements included: an OS crash can then only make
        // records be delivered again (at-least-once), never lose one.
        let durable = self.config.sync != SyncPolicy::Never;
        let write = || -> io::Result<()> {
            let file = open_or_create(&temporary)?;
            file.set_len(0)?;
            write_all_at(&file, &bytes, 0)?;
            if durable {
                sync_data(&file)?;
            }
            fs::rename(&temporary, self.dir.join(ACKS_FILE))?;
            if durable { sync_dir(&self.dir) } else { Ok(()) }
        };
        write().map_err(|error| {
            let _ = fs::remove_file(&temporary);
            self.io_error(&self.dir.join(ACKS_FILE), error)
        })
    }

    /// Applies the size and age limits (whole segments; the reader drops single expired records). Only a holder of
    /// the delivery lock calls this. Records handed out and not yet acknowledged are never dropped.
    pub(crate) fn enforce_retention(&mut self, now: u64) -> Result<(), SpoolError> {
        let cutoff = now.saturating_sub(self.config.max_age.as_millis() as u64);
        let mut drops: Vec<(SegmentKey, Frontier, Settle)> = Vec::new();
        for state in self.segments.values() {
            if state.read.offset == state.acked.offset
                && state.pending() > 0
                && state.last_time_ms() < cutoff
            {
                drops.push((state.key, state.frontier, Settle::Age));
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
                self.segments.remove(&key);
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
            ..SpoolStats::default()
        };
        let mut oldest: Option<u64> = None;
        for state in self.segments.values() {
            let pending = state.pending();
            stats.segments += 1;
            stats.pending_events += pending;
            if pending > 0 {
                stats.pending_bytes += state.frontier.offset.saturating_sub(state.acked.offset);
                let since = state.created_ms + u64::from(state.acked.last_delta_ms);
                oldest = Some(oldest.map_or(since, |current| current.min(since)));
            }
        }
        stats.oldest_pending_age =
            oldest.map(|since| Duration::from_millis(now.saturating_sub(since)));
        stats
    }
}

/// All segment keys of one writer.
fn writer_range(writer: WriterId) -> std::ops::RangeInclusive<SegmentKey> {
    SegmentKey { writer, seq: 0 }..=SegmentKey {
        writer,
        seq: u64::MAX,
    }
}
