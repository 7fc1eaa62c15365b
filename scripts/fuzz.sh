#!/usr/bin/env bash
# A bounded libFuzzer run of the OTLP decoders (protobuf, JSON) and Gunzip, with ASan and
# UBSan: builds only the fuzz targets with clang in build/fuzz and runs each for
# FUZZ_SECONDS (default 20). Called by scripts/test.sh; skipped (exit 0, with a message)
# when clang or its libFuzzer runtime is missing. A crash fails the run and leaves its
# input (crash-*) in build/fuzz.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-20}
CLANG=$(command -v clang++ || true)
if [ -z "$CLANG" ] || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
    >/dev/null 2>&1; then
  echo "fuzz: clang++ with libFuzzer is not installed (clang, libclang-rt-14-dev); skipped" >&2
  exit 0
fi
targets=(otlp_fuzz_traces_protobuf otlp_fuzz_traces_json otlp_fuzz_gunzip)
CXX=$CLANG cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLLMSCOPE_FUZZ=ON -DLLMSCOPE_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]}"
cd "$BUILD"
for t in "${targets[@]}"; do
  name=${t#otlp_fuzz_}
  mkdir -p "src/otlp/fuzz/corpus_$name"
  echo "fuzz: $t for ${SECONDS_EACH}s"
  rc=0
  "src/otlp/fuzz/$t" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 "src/otlp/fuzz/corpus_$name" "$ROOT/src/otlp/fuzz/corpus/$name" \
    >"$t.log" 2>&1 || rc=$?
  grep -E "^stat::number_of_executed_units|^Done" "$t.log" || true
  if [ $rc != 0 ]; then
    tail -40 "$t.log" >&2
    echo "fuzz: $t failed (rc=$rc); its input is in $BUILD (crash-*, leak-*, timeout-*)" >&2
    exit 1
  fi
done
echo "fuzz: no failure found"
