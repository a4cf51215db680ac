//! Counters shared by `record()` and the worker threads, and the [`Stats`] snapshot read from them.
//!
//! # The accounting identity
//!
//! Every event the reporter ever took charge of — recorded in this process, or found in the spool when it opened
//! (`recovered`) — is in exactly one of four places: acknowledged by the server, dropped (for a counted reason),
//! dead-lettered (rejected by the server, kept in the dead-letter file), or pending (in the in-memory queue, on its
//! way into the store, or in the store waiting to be acknowledged). So
//!
//! ```text
//! recorded + recovered = acknowledged + dropped.total() + dead_lettered + settled_elsewhere + pending.total()
//! ```
//!
//! (`settled_elsewhere` counts spool events another process sharing the directory delivered; it is zero when one
//! process at a time uses a spool directory.) This identity holds exactly whenever the pipeline is **quiet**: no `record()` call is in progress and the in-memory queue
//! is not being drained at that instant (the spooler moves an event from the queue's length into its own counter
//! in two steps). Concretely: after [`Reporter::checkpoint`](crate::Reporter::checkpoint),
//! [`Reporter::flush`](crate::Reporter::flush) or [`Reporter::shutdown`](crate::Reporter::shutdown) returns, with no
//! `record()` running concurrently, a snapshot balances. The sender may be in the middle of a request then: that
//! does not matter, because a batch's events are counted as acknowledged or dead-lettered only when the batch is
//! settled in the store, and every worker moves events between counters under one short accounting lock that
//! [`Reporter::stats`](crate::Reporter::stats) also takes. [`Stats::identity_holds`] checks it.
//!
//! Where each term comes from:
//! - `recorded`: every `record()` call, including calls whose event was then dropped;
//! - `recovered`: the spool's `recovered_events` (records in the directory at open, or adopted later from dead
//!   processes' segments); 0 in memory-only mode;
//! - `acknowledged`: events of batches the server answered 2xx for, counted once each and only once the store has
//!   recorded their acknowledgement durably (the spool's `acks` file written). Until then they stay in `pending`
//!   and are counted in [`AckHealth::delivered_not_recorded`]: if the acknowledgement cannot be written (a
//!   read-only or full disk), the next run sends them again and the server dedupes them. A resend does not count
//!   twice: `sent` and `retried` count wire traffic, not events;
//! - `dropped`: by reason, see [`Dropped`] (the spool's own size, age and loss-on-disk drops included);
//! - `dead_lettered`: events the server rejected on their own (400/422/413 for a one-event batch), events the sink
//!   could not encode, and events a partial success rejected (`partially_rejected`, a part of `dead_lettered`);
//! - `pending`: the queue's length + events the spooler holds + the store's unacknowledged records.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

/// Why events were dropped, one counter per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dropped {
    /// `record()` found the in-memory queue full (events or bytes) and dropped the new event.
    pub queue_full: u64,
    /// The drop-oldest policy evicted a queued event to make room.
    pub evicted_oldest: u64,
    /// The sample policy left the event out while the queue was more than half full.
    pub sampled: u64,
    /// `record()` was called after shutdown.
    pub after_shutdown: u64,
    /// The event could not be serialized.
    pub unserializable: u64,
    /// The serialized event is larger than the store's largest record (the spool's `max_record_bytes`).
    pub too_large: u64,
    /// The memory-only store was full.
    pub store_full: u64,
    /// The spool failed to store the event (e.g. the disk is full).
    pub store_error: u64,
    /// The spool dropped the event to stay within its size bounds (its `dropped_for_size`).
    pub spool_size: u64,
    /// The spool dropped the event for age (its `dropped_for_age`).
    pub spool_age: u64,
    /// A worker thread panicked while holding the event (it restarts; the event is lost).
    pub worker_panic: u64,
    /// The spool lost the event on disk (its `corrupt_records`): damaged bytes, or a segment that was cut short,
    /// emptied, deleted or made unreadable after the spool knew the event was there. Such events count in
    /// `recovered` too when another run or process wrote them.
    pub corrupt: u64,
}

impl Dropped {
    /// Every reason with its count, named as the fields are; reports and ledgers use this so that no reason is
    /// forgotten when one is added.
    pub fn by_reason(&self) -> [(&'static str, u64); 12] {
        [
            ("queue_full", self.queue_full),
            ("evicted_oldest", self.evicted_oldest),
            ("sampled", self.sampled),
            ("after_shutdown", self.after_shutdown),
            ("unserializable", self.unserializable),
            ("too_large", self.too_large),
            ("store_full", self.store_full),
            ("store_error", self.store_error),
            ("spool_size", self.spool_size),
            ("spool_age", self.spool_age),
            ("worker_panic", self.worker_panic),
            ("corrupt", self.corrupt),
        ]
    }

    /// All dropped events, whatever the reason.
    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, count)| count).sum()
    }
}

/// Events not yet acknowledged nor given up on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pending {
    /// In the in-memory queue or in the worker's hands on the way into the store.
    pub in_memory: u64,
    /// In the spool (or memory-only store), including a batch that is on the wire. In memory-only mode, what is
    /// still here after [`Reporter::shutdown`](crate::Reporter::shutdown) is never sent: it is lost with the process.
    pub in_store: u64,
}

impl Pending {
    /// All pending events.
    pub fn total(&self) -> u64 {
        self.in_memory + self.in_store
    }
}

/// The circuit breaker's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow.
    #[default]
    Closed,
    /// Requests are held back until the cooldown ends.
    Open,
    /// One small probe batch is allowed through.
    HalfOpen,
}

impl BreakerState {
    fn to_u8(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Open,
            2 => Self::HalfOpen,
            _ => Self::Closed,
        }
    }
}

/// The acknowledgement writes of the store (for the spool, its `acks` file): an event is counted as acknowledged
/// only once its acknowledgement is durable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AckHealth {
    /// Acknowledgement writes that failed, each attempt counted (the sender retries with backoff).
    pub failed_writes: u64,
    /// Events the server stored (or that were dead-lettered) whose acknowledgement is not recorded yet. They are
    /// counted in `pending.in_store`, and are sent again by a later run if this one ends first.
    pub delivered_not_recorded: u64,
    /// Why the acknowledgement cannot be written, while it cannot; `None` once one is written. Other errors never
    /// overwrite it.
    pub error: Option<String>,
}

/// How long explicit flushes took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushTimings {
    /// Flushes that ended with everything acknowledged.
    pub completed: u64,
    /// Flushes that ran out of time.
    pub timed_out: u64,
    /// The last flush's duration.
    pub last: Duration,
    /// The longest flush.
    pub max: Duration,
    /// All flushes together.
    pub total: Duration,
}

/// A snapshot of the reporter's counters. See the module docs of [`stats`](crate::stats) for the identity they keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// `record()` calls, including those whose event was dropped.
    pub recorded: u64,
    /// Events already in the spool when it was opened (a previous run, or adopted from another process).
    pub recovered: u64,
    /// Events written into the store by this process.
    pub spooled: u64,
    /// Events put on the wire, counting every resend.
    pub sent: u64,
    /// HTTP requests made.
    pub requests: u64,
    /// Events acknowledged by the server (each once).
    pub acknowledged: u64,
    /// Events resent after a failed attempt.
    pub retried: u64,
    /// Dropped events by reason.
    pub dropped: Dropped,
    /// Events the server rejected one by one, written to the dead-letter file (including `partially_rejected`).
    pub dead_lettered: u64,
    /// Events a server rejected in an otherwise accepted batch (OTLP's `partialSuccess`): not retried, written to
    /// the dead-letter file with the server's message, and counted in `dead_lettered` too.
    pub partially_rejected: u64,
    /// Events still on their way.
    pub pending: Pending,
    /// The circuit breaker's state.
    pub breaker: BreakerState,
    /// The last delivery or storage error, for humans.
    pub last_error: Option<String>,
    /// Explicit flush timings.
    pub flushes: FlushTimings,
    /// How long past its deadline [`shutdown`](crate::Reporter::shutdown) waited for what was queued to reach the
    /// store (zero when it was stored in time; at most a second, the one wait the deadline does not bound).
    pub shutdown_store_overrun: Duration,
    /// Worker threads restarted after a panic.
    pub worker_restarts: u64,
    /// Spool events that another process delivering from the same directory acknowledged or dropped (zero when one
    /// process at a time uses the directory).
    pub settled_elsewhere: u64,
    /// The state of acknowledgement writes.
    pub acks: AckHealth,
    /// Files in the spool directory named like spool files that the spool cannot use (not regular files, or
    /// segments it cannot open), as of its last look; they are never opened for reading or writing.
    pub foreign_files: u64,
    /// How many times the sender thread woke up and decided whether to send (at least once per `poll_interval`):
    /// a sign of life, and what tests wait on to see that it had its chance.
    pub sender_ticks: u64,
}

impl Stats {
    /// Whether `recorded + recovered = acknowledged + dropped + dead_lettered + settled_elsewhere + pending` holds
    /// for this snapshot.
    /// It must whenever the pipeline was quiet when the snapshot was taken.
    pub fn identity_holds(&self) -> bool {
        self.recorded + self.recovered
            == self.acknowledged
                + self.dropped.total()
                + self.dead_lettered
                + self.settled_elsewhere
                + self.pending.total()
    }
}

/// A counter on a cache line of its own (128 bytes: two lines, for CPUs that fetch lines in pairs). `record()`
/// increments `recorded` on every call; on a line shared with the workers' counters, each increment would first wait
/// for the line to come back from the core that last wrote it.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct OwnLine(AtomicU64);

impl std::ops::Deref for OwnLine {
    type Target = AtomicU64;

    fn deref(&self) -> &AtomicU64 {
        &self.0
    }
}

/// The live counters, shared through an `Arc` by the client and both workers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Incremented by every `record()`, so on its own line; the workers' counters follow it.
    pub(crate) recorded: OwnLine,
    pub(crate) recovered: AtomicU64,
    pub(crate) spooled: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) acknowledged: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) partially_rejected: AtomicU64,
    /// Events the spooler took from the queue and has not yet stored or dropped. (Queued events are counted by
    /// the queue's length: `record()` touches no counter of its own for them.)
    pub(crate) in_spooler: AtomicU64,
    pub(crate) in_store: AtomicU64,
    pub(crate) worker_restarts: AtomicU64,
    pub(crate) settled_elsewhere: AtomicU64,
    pub(crate) ack_failed_writes: AtomicU64,
    pub(crate) delivered_not_recorded: AtomicU64,
    pub(crate) foreign_files: AtomicU64,
    pub(crate) sender_ticks: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_evicted_oldest: AtomicU64,
    pub(crate) dropped_sampled: AtomicU64,
    pub(crate) dropped_after_shutdown: AtomicU64,
    pub(crate) dropped_unserializable: AtomicU64,
    pub(crate) dropped_too_large: AtomicU64,
    pub(crate) dropped_store_full: AtomicU64,
    pub(crate) dropped_store_error: AtomicU64,
    pub(crate) dropped_spool_size: AtomicU64,
    pub(crate) dropped_spool_age: AtomicU64,
    pub(crate) dropped_worker_panic: AtomicU64,
    pub(crate) dropped_corrupt: AtomicU64,
    breaker: AtomicU8,
    /// Held by a worker while it moves events between counters, and by [`Counters::snapshot`]: a snapshot never
    /// sees an event half moved. Only ever held across a few atomic operations; `record()` never takes it.
    accounting: Mutex<()>,
    last_error: Mutex<Option<String>>,
    ack_error: Mutex<Option<String>>,
    flushes: Mutex<FlushTimings>,
    shutdown_store_overrun_nanos: AtomicU64,
}

/// Adds `n` to a counter. Relaxed: counters order nothing; quiescence comes from the channels between threads.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// Holds the accounting lock: counters updated while it is held move together in snapshots.
    pub(crate) fn accounting(&self) -> std::sync::MutexGuard<'_, ()> {
        self.accounting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn set_breaker(&self, state: BreakerState) {
        self.breaker.store(state.to_u8(), Ordering::Relaxed);
    }

    /// Keeps `message` as the last error and logs it at debug level: failures are never printed.
    pub(crate) fn set_last_error(&self, message: String) {
        tracing::debug!(error = %message, "flush-core delivery problem");
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = Some(message);
    }

    /// Sets (or, with `None`, clears) the current acknowledgement error; a new one is also the last error.
    pub(crate) fn set_ack_error(&self, message: Option<String>) {
        let mut current = self
            .ack_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(message) = &message
            && current.as_ref() != Some(message)
        {
            // A retry failing the same way is not news: it does not push a newer, different error out.
            self.set_last_error(message.clone());
        }
        *current = message;
    }

    pub(crate) fn record_shutdown_store_overrun(&self, overrun: Duration) {
        let nanos = u64::try_from(overrun.as_nanos()).unwrap_or(u64::MAX);
        self.shutdown_store_overrun_nanos
            .store(nanos, Ordering::Relaxed);
    }

    pub(crate) fn record_flush(&self, took: Duration, completed: bool) {
        let mut flushes = self
            .flushes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if completed {
            flushes.completed += 1;
        } else {
            flushes.timed_out += 1;
        }
        flushes.last = took;
        flushes.max = flushes.max.max(took);
        flushes.total += took;
    }

    /// A snapshot; `queued` is the queue's length, read by the caller.
    pub(crate) fn snapshot(&self, queued: usize) -> Stats {
        let _accounting = self.accounting();
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            recorded: get(&self.recorded),
            recovered: get(&self.recovered),
            spooled: get(&self.spooled),
            sent: get(&self.sent),
            requests: get(&self.requests),
            acknowledged: get(&self.acknowledged),
            retried: get(&self.retried),
            dropped: Dropped {
                queue_full: get(&self.dropped_queue_full),
                evicted_oldest: get(&self.dropped_evicted_oldest),
                sampled: get(&self.dropped_sampled),
                after_shutdown: get(&self.dropped_after_shutdown),
                unserializable: get(&self.dropped_unserializable),
                too_large: get(&self.dropped_too_large),
                store_full: get(&self.dropped_store_full),
                store_error: get(&self.dropped_store_error),
                spool_size: get(&self.dropped_spool_size),
                spool_age: get(&self.dropped_spool_age),
                worker_panic: get(&self.dropped_worker_panic),
                corrupt: get(&self.dropped_corrupt),
            },
            dead_lettered: get(&self.dead_lettered),
            partially_rejected: get(&self.partially_rejected),
            pending: Pending {
                in_memory: queued as u64 + get(&self.in_spooler),
                in_store: get(&self.in_store),
            },
            breaker: BreakerState::from_u8(self.breaker.load(Ordering::Relaxed)),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            flushes: *self
                .flushes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            shutdown_store_overrun: Duration::from_nanos(get(&self.shutdown_store_overrun_nanos)),
            worker_restarts: get(&self.worker_restarts),
            settled_elsewhere: get(&self.settled_elsewhere),
            acks: AckHealth {
                failed_writes: get(&self.ack_failed_writes),
                delivered_not_recorded: get(&self.delivered_not_recorded),
                error: self
                    .ack_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone(),
            },
            foreign_files: get(&self.foreign_files),
            sender_ticks: get(&self.sender_ticks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_snapshot_keeps_the_identity() {
        let counters = Counters::default();
        add(&counters.recorded, 3);
        add(&counters.dropped_sampled, 1);
        add(&counters.acknowledged, 1);
        let stats = counters.snapshot(1);
        assert!(stats.identity_holds(), "{stats:?}");
        assert_eq!(stats.dropped.total(), 1);
    }

    #[test]
    fn breaker_state_round_trips() {
        let counters = Counters::default();
        for state in [
            BreakerState::Open,
            BreakerState::HalfOpen,
            BreakerState::Closed,
        ] {
            counters.set_breaker(state);
            assert_eq!(counters.snapshot(0).breaker, state);
        }
    }
}
