# virtio-vsock end to end, through the Unix socket front end: the guest's
# Linux vsock driver connects out to a host program listening on
# <socket>_1025, then a host program reaches the guest's port 1024 with
# "CONNECT 1024". Both exchange a line each way.
. "$(dirname "$0")/_common.sh"
sock=$WORK/v.sock
vsock_peer serve "${sock}_1025" "hello guest, this is the host" > "$WORK/serve.txt" 2>&1 &
serve_pid=$!
# The listener must be there before the guest connects.
i=0
while [ ! -S "${sock}_1025" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
( boot --cmdline "console=ttyS0 quiet skiff.action=vsocktest" --vsock "3,socket=$sock"; echo "$STATUS" > "$WORK/status" ) &
boot_pid=$!
vsock_peer connect "$sock" 1024 "hello guest port 1024" > "$WORK/connect.txt" 2>&1 || connect_status=$?
wait $boot_pid
STATUS=$(cat "$WORK/status")
wait $serve_pid || fail "host listener: $(cat "$WORK/serve.txt")"
cat "$WORK/serve.txt" "$WORK/connect.txt"
[ -z "${connect_status:-}" ] || fail "host to guest: $(cat "$WORK/connect.txt")"
expect_status 0
expect_console "skiff-agent: vsocktest: host replied: hello guest, this is the host"
expect_console "skiff-agent: vsocktest: host sent: hello guest port 1024"
grep -q "guest sent: hello host, this is the guest" "$WORK/serve.txt" || fail "the host listener got no line"
grep -q "guest answered: guest got: hello guest port 1024" "$WORK/connect.txt" || fail "no answer from the guest port"
[ ! -e "$sock" ] || fail "skiff left its vsock socket behind"
echo "virtio-vsock: guest to host and host to guest through the Unix socket checked"
