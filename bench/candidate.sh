#!/usr/bin/env bash
# Starts llmscope in the foreground as a benchmark candidate: `candidate.sh PORT UPSTREAM_URL`
# routes every model to the OpenAI-compatible upstream at UPSTREAM_URL (e.g.
# http://127.0.0.1:9001/v1) and listens on 127.0.0.1:PORT. The call log goes to a file in
# $WORK (default /tmp/perf), or to CALLS_LOG, so that writing it is part of the measured cost.
# LLMSCOPE_STORE picks the event store (default off: the gateway, its metrics and its call
# log, as nginx's proxy hop is measured without storage; `sqlite` adds the embedded store,
# kept in $WORK; `clickhouse` writes to the server LLMSCOPE_CLICKHOUSE_URL names, into database
# LLMSCOPE_CLICKHOUSE_DB).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${LLMSCOPE_BIN:-$HERE/../build/release/llmscope}
WORK=${WORK:-/tmp/perf}
mkdir -p "$WORK"
cfg="$WORK/llmscope-bench-$1.yaml"
calls=${CALLS_LOG:-$WORK/llmscope-calls-$1.jsonl}
cat >"$cfg" <<YAML
listen: 127.0.0.1:$1
threads: ${LLMSCOPE_THREADS:-0}
logs:
  calls: $calls
  level: warn
storage:
  backend: ${LLMSCOPE_STORE:-off}
  dir: $WORK/llmscope-data-$1
  clickhouse: {url: "${LLMSCOPE_CLICKHOUSE_URL:-http://127.0.0.1:8123}", database: "${LLMSCOPE_CLICKHOUSE_DB:-llmscope}"}
upstreams:
  - name: bench
    kind: openai_compatible
    base_url: $2
routes:
  - glob: "*"
    upstream: bench
YAML
[ "$calls" = /dev/null ] || : >"$calls"
exec "$BIN" serve --config "$cfg"
