# A kernel panic reaches the VMM through pvpanic: reason crash, status 5.
. "$(dirname "$0")/_common.sh"
boot --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "console=ttyS0 skiff.action=panic"
expect_status 5
expect_console "Kernel panic"
expect_stderr "VM ended: crash: guest kernel panicked (pvpanic)"
