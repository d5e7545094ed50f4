#!/usr/bin/env bash
# Boot-to-userspace benchmark: Skiff beside QEMU microvm, same kernel and
# initramfs, same KVM (hardware KVM here, or the nested outer VM of the
# full-system tier). Prints figures; never fails a test run.
# Usage: boot-bench.sh BUILD_DIR [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: boot-bench.sh BUILD_DIR [RUNS]}" && pwd)
state=$build/bench-boot-state
gcc -static -O2 -Wall -Wextra -Werror -o "$build/boot_timer" "$here/boot_timer.c"
bash "$here/../tests/fixtures/debian-kernel.sh" "$build/fixtures/debian-kernel" >/dev/null
export SKIFF=$build/skiff GUEST_DIR=$build/guest-kernel DEBIAN_KERNEL_DIR=$build/fixtures/debian-kernel
export SKIFF_E2E_WITH_QEMU=1 SKIFF_E2E_EXTRA_BIN=$build/boot_timer SKIFF_E2E_EXTRA_CASES=$here/cases
outer=$here/../tests/e2e/outer-vm
export SKIFF_E2E_CASE_ENV="RUNS=${2:-5}"
"$outer" start "$state"
trap '"$outer" stop "$state" >/dev/null' EXIT
"$outer" run "$state" boot_to_userspace 1200 || echo "boot-bench: could not run here (status $?)"
