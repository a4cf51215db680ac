# Recipes are thin wrappers over plain cargo commands, so CI could run without `just`.

# List the recipes.
default:
    @just --list

# Unit, integration and doc tests of every crate (the scenario suite itself runs once, in release: `just scenarios`).
test:
    cargo test --workspace --all-features

# Formatting check and clippy with warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --all-features -- -D warnings

# Start fake-ingest on its default address (127.0.0.1:8090); extra arguments go to fake-ingest.
serve *ARGS:
    cargo run --release -p fake-ingest -- {{ARGS}}

# The end-to-end scenario suite, CI profile.
scenarios *ARGS:
    cargo run --release -p scenarios -- {{ARGS}}

# The end-to-end scenario suite, full profile (bigger and longer).
scenarios-full *ARGS:
    cargo run --release -p scenarios -- --profile full {{ARGS}}

# All criterion benchmarks.
bench *ARGS:
    cargo bench -p benches {{ARGS}}

# Three full benchmark runs, then the tables, the ratio chart and the scaling chart of docs/BENCHMARKS.md.
bench-report:
    bash benches/scripts/full-runs.sh 3

# Each benchmark once, as a smoke test.
bench-smoke:
    cargo bench -p benches -- --test

# Everything CI runs.
ci: lint test scenarios bench-smoke
