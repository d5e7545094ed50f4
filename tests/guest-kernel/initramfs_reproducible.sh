#!/usr/bin/env bash
# The initramfs builder is reproducible: two builds give the same bytes, and
# the archive holds /init, busybox and the console node.
set -euo pipefail
builder=${1:?usage: initramfs_reproducible.sh BUILD_INITRAMFS_SH INIT_BINARY}
init=${2:?usage: initramfs_reproducible.sh BUILD_INITRAMFS_SH INIT_BINARY}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash "$builder" "$work/a.cpio.gz" "$init" >/dev/null
sleep 1  # a later clock must not change the bytes
bash "$builder" "$work/b.cpio.gz" "$init" >/dev/null
cmp "$work/a.cpio.gz" "$work/b.cpio.gz" || { echo "FAIL: two builds differ"; exit 1; }
listing=$(zcat "$work/a.cpio.gz" | cpio -itv 2>/dev/null)
for want in ' init$' ' bin/busybox$' ' bin/sh -> busybox$' '^crw------- .* dev/console$'; do
  grep -qE "$want" <<<"$listing" || { echo "FAIL: archive lacks $want"; exit 1; }
done
grep -qv ' root     root ' <<<"$(grep -v '^$' <<<"$listing")" && { echo "FAIL: an entry is not owned by root"; exit 1; }
echo "initramfs: reproducible ($(stat -c %s "$work/a.cpio.gz") bytes), init, busybox and /dev/console present"
