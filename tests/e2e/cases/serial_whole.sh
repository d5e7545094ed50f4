# The whole serial console arrives: from the kernel's first line to the
# guest's last, with no byte dropped by the UART (the VMM counts them).
. "$(dirname "$0")/_common.sh"
boot --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "console=ttyS0"
expect_status 0
head -n 1 "$WORK/console.txt" | grep -q "Linux version 6.1" || fail "first console line is not the kernel banner"
expect_console "skiff-agent: action=poweroff"
expect_console "reboot: Power down"
expect_log '"serial_tx_dropped":0'
size=$(wc -c < "$WORK/console.txt")
expect_log "\"serial_tx_bytes\":$size"
echo "console: $(wc -l < "$WORK/console.txt") lines, $size bytes, none dropped"
