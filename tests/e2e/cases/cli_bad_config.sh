# A malformed config.json, a missing rootfs and a bad id: one clear line each,
# a non-zero status, and nothing created.
. "$(dirname "$0")/_common.sh"
. "$(dirname "$0")/_cli.sh"
make_bundle bad 'true'
sed -i 's/"cwd": "\/"/"cwd": "tmp"/' "$WORK/bad/config.json"
st=0; sk create --bundle "$WORK/bad" bad 2> "$WORK/err1.txt" < /dev/null || st=$?
[ "$st" != 0 ] || cli_fail "a relative cwd was accepted"
grep -q "process.cwd" "$WORK/err1.txt" || cli_fail "the error does not name process.cwd"
[ "$(wc -l < "$WORK/err1.txt")" = 1 ] || cli_fail "more than one line"
printf '{"ociVersion": "1.0.2", "process": ' > "$WORK/bad/config.json"
st=0; sk run --bundle "$WORK/bad" bad 2> "$WORK/err2.txt" < /dev/null || st=$?
[ "$st" != 0 ] && grep -q "invalid JSON" "$WORK/err2.txt" || cli_fail "truncated JSON: status $st"
make_bundle nofs 'true'
rm -rf "$WORK/nofs/rootfs"
st=0; sk create --bundle "$WORK/nofs" nofs 2> "$WORK/err3.txt" < /dev/null || st=$?
[ "$st" != 0 ] && grep -q "root.path" "$WORK/err3.txt" || cli_fail "missing rootfs: status $st"
st=0; sk create --bundle "$WORK/bad" "a/b" 2> "$WORK/err4.txt" < /dev/null || st=$?
[ "$st" != 0 ] && grep -q "container id" "$WORK/err4.txt" || cli_fail "bad id: status $st"
st=0; sk frobnicate 2> "$WORK/err5.txt" || st=$?
[ "$st" = 2 ] || cli_fail "an unknown command exited with $st, expected 2"
[ -z "$(ls "$ROOT" 2>/dev/null | grep -v '\.lock$')" ] || cli_fail "something was created: $(ls "$ROOT")"
for f in err1 err2 err3 err4 err5; do echo "$f: $(cat "$WORK/$f.txt")"; done
echo "cli_bad_config: every bad input refused with one line, nothing created"
