#!/bin/sh
# Runs one end-to-end test file with node's test runner (used by tests/CMakeLists.txt).
# Exits 77 (ctest SKIP_RETURN_CODE) only when node_modules is missing: scripts/setup.sh
# installs it, and CI always has it.
dir=$(cd "$(dirname "$0")" && pwd)
node=${LLMSCOPE_NODE:-node}
case "$node" in *NOTFOUND*|"") node=node ;; esac
if [ ! -d "$dir/node_modules/openai" ] || [ ! -d "$dir/node_modules/@anthropic-ai/sdk" ]; then
  echo "SKIP: $dir/node_modules is missing; run scripts/setup.sh (npm ci in tests/e2e)" >&2
  exit 77
fi
exec "$node" --test --test-concurrency=1 "$@"
