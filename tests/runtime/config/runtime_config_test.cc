// The runtime's TOML config: defaults, the documented file, one-line errors
// with file:line:col and field, loading, and per-sandbox sizing.
#include "runtime/config/runtime_config.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#ifndef SKIFF_SOURCE_DIR
#error "the build defines SKIFF_SOURCE_DIR as the repository root"
#endif

namespace skiff::runtime {
namespace {

namespace fs = std::filesystem;

const HostResources kHost{.cpus = 16, .memory_mib = 32768};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

RuntimeConfig defaults() { return default_config("/opt/skiff/vmlinux", "/opt/skiff/initramfs.cpio.gz"); }

RuntimeConfig parse(const std::string& text) { return parse_config(text, "test.toml", defaults(), kHost); }

std::string parse_error(const std::string& text) {
  return error_of([&] { parse(text); });
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(RuntimeConfig, Defaults) {
  const RuntimeConfig c = defaults();
  EXPECT_EQ(c.hypervisor.kernel, "/opt/skiff/vmlinux");
  EXPECT_EQ(c.hypervisor.initrd, "/opt/skiff/initramfs.cpio.gz");
  EXPECT_EQ(c.hypervisor.kernel_params, "");
  EXPECT_EQ(c.hypervisor.default_vcpus, 1u);
  EXPECT_EQ(c.hypervisor.default_maxvcpus, 0u);
  EXPECT_EQ(c.hypervisor.default_memory_mib, 256u);
  EXPECT_EQ(c.hypervisor.default_maxmemory_mib, 0u);
  EXPECT_FALSE(c.hypervisor.hugepages);
  EXPECT_EQ(c.hypervisor.shared_fs_cache, "auto");
  EXPECT_EQ(c.hypervisor.dax_mib, 0u);
  EXPECT_EQ(c.hypervisor.fs_workers, 4u);
  EXPECT_EQ(c.hypervisor.boot_timeout_ms, 60000u);
  EXPECT_EQ(c.agent.port, 1024u);
  EXPECT_EQ(c.agent.grace_ms, 10000u);
  EXPECT_FALSE(c.agent.debug_console);
  EXPECT_EQ(c.runtime.root, "/run/skiff");
  EXPECT_EQ(c.runtime.log_level, "info");
  EXPECT_EQ(c.runtime.log_format, "json");
  EXPECT_FALSE(c.runtime.static_sandbox_resource_mgmt);
  EXPECT_EQ(c.source, "built-in defaults");
  // An empty file changes nothing but the source.
  RuntimeConfig empty = parse("");
  EXPECT_EQ(empty.source, "test.toml");
  empty.source = c.source;
  EXPECT_EQ(empty, c);
}

TEST(RuntimeConfig, DocumentedFileIsTheDefaults) {
  const std::string text = slurp(fs::path(SKIFF_SOURCE_DIR) / "docs" / "config.toml");
  ASSERT_FALSE(text.empty());
  RuntimeConfig c = parse_config(text, "docs/config.toml", defaults(), kHost);
  EXPECT_EQ(c.source, "docs/config.toml");
  c.source = defaults().source;
  EXPECT_EQ(c, defaults());

  // Over a config where every field differs, the file sets every field back
  // to its default: it documents them all (the kernel and initrd, which are
  // the build's, stay as they were).
  RuntimeConfig other = default_config("/k", "/i");
  other.hypervisor.kernel_params = "quiet";
  other.hypervisor.default_vcpus = 3;
  other.hypervisor.default_maxvcpus = 8;
  other.hypervisor.default_memory_mib = 512;
  other.hypervisor.default_maxmemory_mib = 4096;
  other.hypervisor.hugepages = true;
  other.hypervisor.shared_fs_cache = "none";
  other.hypervisor.dax_mib = 1024;
  other.hypervisor.fs_workers = 8;
  other.hypervisor.boot_timeout_ms = 5000;
  other.agent.port = 2000;
  other.agent.grace_ms = 1;
  other.agent.debug_console = true;
  other.runtime.root = "/x";
  other.runtime.log_level = "debug";
  other.runtime.log_format = "text";
  other.runtime.static_sandbox_resource_mgmt = true;
  c = parse_config(text, "docs/config.toml", other, kHost);
  c.source = "built-in defaults";
  EXPECT_EQ(c, default_config("/k", "/i"));
}

TEST(RuntimeConfig, EveryFieldIsRead) {
  const RuntimeConfig c = parse(R"(
[hypervisor]
kernel = "/boot/vmlinux"
initrd = "/boot/initrd"
kernel_params = "quiet loglevel=3"
default_vcpus = 2
default_maxvcpus = 8
default_memory_mib = 2048
default_maxmemory_mib = 4096
hugepages = true
shared_fs_cache = "always"
dax_mib = 512
fs_workers = 16
boot_timeout_ms = 1000
[agent]
port = 5000
grace_ms = 0
debug_console = true
[runtime]
root = "/var/run/skiff"
log_level = "warn"
log_format = "text"
static_sandbox_resource_mgmt = true
)");
  EXPECT_EQ(c.hypervisor.kernel, "/boot/vmlinux");
  EXPECT_EQ(c.hypervisor.initrd, "/boot/initrd");
  EXPECT_EQ(c.hypervisor.kernel_params, "quiet loglevel=3");
  EXPECT_EQ(c.hypervisor.default_vcpus, 2u);
  EXPECT_EQ(c.hypervisor.default_maxvcpus, 8u);
  EXPECT_EQ(c.hypervisor.default_memory_mib, 2048u);
  EXPECT_EQ(c.hypervisor.default_maxmemory_mib, 4096u);
  EXPECT_TRUE(c.hypervisor.hugepages);
  EXPECT_EQ(c.hypervisor.shared_fs_cache, "always");
  EXPECT_EQ(c.hypervisor.dax_mib, 512u);
  EXPECT_EQ(c.hypervisor.fs_workers, 16u);
  EXPECT_EQ(c.hypervisor.boot_timeout_ms, 1000u);
  EXPECT_EQ(c.agent.port, 5000u);
  EXPECT_EQ(c.agent.grace_ms, 0u);
  EXPECT_TRUE(c.agent.debug_console);
  EXPECT_EQ(c.runtime.root, "/var/run/skiff");
  EXPECT_EQ(c.runtime.log_level, "warn");
  EXPECT_EQ(c.runtime.log_format, "text");
  EXPECT_TRUE(c.runtime.static_sandbox_resource_mgmt);
  // Inline tables and dotted keys are the same tables.
  const RuntimeConfig d = parse("agent = { port = 7 }\nhypervisor.fs_workers = 2\n");
  EXPECT_EQ(d.agent.port, 7u);
  EXPECT_EQ(d.hypervisor.fs_workers, 2u);
}

TEST(RuntimeConfig, TheExampleErrorLine) {
  EXPECT_EQ(parse_error("[hypervisor]\ndefault_vcpus = 0\n"),
            "test.toml:2:17: hypervisor.default_vcpus: must be 1 to 255, not 0");
}

struct RangeCase {
  std::string section;
  std::string key;
  std::string bad;   // a TOML value out of range
  std::string good;  // an edge value accepted
  std::string why;   // the message after the field
};

TEST(RuntimeConfig, EachFieldsRangeErrorNamesTheFieldAndTheLine) {
  const std::vector<RangeCase> cases = {
      {"hypervisor", "kernel", R"("vmlinux")", R"("/v")", R"(must be an absolute path, not "vmlinux")"},
      {"hypervisor", "initrd", R"("")", R"("/i")", R"(must be an absolute path, not "")"},
      {"hypervisor", "kernel_params", R"("a\nb")", R"("")", R"(must be one line, not "a\x0ab")"},
      {"hypervisor", "default_vcpus", "256", "255", "must be 1 to 255, not 256"},
      {"hypervisor", "default_vcpus", "-1", "1", "must be 1 to 255, not -1"},
      {"hypervisor", "default_vcpus", "4294967297", "1", "must be 1 to 255, not 4294967297"},
      {"hypervisor", "default_maxvcpus", "256", "255", "must be 0 to 255, not 256"},
      {"hypervisor", "default_memory_mib", "63", "64", "must be 64 to 32768 (the host's RAM in MiB), not 63"},
      {"hypervisor", "default_memory_mib", "32769", "32768", "must be 64 to 32768 (the host's RAM in MiB), not 32769"},
      {"hypervisor", "default_maxmemory_mib", "32769", "32768", "must be 0 to 32768 (the host's RAM in MiB), not 32769"},
      {"hypervisor", "default_maxmemory_mib", "-1", "0", "must be 0 to 32768 (the host's RAM in MiB), not -1"},
      {"hypervisor", "shared_fs_cache", R"("Auto")", R"("none")",
       R"(must be one of none, auto, always, not "Auto")"},
      {"hypervisor", "dax_mib", "1", "2", "must be 0 or a power of two from 2 to 65536, not 1"},
      {"hypervisor", "dax_mib", "768", "65536", "must be 0 or a power of two from 2 to 65536, not 768"},
      {"hypervisor", "dax_mib", "131072", "0", "must be 0 or a power of two from 2 to 65536, not 131072"},
      {"hypervisor", "fs_workers", "0", "64", "must be 1 to 64, not 0"},
      {"hypervisor", "fs_workers", "65", "1", "must be 1 to 64, not 65"},
      {"hypervisor", "boot_timeout_ms", "999", "1000", "must be 1000 to 600000, not 999"},
      {"hypervisor", "boot_timeout_ms", "600001", "600000", "must be 1000 to 600000, not 600001"},
      {"agent", "port", "0", "1", "must be 1 to 2147483647, not 0"},
      {"agent", "port", "0x80000000", "0x7fffffff", "must be 1 to 2147483647, not 2147483648"},
      {"agent", "grace_ms", "86400001", "86400000", "must be 0 to 86400000, not 86400001"},
      {"runtime", "root", R"("run/skiff")", R"("/")", R"(must be an absolute path, not "run/skiff")"},
      {"runtime", "log_level", R"("trace")", R"("error")", R"(must be one of debug, info, warn, error, not "trace")"},
      {"runtime", "log_format", R"("xml")", R"("text")", R"(must be one of json, text, not "xml")"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.section + "." + c.key + " = " + c.bad);
    // Two lines down, so the line number is the field's and not the table's.
    const std::string head = "# comment\n[" + c.section + "]\n";
    const std::string column = std::to_string(c.key.size() + 4);
    EXPECT_EQ(parse_error(head + c.key + " = " + c.bad + "\n"),
              "test.toml:3:" + column + ": " + c.section + "." + c.key + ": " + c.why);
    EXPECT_EQ(parse_error(head + c.key + " = " + c.good + "\n"), "");
  }
}

TEST(RuntimeConfig, MaxVcpusBelowVcpus) {
  EXPECT_EQ(parse_error("[hypervisor]\ndefault_vcpus = 4\ndefault_maxvcpus = 2\n"),
            "test.toml:3:20: hypervisor.default_maxvcpus: must be 0 or at least default_vcpus (4), not 2");
  // Set apart, the error is at the one the file set.
  RuntimeConfig base = defaults();
  base.hypervisor.default_maxvcpus = 2;
  EXPECT_EQ(error_of([&] { parse_config("[hypervisor]\ndefault_vcpus = 3\n", "t", base, kHost); }),
            "t:2:17: hypervisor.default_maxvcpus: must be 0 or at least default_vcpus (3), not 2");
  EXPECT_EQ(parse("[hypervisor]\ndefault_vcpus = 4\ndefault_maxvcpus = 4\n").hypervisor.default_maxvcpus, 4u);
  EXPECT_EQ(parse("[hypervisor]\ndefault_vcpus = 4\ndefault_maxvcpus = 0\n").hypervisor.default_maxvcpus, 0u);
}

TEST(RuntimeConfig, MaxMemoryBelowMemory) {
  EXPECT_EQ(parse_error("[hypervisor]\ndefault_memory_mib = 512\ndefault_maxmemory_mib = 256\n"),
            "test.toml:3:25: hypervisor.default_maxmemory_mib: must be 0 or at least default_memory_mib (512), not 256");
  RuntimeConfig base = defaults();
  base.hypervisor.default_maxmemory_mib = 300;
  EXPECT_EQ(error_of([&] { parse_config("[hypervisor]\ndefault_memory_mib = 400\n", "t", base, kHost); }),
            "t:2:22: hypervisor.default_maxmemory_mib: must be 0 or at least default_memory_mib (400), not 300");
  EXPECT_EQ(parse("[hypervisor]\ndefault_maxmemory_mib = 256\n").hypervisor.default_maxmemory_mib, 256u);
  EXPECT_EQ(parse("[hypervisor]\ndefault_memory_mib = 512\ndefault_maxmemory_mib = 0\n").hypervisor.default_maxmemory_mib, 0u);
}

TEST(RuntimeConfig, UnknownTablesAndKeys) {
  EXPECT_EQ(parse_error("[hypervisor]\ndefualt_vcpus = 2\n"), "test.toml:2:1: hypervisor.defualt_vcpus: unknown key");
  EXPECT_EQ(parse_error("\n[hypervisr]\ndefault_vcpus = 2\n"), "test.toml:2:2: hypervisr: unknown table");
  EXPECT_EQ(parse_error("debug = true\n"), "test.toml:1:1: debug: unknown key");
  EXPECT_EQ(parse_error("[hypervisor.qemu]\npath = \"/x\"\n"), "test.toml:1:13: hypervisor.qemu: unknown table");
  EXPECT_EQ(parse_error("[agent]\n\"a\\nb\" = 1\n"), "test.toml:2:1: agent.a\\x0ab: unknown key");
}

TEST(RuntimeConfig, TheFirstErrorInTheFileIsTheOneReported) {
  // Not the first in key order: toml++ keeps keys sorted.
  EXPECT_EQ(parse_error("[hypervisor]\nfs_workers = 0\nboot_timeout_ms = 1\n"),
            "test.toml:2:14: hypervisor.fs_workers: must be 1 to 64, not 0");
  EXPECT_EQ(parse_error("[zz]\n[agent]\nport = 0\n"), "test.toml:1:2: zz: unknown table");
}

TEST(RuntimeConfig, WrongTypes) {
  EXPECT_EQ(parse_error("[hypervisor]\ndefault_vcpus = \"2\"\n"),
            "test.toml:2:17: hypervisor.default_vcpus: must be an integer, not a string");
  EXPECT_EQ(parse_error("[hypervisor]\ndefault_memory_mib = 1.5\n"),
            "test.toml:2:22: hypervisor.default_memory_mib: must be an integer, not a float");
  EXPECT_EQ(parse_error("[hypervisor]\nhugepages = 1\n"),
            "test.toml:2:13: hypervisor.hugepages: must be true or false, not an integer");
  EXPECT_EQ(parse_error("[hypervisor]\nkernel = [\"/a\"]\n"),
            "test.toml:2:10: hypervisor.kernel: must be a string, not an array");
  EXPECT_EQ(parse_error("[runtime]\nlog_level = 1979-05-27\n"),
            "test.toml:2:13: runtime.log_level: must be a string, not a date");
  EXPECT_EQ(parse_error("hypervisor = 1\n"), "test.toml:1:14: hypervisor: must be a table, not an integer");
  EXPECT_EQ(parse_error("[[agent]]\nport = 1\n"), "test.toml:1:1: agent: must be a table, not an array");
}

TEST(RuntimeConfig, SyntaxErrorsAreOneLineWithLineAndColumn) {
  for (const std::string text : {"[hypervisor\n", "[agent]\nport = \n", "[agent]\nport = 1\nport = 2\n",
                                 "a = \"\xff\"\n", "x = 99999999999999999999\n"}) {
    SCOPED_TRACE(text);
    const std::string e = parse_error(text);
    EXPECT_EQ(e.rfind("test.toml:", 0), 0u) << e;
    EXPECT_GT(e.size(), std::string("test.toml:1:1: ").size()) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  // toml++ 3.3 asserts where its own error handling would do: not an abort.
  EXPECT_EQ(parse_error("[;hypervisor]\n"),
            "test.toml:1:2: Error while parsing key: expected bare key starting character or string "
            "delimiter, saw ';'");
  const std::string dup = parse_error("[agent]\nport = 1\nport = 2\n");
  EXPECT_EQ(dup.rfind("test.toml:3:", 0), 0u) << dup;
}

TEST(RuntimeConfig, CodePointsToml3MishandlesAreRefused) {
  // Each range's ends, as raw UTF-8, in a comment, a string and a key.
  for (const std::string bad : {"\u00a1", "\u00e9", "\u0499", "\u2c5e", "\u2fff", "\u3001", "\u3057", "\ufb26",
                                "\ufefe"}) {
    SCOPED_TRACE(bad);
    EXPECT_NE(parse_error("# caf" + bad + "\n").find("test.toml:1:6: the character U+"), std::string::npos);
    EXPECT_NE(parse_error("[runtime]\nroot = \"/" + bad + "\"\n").find("test.toml:2:10: the character U+"),
              std::string::npos);
    EXPECT_NE(parse_error("[runtime]\nab" + bad + " = 1\n").find("test.toml:2:3: the character U+"), std::string::npos);
  }
  EXPECT_EQ(parse_error("# \u00e9\n"),
            "test.toml:1:3: the character U+00E9 is refused: toml++ 3.3 mishandles U+00A1-U+0499, U+2C5E-U+2FFF, "
            "U+3001-U+3057 and U+FB26-U+FEFE");
  // Overlong forms are caught as what they decode to.
  EXPECT_NE(parse_error("# \xe0\x83\xa9\n"), "");
  // The neighbours are toml++'s to judge: fine in a comment and a string.
  for (const std::string good : {"\u00a0", "\u049a", "\u2c5d", "\u3000", "\u3058", "\ufb25", "\ufeff", "\U0001f600"}) {
    SCOPED_TRACE(good);
    EXPECT_EQ(parse_error("# " + good + "\n[runtime]\nroot = \"/" + good + "\"\n"), "");
  }
  // What the fuzzer found: U+0479 where toml++ looks for whitespace.
  EXPECT_NE(parse_error("[runtime]\nzog_\xd1\xb9 = 1\n"), "");
}

class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-config-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(LoadConfigTest, MissingExplicitFileIsAnErrorMissingDefaultIsNot) {
  const std::string missing = (dir_ / "config.toml").string();
  RuntimeConfig c = load_config(missing, false, defaults());
  EXPECT_EQ(c.source, "built-in defaults");
  EXPECT_EQ(c, defaults());
  RuntimeConfig other = defaults();
  other.source = "something else";
  EXPECT_EQ(load_config(missing, false, other).source, "built-in defaults");
  EXPECT_EQ(error_of([&] { load_config(missing, true, defaults()); }), missing + ": no such config file");
}

TEST_F(LoadConfigTest, ReadsTheFileAndNamesItInErrors) {
  const std::string path = (dir_ / "config.toml").string();
  std::ofstream(path) << "[hypervisor]\ndefault_vcpus = 2\n";
  for (bool explicit_path : {false, true}) {
    const RuntimeConfig c = load_config(path, explicit_path, defaults());
    EXPECT_EQ(c.source, path);
    EXPECT_EQ(c.hypervisor.default_vcpus, 2u);
  }
  std::ofstream(path) << "[hypervisor]\ndefault_vcpus = 0\n";
  EXPECT_EQ(error_of([&] { load_config(path, false, defaults()); }).rfind(path + ":2:17: hypervisor.default_vcpus:", 0),
            0u);
  EXPECT_EQ(error_of([&] { load_config(dir_.string(), true, defaults()); }),
            dir_.string() + ": the config file is not a regular file");
  std::ofstream(path) << std::string((1 << 20) + 10, '#');
  EXPECT_NE(error_of([&] { load_config(path, true, defaults()); }).find("over 1048576 bytes"), std::string::npos);
}

// --- sizing ------------------------------------------------------------------

SandboxSizing size(const RuntimeConfig& c, const std::map<std::string, std::string>& annotations,
                   const std::vector<ContainerLimits>& containers = {}) {
  return size_sandbox(c, annotations, containers, kHost);
}

RuntimeConfig sizing_config() {
  RuntimeConfig c = defaults();
  c.hypervisor.default_vcpus = 2;
  c.hypervisor.default_maxvcpus = 8;
  c.hypervisor.kernel_params = "quiet";
  return c;
}

TEST(SandboxSizing, NoContainersIsTheDefaults) {
  const SandboxSizing s = size(sizing_config(), {});
  EXPECT_EQ(s, (SandboxSizing{.vcpus = 2, .max_vcpus = 8, .memory_mib = 256, .extra_kernel_params = "quiet"}));
}

TEST(SandboxSizing, CpuLimitsAreRoundedUpEach) {
  const SandboxSizing s = size(sizing_config(), {}, {{.cpus = 1.5, .memory_bytes = {}}, {.cpus = 0.2, .memory_bytes = {}}});
  EXPECT_EQ(s.vcpus, 2u + 2u + 1u);
  EXPECT_EQ(s.memory_mib, 256u);
  EXPECT_EQ(size(sizing_config(), {}, {{.cpus = 3.0, .memory_bytes = {}}}).vcpus, 5u);
}

TEST(SandboxSizing, MemoryLimitsAreRoundedUpToMib) {
  constexpr int64_t kMib = 1 << 20;
  const SandboxSizing s =
      size(sizing_config(), {}, {{.cpus = {}, .memory_bytes = 100 * kMib + 1}, {.cpus = {}, .memory_bytes = 64 * kMib}});
  EXPECT_EQ(s.memory_mib, 256u + 101u + 64u);
  EXPECT_EQ(s.vcpus, 2u);
  EXPECT_EQ(size(sizing_config(), {}, {{.cpus = {}, .memory_bytes = 1}}).memory_mib, 257u);
}

TEST(SandboxSizing, NoLimitAddsNothing) {
  const SandboxSizing s = size(sizing_config(), {},
                               {{.cpus = -1, .memory_bytes = -1}, {.cpus = 0, .memory_bytes = 0}, {.cpus = NAN, .memory_bytes = {}}, {}});
  EXPECT_EQ(s.vcpus, 2u);
  EXPECT_EQ(s.memory_mib, 256u);
}

TEST(SandboxSizing, CappedAtMaxVcpusAndHostRam) {
  constexpr int64_t kGib = int64_t{1} << 30;
  std::vector<ContainerLimits> many(10, ContainerLimits{.cpus = 4, .memory_bytes = 8 * kGib});
  const SandboxSizing s = size(sizing_config(), {}, many);
  EXPECT_EQ(s.vcpus, 8u);
  EXPECT_EQ(s.memory_mib, 32768u);
  // With no maximum set, the host's CPUs are the maximum.
  RuntimeConfig c = sizing_config();
  c.hypervisor.default_maxvcpus = 0;
  EXPECT_EQ(size(c, {}, many).vcpus, 16u);
  EXPECT_EQ(size(c, {}, many).max_vcpus, 16u);
  EXPECT_EQ(size_sandbox(c, {}, {}, HostResources{.cpus = 1000, .memory_mib = 1024}).max_vcpus, 255u);
  // ...but never below default_vcpus.
  c.hypervisor.default_vcpus = 32;
  EXPECT_EQ(size(c, {}).max_vcpus, 32u);
  EXPECT_EQ(size(c, {}).vcpus, 32u);
}

TEST(SandboxSizing, AContainerAskingMoreThanTheHostHasIsAnError) {
  EXPECT_EQ(error_of([] { size(sizing_config(), {}, {{}, {.cpus = 16.5, .memory_bytes = {}}}); }),
            "container 1: a CPU limit of 16.5 is more than the host's 16 CPUs");
  EXPECT_NE(error_of([] { size(sizing_config(), {}, {{.cpus = INFINITY, .memory_bytes = {}}}); }), "");
  EXPECT_EQ(error_of([] { size(sizing_config(), {}, {{.cpus = {}, .memory_bytes = (int64_t{32768} << 20) + 1}}); }),
            "container 0: a memory limit of 32769 MiB is more than the host's 32768 MiB");
  EXPECT_EQ(error_of([] { size(sizing_config(), {}, {{.cpus = 16, .memory_bytes = int64_t{32768} << 20}}); }), "");
}

TEST(SandboxSizing, StaticResourceManagementIgnoresTheLimits) {
  RuntimeConfig c = sizing_config();
  c.runtime.static_sandbox_resource_mgmt = true;
  const SandboxSizing s = size(c, {}, {{.cpus = 1.5, .memory_bytes = 1 << 30}, {.cpus = 99, .memory_bytes = INT64_MAX}});
  EXPECT_EQ(s.vcpus, 2u);
  EXPECT_EQ(s.memory_mib, 256u);
  EXPECT_EQ(size(c, {{"io.skiff.vcpus", "6"}}).vcpus, 6u);
}

TEST(SandboxSizing, AnnotationsWinOverSizing) {
  const std::vector<ContainerLimits> containers = {{.cpus = 1.5, .memory_bytes = 1 << 30}};
  const SandboxSizing s = size(sizing_config(),
                               {{"io.skiff.vcpus", "7"}, {"io.skiff.memory_mib", "1024"},
                                {"io.skiff.kernel_params", "init=/x debug"}, {"other.annotation", "ignored"}},
                               containers);
  EXPECT_EQ(s.vcpus, 7u);
  EXPECT_EQ(s.max_vcpus, 8u);
  EXPECT_EQ(s.memory_mib, 1024u);
  EXPECT_EQ(s.extra_kernel_params, "quiet init=/x debug");
  RuntimeConfig c = sizing_config();
  c.hypervisor.kernel_params = "";
  EXPECT_EQ(size(c, {{"io.skiff.kernel_params", "debug"}}).extra_kernel_params, "debug");
  EXPECT_EQ(size(c, {{"io.skiff.vcpus", "1"}, {"io.skiff.memory_mib", "64"}}).memory_mib, 64u);
  EXPECT_EQ(size(c, {{"io.skiff.memory_mib", "32768"}}).memory_mib, 32768u);
}

TEST(SandboxSizing, MaxMemoryIsTheRoomToGrowInWholeBlocks) {
  RuntimeConfig c = sizing_config();
  EXPECT_EQ(size(c, {}).max_memory_mib, 0u) << "no maximum, no room";
  c.hypervisor.default_maxmemory_mib = 1024;
  EXPECT_EQ(size(c, {}).max_memory_mib, 1024u);
  // 256 + 101 MiB from a limit: 667 MiB above it is not whole 2 MiB blocks.
  constexpr int64_t kMib = 1 << 20;
  const SandboxSizing s = size(c, {}, {{.cpus = {}, .memory_bytes = 100 * kMib + 1}});
  EXPECT_EQ(s.memory_mib, 357u);
  EXPECT_EQ(s.max_memory_mib, 1023u);
  EXPECT_EQ(size(c, {{"io.skiff.memory_mib", "1023"}}).max_memory_mib, 0u) << "1 MiB is no block";
  EXPECT_EQ(size(c, {{"io.skiff.memory_mib", "1024"}}).max_memory_mib, 0u);
  EXPECT_EQ(size(c, {{"io.skiff.memory_mib", "2048"}}).max_memory_mib, 0u) << "booted above the maximum";
  EXPECT_EQ(size(c, {{"io.skiff.memory_mib", "1022"}}).max_memory_mib, 1024u);
}

TEST(SandboxSizing, BadAnnotationsNameTheAnnotation) {
  for (const std::string bad : {"abc", "0", "-1", "1e9", "", " 2", "2 ", "+2", "2.0", "9", "99999999999999999999999"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(error_of([&] { size(sizing_config(), {{"io.skiff.vcpus", bad}}); }),
              "annotation io.skiff.vcpus: must be an integer from 1 to 8 (max_vcpus), not \"" + bad + "\"");
  }
  for (const std::string bad : {"abc", "0", "-1", "1e9", "63", "32769", "64k"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(error_of([&] { size(sizing_config(), {{"io.skiff.memory_mib", bad}}); }),
              "annotation io.skiff.memory_mib: must be an integer from 64 to 32768 (the host's RAM in MiB), not \"" +
                  bad + "\"");
  }
  EXPECT_EQ(error_of([] { size(sizing_config(), {{"io.skiff.kernel_params", "a\nb"}}); }),
            "annotation io.skiff.kernel_params: must be one line, not \"a\\x0ab\"");
}

RC_GTEST_PROP(SandboxSizingProperty, StaysWithinTheDefaultsAndTheCaps, ()) {
  RuntimeConfig c = defaults();
  c.hypervisor.default_vcpus = *rc::gen::inRange<uint32_t>(1, 256);
  c.hypervisor.default_maxvcpus = *rc::gen::element<uint32_t>(0, c.hypervisor.default_vcpus, 255);
  c.hypervisor.default_memory_mib = *rc::gen::inRange<uint64_t>(64, 32769);
  c.hypervisor.default_maxmemory_mib =
      *rc::gen::oneOf(rc::gen::just<uint64_t>(0), rc::gen::inRange<uint64_t>(c.hypervisor.default_memory_mib, 32769));
  std::vector<ContainerLimits> containers(*rc::gen::inRange<size_t>(0, 12));
  for (auto& l : containers) {
    if (*rc::gen::arbitrary<bool>()) l.cpus = *rc::gen::inRange(-2000, 20000) / 1000.0;
    if (*rc::gen::arbitrary<bool>()) l.memory_bytes = *rc::gen::inRange<int64_t>(-1, int64_t{40000} << 20);
  }
  try {
    const SandboxSizing s = size(c, {}, containers);
    RC_ASSERT(s.max_vcpus >= c.hypervisor.default_vcpus);
    RC_ASSERT(s.max_vcpus <= 255u);
    RC_ASSERT(s.vcpus >= c.hypervisor.default_vcpus);
    RC_ASSERT(s.vcpus <= s.max_vcpus);
    RC_ASSERT(s.memory_mib >= c.hypervisor.default_memory_mib);
    RC_ASSERT(s.memory_mib <= std::max<uint64_t>(c.hypervisor.default_memory_mib, kHost.memory_mib));
    if (s.max_memory_mib != 0) {
      RC_ASSERT(s.max_memory_mib > s.memory_mib);
      RC_ASSERT((s.max_memory_mib - s.memory_mib) % 2 == 0);
      RC_ASSERT(s.max_memory_mib <= c.hypervisor.default_maxmemory_mib);
      RC_ASSERT(c.hypervisor.default_maxmemory_mib - s.max_memory_mib <= 1);
    } else {
      RC_ASSERT(c.hypervisor.default_maxmemory_mib <= s.memory_mib + 1);
    }
  } catch (const ConfigError& e) {
    RC_ASSERT(std::string(e.what()).rfind("container ", 0) == 0);
  }
}

// --- properties --------------------------------------------------------------

void expect_only_config_errors(const std::string& text) {
  try {
    parse_config(text, "p.toml", defaults(), kHost);
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    RC_ASSERT(what.rfind("p.toml:", 0) == 0);
    RC_ASSERT(what.find('\n') == std::string::npos);
  }
  // Anything else escapes and fails the property.
}

RC_GTEST_PROP(RuntimeConfigProperty, ArbitraryTextThrowsOnlyConfigError, (const std::string& text)) {
  expect_only_config_errors(text);
}

RC_GTEST_PROP(RuntimeConfigProperty, NearlyValidFilesThrowOnlyConfigError, ()) {
  // Lines built from the real tables, keys and values, to get past the
  // parser into the field checks.
  const auto line = rc::gen::oneOf(
      rc::gen::element<std::string>("[hypervisor]", "[agent]", "[runtime]", "[hypervisor.x]", "[[agent]]", "[x]", ""),
      rc::gen::map(rc::gen::tuple(rc::gen::element<std::string>("kernel", "initrd", "kernel_params", "default_vcpus",
                                                                 "default_maxvcpus", "default_memory_mib", "hugepages",
                                                                 "shared_fs_cache", "dax_mib", "fs_workers",
                                                                 "boot_timeout_ms", "port", "grace_ms", "debug_console",
                                                                 "root", "log_level", "log_format", "hypervisor", "z",
                                                                 "static_sandbox_resource_mgmt"),
                                  rc::gen::oneOf(rc::gen::map(rc::gen::arbitrary<int64_t>(),
                                                              [](int64_t v) { return std::to_string(v); }),
                                                 rc::gen::map(rc::gen::inRange<int64_t>(-2, 70000),
                                                              [](int64_t v) { return std::to_string(v); }),
                                                 rc::gen::element<std::string>("true", "false", "\"auto\"", "\"/a\"",
                                                                               "\"a\"", "1.5", "[]", "{}", "\"\\n\"",
                                                                               "1979-05-27", "nan", "inf"))),
                   [](const std::tuple<std::string, std::string>& kv) {
                     return std::get<0>(kv) + " = " + std::get<1>(kv);
                   }));
  const auto lines = *rc::gen::container<std::vector<std::string>>(line);
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  expect_only_config_errors(text);
}

}  // namespace
}  // namespace skiff::runtime
