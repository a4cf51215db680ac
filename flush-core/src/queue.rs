//! The bounded in-memory queue between `record()` and the spooler thread: bounded by events **and** bytes, with a
//! drop policy when full, and no per-event wake-up of the consumer.
//!
//! The consumer (the spooler) polls on a short tick; a producer wakes it only when the queue crosses a threshold
//! (a batch worth of events but at least [`MIN_WAKE_FILL`], or half the capacity). Waking a blocked consumer costs the producer ~1–14 µs, ten to a
//! hundred times a `try_send` (measured when the queue was chosen), so it must not happen per event.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::config::{DropPolicy, QueueLimits};
use crate::event::QueuedEvent;
use crate::stats::{Counters, add};

/// The smallest queue length that wakes the consumer (unless half the capacity is smaller): the spooler appends up
/// to this many events per store call, and a wake every few dozen events would cost the recording threads a futex
/// wake and a drain competing for their cores that often. Below it, the consumer's tick drains the queue.
pub(crate) const MIN_WAKE_FILL: usize = 512;

/// How many times drop-oldest evicts before giving up and dropping the new event instead.
const MAX_EVICTIONS: usize = 4;

/// What the queue holds, events and estimated bytes, in one word, so that `record()` reserves its room for both with
/// one atomic add and never asks the channel its length (which reads the consumer's cache line): events in the high
/// 24 bits, bytes in the low 40. Invariant: the events and bytes of the queued events, plus the reservations of
/// pushes in progress. An event's bytes are counted up to [`QueueLimits::MAX_BYTES`], so the bytes stay below 2^40 with up to
/// 14 pushes of the largest events in progress at once beside a full queue.
#[derive(Debug, Default)]
struct Occupancy(AtomicU64);

/// Bits of [`Occupancy`] that count bytes.
const BYTES_BITS: u32 = 40;

impl Occupancy {
    fn word(events: u64, bytes: u64) -> u64 {
        (events << BYTES_BITS) | bytes
    }

    fn split(word: u64) -> (usize, usize) {
        (
            (word >> BYTES_BITS) as usize,
            (word & ((1 << BYTES_BITS) - 1)) as usize,
        )
    }

    /// Adds one event of `bytes`; returns the events and bytes held before.
    fn reserve(&self, bytes: usize) -> (usize, usize) {
        Self::split(
            self.0
                .fetch_add(Self::word(1, bytes as u64), Ordering::Relaxed),
        )
    }

    /// Removes `events` events of `bytes` in all.
    fn release(&self, events: usize, bytes: usize) {
        self.0
            .fetch_sub(Self::word(events as u64, bytes as u64), Ordering::Relaxed);
    }

    fn events(&self) -> usize {
        Self::split(self.0.load(Ordering::Relaxed)).0
    }
}

/// The queue. Shared (in an `Arc`) by every `record()` caller and the spooler.
#[derive(Debug)]
pub(crate) struct EventQueue {
    sender: Sender<QueuedEvent>,
    receiver: Receiver<QueuedEvent>,
    occupancy: Occupancy,
    limits: QueueLimits,
    policy: DropPolicy,
    sample_counter: AtomicU32,
    wake: Sender<()>,
    wake_at: usize,
}

impl EventQueue {
    /// A queue, and the receiver the consumer waits on for threshold wake-ups. `wake_at` is the queue length at
    /// which a producer wakes the consumer (raised to [`MIN_WAKE_FILL`]; besides half the capacity). The limits are
    /// at most [`QueueLimits::MAX_EVENTS`] (half of what [`Occupancy`] counts, leaving room for as many pushes in
    /// progress) and [`QueueLimits::MAX_BYTES`]; the configuration checks them.
    pub(crate) fn new(
        limits: QueueLimits,
        policy: DropPolicy,
        wake_at: usize,
    ) -> (Self, Receiver<()>) {
        debug_assert!(
            limits.max_events.get() <= QueueLimits::MAX_EVENTS
                && limits.max_bytes.get() <= QueueLimits::MAX_BYTES
        );
        let (sender, receiver) = crossbeam_channel::bounded(limits.max_events.get());
        let (wake, woken) = crossbeam_channel::bounded(1);
        let queue = Self {
            sender,
            receiver,
            occupancy: Occupancy::default(),
            limits,
            policy,
            sample_counter: AtomicU32::new(0),
            wake,
            wake_at: wake_at.max(MIN_WAKE_FILL).clamp(1, limits.max_events.get()),
        };
        (queue, woken)
    }

    /// Queues `event`, or drops it (or an older one) by the policy and counts the drop. Never blocks.
    #[inline]
    pub(crate) fn push(&self, event: QueuedEvent, counters: &Counters) {
        let half = self.limits.max_events.get() / 2;
        if let DropPolicy::Sample { keep_one_in } = self.policy
            && self.occupancy.events() >= half
            && !self
                .sample_counter
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(keep_one_in.get())
        {
            add(&counters.dropped_sampled, 1);
            return;
        }
        let mut event = event;
        let mut evictions = 0;
        loop {
            match self.try_push(event) {
                Ok(length) => {
                    if length == self.wake_at || length == half {
                        // A full wake channel means a wake-up is already due.
                        let _ = self.wake.try_send(());
                    }
                    return;
                }
                Err(rejected) => {
                    if self.policy == DropPolicy::DropOldest && evictions < MAX_EVICTIONS {
                        evictions += 1;
                        if self.pop().is_some() {
                            add(&counters.dropped_evicted_oldest, 1);
                        }
                        event = rejected;
                        continue;
                    }
                    add(&counters.dropped_queue_full, 1);
                    let _ = self.wake.try_send(());
                    return;
                }
            }
        }
    }

    /// Queues `event` if both bounds allow; returns the events held with it (reservations in progress included).
    #[inline]
    fn try_push(&self, event: QueuedEvent) -> Result<usize, QueuedEvent> {
        let bytes = accounted_bytes(&event);
        let (events_before, bytes_before) = self.occupancy.reserve(bytes);
        // One event larger than the byte bound still fits an empty queue.
        if bytes_before + bytes > self.limits.max_bytes.get() && bytes_before > 0 {
            self.occupancy.release(1, bytes);
            return Err(event);
        }
        match self.sender.try_send(event) {
            Ok(()) => Ok(events_before + 1),
            Err(TrySendError::Full(event) | TrySendError::Disconnected(event)) => {
                self.occupancy.release(1, bytes);
                Err(event)
            }
        }
    }

    /// Takes the oldest queued event, if any. The caller accounts for it from here (see `Counters::in_spooler`).
    pub(crate) fn pop(&self) -> Option<QueuedEvent> {
        let event = self.receiver.try_recv().ok()?;
        self.occupancy.release(1, accounted_bytes(&event));
        Some(event)
    }

    /// Moves up to `max` of the oldest queued events into `into` (one release of their room, not one per event);
    /// returns how many. The caller accounts for them from here (see `Counters::in_spooler`).
    pub(crate) fn pop_into(&self, into: &mut Vec<QueuedEvent>, max: usize) -> usize {
        let mut bytes = 0;
        let mut taken = 0;
        while taken < max {
            let Ok(event) = self.receiver.try_recv() else {
                break;
            };
            bytes += accounted_bytes(&event);
            taken += 1;
            into.push(event);
        }
        if taken > 0 {
            self.occupancy.release(taken, bytes);
        }
        taken
    }

    /// Queued events.
    pub(crate) fn len(&self) -> usize {
        self.receiver.len()
    }
}

/// The bytes an event takes of the queue's byte bound.
fn accounted_bytes(event: &QueuedEvent) -> usize {
    event.estimated_bytes.min(QueueLimits::MAX_BYTES)
}

#[cfg(test)]
mod tests {
    use std::num::{NonZeroU32, NonZeroUsize};

    use super::*;
    use crate::clock::RecordingClock;
    use crate::event::Event;

    fn limits(max_events: usize, max_bytes: usize) -> QueueLimits {
        QueueLimits {
            max_events: NonZeroUsize::new(max_events).unwrap(),
            max_bytes: NonZeroUsize::new(max_bytes).unwrap(),
        }
    }

    fn numbered(n: i64) -> QueuedEvent {
        QueuedEvent::new(Event::new("e").with("n", n), &RecordingClock::monotonic())
    }

    fn drain(queue: &EventQueue) -> Vec<i64> {
        std::iter::from_fn(|| queue.pop())
            .map(|e| e.event.properties().next().unwrap().1.as_i64().unwrap())
            .collect()
    }

    #[test]
    fn drop_newest_keeps_the_first_events_and_counts_the_rest() {
        let counters = Counters::default();
        let (queue, _woken) = EventQueue::new(limits(3, 1 << 20), DropPolicy::DropNewest, 100);
        (0..5).for_each(|n| queue.push(numbered(n), &counters));
        assert_eq!(counters.snapshot(queue.len()).pending.in_memory, 3);
        assert_eq!(drain(&queue), vec![0, 1, 2]);
        assert_eq!(counters.snapshot(0).dropped.queue_full, 2);
    }

    #[test]
    fn drop_oldest_keeps_the_last_events() {
        let counters = Counters::default();
        let (queue, _woken) = EventQueue::new(limits(3, 1 << 20), DropPolicy::DropOldest, 100);
        (0..5).for_each(|n| queue.push(numbered(n), &counters));
        assert_eq!(queue.len(), 3);
        assert_eq!(drain(&queue), vec![2, 3, 4]);
        assert_eq!(counters.snapshot(0).dropped.evicted_oldest, 2);
    }

    #[test]
    fn the_byte_bound_holds_before_the_count_bound() {
        let counters = Counters::default();
        let one = numbered(0).estimated_bytes;
        let (queue, _woken) = EventQueue::new(limits(100, one * 2), DropPolicy::DropNewest, 100);
        (0..5).for_each(|n| queue.push(numbered(n), &counters));
        assert_eq!(queue.len(), 2);
        assert_eq!(counters.snapshot(0).dropped.queue_full, 3);
    }

    #[test]
    fn taking_a_chunk_frees_its_room_in_both_bounds() {
        let counters = Counters::default();
        let one = numbered(0).estimated_bytes;
        let (queue, _woken) = EventQueue::new(limits(3, one * 3), DropPolicy::DropNewest, 100);
        (0..3).for_each(|n| queue.push(numbered(n), &counters));
        let mut taken = Vec::new();
        assert_eq!(queue.pop_into(&mut taken, 2), 2);
        (3..6).for_each(|n| queue.push(numbered(n), &counters));
        assert_eq!(
            counters.snapshot(0).dropped.queue_full,
            1,
            "room for two again, not three"
        );
        assert_eq!(queue.pop_into(&mut taken, 10), 3);
        assert_eq!(
            queue.occupancy.0.load(Ordering::Relaxed),
            0,
            "nothing held, nothing reserved"
        );
        let kept: Vec<i64> = taken
            .iter()
            .map(|e| e.event.properties().next().unwrap().1.as_i64().unwrap())
            .collect();
        assert_eq!(kept, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn one_oversized_event_still_fits_an_empty_queue() {
        let counters = Counters::default();
        let (queue, _woken) = EventQueue::new(limits(10, 10), DropPolicy::DropNewest, 100);
        queue.push(numbered(0), &counters);
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn sampling_keeps_one_in_n_once_half_full() {
        let counters = Counters::default();
        let policy = DropPolicy::Sample {
            keep_one_in: NonZeroU32::new(4).unwrap(),
        };
        let (queue, _woken) = EventQueue::new(limits(100, 1 << 20), policy, 1000);
        (0..50).for_each(|n| queue.push(numbered(n), &counters));
        assert_eq!(queue.len(), 50);
        (50..90).for_each(|n| queue.push(numbered(n), &counters));
        assert_eq!(queue.len(), 60);
        assert_eq!(counters.snapshot(0).dropped.sampled, 30);
    }

    #[test]
    fn the_consumer_is_woken_at_the_thresholds_only() {
        let counters = Counters::default();
        // A batch of 10 is raised to the smallest fill that wakes; half of 4096 is the other threshold.
        let (queue, woken) = EventQueue::new(limits(4096, 1 << 30), DropPolicy::DropNewest, 10);
        (0..MIN_WAKE_FILL as i64 - 1).for_each(|n| queue.push(numbered(n), &counters));
        assert!(woken.try_recv().is_err());
        queue.push(numbered(MIN_WAKE_FILL as i64 - 1), &counters);
        assert!(woken.try_recv().is_ok());
        (MIN_WAKE_FILL as i64..2047).for_each(|n| queue.push(numbered(n), &counters));
        assert!(woken.try_recv().is_err());
        queue.push(numbered(2047), &counters);
        assert!(woken.try_recv().is_ok(), "half the capacity wakes too");
    }

    #[test]
    fn a_small_queue_wakes_its_consumer_at_half_its_capacity() {
        let counters = Counters::default();
        let (queue, woken) = EventQueue::new(limits(100, 1 << 20), DropPolicy::DropNewest, 10);
        (0..49).for_each(|n| queue.push(numbered(n), &counters));
        assert!(woken.try_recv().is_err());
        queue.push(numbered(49), &counters);
        assert!(woken.try_recv().is_ok());
    }
}
