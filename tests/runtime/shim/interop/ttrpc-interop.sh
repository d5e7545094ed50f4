#!/usr/bin/env bash
# Our ttrpc against Go's real one (Debian's github.com/containerd/ttrpc and
# containerd's generated task service), both ways:
#   1. Go's client -> our server, on a socket file (unix:///...)
#   2. our client -> Go's server, on an abstract socket (containerd <= 1.4's form)
# usage: ttrpc-interop.sh PEER WORKDIR
#   PEER     the ttrpc_interop_peer binary; WORKDIR where the Go program is built
# Exit 77 (skipped) with the reason where Go or the Go sources are missing.
set -euo pipefail
peer=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

command -v go >/dev/null 2>&1 || skip "go not found (apt package golang-go)"
src=/usr/share/gocode/src/github.com/containerd
[ -f "$src/ttrpc/client.go" ] || skip "no Go ttrpc sources in $src/ttrpc (apt package golang-github-containerd-ttrpc-dev)"
[ -f "$src/containerd/runtime/v2/task/shim.pb.go" ] ||
  skip "no containerd Go sources in $src/containerd (apt package golang-github-containerd-containerd-dev)"

# Built as the OCI checks build theirs: Debian's Go, GOPATH mode, offline.
source "$here/../../../oci/go-offline.sh"
mkdir -p "$work"
work=$(cd "$work" && pwd)
go_offline_build "$here" "$work/ttrpc-interop-go" main.go || fail "go build of $here/main.go"

run=$(mktemp -d /tmp/skiff-ttrpc-interop-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$run"
}
trap cleanup EXIT

# Waits until $1 (a pid) has printed "listening" into $2, or gives up.
wait_listening() {
  for _ in $(seq 1 200); do
    grep -q listening "$2" 2>/dev/null && return 0
    kill -0 "$1" 2>/dev/null || { cat "$2"; fail "the server exited before listening"; }
    sleep 0.05
  done
  cat "$2"
  fail "the server did not start listening within 10 s"
}

status=0
# pair WHO ADDRESS LOG SERVER_CMD... -- CLIENT_CMD...: starts the server,
# runs the client against it once it listens, and expects the server to
# exit 0 after the client's Shutdown call.
pair() {
  local who=$1 log=$2
  shift 2
  local server=() client=()
  while [ "$1" != -- ]; do server+=("$1"); shift; done
  shift
  client=("$@")
  "${server[@]}" >"$log" 2>&1 &
  pids+=($!)
  wait_listening $! "$log"
  "${client[@]}" || status=1
  if ! wait "${pids[-1]}"; then
    echo "$who did not exit cleanly after Shutdown:"; cat "$log"; status=1
  fi
}

echo "== Go's ttrpc client -> our server"
addr="unix://$run/cpp.sock"
pair "our server" "$run/cpp-server.log" "$peer" serve "$addr" -- "$work/ttrpc-interop-go" client "$addr"

echo "== our ttrpc client -> Go's server"
addr="skiff-ttrpc-interop-$$"
pair "Go's server" "$run/go-server.log" "$work/ttrpc-interop-go" server "$addr" -- "$peer" call "$addr"
grep FAIL "$run/go-server.log" && status=1

[ "$status" = 0 ] && echo "ttrpc interop: both ways pass" || echo "ttrpc interop: FAILED"
exit "$status"
