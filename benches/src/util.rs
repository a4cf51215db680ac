//! Helpers every benchmark file shares: smoke-mode detection, temporary directories, chunked timing, percentiles,
//! memory and machine load.

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// True when the benchmark binary runs in criterion's smoke mode (`cargo bench -- --test`): each benchmark runs once,
/// so the benchmarks build smaller backlogs and shorter loops.
pub fn smoke_mode() -> bool {
    std::env::args().any(|argument| argument == "--test")
}

/// Criterion's command-line options that take a value (so their value is not mistaken for a filter).
const OPTIONS_WITH_VALUES: [&str; 16] = [
    "--save-baseline",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--measurement-time",
    "--warm-up-time",
    "--sample-size",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
    "--color",
    "--profile-time",
    "--format",
];

/// Whether the benchmark `id` (e.g. `record/ours/idle`) is selected by the filters given on the command line
/// (`cargo bench -p benches --bench record -- ours/idle`): true without filters, or if a filter is a substring of the
/// id. Criterion applies its own (regex) filter to the measurements; benchmarks call this to skip their own
/// expensive setup and extra loops (backlogs, percentile loops) for benchmarks that are filtered out.
pub fn selected(id: &str) -> bool {
    let mut filters = Vec::new();
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        if OPTIONS_WITH_VALUES.contains(&argument.as_str()) {
            arguments.next();
        } else if !argument.starts_with('-') {
            filters.push(argument);
        }
    }
    filters.is_empty() || filters.iter().any(|filter| id.contains(filter.as_str()))
}

/// Picks the full-run or the smoke-mode size.
pub fn size(full: usize, smoke: usize) -> usize {
    if smoke_mode() { smoke } else { full }
}

/// A fresh temporary directory (in the system's temporary directory, which is on the real disk here), removed when
/// dropped.
///
/// # Panics
/// If the directory cannot be created: a benchmark cannot run without it.
pub fn temp_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("flush-bench-{label}-"))
        .tempdir()
        .unwrap_or_else(|error| panic!("cannot create a temporary directory: {error}"))
}

/// Times `total` operations in chunks of at most `chunk`: for each chunk, `prepare(n)` builds the inputs (untimed),
/// `operate` runs once per input (timed together), then `settle` runs (untimed), e.g. to let a consumer drain.
/// Returns the sum of the timed parts.
pub fn time_in_chunks<S, I>(
    state: &mut S,
    total: u64,
    chunk: usize,
    mut prepare: impl FnMut(usize) -> Vec<I>,
    mut operate: impl FnMut(&mut S, I),
    mut settle: impl FnMut(&mut S),
) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut remaining = total;
    while remaining > 0 {
        let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(chunk);
        let inputs = prepare(n);
        let start = Instant::now();
        for input in inputs {
            operate(state, input);
        }
        elapsed += start.elapsed();
        settle(state);
        remaining -= n as u64;
    }
    elapsed
}

/// Like [`time_in_chunks`] but times each operation on its own and records it in nanoseconds into `histogram`.
pub fn record_latencies<S, I>(
    state: &mut S,
    histogram: &mut Histogram<u64>,
    total: u64,
    chunk: usize,
    mut prepare: impl FnMut(usize) -> Vec<I>,
    mut operate: impl FnMut(&mut S, I),
    mut settle: impl FnMut(&mut S),
) {
    let mut remaining = total;
    while remaining > 0 {
        let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(chunk);
        for input in prepare(n) {
            let start = Instant::now();
            operate(state, input);
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            histogram.saturating_record(nanos.max(1));
        }
        settle(state);
        remaining -= n as u64;
    }
}

/// A histogram of nanoseconds from 1 ns to 60 s with 3 significant digits.
///
/// # Panics
/// Never: the bounds are valid constants.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3)
        .unwrap_or_else(|error| panic!("histogram bounds: {error}"))
}

/// The cost of timing itself: the median of an empty `Instant::now()` / `elapsed()` pair, in nanoseconds.
pub fn timer_overhead_nanos() -> u64 {
    let mut histogram = latency_histogram();
    for _ in 0..100_000 {
        let start = Instant::now();
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        histogram.saturating_record(nanos.max(1));
    }
    histogram.value_at_quantile(0.5)
}

/// One line of percentiles, printed with a stable prefix (`PERCENTILES`) that the summary script reads.
pub fn print_percentiles(name: &str, histogram: &Histogram<u64>) {
    println!(
        "PERCENTILES {name} count={} mean_ns={:.1} p50_ns={} p99_ns={} p999_ns={} max_ns={}",
        histogram.len(),
        histogram.mean(),
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
    );
}

/// The resident set size of this process in bytes (`/proc/self/statm`), if readable.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident_pages * 4096)
}

/// The 1-minute load average (`/proc/loadavg`), to print beside every run.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|line| line.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Prints the machine load with a stable prefix (`LOAD`), at the start and end of each benchmark file.
pub fn print_load(when: &str) {
    println!("LOAD {when} loadavg_1m={}", load_average());
}

/// The total size in bytes of the regular files directly in `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_timing_runs_every_operation_once_and_settles_after_each_chunk() {
        let mut counts = (0, 0);
        time_in_chunks(
            &mut counts,
            10,
            4,
            |n| vec![(); n],
            |counts, ()| counts.0 += 1,
            |counts| counts.1 += 1,
        );
        assert_eq!(counts, (10, 3));
        let mut histogram = latency_histogram();
        record_latencies(
            &mut (),
            &mut histogram,
            10,
            4,
            |n| vec![(); n],
            |(), ()| {},
            |()| {},
        );
        assert_eq!(histogram.len(), 10);
    }
}
