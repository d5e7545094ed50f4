// The state directory: atomic state files that survive a SIGKILL mid-write,
// process identity by pid and start time, per-container locks across
// processes, and removal that unmounts before it deletes.
#include "runtime/state/state_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "base/config_error.h"

namespace skiff::runtime {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// Lines of /proc/self/mountinfo that mention `dir` (the test's paths have no
// characters mountinfo escapes, up to the container directory).
std::vector<std::string> mountinfo_lines_mentioning(const std::string& dir) {
  std::ifstream f("/proc/self/mountinfo");
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);)
    if (line.find(" " + dir + " ") != std::string::npos || line.find(" " + dir + "/") != std::string::npos)
      out.push_back(line);
  return out;
}

// A forked child, killed and reaped however the test ends.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

// The child runs `f` and exits with its result (99 if it threw).
template <typename F>
Child spawn(F f) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    int rc = 99;
    try {
      rc = f();
    } catch (...) {
    }
    ::_exit(rc);
  }
  return Child(pid);
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

struct Pipe {
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    r.reset(fds[0]);
    w.reset(fds[1]);
  }
  UniqueFd r, w;
};

// Reads exactly sizeof(T), waiting at most `timeout_ms`; false on timeout or EOF.
template <typename T>
bool read_within(int fd, T& out, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return false;
  return ::read(fd, &out, sizeof out) == static_cast<ssize_t>(sizeof out);
}

template <typename T>
void send(int fd, const T& v) {
  if (::write(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) ::_exit(98);
}

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-state-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    tmp_ = fs::canonical(tmpl);
  }
  void TearDown() override {
    // A failed remove test may have left mounts; never delete through them.
    for (int i = 0; i < 8; ++i) {
      auto points = mount_points_under(tmp_.string());
      if (points.empty()) break;
      for (auto it = points.rbegin(); it != points.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
    }
    std::error_code ec;
    fs::remove_all(tmp_, ec);
    EXPECT_FALSE(ec) << "remove " << tmp_ << ": " << ec.message();
  }
  ContainerState sample(const std::string& id) const {
    ContainerState s;
    s.id = id;
    s.bundle = "/srv/bundles/" + id;
    s.rootfs = "/srv/bundles/" + id + "/rootfs";
    s.status = "running";
    s.sandbox_pid = 4242;
    s.sandbox_start_time = 987654321012ULL;
    s.pid = 4242;
    s.created = "2026-12-07T12:00:00.123456789Z";
    s.owner = "root";
    s.annotations = {{"io.kubernetes.cri.sandbox-id", "abc"}, {"quote\"and\\slash", "ünïcode \n line"}};
    s.control_socket = "/run/skiff/" + id + "/control.sock";
    s.exit_code = 137;
    return s;
  }
  fs::path tmp_;
};

// ---------------------------------------------------------------- atomic write

TEST_F(StateTest, AtomicWriteReplacesAnExistingFileAndLeavesNoTempFile) {
  const fs::path path = tmp_ / "state.json";
  write_file_atomic(path, "first version, longer than the second");
  EXPECT_EQ(slurp(path), "first version, longer than the second");
  EXPECT_EQ(mode_of(path), 0600u);
  write_file_atomic(path, "second", 0644);
  EXPECT_EQ(slurp(path), "second");
  EXPECT_EQ(mode_of(path), 0644u);
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp_)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(StateTest, AtomicWriteModeIgnoresTheUmask) {
  const mode_t old = ::umask(0077);
  write_file_atomic(tmp_ / "f", "x", 0644);
  ::umask(old);
  EXPECT_EQ(mode_of(tmp_ / "f"), 0644u);
}

TEST_F(StateTest, AtomicWriteErrorNamesThePath) {
  const std::string path = (tmp_ / "no-such-dir/state.json").string();
  try {
    write_file_atomic(path, "x");
    FAIL() << "wrote into a missing directory";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_EQ(e.code().value(), ENOENT);
  }
}

// Temp files left by dead writers, whatever their names, are neither read nor
// reused: the next write makes a fresh one.
TEST_F(StateTest, StaleTempFilesDoNotBreakTheNextWrite) {
  const fs::path path = tmp_ / "state.json";
  write_file_atomic(path, "old");
  for (const char* name : {".state.json.1.0.tmp", ".state.json.123.deadbeef.tmp", ".state.json.x.tmp"})
    std::ofstream(tmp_ / name) << "half-written garbage";
  fs::create_directory(tmp_ / ".state.json.7.7.tmp");  // not even a file
  write_file_atomic(path, "new");
  EXPECT_EQ(slurp(path), "new");
  EXPECT_EQ(slurp(tmp_ / ".state.json.123.deadbeef.tmp"), "half-written garbage");
}

std::string version_content(int v) {
  // Large, so a kill mostly lands between open and rename.
  return json{{"version", v}, {"data", std::string(1 << 20, static_cast<char>('a' + v))}}.dump();
}

TEST_F(StateTest, SigkillDuringAtomicWritesLeavesOneCompleteVersion) {
  const fs::path path = tmp_ / "state.json";
  constexpr int kVersions = 4;
  std::vector<std::string> versions;
  for (int v = 0; v < kVersions; ++v) versions.push_back(version_content(v));
  write_file_atomic(path, versions[0]);
  std::mt19937 rng(20261207);
  std::uniform_int_distribution<int> delay_us(0, 20000);
  for (int round = 0; round < 50; ++round) {
    Child writer = spawn([&] {
      for (int n = 1;; ++n) write_file_atomic(path, versions[n % kVersions]);
      return 0;
    });
    ::usleep(static_cast<useconds_t>(delay_us(rng)));
    ::kill(writer.pid(), SIGKILL);
    const int status = writer.wait();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "writer failed on its own: " << status;

    const std::string text = slurp(path);
    ASSERT_NE(std::find(versions.begin(), versions.end(), text), versions.end())
        << "round " << round << ": " << text.size() << " bytes, not one complete version";
    EXPECT_TRUE(json::accept(text));
    // The next writer is not disturbed by what the killed one left.
    const std::string& next = versions[round % kVersions];
    ASSERT_NO_THROW(write_file_atomic(path, next));
    ASSERT_EQ(slurp(path), next);
  }
  // Every leftover is a temp file of a killed writer; at least one kill must
  // have landed mid-write, or this test proved nothing.
  const std::regex temp_name(R"(\.state\.json\.\d+\.[0-9a-f]+\.tmp)");
  int stale = 0;
  for (const auto& e : fs::directory_iterator(tmp_)) {
    const std::string name = e.path().filename().string();
    if (name == "state.json") continue;
    EXPECT_TRUE(std::regex_match(name, temp_name)) << name;
    ++stale;
  }
  EXPECT_GT(stale, 0) << "no kill landed inside a write";
  RecordProperty("stale_temp_files", stale);
}

// --------------------------------------------------------- process identity

TEST(ProcessTest, SelfIsAliveWithItsOwnStartTimeOnly) {
  const auto t = process_start_time(::getpid());
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(process_alive(::getpid(), *t));
  EXPECT_FALSE(process_alive(::getpid(), *t + 1));
  // Clock ticks since boot: not in the future.
  double uptime = 0;
  std::ifstream("/proc/uptime") >> uptime;
  EXPECT_LE(*t, static_cast<uint64_t>((uptime + 1) * static_cast<double>(::sysconf(_SC_CLK_TCK))));
}

TEST(ProcessTest, NoProcessForPidZeroNegativeOrUnused) {
  EXPECT_FALSE(process_start_time(0).has_value());
  EXPECT_FALSE(process_start_time(-1).has_value());
  EXPECT_FALSE(process_start_time(INT32_MIN).has_value());
  EXPECT_FALSE(process_start_time(INT32_MAX).has_value());  // above any pid_max
  EXPECT_FALSE(process_alive(0, 0));
  EXPECT_FALSE(process_alive(-5, 0));
}

TEST(ProcessTest, ReapedChildIsDead) {
  Pipe go;
  Child child = spawn([&] {
    go.w.reset();  // or the read below never sees EOF
    char c;
    return ::read(go.r.get(), &c, 1) >= 0 ? 0 : 1;
  });
  const auto t = process_start_time(child.pid());
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(process_alive(child.pid(), *t));
  go.w.reset();
  const pid_t pid = child.pid();
  EXPECT_EQ(exit_code(child.wait()), 0);
  EXPECT_FALSE(process_start_time(pid).has_value());
  EXPECT_FALSE(process_alive(pid, *t));
}

TEST(ProcessTest, ZombieIsDead) {
  Pipe go;
  Child child = spawn([&] {
    go.w.reset();  // or the read below never sees EOF
    char c;
    return ::read(go.r.get(), &c, 1) >= 0 ? 0 : 1;
  });
  const auto t = process_start_time(child.pid());
  ASSERT_TRUE(t.has_value());
  ASSERT_TRUE(process_alive(child.pid(), *t));
  go.w.reset();
  // Wait for it to exit without reaping it: a zombie.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child.pid()), &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(process_start_time(child.pid()), t) << "a zombie still has its /proc entry";
  EXPECT_FALSE(process_alive(child.pid(), *t));
}

// A naive parse splits at the first ')' and reads every later field off by
// the words in the name.
TEST(ProcessTest, CommandNameWithParenthesesAndSpaces) {
  const std::string name = ") ) 9 9 9 9 9 9";  // 15 bytes, the kernel's limit
  Pipe to_parent, go;
  Child child = spawn([&] {
    go.w.reset();
    const auto before = process_start_time(::getpid());  // parsed under the ordinary name
    if (!before) return 2;
    if (::prctl(PR_SET_NAME, name.c_str()) != 0) return 3;
    send(to_parent.w.get(), *before);
    char c;
    return ::read(go.r.get(), &c, 1) >= 0 ? 0 : 1;
  });
  uint64_t before = 0;
  ASSERT_TRUE(read_within(to_parent.r.get(), before, 5000));
  EXPECT_EQ(slurp("/proc/" + std::to_string(child.pid()) + "/comm"), name + "\n");
  EXPECT_EQ(process_start_time(child.pid()), before);
  EXPECT_TRUE(process_alive(child.pid(), before));
  go.w.reset();
  EXPECT_EQ(exit_code(child.wait()), 0);
}

// ------------------------------------------------------------ ids and files

TEST(CheckIdTest, AcceptsWhatRuncAccepts) {
  for (const std::string id : {"a", "c1", "abc-123", "A_b+c.d", "..a", "a..", ".hidden", "-", "+", "_",
                               "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}) {
    EXPECT_NO_THROW(StateStore::check_id(id)) << id;
  }
  EXPECT_NO_THROW(StateStore::check_id(std::string(StateStore::kMaxIdLength, 'x')));
}

TEST(CheckIdTest, RefusesEverythingElseWithOneLine) {
  for (const std::string& id : std::vector<std::string>{"", ".", "..", "a/b", "/abs", "a b", "a,b", "a:b", "a\\b", "*", "\xc3\xbc", "a\nb",
                               std::string("a\0b", 3)}) {
    try {
      StateStore::check_id(id);
      ADD_FAILURE() << "accepted " << json(id).dump(-1, ' ', true, json::error_handler_t::replace);
    } catch (const ConfigError& e) {
      const std::string msg = e.what();
      EXPECT_TRUE(msg.starts_with("container id \"")) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  EXPECT_THROW(StateStore::check_id(std::string(StateStore::kMaxIdLength + 1, 'x')), ConfigError);
  try {
    StateStore::check_id("a/b");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "container id \"a/b\": only letters, digits, '_', '+', '-', '.' are allowed");
  }
}

// Arbitrary strings against an independent statement of the rule.
TEST(CheckIdTest, RandomStringsMatchTheRule) {
  const std::regex rule(R"([A-Za-z0-9_+\-.]{1,250})");
  const std::string alphabet = "aZ09_+-./ ,:\\\n\x01\xff";
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    std::string id(rng() % 6, ' ');
    for (char& c : id) c = alphabet[rng() % alphabet.size()];
    const bool ok = std::regex_match(id, rule) && id != "." && id != "..";
    bool accepted = true;
    try {
      StateStore::check_id(id);
    } catch (const ConfigError&) {
      accepted = false;
    }
    ASSERT_EQ(accepted, ok) << json(id).dump(-1, ' ', true, json::error_handler_t::replace);
  }
}

TEST_F(StateTest, RootIsCreatedWithParentsAs0711AndCanonical) {
  const mode_t old = ::umask(0077);
  StateStore store((tmp_ / "x/y/./run").string());
  ::umask(old);
  EXPECT_EQ(store.root(), (tmp_ / "x/y/run").string());
  EXPECT_EQ(mode_of(tmp_ / "x"), 0711u);
  EXPECT_EQ(mode_of(tmp_ / "x/y/run"), 0711u);
  fs::create_directory_symlink(tmp_ / "x/y/run", tmp_ / "link");
  EXPECT_EQ(StateStore((tmp_ / "link").string()).root(), (tmp_ / "x/y/run").string());
  EXPECT_EQ(store.dir_of("c1"), (tmp_ / "x/y/run/c1").string());
  EXPECT_THROW((void)store.dir_of("../etc"), ConfigError);
}

TEST_F(StateTest, RootThatIsAFileIsASystemError) {
  std::ofstream(tmp_ / "file") << "x";
  EXPECT_THROW(StateStore((tmp_ / "file").string()), std::system_error);
}

TEST_F(StateTest, CreateTwiceIsAlreadyExists) {
  StateStore store(tmp_.string());
  store.create(sample("c1"));
  EXPECT_EQ(mode_of(tmp_ / "c1"), 0711u);
  EXPECT_EQ(mode_of(tmp_ / "c1/state.json"), 0600u);
  auto second = sample("c1");
  second.status = "created";
  try {
    store.create(second);
    FAIL() << "created twice";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "container \"c1\" already exists");
  }
  EXPECT_EQ(store.load("c1")->status, "running");  // the first one is untouched
}

TEST_F(StateTest, CreateRefusesAStateLoadWouldRefuseAndLeavesNothing) {
  StateStore store(tmp_.string());
  auto bad = sample("c1");
  bad.bundle = "relative/bundle";
  EXPECT_THROW(store.create(bad), ConfigError);
  EXPECT_FALSE(fs::exists(tmp_ / "c1"));
  auto bad_id = sample("c1");
  bad_id.id = "a/b";
  EXPECT_THROW(store.create(bad_id), ConfigError);
}

TEST_F(StateTest, SaveAndLoadRoundTripEveryField) {
  StateStore store(tmp_.string());
  ContainerState s = sample("c1");
  s.status = "creating";
  s.exit_code.reset();
  s.control_socket.clear();
  store.create(s);
  EXPECT_EQ(store.load("c1"), s);

  s.status = "stopped";
  s.sandbox_pid = 2147483647;
  s.pid = 1;
  s.sandbox_start_time = UINT64_MAX;
  s.exit_code = -1;
  s.control_socket = "/run/skiff/c1/control.sock";
  s.annotations["added"] = "";
  store.save(s);
  const auto loaded = store.load("c1");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(*loaded, s);
  EXPECT_EQ(loaded->exit_code, -1);
  EXPECT_EQ(loaded->annotations.at("quote\"and\\slash"), "ünïcode \n line");
  EXPECT_EQ(state_from_json(to_json(s), "mem"), s);
}

TEST_F(StateTest, SaveWithoutADirectoryFails) {
  StateStore store(tmp_.string());
  EXPECT_THROW(store.save(sample("ghost")), std::system_error);
  EXPECT_FALSE(fs::exists(tmp_ / "ghost"));
}

TEST_F(StateTest, LoadOfAMissingContainerIsNullopt) {
  StateStore store(tmp_.string());
  EXPECT_FALSE(store.load("nope").has_value());
  fs::create_directory(tmp_ / "half");  // created, state not yet written
  EXPECT_FALSE(store.load("half").has_value());
}

class CorruptTest : public StateTest {
 protected:
  // Writes `text` as c1's state and returns load's error message.
  std::string load_error(const std::string& text) {
    StateStore store(tmp_.string());
    fs::create_directories(tmp_ / "c1");
    std::ofstream(tmp_ / "c1/state.json", std::ios::trunc) << text;
    try {
      store.load("c1");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }
  std::string file() const { return (tmp_ / "c1/state.json").string(); }
  std::string with(const char* key, const json& value) {
    json j = to_json(sample("c1"));
    if (value.is_discarded())
      j.erase(key);
    else
      j[key] = value;
    return j.dump();
  }
};

TEST_F(CorruptTest, NotJsonNamesTheFile) {
  for (const std::string text : {"", "{not json", "{\"id\": \"c1\", \"bundle\": \"/b", "\x00\x01"}) {
    const std::string msg = load_error(text);
    EXPECT_TRUE(msg.starts_with(file() + ": not valid JSON: ")) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  const std::string full = to_json(sample("c1")).dump();
  EXPECT_TRUE(load_error(full.substr(0, full.size() / 2)).starts_with(file() + ": not valid JSON: "));
}

TEST_F(CorruptTest, BadFieldsNameTheFileAndTheField) {
  const json discard = json(json::value_t::discarded);
  EXPECT_EQ(load_error("[]"), file() + ": must be a JSON object, not array");
  EXPECT_EQ(load_error(with("owner", discard)), file() + ": owner: missing");
  EXPECT_EQ(load_error(with("bundle", "rel")), file() + ": bundle: must be an absolute path, not \"rel\"");
  EXPECT_EQ(load_error(with("sandbox_pid", "12")),
            file() + ": sandbox_pid: must be an integer from 0 to 2147483647, not \"12\"");
  EXPECT_EQ(load_error(with("pid", -3)), file() + ": pid: must be an integer from 0 to 2147483647, not -3");
  EXPECT_EQ(load_error(with("sandbox_start_time", 1.5)),
            file() + ": sandbox_start_time: must be a non-negative integer, not 1.5");
  EXPECT_EQ(load_error(with("status", "zombie")),
            file() + ": status: must be one of \"creating\", \"created\", \"running\", \"paused\", \"stopped\", not "
                     "\"zombie\"");
  EXPECT_TRUE(load_error(with("created", "yesterday")).starts_with(file() + ": created: must be an RFC 3339 time"));
  for (const char* bad : {"2026-12-07 12:00:00Z", "2026-12-07T12:00:00", "2026-12-07T12:00:00.Z",
                          "2026-12-07T12:00:00.1234567890Z", "2026-12-07T12:00:00+0100", "2026-12-07T12:00:00Zx"})
    EXPECT_TRUE(load_error(with("created", bad)).starts_with(file() + ": created: ")) << bad;
  for (const char* good : {"2026-12-07T12:00:00Z", "2026-12-07T12:00:00.5+01:00", "2026-12-07T12:00:00.123456789-08:00"})
    EXPECT_EQ(load_error(with("created", good)), "(no error)") << good;
  EXPECT_EQ(load_error(with("annotations", json{{"k", 1}})), file() + ": annotations.k: must be a string, not 1");
  EXPECT_EQ(load_error(with("control_socket", "x.sock")),
            file() + ": control_socket: must be an absolute path or empty, not \"x.sock\"");
  EXPECT_EQ(load_error(with("exit_code", 1ULL << 40)),
            file() + ": exit_code: must be an integer from -2147483648 to 2147483647, not 1099511627776");
  EXPECT_EQ(load_error(with("id", "c2")), file() + ": id: \"c2\" is not its directory's \"c1\"");
  EXPECT_TRUE(load_error(with("id", "a/b")).starts_with(file() + ": id: \"a/b\": only letters")) << load_error(with("id", "a/b"));
  // Optional ones may be left out.
  EXPECT_EQ(load_error(with("exit_code", discard)), "(no error)");
  EXPECT_EQ(load_error(with("annotations", discard)), "(no error)");
  EXPECT_EQ(load_error(with("exit_code", nullptr)), "(no error)");
}

// Whatever a damaged file holds, the answer is a state or a ConfigError.
TEST(StateJsonTest, RandomlyDamagedStatesGiveConfigErrorOnly) {
  const std::vector<json> values = {nullptr, true, 0, -1, 1ULL << 63, 2.5, "", "/x", "rel", json::array(),
                                    json::object(), json{{"a", "b"}}, "2026-12-07T12:00:00Z", "running"};
  ContainerState base;
  base.id = "c1";
  base.bundle = "/b";
  base.rootfs = "/b/rootfs";
  base.status = "created";
  base.created = "2026-12-07T12:00:00.000000001Z";
  base.owner = "root";
  const json good = to_json(base);
  std::vector<std::string> keys;
  for (const auto& [k, v] : good.items()) keys.push_back(k);
  keys.push_back("exit_code");
  std::mt19937 rng(99);
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    json j = good;
    for (int n = static_cast<int>(rng() % 3); n >= 0; --n) {
      const std::string& key = keys[rng() % keys.size()];
      if (rng() % 5 == 0)
        j.erase(key);
      else
        j[key] = values[rng() % values.size()];
    }
    try {
      (void)state_from_json(j, "f");
      ++accepted;
    } catch (const ConfigError& e) {
      ASSERT_TRUE(std::string(e.what()).starts_with("f: ")) << e.what();
    }
  }
  EXPECT_GT(accepted, 0);
  EXPECT_NE(accepted, 3000);
}

TEST(StateJsonTest, Rfc3339NowIsUtcWithNanoseconds) {
  const std::string a = rfc3339_now();
  const std::string b = rfc3339_now();
  EXPECT_TRUE(std::regex_match(a, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z)"))) << a;
  EXPECT_LE(a, b);
  EXPECT_GE(a, "2024-");
}

TEST_F(StateTest, ListIsSortedAndSkipsDirectoriesWithoutState) {
  StateStore store(tmp_.string());
  for (const char* id : {"b", "a", "c.2", "c+1"}) store.create(sample(id));
  fs::create_directory(tmp_ / "half");  // no state.json yet
  fs::create_directories(tmp_ / "dir-state/state.json");  // state.json not a file
  std::ofstream(tmp_ / "plainfile") << "x";
  fs::create_directory_symlink(tmp_ / "a", tmp_ / "alias");
  auto l = store.lock("z");  // z.lock, no directory
  EXPECT_EQ(store.list(), (std::vector<std::string>{"a", "b", "c+1", "c.2"}));
}

// ------------------------------------------------------------------- locks

TEST_F(StateTest, SecondProcessCannotTryLockWhileHeld) {
  StateStore store(tmp_.string());
  std::optional<ContainerLock> held = store.lock("c1");
  EXPECT_TRUE(fs::exists(tmp_ / "c1.lock"));
  auto child_gets_it = [&] { return exit_code(spawn([&] { return store.try_lock("c1") ? 1 : 0; }).wait()); };
  EXPECT_EQ(child_gets_it(), 0);
  EXPECT_FALSE(store.try_lock("c1").has_value()) << "flock is per open file: this process is refused too";
  EXPECT_EQ(child_gets_it(), 0) << "the refused try must not have disturbed the holder";
  // Moving keeps the lock.
  ContainerLock moved = std::move(*held);
  held.reset();
  EXPECT_EQ(child_gets_it(), 0);
  { ContainerLock gone = std::move(moved); }
  EXPECT_EQ(child_gets_it(), 1);
  EXPECT_TRUE(store.try_lock("c1").has_value());
}

TEST_F(StateTest, LockIsReleasedWhenItsHolderIsKilled) {
  StateStore store(tmp_.string());
  Pipe ready;
  Child holder = spawn([&] {
    auto l = store.lock("c1");
    send(ready.w.get(), 'x');
    ::pause();
    return 0;
  });
  char c;
  ASSERT_TRUE(read_within(ready.r.get(), c, 5000));
  EXPECT_FALSE(store.try_lock("c1").has_value());
  ::kill(holder.pid(), SIGKILL);
  holder.wait();
  EXPECT_TRUE(store.try_lock("c1").has_value());
}

// flock belongs to the open file, which fork shares: a child forked under the
// lock (a sandbox that is not exec'd) holds it until it closes its copy.
TEST_F(StateTest, ChildForkedUnderTheLockKeepsItUntilItCloses) {
  StateStore store(tmp_.string());
  std::optional<ContainerLock> held = store.lock("c1");
  Pipe go;
  Child child = spawn([&] {
    go.w.reset();
    char c;
    if (::read(go.r.get(), &c, 1) < 0) return 1;
    held.reset();
    ::pause();
    return 0;
  });
  held.reset();
  EXPECT_FALSE(store.try_lock("c1").has_value()) << "the child's inherited copy should still hold it";
  go.w.reset();  // the child closes its copy
  bool freed = false;
  for (int i = 0; i < 500 && !freed; ++i) {
    freed = store.try_lock("c1").has_value();
    if (!freed) ::usleep(10000);
  }
  EXPECT_TRUE(freed);
}

// A waiter blocked on the lock file that remove() unlinks must not end up
// holding a lock nobody else can see.
TEST_F(StateTest, WaiterWokenByRemoveLocksTheNewFile) {
  StateStore store(tmp_.string());
  store.create(sample("c1"));
  std::optional<ContainerLock> held = store.lock("c1");
  Pipe ready;
  Child waiter = spawn([&] {
    held.reset();  // the copy fork gave it (closing one copy does not unlock)
    auto l = store.lock("c1");
    send(ready.w.get(), 'x');
    ::pause();
    return 0;
  });
  char c;
  EXPECT_FALSE(read_within(ready.r.get(), c, 300)) << "the waiter got the lock while it was held";
  store.remove("c1");
  EXPECT_FALSE(fs::exists(tmp_ / "c1.lock"));
  // A newcomer takes the lock on a fresh file before the waiter wakes on the
  // removed one: the waiter must now wait for the newcomer.
  std::optional<ContainerLock> newcomer = store.try_lock("c1");
  ASSERT_TRUE(newcomer.has_value());
  held.reset();
  EXPECT_FALSE(read_within(ready.r.get(), c, 300)) << "the waiter holds the removed file's lock beside the newcomer";
  newcomer.reset();
  ASSERT_TRUE(read_within(ready.r.get(), c, 5000)) << "the waiter never got the lock";
  EXPECT_FALSE(store.try_lock("c1").has_value()) << "two holders of one container's lock";
  ::kill(waiter.pid(), SIGKILL);
  waiter.wait();
  EXPECT_TRUE(store.try_lock("c1").has_value());
}

// ------------------------------------------------------------------ remove

TEST_F(StateTest, RemoveOfAMissingOrHalfCreatedContainerIsFine) {
  StateStore store(tmp_.string());
  EXPECT_NO_THROW(store.remove("never-was"));
  fs::create_directory(tmp_ / "half");
  std::ofstream(tmp_ / "half/.state.json.1.2.tmp") << "partial";
  { auto l = store.lock("half"); }
  store.remove("half");
  EXPECT_FALSE(fs::exists(tmp_ / "half"));
  EXPECT_FALSE(fs::exists(tmp_ / "half.lock"));
  EXPECT_NO_THROW(store.remove("half"));
  EXPECT_THROW(store.remove(".."), ConfigError);
}

TEST_F(StateTest, RemoveUnmountsEverythingBelowThenDeletes) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs and a bind mount needs root";
  // Our own mount namespace, a slave of the host's: nothing leaks out even if
  // this test dies half-way.
  if (::unshare(CLONE_NEWNS) != 0)
    GTEST_SKIP() << "unshare(CLONE_NEWNS): " << std::strerror(errno) << " (needs CAP_SYS_ADMIN)";
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr), 0) << std::strerror(errno);

  const fs::path src = tmp_ / "image-rootfs";
  fs::create_directories(src / "sub");
  std::ofstream(src / "keep") << "host data";
  StateStore store((tmp_ / "run").string());
  store.create(sample("c1"));
  const fs::path dir = store.dir_of("c1");
  auto lock = store.lock("c1");

  auto mount_ok = [](const char* source, const fs::path& target, const char* type, unsigned long flags) {
    return ::mount(source, target.c_str(), type, flags, nullptr) == 0;
  };
  fs::create_directories(dir / "rootfs");
  ASSERT_TRUE(mount_ok(src.c_str(), dir / "rootfs", nullptr, MS_BIND)) << std::strerror(errno);
  ASSERT_TRUE(mount_ok("tmpfs", dir / "rootfs/sub", "tmpfs", 0)) << std::strerror(errno);  // inside the bind
  fs::create_directories(dir / "a/b");
  ASSERT_TRUE(mount_ok("tmpfs", dir / "a/b", "tmpfs", 0)) << std::strerror(errno);  // two levels down
  ASSERT_TRUE(mount_ok("tmpfs", dir / "a/b", "tmpfs", 0)) << std::strerror(errno);  // stacked on it
  std::ofstream(dir / "a/b/file") << "in tmpfs";
  fs::create_directories(dir / "with space");
  ASSERT_TRUE(mount_ok("tmpfs", dir / "with space", "tmpfs", 0)) << std::strerror(errno);  // \040 in mountinfo
  ASSERT_EQ(mountinfo_lines_mentioning(dir.string()).size(), 5u);
  const auto points = mount_points_under(dir.string());
  EXPECT_EQ(points.size(), 5u);
  EXPECT_EQ(std::count(points.begin(), points.end(), (dir / "with space").string()), 1);

  store.remove("c1");
  EXPECT_TRUE(mountinfo_lines_mentioning(dir.string()).empty());
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(tmp_ / "run/c1.lock"));
  EXPECT_EQ(slurp(src / "keep"), "host data") << "removal went through the bind mount into its source";
  EXPECT_TRUE(fs::exists(src / "sub"));
  EXPECT_TRUE(store.list().empty());
}

// -------------------------------------------------------- effective status

TEST(EffectiveStatusTest, GoneSandboxIsStopped) {
  ContainerState s;
  s.status = "running";
  s.sandbox_pid = ::getpid();
  s.sandbox_start_time = *process_start_time(::getpid());
  EXPECT_EQ(effective_status(s), "running");
  s.status = "paused";
  EXPECT_EQ(effective_status(s), "paused");

  s.sandbox_start_time += 1;  // same pid, another process
  EXPECT_EQ(effective_status(s), "stopped");

  Child child = spawn([] { return 0; });
  const auto t = process_start_time(child.pid());
  s.sandbox_pid = child.pid();
  child.wait();
  if (t) s.sandbox_start_time = *t;
  s.status = "running";
  EXPECT_EQ(effective_status(s), "stopped");

  s.sandbox_pid = 0;
  s.status = "created";
  EXPECT_EQ(effective_status(s), "stopped");
}

}  // namespace
}  // namespace skiff::runtime
