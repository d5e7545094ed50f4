#!/usr/bin/env bash
# Validates OCI bundles with runtime-tools' own validator (its validate
# package: the checks `oci-runtime-tool validate` makes), built here from
# Debian's Go packages, offline:
#   oci-validate.sh SKIFF_BINARY OUT_DIR
# builds validate_bundle (validate_bundle.go beside this script) into OUT_DIR
# and checks bundles made in a temp dir:
#   spec      `skiff spec`'s config.json over a busybox rootfs: must pass
#   demo      the same after scripts/demo/container.sh's edits: must pass
#   bad-cwd   a relative process.cwd: must be rejected, for that reason
#   no-ociver no ociVersion: must be rejected, for that reason
# Exit 0: all as expected; 1: not (or the build failed); 2: bad usage;
# 77 (skip): Go, the runtime-tools sources or busybox-static not installed.
# See tests/oci/README.md.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 SKIFF_BINARY OUT_DIR" >&2
  exit 2
fi
skiff=$1
out_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
schema_dir=/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema

skip() { echo "oci-validate: SKIP: $*"; exit 77; }
# shellcheck source=go-offline.sh
. "$here/go-offline.sh"
go_offline_require
[ -f "$runtime_tools_src/validate/validate.go" ] ||
  skip "no runtime-tools validate package in $runtime_tools_src (apt package golang-github-opencontainers-runtime-tools-dev)"
[ -f "$schema_dir/config-schema.json" ] ||
  skip "no runtime-spec JSON schema in $schema_dir (apt package golang-github-opencontainers-specs-dev)"
if [ ! -x "$skiff" ]; then
  echo "oci-validate: FAIL: $skiff is not an executable" >&2
  exit 1
fi
skiff=$(cd "$(dirname "$skiff")" && pwd)/$(basename "$skiff")

# --- the validator: Debian's Go, GOPATH mode, no network ---------------------
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
validator=$out_dir/validate_bundle
t0=$(date +%s.%N)
if ! go_offline_build "$here" "$validator" validate_bundle.go; then
  echo "oci-validate: FAIL: building validate_bundle with $(go version) failed" >&2
  exit 1
fi
t1=$(date +%s.%N)
build_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "oci-validate: built $validator in $build_s s ($(go version | awk '{print $3}'), GOPATH=$go_gopath)"

# --- the bundles -------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/oci-validate.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A bundle dir with a busybox rootfs (/bin/busybox, /bin/sh -> busybox) and
# `skiff spec`'s config.json.
make_bundle() {
  local b=$work/$1
  mkdir -p "$b/rootfs/bin"
  cp /bin/busybox "$b/rootfs/bin/busybox"
  ln -s busybox "$b/rootfs/bin/sh"
  (cd "$b" && "$skiff" spec)
  [ -s "$b/config.json" ] || { echo "oci-validate: FAIL: $skiff spec wrote no config.json in $b" >&2; exit 1; }
}
# Fails the run unless the file has (or, with !, lacks) a fixed string:
# an edit below that stops applying must not pass for a bundle it didn't make.
expect_text() {
  if [ "$1" = "!" ]; then
    ! grep -qF -- "$2" "$3" || { echo "oci-validate: FAIL: setup: $3 still has $2" >&2; exit 1; }
  else
    grep -qF -- "$1" "$2" || { echo "oci-validate: FAIL: setup: $2 lacks $1" >&2; exit 1; }
  fi
}

# (1) `skiff spec` as it comes.
make_bundle spec

# (2) What scripts/demo/container.sh runs: its rootfs dirs and applet links,
# and its sed over the config (copied from it; keep them in step).
make_bundle demo
mkdir -p "$work/demo/rootfs/proc" "$work/demo/rootfs/sys" "$work/demo/rootfs/dev" "$work/demo/rootfs/tmp"
for applet in sh echo cat ls uname hostname id grep head; do ln -sf busybox "$work/demo/rootfs/bin/$applet"; done
sed -i 's/"terminal": true/"terminal": false/;
        s/^\(      \)"sh"$/\1"sh", "-c", "echo Hello from a container in a Skiff microVM; echo kernel: $(uname -r), hostname: $(hostname), $(id); echo cgroup: $(cat \/proc\/self\/cgroup); ls \/"/' \
  "$work/demo/config.json"
expect_text '"terminal": false' "$work/demo/config.json"
expect_text '"sh", "-c", "echo Hello from a container' "$work/demo/config.json"

# (3) Broken on purpose: each must be rejected.
make_bundle bad-cwd
sed -i 's|"cwd": "/"|"cwd": "relative/dir"|' "$work/bad-cwd/config.json"
expect_text '"cwd": "relative/dir"' "$work/bad-cwd/config.json"

make_bundle no-ociver
sed -i '/^ *"ociVersion": /d' "$work/no-ociver/config.json"
expect_text ! '"ociVersion"' "$work/no-ociver/config.json"

# --- validation --------------------------------------------------------------
passed=0
failed=()
# accept NAME: the validator must accept the bundle.
accept() {
  local rc=0 log
  log=$(cd "$work" && "$validator" "$1" 2>&1) || rc=$?
  printf '%s\n' "$log"
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
  else
    echo "oci-validate: FAIL: $1 (rc $rc): the validator rejects it"
    failed+=("$1")
  fi
}
# reject NAME TEXT: the validator must reject the bundle (exit 1), with an
# error line holding TEXT, so it is rejected for what was broken in it.
reject() {
  local rc=0 log
  log=$(cd "$work" && "$validator" "$1" 2>&1) || rc=$?
  printf '%s\n' "$log"
  if [ $rc -eq 0 ]; then
    echo "oci-validate: FAIL: $1: the validator ACCEPTS a broken bundle"
    failed+=("$1")
  elif [ $rc -ne 1 ]; then
    echo "oci-validate: FAIL: $1: the validator exited $rc, not 1"
    failed+=("$1")
  elif ! grep -F -- ": error: " <<<"$log" | grep -F -- "$2" >/dev/null; then
    echo "oci-validate: FAIL: $1: rejected, but with no error about: $2"
    failed+=("$1")
  else
    echo "oci-validate: $1: rejected as it should be"
    passed=$((passed + 1))
  fi
}

accept spec
accept demo
reject bad-cwd 'cwd "relative/dir" is not an absolute path'
reject no-ociver '"" is not valid SemVer'

total=4
if [ ${#failed[@]} -eq 0 ]; then
  echo "oci-validate: PASS: $passed/$total (skiff spec and the demo's bundle valid; relative cwd and missing ociVersion rejected; validator built in $build_s s)"
  exit 0
fi
echo "oci-validate: FAIL: $passed/$total as expected; failed: ${failed[*]} (validator built in $build_s s)"
exit 1
