# Time from spawning the VMM to the guest's first userspace line on the
# serial console (skiff-init prints it first thing), for Skiff and for QEMU
# microvm booting the same kernel and initramfs on the same KVM. Runs where
# the full-system tier runs (hardware KVM, or the nested outer VM).
runs=${RUNS:-5}
text="skiff-agent: userspace reached"
cmdline="console=ttyS0 quiet"

median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "n/a"}'; }

measure() {
  label=$1; shift
  vals=""
  i=0
  while [ "$i" -lt "$runs" ]; do
    v=$(boot_timer 120 "$text" "$@" 2>/dev/null) || v=fail
    vals="$vals $v"
    i=$((i + 1))
  done
  m=$(echo "$vals" | median)
  printf '%-34s median %8s ms   runs:%s\n' "$label" "$m" "$vals" >&2
  echo "$m"
}

echo "boot to userspace, $runs runs each, 1 vCPU, 128 MiB, cmdline \"$cmdline\"" >&2
echo "kvm: $(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null | sed 's/^/kvm_amd nested=/')$(grep -m1 -o -E 'vmx|svm' /proc/cpuinfo)" >&2
s_pvh=$(measure "skiff, vmlinux (PVH)" "$SKIFF" boot --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "$cmdline" --console stdio -q)
s_bz=$(measure "skiff, bzImage" "$SKIFF" boot --kernel "$BZIMAGE" --initrd "$INITRD" --cmdline "$cmdline" --console stdio -q)
if command -v qemu-system-x86_64 >/dev/null; then
  q_pvh=$(measure "qemu microvm, vmlinux (PVH)" qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off -accel kvm -cpu host \
    -m 128 -smp 1 -nodefaults -no-user-config -display none -monitor none -serial stdio \
    -kernel "$VMLINUX" -initrd "$INITRD" -append "$cmdline")
  q_bz=$(measure "qemu microvm, bzImage" qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off -accel kvm -cpu host \
    -m 128 -smp 1 -nodefaults -no-user-config -display none -monitor none -serial stdio \
    -kernel "$BZIMAGE" -initrd "$INITRD" -append "$cmdline")
  awk -v s="$s_pvh" -v q="$q_pvh" 'BEGIN { if (s > 0 && q > 0) printf "ratio qemu/skiff, vmlinux (PVH): %.2fx (target >= 2x)\n", q / s }' >&2
  awk -v s="$s_bz" -v q="$q_bz" 'BEGIN { if (s > 0 && q > 0) printf "ratio qemu/skiff, bzImage:      %.2fx\n", q / s }' >&2
else
  echo "qemu-system-x86_64 not here: peer skipped" >&2
fi
