#!/usr/bin/env bash
# Runs the CI profile of the scenario suite RUNS times back to back (default 10), each with its own seed, while two
# busy threads load the machine, and prints one line per run and a summary. Not part of CI: it shows that the suite's
# verdicts do not depend on the machine being quiet. Usage: scenarios/scripts/stress-under-load.sh [RUNS] [FIRST_SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."

runs="${1:-10}"
first_seed="${2:-20261125}"
out="target/scenarios-stress"
mkdir -p "$out"

cargo build --release -p scenarios

busy_pids=()
stop_busy() { for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop_busy EXIT
for _ in 1 2; do
  ( while :; do :; done ) &
  busy_pids+=("$!")
done

passed=0
for ((run = 1; run <= runs; run++)); do
  seed=$((first_seed + run))
  dir="$out/run-$run"
  started=$(date +%s)
  if ./target/release/scenarios run --profile ci --seed "$seed" --report-dir "$dir" >"$dir.log" 2>&1; then
    verdict=PASS
    passed=$((passed + 1))
  else
    verdict=FAIL
  fi
  load=$(cut -d' ' -f1 /proc/loadavg)
  cli=$(python3 -c '
import json, sys
report = json.load(open(sys.argv[1]))
cli = [s["cli"] for s in report["scenarios"] if s.get("cli")]
print("cli shutdown worst %.1f ms, allowed %.1f ms, baseline worst %.1f ms" % (cli[0]["worst_shutdown_ms"], cli[0]["allowed_ms"], cli[0]["worst_baseline_ms"]) if cli else "no cli-burst")
' "$dir/report.json" 2>/dev/null || echo "no report")
  echo "run $run seed $seed: $verdict in $(( $(date +%s) - started )) s, load average $load; $cli"
done
echo "$passed/$runs runs passed with two busy threads loading the machine"
[ "$passed" -eq "$runs" ]
