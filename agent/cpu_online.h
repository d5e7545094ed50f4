#pragma once
// The guest's vCPUs taken online and offline through sysfs: how a sandbox's
// vCPU count changes while it runs. The VMM boots every possible vCPU
// present and the kernel with maxcpus= (vmm/machine.cc), so the ones not
// brought up at boot wait, parked, until they are set online here.
#include <cstdint>
#include <string>
#include <vector>

namespace skiff::agent {

// A sysfs CPU list ("0-3,5"), as in present and online. std::runtime_error
// for text that is not one.
std::vector<uint32_t> parse_cpu_list(const std::string& text);

// Makes `count` CPUs online: the lowest-numbered present ones (CPU 0 is
// never taken offline), each others offline; writes only what changes.
// `cpu_dir` is /sys/devices/system/cpu (tests give another). Returns how
// many are online after. std::runtime_error with one line: count 0 or above
// what is present, or a write the kernel refused.
uint32_t set_online_cpus(const std::string& cpu_dir, uint32_t count);

}  // namespace skiff::agent
