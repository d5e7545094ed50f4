#!/usr/bin/env bash
# The guest agent's figures in the full-system tier, beside runc on the same
# machine (bench/cases/agent_guest.sh): on hardware KVM directly, otherwise in
# the nested outer VM. Prints figures; never fails a test run.
# Usage: agent-guest-bench.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: agent-guest-bench.sh BUILD_DIR}" && pwd)
state=$build/bench-agent-guest-state
cases=$(mktemp -d)
trap 'rm -rf "$cases"' EXIT
cp "$here/cases/agent_guest.sh" "$cases/"
if command -v runc >/dev/null; then
  # runc's own spec, made to match the agent's container: `sh -c "echo x"`
  # without a terminal, the rootfs writable, pid/ipc/uts/mount namespaces
  # (the agent's containers share the sandbox's network namespace).
  (cd "$cases" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo x"]
c["root"] = {"path": "rootfs", "readonly": False}
c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
# outer-vm carries only .sh files into the outer VM: the spec goes as one.
with open("_agent_guest_runc.sh", "w") as f:
    f.write("cat <<'JSON'\n" + json.dumps(c, indent=1) + "\nJSON\n")
PY
  rm -f config.json)
  export SKIFF_E2E_EXTRA_BIN=$(command -v runc)
else
  echo "agent-guest-bench: no runc on this machine (Debian: apt-get install runc): the agent's figures only"
fi
bash "$here/../tests/fixtures/debian-kernel.sh" "$build/fixtures/debian-kernel" >/dev/null
export SKIFF=$build/skiff GUEST_DIR=$build/guest-kernel DEBIAN_KERNEL_DIR=$build/fixtures/debian-kernel
export SKIFF_E2E_TOOLS="$build/tests/e2e/agent_probe $build/tests/e2e/vsock_peer" SKIFF_E2E_EXTRA_CASES=$cases
outer=$here/../tests/e2e/outer-vm
"$outer" start "$state"
trap '"$outer" stop "$state" >/dev/null; rm -rf "$cases"' EXIT
"$outer" run "$state" agent_guest 900 || echo "agent-guest-bench: could not run here (status $?)"
