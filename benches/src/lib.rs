//! benches: criterion benchmarks (issue 7). Not built yet.
