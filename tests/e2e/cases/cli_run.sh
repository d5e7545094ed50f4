# `skiff run` in the foreground: the container's output on our stdout, its
# exit status as ours, and nothing left once it returns (runc run deletes).
. "$(dirname "$0")/_common.sh"
. "$(dirname "$0")/_cli.sh"
make_bundle run1 'echo hello from $(hostname); echo to stderr >&2; exit 3'
status=0
sk run --bundle "$WORK/run1" run1 > "$WORK/out.txt" 2> "$WORK/err.txt" < /dev/null || status=$?
[ "$status" = 3 ] || cli_fail "skiff run exited with $status, expected the container's 3"
grep -q "hello from skiff-run1" "$WORK/out.txt" || cli_fail "stdout lacks the container's line"
grep -q "to stderr" "$WORK/err.txt" || cli_fail "stderr lacks the container's line"
left=$(leftovers run1)
[ -z "$left" ] || cli_fail "left behind: $left"
echo "cli_run: output and exit status 3 came back, nothing left behind"
