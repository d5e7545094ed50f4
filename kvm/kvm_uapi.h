#pragma once
// <linux/kvm.h>, made right for C++. Debian 12's uapi headers declare the
// trailing arrays of kvm_cpuid2, kvm_msrs, kvm_msr_list... with
// __DECLARE_FLEX_ARRAY, whose empty struct is 0 bytes in C but 1 byte in C++:
// the structs grow, the entries move, and the ioctl numbers (which encode the
// struct size) change, so KVM rejects them with EINVAL. Declare the arrays as
// later kernels' headers do. Every file includes KVM's header through this one.
#include <linux/stddef.h>
#ifdef __cplusplus
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]
#endif
#include <linux/kvm.h>

static_assert(sizeof(kvm_cpuid2) == 8, "kvm_cpuid2 layout differs from the kernel's");
static_assert(sizeof(kvm_msrs) == 8, "kvm_msrs layout differs from the kernel's");
static_assert(sizeof(kvm_msr_list) == 4, "kvm_msr_list layout differs from the kernel's");
static_assert(KVM_GET_SUPPORTED_CPUID == 0xc008ae05, "KVM_GET_SUPPORTED_CPUID number differs from the kernel's");
