# Shared by the e2e cases (POSIX sh: they run under busybox in the outer VM).
# $SKIFF, $VMLINUX, $BZIMAGE, $INITRD and $WORK (an empty directory) are set.

# Inside a VM (the nested tier's outer VM under QEMU TCG), prints a taskset
# prefix that keeps a VMM's threads on one of its CPUs; elsewhere nothing.
# Unpinned there, a heavy virtio-fs workload breaks the guest (triple faults,
# page walks through a CR3 past guest RAM) or wedges the outer VM itself;
# pinned, every run completes. bench/README.md has the record.
vm_pin() {
  grep -q '^flags.* hypervisor' /proc/cpuinfo && [ "$(nproc)" -gt 1 ] && command -v taskset >/dev/null &&
    echo "taskset -c 1"
  return 0
}

# Boots a VM; the console goes to $WORK/console.txt, logs to $WORK/log.jsonl,
# stderr to $WORK/stderr.txt, the exit status to $STATUS. $BOOT_PIN, when
# set, prefixes the command (vm_pin).
# A boot that hangs is killed (after $BOOT_SECONDS), so the case fails with
# the console instead of holding the outer VM's command loop. Inside a VM
# (the nested tier) a hung boot is killed after 60 s and booted once more,
# said in the output: QEMU's emulated SVM now and then stalls a nested
# multi-vCPU guest for good (an RCU stall on one vCPU in CI, with a48c175's
# binaries too); with hardware KVM there is one try.
boot() {
  boot_tries=1 boot_seconds=${BOOT_SECONDS:-120}
  if grep -q '^flags.* hypervisor' /proc/cpuinfo; then boot_tries=2 boot_seconds=${BOOT_SECONDS:-60}; fi
  boot_try=1
  while :; do
    STATUS=0
    rm -f "$WORK/console.txt" "$WORK/log.jsonl"  # skiff appends to both
    timeout -s KILL "$boot_seconds" ${BOOT_PIN:-} "$SKIFF" boot --console "$WORK/console.txt" --log "$WORK/log.jsonl" "$@" \
      2>"$WORK/stderr.txt" || STATUS=$?
    [ "$STATUS" = 137 ] && [ "$boot_try" -lt "$boot_tries" ] || break
    echo "boot try $boot_try hung in the nested tier (console ends: $(tail -c 100 "$WORK/console.txt" 2>/dev/null | tr -d '\n')); booting again"
    boot_try=$((boot_try + 1))
  done
  [ "$STATUS" != 137 ] || echo "skiff boot killed after $boot_seconds s" >> "$WORK/stderr.txt"
}

fail() {
  echo "FAIL: $*"
  echo "--- skiff stderr"; cat "$WORK/stderr.txt" 2>/dev/null
  echo "--- console (last 40 lines)"; tail -n 40 "$WORK/console.txt" 2>/dev/null
  exit 1
}

expect_status() { [ "$STATUS" = "$1" ] || fail "skiff boot exited with $STATUS, expected $1"; }
expect_console() { grep -q -- "$1" "$WORK/console.txt" || fail "console lacks: $1"; }
expect_stderr() { grep -q -- "$1" "$WORK/stderr.txt" || fail "stderr lacks: $1"; }
expect_log() { grep -q -- "$1" "$WORK/log.jsonl" || fail "log lacks: $1"; }

# Prints the guest's own timing from the log, for the test output.
report_userspace_ms() {
  ms=$(grep -o '"msg":"guest userspace reached","ms":[0-9.]*' "$WORK/log.jsonl" | sed 's/.*"ms"://')
  echo "guest userspace reached after ${ms:-?} ms (skiff boot $*)"
}

# The guest agent as PID 1 (skiff.action=agent) of a VM with a virtio-fs
# share holding a busybox rootfs and a vsock device (and $AGENT_BOOT_ARGS),
# driven by agent_probe
# (tools/agent_probe.cc) over the vsock device's Unix socket: Sandbox.setup
# (mounts the share), the steps given, then powerOff. Fails the case unless
# every check passes, the VM ends with status 0 and the console has the
# agent's JSON log lines.
agent_case() {
  BOOT_PIN=$(vm_pin)
  [ -z "$BOOT_PIN" ] || echo "skiff boot runs under '$BOOT_PIN' (inside a VM: see vm_pin)"
  share=$WORK/share
  mkdir -p "$share/rootfs/bin" "$share/rootfs/proc" "$share/rootfs/tmp"
  cp /bin/busybox "$share/rootfs/bin/busybox"  # static: busybox-static here and in the outer VM
  for applet in sh echo cat ls grep hostname sleep stty true; do ln -s busybox "$share/rootfs/bin/$applet"; done
  sock=$WORK/v.sock
  # shellcheck disable=SC2086  # AGENT_BOOT_ARGS: more skiff boot arguments, as words
  ( boot --cmdline "console=ttyS0 quiet skiff.action=agent" --share "$share,tag=share" --vsock "3,socket=$sock" ${AGENT_BOOT_ARGS:-}
    echo "$STATUS" > "$WORK/status" ) &
  boot_pid=$!
  # The socket appears once skiff has set the VM up.
  i=0
  while [ ! -S "$sock" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
  probe_status=0
  ${BOOT_PIN:-} agent_probe "$sock" 1024 setup "$@" poweroff > "$WORK/probe.txt" 2>&1 || probe_status=$?
  cat "$WORK/probe.txt"
  wait $boot_pid
  STATUS=$(cat "$WORK/status")
  [ "$probe_status" = 0 ] || fail "agent_probe exited with $probe_status"
  expect_status 0
  expect_console "skiff-agent: action=agent"
  expect_console '"component":"agent","msg":"agent listening","vsock_port":"1024"'
  expect_console '"msg":"sandbox set up","sandbox":"e2e-sandbox","hostname":"skiff-e2e"'
  expect_console '"msg":"powering off, as told"'
}
