// skiffctl without a VM: the JSON printer on a struct with every field type
// (its schema parsed here, so no generated code), the argument handling that
// never reaches a sandbox, and each command against a fake sandbox process
// (a Cap'n Proto server of api/control.capnp on a thread, found under a
// temporary --root through its state.json). The real VM is the e2e tier's.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <unistd.h>

#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/schema-parser.h>
#include <kj/async-io.h>
#include <kj/encoding.h>
#include <kj/filesystem.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <mutex>
#include <regex>
#include <thread>

#include "api/control.capnp.h"
#include "base/config_error.h"
#include "runtime/ctl/ctl_commands.h"
#include "runtime/ctl/exec_command.h"
#include "runtime/ctl/json_dump.h"
#include "runtime/ctl/latency.h"
#include "runtime/ctl/raw_call.h"
#include "runtime/sandbox/console.h"
#include "runtime/state/state_store.h"

namespace skiff::runtime::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

// ---- the JSON printer ----

constexpr const char* kProbeSchema = R"(@0xb8c6e1f2a3d4c5b7;
interface Probe { poke @0 (); }
enum Color { red @0; green @1; blue @2; }
struct Inner { n @0 :UInt32; label @1 :Text; }
struct Everything {
  v @0 :Void;
  b @1 :Bool;
  i8 @2 :Int8;
  i16 @3 :Int16;
  i32 @4 :Int32;
  i64 @5 :Int64;
  u8 @6 :UInt8;
  u16 @7 :UInt16;
  u32 @8 :UInt32;
  u64 @9 :UInt64;
  f32 @10 :Float32;
  f64 @11 :Float64;
  text @12 :Text;
  data @13 :Data;
  color @14 :Color;
  inner @15 :Inner;
  numbers @16 :List(Int32);
  inners @17 :List(Inner);
  colors @18 :List(Color);
  words @19 :List(Text);
  nested @20 :List(List(UInt8));
  blobs @21 :List(Data);
  probe @22 :Probe;
  any @23 :AnyPointer;
  pair :group { x @24 :Int32; y @25 :Text; }
  choice :union { none @26 :Void; number @27 :UInt16; word @28 :Text; }
  union { left @29 :Int32; right @30 :Text; }
  unsetText @31 :Text;
  unsetInner @32 :Inner;
  unsetList @33 :List(UInt32);
  unsetAny @34 :AnyPointer;
  unsetProbe @35 :Probe;
  withDefault @36 :Int16 = -7;
}
)";

// The schema lives as long as its parser, which needs its directory.
struct ProbeSchema {
  kj::Own<kj::Directory> dir = kj::newInMemoryDirectory(kj::nullClock());
  capnp::SchemaParser parser;
  capnp::StructSchema everything;
  capnp::InterfaceSchema probe;
  ProbeSchema() {
    auto path = kj::Path::parse("probe.capnp");
    dir->openFile(path, kj::WriteMode::CREATE)->writeAll(kProbeSchema);
    auto file = parser.parseFromDirectory(*dir, kj::mv(path), nullptr);
    everything = file.getNested("Everything").asStruct();
    probe = file.getNested("Probe").asInterface();
  }
};

const ProbeSchema& probe_schema() {
  static const ProbeSchema s;
  return s;
}

class ProbeServer final : public capnp::DynamicCapability::Server {
 public:
  explicit ProbeServer(capnp::InterfaceSchema s) : capnp::DynamicCapability::Server(s) {}
  kj::Promise<void> call(capnp::InterfaceSchema::Method, capnp::CallContext<capnp::DynamicStruct, capnp::DynamicStruct>) override {
    return kj::READY_NOW;
  }
};

TEST(JsonDump, EveryFieldTypeByName) {
  kj::EventLoop loop;  // a local capability wants one
  kj::WaitScope ws(loop);
  const auto& schema = probe_schema();
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<capnp::DynamicStruct>(schema.everything);
  root.set("b", true);
  root.set("i8", int8_t{-8});
  root.set("i16", int16_t{-16000});
  root.set("i32", int32_t{-2000000000});
  root.set("i64", std::numeric_limits<int64_t>::min());
  root.set("u8", uint8_t{255});
  root.set("u16", uint16_t{65535});
  root.set("u32", uint32_t{4000000000u});
  root.set("u64", std::numeric_limits<uint64_t>::max());
  root.set("f32", 1.5f);
  root.set("f64", -0.25);
  root.set("text", "h\xc3\xa9llo \"q\"");
  const kj::byte bytes[] = {0x00, 0x01, 0xfe, 0xff};
  root.set("data", capnp::Data::Reader(bytes, sizeof bytes));
  root.set("color", "blue");
  auto inner = root.init("inner").as<capnp::DynamicStruct>();
  inner.set("n", 7u);
  inner.set("label", "in");
  auto numbers = root.init("numbers", 3).as<capnp::DynamicList>();
  for (int i = 0; i < 3; ++i) numbers.set(i, int32_t{i * 10 - 10});
  auto inners = root.init("inners", 2).as<capnp::DynamicList>();
  inners[0].as<capnp::DynamicStruct>().set("n", 1u);
  inners[1].as<capnp::DynamicStruct>().set("label", "second");
  auto color_schema = schema.everything.getFieldByName("color").getType().asEnum();
  auto colors = root.init("colors", 2).as<capnp::DynamicList>();
  colors.set(0, capnp::DynamicEnum(color_schema.getEnumerantByName("green")));
  colors.set(1, capnp::DynamicEnum(color_schema, 9));  // one this schema does not name
  auto words = root.init("words", 2).as<capnp::DynamicList>();
  words.set(0, "a");
  words.set(1, "");
  auto nested = root.init("nested", 2).as<capnp::DynamicList>();
  auto n0 = nested.init(0, 2).as<capnp::DynamicList>();
  n0.set(0, uint8_t{1});
  n0.set(1, uint8_t{2});
  nested.init(1, 0);
  auto blobs = root.init("blobs", 1).as<capnp::DynamicList>();
  const kj::byte hi[] = {'h', 'i'};
  blobs.set(0, capnp::Data::Reader(hi, sizeof hi));
  root.set("probe", capnp::DynamicCapability::Client(kj::heap<ProbeServer>(schema.probe)));
  root.get("any").as<capnp::AnyPointer>().setAs<capnp::Text>("opaque");
  auto pair = root.get("pair").as<capnp::DynamicStruct>();
  pair.set("x", int32_t{5});
  pair.set("y", "why");
  root.get("choice").as<capnp::DynamicStruct>().set("word", "w");
  root.set("right", "r");

  const auto got = capnp_to_json(root.asReader());
  const auto want = ordered_json::parse(R"({
    "v": null, "b": true,
    "i8": -8, "i16": -16000, "i32": -2000000000, "i64": -9223372036854775808,
    "u8": 255, "u16": 65535, "u32": 4000000000, "u64": 18446744073709551615,
    "f32": 1.5, "f64": -0.25,
    "text": "h\u00e9llo \"q\"", "data": "AAH+/w==", "color": "blue",
    "inner": {"n": 7, "label": "in"},
    "numbers": [-10, 0, 10],
    "inners": [{"n": 1, "label": ""}, {"n": 0, "label": "second"}],
    "colors": ["green", 9],
    "words": ["a", ""],
    "nested": [[1, 2], []],
    "blobs": ["aGk="],
    "probe": "<capability>",
    "any": "<pointer>",
    "pair": {"x": 5, "y": "why"},
    "choice": {"word": "w"},
    "right": "r",
    "unsetText": "", "unsetInner": {"n": 0, "label": ""}, "unsetList": [], "unsetAny": null, "unsetProbe": null,
    "withDefault": -7
  })");
  EXPECT_EQ(got, want) << got.dump(2);
  // Numbers stay numbers, exact (JsonCodec would quote 64-bit ones).
  EXPECT_TRUE(got["u64"].is_number_unsigned());
  EXPECT_EQ(got["u64"].get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(got["i64"].is_number_integer());
  // Ordinal order, so a person reads the fields as the schema has them.
  std::vector<std::string> keys;
  for (const auto& [k, v] : got.items()) keys.push_back(k);
  ASSERT_GE(keys.size(), 3u);
  EXPECT_EQ(keys[0], "v");
  EXPECT_EQ(keys[12], "text");
  EXPECT_EQ(keys.back(), "withDefault");
}

TEST(JsonDump, UnionShowsOnlyItsActiveMember) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<capnp::DynamicStruct>(probe_schema().everything);
  auto j = capnp_to_json(root.asReader());
  EXPECT_EQ(j["choice"], ordered_json::parse(R"({"none": null})"));
  EXPECT_TRUE(j.contains("left"));
  EXPECT_FALSE(j.contains("right"));
  root.get("choice").as<capnp::DynamicStruct>().set("number", uint16_t{3});
  root.set("left", int32_t{-1});
  j = capnp_to_json(root.asReader());
  EXPECT_EQ(j["choice"], ordered_json::parse(R"({"number": 3})"));
  EXPECT_EQ(j["left"], -1);
}

TEST(JsonDump, NonFiniteFloatsAreStrings) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<capnp::DynamicStruct>(probe_schema().everything);
  root.set("f64", std::numeric_limits<double>::quiet_NaN());
  root.set("f32", -std::numeric_limits<float>::infinity());
  auto j = capnp_to_json(root.asReader());
  EXPECT_EQ(j["f64"], "NaN");
  EXPECT_EQ(j["f32"], "-Infinity");
  root.set("f64", std::numeric_limits<double>::infinity());
  EXPECT_EQ(capnp_to_json(root.asReader())["f64"], "Infinity");
  // And the text stays valid JSON.
  EXPECT_TRUE(ordered_json::accept(dump_json(capnp_to_json(root.asReader()), true)));
}

TEST(JsonDump, ControlApiStructAsSkiffctlPrintsIt) {
  capnp::MallocMessageBuilder msg;
  auto info = msg.initRoot<api::control::SandboxInfo>();
  info.setId("sb1");
  info.setPid(42);
  info.setState("running");
  info.setVcpus(2);
  info.setMemoryMib(uint64_t{1} << 40);
  auto c = info.initContainers(1)[0];
  c.setId("c1");
  c.setStatus("stopped");
  c.initAnnotations(1)[0].setKey("k");
  c.getAnnotations()[0].setValue("v");
  c.initExit().setCode(137);
  c.getExit().setSignal(9);
  c.setHasExit(true);
  const auto j = capnp_to_json(info.asReader());
  EXPECT_EQ(j.begin().key(), "id");
  EXPECT_EQ(j["memoryMib"].get<uint64_t>(), uint64_t{1} << 40);
  EXPECT_EQ(j["containers"].size(), 1u);
  EXPECT_EQ(j["containers"][0]["annotations"], ordered_json::parse(R"([{"key": "k", "value": "v"}])"));
  EXPECT_EQ(j["containers"][0]["exit"], ordered_json::parse(R"({"code": 137, "signal": 9})"));
  EXPECT_EQ(j["containers"][0]["hasExit"], true);
  EXPECT_EQ(j["version"], "");
}

TEST(JsonDump, TextThatIsNotUtf8StillDumps) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<capnp::DynamicStruct>(probe_schema().everything);
  root.set("text", "bad \xff\xfe byte");
  const std::string out = dump_json(capnp_to_json(root.asReader()), false);
  EXPECT_NE(out.find("bad \xef\xbf\xbd"), std::string::npos) << out;  // U+FFFD
  EXPECT_EQ(out.find('\n'), std::string::npos);                      // one line for scripts
}

RC_GTEST_PROP(JsonDump, IntegersAreExactWhateverTheirValue, (uint64_t u, int64_t i, uint32_t u32)) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<capnp::DynamicStruct>(probe_schema().everything);
  root.set("u64", u);
  root.set("i64", i);
  root.set("u32", u32);
  const auto back = ordered_json::parse(dump_json(capnp_to_json(root.asReader()), false));
  RC_ASSERT(back["u64"].get<uint64_t>() == u);
  RC_ASSERT(back["i64"].get<int64_t>() == i);
  RC_ASSERT(back["u32"].get<uint32_t>() == u32);
}

RC_GTEST_PROP(JsonDump, DataIsBase64OfItsBytes, (std::vector<uint8_t> bytes)) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<capnp::DynamicStruct>(probe_schema().everything);
  root.set("data", capnp::Data::Reader(bytes.data(), bytes.size()));
  const std::string b64 = capnp_to_json(root.asReader())["data"].get<std::string>();
  auto decoded = kj::decodeBase64(kj::StringPtr(b64.c_str()));
  RC_ASSERT(!decoded.hadErrors);
  RC_ASSERT(std::vector<uint8_t>(decoded.begin(), decoded.end()) == bytes);
}

RC_GTEST_PROP(JsonDump, TextComesBackAsItWas, (std::string s)) {
  // Non-NUL ASCII: valid UTF-8, and Text ends at a NUL.
  for (auto& ch : s) ch = static_cast<char>(1 + static_cast<unsigned char>(ch) % 0x7f);
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<capnp::DynamicStruct>(probe_schema().everything);
  root.set("text", capnp::Text::Reader(s.c_str(), s.size()));
  RC_ASSERT(ordered_json::parse(dump_json(capnp_to_json(root.asReader()), true))["text"].get<std::string>() == s);
}

// ---- ping's summary, raw's methods, exec's process ----

TEST(Latency, MedianAndNearestRankP99) {
  auto s = summarize_latency({5, 1, 3});
  EXPECT_DOUBLE_EQ(s.median_us, 3);
  EXPECT_DOUBLE_EQ(s.p99_us, 5);
  s = summarize_latency({4, 1, 2, 3});
  EXPECT_DOUBLE_EQ(s.median_us, 2.5);
  std::vector<double> hundred, thousand;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  for (int i = 1000; i >= 1; --i) thousand.push_back(i);
  EXPECT_DOUBLE_EQ(summarize_latency(hundred).p99_us, 99);
  EXPECT_DOUBLE_EQ(summarize_latency(hundred).median_us, 50.5);
  EXPECT_DOUBLE_EQ(summarize_latency(thousand).p99_us, 990);
  EXPECT_DOUBLE_EQ(summarize_latency({7}).p99_us, 7);
  EXPECT_THROW(summarize_latency({}), std::invalid_argument);
}

TEST(RawCall, ParameterlessMethodsComeFromTheSchema) {
  EXPECT_EQ(parameterless_methods(capnp::Schema::from<api::control::Sandbox>()),
            (std::vector<std::string>{"info", "listContainers", "pause", "resume", "shutdown", "ping"}));
  EXPECT_EQ(parameterless_methods(capnp::Schema::from<api::control::Container>()),
            (std::vector<std::string>{"info", "start", "init", "ps", "stats", "pause", "resume", "wait"}));
  EXPECT_EQ(parameterless_method(capnp::Schema::from<api::control::Container>(), "ps").getOrdinal(), 5u);
}

std::string config_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST(RawCall, MethodsWithParametersOrUnknownAreRefused) {
  EXPECT_EQ(config_error_of([] { parameterless_method(capnp::Schema::from<api::control::Sandbox>(), "createContainer"); }),
            "METHOD \"createContainer\": not a parameterless method of Sandbox (one of info, listContainers, pause, resume, "
            "shutdown, ping)");
  EXPECT_EQ(config_error_of([] { parameterless_method(capnp::Schema::from<api::control::Container>(), "frob"); }),
            "METHOD \"frob\": not a parameterless method of Container (one of info, start, init, ps, stats, pause, resume, wait)");
}

TEST(ExecProcess, ContainerProcessIsTheTemplate) {
  const auto base = nlohmann::json::parse(R"({"args": ["init"], "cwd": "/", "terminal": true, "user": {"uid": 5, "gid": 6},
    "env": ["PATH=/bin", "A=old", "AB=keep"], "capabilities": {"bounding": ["CAP_KILL"]}})");
  ExecOptions o;
  o.args = {"sh", "-c", "ls -l"};
  o.env = {"A=new", "B=2=3"};
  o.cwd = "/work";
  const auto p = exec_process(o, base);
  EXPECT_EQ(p["args"], nlohmann::json::parse(R"(["sh", "-c", "ls -l"])"));
  EXPECT_EQ(p["env"], nlohmann::json::parse(R"(["PATH=/bin", "A=new", "AB=keep", "B=2=3"])"));
  EXPECT_EQ(p["cwd"], "/work");
  EXPECT_EQ(p["terminal"], false);
  EXPECT_EQ(p["user"]["uid"], 5);
  EXPECT_EQ(p["capabilities"]["bounding"][0], "CAP_KILL");
  o.cwd.clear();
  o.tty = true;
  EXPECT_EQ(exec_process(o, base)["cwd"], "/");
  EXPECT_EQ(exec_process(o, base)["terminal"], true);
  EXPECT_EQ(exec_process(o, nlohmann::json())["env"], nlohmann::json::parse(R"(["A=new", "B=2=3"])"));
}

TEST(ExecProcess, BadFlagsAreOneLineEach) {
  ExecOptions o;
  EXPECT_EQ(config_error_of([&] { check_exec_options(o); }),
            "exec: no command given (skiffctl exec SANDBOX CONTAINER -- CMD ARGS...)");
  o.args = {"true"};
  o.env = {"FOO"};
  EXPECT_EQ(config_error_of([&] { check_exec_options(o); }), "--env \"FOO\": must be KEY=value");
  o.env = {"=x"};
  EXPECT_EQ(config_error_of([&] { check_exec_options(o); }), "--env \"=x\": must be KEY=value");
  o.env = {"K="};
  o.cwd = "tmp";
  EXPECT_EQ(config_error_of([&] { check_exec_options(o); }), "--cwd \"tmp\": must be an absolute path");
  o.cwd = "/tmp";
  EXPECT_EQ(config_error_of([&] { check_exec_options(o); }), "(no ConfigError)");
}

// ---- the command line ----

struct CliResult {
  int status = -1;
  std::string out, err;
};

CliResult skiffctl(std::vector<std::string> args) {
  std::vector<const char*> argv{"skiffctl"};
  for (const auto& a : args) argv.push_back(a.c_str());
  CliResult r;
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  r.status = run_skiffctl(static_cast<int>(argv.size()), argv.data());
  r.out = testing::internal::GetCapturedStdout();
  r.err = testing::internal::GetCapturedStderr();
  return r;
}

class TempRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiffctl-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string root_;
};

using Cli = TempRoot;

TEST_F(Cli, MissingSandboxIsNamedWithTheRoot) {
  const std::string want = "skiffctl: error: no sandbox \"x\" under " + root_ + "\n";
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"status", "x"}, {"status", "x", "c"}, {"kill", "x", "c"}, {"pause", "x"},
                                              {"resume", "x", "c"}, {"stats", "x", "c"}, {"events", "x"}, {"ping", "x"},
                                              {"raw", "x", "info"}, {"raw", "x", "ps", "c"}, {"exec", "x", "c", "--", "ls", "-l"}}) {
    auto args = cmd;
    args.insert(args.begin(), {"--root", root_});
    const auto r = skiffctl(args);
    EXPECT_EQ(r.status, 1) << cmd[0];
    EXPECT_EQ(r.err, want) << cmd[0];
  }
  // --root after the command works as well.
  EXPECT_EQ(skiffctl({"status", "x", "--root", root_}).err, want);
}

TEST_F(Cli, ListOfAnEmptyOrMissingRootIsItsHeader) {
  auto r = skiffctl({"--root", root_, "list"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "SANDBOX   PID   STATE   CONTAINERS   VCPUS   MEMORY\n");
  const std::string missing = root_ + "/none";
  r = skiffctl({"--root", missing, "list", "--json"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "[]\n");
  EXPECT_FALSE(fs::exists(missing)) << "a reader must not create the root";
  EXPECT_EQ(skiffctl({"--root", missing, "status", "x"}).err, "skiffctl: error: no sandbox \"x\" under " + missing + "\n");
}

TEST_F(Cli, BadSignalIsRefusedBeforeAnySandbox) {
  auto r = skiffctl({"--root", root_, "kill", "x", "c", "SIGFOO"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "skiffctl: error: unknown signal \"SIGFOO\"\n");
  // A good one gets as far as looking for the sandbox.
  EXPECT_EQ(skiffctl({"--root", root_, "kill", "x", "c", "kill"}).err, "skiffctl: error: no sandbox \"x\" under " + root_ + "\n");
}

TEST_F(Cli, UnknownRawMethodIsRefusedBeforeAnySandbox) {
  auto r = skiffctl({"--root", root_, "raw", "x", "frobnicate"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "skiffctl: error: METHOD \"frobnicate\": not a parameterless method of Sandbox (one of info, listContainers, "
            "pause, resume, shutdown, ping)\n");
  r = skiffctl({"--root", root_, "raw", "x", "exec", "c"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("METHOD \"exec\": not a parameterless method of Container"), std::string::npos) << r.err;
  // ps is the Container's, not the Sandbox's.
  EXPECT_NE(skiffctl({"--root", root_, "raw", "x", "ps"}).err.find("not a parameterless method of Sandbox"), std::string::npos);
}

TEST_F(Cli, BadIdAndBadExecFlagsAreOneLine) {
  auto r = skiffctl({"--root", root_, "status", "../etc"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "skiffctl: error: container id \"../etc\": only letters, digits, '_', '+', '-', '.' are allowed\n");
  r = skiffctl({"--root", root_, "exec", "--env", "NOVALUE", "x", "c", "true"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "skiffctl: error: --env \"NOVALUE\": must be KEY=value\n");
  r = skiffctl({"--root", root_, "exec", "--cwd", "rel", "x", "c", "true"});
  EXPECT_EQ(r.err, "skiffctl: error: --cwd \"rel\": must be an absolute path\n");
}

TEST_F(Cli, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {}, {"frobnicate"}, {"kill", "x"}, {"stats", "x"}, {"exec", "x", "c"}, {"ping", "x", "--count", "0"},
           {"raw", "x"}, {"status"}, {"list", "--bogus"}}) {
    const auto r = skiffctl(args);
    EXPECT_EQ(r.status, 2) << (args.empty() ? "(none)" : args[0]);
    EXPECT_TRUE(r.err.starts_with("skiffctl: error: ")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const auto help = skiffctl({"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("raw"), std::string::npos);
}

// ---- against a fake sandbox process ----

// What the fake was asked, read by the test thread once skiffctl returns.
struct Calls {
  std::mutex mu;
  std::vector<std::string> log;
  int signal = 0;
  bool all = false;
  std::vector<std::string> exec_args, exec_env;
  std::string exec_cwd, stdin_bytes;
  bool exec_terminal = false;
  void add(const std::string& what) {
    std::lock_guard<std::mutex> l(mu);
    log.push_back(what);
  }
};

void fill_container(api::control::ContainerInfo::Builder c, const std::string& bundle) {
  c.setId("c1");
  c.setBundle(bundle);
  c.setStatus("running");
  c.setGuestPid(1);
}

// Its stdin is recorded; it "exits" (status 7) once its stdin has ended, or
// at once with a terminal, where stdin is the pty.
class FakeProcess final : public api::Process::Server {
 public:
  FakeProcess(Calls& calls, bool terminal) : calls_(calls) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    stdin_ended_ = paf.promise.fork();
    fulfiller_ = kj::mv(paf.fulfiller);
    if (terminal) fulfiller_->fulfill();
  }
  kj::Promise<void> stdin(StdinContext ctx) override {
    ctx.getResults().setStream(kj::heap<Recorder>(calls_, *fulfiller_));
    return kj::READY_NOW;
  }
  kj::Promise<void> wait(WaitContext ctx) override {
    return stdin_ended_.addBranch().then([ctx]() mutable { ctx.getResults().initStatus().setCode(7); });
  }

 private:
  class Recorder final : public api::ByteStream::Server {
   public:
    Recorder(Calls& calls, kj::PromiseFulfiller<void>& ended) : calls_(calls), ended_(ended) {}
    kj::Promise<void> write(WriteContext ctx) override {
      auto b = ctx.getParams().getBytes();
      std::lock_guard<std::mutex> l(calls_.mu);
      calls_.stdin_bytes.append(reinterpret_cast<const char*>(b.begin()), b.size());
      return kj::READY_NOW;
    }
    kj::Promise<void> end(EndContext) override {
      if (ended_.isWaiting()) ended_.fulfill();
      return kj::READY_NOW;
    }

   private:
    Calls& calls_;
    kj::PromiseFulfiller<void>& ended_;
  };
  Calls& calls_;
  kj::ForkedPromise<void> stdin_ended_ = kj::Promise<void>(kj::NEVER_DONE).fork();
  kj::Own<kj::PromiseFulfiller<void>> fulfiller_;
};

class FakeContainer final : public api::control::Container::Server {
 public:
  FakeContainer(Calls& calls, std::string bundle) : calls_(calls), bundle_(std::move(bundle)) {}
  kj::Promise<void> info(InfoContext ctx) override {
    fill_container(ctx.getResults().initInfo(), bundle_);
    return kj::READY_NOW;
  }
  kj::Promise<void> kill(KillContext ctx) override {
    std::lock_guard<std::mutex> l(calls_.mu);
    calls_.signal = ctx.getParams().getSignal();
    calls_.all = ctx.getParams().getAll();
    return kj::READY_NOW;
  }
  kj::Promise<void> ps(PsContext ctx) override {
    auto pids = ctx.getResults().initPids(2);
    pids.set(0, 1);
    pids.set(1, 23);
    return kj::READY_NOW;
  }
  kj::Promise<void> stats(StatsContext ctx) override {
    ctx.getResults().initStats().setMemoryCurrent(uint64_t{5} << 33);
    return kj::READY_NOW;
  }
  kj::Promise<void> pause(PauseContext) override {
    calls_.add("container pause");
    return kj::READY_NOW;
  }
  kj::Promise<void> exec(ExecContext ctx) override {
    auto p = ctx.getParams();
    {
      std::lock_guard<std::mutex> l(calls_.mu);
      for (auto a : p.getProcess().getArgs()) calls_.exec_args.emplace_back(a.cStr());
      for (auto e : p.getProcess().getEnv()) calls_.exec_env.emplace_back(e.cStr());
      calls_.exec_cwd = p.getProcess().getCwd().cStr();
    }
    if (p.getConsoleSocket().size() > 0) {
      // As the sandbox process does: the pty master to the socket, then the answer.
      UniqueFd slave = hand_over_terminal(p.getConsoleSocket());
      const std::string text = "on the terminal\r\n";
      EXPECT_EQ(::write(slave.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
      ctx.getResults().setProcess(kj::heap<FakeProcess>(calls_, true));
      {
        std::lock_guard<std::mutex> l(calls_.mu);
        calls_.exec_terminal = p.getProcess().getTerminal();
        slaves_.push_back(std::move(slave));  // open while the output drains
      }
      return kj::READY_NOW;
    }
    auto out = p.getStdio().getStdout();
    auto req = out.writeRequest();
    const std::string text = "out of the container\n";
    req.setBytes(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(text.data()), text.size()));
    return req.send().then([out]() mutable { return out.endRequest().send().ignoreResult(); }).then([this, ctx]() mutable {
      ctx.getResults().setProcess(kj::heap<FakeProcess>(calls_, false));
    });
  }

 private:
  Calls& calls_;
  std::string bundle_;
  std::vector<UniqueFd> slaves_;
};

class FakeSandbox final : public api::control::Sandbox::Server {
 public:
  FakeSandbox(Calls& calls, std::string bundle, kj::Timer& timer, kj::PromiseFulfiller<void>& stop)
      : calls_(calls), bundle_(std::move(bundle)), timer_(timer), stop_(stop) {}
  kj::Promise<void> info(InfoContext ctx) override {
    auto i = ctx.getResults().initInfo();
    i.setId("sb1");
    i.setPid(static_cast<uint32_t>(::getpid()));
    i.setState("running");
    i.setVcpus(2);
    i.setMemoryMib(512);
    fill_container(i.initContainers(1)[0], bundle_);
    return kj::READY_NOW;
  }
  kj::Promise<void> container(ContainerContext ctx) override {
    if (ctx.getParams().getId() != "c1")
      return kj::Exception(kj::Exception::Type::FAILED, "fake", 0, kj::str("no container \"", ctx.getParams().getId(), "\""));
    ctx.getResults().setContainer(kj::heap<FakeContainer>(calls_, bundle_));
    return kj::READY_NOW;
  }
  kj::Promise<void> listContainers(ListContainersContext ctx) override {
    fill_container(ctx.getResults().initContainers(1)[0], bundle_);
    return kj::READY_NOW;
  }
  kj::Promise<void> pause(PauseContext) override {
    calls_.add("sandbox pause");
    return kj::READY_NOW;
  }
  kj::Promise<void> ping(PingContext ctx) override {
    ctx.getResults().setApiVersion(api::control::CONTROL_API_VERSION);
    return kj::READY_NOW;
  }
  // Two events, then the sandbox process "ends" (the connection closes).
  kj::Promise<void> events(EventsContext ctx) override {
    auto sink = ctx.getParams().getSink();
    auto first = sink.eventRequest();
    first.initEvent().setType("paused");
    auto second = sink.eventRequest();
    auto e = second.initEvent();
    e.setType("exit");
    e.setContainerId("c1");
    e.initExit().setCode(3);
    auto sent = first.send().ignoreResult().then([second = kj::mv(second)]() mutable { return second.send().ignoreResult(); });
    tasks_.add(sent.then([this] { return timer_.afterDelay(300 * kj::MILLISECONDS); }).then([this] { stop_.fulfill(); }));
    return kj::READY_NOW;
  }

 private:
  class Ignore final : public kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&&) override {}
  };
  Calls& calls_;
  std::string bundle_;
  kj::Timer& timer_;
  kj::PromiseFulfiller<void>& stop_;
  Ignore ignore_;
  kj::TaskSet tasks_{ignore_};
};

// A sandbox "sb1" under root_: its state.json names this test process (so it
// is alive) and a control socket served on a thread of its own until stop().
class FakeSandboxTest : public TempRoot {
 protected:
  void SetUp() override {
    TempRoot::SetUp();
    bundle_ = root_ + "/bundle";
    fs::create_directories(bundle_);
    std::ofstream(bundle_ + "/config.json")
        << R"({"ociVersion": "1.0.2", "process": {"args": ["init"], "cwd": "/", "env": ["PATH=/bin", "A=old"]}, "root": {"path": "/"}})";
    StateStore store(root_);
    ContainerState st;
    st.id = "sb1";
    st.bundle = bundle_;
    st.rootfs = "/";
    st.status = "running";
    st.sandbox_pid = ::getpid();
    st.sandbox_start_time = process_start_time(::getpid()).value();
    st.pid = ::getpid();
    st.created = rfc3339_now();
    st.owner = "root";
    st.control_socket = root_ + "/sb1/control.sock";
    store.create(st);
    // One whose process is gone (same pid, another start time), one unreadable.
    st.id = "dead1";
    st.sandbox_start_time += 1;
    st.control_socket.clear();
    store.create(st);
    fs::create_directories(root_ + "/bad1");
    std::ofstream(root_ + "/bad1/state.json") << "{";

    std::promise<void> ready;
    server_ = std::thread([this, &ready] {
      try {
        serve(ready);
      } catch (...) {
        ready.set_exception(std::current_exception());
      }
    });
    ready.get_future().get();
  }
  void TearDown() override {
    stop();
    TempRoot::TearDown();
  }

  void serve(std::promise<void>& ready) {
    auto io = kj::setupAsyncIo();
    auto done = kj::newPromiseAndFulfiller<void>();
    auto listener = io.provider->getNetwork().parseAddress("unix:" + root_ + "/sb1/control.sock").wait(io.waitScope)->listen();
    capnp::TwoPartyServer server(kj::heap<FakeSandbox>(calls_, bundle_, io.provider->getTimer(), *done.fulfiller));
    auto listening = server.listen(*listener);
    executor_ = std::make_unique<ExecutorRef>(ExecutorRef{kj::getCurrentThreadExecutor().addRef()});
    fulfiller_ = done.fulfiller.get();
    ready.set_value();
    done.promise.wait(io.waitScope);
  }

  // Ends the fake sandbox process (if events has not already): the function
  // runs on its loop while the loop waits, or fails once the loop is gone.
  void stop() {
    if (!server_.joinable()) return;
    try {
      executor_->executor->executeSync([f = fulfiller_] {
        if (f->isWaiting()) f->fulfill();
      });
    } catch (const kj::Exception&) {
    }
    server_.join();
    executor_ = nullptr;
  }

  std::string bundle_;
  Calls calls_;
  std::thread server_;
  // Behind a unique_ptr: kj::Own's destructor may throw, a fixture's must not.
  struct ExecutorRef {
    kj::Own<const kj::Executor> executor;
  };
  std::unique_ptr<ExecutorRef> executor_;
  kj::PromiseFulfiller<void>* fulfiller_ = nullptr;
};

TEST_F(FakeSandboxTest, ListShowsLiveDeadAndUnreadable) {
  auto r = skiffctl({"--root", root_, "list"});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string pid = std::to_string(::getpid());
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\nbad1 +- +unreadable +- +- +-\n"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\ndead1 +0 +stopped +- +- +-\n"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\nsb1 +" + pid + " +running +1 +2 +512MiB\n"))) << r.out;
  r = skiffctl({"--root", root_, "list", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = ordered_json::parse(r.out);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["state"], "unreadable");
  EXPECT_EQ(j[1], ordered_json::parse(R"({"id": "dead1", "pid": 0, "state": "stopped"})"));
  EXPECT_EQ(j[2]["memoryMib"], 512);
  EXPECT_EQ(j[2]["containers"][0]["id"], "c1");
}

TEST_F(FakeSandboxTest, StatusStatsAndRawPrintTheirStructs) {
  auto r = skiffctl({"--root", root_, "status", "sb1"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = ordered_json::parse(r.out);
  EXPECT_EQ(j["id"], "sb1");
  EXPECT_EQ(j["vcpus"], 2);
  r = skiffctl({"--root", root_, "status", "sb1", "c1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(ordered_json::parse(r.out)["bundle"], bundle_);
  r = skiffctl({"--root", root_, "stats", "sb1", "c1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(ordered_json::parse(r.out)["memoryCurrent"].get<uint64_t>(), uint64_t{5} << 33);
  r = skiffctl({"--root", root_, "raw", "sb1", "ps", "c1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(ordered_json::parse(r.out), ordered_json::parse(R"({"pids": [1, 23]})"));
  r = skiffctl({"--root", root_, "raw", "sb1", "ping"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(ordered_json::parse(r.out)["apiVersion"], api::control::CONTROL_API_VERSION);
  r = skiffctl({"--root", root_, "raw", "sb1", "listContainers"});
  ASSERT_EQ(r.status, 0) << r.err;
  j = ordered_json::parse(r.out);
  ASSERT_EQ(j["containers"].size(), 1u) << r.out;
  EXPECT_EQ(j["containers"][0]["status"], "running");
  EXPECT_EQ(j["containers"][0]["hasExit"], false);
}

TEST_F(FakeSandboxTest, ErrorsOfTheSandboxAreOneLine) {
  auto r = skiffctl({"--root", root_, "status", "sb1", "nope"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "skiffctl: error: no container \"nope\"\n");
  r = skiffctl({"--root", root_, "raw", "sb1", "resume"});  // the fake does not implement it
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(r.err.starts_with("skiffctl: error: ")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = skiffctl({"--root", root_, "status", "dead1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "skiffctl: error: sandbox \"dead1\" is not running: its sandbox process is gone\n");
}

TEST_F(FakeSandboxTest, KillPauseAndPing) {
  auto r = skiffctl({"--root", root_, "kill", "sb1", "c1", "USR1", "--all"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = skiffctl({"--root", root_, "pause", "sb1"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = skiffctl({"--root", root_, "pause", "sb1", "c1"});
  ASSERT_EQ(r.status, 0) << r.err;
  {
    std::lock_guard<std::mutex> l(calls_.mu);
    EXPECT_EQ(calls_.signal, SIGUSR1);
    EXPECT_TRUE(calls_.all);
    EXPECT_EQ(calls_.log, (std::vector<std::string>{"sandbox pause", "container pause"}));
  }
  r = skiffctl({"--root", root_, "ping", "sb1", "--count", "20"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, std::regex("sb1: 20 round trips \\(control API 1\\): median [0-9.]+ us, p99 [0-9.]+ us\n")))
      << r.out;
}

// stdin is fd 0 of this process: a pipe for the length of `f`.
void with_stdin(const std::string& input, const std::function<void()>& f) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::write(p[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  ::close(p[1]);
  const int saved = ::dup(STDIN_FILENO);
  ::dup2(p[0], STDIN_FILENO);
  ::close(p[0]);
  f();
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
}

TEST_F(FakeSandboxTest, ExecPassesStdioThroughAndExitsWithTheProcessStatus) {
  CliResult r;
  with_stdin("", [&] {
    r = skiffctl({"--root", root_, "exec", "-e", "A=new", "--env", "B=2", "--cwd", "/tmp", "sb1", "c1", "--", "sh", "-c", "ls -l"});
  });
  EXPECT_EQ(r.status, 7) << r.err;
  EXPECT_EQ(r.out, "out of the container\n");
  std::lock_guard<std::mutex> l(calls_.mu);
  EXPECT_EQ(calls_.exec_args, (std::vector<std::string>{"sh", "-c", "ls -l"}));
  EXPECT_EQ(calls_.exec_env, (std::vector<std::string>{"PATH=/bin", "A=new", "B=2"}));
  EXPECT_EQ(calls_.exec_cwd, "/tmp");
}

TEST_F(FakeSandboxTest, ExecForwardsStdinUntilItsEnd) {
  CliResult r;
  with_stdin("to the process\n", [&] { r = skiffctl({"--root", root_, "exec", "sb1", "c1", "cat"}); });
  EXPECT_EQ(r.status, 7) << r.err;
  std::lock_guard<std::mutex> l(calls_.mu);
  EXPECT_EQ(calls_.stdin_bytes, "to the process\n");
}

TEST_F(FakeSandboxTest, ExecWithTerminalTakesThePtyFromTheConsoleSocket) {
  CliResult r;
  with_stdin("", [&] { r = skiffctl({"--root", root_, "exec", "-t", "sb1", "c1", "sh"}); });
  EXPECT_EQ(r.status, 7) << r.err;
  EXPECT_EQ(r.out, "on the terminal\r\n");
  std::lock_guard<std::mutex> l(calls_.mu);
  EXPECT_TRUE(calls_.exec_terminal);
}

TEST_F(FakeSandboxTest, EventsAreJsonLinesUntilTheSandboxGoesAway) {
  auto r = skiffctl({"--root", root_, "events", "sb1"});
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<ordered_json> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) lines.push_back(ordered_json::parse(line));
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0]["type"], "paused");
  EXPECT_EQ(lines[1]["type"], "exit");
  EXPECT_EQ(lines[1]["containerId"], "c1");
  EXPECT_EQ(lines[1]["exit"]["code"], 3);
}

}  // namespace
}  // namespace skiff::runtime::ctl
