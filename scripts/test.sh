#!/usr/bin/env bash
# Runs every test: unit tests, the layering check, integration and end-to-end tests with
# real clients and a real Prometheus. Called by `make test` after setup and build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build/release}
cd "$ROOT"
jobs=$(nproc)
# End-to-end tests start servers; two at a time is what a 2-core machine runs reliably.
ctest --test-dir "$BUILD" --output-on-failure -j "$jobs" --timeout 600 "$@"
# A bounded libFuzzer run of the OTLP decoders (clang build of those targets only).
[ $# -eq 0 ] && bash "$ROOT/scripts/fuzz.sh"
exit 0
