//! What the benchmark files share: criterion's settings, and iteration helpers that give each sample a fresh state.
//!
//! Included with `mod common;` by every benchmark file (criterion is a dev-dependency, so this cannot live in the
//! library).

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use criterion::Criterion;
use criterion::measurement::WallTime;

/// Criterion's settings for every group: 10 samples, a short warm-up and measurement, so that a full `just bench`
/// stays around ten minutes on two cores. Groups that need it override these. Criterion's HTML report (with plots)
/// is written to `target/criterion/report/index.html`.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
}

/// Runs `iters` operations on a state built fresh (untimed) for the sample and dropped (untimed) after it, and
/// returns the time of the operations alone.
pub fn iter_fresh<S>(
    bencher: &mut criterion::Bencher<'_, WallTime>,
    mut fresh: impl FnMut() -> S,
    mut operate: impl FnMut(&mut S),
) {
    bencher.iter_custom(|iters| {
        let mut state = fresh();
        let start = Instant::now();
        for _ in 0..iters {
            operate(&mut state);
        }
        let elapsed = start.elapsed();
        drop(state);
        elapsed
    });
}

/// Runs `iters` operations, each on a state built fresh (untimed) for it, and returns the time of the operations
/// alone.
pub fn iter_each_fresh<S>(
    bencher: &mut criterion::Bencher<'_, WallTime>,
    mut fresh: impl FnMut() -> S,
    mut operate: impl FnMut(&mut S),
) {
    bencher.iter_custom(|iters| {
        let mut elapsed = Duration::ZERO;
        for _ in 0..iters {
            let mut state = fresh();
            let start = Instant::now();
            operate(&mut state);
            elapsed += start.elapsed();
            drop(state);
        }
        elapsed
    });
}
