# Memory resize of a running sandbox through its virtio-mem device
# (hypervisor.default_maxmemory_mib): `skiffctl resize --memory` up, and
# the guest's MemTotal seen from the container grows by exactly what was
# plugged; down again, and the guest gives all of it back (the plugged
# memory is in ZONE_MOVABLE); sizes out of range or off the 2 MiB blocks
# are refused in one line.
# e2e-limit: 240
. "$(dirname "$0")/_common.sh"
. "$(dirname "$0")/_cli.sh"
# The guest kernel's messages in console.log (debug_console): virtio_mem's
# lines say what the driver saw, for when this fails.
cat > "$WORK/config.toml" <<EOF
[hypervisor]
default_memory_mib = 256
default_maxmemory_mib = 768
[agent]
debug_console = true
EOF
skm() { ${PIN:-} "$SKIFF" --root "$ROOT" --config "$WORK/config.toml" "$@"; }
memtotal() {  # the guest's MemTotal in KiB, as the container reads it
  ctl exec box box -- grep MemTotal /proc/meminfo < /dev/null | sed 's/[^0-9]//g'
}
resize() {  # MIB: skiffctl resize's status in $RST, the MiB it answered in $GOT
  RST=0
  t0=$(date +%s)
  ctl resize box --memory "$1" > "$WORK/resize.txt" 2> "$WORK/resize_err.txt" < /dev/null || RST=$?
  GOT=$(sed -n 's/^box: \([0-9]*\) MiB of memory$/\1/p' "$WORK/resize.txt")
  echo "resize to $1 MiB: status $RST, answered ${GOT:-nothing} MiB after $(($(date +%s) - t0)) s $(cat "$WORK/resize_err.txt")"
  [ -n "$GOT" ] || cli_fail "resize to $1 answered no size: $(cat "$WORK/resize.txt" "$WORK/resize_err.txt")"
}

make_bundle box 'echo started; while :; do sleep 0.2; done'
skm create --bundle "$WORK/box" box > "$WORK/out.txt" 2> "$WORK/err.txt" < /dev/null || cli_fail "create failed"
skm start box || cli_fail "start failed"
i=0; while ! grep -q started "$WORK/out.txt" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q started "$WORK/out.txt" || cli_fail "the container's output never came"

ctl status box > "$WORK/status.txt" || cli_fail "status failed"
grep -q '"memoryMib": 256' "$WORK/status.txt" || cli_fail "status: $(cat "$WORK/status.txt")"
grep -q '"maxMemoryMib": 768' "$WORK/status.txt" || cli_fail "status lacks the maximum: $(cat "$WORK/status.txt")"
grep -q 'virtio_mem' "$ROOT/box/console.log" || cli_fail "the guest found no virtio-mem device"
boot_kib=$(memtotal)
[ -n "$boot_kib" ] && [ "$boot_kib" -gt 0 ] || cli_fail "no MemTotal from the container"

# Up by 256 MiB (two of Linux's 128 MiB memory blocks): answered once the
# guest has it online, so MemTotal has grown by all of it already.
resize 512
[ "$RST" = 0 ] && [ "$GOT" = 512 ] || cli_fail "resize to 512"
up_kib=$(memtotal)
echo "MemTotal: $boot_kib KiB at boot, $up_kib KiB at 512 MiB"
[ "$((up_kib - boot_kib))" = $((256 * 1024)) ] || cli_fail "MemTotal grew by $((up_kib - boot_kib)) KiB, not 262144"
ctl status box | grep -q '"memoryMib": 512' || cli_fail "status does not say 512 MiB"

# Down again: the plugged memory is in ZONE_MOVABLE (the sandbox boots the
# guest with the auto-movable policy), so an idle guest gives all of it back.
resize 256
[ "$RST" = 0 ] && [ "$GOT" = 256 ] || cli_fail "resize to 256: status $RST with $GOT MiB"
down_kib=$(memtotal)
echo "MemTotal: $down_kib KiB at $GOT MiB"
[ "$down_kib" -lt "$up_kib" ] || cli_fail "MemTotal did not shrink: $down_kib KiB"
[ "$((down_kib - boot_kib))" = $(((GOT - 256) * 1024)) ] ||
  cli_fail "MemTotal is $((down_kib - boot_kib)) KiB above boot, the guest has $((GOT - 256)) MiB plugged"
ctl status box | grep -q "\"memoryMib\": $GOT" || cli_fail "status does not say $GOT MiB"

# Wrong sizes: one line naming the bounds, status 1; no size: usage, 2.
expect_error 1 '1024 MiB of memory: this sandbox was booted for 256 to 768 MiB' resize box --memory 1024
expect_error 1 '128 MiB of memory: this sandbox was booted for 256 to 768 MiB' resize box --memory 128
expect_error 1 'must be a multiple of 2 MiB' resize box --memory 257
expect_error 2 'error' resize box

grep 'virtio_mem' "$ROOT/box/console.log" | tail -n 4
ctl kill box box KILL || cli_fail "kill failed"
i=0; while ! ctl status box box | grep -q '"status": "stopped"' && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
skm delete box || cli_fail "delete failed"
left=$(leftovers box); [ -z "$left" ] || cli_fail "left behind: $left"
echo "ctl_memory_resize: 256 -> 512 MiB (MemTotal +256 MiB) -> $GOT MiB asked 256, bad sizes refused"
