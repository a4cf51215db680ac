//! The acknowledgement file as the delivery-lock holder writes it: one atomic rewrite when it starts (or when many
//! entries change at once), then fixed-size, CRC-checked slots rewritten in place with positioned writes, their
//! fsync group-committed per the [`SyncPolicy`]. The byte layout is in [`super::format`]; the promises in the module
//! doc of [`crate::spool`].
//!
//! Each segment with an entry owns a pair of slots. A write goes to the slot that does not hold the state as of the
//! last fsync, so a write torn by an OS crash always leaves that state readable in the other slot; between two
//! fsyncs every write of a pair goes to the same slot (the newest generation wins when reading).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::config::SyncPolicy;
use super::format::{
    ACK_PAIR_LEN, ACK_SLOT_LEN, ACKS_SLOTS_HEADER_LEN, AckEntry, SegmentKey, encode_ack_slot,
    encode_acks_header,
};
use super::io::{FileSystem, OpenMode};

/// One slot pair.
#[derive(Debug, Clone, Copy)]
struct Pair {
    /// The slot written last (0 or 1).
    last: usize,
    /// The generation of that write.
    generation: u64,
    /// That write is covered by an fsync (or the policy never fsyncs): the next write goes to the other slot.
    durable: bool,
}

/// The acknowledgement file opened for in-place writes by the delivery-lock holder.
#[derive(Debug)]
pub(crate) struct AcksWriter {
    file: Arc<File>,
    path: PathBuf,
    sync: SyncPolicy,
    /// The pair of each segment with an entry.
    pairs: HashMap<SegmentKey, usize>,
    slots: Vec<Pair>,
    /// Pairs whose segment has no entry any more (written free), reused first.
    free: Vec<usize>,
    /// The generation of the last slot written.
    generation: u64,
    /// Pairs written since the last fsync.
    dirty: Vec<usize>,
    /// When the oldest write not yet fsynced was made.
    unsynced_since: Option<Instant>,
}

/// An fsync of the acknowledgement file taken out of the catalog, to run without holding its lock.
#[derive(Debug)]
pub(crate) struct AcksSync {
    file: Arc<File>,
    path: PathBuf,
    /// Every slot write up to this generation is covered once the fsync returns.
    generation: u64,
    dirty: Vec<usize>,
    unsynced_since: Option<Instant>,
}

impl AcksSync {
    /// Runs the fsync.
    pub(crate) fn run(&self, fs: &dyn FileSystem) -> io::Result<()> {
        fs.sync_data(&self.file)
    }

    /// The acknowledgement file's path (for errors).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl AcksWriter {
    /// Writes `entries` as a new file atomically (a temporary file, fsynced unless the policy is `Never`, renamed over
    /// `path`, the directory fsynced) and keeps it open for in-place writes.
    pub(crate) fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        path: &Path,
        temporary: &Path,
        sync: SyncPolicy,
        entries: &[AckEntry],
    ) -> io::Result<Self> {
        let durable = sync != SyncPolicy::Never;
        let mut bytes = Vec::with_capacity(
            ACKS_SLOTS_HEADER_LEN as usize + entries.len() * ACK_PAIR_LEN as usize,
        );
        bytes.extend_from_slice(&encode_acks_header());
        let mut writer = Self {
            file: Arc::new(fs.open(temporary, OpenMode::OpenOrCreate)?),
            path: path.to_path_buf(),
            sync,
            pairs: HashMap::with_capacity(entries.len()),
            slots: Vec::with_capacity(entries.len()),
            free: Vec::new(),
            generation: 0,
            dirty: Vec::new(),
            unsynced_since: None,
        };
        for entry in entries {
            writer.generation += 1;
            bytes.extend_from_slice(&encode_ack_slot(writer.generation, Some(entry)));
            bytes.extend_from_slice(&[0_u8; ACK_SLOT_LEN]);
            writer.pairs.insert(entry.key, writer.slots.len());
            writer.slots.push(Pair {
                last: 0,
                generation: writer.generation,
                durable: true,
            });
        }
        let file = Arc::clone(&writer.file);
        fs.set_len(&file, 0)?;
        fs.write_all_at(&file, &bytes, 0)?;
        if durable {
            fs.sync_data(&file)?;
        }
        fs.rename(temporary, path)?;
        if durable {
            fs.sync_dir(dir)?;
        }
        Ok(writer)
    }

    /// Writes the entry of one segment into its slot pair (allocating one if it has none). Not fsynced: see
    /// [`take_sync`](Self::take_sync).
    pub(crate) fn write(&mut self, fs: &dyn FileSystem, entry: &AckEntry) -> io::Result<()> {
        let pair = match self.pairs.get(&entry.key) {
            Some(pair) => *pair,
            None => {
                let pair = self.allocate(fs)?;
                self.pairs.insert(entry.key, pair);
                pair
            }
        };
        self.write_slot(fs, pair, Some(entry))
    }

    /// Frees the slot pair of a segment that needs no entry any more (removed): written free, reused later. Best
    /// effort: a failed or lost write leaves the settled entry, which only describes a segment that is gone.
    pub(crate) fn release(&mut self, fs: &dyn FileSystem, key: SegmentKey) {
        let Some(pair) = self.pairs.remove(&key) else {
            return;
        };
        if let Err(error) = self.write_slot(fs, pair, None) {
            tracing::debug!(%error, "spool: cannot free an acknowledgement slot");
        }
        self.free.push(pair);
    }

    /// Whether an fsync is due now: with `Always` after every write, with `GroupCommit` once the oldest unsynced
    /// write is older than the interval (or whenever `force`), never with `Never`.
    fn sync_due(&self, force: bool) -> bool {
        let Some(since) = self.unsynced_since else {
            return false;
        };
        match self.sync {
            SyncPolicy::Never => false,
            SyncPolicy::Always => true,
            SyncPolicy::GroupCommit(interval) => force || since.elapsed() >= interval,
        }
    }

    /// Takes out the fsync that is due (see [`sync_due`](Self::sync_due)), to run outside the catalog lock; then
    /// [`finish_sync`](Self::finish_sync) with its result.
    pub(crate) fn take_sync(&mut self, force: bool) -> Option<AcksSync> {
        if !self.sync_due(force) {
            return None;
        }
        Some(AcksSync {
            file: Arc::clone(&self.file),
            path: self.path.clone(),
            generation: self.generation,
            dirty: std::mem::take(&mut self.dirty),
            unsynced_since: self.unsynced_since.take(),
        })
    }

    /// Records the outcome of an fsync taken out by [`take_sync`](Self::take_sync): on success the writes it covers
    /// are durable (later ones go to the other slot); on failure they stay unsynced and are fsynced again later.
    pub(crate) fn finish_sync(&mut self, sync: AcksSync, result: &io::Result<()>) {
        if !Arc::ptr_eq(&sync.file, &self.file) {
            return;
        }
        match result {
            Ok(()) => {
                for pair in sync.dirty {
                    if let Some(slot) = self.slots.get_mut(pair)
                        && slot.generation <= sync.generation
                    {
                        slot.durable = true;
                    }
                }
            }
            Err(_) => {
                self.dirty.extend(sync.dirty);
                self.unsynced_since = match (sync.unsynced_since, self.unsynced_since) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }

    /// A pair for a new entry: a freed one, or a new one at the end of the file (written whole, so the file never
    /// ends inside a pair but by a torn write).
    fn allocate(&mut self, fs: &dyn FileSystem) -> io::Result<usize> {
        if let Some(pair) = self.free.pop() {
            return Ok(pair);
        }
        let pair = self.slots.len();
        let offset = ACKS_SLOTS_HEADER_LEN + pair as u64 * ACK_PAIR_LEN;
        fs.write_all_at(&self.file, &[0_u8; ACK_PAIR_LEN as usize], offset)?;
        self.slots.push(Pair {
            last: 1,
            generation: 0,
            durable: true,
        });
        Ok(pair)
    }

    fn write_slot(
        &mut self,
        fs: &dyn FileSystem,
        pair: usize,
        entry: Option<&AckEntry>,
    ) -> io::Result<()> {
        let Some(state) = self.slots.get(pair).copied() else {
            return Err(io::Error::other(
                "an acknowledgement slot pair out of range",
            ));
        };
        // Invariant: the slot holding the last fsynced state is never overwritten before a later write is fsynced.
        let slot = if state.durable {
            1 - state.last
        } else {
            state.last
        };
        let generation = self.generation + 1;
        let bytes = encode_ack_slot(generation, entry);
        let offset =
            ACKS_SLOTS_HEADER_LEN + pair as u64 * ACK_PAIR_LEN + (slot * ACK_SLOT_LEN) as u64;
        fs.write_all_at(&self.file, &bytes, offset)?;
        self.generation = generation;
        self.slots[pair] = Pair {
            last: slot,
            generation,
            // With `Never` nothing is ever fsynced: alternating is all that protects the previous state.
            durable: self.sync == SyncPolicy::Never,
        };
        if self.sync != SyncPolicy::Never {
            self.dirty.push(pair);
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
        Ok(())
    }
}
