#pragma once
// The Hypervisor of a sandbox: Skiff's own VMM (skiff::Machine) in this
// process, no hypervisor process and no IPC.
#include <memory>
#include <mutex>

#include "runtime/sandbox/hypervisor.h"

namespace skiff {
class Machine;
}

namespace skiff::runtime {

class VmmHypervisor final : public Hypervisor {
 public:
  VmmHypervisor();
  ~VmmHypervisor() override;

  std::string name() const override { return "skiff-vmm"; }
  HypervisorCapabilities capabilities() const override;
  void boot(const VmConfig& config) override;
  void pause() override;
  void resume() override;
  void stop() override;
  VmExit wait() override;
  void resize_vcpus(uint32_t vcpus) override;
  void resize_memory(uint64_t mib) override;
  uint64_t memory_mib() const override;
  void add_device(const DeviceConfig& device) override;
  bool remove_device(const std::string& id) override;
  UniqueFd connect_vsock(uint32_t port) override;

 private:
  Machine& machine() const;
  std::unique_ptr<Machine> machine_;
  uint32_t max_vcpus_ = 0;
  uint64_t boot_memory_mib_ = 0;
};

}  // namespace skiff::runtime
