# A guest reboot ends the VM with reason reset and status 3.
. "$(dirname "$0")/_common.sh"
boot --kernel "$VMLINUX" --initrd "$INITRD" --cmdline "console=ttyS0 quiet skiff.action=reboot"
expect_status 3
expect_console "skiff-agent: action=reboot"
expect_stderr "VM ended: reset"
