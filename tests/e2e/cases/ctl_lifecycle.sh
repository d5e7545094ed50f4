# The CLI lifecycle through `skiffctl` (the control API's own client) on a
# container `skiff create` made: list, status, exec (stdio, status, env, cwd,
# a terminal), ps and stats through raw, pause/resume of the container and
# of the whole VM, events seen by a subscriber, ping, kill; then the errors
# a person gets for a wrong sandbox, container, method or signal.
. "$(dirname "$0")/_common.sh"
. "$(dirname "$0")/_cli.sh"

make_bundle box 'trap "echo got TERM; exit 9" TERM; echo started; while :; do sleep 0.2; done'
sk create --bundle "$WORK/box" box > "$WORK/out.txt" 2> "$WORK/err.txt" < /dev/null || cli_fail "create failed"
sk start box || cli_fail "start failed"
i=0; while ! grep -q started "$WORK/out.txt" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q started "$WORK/out.txt" || cli_fail "the container's output never came"

ctl events box > "$WORK/events.txt" 2> "$WORK/events_err.txt" &
epid=$!

ctl list > "$WORK/list.txt" || cli_fail "skiffctl list failed"
grep -Eq '^box +[0-9]+ +running +1 +1 +[0-9]+MiB' "$WORK/list.txt" || cli_fail "list: $(cat "$WORK/list.txt")"
ctl list --json > "$WORK/list.json" || cli_fail "skiffctl list --json failed"
grep -q '"agentVersion"' "$WORK/list.json" || cli_fail "list --json lacks the sandbox's info"

ctl status box > "$WORK/status.txt" || cli_fail "status of the sandbox failed"
grep -q '"state": "running"' "$WORK/status.txt" || cli_fail "sandbox status: $(cat "$WORK/status.txt")"
ctl status box box > "$WORK/cstatus.txt" || cli_fail "status of the container failed"
grep -q '"status": "running"' "$WORK/cstatus.txt" || cli_fail "container status: $(cat "$WORK/cstatus.txt")"
grep -q "\"bundle\": \"$WORK/box\"" "$WORK/cstatus.txt" || cli_fail "container status lacks its bundle"

out=$(ctl exec --env GREETING=ahoy --cwd /tmp box box -- sh -c 'echo $GREETING from $(pwd) in $(hostname); exit 6' < /dev/null)
st=$?
[ "$st" = 6 ] || cli_fail "skiffctl exec exited with $st, expected 6"
[ "$out" = "ahoy from /tmp in skiff-box" ] || cli_fail "skiffctl exec output: $out"
out=$(printf 'line one\nline two\n' | ctl exec box box -- wc -l) || cli_fail "exec with stdin failed"
[ "$(echo $out)" = 2 ] || cli_fail "exec's stdin did not reach it: $out"
st=0; ctl exec -t box box -- sh -c 'test -t 0 && test -t 1 && echo on a terminal; exit 3' > "$WORK/tty.txt" 2>&1 < /dev/null || st=$?
[ "$st" = 3 ] || cli_fail "exec -t exited with $st, expected 3"
grep -q "on a terminal" "$WORK/tty.txt" || cli_fail "exec -t: $(cat "$WORK/tty.txt")"

ctl raw box ps box > "$WORK/ps.json" || cli_fail "raw ps failed"
grep -Eq '"pids": \[' "$WORK/ps.json" || cli_fail "raw ps: $(cat "$WORK/ps.json")"
ctl raw box info > "$WORK/info.json" || cli_fail "raw info failed"
grep -q '"id": "box"' "$WORK/info.json" || cli_fail "raw info: $(cat "$WORK/info.json")"
ctl stats box box > "$WORK/stats.json" || cli_fail "stats failed"
grep -Eq '"memoryCurrent": [1-9]' "$WORK/stats.json" || cli_fail "stats: $(cat "$WORK/stats.json")"
ctl ping -c 20 box > "$WORK/ping.txt" || cli_fail "ping failed"
grep -q 'median' "$WORK/ping.txt" || cli_fail "ping: $(cat "$WORK/ping.txt")"

ctl pause box box || cli_fail "pause of the container failed"
ctl status box box | grep -q '"status": "paused"' || cli_fail "the container is not paused"
sk state box | grep -q '"status": "paused"' || cli_fail "skiff state does not see the pause"
ctl resume box box || cli_fail "resume of the container failed"
ctl status box box | grep -q '"status": "running"' || cli_fail "the container is not running after resume"
ctl pause box || cli_fail "pause of the VM failed"
ctl status box | grep -q '"state": "paused"' || cli_fail "the VM is not paused"
ctl resume box || cli_fail "resume of the VM failed"
ctl status box | grep -q '"state": "running"' || cli_fail "the VM is not running after resume"

# More vCPUs while it runs, and fewer again (the VM boots with room for 2).
ctl status box | grep -q '"vcpus": 1' || cli_fail "the sandbox did not start on 1 vCPU"
ctl resize box --vcpus 2 > "$WORK/resize.txt" 2>&1 || cli_fail "resize to 2: $(cat "$WORK/resize.txt")"
[ "$(ctl exec box box -- grep -c ^processor /proc/cpuinfo < /dev/null)" = 2 ] || cli_fail "the container does not see 2 vCPUs"
ctl status box | grep -q '"vcpus": 2' || cli_fail "status does not say 2 vCPUs"
ctl resize box --vcpus 1 > "$WORK/resize.txt" 2>&1 || cli_fail "resize to 1: $(cat "$WORK/resize.txt")"
[ "$(ctl exec box box -- grep -c ^processor /proc/cpuinfo < /dev/null)" = 1 ] || cli_fail "the container still sees 2 vCPUs"

# Wrong input: one line naming what was wrong, status 1 (2 for usage).
expect_error 1 'no sandbox "nobox"' status nobox
expect_error 1 'container "ghost"' status box ghost
expect_error 1 'not a parameterless method' raw box frobnicate
expect_error 1 'signal' kill box box SIGNOPE
expect_error 2 'error' exec box box
expect_error 2 'error' list --no-such-flag
expect_error 1 '3 vCPUs: this sandbox was booted for 1 to 2' resize box --vcpus 3

ctl kill box box TERM || cli_fail "kill failed"
i=0; while ! ctl status box box | grep -q '"status": "stopped"' && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ctl status box box | grep -q '"status": "stopped"' || cli_fail "not stopped after skiffctl kill"
grep -q "got TERM" "$WORK/out.txt" || cli_fail "the trap did not run"
expect_error 1 'not running' exec box box -- true

i=0; while ! grep -q '"exit"' "$WORK/events.txt" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill $epid 2>/dev/null; wait $epid 2>/dev/null
for type in paused resumed exit; do
  grep -q "\"type\":\"$type\"" "$WORK/events.txt" || cli_fail "events lack $type: $(cat "$WORK/events.txt")"
done
grep -q '"exitCode":9\|"code":9\|"status":9' "$WORK/events.txt" || cli_fail "the exit event lacks status 9: $(grep exit "$WORK/events.txt")"

sk delete box || cli_fail "delete failed"
left=$(leftovers box); [ -z "$left" ] || cli_fail "left behind: $left"
ctl list --json | grep -q '"box"' && cli_fail "skiffctl list still has the deleted sandbox"

# A sandbox whose process was killed: listed as stopped, refused with why.
make_bundle gone 'sleep 1000'
sk create --bundle "$WORK/gone" --pid-file "$WORK/gone.pid" gone > /dev/null 2>&1 < /dev/null || cli_fail "create of gone failed"
kill -9 "$(cat "$WORK/gone.pid")"
i=0; while [ -d "/proc/$(cat "$WORK/gone.pid")" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
ctl list > "$WORK/list2.txt" || cli_fail "list with a dead sandbox failed"
grep -Eq '^gone +0 +stopped' "$WORK/list2.txt" || cli_fail "list of a dead sandbox: $(cat "$WORK/list2.txt")"
expect_error 1 'sandbox process is gone' status gone
sk delete --force gone || cli_fail "delete --force of the dead sandbox failed"
left=$(leftovers gone); [ -z "$left" ] || cli_fail "left behind: $left"
echo "ctl_lifecycle: list, status, exec (env, cwd, stdin, terminal), raw, stats, ping, vCPU resize, pause/resume, events, kill, errors and a killed sandbox checked"
