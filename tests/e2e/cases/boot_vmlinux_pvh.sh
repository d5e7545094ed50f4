# The ELF vmlinux boots through its PVH note to userspace and powers off: exit 0.
. "$(dirname "$0")/_common.sh"
boot --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "console=ttyS0 quiet"
expect_status 0
expect_console "skiff-agent: userspace reached"
expect_stderr "VM ended: power-off"
expect_log '"entry":"pvh"'
expect_log '"msg":"guest userspace reached"'
report_userspace_ms vmlinux
