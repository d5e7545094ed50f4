#!/usr/bin/env bash
# The control API's round trip and `skiff run` beside `runc run`, through the
# runc-compatible CLI in the full-system tier (bench/cases/cli_guest.sh): on
# hardware KVM directly, otherwise in the nested outer VM. Prints figures;
# never fails a test run.
# Usage: cli-guest-bench.sh BUILD_DIR   (needs skiff and bench/skiff_bench_control built)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: cli-guest-bench.sh BUILD_DIR}" && pwd)
# A state dir of its own: the e2e suite's outer VM (build/e2e-state) may be
# running beside this one.
state=$build/bench-cli-guest-state
[ -x "$build/bench/skiff_bench_control" ] ||
  { echo "cli-guest-bench: $build/bench/skiff_bench_control not built (cmake --build $build --target skiff_bench_control)"; exit 1; }
cases=$(mktemp -d)
trap 'rm -rf "$cases"' EXIT
cp "$here/cases/cli_guest.sh" "$cases/"
if command -v runc >/dev/null; then
  # runc's own spec, made to match the agent's container: `true` without a
  # terminal, the rootfs writable, pid/ipc/uts/mount namespaces (the agent's
  # containers share the sandbox's network namespace). Both `skiff run` and
  # `runc run` are given this one bundle.
  (cd "$cases" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["root"] = {"path": "rootfs", "readonly": False}
c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
# outer-vm carries only .sh files into the outer VM: the spec goes as one.
with open("_cli_guest_runc.sh", "w") as f:
    f.write("cat <<'JSON'\n" + json.dumps(c, indent=1) + "\nJSON\n")
PY
  rm -f config.json)
  SKIFF_E2E_EXTRA_BIN=$(command -v runc)
  export SKIFF_E2E_EXTRA_BIN
else
  echo "cli-guest-bench: no runc on this machine (Debian: apt-get install runc): skiff's figures only"
fi
bash "$here/../tests/fixtures/debian-kernel.sh" "$build/fixtures/debian-kernel" >/dev/null
export SKIFF=$build/skiff GUEST_DIR=$build/guest-kernel DEBIAN_KERNEL_DIR=$build/fixtures/debian-kernel
export SKIFF_E2E_TOOLS="$build/bench/skiff_bench_control" SKIFF_E2E_EXTRA_CASES=$cases
outer=$here/../tests/e2e/outer-vm
trap '"$outer" stop "$state" >/dev/null; rm -rf "$cases"' EXIT
"$outer" start "$state"
"$outer" run "$state" cli_guest 900 || echo "cli-guest-bench: could not run here (status $?)"
