#!/usr/bin/env bash
# The guest agent's figures in the full-system tier, beside runc on the same
# machine (bench/cases/agent_guest.sh): on hardware KVM directly, otherwise in
# the nested outer VM. Prints figures; never fails a test run.
# Usage: agent-guest-bench.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: agent-guest-bench.sh BUILD_DIR}" && pwd)
. "$(dirname "$0")/guest-bench-lib.sh"
guest_bench "$build" agent_guest '["sh", "-c", "echo x"]' "$build/tests/e2e/agent_probe" "$build/tests/e2e/vsock_peer"
