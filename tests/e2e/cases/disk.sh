# virtio-blk end to end: the guest sees the image as /dev/vda with its size,
# reads what the host wrote there, and its write reaches the host file.
. "$(dirname "$0")/_common.sh"
img=$WORK/disk.img
dd if=/dev/zero of="$img" bs=1024 count=8192 2>/dev/null
yes skiff-e2e | head -c 512 | dd of="$img" conv=notrunc 2>/dev/null
boot --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "console=ttyS0 quiet skiff.action=disktest" --disk "$img"
expect_status 0
expect_console "skiff-agent: disk vda sectors=16384 ro=0"
# FNV-1a of 512 bytes of "skiff-e2e\n" repeated, as the guest computes it.
expect_console "skiff-agent: disktest: sector0 fnv1a=c8451237"
expect_console "skiff-agent: disktest: sector1 written"
[ "$(dd if="$img" bs=512 skip=1 count=1 2>/dev/null | head -c 21)" = "written by skiff-init" ] ||
  fail "the guest's write did not reach the image"

# Read-only: the guest sees ro=1, its write fails, the file stays as it was.
dd if=/dev/zero of="$img" bs=512 seek=1 count=1 conv=notrunc 2>/dev/null
boot --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "console=ttyS0 quiet skiff.action=disktest" --disk "$img,ro"
expect_status 0
expect_console "skiff-agent: disk vda sectors=16384 ro=1"
expect_console "skiff-agent: disktest: sector0 fnv1a=c8451237"
expect_console "skiff-agent: disktest: sector1 not written: read-only disk"
[ "$(dd if="$img" bs=512 skip=1 count=1 2>/dev/null | tr -d '\0' | wc -c)" = 0 ] || fail "a read-only disk was written"
echo "virtio-blk: read, write and read-only checked through the guest"
