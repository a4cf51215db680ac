//! The floor of `record()`: a bare `try_send` of the event into a bounded channel, with a consumer thread that
//! drains it.
//!
//! Two channels: `std::sync::mpsc::sync_channel` and `crossbeam-channel`'s `bounded`, the one flush-core's queue
//! is built on. The consumer behaves like flush-core's worker: it never blocks the producer and is never woken per
//! event; it drains whatever is queued, then waits on a wake-up channel for at most a poll interval.
//! [`ChannelFloor::wait_drained`] wakes it and waits until every accepted event has been consumed: the benchmarks
//! call it between timed chunks, outside the timing, so every timed `try_send` finds a queue with room, as
//! `record()` does in an application that is not flooding it.
//!
//! Optionally ([`ChannelFloor::with_wake_at`], crossbeam only) the producer also wakes the consumer when the queue
//! length reaches a threshold, as flush-core's queue does at a batch's worth of events: the difference between that
//! floor and the bare one is the price of the wake-up design, measured apart from everything else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Which channel implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// `std::sync::mpsc::sync_channel`.
    StdSyncChannel,
    /// `crossbeam_channel::bounded`.
    Crossbeam,
}

impl ChannelKind {
    /// A short name for benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Self::StdSyncChannel => "std_sync_channel",
            Self::Crossbeam => "crossbeam_channel",
        }
    }
}

enum Sender<T> {
    Std(mpsc::SyncSender<T>),
    Crossbeam(crossbeam_channel::Sender<T>),
}

/// A bounded channel with a draining consumer thread.
pub struct ChannelFloor<T: Send + 'static> {
    sender: Option<Sender<T>>,
    wake: crossbeam_channel::Sender<()>,
    wake_at: Option<usize>,
    accepted: u64,
    consumed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    consumer: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> std::fmt::Debug for ChannelFloor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelFloor")
            .field("accepted", &self.accepted)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> ChannelFloor<T> {
    /// A channel of `capacity` items whose consumer drains, then waits for `poll_interval` (or until woken).
    pub fn start(kind: ChannelKind, capacity: usize, poll_interval: Duration) -> Self {
        let consumed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, woken) = crossbeam_channel::bounded::<()>(1);
        let waiter = Waiter {
            woken,
            poll_interval,
        };
        let (sender, consumer) = match kind {
            ChannelKind::StdSyncChannel => {
                let (sender, receiver) = mpsc::sync_channel::<T>(capacity);
                let next = move || match receiver.try_recv() {
                    Ok(item) => Some(Some(item)),
                    Err(mpsc::TryRecvError::Empty) => Some(None),
                    Err(mpsc::TryRecvError::Disconnected) => None,
                };
                (
                    Sender::Std(sender),
                    consume(consumed.clone(), stop.clone(), waiter, next),
                )
            }
            ChannelKind::Crossbeam => {
                let (sender, receiver) = crossbeam_channel::bounded::<T>(capacity);
                let next = move || match receiver.try_recv() {
                    Ok(item) => Some(Some(item)),
                    Err(crossbeam_channel::TryRecvError::Empty) => Some(None),
                    Err(crossbeam_channel::TryRecvError::Disconnected) => None,
                };
                (
                    Sender::Crossbeam(sender),
                    consume(consumed.clone(), stop.clone(), waiter, next),
                )
            }
        };
        Self {
            sender: Some(sender),
            wake,
            wake_at: None,
            accepted: 0,
            consumed,
            stop,
            consumer: Some(consumer),
        }
    }

    /// Makes the producer wake the consumer whenever a `try_send` leaves exactly `wake_at` items queued (crossbeam
    /// only: `std`'s channel cannot tell its length).
    #[must_use]
    pub fn with_wake_at(mut self, wake_at: usize) -> Self {
        self.wake_at = Some(wake_at);
        self
    }

    /// Tries to hand `item` to the consumer without blocking; `false` if the channel is full.
    #[inline]
    pub fn try_send(&mut self, item: T) -> bool {
        let sent = match &self.sender {
            Some(Sender::Std(sender)) => sender.try_send(item).is_ok(),
            Some(Sender::Crossbeam(sender)) => {
                let sent = sender.try_send(item).is_ok();
                if sent && self.wake_at.is_some_and(|wake_at| sender.len() == wake_at) {
                    let _ = self.wake.try_send(());
                }
                sent
            }
            None => false,
        };
        self.accepted += u64::from(sent);
        sent
    }

    /// Wakes the consumer and waits until it has consumed every accepted item.
    pub fn wait_drained(&self) {
        let _ = self.wake.try_send(());
        while self.consumed.load(Ordering::Acquire) < self.accepted {
            thread::yield_now();
        }
    }
}

impl<T: Send + 'static> Drop for ChannelFloor<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.sender = None;
        let _ = self.wake.try_send(());
        if let Some(consumer) = self.consumer.take() {
            let _ = consumer.join();
        }
    }
}

/// How the consumer waits when the channel is empty: on the wake-up channel, at most a poll interval.
struct Waiter {
    woken: crossbeam_channel::Receiver<()>,
    poll_interval: Duration,
}

/// The consumer loop: `next` gives `Some(Some(item))`, `Some(None)` when empty, `None` when disconnected.
fn consume<T: Send + 'static>(
    consumed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    waiter: Waiter,
    mut next: impl FnMut() -> Option<Option<T>> + Send + 'static,
) -> JoinHandle<()> {
    thread::spawn(move || {
        loop {
            match next() {
                Some(Some(item)) => {
                    drop(item);
                    consumed.fetch_add(1, Ordering::Release);
                }
                Some(None) if stop.load(Ordering::Acquire) => return,
                Some(None) => {
                    let _ = waiter.woken.recv_timeout(waiter.poll_interval);
                }
                None => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_channels_deliver_every_accepted_item_and_refuse_when_full() {
        for kind in [ChannelKind::StdSyncChannel, ChannelKind::Crossbeam] {
            let mut floor = ChannelFloor::start(kind, 4, Duration::from_secs(60));
            // The consumer waits a minute once it finds the channel empty, so a burst fills it.
            thread::sleep(Duration::from_millis(20));
            let accepted = (0..10)
                .filter(|index| floor.try_send(vec![*index as u8; 300]))
                .count();
            assert!((4..10).contains(&accepted), "{kind:?}: {accepted}");
            floor.wait_drained();
            assert!(floor.try_send(vec![0; 300]), "{kind:?}");
            floor.wait_drained();
        }
    }

    #[test]
    fn a_wake_threshold_wakes_the_consumer_without_waiting_for_the_poll_interval() {
        let mut floor = ChannelFloor::start(ChannelKind::Crossbeam, 64, Duration::from_secs(60))
            .with_wake_at(8);
        thread::sleep(Duration::from_millis(20));
        for index in 0..8_u8 {
            assert!(floor.try_send(vec![index; 300]));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while floor.consumed.load(Ordering::Acquire) < 8 {
            assert!(
                std::time::Instant::now() < deadline,
                "the consumer was not woken"
            );
            thread::yield_now();
        }
    }
}
