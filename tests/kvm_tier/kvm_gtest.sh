# The kvm tier's one case inside the outer VM (POSIX sh, run by outer-vm as
# case kvm_gtest): one gtest case of skiff_kvm_tests ($SKIFF_KVM_TESTS, at
# the path it has on the host), with the arguments ctest gave it
# (--gtest_filter=Suite.Case ...). Its exit status is the test's. Pinned to
# one CPU inside a VM, as the e2e cases pin skiff (vm_pin, _common.sh).
. "$(dirname "$0")/_common.sh"
[ -x "${SKIFF_KVM_TESTS:-}" ] || { echo "kvm_gtest: no skiff_kvm_tests in the outer VM (${SKIFF_KVM_TESTS:-unset})"; exit 1; }
exec $(vm_pin) "$SKIFF_KVM_TESTS" "$@"
