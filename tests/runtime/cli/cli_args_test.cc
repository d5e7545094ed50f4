// The CLI's own parsing: signal names as runc takes them, and exec's command
// kept apart from exec's flags.
#include <gtest/gtest.h>

#include <csignal>

#include "base/config_error.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/signal_names.h"

namespace skiff::cli {
namespace {

TEST(SignalNames, NumbersNamesAndRealtime) {
  EXPECT_EQ(parse_signal("9"), SIGKILL);
  EXPECT_EQ(parse_signal("TERM"), SIGTERM);
  EXPECT_EQ(parse_signal("SIGTERM"), SIGTERM);
  EXPECT_EQ(parse_signal("sigkill"), SIGKILL);
  EXPECT_EQ(parse_signal("hup"), SIGHUP);
  EXPECT_EQ(parse_signal("SIGRTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(parse_signal("RTMAX-1"), SIGRTMAX - 1);
  for (const char* bad : {"", "0", "FOO", "SIG", "65", "-9", "9x", "RTMIN+99", "1000"}) {
    try {
      parse_signal(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("unknown signal"), std::string::npos) << e.what();
    }
  }
}

using Args = std::vector<std::string>;

TEST(ExecSeparator, TheCommandKeepsItsOwnFlags) {
  EXPECT_EQ(exec_separator({"skiff", "exec", "c1", "sh", "-c", "echo"}), (Args{"skiff", "exec", "c1", "--", "sh", "-c", "echo"}));
  EXPECT_EQ(exec_separator({"skiff", "--root", "/r", "exec", "-t", "--cwd", "/", "-e", "A=1", "c1", "ls", "-l"}),
            (Args{"skiff", "--root", "/r", "exec", "-t", "--cwd", "/", "-e", "A=1", "c1", "--", "ls", "-l"}));
  EXPECT_EQ(exec_separator({"skiff", "exec", "--cwd=/", "c1", "ls"}), (Args{"skiff", "exec", "--cwd=/", "c1", "--", "ls"}));
  // Already separated, no command, or another command: left as they are.
  EXPECT_EQ(exec_separator({"skiff", "exec", "c1", "--", "ls"}), (Args{"skiff", "exec", "c1", "--", "ls"}));
  EXPECT_EQ(exec_separator({"skiff", "exec", "c1"}), (Args{"skiff", "exec", "c1"}));
  EXPECT_EQ(exec_separator({"skiff", "kill", "c1", "-9"}), (Args{"skiff", "kill", "c1", "-9"}));
  EXPECT_EQ(exec_separator({"skiff", "exec", "--", "c1", "ls"}), (Args{"skiff", "exec", "--", "c1", "ls"}));
}

}  // namespace
}  // namespace skiff::cli
