# The guest sees the vCPUs and the memory it was given.
. "$(dirname "$0")/_common.sh"
# Pinned inside a VM, as e2e.fs (see vm_pin): unpinned, a 4-vCPU guest under
# QEMU's emulated SVM now and then dies of a triple fault on an AP early in
# boot (CI, 2026-12-08: "vCPU 2: CPU shutdown"); hardware KVM runs unpinned.
BOOT_PIN=$(vm_pin)
[ -z "$BOOT_PIN" ] || echo "skiff boot runs under '$BOOT_PIN' (inside a VM: see vm_pin)"
for n in 1 2 4; do
  boot --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "console=ttyS0 quiet" --vcpus "$n" --memory 256
  expect_status 0
  expect_console "skiff-agent: cpus=$n "
  kib=$(sed -n 's/.*mem_total_kib=\([0-9]*\).*/\1/p' "$WORK/console.txt")
  # MemTotal is RAM less what the kernel keeps for itself: between 200 and 256 MiB.
  [ -n "$kib" ] && [ "$kib" -gt 204800 ] && [ "$kib" -le 262144 ] || fail "MemTotal $kib KiB for --memory 256"
  echo "vcpus=$n: guest saw cpus=$n, MemTotal ${kib} KiB"
done
