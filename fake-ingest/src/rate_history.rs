//! The rate history behind the page's chart (`GET /_fake/history`, [`crate::Server::history`]): events received and
//! errors answered per interval since the server started (or was reset), kept by the store, bounded.
//!
//! Invariant: at most [`MAX_BUCKETS`] buckets are kept, whatever the uptime. Intervals start at one second; when
//! the buckets would outgrow the bound, every two neighbours are merged into one of twice the width, so the history
//! always covers the whole time since start, at a resolution that halves as the uptime doubles.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most buckets kept (and served).
pub const MAX_BUCKETS: usize = 600;

/// What was received and answered in one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateBucket {
    /// The interval's start, in seconds since the server started or was reset.
    pub start_secs: u64,
    /// Events received in it (duplicates included, as `events_received` counts them).
    pub events: u64,
    /// Error answers in it: responses with a status of 400 or more, connection resets and hangs.
    pub errors: u64,
}

/// The rate history: buckets of `bucket_secs` seconds, oldest first, with no gap (an interval without traffic is a
/// bucket of zeros).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateHistory {
    /// The width of every bucket, in seconds (1, then 2, 4, ... as the uptime grows).
    pub bucket_secs: u64,
    /// Seconds since the server started or was reset, when this was taken.
    pub elapsed_secs: f64,
    /// The buckets, oldest first; the last one is the current interval.
    pub buckets: Vec<RateBucket>,
}

/// The buckets as the store keeps them.
#[derive(Debug)]
pub(crate) struct History {
    bucket_secs: u64,
    buckets: VecDeque<RateBucket>,
}

impl History {
    pub(crate) fn new() -> Self {
        Self {
            bucket_secs: 1,
            buckets: VecDeque::new(),
        }
    }

    /// Adds `events` received and `errors` answered at `since_start`.
    pub(crate) fn count(&mut self, since_start: Duration, events: u64, errors: u64) {
        let bucket = self.bucket_at(since_start.as_secs());
        bucket.events += events;
        bucket.errors += errors;
    }

    /// The bucket of second `secs`, after filling any gap with empty buckets and widening as needed.
    fn bucket_at(&mut self, secs: u64) -> &mut RateBucket {
        loop {
            let start = secs - secs % self.bucket_secs;
            let next_start = self
                .buckets
                .back()
                .map_or(0, |last| last.start_secs + self.bucket_secs);
            // A clock reading older than the last bucket (threads racing to the lock) counts in the last bucket.
            if start < next_start {
                break;
            }
            let needed = ((start - next_start) / self.bucket_secs) as usize + 1;
            if self.buckets.len() + needed <= MAX_BUCKETS {
                for index in 0..needed as u64 {
                    self.buckets.push_back(RateBucket {
                        start_secs: next_start + index * self.bucket_secs,
                        ..RateBucket::default()
                    });
                }
                break;
            }
            self.widen();
        }
        let last = self.buckets.len() - 1;
        &mut self.buckets[last]
    }

    /// Merges every two neighbouring buckets into one twice as wide.
    fn widen(&mut self) {
        let width = self.bucket_secs * 2;
        let mut merged: VecDeque<RateBucket> = VecDeque::with_capacity(MAX_BUCKETS);
        for bucket in self.buckets.drain(..) {
            let start = bucket.start_secs - bucket.start_secs % width;
            match merged.back_mut() {
                Some(last) if last.start_secs == start => {
                    last.events += bucket.events;
                    last.errors += bucket.errors;
                }
                _ => merged.push_back(RateBucket {
                    start_secs: start,
                    ..bucket
                }),
            }
        }
        self.buckets = merged;
        self.bucket_secs = width;
    }

    /// The history as served, with the current interval present.
    pub(crate) fn snapshot(&mut self, since_start: Duration) -> RateHistory {
        self.bucket_at(since_start.as_secs());
        RateHistory {
            bucket_secs: self.bucket_secs,
            elapsed_secs: since_start.as_secs_f64(),
            buckets: self.buckets.iter().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_of_traffic_stays_within_the_bound_and_keeps_every_count() {
        let mut history = History::new();
        let day = 24 * 3600;
        for second in (0..day).step_by(7) {
            history.count(Duration::from_secs(second), 3, u64::from(second % 2 == 0));
        }
        let snapshot = history.snapshot(Duration::from_secs(day));
        assert!(snapshot.buckets.len() <= MAX_BUCKETS);
        assert_eq!(snapshot.buckets[0].start_secs, 0, "it starts at the start");
        let calls = (0..day).step_by(7).count() as u64;
        let errors = (0..day).step_by(7).filter(|second| second % 2 == 0).count() as u64;
        assert_eq!(
            snapshot.buckets.iter().map(|b| b.events).sum::<u64>(),
            3 * calls
        );
        assert_eq!(
            snapshot.buckets.iter().map(|b| b.errors).sum::<u64>(),
            errors
        );
        assert!(
            snapshot
                .buckets
                .windows(2)
                .all(|pair| pair[1].start_secs == pair[0].start_secs + snapshot.bucket_secs),
            "no gaps"
        );
        assert!(snapshot.bucket_secs >= day / MAX_BUCKETS as u64);
    }

    #[test]
    fn the_first_minutes_are_kept_per_second() {
        let mut history = History::new();
        history.count(Duration::from_millis(1_500), 10, 0);
        history.count(Duration::from_millis(4_200), 0, 2);
        let snapshot = history.snapshot(Duration::from_secs(5));
        assert_eq!(snapshot.bucket_secs, 1);
        let counts: Vec<(u64, u64, u64)> = snapshot
            .buckets
            .iter()
            .map(|bucket| (bucket.start_secs, bucket.events, bucket.errors))
            .collect();
        assert_eq!(
            counts,
            vec![
                (0, 0, 0),
                (1, 10, 0),
                (2, 0, 0),
                (3, 0, 0),
                (4, 0, 2),
                (5, 0, 0)
            ]
        );
    }
}
