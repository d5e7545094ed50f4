#pragma once
// The device specs of `skiff boot`: "VALUE[,key[=value]]..." strings turned
// into device configuration (plain data, vmm/device_config.h). Bad input
// throws ConfigError with one line naming the option and the accepted form.
// Every spec takes id=ID; without one the machine names the device
// <kind><n> (disk0, share0, vsock0).
#include <string>

#include "base/config_error.h"
#include "vmm/device_config.h"

namespace skiff::cli {

// --disk PATH[,ro][,serial=ID][,id=ID]
DiskConfig parse_disk(const std::string& spec);
// --vsock CID[,socket=PATH][,id=ID]
VsockConfig parse_vsock(const std::string& spec);
// --share PATH,tag=TAG[,ro][,cache=none|auto|always][,writeback][,no-xattr][,queues=N][,workers=N][,dax[=MiB]][,id=ID]
// dax: a DAX cache window of that size (256 MiB by default) for mount -o dax.
// The directory is opened when the machine is created, so a missing one
// fails there with its path.
ShareConfig parse_share(const std::string& spec);

}  // namespace skiff::cli
