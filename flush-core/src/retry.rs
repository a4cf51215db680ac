//! Exponential backoff with full jitter, honouring (and capping) the server's `Retry-After`.
//!
//! The n-th consecutive failure waits a uniformly random time in `[0, min(max_backoff, initial_backoff * 2^n))`
//! ("full jitter", which spreads a fleet of clients after an outage). A `Retry-After` from the server replaces the
//! random delay when it is longer, capped at `max_retry_after` so a hostile or broken header cannot park the sender.

use std::time::Duration;

use crate::config::RetryPolicy;

/// The backoff state of one sender: the number of consecutive failures.
#[derive(Debug)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    failures: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            failures: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// A failure happened; returns how long to wait before the next attempt.
    pub(crate) fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let jittered = Duration::from_nanos(
            self.rng
                .u64(0..=u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX)),
        );
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.policy.max_retry_after)),
            None => jittered,
        }
    }

    /// The current ceiling of the random delay.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.policy
            .initial_backoff
            .saturating_mul(factor)
            .min(self.policy.max_backoff)
    }

    /// A success: the next failure starts from the initial backoff again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn delays_stay_under_a_doubling_capped_ceiling() {
        let mut backoff = Backoff::new(policy());
        for attempt in 0..40u32 {
            let ceiling = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(2));
            let delay = backoff.next_delay(None);
            assert!(
                delay <= ceiling,
                "attempt {attempt}: {delay:?} > {ceiling:?}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let mut backoff = Backoff::new(policy());
        assert!(backoff.next_delay(Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert_eq!(
            backoff.next_delay(Some(Duration::from_secs(3600))),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(policy());
        (0..10).for_each(|_| {
            backoff.next_delay(None);
        });
        backoff.reset();
        assert!(backoff.next_delay(None) <= Duration::from_millis(100));
    }
}
