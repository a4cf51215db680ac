//! The sender thread: reads batches from the store, posts them, and acknowledges the store only after the server
//! stored every event of the batch (or the event was dead-lettered).
//!
//! # How a batch moves
//!
//! A batch read from the store is *in flight* until it is settled. It is split into *parts* (at first one part, the
//! whole batch). The sink (`crate::sink`) encodes the front part into a request, which is posted; the sink
//! classifies the answer into a [`Verdict`] (timeouts and connection errors are always a retry):
//! - accepted: the part is done;
//! - partially accepted (OTLP's `partialSuccess`): the part is done, not retried; the rejected count is counted as
//!   dead-lettered (and `partially_rejected`) and written to the dead-letter file with the server's message;
//! - retry (for `/ingest`: 408, 429, 5xx; timeout, connection error): the same part is posted again after a backoff
//!   (same events, same uuids), and the breaker counts a failure;
//! - reject (400/422) or too large (413), or a part the sink cannot encode: the part is halved (bisection) until a
//!   single event is left, which goes to the dead-letter file; the events behind it go on;
//! - misconfigured (401, 403, other 4xx): the part is kept and the breaker opens at once.
//!
//! When no part is left, the batch's store position is acknowledged: only once that acknowledgement is recorded
//! durably (the spool's `acks` file written) are its events counted as acknowledged or dead-lettered. A crash before
//! that resends the whole batch on the next run; the server's per-uuid dedupe makes that harmless.
//!
//! If the acknowledgement cannot be written (a read-only or full disk, `EIO`), the batch stays in flight, its events
//! stay pending and are counted in `Stats::acks.delivered_not_recorded`, the failure is kept in `Stats::acks.error`,
//! and the acknowledgement is tried again after a backoff (never in a busy loop), before anything else is sent. A
//! flush waiting for it ends at its deadline.
//!
//! # When to send
//! Background mode: `batch_size` events unsent, or the oldest unsent for `batch_delay`. Idle-only mode: only after an
//! idle signal, a flush or at shutdown (each drains what was recorded before it), or past the high-water mark or
//! maximum delay. An in-flight batch is always finished, whatever the mode.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::breaker::Breaker;
use crate::config::{Config, FlushMode};
use crate::dead_letter::DeadLetters;
use crate::error::describe;
use crate::outcome::{FlushOutcome, ShutdownOutcome};
use crate::retry::Backoff;
use crate::sender::{Attempt, HttpSender};
use crate::shared_store::{SharedStore, lock, publish};
use crate::sink::Verdict;
use crate::stats::{BreakerState, Counters, add};
use crate::store::StorePosition;

/// What the spooler forwards to the sender, once everything recorded before the command is in the store.
/// `target` is the store sequence number the command covers (see `Spooler::end_of_store`).
#[derive(Debug)]
pub(crate) enum DeliveryCommand {
    /// New records are in the store: look now instead of at the next poll. The spooler sends it once per drain that
    /// stored something, and only when the channel is empty (never per event).
    Wake,
    Idle {
        target: u64,
    },
    Flush {
        target: u64,
        deadline: Instant,
        reply: Sender<FlushOutcome>,
    },
    Shutdown {
        target: u64,
        deadline: Instant,
        max_events: Option<usize>,
        reply: Sender<ShutdownOutcome>,
    },
}

#[derive(Debug)]
struct Part {
    range: Range<usize>,
    failed_before: bool,
}

#[derive(Debug)]
struct InFlight {
    records: Vec<Vec<u8>>,
    position: StorePosition,
    parts: VecDeque<Part>,
    accepted: u64,
    dead_lettered: u64,
    /// Failed attempts to acknowledge the batch in the store (every part is settled then).
    ack_failures: u64,
    /// Of `dead_lettered`, the events partial successes rejected.
    partially_rejected: u64,
}

#[derive(Debug)]
struct FlushWaiter {
    target: u64,
    deadline: Instant,
    started: Instant,
    reply: Sender<FlushOutcome>,
}

#[derive(Debug)]
struct Shutdown {
    target: u64,
    deadline: Instant,
    budget: Option<usize>,
    reply: Sender<ShutdownOutcome>,
}

/// The sender's state.
pub(crate) struct Delivery {
    commands: Receiver<DeliveryCommand>,
    store: SharedStore,
    counters: Arc<Counters>,
    sender: HttpSender,
    backoff: Backoff,
    breaker: Breaker,
    dead_letters: DeadLetters,
    mode: FlushMode,
    batch_size: usize,
    max_batch_bytes: usize,
    batch_delay: Duration,
    request_timeout: Duration,
    poll_interval: Duration,
    in_flight: Option<InFlight>,
    /// No request before this (backoff after a failure).
    not_before: Option<Instant>,
    /// Store records settled by this sender (acknowledged or dead-lettered), plus what the store dropped itself.
    settled_here: u64,
    /// The highest idle target: send until `settled >= drain_until`.
    drain_until: u64,
    /// When the oldest unsent event was first seen unsent.
    oldest_unsent_since: Option<Instant>,
    /// The store had nothing to read (or another process delivers): do not ask again before this.
    store_empty_until: Option<Instant>,
    waiters: Vec<FlushWaiter>,
    shutdown: Option<Shutdown>,
}

impl Delivery {
    pub(crate) fn new(
        config: &Config,
        distinct_id: &str,
        commands: Receiver<DeliveryCommand>,
        store: SharedStore,
        counters: Arc<Counters>,
    ) -> Self {
        let dead_letters = DeadLetters::new(lock(&store).dead_letter_dir().as_deref());
        Self {
            commands,
            store,
            counters,
            sender: HttpSender::new(
                Arc::clone(&config.sink),
                config.url.clone(),
                config.gzip,
                distinct_id.to_owned(),
            ),
            backoff: Backoff::new(config.retry),
            breaker: Breaker::new(config.breaker),
            dead_letters,
            mode: config.flush_mode,
            batch_size: config.batch_size.get(),
            max_batch_bytes: config.max_batch_bytes.get(),
            batch_delay: config.batch_delay,
            request_timeout: config.request_timeout,
            poll_interval: config.poll_interval,
            in_flight: None,
            not_before: None,
            settled_here: 0,
            drain_until: 0,
            oldest_unsent_since: None,
            store_empty_until: None,
            waiters: Vec::new(),
            shutdown: None,
        }
    }

    /// Runs until the shutdown drain is over.
    pub(crate) fn run(&mut self) {
        loop {
            add(&self.counters.sender_ticks, 1);
            let now = Instant::now();
            let wait = self.wait_time(now);
            match self.commands.recv_timeout(wait) {
                Ok(command) => self.accept(command),
                Err(RecvTimeoutError::Timeout) => {}
                // The spooler is gone without a shutdown (it gave up after panics): stop now.
                Err(RecvTimeoutError::Disconnected) if self.shutdown.is_none() => return,
                // The spooler stops after handing over the shutdown: wait without its channel.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
            while let Ok(command) = self.commands.try_recv() {
                self.accept(command);
            }
            self.answer_waiters(Instant::now());
            if self.shutdown_is_over(Instant::now()) {
                return;
            }
            if self.may_send_now(Instant::now()) {
                self.step();
            }
        }
    }

    /// After a panic: forget the in-flight batch (it is still in the store) and read it again.
    pub(crate) fn recover_after_panic(&mut self) {
        if let Some(in_flight) = self.in_flight.take()
            && in_flight.ack_failures > 0
        {
            let _accounting = self.counters.accounting();
            self.counters.delivered_not_recorded.fetch_sub(
                in_flight.accepted + in_flight.dead_lettered,
                Ordering::Relaxed,
            );
        }
        let mut store = lock(&self.store);
        if let Err(error) = store.rewind() {
            self.counters
                .set_last_error(describe("spool rewind failed", &error));
        }
        let counts = store.counts();
        let _accounting = self.counters.accounting();
        publish(&self.counters, counts);
    }

    fn accept(&mut self, command: DeliveryCommand) {
        self.store_empty_until = None;
        match command {
            // Taking any command ends the wait after an empty read (above): that is all a wake does.
            DeliveryCommand::Wake => {}
            DeliveryCommand::Idle { target } => self.drain_until = self.drain_until.max(target),
            DeliveryCommand::Flush {
                target,
                deadline,
                reply,
            } => {
                self.waiters.push(FlushWaiter {
                    target,
                    deadline,
                    started: Instant::now(),
                    reply,
                });
            }
            DeliveryCommand::Shutdown {
                target,
                deadline,
                max_events,
                reply,
            } => {
                self.shutdown = Some(Shutdown {
                    target,
                    deadline,
                    budget: max_events,
                    reply,
                });
            }
        }
    }

    /// Settled store records: by this sender, and dropped by the store itself.
    fn settled(&self) -> u64 {
        let counters = &self.counters;
        self.settled_here
            + counters.dropped_spool_size.load(Ordering::Relaxed)
            + counters.dropped_spool_age.load(Ordering::Relaxed)
            + counters.dropped_corrupt.load(Ordering::Relaxed)
            + counters.settled_elsewhere.load(Ordering::Relaxed)
    }

    /// Records in the store not yet settled (including the in-flight batch).
    fn unsettled(&self) -> u64 {
        let end = self.counters.recovered.load(Ordering::Relaxed)
            + self.counters.spooled.load(Ordering::Relaxed);
        end.saturating_sub(self.settled())
    }

    /// Whether everything up to `target` is settled.
    fn covers(&self, target: u64) -> bool {
        self.in_flight.is_none()
            && (self.settled() >= target || self.counters.in_store.load(Ordering::Relaxed) == 0)
    }

    /// Whether a request is wanted now (ignoring backoff and the breaker).
    fn wants_to_send(&mut self, now: Instant) -> bool {
        if self.in_flight.is_some() {
            return true;
        }
        let unsettled = self.unsettled();
        if unsettled == 0 {
            self.oldest_unsent_since = None;
            return false;
        }
        if self.store_empty_until.is_some_and(|until| now < until) {
            return false;
        }
        let oldest_age = now.duration_since(*self.oldest_unsent_since.get_or_insert(now));
        if let Some(shutdown) = &self.shutdown {
            return shutdown.budget != Some(0) && !self.covers(shutdown.target);
        }
        if self
            .waiters
            .iter()
            .any(|waiter| !self.covers(waiter.target))
            || !self.covers(self.drain_until)
        {
            return true;
        }
        match self.mode {
            FlushMode::Background => {
                unsettled >= self.batch_size as u64 || oldest_age >= self.batch_delay
            }
            FlushMode::IdleOnly {
                high_water,
                max_delay,
            } => unsettled >= high_water.get() as u64 || oldest_age >= max_delay,
        }
    }

    /// When the next request may go: `None` means now.
    fn blocked_until(&mut self, now: Instant) -> Option<Instant> {
        let breaker_state = self.breaker.state(now);
        self.counters.set_breaker(breaker_state);
        let breaker = if breaker_state == BreakerState::Open {
            self.breaker.open_until()
        } else {
            None
        };
        let blocked = [breaker, self.not_before].into_iter().flatten().max()?;
        (blocked > now).then_some(blocked)
    }

    fn may_send_now(&mut self, now: Instant) -> bool {
        self.wants_to_send(now) && self.blocked_until(now).is_none()
    }

    /// How long to wait for a command before looking again: not at all when a flush or the shutdown can be answered
    /// (a step that settled their last records must not leave them waiting a poll interval), and never past the
    /// deadline of one.
    fn wait_time(&mut self, now: Instant) -> Duration {
        if self.answer_is_due() {
            return Duration::ZERO;
        }
        let wait = if !self.wants_to_send(now) {
            self.poll_interval
        } else {
            match self.blocked_until(now) {
                None => Duration::ZERO,
                Some(until) => until.duration_since(now).min(self.poll_interval),
            }
        };
        let nearest_deadline = self
            .waiters
            .iter()
            .map(|waiter| waiter.deadline)
            .chain(self.shutdown.as_ref().map(|shutdown| shutdown.deadline))
            .min();
        nearest_deadline.map_or(wait, |deadline| {
            wait.min(deadline.saturating_duration_since(now))
        })
    }

    /// Whether a flush waiter or the shutdown has what it waits for (see `answer_waiters` and `shutdown_is_over`).
    fn answer_is_due(&self) -> bool {
        self.waiters.iter().any(|waiter| self.covers(waiter.target))
            || self.shutdown.as_ref().is_some_and(|shutdown| {
                self.covers(shutdown.target)
                    || (shutdown.budget == Some(0) && self.in_flight.is_none())
            })
    }

    /// Answers the flush waiters that are done or out of time.
    fn answer_waiters(&mut self, now: Instant) {
        let blocked = self.blocked_until(now);
        let mut waiters = std::mem::take(&mut self.waiters);
        waiters.retain(|waiter| {
            let outcome = if self.covers(waiter.target) {
                FlushOutcome::Acknowledged
            } else if now >= waiter.deadline
                || blocked.is_some_and(|until| until >= waiter.deadline)
            {
                FlushOutcome::TimedOut
            } else {
                return true;
            };
            self.counters.record_flush(
                now.duration_since(waiter.started),
                outcome == FlushOutcome::Acknowledged,
            );
            let _ = waiter.reply.send(outcome);
            false
        });
        self.waiters = waiters;
    }

    /// Whether the shutdown drain is over (and answered).
    fn shutdown_is_over(&mut self, now: Instant) -> bool {
        let Some((target, deadline, budget)) = self
            .shutdown
            .as_ref()
            .map(|shutdown| (shutdown.target, shutdown.deadline, shutdown.budget))
        else {
            return false;
        };
        let outcome = if self.covers(target) {
            ShutdownOutcome::Drained
        } else if budget == Some(0) && self.in_flight.is_none() {
            ShutdownOutcome::LimitReached
        } else if now >= deadline
            || self
                .blocked_until(now)
                .is_some_and(|until| until >= deadline)
            || (self.in_flight.is_none() && self.store_empty_until.is_some_and(|until| now < until))
        {
            ShutdownOutcome::DeadlineReached
        } else {
            return false;
        };
        for waiter in self.waiters.drain(..) {
            let _ = waiter.reply.send(FlushOutcome::TimedOut);
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.reply.send(outcome);
        }
        true
    }

    /// Posts one part of the in-flight batch (reading a new batch first if none is in flight).
    fn step(&mut self) {
        let now = Instant::now();
        if self.in_flight.is_none() && !self.read_batch(now) {
            return;
        }
        if self
            .in_flight
            .as_ref()
            .is_some_and(|in_flight| in_flight.parts.is_empty())
        {
            // Everything was sent; only the acknowledgement is left to record (it failed before).
            self.settle_if_done();
            return;
        }
        let probe = self.breaker.max_events(now, self.batch_size);
        let Some(in_flight) = self.in_flight.as_mut() else {
            return;
        };
        let Some(front) = in_flight.parts.front_mut() else {
            return;
        };
        if front.range.len() > probe {
            // Half-open: only a small probe goes through.
            let rest = Part {
                range: front.range.start + probe..front.range.end,
                failed_before: front.failed_before,
            };
            front.range.end = front.range.start + probe;
            in_flight.parts.insert(1, rest);
        }
        let Some(part) = in_flight.parts.front() else {
            return;
        };
        let timeout = match &self.shutdown {
            Some(shutdown) => self
                .request_timeout
                .min(shutdown.deadline.saturating_duration_since(now)),
            None => self.request_timeout,
        };
        if timeout.is_zero() {
            return;
        }
        let records = &in_flight.records[part.range.clone()];
        let count = records.len() as u64;
        let attempt = self.sender.send(records, timeout);
        // A batch the sink could not encode never reached the wire.
        if !matches!(attempt, Attempt::Unencodable { .. }) {
            add(&self.counters.requests, 1);
            add(&self.counters.sent, count);
            if part.failed_before {
                add(&self.counters.retried, count);
            }
        }
        self.handle(attempt);
    }

    /// Reads the next batch into flight. False if there is nothing to read.
    fn read_batch(&mut self, now: Instant) -> bool {
        let mut max_records = self.breaker.max_events(now, self.batch_size);
        if let Some(budget) = self.shutdown.as_ref().and_then(|shutdown| shutdown.budget) {
            max_records = max_records.min(budget);
        }
        if max_records == 0 {
            return false;
        }
        let mut store = lock(&self.store);
        let batch = store.next_batch(max_records, self.max_batch_bytes);
        let counts = store.counts();
        let accounting = self.counters.accounting();
        publish(&self.counters, counts);
        drop(accounting);
        drop(store);
        match batch {
            Ok(Some(batch)) if !batch.records.is_empty() => {
                let length = batch.records.len();
                if let Some(budget) = self
                    .shutdown
                    .as_mut()
                    .and_then(|shutdown| shutdown.budget.as_mut())
                {
                    *budget = budget.saturating_sub(length);
                }
                self.in_flight = Some(InFlight {
                    records: batch.records,
                    position: batch.position,
                    parts: VecDeque::from([Part {
                        range: 0..length,
                        failed_before: false,
                    }]),
                    accepted: 0,
                    dead_lettered: 0,
                    ack_failures: 0,
                    partially_rejected: 0,
                });
                true
            }
            Ok(_) => {
                self.store_empty_until = Some(now + self.poll_interval);
                false
            }
            Err(error) => {
                self.counters
                    .set_last_error(describe("spool read failed", &error));
                self.store_empty_until = Some(now + self.poll_interval);
                false
            }
        }
    }

    fn handle(&mut self, attempt: Attempt) {
        let now = Instant::now();
        let Some(in_flight) = self.in_flight.as_mut() else {
            return;
        };
        let Some(part) = in_flight.parts.pop_front() else {
            return;
        };
        let verdict = match attempt {
            Attempt::Answered(verdict) => verdict,
            Attempt::Unencodable { reason } => {
                self.counters.set_last_error(reason.clone());
                self.reject(part, None, reason);
                self.settle_if_done();
                return;
            }
        };
        match verdict {
            Verdict::Accepted => {
                self.breaker.on_success();
                self.backoff.reset();
                self.not_before = None;
                in_flight.accepted += part.range.len() as u64;
            }
            Verdict::PartiallyAccepted { rejected, message } => {
                self.breaker.on_success();
                self.backoff.reset();
                self.not_before = None;
                let length = part.range.len() as u64;
                let rejected = rejected.min(length);
                in_flight.accepted += length - rejected;
                in_flight.dead_lettered += rejected;
                in_flight.partially_rejected += rejected;
                let reason = format!(
                    "partial success: the server rejected {rejected} of {length} events: {message}"
                );
                tracing::debug!(%reason, "flush-core dead-lettered part of a batch");
                let records = &in_flight.records[part.range.clone()];
                if let Err(error) = self.dead_letters.write_partial(records, rejected, &reason) {
                    self.counters
                        .set_last_error(format!("dead-letter write failed: {error}"));
                }
                self.counters.set_last_error(reason);
            }
            Verdict::Retry {
                reason,
                retry_after,
            } => {
                self.counters.set_last_error(reason);
                self.breaker.on_failure(now);
                self.not_before = Some(now + self.backoff.next_delay(retry_after));
                in_flight.parts.push_front(Part {
                    failed_before: true,
                    ..part
                });
            }
            Verdict::Reject { status, reason } => {
                self.reject(part, Some(status), reason);
            }
            Verdict::TooLarge { reason } => {
                self.reject(part, Some(413), reason);
            }
            Verdict::Misconfigured { status: _, reason } => {
                self.counters.set_last_error(reason);
                self.breaker.trip(now);
                in_flight.parts.push_front(Part {
                    failed_before: true,
                    ..part
                });
            }
        }
        self.counters.set_breaker(self.breaker.state(now));
        self.settle_if_done();
    }

    /// The server refused `part` for its content (`status`), or the sink could not encode it (no status): halve it,
    /// or dead-letter a single event. The server answered (or was not asked), so the breaker and backoff see a
    /// success.
    fn reject(&mut self, part: Part, status: Option<u16>, reason: String) {
        self.breaker.on_success();
        self.backoff.reset();
        self.not_before = None;
        let Some(in_flight) = self.in_flight.as_mut() else {
            return;
        };
        if part.range.len() > 1 {
            let middle = part.range.start + part.range.len() / 2;
            in_flight.parts.push_front(Part {
                range: middle..part.range.end,
                failed_before: true,
            });
            in_flight.parts.push_front(Part {
                range: part.range.start..middle,
                failed_before: true,
            });
            return;
        }
        let record = &in_flight.records[part.range.start];
        tracing::debug!(?status, %reason, uuid = ?crate::event::uuid_of(record), "flush-core dead-lettered an event");
        if let Err(error) = self.dead_letters.write(record, status, &reason) {
            self.counters
                .set_last_error(format!("dead-letter write failed: {error}"));
        }
        in_flight.dead_lettered += 1;
    }

    /// Acknowledges the in-flight batch in the store once every part is settled. Its events are counted as
    /// acknowledged or dead-lettered only if the acknowledgement is recorded; otherwise the batch stays in flight
    /// and the acknowledgement is tried again after a backoff.
    fn settle_if_done(&mut self) {
        let Some(in_flight) = self
            .in_flight
            .as_mut()
            .filter(|in_flight| in_flight.parts.is_empty())
        else {
            return;
        };
        let delivered = in_flight.accepted + in_flight.dead_lettered;
        let mut store = lock(&self.store);
        let acked = match store.begin_ack(&in_flight.position) {
            Ok(Some(pending)) => {
                // The fsync runs with the store unlocked: the spooler's appends and checkpoints go on meanwhile.
                drop(store);
                let result = pending.run();
                store = lock(&self.store);
                store.finish_ack(&in_flight.position, pending, result)
            }
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        let counts = store.counts();
        // Invariant: the counters move under the accounting lock together with `in_store`, so snapshots balance.
        let accounting = self.counters.accounting();
        match &acked {
            Ok(()) => {
                add(&self.counters.acknowledged, in_flight.accepted);
                add(&self.counters.dead_lettered, in_flight.dead_lettered);
                add(
                    &self.counters.partially_rejected,
                    in_flight.partially_rejected,
                );
                if in_flight.ack_failures > 0 {
                    self.counters
                        .delivered_not_recorded
                        .fetch_sub(delivered, Ordering::Relaxed);
                }
            }
            Err(_) => {
                add(&self.counters.ack_failed_writes, 1);
                if in_flight.ack_failures == 0 {
                    add(&self.counters.delivered_not_recorded, delivered);
                }
            }
        }
        publish(&self.counters, counts);
        drop(accounting);
        drop(store);
        match acked {
            Ok(()) => {
                if in_flight.ack_failures > 0 {
                    self.counters.set_ack_error(None);
                    self.backoff.reset();
                    self.not_before = None;
                }
                self.settled_here += in_flight.records.len() as u64;
                self.in_flight = None;
                self.oldest_unsent_since = None;
            }
            Err(error) => {
                // The events were delivered but that is not recorded: they stay pending (a later run resends them
                // and the server dedupes them), and the acknowledgement is tried again after a backoff.
                in_flight.ack_failures += 1;
                self.counters
                    .set_ack_error(Some(describe("spool ack failed", &error)));
                self.not_before =
                    Some(Instant::now() + self.backoff.next_delay(None).max(self.poll_interval));
            }
        }
    }
}
