// vCPUs online and offline through a fake sysfs CPU directory: what the
// agent writes for Sandbox.setOnlineCpus, and the CPU lists it parses.
#include "agent/cpu_online.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace skiff::agent {
namespace {

std::string error_of(auto fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

class FakeCpuDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-cpu-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `present` CPUs, the first `online` of them online; CPU 0 has no online file, as on x86.
  void make(unsigned present, unsigned online) {
    write("present", present == 1 ? "0\n" : "0-" + std::to_string(present - 1) + "\n");
    write("online", online == 1 ? "0\n" : "0-" + std::to_string(online - 1) + "\n");
    for (unsigned c = 1; c < present; ++c) {
      std::filesystem::create_directories(dir_ + "/cpu" + std::to_string(c));
      write("cpu" + std::to_string(c) + "/online", c < online ? "1\n" : "0\n");
    }
  }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ + "/" + name) << text; }
  std::string cpu_online(unsigned c) {
    std::string v;
    std::ifstream(dir_ + "/cpu" + std::to_string(c) + "/online") >> v;
    return v;
  }
  std::filesystem::file_time_type mtime(unsigned c) {
    return std::filesystem::last_write_time(dir_ + "/cpu" + std::to_string(c) + "/online");
  }

  std::string dir_;
};

TEST(CpuList, ParsesRangesAndSingles) {
  EXPECT_EQ(parse_cpu_list("0-3,5\n"), (std::vector<uint32_t>{0, 1, 2, 3, 5}));
  EXPECT_EQ(parse_cpu_list("0"), (std::vector<uint32_t>{0}));
  EXPECT_TRUE(parse_cpu_list("\n").empty());
}

TEST(CpuList, RefusesWhatIsNotOneInOneLine) {
  EXPECT_EQ(error_of([] { parse_cpu_list("0-x"); }), "CPU list \"0-x\": \"x\" is not a CPU number");
  EXPECT_EQ(error_of([] { parse_cpu_list("3-1"); }), "CPU list \"3-1\": bad range \"3-1\"");
  EXPECT_EQ(error_of([] { parse_cpu_list("0-99999"); }), "CPU list \"0-99999\": bad range \"0-99999\"");
  EXPECT_EQ(error_of([] { parse_cpu_list("1,,2"); }), "CPU list \"1,,2\": \"\" is not a CPU number");
}

RC_GTEST_PROP(CpuList, AnySetPrintedAsRangesComesBack, (std::set<uint8_t> cpus)) {
  std::string text;
  for (auto it = cpus.begin(); it != cpus.end();) {
    auto last = it;
    while (std::next(last) != cpus.end() && *std::next(last) == *last + 1) ++last;
    if (!text.empty()) text += ",";
    text += std::to_string(*it) + (last == it ? "" : "-" + std::to_string(*last));
    it = std::next(last);
  }
  const auto parsed = parse_cpu_list(text + "\n");
  RC_ASSERT(std::vector<uint32_t>(cpus.begin(), cpus.end()) == parsed);
}

TEST_F(FakeCpuDir, UpTakesTheLowestOnlineAndLeavesTheRest) {
  make(4, 1);
  set_online_cpus(dir_, 3);
  EXPECT_EQ(cpu_online(1), "1");
  EXPECT_EQ(cpu_online(2), "1");
  EXPECT_EQ(cpu_online(3), "0");
}

TEST_F(FakeCpuDir, DownTakesTheHighestOfflineAndWritesOnlyWhatChanges) {
  make(4, 4);
  const auto before = mtime(1);
  write("online", "0-3\n");
  EXPECT_EQ(set_online_cpus(dir_, 2), 4u) << "the count is the kernel's online list after (unchanged in a fake)";
  EXPECT_EQ(cpu_online(1), "1");
  EXPECT_EQ(mtime(1), before) << "CPU 1 was online already: not written";
  EXPECT_EQ(cpu_online(2), "0");
  EXPECT_EQ(cpu_online(3), "0");
}

TEST_F(FakeCpuDir, CountsOutOfRangeAndMissingFilesAreOneLine) {
  make(2, 1);
  EXPECT_EQ(error_of([&] { set_online_cpus(dir_, 0); }), "setOnlineCpus: 0 CPUs: at least one must stay online");
  EXPECT_EQ(error_of([&] { set_online_cpus(dir_, 3); }), "setOnlineCpus: 3 CPUs asked, 2 present in the guest");
  std::filesystem::remove_all(dir_ + "/cpu1");
  EXPECT_NE(error_of([&] { set_online_cpus(dir_, 2); }).find("CPU 1: " + dir_ + "/cpu1/online: "), std::string::npos);
  EXPECT_EQ(error_of([&] { set_online_cpus("/nonexistent/cpu", 1); }), "/nonexistent/cpu/present: cannot be read");
}

}  // namespace
}  // namespace skiff::agent
