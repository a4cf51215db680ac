//! The recording clock: what `record()` reads to stamp an event, and how the spooler turns that reading into
//! wall-clock time.
//!
//! Reading the wall clock (`SystemTime::now`, a vDSO `clock_gettime`) costs about as much as the rest of
//! `record()` together. Where the operating system itself keeps time with the CPU's time-stamp counter (Linux on
//! x86-64 with the `tsc` clock source: the kernel has checked that the counter is invariant and synchronized
//! across CPUs), `record()` reads that counter instead, about half the price, and the spooler converts the
//! reading to wall-clock time before the event is keyed and stored. Anywhere else the reading is the monotonic
//! clock, converted exactly.
//!
//! # The conversion
//! A [`TickConverter`] keeps two anchors, each a counter reading taken together with the monotonic and wall
//! clocks: the first, taken when the reporter starts (before any event can be recorded), and the latest, taken
//! after the spooler takes each chunk of events from the queue ([`TickConverter::refresh`]). The counter's rate is
//! the monotonic time between the two anchors over their counter difference; an event's time is the latest anchor's
//! wall time minus the event's counter distance to it at that rate. The rate's error is an anchor's reading error
//! (half the counter time of three clock reads, the tightest of three tries) over the anchors' span (at least
//! [`MIN_ANCHOR_SPAN`], then growing with the reporter's age), and it applies only to the distance from the latest
//! anchor (how long the event waited in the queue: milliseconds), so a converted time is off by microseconds at
//! most (the stored timestamp has millisecond precision). A wall-clock step between recording and conversion
//! moves the event with it, as if the clock had been read later.

use std::time::{Duration, Instant, SystemTime};

/// The smallest monotonic span between the two anchors before the counter's rate is estimated from them.
const MIN_ANCHOR_SPAN: Duration = Duration::from_micros(20);

/// A reading of the recording clock: counter ticks, or nanoseconds of the monotonic clock since the reporter's
/// origin. Only comparable with readings of the same [`RecordingClock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tick(u64);

/// What `record()` reads. Copy, chosen once per reporter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RecordingClock {
    /// The x86-64 time-stamp counter, where the kernel keeps time with it.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    TimeStampCounter,
    /// Nanoseconds of the monotonic clock since `origin`.
    Monotonic { origin: Instant },
}

impl RecordingClock {
    /// The cheapest clock this machine offers that converts to wall-clock time (see the module docs).
    pub(crate) fn best() -> Self {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        if kernel_keeps_time_with_the_counter() {
            return Self::TimeStampCounter;
        }
        Self::monotonic()
    }

    /// The monotonic clock, on every platform.
    pub(crate) fn monotonic() -> Self {
        Self::Monotonic {
            origin: Instant::now(),
        }
    }

    /// Reads the clock.
    #[inline]
    pub(crate) fn now(&self) -> Tick {
        match self {
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            Self::TimeStampCounter => {
                #[expect(
                    unsafe_code,
                    reason = "the workspace's one unsafe block: `_rdtsc` reads a register"
                )]
                // SAFETY: `rdtsc` has no preconditions and touches no memory; every x86-64 CPU has it.
                let counter = unsafe { std::arch::x86_64::_rdtsc() };
                Tick(counter)
            }
            Self::Monotonic { origin } => {
                Tick(u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
            }
        }
    }
}

/// Whether the kernel's current clock source is the time-stamp counter (read once per process).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn kernel_keeps_time_with_the_counter() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|source| source.trim() == "tsc")
    })
}

/// A counter reading with the monotonic and wall clocks read beside it.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    tick: Tick,
    monotonic: Instant,
    wall: SystemTime,
}

impl Anchor {
    /// How many times an anchor is read; the reading whose counter readings bracket the clock reads most tightly
    /// is kept (a thread preempted in the middle of one reading spoils that reading only).
    const TRIES: usize = 3;

    fn take(clock: &RecordingClock) -> Self {
        let (mut tightest, mut best) = Self::read(clock);
        for _ in 1..Self::TRIES {
            let (bracket, anchor) = Self::read(clock);
            if bracket < tightest {
                (tightest, best) = (bracket, anchor);
            }
        }
        best
    }

    /// One reading, and the counter time its clock reads took.
    fn read(clock: &RecordingClock) -> (u64, Self) {
        let before = clock.now();
        let monotonic = Instant::now();
        let wall = SystemTime::now();
        let after = clock.now();
        let bracket = after.0.saturating_sub(before.0);
        let anchor = Self {
            tick: Tick(before.0 + bracket / 2),
            monotonic,
            wall,
        };
        (bracket, anchor)
    }
}

/// Converts readings of one [`RecordingClock`] to wall-clock time (see the module docs). Lives on the spooler's
/// thread; create it before the first event is recorded.
#[derive(Debug)]
pub(crate) struct TickConverter {
    clock: RecordingClock,
    first: Anchor,
    latest: Anchor,
    /// Nanoseconds per tick, from the two anchors.
    nanos_per_tick: f64,
}

impl TickConverter {
    pub(crate) fn new(clock: RecordingClock) -> Self {
        let first = Anchor::take(&clock);
        Self {
            clock,
            first,
            latest: first,
            nanos_per_tick: 1.0,
        }
    }

    /// Takes a new latest anchor (at least once before converting, then as often as the conversions should stay
    /// close to it: the spooler refreshes after taking each chunk from the queue). The first refresh after the start
    /// may wait up to [`MIN_ANCHOR_SPAN`] for the anchors to be far enough apart to measure the counter's rate.
    pub(crate) fn refresh(&mut self) {
        loop {
            self.latest = Anchor::take(&self.clock);
            if matches!(self.clock, RecordingClock::Monotonic { .. }) {
                return;
            }
            let span = self.latest.monotonic - self.first.monotonic;
            let ticks = self.latest.tick.0.saturating_sub(self.first.tick.0);
            if span >= MIN_ANCHOR_SPAN && ticks > 0 {
                self.nanos_per_tick = span.as_nanos() as f64 / ticks as f64;
                return;
            }
            std::hint::spin_loop();
        }
    }

    /// The wall-clock time of `tick`, a reading of this converter's clock taken after it was created.
    pub(crate) fn wall_time(&self, tick: Tick) -> SystemTime {
        let latest = self.latest;
        let nanos = |ticks: u64| Duration::from_nanos((ticks as f64 * self.nanos_per_tick) as u64);
        if tick <= latest.tick {
            let before = nanos(latest.tick.0 - tick.0);
            latest.wall.checked_sub(before).unwrap_or(latest.wall)
        } else {
            let after = nanos(tick.0 - latest.tick.0);
            latest.wall.checked_add(after).unwrap_or(latest.wall)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distance(a: SystemTime, b: SystemTime) -> Duration {
        a.duration_since(b).unwrap_or_else(|error| error.duration())
    }

    /// Reads the recording clock between two wall-clock reads, converts it later, and checks the result lies in
    /// that window (give or take `slack`).
    fn converted_reading_lies_between_the_wall_reads(clock: RecordingClock, slack: Duration) {
        let mut converter = TickConverter::new(clock);
        let mut readings = Vec::new();
        for _ in 0..50 {
            let before = SystemTime::now();
            let tick = clock.now();
            let after = SystemTime::now();
            readings.push((before, tick, after));
            std::thread::sleep(Duration::from_micros(200));
        }
        converter.refresh();
        // One reading after the latest anchor too: it is extrapolated forwards.
        let before = SystemTime::now();
        let tick = clock.now();
        let after = SystemTime::now();
        readings.push((before, tick, after));
        for (before, tick, after) in readings {
            let at = converter.wall_time(tick);
            assert!(
                at + slack >= before && at <= after + slack,
                "{at:?} is outside {before:?}..{after:?} (by {:?} / {:?})",
                distance(at, before),
                distance(at, after)
            );
        }
    }

    #[test]
    fn the_monotonic_clock_converts_to_the_wall_time_it_was_read_at() {
        // Exact but for the wall clock's own slewing over the test's ~10 ms.
        converted_reading_lies_between_the_wall_reads(
            RecordingClock::monotonic(),
            Duration::from_micros(50),
        );
    }

    #[test]
    fn the_best_clock_converts_to_the_wall_time_it_was_read_at() {
        // The time-stamp counter's rate is estimated; a millisecond is the stored timestamp's precision.
        converted_reading_lies_between_the_wall_reads(
            RecordingClock::best(),
            Duration::from_millis(1),
        );
    }

    #[test]
    fn readings_order_as_they_were_taken() {
        let clock = RecordingClock::best();
        let first = clock.now();
        let second = clock.now();
        assert!(first <= second);
    }
}
