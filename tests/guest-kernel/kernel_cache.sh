#!/usr/bin/env bash
# A second run of the kernel build with the same source and fragment does no
# build: it reports "up to date" and only copies the cached files.
set -euo pipefail
builder=${1:?usage: kernel_cache.sh BUILD_KERNEL_SH}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash "$builder" "$work" >/dev/null  # builds only if the cache is cold
start=$(date +%s)
out=$(bash "$builder" "$work")
took=$(( $(date +%s) - start ))
grep -q "up to date" <<<"$out" || { echo "FAIL: second run did not use the cache:"; echo "$out"; exit 1; }
[ "$took" -lt 30 ] || { echo "FAIL: cached run took $took s"; exit 1; }
file "$work/vmlinux" 2>/dev/null | grep -q ELF || head -c 4 "$work/vmlinux" | grep -q ELF || { echo "FAIL: vmlinux is not ELF"; exit 1; }

# One build at a time: a run waits while another holds the cache's lock
# (two ninjas once unpacked the source over each other).
cache_root=${SKIFF_CACHE_DIR:-/var/cache/skiff}/guest-kernel
exec 8>"$cache_root/.lock"
flock 8
bash "$builder" "$work" > "$work/waiting.txt" 2>&1 &
waiter=$!
sleep 2
if ! kill -0 "$waiter" 2>/dev/null; then
  echo "FAIL: a run went on while another held $cache_root/.lock:"; cat "$work/waiting.txt"; exit 1
fi
flock -u 8
wait "$waiter" || { echo "FAIL: the run that waited for the lock failed:"; cat "$work/waiting.txt"; exit 1; }
grep -q "up to date" "$work/waiting.txt" || { echo "FAIL: the run that waited did not use the cache"; exit 1; }
echo "kernel: cached run in $took s: $out; a second run waited for the lock, then used the cache"
