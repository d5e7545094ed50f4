#include "vmm/run_control.h"

namespace skiff {

void RunControl::park() {
  std::unique_lock lock(mutex_);
  ++parked_;
  cv_.notify_all();
  cv_.wait(lock, [&] { return !pause_.load() || stop_.load(); });
  --parked_;
}

void RunControl::vcpu_exited() {
  std::lock_guard lock(mutex_);
  --running_;
  cv_.notify_all();
}

void RunControl::set_running_vcpus(size_t n) {
  std::lock_guard lock(mutex_);
  running_ = n;
}

void RunControl::wait_all_parked() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return parked_ >= running_; });
}

void RunControl::resume() {
  std::lock_guard lock(mutex_);
  pause_.store(false);
  cv_.notify_all();
}

bool RunControl::finish(VmExit exit) {
  bool first;
  {
    std::lock_guard lock(mutex_);
    first = !exit_.has_value();
    if (first) exit_ = std::move(exit);
    stop_.store(true);
    cv_.notify_all();
  }
  if (first && kicker_) kicker_();
  return first;
}

bool RunControl::finished() const {
  std::lock_guard lock(mutex_);
  return exit_.has_value();
}

VmExit RunControl::wait() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return exit_.has_value() && running_ == 0; });
  return *exit_;
}

std::optional<VmExit> RunControl::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return exit_.has_value() && running_ == 0; })) return std::nullopt;
  return *exit_;
}

}  // namespace skiff
