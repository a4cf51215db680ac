//! [`Spool`]: this process's writer, and the entry point to delivery.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::catalog::{Catalog, View, now_ms};
use super::config::{SpoolConfig, SpoolStats, SyncPolicy};
use super::error::SpoolError;
use super::format::{
    self, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentHeader, SegmentKey, WriterId,
};
use super::io::{FileSystem, OpenMode};
use super::lock::{create_writer_lock, try_delivery_lock};
use super::reader::SpoolReader;
use super::segment::Frontier;
use super::segment_map::SegmentState;

/// The catalog shared by a [`Spool`] and its [`SpoolReader`].
pub(crate) type SharedCatalog = Arc<Mutex<Catalog>>;

/// Locks the catalog; a panic while it was held cannot leave it half-updated in a way that matters more than
/// refusing service, so a poisoned lock is taken over.
pub(crate) fn lock_catalog(shared: &SharedCatalog) -> MutexGuard<'_, Catalog> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A segment rolls over before its frame times (milliseconds after its creation, in a `u32`) could overflow.
const MAX_SEGMENT_AGE_MS: u64 = u32::MAX as u64 - 60_000;

/// The segment this writer appends to.
#[derive(Debug)]
struct OpenSegment {
    key: SegmentKey,
    path: PathBuf,
    file: File,
    created_ms: u64,
    /// Invariant: the file holds exactly `len` bytes of header and whole frames (a failed write is cut back).
    len: u64,
    next_index: u32,
    last_delta_ms: u32,
    valid: u64,
    /// A failed write could not be cut back: the segment holds garbage after `len` and takes no more appends.
    broken: bool,
}

/// This process's writer into a spool directory. Appends go to segments of its own; see the [module doc](super).
///
/// `Spool` is `Send`; wrap it in a mutex to share it. Dropping it fsyncs unsynced data (unless the policy is
/// [`SyncPolicy::Never`]) and releases its writer lock, after which its segments are delivered like a dead writer's.
#[derive(Debug)]
pub struct Spool {
    shared: SharedCatalog,
    config: SpoolConfig,
    fs: Arc<dyn FileSystem>,
    writer: WriterId,
    /// Held for the writer's lifetime: the flock that tells other processes this writer is alive.
    lock: File,
    current: Option<OpenSegment>,
    next_seq: u64,
    /// The write-behind buffer of [`Spool::append_buffered`]: frames for the open segment, not yet written.
    staged: Staged,
    unsynced_since: Option<Instant>,
    /// When the limits were last applied by taking the delivery lock for a moment (rate-limited: it reads the
    /// directory).
    last_maintained: Option<Instant>,
}

/// The size at which the write-behind buffer of [`Spool::append_buffered`] is written out (64 KiB, as a buffered
/// file writer's default).
pub const WRITE_BEHIND_BYTES: usize = 64 * 1024;

/// Frames encoded for the open segment and not yet written: they follow its frontier.
#[derive(Debug, Default)]
struct Staged {
    bytes: Vec<u8>,
    records: u32,
    last_delta_ms: u32,
}

/// How often an append over the size budget may take the delivery lock to apply the limits.
const MAINTAIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

impl Spool {
    /// Opens (creating it, mode 0700, if missing) the spool directory for appending, and scans it: records already
    /// pending there are counted in [`SpoolStats::recovered_events`], dead writers' torn tails are cut, and the size
    /// and age limits are applied if no other process is delivering.
    ///
    /// # Errors
    /// [`SpoolError::InvalidConfig`], [`SpoolError::NotADirectory`], and the I/O variants when the directory cannot
    /// be created or written (a writer lock file is created in it at once).
    pub fn open(config: SpoolConfig) -> Result<Spool, SpoolError> {
        config.validate()?;
        let dir = config.dir.clone();
        let fs = Arc::clone(config.file_system());
        match fs.symlink_metadata(&dir) {
            Ok(metadata) if metadata.is_dir() => {}
            // A symbolic link to a directory is followed (only the directory itself must be one).
            Ok(metadata) if metadata.is_symlink() && dir.is_dir() => {}
            Ok(_) => {
                return Err(SpoolError::NotADirectory { path: dir });
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                fs.create_dir_all(&dir)
                    .map_err(|error| SpoolError::io(&dir, error))?;
            }
            Err(error) => return Err(SpoolError::io(&dir, error)),
        }
        let (writer, lock) = create_writer_lock(fs.as_ref(), &dir, None)
            .map_err(|error| SpoolError::io(&dir, error))?;
        let mut catalog = Catalog::new(config.clone(), writer);
        catalog.refresh(View::Outside)?;
        let spool = Spool {
            shared: Arc::new(Mutex::new(catalog)),
            fs,
            config,
            writer,
            lock,
            current: None,
            next_seq: 0,
            staged: Staged::default(),
            unsynced_since: None,
            last_maintained: None,
        };
        spool.maintain();
        Ok(spool)
    }

    /// Appends a batch of records (one record = one event), in order, with one `write` system call (records still
    /// in the write-behind buffer of [`append_buffered`](Self::append_buffered) go in the same write, ahead of them);
    /// the batch has reached the kernel when this returns, so a crash of the process loses none of it. With
    /// [`SyncPolicy::Always`] it is fsynced too; with [`SyncPolicy::GroupCommit`] it is fsynced here if the oldest
    /// unsynced data is older than the interval. An empty batch does nothing.
    ///
    /// # Errors
    /// [`SpoolError::RecordTooLarge`] before anything is written; [`SpoolError::DiskFull`] and the other I/O
    /// variants if the write (or, with `Always`, the fsync) fails. Either way nothing of the batch is kept, and
    /// neither is anything that was still buffered (counted in [`SpoolStats::dropped_unwritten`]).
    pub fn append<R: AsRef<[u8]>>(&mut self, records: &[R]) -> Result<(), SpoolError> {
        let Some(count) = self.stage(records)? else {
            return Ok(());
        };
        self.write_out(count)
    }

    /// Appends a batch of records into a small user-space write-behind buffer ([`WRITE_BEHIND_BYTES`]), which is
    /// written with one `write` system call when it fills, and by [`write_out`](Self::write_out),
    /// [`append`](Self::append), [`sync`](Self::sync), [`sync_if_due`](Self::sync_if_due), a rollover to a new
    /// segment, and the drop of the spool. Until then the buffered records are in this process's memory only: a
    /// crash of the process loses them (they are as exposed as events in a queue), readers do not see them, and
    /// [`SpoolStats::buffered_events`] counts them. With [`SyncPolicy::Always`] this is [`append`](Self::append).
    ///
    /// # Errors
    /// As [`append`](Self::append), when the buffer is written and that fails: nothing of this batch is kept, and
    /// the records buffered by earlier calls are lost and counted in [`SpoolStats::dropped_unwritten`].
    pub fn append_buffered<R: AsRef<[u8]>>(&mut self, records: &[R]) -> Result<(), SpoolError> {
        if self.config.sync == SyncPolicy::Always {
            return self.append(records);
        }
        let Some(count) = self.stage(records)? else {
            return Ok(());
        };
        if self.staged.bytes.len() >= WRITE_BEHIND_BYTES {
            self.write_out(count)
        } else {
            Ok(())
        }
    }

    /// Writes the write-behind buffer of [`append_buffered`](Self::append_buffered) to the open segment with one
    /// `write` system call (nothing to do if it is empty): its records reach the kernel and become readable.
    ///
    /// # Errors
    /// The I/O variants if the write (or, with `Always`, the fsync) fails: the buffered records are lost and counted
    /// in [`SpoolStats::dropped_unwritten`].
    pub fn write_out_buffered(&mut self) -> Result<(), SpoolError> {
        self.write_out(0)
    }

    /// Checks `records` and encodes them as frames at the end of the write-behind buffer, opening a new segment
    /// first (after writing out what the buffer holds for the old one) if they do not fit the open one. Returns the
    /// number of records staged, or `None` for an empty batch.
    fn stage<R: AsRef<[u8]>>(&mut self, records: &[R]) -> Result<Option<u32>, SpoolError> {
        if records.is_empty() {
            return Ok(None);
        }
        let max = self.config.max_record_bytes;
        let mut batch_bytes = 0_u64;
        for (index, record) in records.iter().enumerate() {
            let len = record.as_ref().len();
            if len > max as usize {
                return Err(SpoolError::RecordTooLarge { index, len, max });
            }
            batch_bytes += (FRAME_HEADER_LEN + len) as u64;
        }
        let count = u32::try_from(records.len()).unwrap_or(u32::MAX);
        let now = now_ms();
        self.ensure_segment(batch_bytes, count, now)?;
        let Some(segment) = self.current.as_ref() else {
            return Err(no_open_segment(&self.config.dir));
        };
        let delta = u32::try_from(now.saturating_sub(segment.created_ms))
            .unwrap_or(u32::MAX)
            .max(segment.last_delta_ms)
            .max(self.staged.last_delta_ms);
        let first_index = segment.next_index + self.staged.records;
        self.staged
            .bytes
            .reserve(usize::try_from(batch_bytes).unwrap_or(0));
        for (offset, record) in records.iter().enumerate() {
            format::encode_frame(
                &mut self.staged.bytes,
                first_index + offset as u32,
                delta,
                record.as_ref(),
            );
        }
        self.staged.records += count;
        self.staged.last_delta_ms = delta;
        Ok(Some(count))
    }

    /// Writes the staged frames to the open segment and publishes the new frontier. On failure everything staged is
    /// discarded; the records staged by earlier calls (all but the last `own_batch`, which the caller reports through
    /// its error) are counted as dropped unwritten.
    fn write_out(&mut self, own_batch: u32) -> Result<(), SpoolError> {
        if self.staged.records == 0 {
            return Ok(());
        }
        let staged = std::mem::take(&mut self.staged);
        let result = self.write_staged(&staged);
        // The buffer's allocation is kept for the next appends.
        self.staged.bytes = staged.bytes;
        self.staged.bytes.clear();
        if result.is_err() {
            let earlier = u64::from(staged.records.saturating_sub(own_batch));
            lock_catalog(&self.shared).counters.dropped_unwritten += earlier;
        }
        result
    }

    /// One `write` of `staged` at the open segment's end, then the bookkeeping of an append.
    fn write_staged(&mut self, staged: &Staged) -> Result<(), SpoolError> {
        let Some(segment) = self.current.as_mut() else {
            return Err(no_open_segment(&self.config.dir));
        };
        if let Err(error) = self
            .fs
            .write_all_at(&segment.file, &staged.bytes, segment.len)
        {
            // Invariant: a failed append leaves no frame of its batch behind (cut back to the last whole batch).
            if self.fs.set_len(&segment.file, segment.len).is_err() {
                segment.broken = true;
            }
            return Err(SpoolError::io(&segment.path, error));
        }
        if self.config.sync == SyncPolicy::Always
            && let Err(error) = self.fs.sync_data(&segment.file)
        {
            if self.fs.set_len(&segment.file, segment.len).is_err() {
                segment.broken = true;
            }
            return Err(SpoolError::io(&segment.path, error));
        }
        segment.len += staged.bytes.len() as u64;
        segment.next_index += staged.records;
        segment.last_delta_ms = staged.last_delta_ms;
        segment.valid += u64::from(staged.records);
        let frontier = Frontier {
            offset: segment.len,
            next_index: segment.next_index,
            last_delta_ms: staged.last_delta_ms,
            valid: segment.valid,
        };
        let key = segment.key;
        // The directory's size is a running total in the catalog: checking the budget costs the same whatever the
        // backlog.
        let over_budget = {
            let mut catalog = lock_catalog(&self.shared);
            if let Some(mut state) = catalog.segments.get_mut(&key) {
                // Valid records are counted on from the catalog's count, not the writer's: a reader that found this
                // segment's file gone has written off what it held, and those records stay counted as lost.
                let frontier = Frontier {
                    valid: state.frontier.valid + u64::from(staged.records),
                    ..frontier
                };
                state.frontier = frontier;
                state.file_len = frontier.offset;
                if self.config.sync == SyncPolicy::Always {
                    state.vouched = frontier;
                }
            }
            catalog.total_bytes() > self.config.max_total_bytes
        };
        if self.config.sync != SyncPolicy::Always {
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
        if let (SyncPolicy::GroupCommit(interval), Some(since)) =
            (self.config.sync, self.unsynced_since)
            && since.elapsed() >= interval
            && let Err(error) = self.sync()
        {
            tracing::debug!(%error, "spool: group commit fsync failed; retried at the next tick");
        }
        if over_budget
            && self
                .last_maintained
                .is_none_or(|last| last.elapsed() >= MAINTAIN_INTERVAL)
        {
            self.maintain();
            self.last_maintained = Some(Instant::now());
        }
        Ok(())
    }

    /// Fsyncs the open segment now (whatever the policy), and checks that the directory still exists.
    ///
    /// # Errors
    /// The I/O variants if the fsync fails (the data stays unsynced and is retried by the next call);
    /// [`SpoolError::DirectoryMissing`] if the directory was deleted (its records are gone and counted in
    /// [`SpoolStats::corrupt_records`]; the next append re-creates it).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.write_out(0)?;
        if let Some(segment) = &self.current
            && self.unsynced_since.is_some()
        {
            self.fs
                .sync_data(&segment.file)
                .map_err(|error| SpoolError::io(&segment.path, error))?;
            mark_synced(&mut lock_catalog(&self.shared), segment.key);
        }
        self.unsynced_since = None;
        self.sync_acks(true)?;
        if let Err(error) = self.fs.symlink_metadata(&self.config.dir)
            && error.kind() == io::ErrorKind::NotFound
        {
            self.current = None;
            lock_catalog(&self.shared).lose_directory();
            return Err(SpoolError::DirectoryMissing {
                path: self.config.dir.clone(),
                source: error,
            });
        }
        Ok(())
    }

    /// With [`SyncPolicy::GroupCommit`], fsyncs if unsynced data is older than the interval; the reporter calls this
    /// on a tick. Returns whether it fsynced.
    ///
    /// # Errors
    /// As [`Spool::sync`].
    pub fn sync_if_due(&mut self) -> Result<bool, SpoolError> {
        self.write_out(0)?;
        let acks = self.sync_acks(false)?;
        match (self.config.sync, self.unsynced_since) {
            (SyncPolicy::GroupCommit(interval), Some(since)) if since.elapsed() >= interval => {
                self.sync()?;
                Ok(true)
            }
            _ => Ok(acks),
        }
    }

    /// Fsyncs the acknowledgements this process's reader wrote in place and did not fsync yet, if that is due per the
    /// sync policy (or whenever there are some, if `force`), with the catalog unlocked. Returns whether it fsynced.
    fn sync_acks(&self, force: bool) -> Result<bool, SpoolError> {
        let mut catalog = lock_catalog(&self.shared);
        let Some(sync) = catalog.take_acks_sync(force) else {
            return Ok(false);
        };
        drop(catalog);
        let result = sync.run(self.fs.as_ref());
        lock_catalog(&self.shared).finish_acks_sync(sync, result)?;
        Ok(true)
    }

    /// Takes the cross-process delivery lock and returns a reader over every writer's segments in the directory;
    /// `Ok(None)` if another reader (of this or another process) holds it. Either way the statistics are brought up
    /// to date with the directory (other processes' appends and acknowledgements).
    ///
    /// # Errors
    /// The I/O variants if the lock file or the directory cannot be read or written.
    pub fn try_deliver(&self) -> Result<Option<SpoolReader>, SpoolError> {
        let dir = &self.config.dir;
        let lock =
            try_delivery_lock(self.fs.as_ref(), dir).map_err(|error| SpoolError::io(dir, error))?;
        let mut catalog = lock_catalog(&self.shared);
        let Some(lock) = lock else {
            catalog.refresh(View::Outside)?;
            return Ok(None);
        };
        acquire(&mut catalog)?;
        drop(catalog);
        Ok(Some(SpoolReader::new(Arc::clone(&self.shared), lock)))
    }

    /// The statistics, as seen by this process (no I/O).
    pub fn stats(&self) -> SpoolStats {
        let mut stats = lock_catalog(&self.shared).stats();
        stats.buffered_events = u64::from(self.staged.records);
        stats
    }

    /// The spool directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.config.dir
    }

    /// The open segment's path and length, for tests that simulate an OS crash by cutting unsynced bytes.
    #[cfg(test)]
    pub(crate) fn open_segment(&self) -> Option<(PathBuf, u64)> {
        self.current
            .as_ref()
            .map(|segment| (segment.path.clone(), segment.len))
    }

    /// Applies the size and age limits if this process holds (or can briefly take) the delivery lock. Failures are
    /// logged: the limits are applied again at the next chance.
    fn maintain(&self) {
        let mut catalog = lock_catalog(&self.shared);
        let result = if catalog.delivering {
            catalog.enforce_retention(now_ms())
        } else {
            match try_delivery_lock(self.fs.as_ref(), &self.config.dir) {
                Ok(Some(lock)) => {
                    let result = catalog
                        .refresh(View::Taking)
                        .and_then(|()| catalog.enforce_retention(now_ms()));
                    // Losses found under the lock are written into the acknowledgement file, so no other process
                    // counts them again.
                    catalog.persist_write_offs();
                    drop(lock);
                    result
                }
                Ok(None) => Ok(()),
                Err(error) => Err(SpoolError::io(&self.config.dir, error)),
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "spool: cannot apply the size and age limits now");
        }
    }

    /// Makes sure a segment with room for the batch is open.
    fn ensure_segment(&mut self, batch_bytes: u64, count: u32, now: u64) -> Result<(), SpoolError> {
        let roll = match &self.current {
            None => true,
            Some(segment) => {
                let len = segment.len + self.staged.bytes.len() as u64;
                segment.broken
                    || (len > SEGMENT_HEADER_LEN
                        && len + batch_bytes > self.config.max_segment_bytes)
                    || now.saturating_sub(segment.created_ms) > MAX_SEGMENT_AGE_MS
                    || segment
                        .next_index
                        .checked_add(self.staged.records)
                        .and_then(|next| next.checked_add(count))
                        .is_none()
            }
        };
        if roll {
            // What is buffered belongs to the segment being sealed.
            self.write_out(0)?;
            self.roll(now)
        } else {
            Ok(())
        }
    }

    /// Seals the open segment (fsyncing it unless the policy is `Never`) and opens the next one.
    fn roll(&mut self, now: u64) -> Result<(), SpoolError> {
        if let Some(segment) = &self.current {
            if self.config.sync != SyncPolicy::Never && self.unsynced_since.is_some() {
                self.fs
                    .sync_data(&segment.file)
                    .map_err(|error| SpoolError::io(&segment.path, error))?;
                self.unsynced_since = None;
                mark_synced(&mut lock_catalog(&self.shared), segment.key);
            }
            let mut catalog = lock_catalog(&self.shared);
            if let Some(mut state) = catalog.segments.get_mut(&segment.key) {
                state.own_open = false;
                state.sealed = true;
                // A broken segment has garbage after its frontier: a scan counts it as a torn tail.
                state.complete = !segment.broken;
            }
            // Fully acknowledged before it was sealed: it can go now (an acknowledgement removes only what it moved).
            if catalog.delivering {
                catalog.remove_settled_among([segment.key]);
            }
        }
        self.current = None;
        let dir = self.config.dir.clone();
        if let Err(error) = self.fs.symlink_metadata(&dir)
            && error.kind() == io::ErrorKind::NotFound
        {
            // The directory was deleted: re-create it, and the liveness lock file with it.
            self.fs
                .create_dir_all(&dir)
                .map_err(|error| SpoolError::io(&dir, error))?;
            let (writer, lock) = create_writer_lock(self.fs.as_ref(), &dir, Some(self.writer))
                .map_err(|error| SpoolError::io(&dir, error))?;
            let mut catalog = lock_catalog(&self.shared);
            if writer != self.writer {
                // The lock file was taken away while half created: this writer goes on under a new id.
                self.writer = writer;
                self.next_seq = 0;
                catalog.own = writer;
            }
            self.lock = lock;
            catalog.lose_directory();
        }
        let key = SegmentKey {
            writer: self.writer,
            seq: self.next_seq,
        };
        let path = dir.join(key.file_name());
        let file = self
            .fs
            .open(&path, OpenMode::CreateNew)
            .map_err(|error| SpoolError::io(&path, error))?;
        let header = SegmentHeader {
            key,
            created_ms: now,
        }
        .encode();
        let durable = self.config.sync != SyncPolicy::Never;
        let written = self.fs.write_all_at(&file, &header, 0).and_then(|()| {
            if durable {
                self.fs
                    .sync_data(&file)
                    .and_then(|()| self.fs.sync_dir(&dir))
            } else {
                Ok(())
            }
        });
        if let Err(error) = written {
            let _ = self.fs.remove_file(&path);
            return Err(SpoolError::io(&path, error));
        }
        self.next_seq += 1;
        lock_catalog(&self.shared)
            .segments
            .insert(key, SegmentState::new_own(key, now));
        self.current = Some(OpenSegment {
            key,
            path,
            file,
            created_ms: now,
            len: SEGMENT_HEADER_LEN,
            next_index: 0,
            last_delta_ms: 0,
            valid: 0,
            broken: false,
        });
        Ok(())
    }
}

/// The error of an append that finds no open segment (`ensure_segment` just made sure there is one).
fn no_open_segment(dir: &Path) -> SpoolError {
    SpoolError::Io {
        path: dir.to_path_buf(),
        source: io::Error::other("no open segment"),
    }
}

/// Records that this writer's segment `key` is fsynced up to its frontier: that far it may be written as its known
/// extent.
fn mark_synced(catalog: &mut Catalog, key: SegmentKey) {
    if let Some(mut state) = catalog.segments.get_mut(&key) {
        state.vouched = state.frontier;
    }
}

/// Removes this writer's lock file (its segments are all gone; the lock is still held by the caller).
fn remove_own_lock_file(fs: &dyn FileSystem, dir: &Path, writer: WriterId) {
    let path = dir.join(format::lock_file_name(writer));
    if let Err(error) = fs.remove_file(&path)
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::debug!(%error, path = %path.display(), "spool: cannot remove the writer lock file");
    }
}

/// Makes the catalog that of the delivery-lock holder: takes in other processes' acknowledgements, restarts reading
/// at the acknowledged cursors, removes stale temporary files, and applies the limits.
pub(crate) fn acquire(catalog: &mut Catalog) -> Result<(), SpoolError> {
    catalog.release_acks();
    catalog.refresh(View::Taking)?;
    catalog.delivering = true;
    catalog
        .segments
        .for_each_mut(|state| state.read = state.acked);
    if let Ok(entries) = catalog.fs.read_dir(&catalog.dir) {
        for entry in entries {
            if entry.is_file
                && entry
                    .name
                    .to_str()
                    .is_some_and(|name| name.starts_with("acks.") && name.ends_with(".tmp"))
            {
                let _ = catalog.fs.remove_file(&catalog.dir.join(&entry.name));
            }
        }
    }
    if let Err(error) = catalog.enforce_retention(now_ms()) {
        tracing::debug!(%error, "spool: cannot apply the size and age limits now");
    }
    catalog.refresh(View::Holding)?;
    catalog.persist_write_offs();
    Ok(())
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Err(error) = self.write_out(0) {
            tracing::debug!(%error, "spool: the write-behind buffer could not be written when closing");
        }
        if self.config.sync != SyncPolicy::Never
            && self.unsynced_since.is_some()
            && let Err(error) = self.sync()
        {
            tracing::debug!(%error, "spool: final fsync failed");
        }
        // No more appends: a reader that outlives this writer may settle and remove its last segment.
        let mut catalog = lock_catalog(&self.shared);
        if let Some(segment) = &self.current
            && let Some(mut state) = catalog.segments.get_mut(&segment.key)
        {
            state.own_open = false;
            state.sealed = true;
            state.complete = !segment.broken;
        }
        // Invariant: a writer's lock file goes only while its lock is held (here, by `self.lock`, until this returns),
        // and only once none of its segments is left; otherwise a later delivering process removes it.
        if catalog.delivering {
            catalog.remove_settled();
        }
        let own = self.writer;
        if !catalog.segments.keys().any(|key| key.writer == own) {
            remove_own_lock_file(self.fs.as_ref(), &self.config.dir, own);
        }
    }
}
