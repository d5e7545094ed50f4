#!/usr/bin/env bash
# The control API's round trip and `skiff run` beside `runc run`, through the
# runc-compatible CLI in the full-system tier (bench/cases/cli_guest.sh): on
# hardware KVM directly, otherwise in the nested outer VM. Prints figures;
# never fails a test run.
# Usage: cli-guest-bench.sh BUILD_DIR   (needs skiff and bench/skiff_bench_control built)
set -euo pipefail
build=$(cd "${1:?usage: cli-guest-bench.sh BUILD_DIR}" && pwd)
[ -x "$build/bench/skiff_bench_control" ] ||
  { echo "cli-guest-bench: $build/bench/skiff_bench_control not built (cmake --build $build --target skiff_bench_control)"; exit 1; }
. "$(dirname "$0")/guest-bench-lib.sh"
guest_bench "$build" cli_guest '["true"]' "$build/bench/skiff_bench_control"
