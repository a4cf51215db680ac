//! [`Reporter`]: what applications hold. It records events without blocking and steers two worker threads
//! (see the type's docs for the thread model and what blocks).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::clock::{RecordingClock, TickConverter};
use crate::config::{Config, Storage};
use crate::delivery::Delivery;
use crate::error::{CheckpointError, StartError};
use crate::event::{Event, QueuedEvent};
use crate::memory_store::MemoryStore;
use crate::outcome::{FlushOutcome, ShutdownOutcome};
use crate::queue::EventQueue;
use crate::shared_store::{SharedStore, lock, publish};
use crate::spool::{SpoolError, SyncPolicy};
use crate::spooler::{Spooler, SpoolerCommand};
use crate::stats::{Counters, Stats, add};
use crate::store::Store;

/// A worker thread that panics is restarted at most this many times; then it stops and events are counted as
/// dropped instead.
pub const MAX_RESTARTS: u32 = 3;

/// Waits longer than this are treated as this long (so `Duration::MAX` cannot overflow an `Instant`).
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The most time the workers' own deadline is set ahead of the caller's, so that they finish and report before the
/// caller stops waiting (they get a tenth of the budget as margin, up to this much).
const REPLY_MARGIN_MAX: Duration = Duration::from_millis(50);

/// How long past its deadline `shutdown` may wait for the queue to reach the spool (local work that normally takes
/// well under a millisecond): returning before would lose those events when the process exits.
const STORE_GRACE: Duration = Duration::from_secs(1);

/// The deadline the workers aim at for a call that must return by `deadline` at the latest.
fn worker_deadline(deadline: Instant, budget: Duration) -> Instant {
    deadline - (budget / 10).min(REPLY_MARGIN_MAX)
}

/// A session started with [`Reporter::session_started`]; end it with [`Reporter::session_ended`].
#[derive(Debug)]
#[must_use = "end the session with Reporter::session_ended"]
pub struct Session {
    id: String,
    started: Instant,
}

impl Session {
    /// The session id sent with both events.
    pub fn id(&self) -> &str {
        &self.id
    }
}

struct Inner {
    queue: Arc<EventQueue>,
    /// What `record()` stamps events with; the spooler converts its readings to wall-clock time.
    clock: RecordingClock,
    counters: Arc<Counters>,
    spooler: Sender<SpoolerCommand>,
    closed: AtomicBool,
    idle_requested: Arc<AtomicBool>,
    distinct_id: String,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone without a shutdown: the spooler stores what is queued and both workers stop,
        // without waiting for the network. Dropping `spooler` tells it.
        self.closed.store(true, Ordering::Relaxed);
    }
}

/// The telemetry reporter. Cheap to clone (all clones share one pipeline); `Send` and `Sync`.
///
/// See the [crate docs](crate) for examples of the three kinds of program.
///
/// # Threads
/// [`Reporter::start`] starts two threads:
/// - the **spooler** (`flush-core-spooler`) drains the in-memory queue into the store (the spool, or the bounded
///   memory store in memory-only mode), serializing there, calls the spool's group commit on its tick, and answers
///   checkpoints;
/// - the **sender** (`flush-core-sender`) reads batches from the store and posts them (blocking `ureq`), with
///   retries, the circuit breaker and poison isolation, and acknowledges them in the store after each 2xx.
///
/// A slow or dead server only ever holds up the sender; the queue keeps draining into the store. Neither thread is
/// woken per event: they tick every `poll_interval` (20 ms), `record()` wakes the spooler only when the queue
/// crosses a batch or half its capacity, and the spooler wakes the sender once per drain that stored records. A
/// panic in either is caught: the thread restarts (up to [`MAX_RESTARTS`] times), then stops, and `record()` goes on
/// counting what it drops. (The panic message itself goes through the
/// application's panic hook, as every Rust panic does.)
///
/// # What blocks
/// | call | blocks? | safe on an async runtime thread? |
/// |---|---|---|
/// | [`record`](Reporter::record), [`idle`](Reporter::idle), [`stats`](Reporter::stats), [`session_started`](Reporter::session_started), [`session_ended`](Reporter::session_ended), [`distinct_id`](Reporter::distinct_id), `clone`, `drop` | never | yes |
/// | [`flush_async`](Reporter::flush_async) | no (waits on a helper thread) | yes |
/// | [`start`](Reporter::start) | opens the spool (disk I/O, a directory scan) | briefly; or use `spawn_blocking` |
/// | [`checkpoint`](Reporter::checkpoint) | until the queue is written and synced | use `spawn_blocking` |
/// | [`flush`](Reporter::flush) | up to its timeout | use `flush_async` |
/// | [`shutdown`](Reporter::shutdown), [`shutdown_bounded`](Reporter::shutdown_bounded) | up to the deadline (storing what is queued may take up to 1 s more on a badly overloaded machine) | use `spawn_blocking` |
///
/// Dropping the last clone without `shutdown` stores what is queued in the background and stops both threads
/// without waiting for the network; a process that exits right away may lose the queue (not the spool): call
/// `shutdown` (or at least `checkpoint`) before exiting. In memory-only mode nothing unsent survives the process in
/// any case.
#[derive(Clone)]
pub struct Reporter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Reporter")
            .field("distinct_id", &self.inner.distinct_id)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// Opens the store (the spool, or memory), resolves the `distinct_id` and starts the two worker threads.
    ///
    /// # Errors
    /// [`StartError`] if the spool cannot be opened, the installation id cannot be read or created, or a thread
    /// cannot be spawned.
    pub fn start(config: Config) -> Result<Self, StartError> {
        let (store, distinct_id, sync_on_checkpoint): (Box<dyn Store>, String, bool) =
            match &config.storage {
                Storage::Memory(limits) => {
                    let distinct_id = config.distinct_id.clone().unwrap_or_default();
                    (Box::new(MemoryStore::new(*limits)), distinct_id, false)
                }
                Storage::Spool(spool) => {
                    let distinct_id = match &config.distinct_id {
                        Some(distinct_id) => distinct_id.clone(),
                        None => crate::installation_id::load_or_create(&spool.dir).map_err(
                            |source| StartError::InstallationId {
                                dir: spool.dir.clone(),
                                source: SpoolError::io(&spool.dir, source),
                            },
                        )?,
                    };
                    let store =
                        crate::disk_store::DiskStore::open(spool.clone()).map_err(|source| {
                            StartError::Spool {
                                dir: spool.dir.clone(),
                                source,
                            }
                        })?;
                    (
                        Box::new(store),
                        distinct_id,
                        spool.sync != SyncPolicy::Never,
                    )
                }
            };
        let counters = Arc::new(Counters::default());
        let max_record_bytes = store.max_record_bytes();
        let store: SharedStore = Arc::new(Mutex::new(store));
        {
            let counts = lock(&store).counts();
            let _accounting = counters.accounting();
            publish(&counters, counts);
        }
        let (queue, woken) =
            EventQueue::new(config.queue, config.drop_policy, config.batch_size.get());
        let queue = Arc::new(queue);
        let clock = RecordingClock::best();
        let (spooler_sender, spooler_commands) = crossbeam_channel::unbounded();
        let idle_requested = Arc::new(AtomicBool::new(false));
        let (delivery_sender, delivery_commands) = crossbeam_channel::unbounded();
        let mut spooler = Spooler {
            queue: Arc::clone(&queue),
            woken,
            commands: spooler_commands,
            delivery: delivery_sender,
            store: Arc::clone(&store),
            counters: Arc::clone(&counters),
            distinct_id: distinct_id.clone(),
            poll_interval: config.poll_interval,
            sync_on_checkpoint,
            max_record_bytes,
            held: 0,
            idle_requested: Arc::clone(&idle_requested),
            clock: TickConverter::new(clock),
        };
        let mut delivery = Delivery::new(
            &config,
            &distinct_id,
            delivery_commands,
            store,
            Arc::clone(&counters),
        );
        let spooler_counters = Arc::clone(&counters);
        let spooler_thread = std::thread::Builder::new()
            .name("flush-core-spooler".into())
            .spawn(move || {
                supervise(
                    &spooler_counters,
                    &mut spooler,
                    Spooler::run,
                    Spooler::recover_after_panic,
                )
            })
            .map_err(StartError::Thread)?;
        let delivery_counters = Arc::clone(&counters);
        let delivery_thread = std::thread::Builder::new()
            .name("flush-core-sender".into())
            .spawn(move || {
                supervise(
                    &delivery_counters,
                    &mut delivery,
                    Delivery::run,
                    Delivery::recover_after_panic,
                )
            })
            .map_err(StartError::Thread)?;
        Ok(Self {
            inner: Arc::new(Inner {
                queue,
                clock,
                counters,
                spooler: spooler_sender,
                closed: AtomicBool::new(false),
                idle_requested,
                distinct_id,
                threads: Mutex::new(vec![spooler_thread, delivery_thread]),
            }),
        })
    }

    /// Records an event: stamps it with the current time and queues it (its UUID v7 idempotency key is minted from
    /// that instant on the spooler's thread, before the event is stored). Returns at once: no I/O, no
    /// lock, no wake-up of a worker (except when the queue crosses a threshold), never blocks, never panics. When the
    /// queue is full, the drop policy decides what is dropped, and it is counted in [`Stats::dropped`].
    pub fn record(&self, event: Event) {
        let inner = &*self.inner;
        // Stamped before the first atomic operation: the queue's reservation then follows the count closely, and the
        // two locked instructions share one drain of the store buffer.
        let queued = QueuedEvent::new(event, &inner.clock);
        add(&inner.counters.recorded, 1);
        if inner.closed.load(Ordering::Relaxed) {
            add(&inner.counters.dropped_after_shutdown, 1);
            return;
        }
        inner.queue.push(queued, &inner.counters);
    }

    /// Tells the reporter the application is idle (e.g. just before a prompt): what was recorded so far goes out now,
    /// in the background. Returns at once. In [`FlushMode::IdleOnly`](crate::FlushMode::IdleOnly) this is the signal
    /// that allows sending.
    pub fn idle(&self) {
        // Signals coalesce: one pending idle command covers every `idle()` until the spooler takes it.
        if !self.inner.idle_requested.swap(true, Ordering::SeqCst) {
            let _ = self.inner.spooler.send(SpoolerCommand::Idle);
        }
    }

    /// Blocks until everything recorded so far is in the spool, synced unless the sync policy is
    /// [`SyncPolicy::Never`] — the durability point for a natural boundary. In memory-only mode, until it is in the
    /// memory store.
    ///
    /// # Errors
    /// [`CheckpointError::ShutDown`] after shutdown; [`CheckpointError::Store`] if the spool failed to write or
    /// sync (the events are counted as dropped or still pending; never in memory-only mode). The spool's typed
    /// error is the source, and [`CheckpointError::is_retryable`] says whether a later checkpoint can succeed.
    pub fn checkpoint(&self) -> Result<(), CheckpointError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.inner
            .spooler
            .send(SpoolerCommand::Checkpoint(reply))
            .map_err(|_| CheckpointError::ShutDown)?;
        answer.recv().unwrap_or(Err(CheckpointError::ShutDown))
    }

    /// Blocks until everything recorded so far is acknowledged by the server, or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> FlushOutcome {
        let started = Instant::now();
        let timeout = timeout.min(LONGEST_WAIT);
        let deadline = started + timeout;
        let (reply, answer) = crossbeam_channel::bounded(1);
        let command = SpoolerCommand::Flush {
            deadline: worker_deadline(deadline, timeout),
            reply,
        };
        if self.inner.spooler.send(command).is_err() {
            return FlushOutcome::TimedOut;
        }
        // Invariant: the caller never waits past its timeout, whatever the workers are doing.
        answer
            .recv_deadline(deadline)
            .unwrap_or(FlushOutcome::TimedOut)
    }

    /// [`flush`](Self::flush) for async code: the wait happens on a helper thread, so the runtime is never blocked.
    /// Works with any executor.
    pub fn flush_async(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = FlushOutcome> + Send + 'static {
        let shared = Arc::new(Mutex::new(AsyncSlot {
            outcome: None,
            waker: None,
        }));
        let reporter = self.clone();
        let slot = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("flush-core-flush".into())
            .spawn(move || {
                let outcome = reporter.flush(timeout);
                let mut slot = slot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                slot.outcome = Some(outcome);
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
            });
        if spawned.is_err() {
            let mut slot = shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slot.outcome = Some(FlushOutcome::TimedOut);
        }
        AsyncFlush { shared }
    }

    /// Stops recording, stores what is queued, and sends what it can until `deadline` from now. Returns by then
    /// even against a server that hangs: every request is bounded by the time left, and the call stops waiting for
    /// the sender at the deadline. The one thing it finishes first is writing what is still queued in memory to the
    /// spool (to the memory store, in memory-only mode): local work, bounded by the disk and never by the server,
    /// that normally takes well under a millisecond; on a machine so loaded that it does not finish by the deadline,
    /// `shutdown` waits for it up to a second longer, because returning earlier would lose those events when the
    /// process exits. What is not sent stays in the spool
    /// for the next run; in memory-only mode it is lost when the process exits, and until then it is counted in
    /// [`Stats::pending`](crate::Stats::pending). Later calls return [`ShutdownOutcome::AlreadyShutDown`]; later
    /// `record()` calls are counted as dropped.
    pub fn shutdown(&self, deadline: Duration) -> ShutdownOutcome {
        self.shutdown_inner(deadline, None)
    }

    /// [`shutdown`](Self::shutdown) that sends at most `max_events` events (the design documents' CLI sends 25 per
    /// invocation); the rest waits in the spool for the next run (in memory-only mode, it is lost with the
    /// process).
    pub fn shutdown_bounded(&self, deadline: Duration, max_events: usize) -> ShutdownOutcome {
        self.shutdown_inner(deadline, Some(max_events))
    }

    fn shutdown_inner(&self, within: Duration, max_events: Option<usize>) -> ShutdownOutcome {
        if self.inner.closed.swap(true, Ordering::Relaxed) {
            return ShutdownOutcome::AlreadyShutDown;
        }
        let within = within.min(LONGEST_WAIT);
        let deadline = Instant::now() + within;
        let (reply, answer) = crossbeam_channel::bounded(1);
        let (stored, queue_stored) = crossbeam_channel::bounded(1);
        let command = SpoolerCommand::Shutdown {
            deadline: worker_deadline(deadline, within),
            max_events,
            stored,
            reply,
        };
        // Invariant: a CLI's exit is never delayed past the deadline by the network, whatever the server does; only
        // storing what is queued may take longer, up to `STORE_GRACE`.
        let outcome = if self.inner.spooler.send(command).is_ok() {
            let _ = queue_stored.recv_deadline(deadline + STORE_GRACE);
            self.inner
                .counters
                .record_shutdown_store_overrun(Instant::now().saturating_duration_since(deadline));
            answer
                .recv_deadline(deadline)
                .unwrap_or(ShutdownOutcome::DeadlineReached)
        } else {
            ShutdownOutcome::DeadlineReached
        };
        let mut threads = self
            .inner
            .threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for thread in std::mem::take(&mut *threads) {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        outcome
    }

    /// Records `session_started` with the session id, and returns the session to end later.
    pub fn session_started(&self, session_id: impl Into<String>) -> Session {
        let session = Session {
            id: session_id.into(),
            started: Instant::now(),
        };
        self.record(Event::new("session_started").with("session_id", session.id.clone()));
        session
    }

    /// Records `session_ended` with the session id and its duration in milliseconds (`duration_ms`).
    pub fn session_ended(&self, session: Session) {
        let duration_ms = u64::try_from(session.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.record(
            Event::new("session_ended")
                .with("session_id", session.id)
                .with("duration_ms", duration_ms),
        );
    }

    /// A snapshot of the counters. Never blocks on the workers.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot(self.inner.queue.len())
    }

    /// The `distinct_id` events are sent with (given, or the installation id).
    pub fn distinct_id(&self) -> &str {
        &self.inner.distinct_id
    }
}

/// Runs a worker, restarting it after a panic up to [`MAX_RESTARTS`] times.
fn supervise<W>(counters: &Counters, worker: &mut W, run: fn(&mut W), recover: fn(&mut W)) {
    for attempt in 0..=MAX_RESTARTS {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(worker))) {
            Ok(()) => return,
            Err(_) => {
                counters.set_last_error(format!(
                    "worker panicked (restart {} of {MAX_RESTARTS})",
                    attempt + 1
                ));
                if attempt < MAX_RESTARTS {
                    add(&counters.worker_restarts, 1);
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| recover(worker)))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
}

struct AsyncSlot {
    outcome: Option<FlushOutcome>,
    waker: Option<Waker>,
}

struct AsyncFlush {
    shared: Arc<Mutex<AsyncSlot>>,
}

impl Future for AsyncFlush {
    type Output = FlushOutcome;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<FlushOutcome> {
        let mut slot = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.outcome {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                slot.waker = Some(context.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky {
        panics_left: u32,
        recoveries: u32,
    }

    fn run(worker: &mut Flaky) {
        if worker.panics_left > 0 {
            worker.panics_left -= 1;
            panic!("injected worker panic");
        }
    }

    fn recover(worker: &mut Flaky) {
        worker.recoveries += 1;
    }

    #[test]
    fn the_reporter_and_its_session_can_move_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Reporter>();
        assert_send_sync::<Session>();
    }

    #[test]
    fn a_panicking_worker_is_restarted_and_the_restarts_are_counted() {
        let counters = Counters::default();
        let mut worker = Flaky {
            panics_left: 2,
            recoveries: 0,
        };

        supervise(&counters, &mut worker, run, recover);

        assert_eq!((worker.panics_left, worker.recoveries), (0, 2));
        let stats = counters.snapshot(0);
        assert_eq!(stats.worker_restarts, 2);
        assert!(stats.last_error.unwrap().contains("panicked"));
    }

    #[test]
    fn a_worker_that_keeps_panicking_is_given_up_on() {
        let counters = Counters::default();
        let mut worker = Flaky {
            panics_left: u32::MAX,
            recoveries: 0,
        };

        supervise(&counters, &mut worker, run, recover);

        assert_eq!(worker.recoveries, MAX_RESTARTS);
        assert_eq!(
            counters.snapshot(0).worker_restarts,
            u64::from(MAX_RESTARTS)
        );
    }
}
