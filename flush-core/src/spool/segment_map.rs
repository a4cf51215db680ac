//! The segments the catalog knows ([`SegmentState`]), in a map that keeps their totals as they change:
//! pending records and bytes, and file bytes. Every change goes through the map (a guard for one segment, a closure
//! for many), so the totals can never drift from the segments, and [`SpoolStats`](super::SpoolStats) and the size
//! budget cost the same whatever the backlog.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut, RangeBounds};

use super::format::{AckEntry, SEGMENT_HEADER_LEN, SegmentKey, WriterId};
use super::segment::Frontier;

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
    /// How far the segment is known to have extended (from the acknowledgement file), until a complete scan has
    /// checked that nothing of it is missing.
    pub(crate) known: Option<Frontier>,
    /// How far the segment is known to extend *durably*: its writer fsynced it that far (this process's own
    /// segments), or an acknowledgement file said so. Only this is written as the known extent: records a scan found
    /// but nobody fsynced can go with an OS crash (the documented loss window), which must not read as a loss later.
    pub(crate) vouched: Frontier,
}

impl SegmentState {
    pub(crate) fn new(key: SegmentKey, created_ms: u64, file_len: u64) -> Self {
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
            known: None,
            vouched: start,
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
    pub(crate) fn settled(&self) -> bool {
        self.sealed && self.complete && !self.own_open && self.acked.offset >= self.frontier.offset
    }

    /// The acknowledgement file's entry: settled up to `acked`, known to extend as far as it is durably known to
    /// (never behind `acked`).
    pub(crate) fn ack_entry(&self, acked: Frontier) -> AckEntry {
        let mut known = self.vouched;
        if acked.offset > known.offset {
            known = acked;
        }
        AckEntry {
            key: self.key,
            offset: acked.offset,
            valid: acked.valid,
            next_index: acked.next_index,
            last_delta_ms: acked.last_delta_ms,
            known_offset: known.offset,
            known_valid: known.valid.max(acked.valid),
            known_next_index: known.next_index.max(acked.next_index),
        }
    }

    /// Writes off what is known of this segment beyond what was handed out, as lost: the file is gone, cannot be
    /// read, or holds less than was known. Returns how many records that loses. Records handed out and not yet
    /// acknowledged stay pending (their acknowledgement settles them); if none are, the segment is settled as it
    /// stands, so it can be removed. The second number is how many of the lost records this process had not counted
    /// yet (known from the acknowledgement file only): the caller counts them as recovered.
    pub(crate) fn write_off_unread(&mut self) -> (u64, u64) {
        let mut end = self.frontier;
        if let Some(known) = self.known.take()
            && known.offset > end.offset
        {
            end = known;
        }
        let newly_known = end.valid.saturating_sub(self.frontier.valid);
        let lost = end.valid.saturating_sub(self.read.valid);
        self.frontier = Frontier {
            offset: end.offset.max(self.read.offset),
            next_index: end.next_index.max(self.read.next_index),
            last_delta_ms: end.last_delta_ms.max(self.read.last_delta_ms),
            valid: self.read.valid,
        };
        self.read = self.frontier;
        if self.acked.valid == self.frontier.valid {
            self.acked = self.frontier;
        }
        // Counted: what was known beyond is not known any more, so no other process counts it again.
        self.vouched = self.frontier;
        // A sealed segment holds nothing more; an unsealed one is scanned on from its frontier as its writer appends.
        if self.sealed {
            self.complete = true;
        }
        (lost, newly_known)
    }

    /// Takes in what the acknowledgement file knew of this segment beyond its frontier.
    pub(crate) fn learn(&mut self, entry: &AckEntry) {
        if entry.known_offset > self.vouched.offset {
            self.vouched = Frontier {
                offset: entry.known_offset,
                next_index: entry.known_next_index,
                last_delta_ms: entry.last_delta_ms,
                valid: entry.known_valid,
            };
        }
        if entry.known_offset > self.frontier.offset
            && self
                .known
                .is_none_or(|known| entry.known_offset > known.offset)
        {
            self.known = Some(Frontier {
                offset: entry.known_offset,
                next_index: entry.known_next_index,
                last_delta_ms: entry.last_delta_ms,
                valid: entry.known_valid,
            });
        }
    }
}

/// What one segment adds to the totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Known records not yet acknowledged or dropped.
    pub(crate) pending_events: u64,
    /// The bytes (frames) of those records: from the acknowledged cursor to the frontier of segments with some.
    pub(crate) pending_bytes: u64,
    /// The segments' file lengths as last looked at.
    pub(crate) file_bytes: u64,
    /// Segments.
    pub(crate) segments: u64,
}

impl Totals {
    fn of(state: &SegmentState) -> Self {
        let pending_events = state.pending();
        Self {
            pending_events,
            pending_bytes: if pending_events > 0 {
                state.frontier.offset.saturating_sub(state.acked.offset)
            } else {
                0
            },
            file_bytes: state.file_len,
            segments: 1,
        }
    }

    fn add(&mut self, other: Self) {
        self.pending_events += other.pending_events;
        self.pending_bytes += other.pending_bytes;
        self.file_bytes += other.file_bytes;
        self.segments += other.segments;
    }

    fn subtract(&mut self, other: Self) {
        self.pending_events -= other.pending_events;
        self.pending_bytes -= other.pending_bytes;
        self.file_bytes -= other.file_bytes;
        self.segments -= other.segments;
    }
}

/// Every known segment by key (writer, then sequence), with their [`Totals`].
#[derive(Debug, Default)]
pub(crate) struct SegmentMap {
    segments: BTreeMap<SegmentKey, SegmentState>,
    totals: Totals,
}

impl SegmentMap {
    /// The sums over every segment, kept as they change (O(1)).
    pub(crate) fn totals(&self) -> Totals {
        debug_assert_eq!(self.totals, self.recount(), "the running totals drifted");
        self.totals
    }

    /// The sums, counted segment by segment (to check the running ones).
    fn recount(&self) -> Totals {
        let mut totals = Totals::default();
        self.segments
            .values()
            .for_each(|state| totals.add(Totals::of(state)));
        totals
    }

    pub(crate) fn get(&self, key: &SegmentKey) -> Option<&SegmentState> {
        self.segments.get(key)
    }

    /// One segment to change; the totals follow when the guard is dropped.
    pub(crate) fn get_mut(&mut self, key: &SegmentKey) -> Option<SegmentMut<'_>> {
        let state = self.segments.get_mut(key)?;
        let before = Totals::of(state);
        Some(SegmentMut {
            state,
            totals: &mut self.totals,
            before,
        })
    }

    pub(crate) fn contains_key(&self, key: &SegmentKey) -> bool {
        self.segments.contains_key(key)
    }

    pub(crate) fn insert(&mut self, key: SegmentKey, state: SegmentState) {
        self.totals.add(Totals::of(&state));
        if let Some(previous) = self.segments.insert(key, state) {
            self.totals.subtract(Totals::of(&previous));
        }
    }

    pub(crate) fn remove(&mut self, key: &SegmentKey) -> Option<SegmentState> {
        let state = self.segments.remove(key)?;
        self.totals.subtract(Totals::of(&state));
        Some(state)
    }

    pub(crate) fn len(&self) -> usize {
        self.segments.len()
    }

    pub(crate) fn keys(&self) -> impl DoubleEndedIterator<Item = &SegmentKey> {
        self.segments.keys()
    }

    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = &SegmentState> {
        self.segments.values()
    }

    pub(crate) fn range(
        &self,
        range: impl RangeBounds<SegmentKey>,
    ) -> impl DoubleEndedIterator<Item = (&SegmentKey, &SegmentState)> {
        self.segments.range(range)
    }

    /// Changes every segment in `range` with `change`.
    pub(crate) fn for_each_mut_in(
        &mut self,
        range: impl RangeBounds<SegmentKey>,
        mut change: impl FnMut(&mut SegmentState),
    ) {
        for state in self.segments.range_mut(range).map(|(_, state)| state) {
            let before = Totals::of(state);
            change(state);
            self.totals.subtract(before);
            self.totals.add(Totals::of(state));
        }
    }

    /// Changes every segment with `change`.
    pub(crate) fn for_each_mut(&mut self, change: impl FnMut(&mut SegmentState)) {
        self.for_each_mut_in(.., change);
    }

    /// The writers with segments, in key order, each visited once: O(writers), whatever their segments.
    pub(crate) fn writers(&self) -> impl Iterator<Item = WriterId> + '_ {
        let mut next = self.segments.keys().next().map(|key| key.writer);
        std::iter::from_fn(move || {
            let writer = next?;
            next = writer.successor().and_then(|successor| {
                self.segments
                    .range(
                        SegmentKey {
                            writer: successor,
                            seq: 0,
                        }..,
                    )
                    .next()
                    .map(|(key, _)| key.writer)
            });
            Some(writer)
        })
    }

    /// The segments of `writer`, in sequence order.
    pub(crate) fn of_writer(
        &self,
        writer: WriterId,
    ) -> impl DoubleEndedIterator<Item = (&SegmentKey, &SegmentState)> {
        self.segments.range(
            SegmentKey { writer, seq: 0 }..=SegmentKey {
                writer,
                seq: u64::MAX,
            },
        )
    }
}

/// One segment being changed; applies its change to the totals when dropped.
pub(crate) struct SegmentMut<'a> {
    state: &'a mut SegmentState,
    totals: &'a mut Totals,
    before: Totals,
}

impl Deref for SegmentMut<'_> {
    type Target = SegmentState;

    fn deref(&self) -> &SegmentState {
        self.state
    }
}

impl DerefMut for SegmentMut<'_> {
    fn deref_mut(&mut self) -> &mut SegmentState {
        self.state
    }
}

impl Drop for SegmentMut<'_> {
    fn drop(&mut self) {
        self.totals.subtract(self.before);
        self.totals.add(Totals::of(self.state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(writer: u128, seq: u64) -> SegmentKey {
        SegmentKey {
            writer: WriterId(writer.to_be_bytes()),
            seq,
        }
    }

    /// A segment with `valid` records known, `acked` of them acknowledged, 100 bytes each.
    fn segment(key: SegmentKey, valid: u64, acked: u64) -> SegmentState {
        let mut state = SegmentState::new(key, 1_000, SEGMENT_HEADER_LEN + 100 * valid);
        state.frontier.valid = valid;
        state.frontier.offset = SEGMENT_HEADER_LEN + 100 * valid;
        state.acked.valid = acked;
        state.acked.offset = SEGMENT_HEADER_LEN + 100 * acked;
        state
    }

    #[test]
    fn the_totals_follow_every_kind_of_change() {
        let mut map = SegmentMap::default();
        map.insert(key(1, 0), segment(key(1, 0), 10, 4));
        map.insert(key(2, 0), segment(key(2, 0), 5, 5));
        assert_eq!(
            map.totals(),
            Totals {
                pending_events: 6,
                pending_bytes: 600,
                file_bytes: 48 * 2 + 1500,
                segments: 2
            }
        );
        if let Some(mut state) = map.get_mut(&key(1, 0)) {
            state.acked = state.frontier;
        }
        assert_eq!(map.totals().pending_events, 0);
        map.for_each_mut(|state| state.frontier.valid += 1);
        assert_eq!(map.totals().pending_events, 2);
        map.insert(key(2, 0), segment(key(2, 0), 3, 0));
        assert_eq!((map.totals().pending_events, map.totals().segments), (4, 2));
        map.remove(&key(1, 0));
        assert_eq!(map.totals(), map.recount());
        assert_eq!(map.totals().segments, 1);
    }

    #[test]
    fn writers_are_visited_once_each_in_key_order_up_to_the_last_id() {
        let mut map = SegmentMap::default();
        for (writer, seq) in [
            (7, 0),
            (7, 1),
            (7, 9),
            (3, 2),
            (u128::MAX, 0),
            (u128::MAX, 1),
        ] {
            map.insert(key(writer, seq), segment(key(writer, seq), 1, 0));
        }
        let writers: Vec<WriterId> = map.writers().collect();
        assert_eq!(
            writers,
            [3, 7, u128::MAX].map(|writer| WriterId(writer.to_be_bytes()))
        );
        let sequences: Vec<u64> = map.of_writer(writers[1]).map(|(key, _)| key.seq).collect();
        assert_eq!(sequences, [0, 1, 9]);
    }
}
