# The guest agent's figures in the full-system tier: the agent as PID 1 of
# the built guest, reached over virtio-vsock through Skiff's in-process
# device (agent_probe bench: Sandbox.version round trip, create+start ->
# first output, -> exit), then runc on this machine (the outer VM, or the
# host on hardware KVM) with the same busybox rootfs and namespaces, timed by
# the same program; --no-pivot, as the agent in its initramfs (and the outer
# VM's root is an initramfs too). bench/agent-guest-bench.sh starts it. Prints figures,
# never fails a test run.
. "$(dirname "$0")/_common.sh"
agent_case bench
if ! command -v runc >/dev/null; then
  echo "agent-guest-bench: no runc here: the agent's figures only"
  exit 0
fi
[ -e /sys/fs/cgroup/cgroup.controllers ] || mount -t cgroup2 none /sys/fs/cgroup
bundle=$WORK/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/tmp"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in sh echo; do ln -s busybox "$bundle/rootfs/bin/$applet"; done
sh "$(dirname "$0")/_agent_guest_runc.sh" > "$bundle/config.json"
${BOOT_PIN:-} agent_probe time-command 10 runc --root "$WORK/runc-state" run --no-pivot --bundle "$bundle" "bench{i}" ||
  echo "agent-guest-bench: runc did not run here"
