// libFuzzer target for `skiff boot`'s device specs (runtime/cli/device_specs):
// the strings an operator types after --disk, --share and --vsock.
//
// Input: the first byte picks the parser (mod 3: disk, share, vsock), the
// rest is the spec. Seeds in fuzz/corpus/device_specs/ are specs as typed,
// e.g. printf '\001/srv,tag=root,ro,dax=512' > fuzz/corpus/device_specs/share_dax
//
// Checked beyond "no crash / no sanitizer report": a spec is either refused
// with a ConfigError whose message is one line naming the option, or what
// the parser returns passes the device check (vmm/device_config.h) that the
// machine applies, so the CLI never hands the machine a device it refuses.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/cli/device_specs.h"

namespace {

[[noreturn]] void fail(const char* why) {
  std::fprintf(stderr, "device_specs_fuzz: %s\n", why);
  std::abort();
}

void check_error(const skiff::ConfigError& e, const char* option) {
  const std::string what = e.what();
  if (what.rfind(option, 0) != 0) fail("the error does not start with the option");
  if (what.find('\n') != std::string::npos) fail("the error is more than one line");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string spec(reinterpret_cast<const char*>(data) + 1, size - 1);
  static constexpr const char* kOptions[] = {"--disk", "--share", "--vsock"};
  const unsigned which = data[0] % 3;
  try {
    skiff::DeviceConfig config;
    if (which == 0) config = skiff::cli::parse_disk(spec);
    else if (which == 1) config = skiff::cli::parse_share(spec);
    else config = skiff::cli::parse_vsock(spec);
    try {
      skiff::validate(config);
    } catch (const skiff::ConfigError&) {
      fail("the parser accepted a spec the device check refuses");
    }
  } catch (const skiff::ConfigError& e) {
    check_error(e, kOptions[which]);
  }
  return 0;
}
