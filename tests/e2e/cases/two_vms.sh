# Two VMs at once, each with its own console, both power off cleanly.
. "$(dirname "$0")/_common.sh"
mkdir -p "$WORK/a" "$WORK/b"
for vm in a b; do
  ( timeout -s KILL 120 "$SKIFF" boot --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "console=ttyS0 quiet skiff.id=$vm" \
      --console "$WORK/$vm/console.txt" 2>"$WORK/$vm/stderr.txt"; echo $? > "$WORK/$vm/status" ) &
done
wait
for vm in a b; do
  [ "$(cat "$WORK/$vm/status")" = 0 ] || { WORK="$WORK/$vm"; fail "VM $vm exited with $(cat "$WORK/status")"; }
  grep -q "skiff-init: userspace reached" "$WORK/$vm/console.txt" || { WORK="$WORK/$vm"; fail "VM $vm did not reach userspace"; }
done
echo "both VMs reached userspace and powered off"
