#include "agent/cpu_online.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace skiff::agent {
namespace {

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line)) throw std::runtime_error(path + ": cannot be read");
  return line;
}

uint32_t parse_cpu(const std::string& s, const std::string& whole) {
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos)
    throw std::runtime_error("CPU list \"" + whole + "\": \"" + s + "\" is not a CPU number");
  return static_cast<uint32_t>(std::stoul(s));
}

bool contains(const std::vector<uint32_t>& cpus, uint32_t cpu) {
  for (uint32_t c : cpus)
    if (c == cpu) return true;
  return false;
}

void write_online(const std::string& cpu_dir, uint32_t cpu, bool on) {
  const std::string path = cpu_dir + "/cpu" + std::to_string(cpu) + "/online";
  std::ofstream f(path);
  if (!f) throw std::runtime_error("CPU " + std::to_string(cpu) + ": " + path + ": " + std::strerror(errno));
  f << (on ? "1" : "0") << std::flush;
  if (!f) throw std::runtime_error("CPU " + std::to_string(cpu) + ": the kernel refused to set it " + (on ? "online" : "offline"));
}

}  // namespace

std::vector<uint32_t> parse_cpu_list(const std::string& text) {
  std::vector<uint32_t> cpus;
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.empty()) return cpus;
  std::stringstream ss(t);
  std::string part;
  while (std::getline(ss, part, ',')) {
    const auto dash = part.find('-');
    const uint32_t first = parse_cpu(part.substr(0, dash), text);
    const uint32_t last = dash == std::string::npos ? first : parse_cpu(part.substr(dash + 1), text);
    if (last < first || last - first > 4096) throw std::runtime_error("CPU list \"" + text + "\": bad range \"" + part + "\"");
    for (uint32_t c = first; c <= last; ++c) cpus.push_back(c);
  }
  return cpus;
}

uint32_t set_online_cpus(const std::string& cpu_dir, uint32_t count) {
  const auto present = parse_cpu_list(read_line(cpu_dir + "/present"));
  if (count == 0) throw std::runtime_error("setOnlineCpus: 0 CPUs: at least one must stay online");
  if (count > present.size())
    throw std::runtime_error("setOnlineCpus: " + std::to_string(count) + " CPUs asked, " + std::to_string(present.size()) +
                             " present in the guest");
  const auto online = parse_cpu_list(read_line(cpu_dir + "/online"));
  // Up lowest first, down highest first: the set stays a prefix throughout.
  for (size_t i = 0; i < count; ++i)
    if (!contains(online, present[i])) write_online(cpu_dir, present[i], true);
  for (size_t i = present.size(); i-- > count;)
    if (contains(online, present[i])) write_online(cpu_dir, present[i], false);
  return static_cast<uint32_t>(parse_cpu_list(read_line(cpu_dir + "/online")).size());
}

}  // namespace skiff::agent
