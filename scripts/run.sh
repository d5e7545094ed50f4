#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs Skiff's main job on its
# embedded defaults: one container, `skiff run` of runc's default config.json
# (`skiff spec`) on a busybox rootfs, in a microVM booted from the guest
# kernel and initramfs built here (scripts/demo/container.sh); its output is
# shown and its exit status is ours. On hardware KVM it runs right here. Where /dev/kvm is PVM (a software KVM
# that can't boot Linux in useful time) it runs inside the outer VM of the
# full-system tier (QEMU with an emulated AMD-V CPU and nested KVM).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -e /sys/module/kvm_intel ] || [ -e /sys/module/kvm_amd ]; then
  if [ ! -e /sys/module/kvm_pvm ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    SKIFF=$PWD/build/skiff WORK=$work sh scripts/demo/container.sh
    exit
  fi
fi
echo "run: /dev/kvm here is not hardware KVM: booting inside the nested outer VM (about a minute)"
bash tests/fixtures/debian-kernel.sh build/fixtures/debian-kernel >/dev/null
state=build/run-state
export SKIFF=$PWD/build/skiff GUEST_DIR=$PWD/build/guest-kernel DEBIAN_KERNEL_DIR=$PWD/build/fixtures/debian-kernel
export SKIFF_E2E_EXTRA_CASES=$PWD/scripts/demo
tests/e2e/outer-vm start "$state"
trap 'tests/e2e/outer-vm stop "$state" >/dev/null' EXIT
tests/e2e/outer-vm run "$state" container 600
