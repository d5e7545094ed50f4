#pragma once
// Just enough ACPI Machine Language to describe Skiff's platform in the
// DSDT: names holding integers, strings, packages and resource buffers,
// devices and scopes. Encodings follow the ACPI 6.x specification, section 20.
#include <cstdint>
#include <string>
#include <vector>

namespace skiff::boot::aml {

using Bytes = std::vector<uint8_t>;

// PkgLength: 1 to 4 bytes covering itself and what follows it.
Bytes pkg_length(size_t content_length);
// A 4-character NameSeg ("_S5_"), or a root path ("\\_SB_").
Bytes name_string(const std::string& name);
Bytes integer(uint64_t value);
Bytes string(const std::string& s);
Bytes package(const std::vector<Bytes>& elements);
Bytes buffer(const Bytes& data);
// Name(name, object)
Bytes name(const std::string& name, const Bytes& object);
Bytes device(const std::string& name, const std::vector<Bytes>& body);
Bytes scope(const std::string& name, const std::vector<Bytes>& body);
// Resource template items, closed by end_tag() into a buffer.
Bytes io_port(uint16_t base, uint8_t length);
Bytes resource_template(const std::vector<Bytes>& items);

}  // namespace skiff::boot::aml
