//! The crash-safe spool: an on-disk log that loses nothing and hands nothing out twice.
//!
//! Every recorded event lands here before it is sent. A [`Spool`] is one process's writer into a spool directory;
//! [`Spool::try_deliver`] takes the directory's delivery lock and returns a [`SpoolReader`] that hands out the records
//! of every writer (this process's, other live processes', and dead processes' adopted ones) in batches, and
//! acknowledges them durably. Many processes may share one directory: each appends to files of its own, one at a
//! time delivers.
//!
//! ```
//! use flush_core::spool::{Spool, SpoolConfig, SyncPolicy};
//!
//! # fn main() -> Result<(), flush_core::spool::SpoolError> {
//! # let temporary = std::env::temp_dir().join(format!("spool-doc-{}", std::process::id()));
//! let mut config = SpoolConfig::new(&temporary);
//! config.sync = SyncPolicy::Always;
//! let mut spool = Spool::open(config)?;
//! spool.append(&[b"{\"event\":\"a\"}".as_slice(), b"{\"event\":\"b\"}"])?;
//! if let Some(mut reader) = spool.try_deliver()? {
//!     while let Some(batch) = reader.next_batch(100, 1 << 20)? {
//!         // ... send batch.records; on success:
//!         reader.ack(&batch.position)?;
//!     }
//! }
//! assert_eq!(spool.stats().pending_events, 0);
//! # drop(spool);
//! # std::fs::remove_dir_all(&temporary).ok();
//! # Ok(())
//! # }
//! ```
//!
//! # On-disk format (segments version 1, acknowledgement file version 3)
//!
//! All integers are little-endian. The checksum everywhere is **CRC-32C** (Castagnoli, polynomial `0x1EDC6F41`,
//! reflected `0x82F63B78`, initial value and final xor `0xFFFFFFFF`), as computed by the `crc32c` crate (hardware
//! accelerated with SSE4.2 / ARMv8 CRC). Its check value, `crc32c("123456789") = 0xE3069283`, is pinned by a unit test
//! (CRC-32/IEEE would give `0xCBF43926`).
//!
//! ## Directory layout
//!
//! | path | what |
//! |---|---|
//! | `<dir>/` | created with mode `0700`; every file in it is created `0600` (telemetry can hold personal data) |
//! | `<writer>.lock` | one per writer (open [`Spool`]); the writer holds an exclusive `flock` on it for its lifetime. Created as `<writer>.lock.tmp`, locked, then renamed, so it is never seen unlocked while its writer lives. Removed, under its lock, by its writer when it closes with no segment left, or by the delivering process once the writer is dead and its segments are gone; a dead writer's `<writer>.lock.tmp` likewise (a starting writer whose half-created file is taken starts again under a new id). So the lock files are bounded by the live writers and the writers with segments |
//! | `<writer>-<seq>.seg` | a segment: `<writer>` is the writer id (a UUID v7, 32 lowercase hex digits), `<seq>` its number within the writer (16 lowercase hex digits, from 0) |
//! | `delivery.lock` | the delivery lock: whoever holds its `flock` is the one reader of the directory |
//! | `acks` | the acknowledgement file, written by the delivery-lock holder: whole and atomically (via `acks.<writer>.tmp`) when it starts delivering, then in place |
//!
//! Only regular files are ever opened, always with `O_NONBLOCK`: an entry named like a segment or a lock file that
//! is not a regular file (a FIFO, a socket, a device, a symbolic link) is never opened and is counted in
//! [`SpoolStats::foreign_files`], with segments that cannot be opened. Every file operation goes through the
//! [`FileSystem`] of the configuration ([`RealFileSystem`] by default).
//! | `flushed/` | with `keep_flushed`, fully delivered segments are moved here (still under `max_age` and `max_total_bytes`) |
//!
//! ## Segment
//!
//! A 48-byte header, then frames back to back, nothing else (no footer: a segment ends where its last valid frame
//! ends).
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `FLUSHSEG` |
//! | 8 | 2 | format version, `1` |
//! | 10 | 2 | flags, `0` |
//! | 12 | 16 | writer id (must match the file name, or the header counts as damaged) |
//! | 28 | 8 | segment sequence number (must match the file name, or the header counts as damaged) |
//! | 36 | 8 | creation time, milliseconds since the Unix epoch |
//! | 44 | 4 | CRC-32C of bytes 0..44 |
//!
//! A writer rolls over to a new segment when the next batch would take the current one past `max_segment_bytes` (a
//! batch never spans segments; a batch bigger than the limit gets a segment of its own), or before frame times could
//! overflow (~49 days).
//!
//! ## Frame (one record = one event)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | payload length `n` (at most `max_record_bytes`) |
//! | 4 | 4 | CRC-32C of bytes 0..4, 8..16 and the payload (everything but itself) |
//! | 8 | 4 | record index within the segment: 0, 1, 2, ... without gaps |
//! | 12 | 4 | append time, milliseconds after the segment's creation time; never decreases within a segment |
//! | 16 | n | payload |
//!
//! A batch is encoded into one buffer and written with one positioned `write` at the segment's end.
//!
//! ## Acknowledgement file (`acks`, version 3)
//!
//! A 32-byte header: magic `FLUSHACK` (8), version `3` (2), reserved (2), slot length `128` (4), reserved (12), CRC-32C
//! of bytes 0..28 (4). Then slot pairs of 256 bytes, back to back: each segment with an entry owns one pair, two
//! alternating slots. A slot (128 bytes): generation (8; every slot write takes the next one), kind (4: `1` an entry,
//! `2` free), reserved (4), the entry (72), zeros (36), CRC-32C of bytes 0..124 (4). An all-zero slot was never
//! written. The pair's state is its valid slot of the highest generation; a free slot means the pair holds no entry.
//!
//! An entry (72 bytes): writer id (16), segment sequence (8), settled offset (8), count of valid frames before that
//! offset (8), the index the frame at that offset should have (4), the time delta of the last settled frame (4), then
//! the segment's **known extent**: known offset (8), count of valid frames before it (8), the index the frame at that
//! offset should have (4), reserved (4). Everything of that segment before the settled offset is acknowledged or
//! dropped; the known extent is how far the segment is known to extend **durably** when the entry was last written
//! (never behind the settled offset): how far its writer had fsynced it (a writer knows that of its own segments), or
//! what an earlier `acks` said, whichever is further; never frames a scan merely found, which an operating-system
//! crash can still take. A segment without an entry is settled up to its header, with nothing known beyond.
//!
//! **Writing.** When a process starts delivering, its first write of the file is whole: written to a temporary file,
//! fsynced, renamed over `acks`, the directory fsynced (so are later changes that touch entries other than the ones
//! acknowledged: drops of expired records, losses written off). After that, an acknowledgement rewrites only the
//! slots of the segments it moves, each with one positioned `write` into the open file (a new pair is appended at the
//! end, whole); a removed segment's pair is written free and reused. A slot write goes to the slot of the pair that
//! does *not* hold the state as of the last fsync (between two fsyncs, every write of a pair goes to the same slot),
//! so a write torn by a crash leaves the pair at its last fsynced state, and a damaged slot is never mistaken for
//! another (its CRC).
//!
//! **Durability** follows the sync policy. [`SyncPolicy::Always`]: the slots are fsynced before `ack` returns.
//! [`SyncPolicy::GroupCommit`]: they are fsynced (group commit) by the first `ack` once the oldest unsynced write is
//! older than the interval, by [`Spool::sync_if_due`] (the reporter calls it on every tick), by [`Spool::sync`] and
//! when the reader is dropped. [`SyncPolicy::Never`]: never. The fsync runs with the catalog unlocked. The trade: a
//! **process crash loses no acknowledgement** (every `write` reached the kernel before `ack` returned); an
//! **operating-system crash** (or power cut) may lose the acknowledgements of at most the last group-commit window
//! (the interval, plus the tick that syncs it), whose batches are then delivered again and deduplicated by the server
//! (their idempotency keys), never lost; with `Never`, any acknowledgement not yet written back by the kernel.
//!
//! **Reading** (every process, at `open` and at every `try_deliver`): versions 1 (48-byte entries without the known
//! extent, read as knowing nothing beyond the settled offset) and 2 (a count, the entries, one CRC over the whole
//! file) are still read; the delivering process then writes version 3. A missing file means "nothing acknowledged";
//! a file with a damaged header (or a damaged version 1 or 2 block, or an unknown version) is read as "nothing
//! acknowledged", and a pair with no valid slot but a damaged one as "no entry": the records are sent again (their
//! idempotency keys make that harmless), never lost, and the damage is counted in [`SpoolStats::damaged_acks`].
//! A file ending inside a pair (a torn extension) ends before that pair.
//!
//! # Liveness, sealing and adoption
//!
//! A writer is **alive** while its `<writer>.lock` is locked; the kernel releases the lock when the process exits in
//! any way, SIGKILL included. A lock that can be taken (or a missing lock file) means the writer is **dead**; writer
//! ids are never reused, so it stays dead. A segment is **sealed** when no byte will ever be added to it: its writer
//! has a later segment, or is dead.
//!
//! - In a segment that is not sealed, the first incomplete or invalid frame ends what is readable *for now*: it is
//!   "not yet written" (a concurrent `write` can be seen half done), never cut.
//! - When a writer is found dead, its segments are sealed and scanned to the end while holding its lock (so two
//!   processes never cut the same file at once), and a torn tail is cut (`ftruncate` to the end of the last valid
//!   frame). Its records are then delivered like any other: that is **adoption**.
//!
//! # Recovery rules
//!
//! Scanning a segment walks frames from a known frontier. A frame is valid when its length is at most
//! `max_record_bytes` and its CRC matches.
//!
//! - **Bounded**: a length over `max_record_bytes` is invalid before anything is read or allocated, so a corrupt
//!   length costs nothing; every scan step advances, so no input can make it loop.
//! - **Torn tail**: in a sealed segment, bytes after the last valid frame that contain no later valid frame are a torn
//!   tail: counted in [`SpoolStats::corrupt_bytes`] and cut (for a dead writer).
//! - **Mid-file damage** (sealed segments only): after an invalid frame at offset `o`, the scan looks at every later
//!   offset for the next frame that (1) has a length at most `max_record_bytes` that fits in the file, (2) has a
//!   record index at least the expected one and at most the expected one plus the file length / 16, (3) has a time
//!   delta at least the last valid one, and (4) has a matching CRC. The bytes between are skipped; the records lost
//!   there are exactly the gap in record indexes, counted in [`SpoolStats::corrupt_records`] and bytes in
//!   [`SpoolStats::corrupt_bytes`], and logged at debug level. At most 64 MiB after the damage are searched.
//! - **False-positive bound**: a random position passes (4) with probability 2⁻³², independently of (1)–(3), so
//!   resynchronising over `d` damaged bytes yields an invented record with probability at most `d · 2⁻³²` (below
//!   10⁻⁷ for a whole 256 MiB of damage; (1)–(3) make it far smaller in practice). A payload that itself contains a
//!   complete valid frame could be mistaken for one only if the real frame around it is damaged; JSON payloads never
//!   contain the NUL bytes a small length field needs.
//! - A damaged segment header loses only the header: frames are still read, their times counted from the file's
//!   modification time. A file shorter than a header, of a dead writer, is a torn creation and is removed.
//! - None of this is an error: damage never stops the rest of the spool from being delivered.
//!
//! # Losses the spool can prove
//!
//! A record is **known to exist** to a process when it appended or scanned it, or when the acknowledgement file's
//! known extent covers it. Record indexes are dense within a segment, so a known record that cannot be delivered is
//! counted exactly, in [`SpoolStats::corrupt_records`]. A loss is **proved** only by one of these:
//!
//! - a sealed segment scanned to its end stops before what is known of it (it was cut short, emptied, or its last
//!   frames damaged): `known next index - last valid index - 1` records;
//! - a segment that cannot be opened (not a regular file any more, permission denied): its known records not yet
//!   handed out;
//! - a segment this process knew that vanished: while this process holds the delivery lock nobody else settles or
//!   removes anything, so its known records not handed out are lost. Without the lock, the delivering process may
//!   have settled and removed it; a segment is only ever removed after an `acks` settling it whole is written, and
//!   `acks` is read after the listing that missed the file, so: what that `acks` says is settled is settled elsewhere
//!   (also the records appended after this process last scanned the segment: known now, and settled at once); only
//!   what this process or that `acks` knows beyond its settled offset is lost (removed from outside); a segment without an entry (dropped from the file once
//!   removed) counts as settled elsewhere whole;
//! - a segment named in `acks` with records beyond its settled offset whose file is missing, and that this process
//!   never knew: counted only by a process that has just taken the delivery lock (nobody writes `acks` or removes a
//!   segment while it is held, so `acks` and the listing agree). From outside, the segment may have been created
//!   after the listing and written into `acks` since, so nothing is proved;
//! - the whole directory removed from outside (a delivering process never removes it): every known record.
//!
//! Nothing else is a loss: records another process delivered are `settled_elsewhere`, never `corrupt_records`, and
//! records handed out and not yet acknowledged stay pending until their acknowledgement (or a rewind) settles them.
//! Each process counts a loss once; a delivering process then rewrites `acks` (a writer that takes the lock for a
//! moment too), so the entry no longer describes the lost records and later processes do not count them again.
//! What no process knew durably cannot be counted: records a writer appended but had not fsynced (with
//! [`SyncPolicy::GroupCommit`] until its next fsync, with [`SyncPolicy::Never`] until an explicit
//! [`Spool::sync`]) that an operating-system crash took are the documented loss window, lost without a trace, even
//! if another process had scanned or delivered some of them; a torn frame (a write cut by a crash, whose `append`
//! never returned) was never known and is counted in bytes only. A process crash (SIGKILL included) loses nothing
//! appended: the kernel has it.
//!
//! # The write-behind buffer
//!
//! [`Spool::append`] hands its batch to the kernel with one `write` before it returns. [`Spool::append_buffered`]
//! instead encodes it into a user-space buffer of at most [`WRITE_BEHIND_BYTES`] (plus one batch), written with one
//! `write` when it fills, and by the next `append`, [`Spool::write_out_buffered`], [`Spool::sync`],
//! [`Spool::sync_if_due`], a rollover and the drop of the spool; the frontier readers see moves only when it is
//! written. Records in the buffer are exactly as exposed as events in an application's in-memory queue: a process
//! crash loses them, without a trace on disk. They are counted in [`SpoolStats::buffered_events`] meanwhile; if
//! writing them fails (a full disk), they are dropped and counted in [`SpoolStats::dropped_unwritten`]. The
//! reporter's spooler uses `append` (one `write` per drained chunk of up to 512 events), so everything it counts as
//! stored has reached the kernel.
//!
//! # Delivery and acknowledgement
//!
//! One reader at a time per directory (the `delivery.lock` flock). It hands out each writer's records in append order;
//! across writers, the writer with the oldest readable segment comes first. Each record is handed out once per reader
//! (until [`SpoolReader::rewind`] or a new reader). [`SpoolReader::ack`] persists the read cursors of the batch's
//! [`Position`] in `acks` *before* anything is counted or removed; a sealed segment that is fully acknowledged is then
//! deleted, or moved to `flushed/` with `keep_flushed`. So after any crash, acknowledged records are never handed out
//! again (`acks` is written first) and unacknowledged ones always are (nothing is removed before it is
//! acknowledged). A new reader (of any process) starts at the acknowledged cursors.
//!
//! Durability of `acks` follows the sync policy (see the acknowledgement file above): with [`SyncPolicy::Always`]
//! every acknowledgement is fsynced before `ack` returns; with [`SyncPolicy::GroupCommit`] at most one group-commit
//! window later; with [`SyncPolicy::Never`] never. A process crash loses no acknowledgement; an OS crash (not a
//! process crash) can make the last acknowledged batches be delivered again (their idempotency keys make that
//! harmless) but can never lose a record.
//!
//! Locks are `flock`s, held by open file descriptions: a process that `fork`s without `exec` gives its child the
//! writer and delivery locks too (a writer then looks alive until the child exits, and `try_deliver` returns `None`
//! meanwhile). Every file is opened close-on-exec, so a child that `exec`s holds them only for a moment.
//!
//! # Bounds
//!
//! - **Size**: over `max_total_bytes` (segments plus `flushed/`), kept flushed segments go first, then the oldest
//!   sealed segments with nothing handed out; their unacknowledged records are counted in
//!   [`SpoolStats::dropped_for_size`]. A live writer's open segment is never removed.
//! - **Age**: whole segments whose last record is older than `max_age`, and single expired records at the head of a
//!   segment when the reader reaches them, are dropped and counted in [`SpoolStats::dropped_for_age`]; kept flushed
//!   segments older than `max_age` are removed.
//! - Drops are applied by the delivery-lock holder (a reader, or a writer that takes the lock for a moment when it
//!   is free), persisted in `acks` like acknowledgements, and never touch records handed out and not yet
//!   acknowledged.
//!
//! # Accounting (what [`SpoolStats`] means with several processes)
//!
//! The statistics are this process's view, kept in memory and updated incrementally (appends, acknowledgements,
//! drops, and scans of new data), so [`Spool::stats`] does no I/O. A record is **known** to this process when it
//! appended it (`recorded`) or scanned it (`recovered_events`: at open, and whenever it finds new records of other
//! writers, during delivery or [`Spool::try_deliver`]; records found lost in a damaged region count here too). A
//! known record leaves `pending_events` exactly once: as `acknowledged_events`, `dropped_for_size`,
//! `dropped_for_age`, `corrupt_records`, or `settled_elsewhere`
//! (acknowledged or dropped by another process, seen in `acks` when this process next looks: every `try_deliver`,
//! successful or not). Records of `append_buffered` are `buffered_events` until written (then pending) or lost
//! (`dropped_unwritten`). So at any moment:
//!
//! `recorded + recovered_events = acknowledged_events + dropped_for_size + dropped_for_age + corrupt_records +
//! settled_elsewhere + dropped_unwritten + pending_events + buffered_events`.
//!
//! With a single process `settled_elsewhere` is always 0. With several, `pending_events` can include records
//! another process has delivered since this one last looked (it is an upper bound, exact as of the last
//! `try_deliver`), and excludes records other live writers appended since then.
//!
//! # Module map
//!
//! `format` (byte layout, pure), `segment` (scanning and resynchronisation), `acks` (writing the acknowledgement
//! file in place, group-committed), `segment_map` (the known segments, with running totals kept as they change, so
//! the statistics and the size budget cost O(writers), not O(segments)), `catalog` (this process's view of the
//! directory: cursors, liveness, counters, retention), `writer` ([`Spool`], with its write-behind buffer), `reader` ([`SpoolReader`]), `lock`
//! (flocks), `io` (the [`FileSystem`] seam every file operation goes through, where tests inject faults), `config`,
//! `error`.

mod acks;
mod catalog;
mod config;
mod error;
mod format;
mod io;
mod lock;
mod reader;
mod segment;
mod segment_map;
mod writer;

#[cfg(test)]
mod tests;

pub use config::{SpoolConfig, SpoolStats, SyncPolicy};
pub use error::SpoolError;
pub use io::{DirEntry, FileSystem, NOT_A_REGULAR_FILE, OpenMode, RealFileSystem};
pub(crate) use reader::PendingAck;
pub use reader::{Position, SpoolBatch, SpoolReader};
pub use writer::{Spool, WRITE_BEHIND_BYTES};
