#pragma once
// The device specs of `skiff boot`: "VALUE[,key[=value]]..." strings turned
// into VM configuration. Bad input throws ConfigError with one line naming
// the option and the accepted form.
#include <string>

#include "vmm/vm.h"

namespace skiff::cli {

// --disk PATH[,ro][,serial=ID]
VmConfig::VirtioDeviceFactory parse_disk(const std::string& spec);
// --vsock CID[,socket=PATH]
VsockConfig parse_vsock(const std::string& spec);
// --share PATH,tag=TAG[,ro][,cache=none|auto|always][,writeback][,no-xattr][,queues=N][,workers=N][,dax[=MiB]]
// dax: a DAX cache window of that size (256 MiB by default) for mount -o dax.
// The directory is opened when the VM is created (PassthroughFs), so a
// missing one fails there with its path.
VmConfig::VirtioDeviceFactory parse_share(const std::string& spec);

}  // namespace skiff::cli
