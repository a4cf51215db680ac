//! The spooler thread: drains the in-memory queue into the store, serializing on the way, and answers the commands
//! that need "everything recorded so far" to be in the store first (checkpoint, idle, flush, shutdown).
//!
//! It wakes every `poll_interval`, when `record()` crosses a queue threshold, or on a command; never per event. After
//! a drain that stored records it wakes the sender (once per drain, never per event).
//! Serialization (JSON, timestamp formatting) happens here, off the application's hot path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::clock::TickConverter;
use crate::delivery::DeliveryCommand;
use crate::error::{CheckpointError, describe};
use crate::outcome::{FlushOutcome, ShutdownOutcome};
use crate::queue::EventQueue;
use crate::shared_store::{SharedStore, lock, publish};
use crate::stats::{Counters, add};

/// Events appended per store call.
const APPEND_CHUNK: usize = 512;

/// What the application asks of the spooler.
#[derive(Debug)]
pub(crate) enum SpoolerCommand {
    /// Store and sync everything queued, then answer.
    Checkpoint(Sender<Result<(), CheckpointError>>),
    /// The application is idle: store everything queued, then let the sender send it.
    Idle,
    /// Store everything queued, then have the sender deliver it by `deadline`.
    Flush {
        deadline: Instant,
        reply: Sender<FlushOutcome>,
    },
    /// Store and sync everything queued (then say so on `stored`), hand over to the sender for the final drain, and
    /// stop.
    Shutdown {
        deadline: Instant,
        max_events: Option<usize>,
        stored: Sender<()>,
        reply: Sender<ShutdownOutcome>,
    },
}

/// The spooler's state.
pub(crate) struct Spooler {
    pub(crate) queue: Arc<EventQueue>,
    pub(crate) woken: Receiver<()>,
    pub(crate) commands: Receiver<SpoolerCommand>,
    pub(crate) delivery: Sender<DeliveryCommand>,
    pub(crate) store: SharedStore,
    pub(crate) counters: Arc<Counters>,
    pub(crate) distinct_id: String,
    pub(crate) poll_interval: Duration,
    pub(crate) sync_on_checkpoint: bool,
    /// The store's largest record (see `Store::max_record_bytes`).
    pub(crate) max_record_bytes: usize,
    /// Events popped from the queue and not yet appended or dropped (for the accounting after a panic).
    pub(crate) held: u64,
    /// Set by `idle()` when it sends [`SpoolerCommand::Idle`], cleared here when it is taken: idle signals coalesce.
    pub(crate) idle_requested: Arc<AtomicBool>,
    /// Converts the recording clock's readings in queued events to wall-clock time.
    pub(crate) clock: TickConverter,
}

impl Spooler {
    /// Runs until shutdown (or until every handle to the reporter is gone).
    pub(crate) fn run(&mut self) {
        loop {
            let command = crossbeam_channel::select! {
                recv(self.commands) -> command => match command {
                    Ok(command) => Some(command),
                    // Every reporter handle is gone without a shutdown: store what is queued and stop.
                    Err(_) => Some(SpoolerCommand::Shutdown {
                        deadline: Instant::now(),
                        max_events: Some(0),
                        stored: crossbeam_channel::bounded(1).0,
                        reply: crossbeam_channel::bounded(1).0,
                    }),
                },
                recv(self.woken) -> _ => None,
                default(self.poll_interval) => None,
            };
            if matches!(command, Some(SpoolerCommand::Idle)) {
                // Cleared before the drain: an `idle()` during the drain sends a new command.
                self.idle_requested.store(false, Ordering::SeqCst);
            }
            let store_result = self.drain_queue();
            match command {
                None => {}
                Some(SpoolerCommand::Checkpoint(reply)) => {
                    let result = store_result.and_then(|()| self.sync_if_asked());
                    let _ = reply.send(result);
                }
                Some(SpoolerCommand::Idle) => {
                    let _ = self.delivery.send(DeliveryCommand::Idle {
                        target: self.end_of_store(),
                    });
                }
                Some(SpoolerCommand::Flush { deadline, reply }) => {
                    let target = self.end_of_store();
                    let _ = self.delivery.send(DeliveryCommand::Flush {
                        target,
                        deadline,
                        reply,
                    });
                }
                Some(SpoolerCommand::Shutdown {
                    deadline,
                    max_events,
                    stored,
                    reply,
                }) => {
                    let _ = self.sync();
                    // Invariant: `shutdown()` is told only once nothing recorded before it is left in memory.
                    let _ = stored.send(());
                    let target = self.end_of_store();
                    let _ = self.delivery.send(DeliveryCommand::Shutdown {
                        target,
                        deadline,
                        max_events,
                        reply,
                    });
                    return;
                }
            }
            let mut store = lock(&self.store);
            if let Err(error) = store.sync_if_due() {
                self.counters
                    .set_last_error(describe("spool sync failed", &error));
            }
        }
    }

    /// The sequence number just past the last record in the store: everything recorded so far once the queue is
    /// drained. The sender compares it with what it has settled.
    fn end_of_store(&self) -> u64 {
        self.counters.recovered.load(Ordering::Relaxed)
            + self.counters.spooled.load(Ordering::Relaxed)
    }

    fn sync_if_asked(&mut self) -> Result<(), CheckpointError> {
        if self.sync_on_checkpoint {
            self.sync()
        } else {
            Ok(())
        }
    }

    fn sync(&mut self) -> Result<(), CheckpointError> {
        lock(&self.store).sync().map_err(|error| {
            self.counters
                .set_last_error(describe("spool sync failed", &error));
            CheckpointError::Store(error.0)
        })
    }

    /// Moves everything queued into the store. An append failure drops that chunk (counted) and is reported.
    fn drain_queue(&mut self) -> Result<(), CheckpointError> {
        let mut outcome = Ok(());
        let mut stored = false;
        let mut queued = Vec::with_capacity(APPEND_CHUNK.min(self.queue.len()));
        loop {
            let taken = self.queue.pop_into(&mut queued, APPEND_CHUNK) as u64;
            if taken == 0 {
                // One wake per drain, and none while a command is waiting anyway: the sender reads the new records now
                // instead of at its next poll.
                if stored && self.delivery.is_empty() {
                    let _ = self.delivery.send(DeliveryCommand::Wake);
                }
                return outcome;
            }
            self.held += taken;
            add(&self.counters.in_spooler, taken);
            // An anchor taken after the chunk was recorded: its readings are converted back from it. None is taken on
            // a tick that finds the queue empty.
            self.clock.refresh();
            let mut chunk = Vec::with_capacity(queued.len());
            for event in queued.drain(..) {
                let event = event.stamped(&self.clock);
                let mut buffer = Vec::with_capacity(event.estimated_bytes + 64);
                let dropped_for = match event.serialize_into(
                    event.key(),
                    &self.distinct_id,
                    &mut buffer,
                ) {
                    Ok(()) if buffer.len() <= self.max_record_bytes => {
                        chunk.push(buffer);
                        continue;
                    }
                    Ok(()) => &self.counters.dropped_too_large,
                    Err(error) => {
                        tracing::debug!(%error, "flush-core dropped an event it cannot serialize");
                        &self.counters.dropped_unserializable
                    }
                };
                let _accounting = self.counters.accounting();
                self.held -= 1;
                self.counters.in_spooler.fetch_sub(1, Ordering::Relaxed);
                add(dropped_for, 1);
            }
            if chunk.is_empty() {
                continue;
            }
            let length = chunk.len() as u64;
            let mut store = lock(&self.store);
            let appended = store.append(chunk);
            let counts = store.counts();
            let accounting = self.counters.accounting();
            match appended {
                Ok(appended) => {
                    stored |= appended.stored > 0;
                    add(&self.counters.spooled, appended.stored as u64);
                    add(&self.counters.dropped_store_full, appended.refused as u64);
                }
                Err(error) => {
                    self.counters
                        .set_last_error(describe("spool append failed", &error));
                    add(&self.counters.dropped_store_error, length);
                    outcome = Err(CheckpointError::Store(error.0));
                }
            }
            publish(&self.counters, counts);
            self.held -= length;
            self.counters
                .in_spooler
                .fetch_sub(length, Ordering::Relaxed);
            drop(accounting);
            drop(store);
        }
    }

    /// After a panic: events popped but neither stored nor dropped are lost; count them.
    pub(crate) fn recover_after_panic(&mut self) {
        let lost = self.held;
        if lost > 0 {
            let _accounting = self.counters.accounting();
            add(&self.counters.dropped_worker_panic, lost);
            self.counters.in_spooler.fetch_sub(lost, Ordering::Relaxed);
            self.held = 0;
        }
    }
}
