#pragma once
// Shared between a VM and its vCPU threads: stop and pause requests, the
// count of parked vCPUs, and the VM's exit reason (the first one wins).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>

#include "vmm/vm_exit.h"

namespace skiff {

class RunControl {
 public:
  // vCPU side.
  bool should_stop() const { return stop_.load(); }
  bool should_pause() const { return pause_.load(); }
  // Blocks while a pause is requested and no stop is; counts itself parked.
  void park();
  // A vCPU that leaves its loop for good.
  void vcpu_exited();

  // VM side.
  // Called once, by whichever thread ends the VM, to get every vCPU out of KVM_RUN.
  void set_kicker(std::function<void()> kick) { kicker_ = std::move(kick); }
  void set_running_vcpus(size_t n);
  void request_pause() { pause_.store(true); }
  // Waits until every running vCPU is parked (or gone).
  void wait_all_parked();
  void resume();
  // Records the exit reason if none is recorded yet and asks every vCPU to stop.
  // Returns true when this call set the reason.
  bool finish(VmExit exit);
  bool finished() const;
  // Blocks until finish() was called and every vCPU has left its loop.
  VmExit wait();
  std::optional<VmExit> wait_for(std::chrono::milliseconds timeout);

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> pause_{false};
  size_t running_ = 0;
  size_t parked_ = 0;
  std::optional<VmExit> exit_;
  std::function<void()> kicker_;
};

}  // namespace skiff
