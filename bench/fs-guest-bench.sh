#!/usr/bin/env bash
# Guest-side virtio-fs benchmark: Skiff (in-process virtio-fs) beside QEMU
# microvm + Debian's virtiofsd (/usr/lib/qemu/virtiofsd, vhost-user), same
# kernel, initramfs and KVM (hardware KVM here, or the nested outer VM of the
# full-system tier). Prints figures; never fails a test run.
# Usage: fs-guest-bench.sh BUILD_DIR [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: fs-guest-bench.sh BUILD_DIR [RUNS]}" && pwd)
state=$build/bench-fs-guest-state
bash "$here/../tests/fixtures/debian-kernel.sh" "$build/fixtures/debian-kernel" >/dev/null
export SKIFF=$build/skiff GUEST_DIR=$build/guest-kernel DEBIAN_KERNEL_DIR=$build/fixtures/debian-kernel
export SKIFF_E2E_WITH_QEMU=1 SKIFF_E2E_EXTRA_CASES=$here/cases
virtiofsd=${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
if [ -x "$virtiofsd" ]; then
  export SKIFF_E2E_EXTRA_BIN=$virtiofsd
else
  echo "fs-guest-bench: no virtiofsd at $virtiofsd (Debian: qemu-system-common); Skiff's figures only"
fi
outer=$here/../tests/e2e/outer-vm
export SKIFF_E2E_CASE_ENV="RUNS=${2:-3}"
"$outer" start "$state"
trap '"$outer" stop "$state" >/dev/null' EXIT
"$outer" run "$state" fs_guest 1800 || echo "fs-guest-bench: could not run here (status $?)"
