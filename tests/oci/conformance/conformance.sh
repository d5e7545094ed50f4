#!/usr/bin/env bash
# Runs our OCI runtime-spec conformance suite against a runtime with runc's
# command line (skiff, or runc itself for reference):
#   conformance.sh RUNTIME OUT_DIR [HARNESS_ARGS...]
# builds the harness (harness/main.go) and the in-container checker
# (checker/main.go, static) into OUT_DIR with Debian's Go, offline, then runs
#   OUT_DIR/oci_conformance --runtime RUNTIME --checker OUT_DIR/oci_check \
#     --work TEMP_DIR [HARNESS_ARGS...]
# (HARNESS_ARGS: --root DIR, --run REGEX, --skip REGEX, --timeout 60s). The
# TAP goes to stdout and to OUT_DIR/oci-conformance.tap.
# Exit status: the harness's (0: all passed; 1: something failed, or the
# build failed; 2: bad usage); 77 (skip) when Go, the runtime-tools sources
# or busybox-static are not installed. Run it as root. See README.md here.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 RUNTIME OUT_DIR [HARNESS_ARGS...]" >&2
  exit 2
fi
runtime=$1
out_dir=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "oci-conformance: SKIP: $*"; exit 77; }
# shellcheck source=../go-offline.sh
. "$here/../go-offline.sh"
go_offline_require

case $runtime in
  */*) ;;
  *) runtime=$(command -v "$runtime" || echo "$runtime") ;;
esac
if [ ! -x "$runtime" ] || [ -d "$runtime" ]; then
  echo "oci-conformance: FAIL: $runtime is not an executable" >&2
  exit 1
fi
runtime=$(cd "$(dirname "$runtime")" && pwd)/$(basename "$runtime")

# --- the programs: Debian's Go, GOPATH mode, no network ----------------------
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
build() { go_offline_build "$here/$2" "$out_dir/$1" main.go; } # NAME DIR
t0=$(date +%s.%N)
for prog in "oci_check checker" "oci_conformance harness"; do
  name=${prog% *}
  dir=${prog#* }
  if ! build "$name" "$dir"; then
    echo "oci-conformance: FAIL: building $dir/main.go with $(go version) failed" >&2
    exit 1
  fi
done
t1=$(date +%s.%N)
build_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "# oci-conformance: built $out_dir/oci_check and $out_dir/oci_conformance in $build_s s ($(go version | awk '{print $3}'), GOPATH=$go_gopath)"

# --- the run -----------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/oci-conformance.XXXXXX")
trap 'rm -rf "$work"' EXIT
rc=0
"$out_dir/oci_conformance" --runtime "$runtime" --checker "$out_dir/oci_check" --work "$work" "$@" |
  tee "$out_dir/oci-conformance.tap" || rc=${PIPESTATUS[0]}
exit "$rc"
