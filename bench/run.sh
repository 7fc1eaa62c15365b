#!/usr/bin/env bash
# Benchmarks: per-call micro costs (Google Benchmark) and the side-by-side proxy run with
# the peers (mock direct, nginx, a Node proxy, Portkey, llmscope) from the bench-peers
# harness, when it is present beside the project (BENCH_PEERS, default ../shared/bench-peers).
# Results are written under $WORK (default /tmp/perf); docs/BENCHMARKS.md records them.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build/release}
export WORK=${WORK:-/tmp/perf}
PEERS=${BENCH_PEERS:-$ROOT/../shared/bench-peers}
mkdir -p "$WORK"

"$BUILD/bench/micro_bench" --benchmark_min_time=0.5 | tee "$WORK/micro_bench.txt"

if [ ! -x "$PEERS/run_all.sh" ]; then
  echo "bench: no peer harness at $PEERS (set BENCH_PEERS); side-by-side run skipped" >&2
  exit 0
fi
bash "$PEERS/setup.sh"
run=${RUN:-$(date +%Y%m%d-%H%M%S)}
RES="$WORK/results_$run" CANDIDATE="$HERE/candidate.sh" LLMSCOPE_BIN="$BUILD/llmscope" \
  bash "$PEERS/run_all.sh"
python3 "$PEERS/summarize.py" "$WORK/results_$run"
