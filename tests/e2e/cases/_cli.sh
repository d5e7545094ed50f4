# Shared by the CLI cases (cli_*.sh): the runc-style `skiff` on a busybox
# bundle made here. Sourced after _common.sh.
ROOT=$WORK/root
PIN=$(vm_pin)
sk() { ${PIN:-} "$SKIFF" --root "$ROOT" "$@"; }
ctl() { ${PIN:-} skiffctl --root "$ROOT" "$@"; }  # the control API's client (ctl_* cases)

# Wrong input to skiffctl: status $1 (1, or 2 for usage) and one line on
# stderr holding $2.   expect_error STATUS TEXT SKIFFCTL_ARGS...
expect_error() {
  want=$1 text=$2; shift 2
  st=0; ctl "$@" > "$WORK/bad_out.txt" 2> "$WORK/bad.txt" < /dev/null || st=$?
  [ "$st" = "$want" ] || cli_fail "skiffctl $*: status $st, expected $want"
  grep -q "$text" "$WORK/bad.txt" || cli_fail "skiffctl $*: said $(cat "$WORK/bad.txt")"
  [ "$(wc -l < "$WORK/bad.txt")" = 1 ] || cli_fail "skiffctl $*: more than one line: $(cat "$WORK/bad.txt")"
}

# A bundle in $WORK/$1 whose process is `sh -c "$2"`; $3, when given, is
# "true" for a terminal. The rootfs is busybox-static with its applets.
make_bundle() {
  b=$WORK/$1
  mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/tmp" "$b/rootfs/etc"
  cp /bin/busybox "$b/rootfs/bin/busybox"
  for applet in sh echo cat ls grep hostname sleep stty true id ps head tr wc seq dd; do
    ln -sf busybox "$b/rootfs/bin/$applet"
  done
  echo "root:x:0:0:root:/:/bin/sh" > "$b/rootfs/etc/passwd"
  script=$(printf '%s' "$2" | sed 's/\\/\\\\/g; s/"/\\"/g')
  cat > "$b/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": ${3:-false},
    "user": {"uid": 0, "gid": 0},
    "args": ["sh", "-c", "$script"],
    "env": ["PATH=/bin", "TERM=xterm"],
    "cwd": "/"
  },
  "root": {"path": "rootfs"},
  "hostname": "skiff-$1",
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
  "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]}
}
JSON
}

# What is left of container $1 on the host: its state dir, a sandbox process,
# mounts under the root. Empty when nothing is.
leftovers() {
  [ -e "$ROOT/$1" ] && echo "state dir $ROOT/$1"
  grep -q " $ROOT/$1" /proc/self/mountinfo && echo "mounts under $ROOT/$1"
  for p in /proc/[0-9]*; do
    tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q "sandbox-run.* $1 *\$" && echo "process ${p#/proc/}"
  done
  return 0
}

cli_fail() {
  echo "FAIL: $*"
  for f in "$WORK"/*.txt; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
  for d in "$ROOT"/*/; do
    [ -d "$d" ] || continue
    echo "--- $d sandbox.log"; tail -n 20 "$d/sandbox.log" 2>/dev/null
    echo "--- $d console.log"; tail -n 30 "$d/console.log" 2>/dev/null
  done
  exit 1
}
