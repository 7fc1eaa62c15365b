#!/usr/bin/env bash
# Installs everything llmscope needs to build, run and test on Debian 12.
# Idempotent: packages already present are skipped; npm installs only when the lock changed.
# Usage: scripts/setup.sh [--no-test-deps]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WANT_TEST=1
[ "${1:-}" = "--no-test-deps" ] && WANT_TEST=0

BUILD_PKGS=(build-essential cmake ninja-build ccache pkg-config git curl ca-certificates
  libboost1.81-dev libboost-json1.81-dev libssl-dev libyaml-cpp-dev libsqlite3-dev
  libprotobuf-dev protobuf-compiler zlib1g-dev libgrpc++-dev)
TEST_PKGS=(libgtest-dev libgmock-dev libbenchmark-dev python3 clang-format clang libclang-rt-14-dev
  prometheus wrk
  nginx-light openssl clickhouse-server clickhouse-client prometheus-alertmanager)

missing=()
pkgs=("${BUILD_PKGS[@]}")
[ "$WANT_TEST" = 1 ] && pkgs+=("${TEST_PKGS[@]}")
command -v node >/dev/null || pkgs+=(nodejs npm)
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  # Package post-install scripts must not start system-wide daemons (Prometheus, nginx would
  # bind their default ports); tests start their own instances on loopback.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  rc=0
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq || rc=$?
  if [ $rc = 0 ]; then
    $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null || rc=$?
  fi
  [ $made_policy = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || { echo "setup: apt-get failed (rc=$rc) installing: ${missing[*]}" >&2; exit $rc; }
  echo "setup: installed ${missing[*]}"
fi

# JavaScript clients for the end-to-end tests (official SDKs, from the npm registry).
if [ "$WANT_TEST" = 1 ] && [ -f "$ROOT/tests/e2e/package.json" ]; then
  stamp="$ROOT/tests/e2e/node_modules/.llmscope-stamp"
  sum=$(cat "$ROOT/tests/e2e/package.json" "$ROOT/tests/e2e/package-lock.json" 2>/dev/null | sha256sum | cut -c1-16)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    (cd "$ROOT/tests/e2e" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error 2>/dev/null \
      || npm install --no-audit --no-fund --ignore-scripts --loglevel=error)
    echo "$sum" >"$stamp"
  fi
fi
