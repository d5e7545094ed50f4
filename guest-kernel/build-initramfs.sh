#!/usr/bin/env bash
# Builds Skiff's initramfs: the guest agent (static, PID 1: agent/main.cc,
# stripped here) and Debian's busybox-static for debugging and the test
# modes, as a reproducible gzip'ed cpio.
# Usage: build-initramfs.sh OUTPUT INIT_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build-initramfs.sh OUTPUT INIT_BINARY}
init_binary=${2:?usage: build-initramfs.sh OUTPUT INIT_BINARY}
say() { echo "initramfs: $*"; }

if [ ! -x /bin/busybox ] || ! busybox --list >/dev/null 2>&1; then
  say "installing busybox-static with apt"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
init="$work/init"
strip -o "$init" "$init_binary"

{
  for d in /bin /dev /etc /proc /run /sbin /sys /tmp /usr /usr/bin /usr/sbin; do echo "dir $d 0755"; done
  echo "nod /dev/console 0600 c 5 1"
  echo "nod /dev/null 0666 c 1 3"
  echo "file /init $init 0755"
  echo "file /bin/busybox /bin/busybox 0755"
  # Every applet as a link in /bin, sorted so the archive does not depend on
  # busybox's listing order.
  for applet in $(busybox --list | sort); do
    [ "$applet" = busybox ] || echo "slink /bin/$applet busybox 0777"
  done
} > "$work/list"
python3 "$here/mkcpio.py" "$out.tmp" < "$work/list"
mv "$out.tmp" "$out"
say "$out ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-16))"
