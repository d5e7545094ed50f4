# Shared by the full-system benchmarks (agent-guest-bench.sh,
# cli-guest-bench.sh): one bench case (bench/cases/CASE.sh) in an outer VM of
# its own, with runc and a runc spec beside it where this machine has runc.
#   guest_bench BUILD_DIR CASE ARGS_JSON TOOL...
# ARGS_JSON is the process.args runc's bundle runs (the case compares it
# with Skiff's run of the same thing); the TOOLs go into the outer VM's /bin.
# Prints figures; never fails a test run.
guest_bench() {
  local here build=$1 case=$2 args=$3
  shift 3
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  # A state dir of its own: the e2e suite's outer VM (build/e2e-state) may be
  # running beside this one.
  local state=$build/bench-${case//_/-}-state
  local cases
  cases=$(mktemp -d)
  # shellcheck disable=SC2064  # the paths are fixed now
  trap "rm -rf '$cases'" EXIT
  cp "$here/cases/$case.sh" "$cases/"
  if command -v runc >/dev/null; then
    # runc's own spec, made to match the agent's container: no terminal, the
    # rootfs writable, pid/ipc/uts/mount namespaces (the agent's containers
    # share the sandbox's network namespace).
    (cd "$cases" && runc spec && ARGS=$args CASE=$case python3 - <<'PY'
import json, os
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = json.loads(os.environ["ARGS"])
c["root"] = {"path": "rootfs", "readonly": False}
c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
# outer-vm carries only .sh files into the outer VM: the spec goes as one.
with open("_%s_runc.sh" % os.environ["CASE"], "w") as f:
    f.write("cat <<'JSON'\n" + json.dumps(c, indent=1) + "\nJSON\n")
PY
    rm -f config.json)
    SKIFF_E2E_EXTRA_BIN=$(command -v runc)
    export SKIFF_E2E_EXTRA_BIN
  else
    echo "$case: no runc on this machine (Debian: apt-get install runc): Skiff's figures only"
  fi
  bash "$here/../tests/fixtures/debian-kernel.sh" "$build/fixtures/debian-kernel" >/dev/null
  export SKIFF=$build/skiff GUEST_DIR=$build/guest-kernel DEBIAN_KERNEL_DIR=$build/fixtures/debian-kernel
  export SKIFF_E2E_TOOLS="$*" SKIFF_E2E_EXTRA_CASES=$cases
  local outer=$here/../tests/e2e/outer-vm
  # shellcheck disable=SC2064
  trap "'$outer' stop '$state' >/dev/null; rm -rf '$cases'" EXIT
  "$outer" start "$state"
  "$outer" run "$state" "$case" 900 || echo "$case: could not run here (status $?)"
}
