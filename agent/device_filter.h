#pragma once
// linux.resources.devices enforced on cgroup v2, which has no devices.allow
// file: a BPF_PROG_TYPE_CGROUP_DEVICE program made from the rules, attached
// to the container's cgroup (as runc does, without libbpf: the program is a
// few compares per rule).
//
// Meaning, as cgroup v1 applied the rules one after the other: the last rule
// that matches a request decides. An allow rule matches when the request's
// access is within the rule's ("rw" allows a read); a deny rule when it
// shares any access with it ("w" denies a read-write open). No rule matching:
// denied. No rules at all: no program (everything allowed), as before.
#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "agent/container_spec.h"

namespace skiff::agent {

std::vector<bpf_insn> device_filter_program(const std::vector<DeviceRuleSpec>& rules);

// What the program decides for one request: type 'c' or 'b', access some of
// "rwm"; the reference the program is tested against.
bool device_rules_allow(const std::vector<DeviceRuleSpec>& rules, char type, uint32_t major, uint32_t minor,
                        const std::string& access);

// Loads the program and attaches it to `cgroup_dir`, replacing the one a
// previous call attached (Container.update). Throws CgroupError.
void attach_device_filter(const std::string& cgroup_dir, const std::vector<DeviceRuleSpec>& rules);

}  // namespace skiff::agent
