#!/usr/bin/env bash
# Starts llmscope (SQLite store, OTLP on its main port) in a temporary directory, bursts
# OTLP/HTTP protobuf requests at it with bench/otlp_burst for SECONDS (default 20) from
# SENDERS (default 16) senders, prints the sender's counts, the server's peak RSS and its
# OTLP counters, and stops the server by PID. Usage: bench/otlp_burst.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$HERE/../build/release}
SECONDS_=${SECONDS:-20}
SENDERS=${SENDERS:-16}
dir=$(mktemp -d /tmp/llmscope-otlp-burst-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/cfg.yaml" <<YAML
listen: 127.0.0.1:$port
logs:
  calls: $dir/calls.jsonl
  level: warn
storage:
  backend: sqlite
  dir: $dir/data
upstreams:
  - name: sim
    kind: simulator
routes:
  - prefix: "sim/"
    upstream: sim
YAML
"$BUILD/llmscope" serve --config "$dir/cfg.yaml" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/metrics" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "server pid $pid, idle rss $(awk '/VmRSS/{print $2}' /proc/$pid/status) KiB"
"$BUILD/bench/otlp_burst" --port "$port" --pid "$pid" --senders "$SENDERS" --seconds "$SECONDS_" \
  || echo "otlp_burst: some requests failed or got an unexpected status" >&2
sleep 5  # let the store writer finish the accepted backlog
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^llmscope_(otlp_requests_total|storage_records_written_total|storage_records_dropped)' | grep -v '^#' || true
echo "rss after the burst settled: $(awk '/VmRSS/{print $2}' /proc/$pid/status) KiB"
