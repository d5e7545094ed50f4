#pragma once
// RAII handles for the KVM system, VM and vCPU file descriptors. Every failing
// ioctl raises std::system_error saying what was being done.
#include "kvm/kvm_uapi.h"

#include <cstdint>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace skiff::kvm {

struct Capability {
  long id;
  const char* name;
};

// Capabilities the VMM cannot run without.
const std::vector<Capability>& required_capabilities();

class Vm;
class Vcpu;

// What kind of KVM is behind /dev/kvm.
enum class Flavour { HardwareVmx, HardwareSvm, Pvm, Unknown };
std::string to_string(Flavour);
Flavour detect_flavour();

class System {
 public:
  // Opens /dev/kvm and checks the API version; does not check capabilities.
  explicit System(const std::string& path = "/dev/kvm");

  int api_version() const;
  // KVM_CHECK_EXTENSION on the system fd: 0 when absent.
  int check_extension(long cap) const;
  // Throws std::runtime_error naming every missing required capability.
  void require_capabilities() const;
  std::vector<std::string> missing_capabilities() const;

  int vcpu_mmap_size() const;
  unsigned max_vcpus() const;
  std::vector<kvm_cpuid_entry2> supported_cpuid() const;
  std::vector<uint32_t> msr_index_list() const;

  Vm create_vm() const;
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::string path_;
};

class Vm {
 public:
  Vm(UniqueFd fd, int vcpu_mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {}

  void set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host, uint32_t flags = 0);
  void set_tss_address(uint64_t addr);
  void set_identity_map_address(uint64_t addr);
  void create_irqchip();
  void create_pit();
  void register_irqfd(int event_fd, uint32_t gsi);
  void unregister_irqfd(int event_fd, uint32_t gsi);
  // `datamatch` empty: any value written triggers the eventfd.
  void register_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool pio, const uint64_t* datamatch);
  void unregister_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool pio, const uint64_t* datamatch);
  void set_irq_line(uint32_t irq, bool level);
  int check_extension(long cap) const;

  Vcpu create_vcpu(uint32_t id) const;
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  int vcpu_mmap_size_;
};

class Vcpu {
 public:
  Vcpu(UniqueFd fd, uint32_t id, int mmap_size);
  Vcpu(Vcpu&&) noexcept;
  Vcpu& operator=(Vcpu&&) = delete;
  Vcpu(const Vcpu&) = delete;
  ~Vcpu();

  uint32_t id() const { return id_; }
  kvm_run* run_state() const { return run_; }

  // Returns false when KVM_RUN was interrupted (EINTR or immediate_exit).
  bool run();

  kvm_regs get_regs() const;
  void set_regs(const kvm_regs&);
  kvm_sregs get_sregs() const;
  void set_sregs(const kvm_sregs&);
  void set_fpu(const kvm_fpu&);
  void set_cpuid(const std::vector<kvm_cpuid_entry2>&);
  // Throws when KVM accepted fewer MSRs than given.
  void set_msrs(const std::vector<kvm_msr_entry>&);
  kvm_lapic_state get_lapic() const;
  void set_lapic(const kvm_lapic_state&);
  kvm_mp_state get_mp_state() const;

 private:
  UniqueFd fd_;
  uint32_t id_;
  kvm_run* run_ = nullptr;
  size_t mmap_size_ = 0;
};

}  // namespace skiff::kvm
