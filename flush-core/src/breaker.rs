//! The circuit breaker: after `failure_threshold` consecutive failed requests it opens for `cooldown`; then one
//! small probe batch goes through (half-open); success closes it, failure reopens it for twice the last cooldown
//! (capped at `max_cooldown`). A configuration error (401, 403, 404...) opens it at once.
//!
//! Recording is never affected: events keep flowing into the spool while the breaker is open.

use std::time::{Duration, Instant};

use crate::config::BreakerPolicy;
use crate::stats::BreakerState;

/// The breaker of one sender.
#[derive(Debug)]
pub(crate) struct Breaker {
    policy: BreakerPolicy,
    consecutive_failures: u32,
    state: State,
    /// The cooldown used the last time it opened.
    cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen,
}

impl Breaker {
    pub(crate) fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            consecutive_failures: 0,
            state: State::Closed,
            cooldown: policy.cooldown,
        }
    }

    /// The state at `now` (an open breaker whose cooldown is over is half-open).
    pub(crate) fn state(&mut self, now: Instant) -> BreakerState {
        if let State::Open { until } = self.state
            && now >= until
        {
            self.state = State::HalfOpen;
        }
        match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// When an open breaker lets the probe through; `None` unless open.
    pub(crate) fn open_until(&self) -> Option<Instant> {
        match self.state {
            State::Open { until } => Some(until),
            _ => None,
        }
    }

    /// How many events the next request may carry: the probe size when half-open.
    pub(crate) fn max_events(&mut self, now: Instant, batch_size: usize) -> usize {
        match self.state(now) {
            BreakerState::HalfOpen => self.policy.probe_events.get().min(batch_size),
            _ => batch_size,
        }
    }

    pub(crate) fn on_success(&mut self) {
        self.consecutive_failures = 0;
        self.state = State::Closed;
        self.cooldown = self.policy.cooldown;
    }

    /// A transient failure (5xx, timeout...): counts toward the threshold; a failed probe reopens for longer.
    pub(crate) fn on_failure(&mut self, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.state {
            State::HalfOpen => {
                self.double_cooldown();
                self.open(now);
            }
            State::Closed if self.consecutive_failures >= self.policy.failure_threshold.get() => {
                self.cooldown = self.policy.cooldown;
                self.open(now);
            }
            State::Closed | State::Open { .. } => {}
        }
    }

    /// A configuration error: open at once (a probe will tell when it is fixed).
    pub(crate) fn trip(&mut self, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.state == State::HalfOpen {
            self.double_cooldown();
        }
        self.open(now);
    }

    /// A failed probe: the next cooldown is twice the last, capped at the policy's maximum.
    fn double_cooldown(&mut self) {
        self.cooldown = self
            .cooldown
            .saturating_mul(2)
            .min(self.policy.max_cooldown);
    }

    /// Opens for the current cooldown, from `now`.
    fn open(&mut self, now: Instant) {
        self.state = State::Open {
            until: now + self.cooldown,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::num::{NonZeroU32, NonZeroUsize};

    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerPolicy {
            failure_threshold: NonZeroU32::new(3).unwrap(),
            cooldown: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(25),
            probe_events: NonZeroUsize::new(2).unwrap(),
        })
    }

    #[test]
    fn opens_after_the_threshold_then_half_opens_after_the_cooldown() {
        let start = Instant::now();
        let mut breaker = breaker();
        breaker.on_failure(start);
        breaker.on_failure(start);
        assert_eq!(breaker.state(start), BreakerState::Closed);
        breaker.on_failure(start);
        assert_eq!(breaker.state(start), BreakerState::Open);
        assert_eq!(breaker.open_until(), Some(start + Duration::from_secs(10)));
        let later = start + Duration::from_secs(10);
        assert_eq!(breaker.state(later), BreakerState::HalfOpen);
        assert_eq!(breaker.max_events(later, 50), 2);
        breaker.on_success();
        assert_eq!(breaker.state(later), BreakerState::Closed);
        assert_eq!(breaker.max_events(later, 50), 50);
    }

    #[test]
    fn a_failed_probe_doubles_the_cooldown_up_to_the_cap() {
        let start = Instant::now();
        let mut breaker = breaker();
        (0..3).for_each(|_| breaker.on_failure(start));
        let probe_time = start + Duration::from_secs(10);
        assert_eq!(breaker.state(probe_time), BreakerState::HalfOpen);
        breaker.on_failure(probe_time);
        assert_eq!(
            breaker.open_until(),
            Some(probe_time + Duration::from_secs(20))
        );
        let second_probe = probe_time + Duration::from_secs(20);
        assert_eq!(breaker.state(second_probe), BreakerState::HalfOpen);
        breaker.on_failure(second_probe);
        assert_eq!(
            breaker.open_until(),
            Some(second_probe + Duration::from_secs(25))
        );
    }

    #[test]
    fn a_configuration_error_opens_at_once() {
        let start = Instant::now();
        let mut breaker = breaker();
        breaker.trip(start);
        assert_eq!(breaker.state(start), BreakerState::Open);
    }
}
