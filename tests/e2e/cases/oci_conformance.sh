# e2e-limit: 600
# The OCI runtime-spec conformance suite (tests/oci/conformance) against
# `skiff` in the full-system tier: every case, every check. A failed check
# fails this case, with the TAP lines that failed and the sandboxes' logs.
# The programs come in as tools (built by CMake with Debian's Go when
# golang-go and runtime-tools' sources are installed); without them the
# case skips, saying which is missing.
. "$(dirname "$0")/_common.sh"
skip() { echo "SKIP: $*"; exit 77; }
harness=$(command -v oci_conformance || true)
checker=$(command -v oci_check || true)
[ -n "$harness" ] && [ -n "$checker" ] ||
  skip "the conformance programs were not built (apt packages golang-go golang-github-opencontainers-runtime-tools-dev)"
[ -x /bin/busybox ] || skip "no /bin/busybox for the bundles' rootfs"

ROOT=$WORK/root
PIN=$(vm_pin)
# The harness runs the runtime as runc is run; pinned like every CLI case
# (see vm_pin), through a wrapper since --runtime names one executable.
cat > "$WORK/skiff-pinned" <<EOF
#!/bin/sh
exec ${PIN:-} "$SKIFF" "\$@"
EOF
chmod +x "$WORK/skiff-pinned"
mkdir -p "$WORK/bundles"
status=0
"$harness" --runtime "$WORK/skiff-pinned" --root "$ROOT" --checker "$checker" --work "$WORK/bundles" --timeout 90s \
  > "$WORK/conformance.tap" 2> "$WORK/harness-stderr.txt" || status=$?
passed=$(grep -c '^ok ' "$WORK/conformance.tap" || true)
failed=$(grep -c '^not ok ' "$WORK/conformance.tap" || true)
echo "oci_conformance: $passed passed, $failed failed (harness exit $status)"
grep -E '^# [0-9]+ cases run|^# cases with failures|^oci-conformance:' "$WORK/conformance.tap" || true
if [ "$status" != 0 ] || [ "$failed" != 0 ] || [ "$passed" = 0 ]; then
  echo "FAIL: the conformance suite did not pass"
  grep -A4 '^not ok ' "$WORK/conformance.tap" | head -n 200
  echo "--- harness stderr"; tail -n 30 "$WORK/harness-stderr.txt"
  for d in "$ROOT"/*/; do
    [ -d "$d" ] || continue
    echo "--- $d sandbox.log"; tail -n 20 "$d/sandbox.log" 2>/dev/null
  done
  exit 1
fi
