#!/usr/bin/env bash
# Runs every benchmark RUNS times (default 3) and writes the tables of docs/BENCHMARKS.md and the ratio chart.
#
#   bash benches/scripts/full-runs.sh [RUNS] [OUT_DIR]
#
# Each run's criterion results and standard output go to OUT_DIR/runN/ (default target/bench-runs); the tables are
# printed to OUT_DIR/tables.md, the ratio chart to OUT_DIR/ratios.svg and the scaling chart to OUT_DIR/scaling.svg. Run it on a quiet machine: note the load average
# printed at the start and end of every group (the LOAD lines), it is part of the result.
set -euo pipefail
cd "$(dirname "$0")/../.."

runs="${1:-3}"
out="${2:-target/bench-runs}"
mkdir -p "$out"

cargo bench -p benches --no-run
cargo build -q -p benches --release --bin bench-report

for run in $(seq 1 "$runs"); do
  dir="$out/run$run"
  rm -rf "$dir" target/criterion
  mkdir -p "$dir"
  echo "== run $run of $runs: $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  cargo bench -p benches > "$dir/bench.log" 2>&1
  grep -E '^(LOAD|PERCENTILES|STATE|MEMORY)' "$dir/bench.log" || true
  cp -r target/criterion "$dir/criterion"
done

target/release/bench-report --svg "$out/ratios.svg" --scaling-svg "$out/scaling.svg" "$out"/run* > "$out/tables.md"
echo "tables: $out/tables.md, charts: $out/ratios.svg, $out/scaling.svg"
