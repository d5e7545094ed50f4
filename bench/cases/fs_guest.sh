# Guest-side virtio-fs figures: the same kernel and initramfs (skiff-init's
# fsbench action) reading and writing a shared directory served by Skiff in
# process, then by QEMU microvm + Debian's virtiofsd (vhost-user), on the same
# KVM. Runs where the full-system tier runs (hardware KVM, or the nested
# outer VM); bench/fs-guest-bench.sh starts it. Prints figures, never fails.
runs=${RUNS:-3}
big_mib=${BIG_MIB:-64}
cmdline="console=ttyS0 quiet skiff.action=fsbench skiff.fstag=bench"
share=$WORK/share
mkdir -p "$share"
dd if=/dev/zero of="$share/big.bin" bs=1048576 count="$big_mib" 2>/dev/null
figures="seq_read rand_read_4k create unlink"
# Inside a VM both VMMs run pinned to one of its CPUs (vm_pin, _common.sh).
. "$(dirname "$0")/_common.sh"
pin=$(vm_pin)

median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "n/a"}'; }
# value FIGURE CONSOLE: the number on the guest's "fsbench: FIGURE" line.
value() { tr -d '\r' < "$2" | awk -v f="$1" '$2 == "fsbench:" && $3 == f {print $4}' | tail -n 1; }
note() { tr -d '\r' < "$1" | grep -o 'rand_read_4k [0-9.]* ops/s ([a-z_]*' | sed 's/.*(//' | tail -n 1; }

# Waits for PID to exit or for the guest's last figure on CONSOLE, up to
# SECONDS; then ends PID (QEMU microvm may not power off on its own).
wait_guest() {
  pid=$1 con=$2 t=0
  while kill -0 "$pid" 2>/dev/null && [ "$t" -lt "$3" ]; do
    grep -q -a "fsbench: umount\|fsbench: unlink\|fsbench: mount\|fsbench: open" "$con" 2>/dev/null && { sleep 1; break; }
    sleep 0.2
    t=$((t + 1))
  done
  stop_pid "$pid"
}
# TERM, then KILL a second later: never wait on a process that ignores TERM.
stop_pid() {
  kill "$1" 2>/dev/null
  for _ in 1 2 3 4 5; do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

run_skiff() {
  con=$WORK/skiff.$1.txt
  timeout -s KILL 150 $pin "$SKIFF" boot --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "$cmdline" \
    --memory 128 --share "$share,tag=bench,cache=auto" --console "$con" --log "$WORK/skiff.log" 2>"$WORK/skiff.err" ||
    echo "skiff exit status $?" >> "$WORK/skiff.err"
  grep -q -a "fsbench: unlink" "$con" ||
    { echo "skiff run $1: incomplete (killed after 150 s?)"; tr -d '\r' < "$con" | tail -n 5; tail -n 5 "$WORK/skiff.err"; grep -a -i '"level":"\(warn\|error\)"' "$WORK/skiff.log" | tail -n 5; } >&2
}

virtiofsd=$(command -v virtiofsd || true)
[ -n "$virtiofsd" ] || [ ! -x /usr/lib/qemu/virtiofsd ] || virtiofsd=/usr/lib/qemu/virtiofsd
qemu_reason=""
command -v qemu-system-x86_64 >/dev/null || qemu_reason="qemu-system-x86_64 not here"
[ -n "$virtiofsd" ] || qemu_reason="${qemu_reason:+$qemu_reason; }virtiofsd not here"

run_qemu() {
  con=$WORK/qemu.$1.txt sock=$WORK/vfs.sock
  rm -f "$sock" "$con"
  mkdir -p /var/run/virtiofsd /run/virtiofsd 2>/dev/null
  # sandbox=chroot: the namespace sandbox pivot_roots, which the outer VM's
  # initramfs root does not allow.
  $pin "$virtiofsd" --socket-path="$sock" -o source="$share" -o cache=auto -o sandbox=chroot \
    >"$WORK/virtiofsd.log" 2>&1 &
  vpid=$!
  t=0
  while [ ! -S "$sock" ] && [ "$t" -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
  if [ ! -S "$sock" ]; then
    echo "virtiofsd did not start: $(tail -n 3 "$WORK/virtiofsd.log" | tr '\n' ' ')" >&2
    stop_pid "$vpid"
    return
  fi
  $pin qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,memory-backend=mem -accel kvm -cpu host \
    -m 128 -smp 1 -nodefaults -no-user-config -display none -monitor none -no-reboot \
    -global virtio-mmio.force-legacy=false -object memory-backend-memfd,id=mem,size=128M,share=on \
    -chardev socket,id=char0,path="$sock" -device vhost-user-fs-device,queue-size=1024,chardev=char0,tag=bench \
    -serial "file:$con" -kernel "$VMLINUX" -initrd "$INITRD" -append "$cmdline" \
    </dev/null >"$WORK/qemu.err" 2>&1 &
  wait_guest $! "$con" 400
  stop_pid "$vpid"
  grep -q -a "fsbench: seq_read" "$con" 2>/dev/null ||
    { echo "qemu run $1: no figures"; tail -n 5 "$con" 2>/dev/null; cat "$WORK/qemu.err"; tail -n 5 "$WORK/virtiofsd.log"; } >&2
}

# Skiff keeps a host fd per guest inode and the outer VM's shell starts with
# RLIMIT_NOFILE 1024 (creates stop near 1000); virtiofsd raises its own limit.
nofile=$(ulimit -n)
ulimit -n 65536 2>/dev/null || true
i=0
while [ "$i" -lt "$runs" ]; do
  run_skiff "$i"
  [ -n "$qemu_reason" ] || run_qemu "$i"
  rm -rf "$share/bench-create"
  i=$((i + 1))
done

echo "guest-side virtio-fs, $runs runs each (medians), 1 vCPU, 128 MiB, ${big_mib} MiB big.bin, cache=auto both"
echo "RLIMIT_NOFILE: $nofile raised to $(ulimit -n) for both VMMs; ${pin:+both pinned with '$pin' (inside a VM)}"
echo "kvm: $(grep -m1 -o -E 'vmx|svm' /proc/cpuinfo) $(grep -q hypervisor /proc/cpuinfo && echo '(nested: inside a VM)')"
[ -z "$qemu_reason" ] || echo "QEMU + virtiofsd skipped: $qemu_reason"
printf '%-14s %12s %16s %8s  %s\n' figure Skiff QEMU+virtiofsd ratio unit
for f in $figures; do
  s=$(i=0; while [ "$i" -lt "$runs" ]; do value "$f" "$WORK/skiff.$i.txt" 2>/dev/null; i=$((i + 1)); done | tr '\n' ' ' | median)
  q=n/a
  [ -n "$qemu_reason" ] || q=$(i=0; while [ "$i" -lt "$runs" ]; do value "$f" "$WORK/qemu.$i.txt" 2>/dev/null; i=$((i + 1)); done | tr '\n' ' ' | median)
  case $f in seq_read) unit=MiB/s ;; rand_read_4k) unit=ops/s ;; *) unit=files/s ;; esac
  ratio=$(awk -v s="$s" -v q="$q" 'BEGIN { if (s ~ /^[0-9.]+$/ && q ~ /^[0-9.]+$/ && s > 0 && q > 0) printf "%.2fx", s / q; else print "n/a" }')
  printf '%-14s %12s %16s %8s  %s\n' "$f" "$s" "$q" "$ratio" "$unit"
done
echo "ratio = Skiff / QEMU+virtiofsd (higher is better for Skiff); rand_read_4k mode: skiff $(note "$WORK/skiff.0.txt" 2>/dev/null), qemu $(note "$WORK/qemu.0.txt" 2>/dev/null)"
for i in 0; do
  echo "raw skiff run 0:"; tr -d '\r' < "$WORK/skiff.$i.txt" 2>/dev/null | grep -a "fsbench:" | sed 's/^/  /'
  [ -n "$qemu_reason" ] || { echo "raw qemu run 0:"; tr -d '\r' < "$WORK/qemu.$i.txt" 2>/dev/null | grep -a "fsbench:" | sed 's/^/  /'; }
done
exit 0
