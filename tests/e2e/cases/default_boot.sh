# `skiff boot` with no arguments boots the guest kernel and initramfs of the
# build (README's first command) and ends with the guest's power-off.
. "$(dirname "$0")/_common.sh"
boot
expect_status 0
expect_console "skiff-agent: userspace reached"
expect_console "skiff-agent: action=poweroff"
