#!/usr/bin/env bash
# Builds Skiff's guest kernel from Debian's linux-source-6.1 package:
# `make allnoconfig`, then config.fragment merged on top. Outputs vmlinux (ELF
# with the PVH entry note) and bzImage into OUTDIR.
#
# Cached by the source package version and the hash of the fragment (and of
# RECIPE, bumped when the build steps below change what they produce), under
# $SKIFF_CACHE_DIR (default /var/cache/skiff): a second run with the same
# inputs only copies the cached files.
#
# Usage: build-kernel.sh OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build-kernel.sh OUTDIR}
cache_root=${SKIFF_CACHE_DIR:-/var/cache/skiff}/guest-kernel
say() { echo "guest-kernel: $*"; }

pkg=linux-source-6.1
if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
  say "installing $pkg and the kernel build tools with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$pkg" bc bison flex libelf-dev xz-utils make gcc libc6-dev >/dev/null
fi
version=$(dpkg-query -W -f='${Version}' "$pkg")
RECIPE=1
key=$( (cat "$here/config.fragment"; echo "recipe $RECIPE") | sha256sum | cut -c1-16)
cache="$cache_root/$version-$key"
mkdir -p "$out" "$cache_root"
# One build at a time: two (two build trees, or a second ninja in the same
# one) would unpack and build over each other; the second waits here and
# then finds the cache filled.
exec 9>"$cache_root/.lock"
flock 9

if [ -s "$cache/vmlinux" ] && [ -s "$cache/bzImage" ]; then
  say "up to date ($pkg $version, fragment $key)"
else
  tarball=$(ls /usr/src/linux-source-6.1.tar.* | head -n 1)
  src="$cache_root/src-$version"
  build="$cache.build"
  if [ ! -f "$src/Makefile" ]; then
    say "unpacking $tarball"
    rm -rf "$src.tmp" && mkdir -p "$src.tmp"
    tar -xaf "$tarball" -C "$src.tmp" --strip-components=1
    rm -rf "$src" && mv "$src.tmp" "$src"  # a tree left half-unpacked goes
  fi
  rm -rf "$build" && mkdir -p "$build"
  say "configuring: allnoconfig + config.fragment"
  make -s -C "$src" O="$build" ARCH=x86_64 allnoconfig >/dev/null
  KCONFIG_CONFIG="$build/.config" "$src/scripts/kconfig/merge_config.sh" -m -O "$build" \
    "$build/.config" "$here/config.fragment" >/dev/null
  make -s -C "$src" O="$build" ARCH=x86_64 olddefconfig >/dev/null
  # Every option the fragment asks for must have survived Kconfig's
  # dependency resolution: a silently dropped option is a broken guest.
  missing=0
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=n) opt=${line%=n}; grep -q "^$opt=" "$build/.config" && { say "wanted off but on: $opt"; missing=1; } ;;
      CONFIG_*=*) grep -qxF "$line" "$build/.config" || { say "not set as asked: $line"; missing=1; } ;;
    esac
  done < <(grep -E '^CONFIG_' "$here/config.fragment")
  [ "$missing" -eq 0 ] || { say "config.fragment does not apply cleanly to $pkg $version"; exit 1; }
  jobs=$(nproc)
  say "building vmlinux and bzImage with $jobs jobs (a few minutes; log in $build/build.log)"
  start=$(date +%s)
  if ! make -C "$src" O="$build" ARCH=x86_64 -j"$jobs" vmlinux bzImage >"$build/build.log" 2>&1; then
    tail -n 40 "$build/build.log"
    say "kernel build failed"
    exit 1
  fi
  mkdir -p "$cache.tmp"
  cp "$build/vmlinux" "$build/arch/x86/boot/bzImage" "$build/.config" "$cache.tmp/"
  mv "$cache.tmp/.config" "$cache.tmp/config"
  rm -rf "$cache" && mv "$cache.tmp" "$cache" && rm -rf "$build"
  # Older builds (other fragments or versions) and abandoned build trees.
  find "$cache_root" -mindepth 1 -maxdepth 1 -type d ! -name "src-$version" ! -path "$cache" -exec rm -rf {} +
  say "built in $(( $(date +%s) - start )) s"
fi
for f in vmlinux bzImage config; do
  cmp -s "$cache/$f" "$out/$f" 2>/dev/null || cp "$cache/$f" "$out/$f"
done
touch "$out/vmlinux" "$out/bzImage"  # newer than the inputs, for the build system
say "$out/vmlinux, $out/bzImage ($pkg $version, fragment $key)"
