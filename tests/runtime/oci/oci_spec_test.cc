// OCI bundles: every refusal names config.json and the field, a full config
// converts field by field into the agent's Spec, random values in any field
// give a ConfigError or a valid Spec, and default_spec()/features() match
// runc's.
#include "runtime/oci/oci_spec.h"

#include <capnp/message.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/config_error.h"

namespace skiff::runtime::oci {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

std::vector<std::string> strs(capnp::List<capnp::Text>::Reader l) {
  std::vector<std::string> out;
  for (auto t : l) out.push_back(str(t));
  return out;
}

json minimal() {
  return json::parse(R"({"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}})");
}

// A temporary bundle directory with an empty rootfs/.
class TempBundle {
 public:
  TempBundle() {
    char tmpl[] = "/tmp/skiff-oci-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (!d) throw std::runtime_error("mkdtemp failed");
    dir_ = d;
    fs::create_directories(dir_ / "rootfs");
  }
  ~TempBundle() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  TempBundle(const TempBundle&) = delete;
  TempBundle& operator=(const TempBundle&) = delete;
  std::string dir() const { return dir_.string(); }
  std::string file() const { return (dir_ / "config.json").string(); }

 private:
  fs::path dir_;
};

class OciSpecTest : public ::testing::Test {
 protected:
  Bundle parse(const json& config) { return parse_bundle(bundle_.dir(), config.dump()); }
  // The refusal's message, which must be one line "<dir>/config.json: <field>: ...".
  std::string refusal(const json& config, const std::string& field) { return refusal_of(config.dump(), field); }
  std::string refusal_of(const std::string& text, const std::string& field) {
    try {
      parse_bundle(bundle_.dir(), text);
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      EXPECT_EQ(what.rfind(bundle_.file() + ": " + field + ": ", 0), 0u) << what;
      return what;
    }
    ADD_FAILURE() << "accepted a config with a bad " << field;
    return {};
  }
  TempBundle bundle_;
};

json with(json config, const std::string& pointer, json value) {
  config[json::json_pointer(pointer)] = std::move(value);
  return config;
}

json without(json config, const std::string& pointer) {
  const json::json_pointer p(pointer);
  config[p.parent_pointer()].erase(p.back());
  return config;
}

// ---- refusals, one each ----

TEST_F(OciSpecTest, UnreadableFile) {
  try {
    load_bundle(bundle_.dir());
    FAIL() << "loaded a bundle without config.json";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), (bundle_.file() + ": cannot read: No such file or directory").c_str());
  }
}

TEST_F(OciSpecTest, LoadsFromTheFile) {
  std::ofstream(bundle_.file()) << minimal().dump();
  const Bundle b = load_bundle(bundle_.dir());
  EXPECT_EQ(b.dir, bundle_.dir());
  EXPECT_EQ(b.rootfs, bundle_.dir() + "/rootfs");
  EXPECT_EQ(b.config, minimal());
}

TEST_F(OciSpecTest, InvalidJsonWithBytePosition) {
  const std::string what = refusal_of(R"({"ociVersion": "1.0.2", "process": })", "invalid JSON at byte 36");
  EXPECT_NE(what.find("syntax error"), std::string::npos) << what;
}

TEST_F(OciSpecTest, TopLevelNotAnObject) {
  try {
    parse_bundle(bundle_.dir(), "[1, 2]");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), (bundle_.file() + ": must be a JSON object, not an array").c_str());
  }
}

TEST_F(OciSpecTest, NestingTooDeep) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string what = refusal_of(R"({"annotations": )" + deep + "}", "invalid JSON");
  EXPECT_NE(what.find("nested deeper than 64 levels"), std::string::npos) << what;
  EXPECT_FALSE(what.empty());
}

TEST_F(OciSpecTest, MissingOciVersion) { refusal(without(minimal(), "/ociVersion"), "ociVersion"); }
TEST_F(OciSpecTest, EmptyOciVersion) {
  EXPECT_NE(refusal(with(minimal(), "/ociVersion", ""), "ociVersion").find("is empty"), std::string::npos);
}
TEST_F(OciSpecTest, OciVersionNot1x) {
  EXPECT_NE(refusal(with(minimal(), "/ociVersion", "2.0.0"), "ociVersion").find("\"2.0.0\""), std::string::npos);
  refusal(with(minimal(), "/ociVersion", "1"), "ociVersion");
  refusal(with(minimal(), "/ociVersion", "10.1"), "ociVersion");
}
TEST_F(OciSpecTest, MissingProcess) {
  EXPECT_NE(refusal(without(minimal(), "/process"), "process").find("is missing"), std::string::npos);
}
TEST_F(OciSpecTest, NullProcessIsMissing) { refusal(with(minimal(), "/process", nullptr), "process"); }
TEST_F(OciSpecTest, EmptyArgs) { refusal(with(minimal(), "/process/args", json::array()), "process.args"); }
TEST_F(OciSpecTest, MissingArgs) { refusal(without(minimal(), "/process/args"), "process.args"); }
TEST_F(OciSpecTest, EmptyProgram) { refusal(with(minimal(), "/process/args", {""}), "process.args[0]"); }
TEST_F(OciSpecTest, MissingCwd) { refusal(without(minimal(), "/process/cwd"), "process.cwd"); }
TEST_F(OciSpecTest, RelativeCwd) {
  EXPECT_EQ(refusal(with(minimal(), "/process/cwd", "tmp"), "process.cwd"),
            bundle_.file() + ": process.cwd: must be an absolute path, not \"tmp\"");
}
TEST_F(OciSpecTest, MissingRootPath) { refusal(without(minimal(), "/root/path"), "root.path"); }
TEST_F(OciSpecTest, MissingRoot) { refusal(without(minimal(), "/root"), "root"); }
TEST_F(OciSpecTest, RootfsDoesNotExist) {
  const std::string what = refusal(with(minimal(), "/root/path", "nothere"), "root.path");
  EXPECT_NE(what.find(bundle_.dir() + "/nothere"), std::string::npos) << what;
  EXPECT_NE(what.find("No such file or directory"), std::string::npos) << what;
}
TEST_F(OciSpecTest, RootfsNotADirectory) {
  std::ofstream(bundle_.dir() + "/afile") << "x";
  EXPECT_NE(refusal(with(minimal(), "/root/path", "afile"), "root.path").find("is not a directory"), std::string::npos);
}
TEST_F(OciSpecTest, ArgsAString) {
  EXPECT_EQ(refusal(with(minimal(), "/process/args", "sh"), "process.args"),
            bundle_.file() + ": process.args: must be an array of strings, not a string");
}
TEST_F(OciSpecTest, UnknownNamespaceType) {
  EXPECT_NE(refusal(with(minimal(), "/linux/namespaces", json::parse(R"([{"type": "pid"}, {"type": "net"}])")),
                    "linux.namespaces[1].type")
                .find("unknown namespace type \"net\""),
            std::string::npos);
}
TEST_F(OciSpecTest, MountWithoutDestination) {
  refusal(with(minimal(), "/mounts", json::parse(R"([{"type": "tmpfs", "source": "tmpfs"}])")), "mounts[0].destination");
}
TEST_F(OciSpecTest, MountWithRelativeDestination) {
  EXPECT_NE(refusal(with(minimal(), "/mounts", json::parse(R"([{"destination": "/a"}, {"destination": "mnt", "type": "tmpfs"}])")),
                    "mounts[1].destination")
                .find("must be an absolute path, not \"mnt\""),
            std::string::npos);
}
TEST_F(OciSpecTest, BindMountWithoutSource) {
  refusal(with(minimal(), "/mounts", json::parse(R"([{"destination": "/a", "options": ["rbind"]}])")), "mounts[0].source");
}
TEST_F(OciSpecTest, NegativeUid) {
  EXPECT_EQ(refusal(with(minimal(), "/process/user", {{"uid", -1}, {"gid", 0}}), "process.user.uid"),
            bundle_.file() + ": process.user.uid: must be 0 to 4294967295, not -1");
}
TEST_F(OciSpecTest, OversizedConsoleHeight) {
  EXPECT_NE(refusal(with(minimal(), "/process/consoleSize", {{"height", 70000}, {"width", 80}}), "process.consoleSize.height")
                .find("must be 0 to 65535, not 70000"),
            std::string::npos);
}
TEST_F(OciSpecTest, OversizedOomScoreAdj) {
  refusal(with(minimal(), "/process/oomScoreAdj", int64_t{1} << 40), "process.oomScoreAdj");
}
TEST_F(OciSpecTest, OversizedMemoryLimit) {
  // Beyond int64: the parser holds it unsigned.
  refusal(with(minimal(), "/linux/resources/memory/limit", uint64_t{1} << 63), "linux.resources.memory.limit");
}
TEST_F(OciSpecTest, FractionForAnInteger) {
  EXPECT_NE(refusal(with(minimal(), "/linux/resources/cpu/shares", 1.5), "linux.resources.cpu.shares").find("must be an integer"),
            std::string::npos);
}
TEST_F(OciSpecTest, HookPathNotAbsolute) {
  EXPECT_NE(refusal(with(minimal(), "/hooks/poststart", json::parse(R"([{"path": "/bin/true"}, {"path": "hook.sh"}])")),
                    "hooks.poststart[1].path")
                .find("must be an absolute path, not \"hook.sh\""),
            std::string::npos);
}
TEST_F(OciSpecTest, HookTimeoutNotPositive) {
  refusal(with(minimal(), "/hooks/prestart", json::parse(R"([{"path": "/bin/true", "timeout": 0}])")), "hooks.prestart[0].timeout");
}
TEST_F(OciSpecTest, CgroupsPathWithDotDot) {
  refusal(with(minimal(), "/linux/cgroupsPath", "/a/../../b"), "linux.cgroupsPath");
}
TEST_F(OciSpecTest, CgroupsPathMalformedSystemdForm) {
  refusal(with(minimal(), "/linux/cgroupsPath", "system.slice:abc"), "linux.cgroupsPath");
  refusal(with(minimal(), "/linux/cgroupsPath", "system:docker:abc"), "linux.cgroupsPath");
}

// Wrong JSON types in converted fields, each named where it is.
TEST_F(OciSpecTest, WrongTypesNameTheField) {
  const std::vector<std::tuple<std::string, json, std::string>> cases = {
      {"/process/terminal", "yes", "process.terminal"},
      {"/process/user", {{"uid", "0"}}, "process.user.uid"},
      {"/process/env", {"A=1", 2}, "process.env[1]"},
      {"/process/capabilities", {{"bounding", "CAP_KILL"}}, "process.capabilities.bounding"},
      {"/process/rlimits", json::parse(R"([{"type": "RLIMIT_NOFILE", "hard": "1", "soft": 1}])"), "process.rlimits[0].hard"},
      {"/hostname", 7, "hostname"},
      {"/mounts", json::parse(R"([{"destination": "/a", "options": "ro"}])"), "mounts[0].options"},
      {"/linux", "x", "linux"},
      {"/linux/namespaces", json::object(), "linux.namespaces"},
      {"/linux/resources/devices", json::parse(R"([{"allow": 1}])"), "linux.resources.devices[0].allow"},
      {"/linux/resources/memory/limit", "1G", "linux.resources.memory.limit"},
      {"/linux/resources/unified", {{"memory.high", 5}}, "linux.resources.unified[\"memory.high\"]"},
      {"/linux/seccomp", json::parse(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read", "action": "x"}]})"),
       "linux.seccomp.syscalls[0].names"},
      {"/linux/sysctl", json::array(), "linux.sysctl"},
      {"/hooks/prestart", json::parse(R"([{"path": "/bin/true", "args": "x"}])"), "hooks.prestart[0].args"},
      {"/annotations", {{"a", 1}}, "annotations[\"a\"]"},
  };
  for (const auto& [pointer, value, field] : cases) {
    SCOPED_TRACE(pointer);
    refusal(with(minimal(), pointer, value), field);
  }
}

// ---- conversion ----

json full_config() {
  json c = default_spec();
  c["process"]["user"] = {{"uid", 1000}, {"gid", 1001}, {"umask", 18}, {"additionalGids", {5, 6}}};
  c["process"]["consoleSize"] = {{"height", 24}, {"width", 80}};
  c["process"]["oomScoreAdj"] = -500;
  c["process"]["apparmorProfile"] = "skiff-default";
  c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0";
  c["mounts"].push_back({{"destination", "/data"}, {"type", "bind"}, {"source", "/srv/data"}, {"options", {"rbind", "ro"}}});
  c["mounts"].push_back({{"destination", "/scratch"}, {"type", "none"}, {"source", "/srv/scratch"}, {"options", {"bind"}}});
  c["mounts"].push_back({{"destination", "/cache"}, {"type", "bind"}, {"source", "cache"}});
  c["linux"]["namespaces"][1] = {{"type", "network"}, {"path", "/var/run/netns/cni-1234"}};
  c["linux"]["resources"] = json::parse(R"({
    "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
    "memory": {"limit": 268435456, "reservation": 134217728, "swap": 536870912, "swappiness": 60},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
    "pids": {"limit": 100},
    "blockIO": {"weight": 500},
    "unified": {"memory.high": "200000000"}
  })");
  c["linux"]["devices"] = json::parse(R"([{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}])");
  c["linux"]["cgroupsPath"] = "system.slice:docker:abc";
  c["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  c["linux"]["seccomp"] = json::parse(R"({
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 18446744073709551615, "op": "SCMP_CMP_MASKED_EQ"}]},
      {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
    ]
  })");
  c["linux"]["rootfsPropagation"] = "rprivate";
  c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0";
  c["hooks"] = json::parse(R"({
    "prestart": [{"path": "/usr/bin/netns-setup", "args": ["netns-setup", "add"], "env": ["A=1"], "timeout": 5}],
    "createRuntime": [{"path": "/bin/true"}],
    "poststop": [{"path": "/bin/cleanup"}, {"path": "/bin/cleanup2"}]
  })");
  c["annotations"] = {{"io.kubernetes.pod", "p1"}, {"org.example", "x"}};
  return c;
}

TEST_F(OciSpecTest, FullConfigBundleFields) {
  fs::create_directories(bundle_.dir() + "/cache");
  const Bundle b = parse(full_config());
  EXPECT_EQ(b.rootfs, bundle_.dir() + "/rootfs");
  EXPECT_TRUE(b.rootfs_readonly);
  EXPECT_TRUE(b.terminal);
  ASSERT_EQ(b.hooks.prestart.size(), 1u);
  EXPECT_EQ(b.hooks.prestart[0].path, "/usr/bin/netns-setup");
  EXPECT_EQ(b.hooks.prestart[0].args, (std::vector<std::string>{"netns-setup", "add"}));
  EXPECT_EQ(b.hooks.prestart[0].env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(b.hooks.prestart[0].timeout_s, 5);
  ASSERT_EQ(b.hooks.create_runtime.size(), 1u);
  EXPECT_FALSE(b.hooks.create_runtime[0].timeout_s);
  EXPECT_TRUE(b.hooks.create_container.empty());
  EXPECT_TRUE(b.hooks.start_container.empty());
  EXPECT_TRUE(b.hooks.poststart.empty());
  ASSERT_EQ(b.hooks.poststop.size(), 2u);
  EXPECT_EQ(b.hooks.poststop[1].path, "/bin/cleanup2");
  EXPECT_EQ(b.annotations, (std::map<std::string, std::string>{{"io.kubernetes.pod", "p1"}, {"org.example", "x"}}));
  EXPECT_EQ(b.memory_limit, 268435456);
  ASSERT_TRUE(b.cpu_limit);
  EXPECT_DOUBLE_EQ(*b.cpu_limit, 0.5);
}

TEST_F(OciSpecTest, FullConfigConverted) {
  const Bundle b = parse(full_config());
  std::vector<std::pair<std::string, bool>> mapped;
  capnp::MallocMessageBuilder msg;
  auto builder = msg.initRoot<api::Spec>();
  to_agent_spec(b, "/run/skiff/c1/rootfs",
                [&](const std::string& source, bool ro) {
                  mapped.emplace_back(source, ro);
                  return "/run/skiff/c1/volumes/" + std::to_string(mapped.size() - 1);
                },
                builder);
  const api::Spec::Reader spec = builder.asReader();

  const auto p = spec.getProcess();
  EXPECT_TRUE(p.getTerminal());
  EXPECT_EQ(p.getConsoleSize().getRows(), 24);
  EXPECT_EQ(p.getConsoleSize().getCols(), 80);
  EXPECT_EQ(p.getUser().getUid(), 1000u);
  EXPECT_EQ(p.getUser().getGid(), 1001u);
  EXPECT_TRUE(p.getUser().getHasUmask());
  EXPECT_EQ(p.getUser().getUmask(), 18u);
  ASSERT_EQ(p.getUser().getAdditionalGids().size(), 2u);
  EXPECT_EQ(p.getUser().getAdditionalGids()[1], 6u);
  EXPECT_EQ(strs(p.getArgs()), std::vector<std::string>{"sh"});
  EXPECT_EQ(strs(p.getEnv()), (std::vector<std::string>{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}));
  EXPECT_EQ(str(p.getCwd()), "/");
  const std::vector<std::string> caps{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  EXPECT_EQ(strs(p.getCapabilities().getBounding()), caps);
  EXPECT_EQ(strs(p.getCapabilities().getEffective()), caps);
  EXPECT_EQ(strs(p.getCapabilities().getPermitted()), caps);
  EXPECT_EQ(p.getCapabilities().getAmbient().size(), 0u);  // default_spec has none (see there)
  EXPECT_EQ(p.getCapabilities().getInheritable().size(), 0u);
  ASSERT_EQ(p.getRlimits().size(), 1u);
  EXPECT_EQ(str(p.getRlimits()[0].getType()), "RLIMIT_NOFILE");
  EXPECT_EQ(p.getRlimits()[0].getHard(), 1024u);
  EXPECT_EQ(p.getRlimits()[0].getSoft(), 1024u);
  EXPECT_TRUE(p.getNoNewPrivileges());
  EXPECT_TRUE(p.getHasOomScoreAdj());
  EXPECT_EQ(p.getOomScoreAdj(), -500);
  EXPECT_EQ(str(p.getApparmorProfile()), "skiff-default");
  EXPECT_EQ(str(p.getSelinuxLabel()), "system_u:system_r:container_t:s0");

  EXPECT_EQ(str(spec.getRoot().getPath()), "/run/skiff/c1/rootfs");
  EXPECT_TRUE(spec.getRoot().getReadonly());
  EXPECT_EQ(str(spec.getHostname()), "runc");

  // Bind sources mapped (relative ones resolved against the bundle first);
  // other mounts as they are.
  ASSERT_EQ(mapped.size(), 3u);
  EXPECT_EQ(mapped[0], (std::pair<std::string, bool>{"/srv/data", true}));
  EXPECT_EQ(mapped[1], (std::pair<std::string, bool>{"/srv/scratch", false}));
  EXPECT_EQ(mapped[2], (std::pair<std::string, bool>{bundle_.dir() + "/cache", false}));
  const auto mounts = spec.getMounts();
  ASSERT_EQ(mounts.size(), 10u);
  EXPECT_EQ(str(mounts[1].getDestination()), "/dev");
  EXPECT_EQ(str(mounts[1].getType()), "tmpfs");
  EXPECT_EQ(str(mounts[1].getSource()), "tmpfs");
  EXPECT_EQ(strs(mounts[1].getOptions()), (std::vector<std::string>{"nosuid", "strictatime", "mode=755", "size=65536k"}));
  EXPECT_EQ(str(mounts[7].getDestination()), "/data");
  EXPECT_EQ(str(mounts[7].getType()), "bind");
  EXPECT_EQ(str(mounts[7].getSource()), "/run/skiff/c1/volumes/0");
  EXPECT_EQ(strs(mounts[7].getOptions()), (std::vector<std::string>{"rbind", "ro"}));
  EXPECT_EQ(str(mounts[8].getSource()), "/run/skiff/c1/volumes/1");
  EXPECT_EQ(str(mounts[8].getType()), "none");
  EXPECT_EQ(str(mounts[9].getSource()), "/run/skiff/c1/volumes/2");
  EXPECT_EQ(strs(mounts[9].getOptions()), std::vector<std::string>{"bind"});  // type "bind" alone

  const auto lx = spec.getLinux();
  ASSERT_EQ(lx.getNamespaces().size(), 5u);
  EXPECT_EQ(str(lx.getNamespaces()[1].getType()), "network");
  EXPECT_EQ(str(lx.getNamespaces()[1].getPath()), "");  // a host netns: dropped
  EXPECT_EQ(str(lx.getNamespaces()[4].getType()), "mount");
  ASSERT_EQ(lx.getDevices().size(), 1u);
  EXPECT_EQ(str(lx.getDevices()[0].getType()), "c");
  EXPECT_EQ(str(lx.getDevices()[0].getPath()), "/dev/fuse");
  EXPECT_EQ(lx.getDevices()[0].getMajor(), 10);
  EXPECT_EQ(lx.getDevices()[0].getMinor(), 229);
  EXPECT_TRUE(lx.getDevices()[0].getHasFileMode());
  EXPECT_EQ(lx.getDevices()[0].getFileMode(), 438u);

  const auto r = lx.getResources();
  ASSERT_EQ(r.getDevices().size(), 2u);
  EXPECT_FALSE(r.getDevices()[0].getAllow());
  EXPECT_EQ(str(r.getDevices()[0].getType()), "");
  EXPECT_EQ(r.getDevices()[0].getMajor(), -1);  // absent: any
  EXPECT_EQ(str(r.getDevices()[0].getAccess()), "rwm");
  EXPECT_TRUE(r.getDevices()[1].getAllow());
  EXPECT_EQ(str(r.getDevices()[1].getType()), "c");
  EXPECT_EQ(r.getDevices()[1].getMajor(), 1);
  EXPECT_EQ(r.getDevices()[1].getMinor(), 3);
  EXPECT_EQ(r.getMemory().getLimit(), 268435456);
  EXPECT_EQ(r.getMemory().getReservation(), 134217728);
  EXPECT_EQ(r.getMemory().getSwap(), 536870912);
  EXPECT_EQ(r.getMemory().getHigh(), 0);
  EXPECT_EQ(r.getCpu().getShares(), 512u);
  EXPECT_EQ(r.getCpu().getQuota(), 50000);
  EXPECT_EQ(r.getCpu().getPeriod(), 100000u);
  EXPECT_EQ(str(r.getCpu().getCpus()), "0-1");
  EXPECT_EQ(str(r.getCpu().getMems()), "0");
  EXPECT_EQ(r.getPidsLimit(), 100);
  EXPECT_EQ(r.getBlockIoWeight(), 500);
  ASSERT_EQ(r.getUnified().size(), 1u);
  EXPECT_EQ(str(r.getUnified()[0].getKey()), "memory.high");
  EXPECT_EQ(str(r.getUnified()[0].getValue()), "200000000");

  EXPECT_EQ(str(lx.getCgroupsPath()), "system.slice/docker-abc.scope");
  ASSERT_EQ(lx.getSysctl().size(), 1u);
  EXPECT_EQ(str(lx.getSysctl()[0].getKey()), "net.ipv4.ip_forward");
  EXPECT_EQ(str(lx.getSysctl()[0].getValue()), "1");

  ASSERT_TRUE(lx.getHasSeccomp());
  const auto s = lx.getSeccomp();
  EXPECT_EQ(str(s.getDefaultAction()), "SCMP_ACT_ERRNO");
  EXPECT_TRUE(s.getHasDefaultErrnoRet());
  EXPECT_EQ(s.getDefaultErrnoRet(), 1u);
  EXPECT_EQ(strs(s.getArchitectures()), (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
  EXPECT_EQ(strs(s.getFlags()), std::vector<std::string>{"SECCOMP_FILTER_FLAG_LOG"});
  ASSERT_EQ(s.getSyscalls().size(), 3u);
  EXPECT_EQ(strs(s.getSyscalls()[0].getNames()), (std::vector<std::string>{"read", "write"}));
  EXPECT_EQ(str(s.getSyscalls()[0].getAction()), "SCMP_ACT_ALLOW");
  EXPECT_FALSE(s.getSyscalls()[0].getHasErrnoRet());
  const auto args = s.getSyscalls()[1].getArgs();
  ASSERT_EQ(args.size(), 2u);
  EXPECT_EQ(args[0].getIndex(), 0u);
  EXPECT_EQ(args[0].getValue(), 8u);
  EXPECT_EQ(str(args[0].getOp()), "SCMP_CMP_EQ");
  EXPECT_EQ(args[1].getIndex(), 1u);
  EXPECT_EQ(args[1].getValue(), UINT64_MAX);
  EXPECT_EQ(args[1].getValueTwo(), 0u);
  EXPECT_EQ(str(args[1].getOp()), "SCMP_CMP_MASKED_EQ");
  EXPECT_TRUE(s.getSyscalls()[2].getHasErrnoRet());
  EXPECT_EQ(s.getSyscalls()[2].getErrnoRet(), 38u);

  EXPECT_EQ(str(lx.getRootfsPropagation()), "rprivate");
  EXPECT_EQ(lx.getMaskedPaths().size(), 10u);
  EXPECT_EQ(str(lx.getMaskedPaths()[2]), "/proc/kcore");
  EXPECT_EQ(strs(lx.getReadonlyPaths()), (std::vector<std::string>{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
  EXPECT_EQ(str(lx.getMountLabel()), "system_u:object_r:container_file_t:s0");

  ASSERT_EQ(spec.getAnnotations().size(), 2u);
  EXPECT_EQ(str(spec.getAnnotations()[0].getKey()), "io.kubernetes.pod");
  EXPECT_EQ(str(spec.getAnnotations()[0].getValue()), "p1");
}

TEST_F(OciSpecTest, JsonOverloadPassesBindSourcesAsWritten) {
  json c = minimal();
  c["mounts"] = json::parse(R"([{"destination": "/v", "source": "vol", "options": ["rbind", "rw"]}])");
  capnp::MallocMessageBuilder msg;
  std::string seen;
  to_agent_spec(c, "/r", [&](const std::string& s, bool ro) {
    seen = s;
    EXPECT_FALSE(ro);
    return std::string("/guest/vol");
  }, msg.initRoot<api::Spec>());
  EXPECT_EQ(seen, "vol");
  EXPECT_EQ(str(msg.getRoot<api::Spec>().asReader().getMounts()[0].getSource()), "/guest/vol");
}

TEST_F(OciSpecTest, AbsentFieldsStayAtDefaults) {
  const Bundle b = parse(minimal());
  EXPECT_FALSE(b.rootfs_readonly);
  EXPECT_FALSE(b.terminal);
  EXPECT_FALSE(b.memory_limit);
  EXPECT_FALSE(b.cpu_limit);
  EXPECT_TRUE(b.annotations.empty());
  capnp::MallocMessageBuilder msg;
  to_agent_spec(b.config, "/r", [](const std::string& s, bool) { return s; }, msg.initRoot<api::Spec>());
  const auto spec = msg.getRoot<api::Spec>().asReader();
  EXPECT_FALSE(spec.getProcess().getHasOomScoreAdj());
  EXPECT_FALSE(spec.getProcess().getUser().getHasUmask());
  EXPECT_FALSE(spec.getProcess().hasEnv());
  EXPECT_FALSE(spec.hasMounts());
  EXPECT_FALSE(spec.hasLinux());
  EXPECT_FALSE(spec.getLinux().getHasSeccomp());
  EXPECT_FALSE(spec.hasAnnotations());
  EXPECT_FALSE(spec.hasHostname());
  EXPECT_EQ(str(spec.getRoot().getPath()), "/r");
}

TEST_F(OciSpecTest, NullReadsAsAbsent) {
  json c = minimal();
  c["mounts"] = nullptr;
  c["linux"] = {{"seccomp", nullptr}, {"namespaces", nullptr}};
  c["process"]["env"] = nullptr;
  const Bundle b = parse(c);
  capnp::MallocMessageBuilder msg;
  to_agent_spec(b.config, "/r", [](const std::string& s, bool) { return s; }, msg.initRoot<api::Spec>());
  const auto spec = msg.getRoot<api::Spec>().asReader();
  EXPECT_FALSE(spec.hasMounts());
  EXPECT_FALSE(spec.getLinux().getHasSeccomp());
  EXPECT_FALSE(spec.getLinux().hasNamespaces());
}

TEST_F(OciSpecTest, CpuLimitNeedsQuotaAndPeriod) {
  EXPECT_FALSE(parse(with(minimal(), "/linux/resources/cpu", {{"quota", 50000}})).cpu_limit);
  EXPECT_FALSE(parse(with(minimal(), "/linux/resources/cpu", {{"quota", -1}, {"period", 100000}})).cpu_limit);
  EXPECT_DOUBLE_EQ(*parse(with(minimal(), "/linux/resources/cpu", {{"quota", 250000}, {"period", 100000}})).cpu_limit, 2.5);
  EXPECT_FALSE(parse(with(minimal(), "/linux/resources/memory", {{"limit", -1}})).memory_limit);
}

TEST_F(OciSpecTest, AbsoluteRootPathKeptAsIs) {
  const Bundle b = parse(with(minimal(), "/root/path", bundle_.dir() + "/rootfs/"));
  EXPECT_EQ(b.rootfs, bundle_.dir() + "/rootfs");
}

TEST(CgroupsPath, Forms) {
  EXPECT_EQ(guest_cgroups_path("/kubepods/besteffort/pod1/c1"), "kubepods/besteffort/pod1/c1");
  EXPECT_EQ(guest_cgroups_path("a//b/"), "a/b");
  EXPECT_EQ(guest_cgroups_path(""), "");
  EXPECT_EQ(guest_cgroups_path("system.slice:docker:abc"), "system.slice/docker-abc.scope");
  EXPECT_EQ(guest_cgroups_path(":cri-containerd:abc"), "system.slice/cri-containerd-abc.scope");
  EXPECT_EQ(guest_cgroups_path("kubepods-besteffort-pod1.slice:cri-containerd:abc"),
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope");
  EXPECT_EQ(guest_cgroups_path("-.slice::machine.slice"), "machine.slice");
  EXPECT_THROW(guest_cgroups_path("a:b"), ConfigError);
  EXPECT_THROW(guest_cgroups_path("a:b:c:d"), ConfigError);
  EXPECT_THROW(guest_cgroups_path("system.slice:docker:"), ConfigError);
  EXPECT_THROW(guest_cgroups_path("a--b.slice:p:n"), ConfigError);
  EXPECT_THROW(guest_cgroups_path("/x/.."), ConfigError);
}

// ---- process, resources, JSON text alone ----

TEST(AgentProcess, ConvertsAnExecProcess) {
  capnp::MallocMessageBuilder msg;
  to_agent_process(json::parse(R"({"args": ["ls", "-l"], "cwd": "/tmp", "env": ["A=1"], "terminal": false,
                                    "user": {"uid": 5, "gid": 6}})"),
                   msg.initRoot<api::ProcessSpec>());
  const auto p = msg.getRoot<api::ProcessSpec>().asReader();
  EXPECT_EQ(strs(p.getArgs()), (std::vector<std::string>{"ls", "-l"}));
  EXPECT_EQ(str(p.getCwd()), "/tmp");
  EXPECT_EQ(p.getUser().getUid(), 5u);
  try {
    to_agent_process(json::parse(R"({"args": ["ls"], "cwd": "tmp"})"), msg.initRoot<api::ProcessSpec>());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "process.cwd: must be an absolute path, not \"tmp\"");
  }
}

TEST(AgentResources, ConvertsAnUpdate) {
  capnp::MallocMessageBuilder msg;
  to_agent_resources(json::parse(R"({"memory": {"limit": 1048576}, "cpu": {"quota": 20000, "period": 100000}, "pids": {"limit": -1}})"),
                     msg.initRoot<api::Resources>());
  const auto r = msg.getRoot<api::Resources>().asReader();
  EXPECT_EQ(r.getMemory().getLimit(), 1048576);
  EXPECT_EQ(r.getCpu().getQuota(), 20000);
  EXPECT_EQ(r.getPidsLimit(), -1);
  try {
    to_agent_resources(json::parse(R"({"blockIO": {"weight": -3}})"), msg.initRoot<api::Resources>());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "resources.blockIO.weight: must be 0 to 65535, not -3");
  }
}

TEST(JsonText, LabelsParseErrors) {
  EXPECT_EQ(parse_json_text(R"({"a": [1]})", "x"), json::parse(R"({"a": [1]})"));
  try {
    parse_json_text("{\"a\": \n tru}", "--resources /tmp/r.json");
    FAIL();
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("--resources /tmp/r.json: invalid JSON at byte ", 0), 0u) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

// ---- random values anywhere ----

rc::Gen<std::string> interesting_string() {
  return rc::gen::oneOf(rc::gen::element<std::string>("", "/", "rootfs", "sh", "tmp", "bind", "rbind", "ro", "pid", "net", "..",
                                                      "a:b:c", "system.slice:x:y", "1.0.0", "2.0", "/bin/true", "\x01\n"),
                        rc::gen::string<std::string>());
}

rc::Gen<json> scalar() {
  return rc::gen::oneOf(rc::gen::just(json(nullptr)), rc::gen::map(rc::gen::arbitrary<bool>(), [](bool b) { return json(b); }),
                        rc::gen::map(rc::gen::arbitrary<int64_t>(), [](int64_t v) { return json(v); }),
                        rc::gen::map(rc::gen::arbitrary<uint64_t>(), [](uint64_t v) { return json(v); }),
                        rc::gen::map(rc::gen::inRange<int64_t>(-2, 70000), [](int64_t v) { return json(v); }),
                        rc::gen::map(rc::gen::arbitrary<double>(), [](double v) { return json(v); }),
                        rc::gen::map(interesting_string(), [](std::string s) { return json(std::move(s)); }));
}

rc::Gen<json> any_value() {
  return rc::gen::oneOf(
      scalar(), rc::gen::map(rc::gen::container<std::vector<json>>(rc::gen::resize(4, scalar())), [](std::vector<json> v) { return json(v); }),
      rc::gen::map(rc::gen::container<std::map<std::string, json>>(rc::gen::resize(4, interesting_string()), rc::gen::resize(4, scalar())),
                   [](std::map<std::string, json> m) { return json(m); }),
      rc::gen::map(rc::gen::container<std::vector<std::map<std::string, json>>>(
                       rc::gen::resize(3, rc::gen::container<std::map<std::string, json>>(
                                              rc::gen::element<std::string>("path", "type", "destination", "source", "options", "args",
                                                                            "names", "action", "index", "value", "op", "allow"),
                                              scalar()))),
                   [](std::vector<std::map<std::string, json>> v) { return json(v); }));
}

// Every node of a JSON tree but the root, as JSON pointers.
void pointers(const json& v, const std::string& at, std::vector<std::string>& out) {
  if (!at.empty()) out.push_back(at);
  if (v.is_object())
    for (const auto& [k, child] : v.items()) {
      std::string escaped;
      for (char c : k) escaped += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
      pointers(child, at + "/" + escaped, out);
    }
  else if (v.is_array())
    for (size_t i = 0; i < v.size(); ++i) pointers(v[i], at + "/" + std::to_string(i), out);
}

void check_valid(api::Spec::Reader spec) {
  const auto p = spec.getProcess();
  RC_ASSERT(p.getArgs().size() > 0u);
  RC_ASSERT(p.getArgs()[0].size() > 0u);
  RC_ASSERT(p.getCwd().size() > 0u && p.getCwd()[0] == '/');
  RC_ASSERT(str(spec.getRoot().getPath()) == "/run/rootfs");
  for (auto m : spec.getMounts()) RC_ASSERT(m.getDestination().size() > 0u && m.getDestination()[0] == '/');
  static const std::set<std::string> kTypes{"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"};
  for (auto n : spec.getLinux().getNamespaces()) {
    RC_ASSERT(kTypes.count(str(n.getType())) == 1u);
    RC_ASSERT(n.getPath().size() == 0u);
  }
  const std::string cg = str(spec.getLinux().getCgroupsPath());
  RC_ASSERT(cg.find(':') == std::string::npos);
  RC_ASSERT(cg.empty() || cg[0] != '/');
}

// Any JSON value in place of any field of a full config: parse_bundle refuses
// it with one ConfigError line naming the file, or accepts it and the
// conversion gives a Spec the agent can take; to_agent_spec alone, on the
// unchecked config, throws nothing but ConfigError either.
RC_GTEST_PROP(OciSpecProperty, AnyValueAnywhereIsRefusedOrValid, ()) {
  static TempBundle bundle;
  static const json base = full_config();
  static const std::vector<std::string> all = [] {
    std::vector<std::string> out;
    pointers(base, "", out);
    return out;
  }();
  const std::string pointer = *rc::gen::elementOf(all);
  const json value = *any_value();
  json config = base;
  config[json::json_pointer(pointer)] = value;
  RC_TAG(pointer.substr(0, pointer.find('/', 1)));
  const std::string text = config.dump(-1, ' ', false, json::error_handler_t::replace);

  const auto mapper = [](const std::string& s, bool ro) { return std::string(ro ? "/ro" : "/rw") + (s.empty() || s[0] != '/' ? "/" : "") + s; };
  try {
    capnp::MallocMessageBuilder direct;
    to_agent_spec(config, "/run/rootfs", mapper, direct.initRoot<api::Spec>());
  } catch (const ConfigError& e) {
    RC_ASSERT(std::string(e.what()).rfind("config.json: ", 0) == 0u);
  }
  try {
    const Bundle b = parse_bundle(bundle.dir(), text);
    capnp::MallocMessageBuilder msg;
    to_agent_spec(b, "/run/rootfs", mapper, msg.initRoot<api::Spec>());
    check_valid(msg.getRoot<api::Spec>().asReader());
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    RC_ASSERT(what.rfind(bundle.file() + ": ", 0) == 0u);
    RC_ASSERT(what.find('\n') == std::string::npos);
  }
}

// ---- runc's documents ----

bool runc_on_path() { return std::system("command -v runc >/dev/null 2>&1") == 0; }

TEST_F(OciSpecTest, DefaultSpecRoundTrips) {
  const Bundle b = parse(default_spec());
  EXPECT_EQ(b.config, default_spec());
  EXPECT_EQ(b.rootfs, bundle_.dir() + "/rootfs");
  EXPECT_TRUE(b.rootfs_readonly);
  EXPECT_TRUE(b.terminal);
  capnp::MallocMessageBuilder msg;
  to_agent_spec(b, "/run/r", [](const std::string& s, bool) { return s; }, msg.initRoot<api::Spec>());
  const auto spec = msg.getRoot<api::Spec>().asReader();
  EXPECT_EQ(strs(spec.getProcess().getArgs()), std::vector<std::string>{"sh"});
  EXPECT_EQ(spec.getMounts().size(), 7u);
  EXPECT_EQ(spec.getLinux().getNamespaces().size(), 5u);
  EXPECT_EQ(str(spec.getHostname()), "runc");
}

TEST_F(OciSpecTest, DefaultSpecIsRuncSpec) {
  if (!runc_on_path()) GTEST_SKIP() << "runc is not on PATH";
  const std::string dir = bundle_.dir() + "/runc";
  fs::create_directories(dir);
  ASSERT_EQ(std::system(("cd '" + dir + "' && runc spec").c_str()), 0);
  // runc 1.1 also lists ambient capabilities it does not make inheritable;
  // ours leaves them out (see default_spec): everything else is the same.
  json runc = json::parse(slurp(dir + "/config.json"));
  runc["process"]["capabilities"].erase("ambient");
  EXPECT_EQ(runc, default_spec());
}

TEST(Features, SaysWhatSkiffSupports) {
  const json f = features();
  EXPECT_EQ(f["ociVersionMin"], "1.0.0");
  EXPECT_EQ(f["ociVersionMax"], "1.1.0");
  EXPECT_EQ(f["hooks"].size(), 6u);
  const auto ns = f["linux"]["namespaces"].get<std::vector<std::string>>();
  EXPECT_EQ(ns, (std::vector<std::string>{"cgroup", "ipc", "mount", "network", "pid", "uts"}));
  EXPECT_TRUE(f["linux"]["seccomp"]["enabled"].get<bool>());
  EXPECT_FALSE(f["linux"]["apparmor"]["enabled"].get<bool>());
  EXPECT_FALSE(f["linux"]["selinux"]["enabled"].get<bool>());
  EXPECT_EQ(f["annotations"], json({{"io.skiff.runtime", "skiff"}}));
  const auto opts = f["mountOptions"].get<std::vector<std::string>>();
  EXPECT_TRUE(std::is_sorted(opts.begin(), opts.end()));
  for (const char* o : {"ro", "rbind", "rprivate", "nosuid", "strictatime"})
    EXPECT_NE(std::find(opts.begin(), opts.end(), o), opts.end()) << o;
}

TEST(Features, HasRuncsShape) {
  if (!runc_on_path()) GTEST_SKIP() << "runc is not on PATH";
  FILE* p = ::popen("runc features", "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ASSERT_EQ(::pclose(p), 0);
  const json runc = json::parse(out);
  const json ours = features();
  for (const auto& [k, v] : runc.items()) EXPECT_TRUE(ours.contains(k)) << k;
  for (const auto& [k, v] : runc["linux"].items()) EXPECT_TRUE(ours["linux"].contains(k)) << "linux." << k;
  EXPECT_EQ(ours["hooks"], runc["hooks"]);
  EXPECT_EQ(ours["linux"]["capabilities"], runc["linux"]["capabilities"]);
  EXPECT_EQ(ours["linux"]["seccomp"]["operators"], runc["linux"]["seccomp"]["operators"]);
  EXPECT_EQ(ours["linux"]["seccomp"]["archs"], runc["linux"]["seccomp"]["archs"]);
  // Every option we list, runc knows.
  for (const auto& o : ours["mountOptions"])
    EXPECT_NE(std::find(runc["mountOptions"].begin(), runc["mountOptions"].end(), o), runc["mountOptions"].end()) << o;
}

}  // namespace
}  // namespace skiff::runtime::oci
