# virtio-fs end to end: the guest's Linux virtiofs driver mounts a host
# directory served by Skiff in process (no virtiofsd) and runs a small file
# workload; the host checks every result in the directory itself. Then the
# same share read-only: the guest's writes fail, the directory is untouched.
. "$(dirname "$0")/_common.sh"
BOOT_PIN=$(vm_pin)
[ -z "$BOOT_PIN" ] || echo "skiff boot runs under '$BOOT_PIN' (inside a VM: see vm_pin)"
share=$WORK/share
mkdir -p "$share/many"
echo "hello from the host" > "$share/input.txt"
echo "to be deleted" > "$share/delete-me"
i=0
while [ $i -lt 300 ]; do : > "$share/many/f$i"; i=$((i + 1)); done
echo "outside the share" > "$WORK/canary"

# A soft open-file limit below what the guest holds (300 looked-up entries
# in many/, each a host fd): skiff raises it to the hard limit itself.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -gt 1024 ] || fail "hard open-file limit $hard too low for this case"
( ulimit -Sn 256; boot --cmdline "console=ttyS0 quiet skiff.action=fstest skiff.fstag=myshare" --share "$share,tag=myshare"
  echo "$STATUS" > "$WORK/status" )
STATUS=$(cat "$WORK/status")
expect_status 0
expect_console "skiff-agent: fstest: mounted myshare"
expect_console "skiff-agent: fstest: input: hello from the host"
expect_console "skiff-agent: fstest: rename symlink link chmod: ok"
expect_console "skiff-agent: fstest: unlink: ok"
expect_console "skiff-agent: fstest: readdir many: 300 entries"
[ "$(cat "$share/out/renamed.txt")" = "written by the guest" ] || fail "the guest's file is not on the host"
[ ! -e "$share/out/guest.txt" ] || fail "the renamed file is still there under its old name"
[ "$(readlink "$share/out/link")" = "renamed.txt" ] || fail "the guest's symlink is wrong on the host"
[ "$(stat -c %h "$share/out/hard")" = 2 ] || fail "the hard link count is not 2"
[ "$(stat -c %a "$share/out/renamed.txt")" = 600 ] || fail "chmod did not reach the host"
[ "$(md5sum < "$share/out/big.bin" | cut -d' ' -f1)" = 14f8efaad7c592c95b222e066395b72b ] || fail "big.bin differs on the host"
expect_console "skiff-agent: fstest: big read 1048576 bytes fnv1a=22d79dc5"
[ ! -e "$share/delete-me" ] || fail "the guest's unlink did not reach the host"
[ "$(cat "$WORK/canary")" = "outside the share" ] || fail "a file outside the share changed"

# Read-only: nothing the guest does changes the directory (the workload
# starts over: out/ gone, delete-me back).
rm -rf "$share/out"
echo "to be deleted" > "$share/delete-me"
before=$(ls -lR "$share" | md5sum)
boot --cmdline "console=ttyS0 quiet skiff.action=fstest skiff.fstag=ro" --share "$share,tag=ro,ro"
expect_status 0
expect_console "skiff-agent: fstest: input: hello from the host"
expect_console "skiff-agent: fstest: mkdir: Read-only file system"
expect_console "skiff-agent: fstest: unlink: Read-only file system"
[ "$(ls -lR "$share" | md5sum)" = "$before" ] || fail "a read-only share was changed"

# DAX: file data through the shared memory window (the guest maps 2 MiB
# ranges of the host files with SETUPMAPPING), including a MAP_SHARED write.
rm -rf "$share/out"
echo "to be deleted" > "$share/delete-me"
boot --cmdline "console=ttyS0 quiet skiff.action=fstest skiff.fstag=dax skiff.fsdax=1" --share "$share,tag=dax,dax=64"
expect_status 0
expect_console "skiff-agent: fstest: mounted dax with dax=always"
expect_console "skiff-agent: fstest: input: hello from the host"
expect_console "skiff-agent: fstest: rename symlink link chmod: ok"
expect_console "skiff-agent: fstest: big read 1048576 bytes fnv1a=22d79dc5"
expect_console "skiff-agent: fstest: big.bin dax attribute: 1"
expect_console "skiff-agent: fstest: mmap write: ok"
[ "$(md5sum < "$share/out/big.bin" | cut -d' ' -f1)" = 14f8efaad7c592c95b222e066395b72b ] || fail "big.bin differs on the host (DAX)"
[ "$(dd if="$share/out/mapped.bin" bs=4096 skip=1 count=1 2>/dev/null | tr -d '\0')" = "through a shared mapping" ] ||
  fail "the guest's write through a shared mapping is not in the host file"
grep -q "DAX window" "$WORK/log.jsonl" || fail "no DAX window in the log"
echo "virtio-fs: mount, read, write, rename, links, chmod, 1 MiB, unlink, readdir, read-only and DAX checked through the guest"
