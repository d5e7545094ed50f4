# Runs one container with `skiff run` on runc's default config.json (`skiff
# spec`) over a busybox-static rootfs made here: its output is shown, its
# exit status is ours. scripts/run.sh runs it on hardware KVM directly, or
# inside the outer VM (POSIX sh: busybox runs it there). $SKIFF and $WORK set.
set -e
bundle=$WORK/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" "$bundle/rootfs/tmp"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in sh echo cat ls uname hostname id grep head; do ln -sf busybox "$bundle/rootfs/bin/$applet"; done
cd "$bundle"
"$SKIFF" spec
# runc's default runs `sh` on a terminal; here, a script on plain stdio.
sed -i 's/"terminal": true/"terminal": false/;
        s/^\(      \)"sh"$/\1"sh", "-c", "echo Hello from a container in a Skiff microVM; echo kernel: $(uname -r), hostname: $(hostname), $(id); echo cgroup: $(cat \/proc\/self\/cgroup); ls \/"/' config.json
echo "demo: skiff run on $bundle (runc's default config.json, busybox rootfs)"
status=0
"$SKIFF" --root "$WORK/root" run --bundle "$bundle" demo < /dev/null || status=$?
echo "demo: the container exited with $status"
exit $status
