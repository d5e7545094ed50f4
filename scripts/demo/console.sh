# Boots the guest kernel and initramfs with skiff boot's defaults and shows
# the guest's serial console (run by scripts/run.sh inside the outer VM).
"$SKIFF" boot --console "$WORK/console.txt"
status=$?
cat "$WORK/console.txt"
exit $status
