#!/usr/bin/env bash
# Bounded memory soak: llmscope in front of the bench mock under steady load for SOAK_S
# seconds (default 600), sampling its RSS every SAMPLE_S seconds (default 30). Prints the
# samples and the growth from the first sample after warm-up to the last. Stops every
# process it started, by PID. Needs the mock built by the bench-peers setup ($WORK/bin).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export WORK=${WORK:-/tmp/perf}
SOAK_S=${SOAK_S:-600}; SAMPLE_S=${SAMPLE_S:-30}; CONNS=${CONNS:-16}
PEERS=${BENCH_PEERS:-$HERE/../../shared/bench-peers}
MOCK_PORT=${MOCK_PORT:-9301}; PORT=${PORT:-9390}
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$WORK/bin/mock_upstream" "$MOCK_PORT" 20 0 >/dev/null 2>&1 &
PIDS+=($!)
CALLS_LOG=/dev/null bash "$HERE/candidate.sh" "$PORT" "http://127.0.0.1:$MOCK_PORT/v1" >/dev/null 2>"$WORK/soak.err" &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
pid=${PIDS[1]}
rss() { awk '/^VmRSS/{print $2}' "/proc/$pid/status"; }
echo "idle_rss_kib $(rss)"
half=$((SOAK_S / 2))
# Alternate JSON and streaming load, each half of the soak, bounded by wrk's duration.
(wrk -t2 -c"$CONNS" -d"${half}s" -s "$PEERS/wrk_openai.lua" "http://127.0.0.1:$PORT/v1/chat/completions" >"$WORK/soak_json.txt" 2>&1
 STREAM=1 wrk -t2 -c"$CONNS" -d"${half}s" -s "$PEERS/wrk_openai.lua" "http://127.0.0.1:$PORT/v1/chat/completions" >"$WORK/soak_sse.txt" 2>&1) &
load=$!
t=0
while kill -0 "$load" 2>/dev/null && [ "$t" -le "$SOAK_S" ]; do
  echo "t=${t}s rss_kib=$(rss)"
  sleep "$SAMPLE_S"; t=$((t + SAMPLE_S))
done
wait "$load" || true
echo "after_load rss_kib=$(rss)"
grep RESULT "$WORK/soak_json.txt" "$WORK/soak_sse.txt" || true
