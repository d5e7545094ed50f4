# A container with a terminal: its pty master reaches a --console-socket
# receiver (recvtty, as runc's), which sees the initial size, resizes it,
# and types a line the container reads; then `skiff run` in the foreground
# with a terminal and no console socket (the CLI is its own receiver).
. "$(dirname "$0")/_common.sh"
. "$(dirname "$0")/_cli.sh"
make_bundle tty 'echo size $(stty size); read line; echo got $line; echo size $(stty size)' true
recvtty "$WORK/console.sock" "$WORK/tty.txt" 30 100 "size 30 100" 40 120 hello > "$WORK/recvtty.txt" 2>&1 &
rpid=$!
i=0; while [ ! -S "$WORK/console.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
sk create --bundle "$WORK/tty" --console-socket "$WORK/console.sock" tty > "$WORK/create.txt" 2>&1 < /dev/null ||
  cli_fail "create with a console socket failed"
sk start tty || cli_fail "start failed"
i=0; while ! sk state tty | grep -q '"status": "stopped"' && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sk state tty | grep -q '"status": "stopped"' || cli_fail "the terminal container did not end"
wait $rpid
tr -d '\r' < "$WORK/tty.txt" > "$WORK/tty_clean.txt"
grep -q "size 30 100" "$WORK/tty_clean.txt" || cli_fail "the container did not see 30x100"
grep -q "got hello" "$WORK/tty_clean.txt" || cli_fail "the typed line did not reach the container"
grep -q "size 40 120" "$WORK/tty_clean.txt" || cli_fail "the resize did not reach the container"
sk delete tty || cli_fail "delete failed"

make_bundle tty2 'test -t 0 && test -t 1 && echo on a terminal; exit 4' true
st=0; sk run --bundle "$WORK/tty2" tty2 > "$WORK/run.txt" 2>&1 < /dev/null || st=$?
[ "$st" = 4 ] || cli_fail "run with a terminal exited with $st, expected 4"
grep -q "on a terminal" "$WORK/run.txt" || cli_fail "the foreground terminal's output is missing"
left=$(leftovers tty2); [ -z "$left" ] || cli_fail "left behind: $left"
echo "cli_terminal: console socket (size, resize, input) and a foreground terminal checked"
