# The bzImage boots through the 64-bit boot protocol to userspace and powers off.
. "$(dirname "$0")/_common.sh"
boot --kernel "$BZIMAGE" --initrd "$INITRD" --cmdline "console=ttyS0 quiet"
expect_status 0
expect_console "skiff-agent: userspace reached"
expect_stderr "VM ended: power-off"
expect_log '"entry":"linux64"'
report_userspace_ms bzImage
