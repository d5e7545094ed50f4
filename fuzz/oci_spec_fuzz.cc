// libFuzzer target for the runtime's OCI bundle parser (runtime/oci/oci_spec):
// config.json is whatever the caller of `skiff create` put in the bundle.
//
// Input: the bytes of a config.json, parsed with parse_bundle against a
// bundle directory that has an empty rootfs/. Seeds in fuzz/corpus/oci_spec/
// are plain JSON files (runc's default spec, a minimal and a full config,
// malformed ones).
//
// Checked beyond "no crash / no sanitizer report": a config is either
// refused with a ConfigError of one printable line that names config.json,
// or accepted, and then converts with to_agent_spec (no exception at all)
// into a Spec with a program, an absolute cwd, the guest rootfs, absolute
// mount destinations, no host namespace paths and a relative cgroupsPath.
#include <capnp/message.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/config_error.h"
#include "runtime/oci/oci_spec.h"

namespace {

constexpr const char* kGuestRootfs = "/run/skiff/shared/c1/rootfs";

[[noreturn]] void fail(const char* why, const std::string& detail = {}) {
  std::fprintf(stderr, "oci_spec_fuzz: %s %s\n", why, detail.c_str());
  std::abort();
}

// A bundle directory for the whole run, removed at exit.
struct BundleDir {
  BundleDir() {
    char tmpl[] = "/tmp/skiff-oci-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl)) fail("mkdtemp failed");
    dir = tmpl;
    std::filesystem::create_directory(dir + "/rootfs");
  }
  ~BundleDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir;
};

void check_refusal(const std::string& what, const std::string& file) {
  if (what.rfind(file + ": ", 0) != 0) fail("the refusal does not name config.json:", what);
  for (char c : what)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) fail("the refusal has a control byte:", what);
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

void check_accepted(skiff::api::Spec::Reader spec) {
  const auto p = spec.getProcess();
  if (p.getArgs().size() == 0 || p.getArgs()[0].size() == 0) fail("accepted with no program");
  if (p.getCwd().size() == 0 || p.getCwd()[0] != '/') fail("accepted a relative cwd");
  if (text(spec.getRoot().getPath()) != kGuestRootfs) fail("root.path is not the guest's rootfs");
  for (auto m : spec.getMounts())
    if (m.getDestination().size() == 0 || m.getDestination()[0] != '/') fail("accepted a relative mount destination");
  for (auto n : spec.getLinux().getNamespaces())
    if (n.getPath().size() != 0) fail("passed a host namespace path:", text(n.getPath()));
  const std::string cg = text(spec.getLinux().getCgroupsPath());
  if (cg.find(':') != std::string::npos || (!cg.empty() && cg[0] == '/')) fail("cgroupsPath is not relative:", cg);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1u << 20)) return 0;
  static const BundleDir bundle;
  const std::string file = bundle.dir + "/config.json";
  const std::string_view config(reinterpret_cast<const char*>(data), size);
  std::optional<skiff::runtime::oci::Bundle> b;
  try {
    b = skiff::runtime::oci::parse_bundle(bundle.dir, config);
  } catch (const skiff::ConfigError& e) {
    check_refusal(e.what(), file);
    return 0;
  } catch (const std::exception& e) {
    fail("parse_bundle threw something other than ConfigError:", e.what());
  }
  try {
    capnp::MallocMessageBuilder message;
    auto spec = message.initRoot<skiff::api::Spec>();
    skiff::runtime::oci::to_agent_spec(
        *b, kGuestRootfs, [](const std::string& source, bool ro) { return std::string(ro ? "/ro" : "/rw") + "/" + source; }, spec);
    check_accepted(spec.asReader());
  } catch (const std::exception& e) {
    fail("an accepted config did not convert:", e.what());
  }
  return 0;
}
