# runc's lifecycle through `skiff`: create (with --pid-file), state, start,
# list, ps, exec, pause/resume, update, kill, delete; each step checked.
. "$(dirname "$0")/_common.sh"
. "$(dirname "$0")/_cli.sh"
make_bundle life 'trap "echo got TERM; exit 7" TERM; echo started; while :; do sleep 0.2; done'
sk create --bundle "$WORK/life" --pid-file "$WORK/pid" life > "$WORK/out.txt" 2> "$WORK/err.txt" < /dev/null ||
  cli_fail "create failed"
pid=$(cat "$WORK/pid")
[ -d "/proc/$pid" ] || cli_fail "--pid-file names $pid, which is not running"
sk state life > "$WORK/state.txt" || cli_fail "state failed"
grep -q '"status": "created"' "$WORK/state.txt" || cli_fail "state is not created"
grep -q "\"pid\": $pid" "$WORK/state.txt" || cli_fail "state's pid is not the pid file's"
sk start life || cli_fail "start failed"
i=0; while ! grep -q started "$WORK/out.txt" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q started "$WORK/out.txt" || cli_fail "the container's output never came"
sk state life | grep -q '"status": "running"' || cli_fail "state is not running after start"
sk list > "$WORK/list.txt"; grep -q "^life .* running " "$WORK/list.txt" || cli_fail "list lacks the running container"
sk list -q | grep -qx life || cli_fail "list -q lacks it"
sk ps --format json life > "$WORK/ps.txt"; grep -q '^\[[0-9]' "$WORK/ps.txt" || cli_fail "ps gave no pids"
out=$(sk exec life sh -c 'echo exec in $(hostname); exit 5' < /dev/null); st=$?
[ "$st" = 5 ] || cli_fail "exec exited with $st, expected 5"
echo "$out" | grep -q "exec in skiff-life" || cli_fail "exec output: $out"
sk pause life || cli_fail "pause failed"
sk state life | grep -q '"status": "paused"' || cli_fail "state is not paused"
sk resume life || cli_fail "resume failed"
sk state life | grep -q '"status": "running"' || cli_fail "state is not running after resume"
sk update --pids-limit 50 --memory 67108864 life || cli_fail "update failed"
sk events --stats life > "$WORK/stats.txt" || cli_fail "events --stats failed"
grep -q '"limit":67108864' "$WORK/stats.txt" || cli_fail "the memory limit of update is not in the stats"
sk kill life TERM || cli_fail "kill failed"
i=0; while ! sk state life | grep -q '"status": "stopped"' && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
sk state life | grep -q '"status": "stopped"' || cli_fail "not stopped after SIGTERM"
grep -q "got TERM" "$WORK/out.txt" || cli_fail "the trap did not run"
st=0; sk kill life TERM 2> "$WORK/kill2.txt" || st=$?
[ "$st" != 0 ] && grep -q "not running" "$WORK/kill2.txt" || cli_fail "kill of a stopped container: status $st"
sk delete life || cli_fail "delete failed"
left=$(leftovers life)
[ -z "$left" ] || cli_fail "left behind: $left"
st=0; sk state life 2> "$WORK/gone.txt" || st=$?
[ "$st" != 0 ] && grep -q 'container "life" does not exist' "$WORK/gone.txt" || cli_fail "state after delete: $st"
echo "cli_lifecycle: create, state, start, list, ps, exec, pause, resume, update, kill, delete all checked"
