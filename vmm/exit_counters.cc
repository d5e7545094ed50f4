#include "vmm/exit_counters.h"

#include "kvm/kvm_uapi.h"

namespace skiff {

uint64_t ExitCounters::total() const {
  uint64_t t = 0;
  for (const auto& c : counts_) t += c.load(std::memory_order_relaxed);
  return t;
}

std::string ExitCounters::summary() const {
  std::string s;
  for (uint32_t r = 0; r < kReasons; ++r) {
    uint64_t n = counts_[r].load(std::memory_order_relaxed);
    if (!n) continue;
    if (!s.empty()) s += ' ';
    s += exit_reason_name(r) + "=" + std::to_string(n);
  }
  if (uint64_t n = unclaimed_pio_.load(std::memory_order_relaxed)) s += " unclaimed_pio=" + std::to_string(n);
  if (uint64_t n = unclaimed_mmio_.load(std::memory_order_relaxed)) s += " unclaimed_mmio=" + std::to_string(n);
  return s.empty() ? "none" : s;
}

std::string exit_reason_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_UNKNOWN: return "unknown";
    case KVM_EXIT_EXCEPTION: return "exception";
    case KVM_EXIT_IO: return "io";
    case KVM_EXIT_HYPERCALL: return "hypercall";
    case KVM_EXIT_DEBUG: return "debug";
    case KVM_EXIT_HLT: return "hlt";
    case KVM_EXIT_MMIO: return "mmio";
    case KVM_EXIT_IRQ_WINDOW_OPEN: return "irq_window_open";
    case KVM_EXIT_SHUTDOWN: return "shutdown";
    case KVM_EXIT_FAIL_ENTRY: return "fail_entry";
    case KVM_EXIT_INTR: return "intr";
    case KVM_EXIT_SET_TPR: return "set_tpr";
    case KVM_EXIT_TPR_ACCESS: return "tpr_access";
    case KVM_EXIT_NMI: return "nmi";
    case KVM_EXIT_INTERNAL_ERROR: return "internal_error";
    case KVM_EXIT_SYSTEM_EVENT: return "system_event";
    case KVM_EXIT_IOAPIC_EOI: return "ioapic_eoi";
    case KVM_EXIT_HYPERV: return "hyperv";
    case KVM_EXIT_X86_RDMSR: return "rdmsr";
    case KVM_EXIT_X86_WRMSR: return "wrmsr";
    default: return "reason" + std::to_string(reason);
  }
}

}  // namespace skiff
