#pragma once
// Architectural vCPU state at boot: CPUID, MSRs, FPU, local APIC, and the
// registers, segments and page tables of the entry mode (64-bit Linux boot
// protocol or 32-bit PVH).
#include "kvm/kvm_uapi.h"

#include <cstdint>
#include <vector>

#include "vmm/boot/kernel_image.h"
#include "memory/guest_memory.h"
#include "kvm/kvm.h"

namespace skiff::boot {

struct CpuTopology {
  uint32_t vcpu_index;  // also the APIC id
  uint32_t max_vcpus;   // all possible vCPUs, as cores of one socket
  // KVM emulates the LAPIC's TSC-deadline mode (KVM_CAP_TSC_DEADLINE_TIMER)
  // but leaves advertising it to userspace.
  bool tsc_deadline = false;
};

// The guest's CPUID for one vCPU, derived from KVM_GET_SUPPORTED_CPUID:
// APIC id in leaves 1, 0xB and 0x1F, one socket of `max_vcpus` cores with one
// thread each, the hypervisor bit, TSC-deadline when KVM emulates it, and
// KVM's hypervisor leaves.
std::vector<kvm_cpuid_entry2> guest_cpuid(const std::vector<kvm_cpuid_entry2>& supported, const CpuTopology& topo);

// MSRs Linux expects at boot (SYSCALL MSRs cleared, fast strings on, MTRRs
// enabled write-back), restricted to those KVM reports it handles.
std::vector<kvm_msr_entry> boot_msrs(const std::vector<uint32_t>& kvm_msr_index_list);

// 64-bit GDT entry from flags, base and limit, in the layout the CPU reads.
uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);

// Writes the GDT, an empty IDT and identity page tables (first 1 GiB, 2 MiB
// pages) for the 64-bit entry.
void write_long_mode_tables(const GuestMemory& mem);
// GDT for the 32-bit PVH entry.
void write_pvh_gdt(const GuestMemory& mem);

// Segment registers, control registers and EFER for each entry mode, applied
// to `sregs` as KVM reports them after vCPU creation.
void set_long_mode_sregs(kvm_sregs& sregs);
void set_pvh_sregs(kvm_sregs& sregs);

// Boot-processor registers for the entry mode.
kvm_regs boot_regs(const LoadedKernel& kernel);

// Sets CPUID, MSRs, FPU and LINT0/LINT1 on every vCPU; registers and segments
// on the boot processor only (the others wait for INIT/SIPI).
void configure_vcpu(kvm::Vcpu& vcpu, const std::vector<kvm_cpuid_entry2>& supported,
                    const std::vector<uint32_t>& msr_list, const CpuTopology& topo, const LoadedKernel& kernel);

}  // namespace skiff::boot
