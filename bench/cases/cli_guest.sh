# The control API's round trip and `skiff run` beside `runc run`, through the
# runc-compatible CLI on the machine that runs Skiff (the outer VM of the
# nested tier, or the host on hardware KVM). bench/cli-guest-bench.sh starts it.
#   1. `skiff run -d` of a sleeping busybox container; skiff_bench_control
#      times Sandbox.ping and Sandbox.info over its sandbox process's control
#      socket; `skiff delete -f`.
#   2. 10 `skiff run` and 10 `runc run --no-pivot` of one bundle (busybox
#      `true`, runc's own spec as cli-guest-bench.sh edits it), both timed by
#      skiff_bench_control time-run; --no-pivot as agent_guest.sh (the outer
#      VM's root is an initramfs).
# Everything runs under vm_pin's `taskset -c 1`, the timer too: its children
# (skiff, the sandbox process, runc) inherit the pin. Prints figures, never
# fails a test run on a figure.
. "$(dirname "$0")/_common.sh"
. "$(dirname "$0")/_cli.sh"
[ -z "$PIN" ] || echo "cli-guest-bench: skiff, runc and skiff_bench_control run under '$PIN' (inside a VM: see vm_pin)"
# runc needs cgroup2 mounted; skiff uses no cgroups on this side.
[ -e /sys/fs/cgroup/cgroup.controllers ] || mount -t cgroup2 none /sys/fs/cgroup

# 1. The control API round trip, against a sandbox that holds a container.
make_bundle sleeper 'sleep 1000'
sk run -d --bundle "$WORK/sleeper" sleeper > "$WORK/sleeper-out.txt" 2> "$WORK/sleeper-err.txt" < /dev/null ||
  cli_fail "skiff run -d of the sleeping container failed"
st=0
${PIN:-} skiff_bench_control "$ROOT/sleeper/control.sock" 2000 || st=$?
[ "$st" = 0 ] || echo "cli-guest-bench: skiff_bench_control failed (status $st)"
sk delete -f sleeper || cli_fail "skiff delete -f of the sleeping container failed"
left=$(leftovers sleeper)
[ -z "$left" ] || echo "cli-guest-bench: left behind by the sleeper: $left"

# 2. `skiff run` beside `runc run`: one bundle, the same timer.
runs=10
bundle=$WORK/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/tmp"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in sh true; do ln -s busybox "$bundle/rootfs/bin/$applet"; done
have_runc=0
if command -v runc >/dev/null && [ -f "$(dirname "$0")/_cli_guest_runc.sh" ]; then
  sh "$(dirname "$0")/_cli_guest_runc.sh" > "$bundle/config.json"
  have_runc=1
else
  echo "cli-guest-bench: no runc here: skiff's figures only (its bundle from make_bundle)"
  make_bundle bundle 'true'
fi
median_of() { sed -n 's/^time-run: median \([0-9.]*\) ms, p90 \([0-9.]*\) ms.*/\1/p' "$1"; }
p90_of() { sed -n 's/^time-run: median \([0-9.]*\) ms, p90 \([0-9.]*\) ms.*/\2/p' "$1"; }
st=0
${PIN:-} skiff_bench_control time-run $runs -- "$SKIFF" --root "$ROOT" run --bundle "$bundle" "true{i}" \
  > "$WORK/skiff-run.txt" || st=$?
cat "$WORK/skiff-run.txt"
[ "$st" = 0 ] || cli_fail "skiff run of busybox true failed (status $st)"
left=$(for i in $(seq 0 $((runs + 1))); do leftovers "true$i"; done)
[ -z "$left" ] || echo "cli-guest-bench: left behind by skiff run: $left"
s_med=$(median_of "$WORK/skiff-run.txt") s_p90=$(p90_of "$WORK/skiff-run.txt")
echo "cli-guest-bench: skiff run (busybox true): median $s_med ms, p90 $s_p90 ms"
[ "$have_runc" = 1 ] || exit 0
st=0
${PIN:-} skiff_bench_control time-run $runs -- runc --root "$WORK/runc-state" run --no-pivot --bundle "$bundle" "true{i}" \
  > "$WORK/runc-run.txt" || st=$?
cat "$WORK/runc-run.txt"
if [ "$st" != 0 ]; then
  echo "cli-guest-bench: runc did not run here (status $st)"
  exit 0
fi
r_med=$(median_of "$WORK/runc-run.txt") r_p90=$(p90_of "$WORK/runc-run.txt")
echo "cli-guest-bench: runc run --no-pivot (busybox true): median $r_med ms, p90 $r_p90 ms"
awk -v sm="$s_med" -v sp="$s_p90" -v rm="$r_med" -v rp="$r_p90" \
  'BEGIN { printf "cli-guest-bench: ratio skiff/runc: median %.1fx, p90 %.1fx\n", sm / rm, sp / rp }'
