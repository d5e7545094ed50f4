# A sandbox process killed with SIGKILL: the container reads as stopped, and
# delete --force leaves no process, mount or state directory behind.
. "$(dirname "$0")/_common.sh"
. "$(dirname "$0")/_cli.sh"
make_bundle doomed 'echo up; while :; do sleep 0.2; done'
sk run -d --bundle "$WORK/doomed" --pid-file "$WORK/pid" doomed > "$WORK/out.txt" 2>&1 < /dev/null || cli_fail "run -d failed"
pid=$(cat "$WORK/pid")
sk state doomed | grep -q '"status": "running"' || cli_fail "not running"
kill -9 "$pid"
i=0; while [ -d "/proc/$pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
sk state doomed | grep -q '"status": "stopped"' || cli_fail "a killed sandbox does not read as stopped"
sk delete --force doomed || cli_fail "delete --force failed"
left=$(leftovers doomed)
[ -z "$left" ] || cli_fail "left behind: $left"
echo "cli_killed_sandbox: stopped after SIGKILL, delete --force left nothing"
