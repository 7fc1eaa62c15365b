#!/usr/bin/env bash
# The gateway under a fixed load while its event store ingests: is the request path
# unaffected? Figures go to docs/BENCHMARKS.md ("Event store").
#
#   bench/ingest_under_load.sh            (about 3 x (DUR + PACED_DUR + 15) seconds)
#
# Four configurations, one after the other, each on a fresh gateway (bench/candidate.sh):
#   off          storage off: the gateway, its metrics and its call log only
#   sqlite       the embedded SQLite store, filled by the gateway's own calls
#   off+bulk     storage off, while store_bench bulk-writes calls into an SQLite file on the
#                same disk and cores as fast as it can, for the whole run (a second ingest
#                competing for CPU, page cache and fsyncs): what that competition alone costs
#   sqlite+bulk  the embedded store beside the same bulk writer
#   clickhouse, clickhouse+bulk (only when named in CONFIGS, or with CONFIGS=all)
#                the same with the ClickHouse store: a private clickhouse-server (Debian's,
#                CLICKHOUSE_SERVER) on loopback, on the same 2 cores; the bulk writer is
#                store_bench writing to that server, into a database of its own
# Each runs wrk for DUR seconds at CONNS connections (throughput and latency at
# saturation), then PACED_DUR seconds of a paced run (PACED_CONNS connections, each
# waiting PACED_DELAY_MS between requests: latency at a fixed offered load below
# saturation), against the C mock upstream (/work/shared/bench-peers/mock_upstream.c, or
# MOCK_SRC). Per configuration it prints one line: req/s and latency p50/p99 of both runs,
# the gateway's CPU per request, calls stored per second while loaded (from
# llmscope_storage_records_written_total), the largest pipeline queue depth and store
# backlog seen (sampled every second), dropped records (pipeline and store) and, after the
# gateway has been stopped, the rows in its SQLite file against the requests the gateway
# answered (every call stored or not).
#
# Bounded: every wait has a limit; only loopback processes it starts, stopped by their PIDs.
# Scratch files in $WORK (default /tmp/ingest-under-load), removed at the start.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BIN=${LLMSCOPE_BIN:-$ROOT/build/release/llmscope}
STORE_BENCH=${STORE_BENCH:-$ROOT/build/release/bench/store_bench}
MOCK_SRC=${MOCK_SRC:-/work/shared/bench-peers/mock_upstream.c}
WORK=${WORK:-/tmp/ingest-under-load}
DUR=${DUR:-30}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
PACED_DUR=${PACED_DUR:-15}
PACED_CONNS=${PACED_CONNS:-8}
PACED_DELAY_MS=${PACED_DELAY_MS:-4}
BULK_CALLS=${BULK_CALLS:-20000000}
CONFIGS=${CONFIGS:-off sqlite off+bulk sqlite+bulk}
[ "$CONFIGS" = all ] && CONFIGS="off sqlite off+bulk sqlite+bulk clickhouse clickhouse+bulk"
CLICKHOUSE_SERVER=${CLICKHOUSE_SERVER:-/usr/sbin/clickhouse-server}
CH_HTTP_PORT=${CH_HTTP_PORT:-9123}
CH_TCP_PORT=${CH_TCP_PORT:-9124}
PORT=${PORT:-8895}
MOCK_PORT=${MOCK_PORT:-9095}

for tool in wrk sqlite3 curl cc; do
  command -v "$tool" >/dev/null || { echo "ingest_under_load: needs $tool" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "ingest_under_load: build llmscope first ($BIN)" >&2; exit 2; }
[ -x "$STORE_BENCH" ] || { echo "ingest_under_load: build store_bench first" >&2; exit 2; }

rm -rf "$WORK"
mkdir -p "$WORK/bin"
cc -O2 -o "$WORK/bin/mock_upstream" "$MOCK_SRC"

# The request (the peers' wrk script) plus a paced variant and a RESULT line.
cat >"$WORK/load.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-mock"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},' ..
           '{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}'
local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  delay = function() return pace end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT reqs=%d rps=%.1f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50),
    latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
LUA

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

"$WORK/bin/mock_upstream" "$MOCK_PORT" 20 0 >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
PIDS+=("$MOCK_PID")

# A private ClickHouse for the clickhouse configurations: loopback only, its data in $WORK,
# stopped by its PID with the rest.
CH_URL=
if [[ " $CONFIGS " == *" clickhouse"* ]]; then
  [ -x "$CLICKHOUSE_SERVER" ] || { echo "ingest_under_load: needs $CLICKHOUSE_SERVER" >&2; exit 2; }
  ch="$WORK/clickhouse"
  mkdir -p "$ch/data" "$ch/tmp" "$ch/user_files" "$ch/format_schemas"
  cat >"$ch/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$ch/server.log</log><errorlog>$ch/server.err.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$CH_HTTP_PORT</http_port>
  <tcp_port>$CH_TCP_PORT</tcp_port>
  <path>$ch/data/</path>
  <tmp_path>$ch/tmp/</tmp_path>
  <user_files_path>$ch/user_files/</user_files_path>
  <format_schema_path>$ch/format_schemas/</format_schema_path>
  <users_config>$ch/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
XML
  cat >"$ch/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage><min_compress_block_size>4096</min_compress_block_size></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
XML
  "$CLICKHOUSE_SERVER" --config-file="$ch/config.xml" >"$ch/stdout.log" 2>&1 &
  PIDS+=("$!")
  CH_URL="http://127.0.0.1:$CH_HTTP_PORT"
  for _ in $(seq 300); do
    [ "$(curl -s --max-time 1 "$CH_URL/ping")" = "Ok." ] && break
    sleep 0.1
  done
  [ "$(curl -s --max-time 1 "$CH_URL/ping")" = "Ok." ] ||
    { echo "ingest_under_load: clickhouse-server did not start (see $ch)" >&2; exit 2; }
fi

# The value of a metric family's sample (summed over label sets) on the gateway.
metric() {
  curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" |
    awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%d\n", s }'
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" "$2"; }

echo "# $(date -u +%FT%TZ) $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?); DUR=$DUR CONNS=$CONNS" \
  "PACED=${PACED_CONNS}x${PACED_DELAY_MS}ms/$PACED_DUR s"
printf '%-12s %7s %7s %7s %10s %7s %7s %7s %8s %9s %9s %7s %9s %9s %4s %5s\n' config req/s p50_ms \
  p99_ms cpu_us/req paced/s p50_ms p99_ms stored/s max_queue max_store dropped calls_db \
  answered all? load1

for cfg in $CONFIGS; do
  store=sqlite
  case $cfg in off*) store=off ;; clickhouse*) store=clickhouse ;; esac
  data="$WORK/run-$cfg"
  mkdir -p "$data"
  ch_db="llmscope_iul_${cfg//+/_}"
  WORK="$data" LLMSCOPE_BIN="$BIN" LLMSCOPE_STORE=$store CALLS_LOG=/dev/null \
    LLMSCOPE_CLICKHOUSE_URL="$CH_URL" LLMSCOPE_CLICKHOUSE_DB="$ch_db" \
    bash "$HERE/candidate.sh" "$PORT" "http://127.0.0.1:$MOCK_PORT/v1" >"$data/gateway.log" 2>&1 &
  GW=$!
  PIDS+=("$GW")
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/metrics" && break
    sleep 0.1
  done
  # Warm-up: connections, caches, the store's first pages.
  wrk -t"$THREADS" -c"$CONNS" -d2s -s "$WORK/load.lua" "http://127.0.0.1:$PORT/v1/chat/completions" \
    >"$data/warm.txt" 2>&1

  BULK=
  if [[ $cfg == *+bulk ]]; then
    LLMSCOPE_CLICKHOUSE_URL="$CH_URL" "$STORE_BENCH" --backend "${store/off/sqlite}" \
      --calls "$BULK_CALLS" --reps 1 --dir "$data" \
      --max-ingest-seconds "$((DUR + PACED_DUR + 10))" >"$data/bulk.out" 2>"$data/bulk.err" &
    BULK=$!
    PIDS+=("$BULK")
    sleep 2  # past its first batches
  fi

  # Sample queue depth and store backlog every second while loaded.
  (
    while :; do
      echo "$(metric llmscope_pipeline_queue_depth) $(metric llmscope_storage_pending_records)"
      sleep 1
    done
  ) >"$data/samples.txt" 2>/dev/null &
  SAMPLER=$!
  PIDS+=("$SAMPLER")

  w0=$(metric llmscope_storage_records_written_total)
  c0=$(ticks "$GW")
  t0=$(date +%s.%N)
  wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --latency -s "$WORK/load.lua" \
    "http://127.0.0.1:$PORT/v1/chat/completions" >"$data/wrk.txt" 2>&1
  t1=$(date +%s.%N)
  c1=$(ticks "$GW")
  w1=$(metric llmscope_storage_records_written_total)
  PACE_MS=$PACED_DELAY_MS wrk -t"$THREADS" -c"$PACED_CONNS" -d"${PACED_DUR}s" --latency \
    -s "$WORK/load.lua" "http://127.0.0.1:$PORT/v1/chat/completions" >"$data/paced.txt" 2>&1
  kill "$SAMPLER" 2>/dev/null || true
  wait "$SAMPLER" 2>/dev/null || true
  if [ -n "$BULK" ]; then
    kill "$BULK" 2>/dev/null || true
    wait "$BULK" 2>/dev/null || true
  fi

  # Let the store catch up (bounded), then read the drop counters and stop the gateway.
  for _ in $(seq 60); do
    [ "$(metric llmscope_storage_pending_records)" = 0 ] &&
      [ "$(metric llmscope_pipeline_queue_depth)" = 0 ] && break
    sleep 0.5
  done
  dropped=$(($(metric llmscope_pipeline_records_dropped_total) + \
    $(metric llmscope_storage_records_dropped_total)))
  kill -INT "$GW" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$GW" 2>/dev/null || break; sleep 0.1; done
  kill "$GW" 2>/dev/null || true
  wait "$GW" 2>/dev/null || true

  wrk_reqs=$(field reqs "$data/wrk.txt")
  paced_reqs=$(field reqs "$data/paced.txt")
  # Responses wrk counted in its three runs. The gateway may also have answered up to one
  # request per connection that wrk stopped waiting for at the end of each run.
  answered=$(($(field reqs "$data/warm.txt") + wrk_reqs + paced_reqs))
  slack=$((CONNS * 2 + PACED_CONNS))
  calls_db=-
  all=-
  if [ "$store" = clickhouse ]; then
    calls_db=$(curl -s --max-time 60 "$CH_URL/" \
      --data-binary "SELECT uniqExact(request_id) FROM $ch_db.calls_v2")
  elif [ "$store" = sqlite ]; then
    calls_db=$(sqlite3 "$data/llmscope-data-$PORT/llmscope.db" "SELECT count(*) FROM calls")
  fi
  if [ "$store" != off ]; then
    all=$([ "$calls_db" -ge "$answered" ] && [ "$calls_db" -le $((answered + slack)) ] &&
      [ "$dropped" = 0 ] && echo yes || echo NO)
  fi
  secs=$(echo "$t1 - $t0" | bc -l)
  hz=$(getconf CLK_TCK)
  printf '%-12s %7.0f %7.2f %7.2f %10.1f %7.0f %7.2f %7.2f %8.0f %9s %9s %7s %9s %9s %4s %5s\n' \
    "$cfg" "$(field rps "$data/wrk.txt")" \
    "$(echo "$(field p50_us "$data/wrk.txt") / 1000" | bc -l)" \
    "$(echo "$(field p99_us "$data/wrk.txt") / 1000" | bc -l)" \
    "$(echo "($c1 - $c0) * 1000000 / $hz / $wrk_reqs" | bc -l)" \
    "$(field rps "$data/paced.txt")" \
    "$(echo "$(field p50_us "$data/paced.txt") / 1000" | bc -l)" \
    "$(echo "$(field p99_us "$data/paced.txt") / 1000" | bc -l)" \
    "$(echo "($w1 - $w0) / $secs" | bc -l)" \
    "$(awk 'm < $1 { m = $1 } END { print m + 0 }' "$data/samples.txt")" \
    "$(awk 'm < $2 { m = $2 } END { print m + 0 }' "$data/samples.txt")" \
    "$dropped" "$calls_db" "$answered" "$all" "$(cut -d' ' -f1 /proc/loadavg)"
  if [ -n "$BULK" ]; then
    echo "  bulk writer beside it (its last progress line):$(grep 'calls/s' "$data/bulk.err" |
      tail -1)"
  fi
done
