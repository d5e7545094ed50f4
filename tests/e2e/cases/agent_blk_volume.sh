# The agent: Sandbox.setup mounts a block device (an ext4 image made here
# with e2fsprogs' mke2fs) for the sandbox; a
# container gets it through a bind mount and writes a file, which the host
# then finds in the image.
. "$(dirname "$0")/_common.sh"
img=$WORK/vol.img
dd if=/dev/zero of="$img" bs=1024 count=8192 2>/dev/null
# e2fsprogs' mke2fs by path: busybox's shell would run its own applet of that
# name first (the outer VM has ours in /bin, a host in /sbin).
for mke2fs in /bin/mke2fs /sbin/mke2fs /usr/sbin/mke2fs; do [ -x "$mke2fs" ] && break; done
"$mke2fs" -q -F -t ext4 "$img" 2>"$WORK/mke2fs.txt" || fail "mke2fs: $(cat "$WORK/mke2fs.txt")"
AGENT_BOOT_ARGS="--disk $img" agent_case blk_volume
grep -q -a "written by a container" "$img" || fail "the container's file is not in the image"
echo "agent: a block volume mounted by Sandbox.setup, written by a container, checked from the host"
